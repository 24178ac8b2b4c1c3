"""The project's list of programs: which run their arguments or their input as code, which take
a program and then its arguments, which launch another, whose options run code, which read a
variable's name; and the variables whose value a program reads as code.

It is a list because what a program does with a word is that program's fact, not bash's:
``plan/config/programs`` judges a command's words by it. A program not on it takes its
arguments as data. Add one here when you learn it runs what it is given (docs/SECURITY.md says
what the list covers and what it cannot).
"""

from __future__ import annotations

import re

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "yash", "ash", "fish", "csh", "tcsh", "rbash"})
_PYTHON = re.compile(r"^(python|pypy)(\d+(\.\d+)?)?$")
# Interpreters: (options whose operand is the program (code), options whose operand is data).
INTERPRETERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "python": (frozenset({"-c", "-m"}), frozenset({"-W", "-X", "-Q"})),
    "perl": (frozenset({"-e", "-E", "-M", "-m", "-I", "-x"}), frozenset()),
    "ruby": (frozenset({"-e", "-r", "-I", "-C"}), frozenset()),
    "node": (frozenset({"-e", "--eval", "-p", "--print", "-r", "--require", "--import", "--loader"}), frozenset()),
    "deno": (frozenset({"eval", "run", "-e"}), frozenset()),
    "bun": (frozenset({"-e", "--eval", "-p", "--print", "x", "run"}), frozenset()),
    "php": (frozenset({"-r", "-B", "-R", "-E", "-F", "-f"}), frozenset()),
    "lua": (frozenset({"-e", "-l"}), frozenset()),
    "Rscript": (frozenset({"-e"}), frozenset()),
    "R": (frozenset({"-e", "-f", "--file"}), frozenset()),
    "julia": (frozenset({"-e", "-E", "--eval", "--print", "-L", "--load"}), frozenset()),
    "tclsh": (frozenset(), frozenset()),
    "expect": (frozenset({"-c", "-f"}), frozenset()),
    "osascript": (frozenset({"-e"}), frozenset()),
    "pwsh": (frozenset({"-c", "-Command", "-command", "-EncodedCommand", "-f", "-File"}), frozenset()),
    "guile": (frozenset({"-c", "-l", "-e", "-s"}), frozenset()),
    "awk": (
        frozenset({"-f", "--file", "-e", "--source", "-i", "--include", "-l", "--load", "-E", "--exec"}),
        frozenset({"-v", "--assign", "-F", "--field-separator"}),
    ),
    "sed": (frozenset({"-e", "--expression", "-f", "--file"}), frozenset({"-l", "--line-length"})),
    "jq": (frozenset({"-f", "--from-file", "-L", "--library-path"}), frozenset({"--indent"})),
}
ALIASES = {
    "nodejs": "node", "luajit": "lua", "wish": "tclsh", "powershell": "pwsh", "gawk": "awk", "mawk": "awk",
    "nawk": "awk", "gsed": "sed", "gojq": "jq", "jaq": "jq", "yq": "jq", "irb": "ruby", "jruby": "ruby",
    "perl5": "perl",
}  # fmt: skip
# jq's options whose two operands are a name and data (--arg NAME VALUE).
JQ_PAIRS = frozenset({"--arg", "--argjson", "--slurpfile", "--rawfile"})
# Whose every argument runs as code, or runs a command, or makes something that will.
CODE_RUNNERS: dict[str, str] = {
    "eval": "eval runs its arguments as code",
    "source": "source runs the file it is given",
    ".": ". runs the file it is given",
    "trap": "trap runs its first argument as code when the signal comes",
    "alias": "an alias is code the shell runs",
    "let": "let evaluates its arguments as arithmetic",
    "bind": "bind -x runs its argument as code",
    "complete": "complete -C runs its argument",
    "compgen": "compgen -C runs its argument",
    "fc": "fc runs the commands it is given",
    "enable": "enable -f loads code from the file it names",
    "hash": "hash -p sets the program a command name runs",
    "ssh": "ssh runs its arguments as a command line on the other host",
    "watch": "watch runs its arguments as a shell command",
    "parallel": "parallel runs its arguments as commands",
    "su": "su -c runs its argument as a shell command",
    "runuser": "runuser -c runs its argument as a shell command",
    "sg": "sg runs its argument as a shell command",
    "script": "script -c runs its argument as a shell command",
    "at": "at runs what it is given as commands",
    "batch": "batch runs what it is given as commands",
    "crontab": "crontab installs commands that cron runs",
    "make": "make reads NAME=VALUE arguments as variables its recipes run",
    "gmake": "gmake reads NAME=VALUE arguments as variables its recipes run",
    "bwrap": "bwrap runs a command its arguments name",
    "docker": "docker runs commands and images its arguments name",
    "podman": "podman runs commands and images its arguments name",
    "kubectl": "kubectl runs commands its arguments name",
    "vim": "an editor's arguments run its commands",
    "vi": "an editor's arguments run its commands",
    "nvim": "an editor's arguments run its commands",
    "ex": "an editor's arguments run its commands",
    "view": "an editor's arguments run its commands",
    "emacs": "an editor's arguments run its code",
    "gdb": "gdb's arguments run its commands",
    "npx": "npx fetches and runs the package it is given",
    "bunx": "bunx fetches and runs the package it is given",
    "uvx": "uvx fetches and runs the package it is given",
    "pipx": "pipx fetches and runs the package it is given",
}
PACKAGE_MANAGERS = frozenset(
    {"pip", "pip3", "uv", "npm", "pnpm", "yarn", "gem", "bundle", "cargo", "go", "poetry", "composer", "conda",
     "mamba", "apt", "apt-get", "dnf", "yum", "brew", "dotnet", "mvn", "gradle", "helm"}
)  # fmt: skip
# Builtins whose operands (or those of the options named) are variables' names, which bash reads
# with their subscripts, as arithmetic: ``read 'a[$(cmd)]'`` runs cmd. (name -> options whose
# operand is a name; None: every operand is one) and their options whose operand is data.
NAME_TAKERS: dict[str, tuple[frozenset[str] | None, frozenset[str]]] = {
    "read": (None, frozenset({"-p", "-d", "-t", "-n", "-N", "-u"})),
    "mapfile": (None, frozenset({"-d", "-n", "-s", "-u"})),
    "readarray": (None, frozenset({"-d", "-n", "-s", "-u"})),
    "getopts": (None, frozenset()),
    "unset": (None, frozenset()),
    "export": (None, frozenset()),
    "readonly": (None, frozenset()),
    "declare": (None, frozenset()),
    "typeset": (None, frozenset()),
    "local": (None, frozenset()),
    "printf": (frozenset({"-v"}), frozenset()),
    "wait": (frozenset({"-p"}), frozenset()),
    "test": (frozenset({"-v", "-R"}), frozenset()),
    "[": (frozenset({"-v", "-R"}), frozenset()),
}
# Launchers: (their options that take an operand, how many operands come before the program,
# their options whose operand is code).
LAUNCHERS: dict[str, tuple[frozenset[str], int, frozenset[str]]] = {
    "command": (frozenset(), 0, frozenset()),
    "builtin": (frozenset(), 0, frozenset()),
    "exec": (frozenset({"-a"}), 0, frozenset()),
    "env": (frozenset({"-u", "--unset", "-C", "--chdir"}), 0, frozenset({"-S", "--split-string"})),
    "sudo": (
        frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "--user", "--group"}),
        0,
        frozenset({"-s", "-i", "--shell", "--login"}),
    ),
    "doas": (frozenset({"-u", "-C"}), 0, frozenset({"-s"})),
    "nice": (frozenset({"-n", "--adjustment"}), 0, frozenset()),
    "ionice": (frozenset({"-c", "-n", "-t", "--class", "--classdata"}), 0, frozenset()),
    "chrt": (frozenset(), 1, frozenset()),
    "taskset": (frozenset(), 1, frozenset()),
    "timeout": (frozenset({"-s", "--signal", "-k", "--kill-after"}), 1, frozenset()),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0, frozenset()),
    "nohup": (frozenset(), 0, frozenset()),
    "setsid": (frozenset(), 0, frozenset()),
    "time": (frozenset({"-f", "-o", "--format", "--output"}), 0, frozenset()),
    "xargs": (
        frozenset(
            {
                "-I",
                "-i",
                "-d",
                "-n",
                "-L",
                "-l",
                "-P",
                "-s",
                "-E",
                "-e",
                "-a",
                "--arg-file",
                "--delimiter",
                "--max-args",
                "--max-procs",
                "--replace",
                "--max-lines",
                "--eof",
            }
        ),
        0,
        frozenset(),
    ),
    "flock": (frozenset({"-w", "--timeout", "-E", "--conflict-exit-code"}), 1, frozenset({"-c", "--command"})),
    "chroot": (frozenset({"--userspec", "--groups"}), 1, frozenset()),
    "unbuffer": (frozenset(), 0, frozenset()),
    "strace": (
        frozenset({"-o", "-e", "-p", "-s", "-u", "-E", "-P", "-I", "-b", "-a", "-O", "-S", "-X"}),
        0,
        frozenset(),
    ),
    "ltrace": (frozenset({"-o", "-e", "-p", "-s", "-u", "-a", "-n"}), 0, frozenset()),
    "valgrind": (frozenset(), 0, frozenset()),
    "firejail": (frozenset(), 0, frozenset()),
    "systemd-run": (frozenset({"-u", "--unit", "-p", "--property", "-E", "--setenv"}), 0, frozenset()),
    "unshare": (frozenset(), 0, frozenset()),
    "nsenter": (frozenset({"-t", "--target"}), 0, frozenset()),
    "caffeinate": (frozenset(), 0, frozenset()),
}
# Programs whose options run code: (the options that do, the options whose operand is data).
OPTIONED: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "git": (
        frozenset(
            {
                "-c",
                "--config-env",
                "--exec-path",
                "--upload-pack",
                "--receive-pack",
                "-u",
                "--exec",
                "-x",
                "--extcmd",
                "-O",
                "--open-files-in-pager",
                "--template",
                "-t",
                "--tool",
            }
        ),
        frozenset(
            {
                "-m",
                "--message",
                "-b",
                "-B",
                "--branch",
                "--author",
                "--date",
                "--format",
                "--pretty",
                "--grep",
                "-S",
                "-G",
                "--since",
                "--until",
                "--after",
                "--before",
                "-n",
                "--max-count",
                "--depth",
                "--shallow-since",
                "-o",
                "--origin",
                "--committer",
                "-F",
                "--file",
                "-e",
                "-C",
                "--git-dir",
                "--work-tree",
                "--namespace",
                "--separate-git-dir",
            }
        ),
    ),
    "tar": (
        frozenset(
            {
                "--to-command",
                "--checkpoint-action",
                "-I",
                "--use-compress-program",
                "-F",
                "--info-script",
                "--new-volume-script",
                "--rsh-command",
                "--rmt-command",
            }
        ),
        frozenset(
            {
                "-f",
                "--file",
                "-C",
                "--directory",
                "-T",
                "--files-from",
                "-X",
                "--exclude-from",
                "--exclude",
                "-N",
                "--newer",
            }
        ),
    ),
    "rsync": (frozenset({"-e", "--rsh", "--rsync-path"}), frozenset({"--exclude", "--include", "--filter"})),
    "scp": (frozenset({"-S", "-o", "-F", "-J"}), frozenset({"-P", "-i", "-l"})),
    "sftp": (frozenset({"-S", "-o", "-F", "-J", "-D"}), frozenset({"-P", "-i", "-l", "-b"})),
    "sort": (
        frozenset({"--compress-program"}),
        frozenset({"-k", "--key", "-t", "--field-separator", "-o", "--output", "-T", "--temporary-directory", "-S"}),
    ),
    "zip": (frozenset({"-TT", "--unzip-command"}), frozenset()),
    "less": (frozenset(), frozenset()),
    "more": (frozenset(), frozenset()),
    "man": (frozenset({"-P", "--pager", "-H", "--html", "-E"}), frozenset()),
    "wget": (
        frozenset({"-e", "--execute", "--use-askpass"}),
        frozenset({"-O", "--output-document", "-P", "--header", "--user-agent", "-U"}),
    ),
    "curl": (
        frozenset({"-K", "--config"}),
        frozenset(
            {
                "-H",
                "--header",
                "-d",
                "--data",
                "--data-raw",
                "--data-binary",
                "--data-urlencode",
                "-o",
                "--output",
                "-u",
                "--user",
                "-A",
                "--user-agent",
                "-X",
                "--request",
                "-F",
                "--form",
                "-e",
                "--referer",
                "--url",
            }
        ),
    ),
    "tcpdump": (frozenset({"-z", "-Z"}), frozenset()),
    "gcc": (frozenset({"-fplugin", "-wrapper", "-B", "-specs", "--specs"}), frozenset({"-o"})),
    "openssl": (frozenset({"-engine", "-provider", "-provider-path"}), frozenset()),
    "gpg": (frozenset({"--exec-path", "--photo-viewer", "--list-options"}), frozenset()),
    "nmap": (frozenset({"--script", "--script-args"}), frozenset()),
    "zathura": (frozenset(), frozenset()),
}
OPTIONED_ALIASES = {"cc": "gcc", "g++": "gcc", "c++": "gcc", "clang": "gcc", "clang++": "gcc", "gpg2": "gpg"}
# git's subcommands that run a value given them, and the keys `git config`/`-c` may set to one.
GIT_RUNS = frozenset({"bisect", "submodule", "filter-branch", "difftool", "mergetool", "config", "alias"})
GIT_DATA_KEYS = frozenset({"user.name", "user.email", "author.name", "author.email", "committer.name",
                            "committer.email", "init.defaultbranch", "core.autocrlf", "color.ui"})  # fmt: skip
