"""Where a value from outside may stand in a script (issue 73): an allow-list read off bash's
grammar, held against real bash.

The positions issue 73 found running a value as code are each shown to run it (the script as the
references alone would write it, run by real bash) and then refused at their line by ``validate``
and by every door a run starts from. A corpus of ordinary positions, and scripts drawn from a
grammar of commands, wrappers and ways of writing a value, are run with hostile values by real
bash whenever the allow-list accepts them: none may run any of it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runner_helpers import Spec, cli, run, write_plan

from orchestrator.plan.config.filling import EXPRESSION_RE, Filler, variable
from orchestrator.plan.config.shellspots import reference, written

MARK = "MARK"
# Values that make a program run `touch MARK` wherever it reads them as code: bash's own
# expansions and subscripts, a separate command, a program's own language, an option that runs.
HOSTILE = [
    "$(touch MARK)",
    "`touch MARK`",
    "a[$(touch MARK)]",
    "([$(touch MARK)]=1)",
    "; touch MARK",
    "touch MARK",
    "x\ntouch MARK\n",
    "touch${IFS}MARK",
    "__import__('os').system('touch MARK')",
    'BEGIN{system("touch MARK")}',
    "1e touch MARK",
    "!touch MARK",
    "--to-command=touch MARK",
    "require('child_process').execSync('touch MARK')",
    'system("touch MARK")',
    "-c",
    "$(touch MARK)#",
    "-exec",
]

# The positions issue 73 found running a value as code, each with a value that does.
ISSUE = {
    "trap": ('trap "echo {{ params.x }}" EXIT', "$(touch MARK)"),
    "| bash": ('echo "echo {{ params.x }}" | bash', "; touch MARK"),
    "| sh": ('echo "{{ params.x }}" | sh', "touch MARK"),
    "| sh -s": ('echo "{{ params.x }}" | sh -s', "touch MARK"),
    "source <(...)": ('source <(echo "{{ params.x }}")', "touch MARK"),
    ". <(...)": ('. <(echo "{{ params.x }}")', "touch MARK"),
    "${b@P}": ('b="{{ params.x }}"; echo "${b@P}"', "$(touch MARK)"),
    "git -c alias": ('git -c "alias.x=!{{ params.x }}" x', "touch MARK"),
    "flock -c": ('flock lockfile -c "echo {{ params.x }}"', "; touch MARK"),
    "script -qc": ('script -qc "echo {{ params.x }}" /dev/null', "; touch MARK"),
    "[[ -v ]]": ("[[ -v {{ params.x }} ]]", "a[$(touch MARK)]"),
    "test -v": ("test -v {{ params.x }}", "a[$(touch MARK)]"),
    "printf -v": ("printf -v {{ params.x }} x", "a[$(touch MARK)]"),
    "read": ("read {{ params.x }} <<< x", "a[$(touch MARK)]"),
    "${!v}": ('v="{{ params.x }}"; echo "${!v}"', "a[$(touch MARK)]"),
    "declare -n": ('declare -n r="{{ params.x }}"; echo "$r"', "a[$(touch MARK)]"),
    "local NAME=": ("f() { local {{ params.x }}=1; }; f", "a[$(touch MARK)]"),
}


def _unjudged(template: str) -> str:
    """The script as the references alone would write it, no allow-list asked."""
    spans = [(m.start(), m.end()) for m in EXPRESSION_RE.finditer(template)]
    return written(template, spans, lambda spot: reference(variable("x"), spot.place)).script


def _judged(template: str) -> tuple[str, list[str]]:
    """The script a task gets for ``template``, and the places the allow-list refuses."""
    filler = Filler({"x": ""}, {}, "plan")
    script = filler.script(template, 1) or ""
    return script, [problem.message for problem in filler.problems]


def _runs_code(script: str, value: str) -> bool:
    """Whether real bash, running ``script`` with ``value`` as the parameter, runs any of it."""
    with tempfile.TemporaryDirectory(prefix="allow-") as directory:
        here = Path(directory)
        env = {**os.environ, variable("x"): value, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(here)}
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                ["bash", "-c", script], cwd=here, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=30
            )
        return (here / MARK).exists()


@pytest.mark.parametrize("name", sorted(ISSUE))
def test_each_position_the_issue_found_runs_code_unjudged_and_is_refused_at_its_line(tmp_path: Path, name: str) -> None:
    """Written as the references alone would write it, real bash runs the value: the refusal is
    needed. ``validate`` refuses it at its line with what to do, and ``run`` with the value runs
    nothing and writes nothing."""
    template, value = ISSUE[name]
    assert _runs_code(_unjudged(template), value), "the position did not run the value: not a code position"
    script, refused = _judged(template)
    assert refused, script
    write_plan(tmp_path, [Spec("T-01", "echo first\n" + template)], {"params": {"x": {"default": "1"}}})
    plan = tmp_path / ".orchestrator/master_plan.md"
    line = next(n for n, text in enumerate(plan.read_text(encoding="utf-8").splitlines(), 1) if "params.x" in text)
    done = cli(tmp_path, "validate")
    assert done.code == 2, done.stdout
    first = done.stderr.splitlines()[0]
    assert first.startswith(f".orchestrator/master_plan.md:{line}: ") and " — " in first, first
    assert first.split(": ", 1)[1].startswith("{{ params.x }} ") or "holds a value from outside" in first, first
    ran = run(tmp_path, "--param", f"x={value}")
    assert ran.code == 2 and not (tmp_path / MARK).exists(), ran.stderr
    assert sorted(p.name for p in (tmp_path / ".orchestrator").iterdir()) == ["master_plan.md"]


# Ordinary positions, each accepted, none of which may run a value, whatever it holds.
ALLOWED = [
    "printf '%s\\n' {{ params.x }}",
    'echo "got {{ params.x }}"',
    "echo '{{ params.x }}'",
    "cat <<< {{ params.x }}",
    "cat <<EOF\n{{ params.x }}\nEOF",
    "echo {{ params.x }} | cat",
    "echo {{ params.x }} | python3 -c 'import sys; print(sys.stdin.read())'",
    'x={{ params.x }}; echo "$x"',
    'x={{ params.x }}; y="$x"; printf \'%s\\n\' "$y"',
    'f() { echo "$1"; }; f {{ params.x }}',
    "bash -c 'echo \"$1\"' _ {{ params.x }}",
    'sh -c \'printf "%s\\n" "$@"\' _ {{ params.x }} two',
    "python3 -c 'import sys; print(sys.argv[1])' {{ params.x }}",
    "node -e 'console.log(process.argv[1])' {{ params.x }}",
    "perl -e 'print $ARGV[0]' {{ params.x }}",
    "awk -v v={{ params.x }} 'BEGIN { print v }'",
    "find . -maxdepth 1 -name {{ params.x }}",
    "echo {{ params.x }} > out.txt && cat out.txt",
    'while read -r line; do echo "$line"; done <<< {{ params.x }}',
    'for w in {{ params.x }}; do echo "$w"; done',
    "case {{ params.x }} in *) echo matched;; esac",
    "[[ {{ params.x }} == x ]] || echo differs",
    "[ {{ params.x }} = x ] || echo differs",
    "test -n {{ params.x }} && echo given",
    "v=$(printf '%s' {{ params.x }}); echo \"$v\"",
    "export Y={{ params.x }}; bash -c 'echo \"$Y\"'",
    "git init -q . && git -c user.name={{ params.x }} -c user.email=a@b commit -q --allow-empty -m {{ params.x }}",
    "grep -c -- {{ params.x }} /dev/null || true",
    "timeout 5 printf '%s\\n' {{ params.x }}",
    "env -u HOME printf '%s\\n' {{ params.x }}",
    "xargs -0 printf '%s\\n' < /dev/null; printf '%s' {{ params.x }} | xargs -0 printf '[%s]\\n'",
]


@pytest.mark.parametrize("template", ALLOWED)
def test_an_ordinary_position_is_accepted_and_runs_no_value(template: str) -> None:
    script, refused = _judged(template)
    assert refused == [], refused
    for value in HOSTILE:
        assert not _runs_code(script, value), (template, value)


# A grammar of scripts: a command with a hole, in a wrapper, the value written one of the ways a
# plan may write it, given straight or through a variable first.
COMMANDS = [
    "echo {H}", "printf '%s\\n' {H}", "cat <<< {H}", "eval {H}", "eval echo {H}", "trap {H} EXIT",
    "bash -c {H}", "sh -c 'echo \"$1\"' _ {H}", "sh -c 'eval \"$1\"' _ {H}", "python3 -c {H}",
    "python3 -c 'import sys; print(sys.argv[1])' {H}", "awk {H} /dev/null", "awk -v v={H} 'BEGIN{{print v}}'",
    "sed -e {H} /dev/null", "sed -n p {H}", "read {H} <<< x", "printf -v {H} x", "declare {H}=1",
    "declare -a arr={H}", "declare -n ref={H}", "f() {{ local loc={H}; echo \"$loc\"; }}; f",
    "f() {{ local {H}=1; }}; f", "echo \"${{HOME:-{H}}}\"", "echo $(( {H} ))", "arr[{H}]=1", "(( {H} ))",
    "let n={H}", "git -c alias.x=!{H} x", "env {H}", "timeout 5 {H}", "{H}", "test -v {H}",
    "[[ -v {H} ]]", "[[ {H} -eq 1 ]]", "[[ {H} == 1 ]]", "[ {H} -eq 1 ]", "xargs -I{{}} sh -c 'echo {{}}' <<< {H}",
    "find . -maxdepth 0 -name {H}", "find . -maxdepth 0 -exec sh -c {H} \\;", "flock lockfile -c {H}",
    "script -qc {H} /dev/null", "for w in {H}; do echo \"$w\"; done", "for w in {H}; do eval \"$w\"; done",
    "case {H} in *) echo ok;; esac", "while read -r l; do eval \"$l\"; done <<< {H}",
    "mapfile -t arr <<< {H}; eval \"${{arr[0]}}\"", "export PROMPT_COMMAND={H}", "PS4={H} bash -xc true",
    "BASH_ENV={H} bash -c true", "alias a={H}", "printf {H}", "printf '%d' {H}", "exit {H}",
    "declare -i n={H}", "echo {H} > >(bash)", "cat <<EOF | bash\n{H}\nEOF", "bash <<EOF\n{H}\nEOF",
    "cat <<EOF\n{H}\nEOF", "node -e {H}", "perl -e {H}", "perl -e 'print $ARGV[0]' {H}", "unset {H}",
    "getopts ab {H}", "source {H}", ". /dev/stdin <<< {H}", "echo {H} | source /dev/stdin", "command {H}",
    "exec {H}", "nice -n 5 {H}", "env X={H} bash -c 'eval \"$X\"'", "x={H}; ${{x}}", "x={H}; $x",
    "echo \"${{x:-{H}}}\"", "echo ${{#x}} {H}", "git init -q . && git config alias.y {H} && git y",
]  # fmt: skip
WRAPPERS = [
    "{C}", "x=$({C}); echo \"$x\"", "f() {{ {C}; }}; f", "if true; then {C}; fi", "{C} | cat", "{C} | bash",
    "( {C} )", "{{ {C}; }}", "echo \"$({C})\"", "eval \"$({C})\"", "for i in 1; do {C}; done", "{C} && true",
    "true || {C}", "x=$({C}); eval \"$x\"", "source <({C})", "cat <({C})", "{C} | sh -s", "{C} | python3",
    "bash -c 'eval \"$1\"' _ \"$({C})\"", "x=`{C}`; echo \"$x\"", "{C} 2>&1 | xargs echo", "bash <({C})",
    "{C} > run.sh; bash run.sh", "{C} > run.sh; chmod +x run.sh; ./run.sh", "{C} > notes.txt; cat notes.txt",
    "{C} | tee /dev/null | bash", "g() {{ {C}; }}; x=$(g); eval \"$x\"", "g() {{ {C}; }}; g | sh",
]  # fmt: skip
FORMS = [
    "{{ params.x }}", '"{{ params.x }}"', "'{{ params.x }}'", '"$ORCHESTRATOR_PARAM_X"', "$ORCHESTRATOR_PARAM_X",
    "p{{ params.x }}", "--o={{ params.x }}", '"${ORCHESTRATOR_PARAM_X}"', '"a {{ params.x }} b"',
    "$'{{ params.x }}'", "${ORCHESTRATOR_PARAM_X}",
]  # fmt: skip


@st.composite
def scripts(draw: st.DrawFn) -> str:
    command, wrapper = draw(st.sampled_from(COMMANDS)), draw(st.sampled_from(WRAPPERS))
    form = draw(st.sampled_from(FORMS))
    if draw(st.booleans()):  # the value through a variable of the script's own first
        hole = draw(st.sampled_from(['"$v"', "$v", '"${v}"', '"pre$v"']))
        return f"v={form}\n" + wrapper.format(C=command.format(H=hole))
    return wrapper.format(C=command.format(H=form))


@settings(max_examples=int(os.environ.get("ALLOWLIST_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(template=scripts(), value=st.sampled_from(HOSTILE))
def test_a_drawn_script_the_allow_list_accepts_runs_no_value_in_real_bash(template: str, value: str) -> None:
    """Positions drawn from bash's grammar, with values drawn from the hostile ones: whatever the
    allow-list accepts, real bash runs none of the value."""
    script, refused = _judged(template)
    if refused:
        return
    assert not _runs_code(script, value), (template, script, value)


def test_a_value_a_script_names_itself_is_judged_as_one_it_was_given() -> None:
    """``$ORCHESTRATOR_PARAM_X`` and ``$ORCHESTRATOR_ITEM`` written by the plan's author are values from
    outside as well: judged, with their own words, though no ``{{ }}`` is in the script."""
    for script, said in (('eval "$ORCHESTRATOR_PARAM_X"', "eval runs its arguments as code"),
                         ('echo "$ORCHESTRATOR_ITEM" | bash', "piped into bash"),
                         ("bash -c 'eval \"$ORCHESTRATOR_PARAM_X\"'", "in the program bash runs"),
                         ("(( ORCHESTRATOR_PARAM_X > 1 ))", "in arithmetic")):  # fmt: skip
        _, refused = _judged(script)
        assert refused and said in refused[0], (script, refused)
    for script in ('echo "$ORCHESTRATOR_PARAM_X"', "echo '$ORCHESTRATOR_PARAM_X'", "# eval $ORCHESTRATOR_PARAM_X",
                   "python3 <<'EOF'\nimport os; print(os.environ['ORCHESTRATOR_PARAM_X'])\nEOF"):  # fmt: skip
        assert _judged(script)[1] == [], script


def test_an_item_in_a_code_position_is_refused_at_its_line(tmp_path: Path) -> None:
    """``{{ item }}`` is a value from outside (a file's lines or names): a row that runs it is
    refused by ``validate`` and ``run`` at its line, and nothing runs."""
    (tmp_path / "items.txt").write_text("a[$(touch MARK)]\n$(touch MARK)\n", encoding="utf-8")
    plan = tmp_path / ".orchestrator/master_plan.md"
    plan.parent.mkdir()
    plan.write_text(
        "---\nbackend: shell\n---\n# Plan\n\n## Request\nEach item.\n\n## Tasks\n"
        "| Task ID | Description | Dependencies | Each | Command |\n|---|---|---|---|---|\n"
        "| T-01 | read each | None | lines: items.txt | read {{ item }} <<< x |\n",
        encoding="utf-8",
    )
    for command in ("validate", "run"):
        done = cli(tmp_path, command)
        assert done.code == 2, (command, done.stdout)
        first = done.stderr.splitlines()[0]
        assert "{{ item }} in a read command, which reads it as a variable's name — " in first, first
    assert not (tmp_path / MARK).exists()


def test_every_door_refuses_a_plan_that_would_run_a_value_and_runs_nothing(tmp_path: Path) -> None:
    """A signed webhook's delivery, the HTTP API and MCP reach the same allow-list as the command
    line: the run they would start is refused with the plan's line, and no value runs."""
    from dashboard_helpers import served
    from test_api import post
    from test_hooks import deliver
    from test_mcp import mcp_client, text_of

    root = tmp_path / "project"
    root.mkdir()
    triggers = {"github": {"events": ["pull_request"], "params": {"x": "{{ event.pull_request.title }}"}}}
    write_plan(root, [Spec("T-01", 'trap "echo {{ params.x }}" EXIT')],
               {"params": {"x": {"default": "1"}}, "triggers": triggers})  # fmt: skip
    (tmp_path / "secret").write_bytes(b"it's a secret to everybody\n")
    hostile = "$(touch MARK)"
    said: list[str] = []
    with served(root, "--webhook-secret-file", str(tmp_path / "secret")) as server:
        hooked = deliver(server, {"action": "opened", "pull_request": {"number": 1, "title": hostile}})
        said.append(f"{hooked.status} {hooked.body!r}")
        api = post(server, "/api/runs", {"param": [f"x={hostile}"]})
        said.append(f"{api.status} {api.body!r}")
    with mcp_client(root) as client:
        said.append(text_of(client.call("run", {"param": [f"x={hostile}"]})))
    for answer in said:
        assert "master_plan.md:" in answer and "trap runs its first argument as code" in answer, said
    assert not (root / MARK).exists()
    assert not (root / ".orchestrator/results").exists()