# find's tests whose operand is data, and its actions that run a command up to ``;`` or ``+``.
FIND_DATA = frozenset(
    {"-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-regex", "-iregex", "-lname", "-ilname",
     "-newer", "-samefile", "-user", "-group", "-size", "-perm", "-type", "-mtime", "-mmin", "-atime", "-amin",
     "-ctime", "-cmin", "-maxdepth", "-mindepth", "-printf", "-fprint", "-fprintf", "-fls", "-anewer", "-cnewer"}
)  # fmt: skip
FIND_RUNS = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
# Programs that read what they are fed as commands (a shell with no program is told apart below).
INPUT_RUNNERS = frozenset(
    {"at", "batch", "crontab", "sqlite3", "sqlite", "psql", "mysql", "mariadb", "dc", "ed", "ex", "gdb", "lldb",
     "patch", "ftp", "sftp", "source", ".", "xargs", "parallel", "tclsh", "wish", "expect", "R"}
)  # fmt: skip
STDIN_PATHS = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})


def base(name: str) -> str:
    """A program's name as the list knows it: its path's last part."""
    return name.rsplit("/", 1)[-1]


def interpreter(name: str) -> str | None:
    """The key of ``INTERPRETERS`` a program name is, or a shell's name, or None."""
    name = base(name)
    if name in SHELLS:
        return name
    if _PYTHON.match(name):
        return "python"
    name = ALIASES.get(name, name)
    return name if name in INTERPRETERS else None


# The variables whose value a program reads as code, or as where code is: a value is never
# given to one, in an assignment, an export or a command's environment.
_CODE_NAMES = frozenset(
    {"PATH", "BASH_ENV", "ENV", "PROMPT_COMMAND", "PS0", "PS1", "PS2", "PS3", "PS4", "SHELLOPTS", "BASHOPTS",
     "BASH_LOADABLES_PATH", "EXECIGNORE", "HOME", "IFS", "CDPATH", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
     "PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONBREAKPOINT", "PYTHONINSPECT",
     "NODE_OPTIONS", "NODE_PATH", "PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB", "RUBYOPT", "RUBYLIB",
     "CLASSPATH", "SSH_ASKPASS", "EDITOR", "VISUAL", "PAGER", "MANPAGER", "MANOPT", "LESS", "LESSOPEN",
     "LESSCLOSE", "BROWSER", "SHELL", "CONFIG_SHELL", "MAKEFLAGS", "MFLAGS", "MAKEFILES", "CC", "CXX", "CPP",
     "LD", "AR", "AS", "FC", "RUSTC", "RUSTC_WRAPPER", "RUSTDOCFLAGS", "GOFLAGS", "CFLAGS", "CXXFLAGS",
     "LDFLAGS", "CPPFLAGS", "TERMINFO", "TMUX", "GCONV_PATH", "HOSTALIASES", "NLSPATH", "RESOLV_HOST_CONF",
     "GIT_SSH", "GIT_DIR", "GIT_WORK_TREE", "GIT_TEMPLATE_DIR", "GIT_EXEC_PATH", "GIT_CONFIG",
     "GIT_EXTERNAL_DIFF", "GIT_ASKPASS", "GIT_PROXY_COMMAND", "GIT_INDEX_FILE"}
)  # fmt: skip
_CODE_NAME_RE = re.compile(
    r"^(LD_|DYLD_|BASH_FUNC_|GIT_CONFIG|PIP_|NPM_CONFIG_|CARGO_|UV_|POETRY_|JAVA_|_JAVA|JDK_)|"
    r"(_COMMAND|_CMD|PAGER|EDITOR|_OPTIONS|_OPTS|_WRAPPER|_HOOK|_PROGRAM|_SHELL|_PATH)$",
    re.IGNORECASE,
)


def code_name(name: str) -> bool:
    """Whether a program reads the variable ``name``'s value as code or as where code is."""
    return name in _CODE_NAMES or bool(_CODE_NAME_RE.search(name))
