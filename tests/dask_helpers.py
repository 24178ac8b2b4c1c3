"""A real Dask cluster on 127.0.0.1 for the tests: ``dask scheduler`` and ``dask worker`` processes.

Each process starts in a session of its own and runs in a directory of its own (no shared files
unless a test gives it some); ``Cluster.close`` stops and reaps them all. Workers run without a
nanny, so a worker killed is gone (not restarted), as a machine that went away is.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner_helpers import Spec, cli_in_process

DASK = Path(sys.executable).with_name("dask")


def have_dask() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return DASK.exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Cluster:
    root: Path
    address: str = ""
    scheduler: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_scheduler(self, env: Mapping[str, str] | None = None, preload: str = "") -> None:
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        directory = self.root / "scheduler"
        directory.mkdir(parents=True, exist_ok=True)
        argv = [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
        self.scheduler = _start(argv + (["--preload", preload] if preload else []), directory, env)
        _wait_for_port(port, self.scheduler, directory)

    def start_worker(
        self,
        name: str,
        *,
        threads: int = 4,
        resources: str = "",
        env: Mapping[str, str] | None = None,
        python: Path | None = None,
    ) -> Path:
        """A worker named ``name`` in a directory of its own (returned); ``WORKER`` in its
        environment is its name, for the tasks to say where they ran; ``python``: the interpreter
        it runs on (default the ``dask`` script's own)."""
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        argv = [str(DASK), "worker", self.address, "--name", name, "--nthreads", str(threads), "--no-nanny",
                "--no-dashboard", "--local-directory", str(directory)]  # fmt: skip
        if python is not None:
            argv.insert(0, str(python))
        if resources:
            argv += ["--resources", resources]
        self.workers[name] = _start(argv, directory, {**(env or os.environ), "WORKER": name})
        self.wait_for_workers(len(self.workers))
        return directory

    def wait_for_workers(self, count: int, timeout: float = 30.0) -> None:
        from distributed import Client

        with Client(self.address, timeout=10) as client:  # type: ignore[no-untyped-call]
            client.wait_for_workers(count, timeout=timeout)

    def kill_worker(self, name: str) -> None:
        """The worker gone at once, as a machine that went away (its process group SIGKILLed: not
        the attempts it runs, nor their watchdog, each in a session of its own)."""
        process = self.workers.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def close(self) -> None:
        for process in [*self.workers.values(), *([self.scheduler] if self.scheduler else [])]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers.values(), *([self.scheduler] if self.scheduler else [])]:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.workers.clear()
        self.scheduler = None


@contextlib.contextmanager
def cluster(
    root: Path,
    workers: Sequence[str] = ("w1", "w2"),
    *,
    allowed_failures: int | None = None,
    keeps_clients: bool = False,
    **worker_options: object,
) -> Iterator[Cluster]:
    """A scheduler and ``workers`` (each with ``worker_options``), stopped and reaped on leaving.
    ``allowed_failures``: the scheduler's ``distributed.scheduler.allowed-failures`` (Dask's
    default, 3, when None); ``keeps_clients``: a client whose connection breaks keeps its tasks
    (``dask_keeps_clients``)."""
    made = Cluster(root)
    try:
        scheduler_env = None
        if allowed_failures is not None:
            scheduler_env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(allowed_failures)}
        preload = str(Path(__file__).with_name("dask_keeps_clients.py")) if keeps_clients else ""
        made.start_scheduler(scheduler_env, preload)
        for name in workers:
            made.start_worker(name, **worker_options)  # type: ignore[arg-type]
        yield made
    finally:
        made.close()


def _start(argv: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    log = open(cwd / "process.log", "wb")  # noqa: SIM115 - the child has it; closed here at once
    try:
        return subprocess.Popen(
            argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(env or os.environ), start_new_session=True,
        )  # fmt: skip
    finally:
        log.close()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], directory: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((directory / "process.log").read_text(errors="replace"))
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the scheduler did not listen on {port} within {timeout}s")


def venv_elsewhere(place: Path) -> Path:
    """This virtual environment seen from another path (``place``: its ``bin/python`` a link to
    this interpreter, its packages links to these), as another machine's would be: an interpreter
    whose ``sys.executable`` is not this one's. Returns that ``python``."""
    (place / "bin").mkdir(parents=True)
    (place / "pyvenv.cfg").write_bytes((Path(sys.prefix) / "pyvenv.cfg").read_bytes())
    for name in ("lib", "lib64"):
        if (Path(sys.prefix) / name).exists():
            (place / name).symlink_to(Path(sys.prefix) / name)
    python = place / "bin" / "python"
    python.symlink_to(sys.executable)
    return python


def processes_with(marker: str) -> list[int]:
    """The pids of the processes whose command line holds ``marker`` (not zombies)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


# --- what the tests of test_dask.py and test_dask_clusters.py share ---------------------------------
def attempt_processes(project: Path) -> list[int]:
    """The processes of the project's attempts still alive (wherever they run on this machine)."""
    marker = f"ORCHESTRATOR_WORKSPACE={(project / '.orchestrator').resolve()}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ.split(b"\0") and state != "Z":
            found.append(int(entry))
    return found


def status_json(project: Path) -> dict[str, dict[str, Any]]:
    done = cli_in_process(project, "status", "--json")
    return {task["id"]: task for task in json.loads(done.stdout)["tasks"]}


DAG = [  # 8 tasks in four layers; each says where it ran and what it read
    Spec("A", "echo A"),
    Spec("B", 'sleep 0.3; echo "B after $(cat "$ORCHESTRATOR_INPUTS_FILE" | wc -l) input"', deps=("A",)),
    Spec("C", "sleep 0.3; echo C", deps=("A",)),
    Spec("D", "sleep 0.3; echo D", deps=("A",)),
    Spec("E", "echo E; echo to-stderr >&2", deps=("B", "C")),
    Spec("F", "echo F", deps=("C", "D")),
    Spec("G", "echo G", deps=("E", "F")),
    Spec("H", "echo H", deps=("G",)),
]


def assign(project: Path, profile: str) -> None:
    """Give every task of the project's plan the Assignee ``profile``."""
    plan = project / ".orchestrator" / "master_plan.md"
    lines = plan.read_text().splitlines()
    header = next(number for number, line in enumerate(lines) if line.startswith("| Task ID"))
    lines[header] += " Assignee |"
    lines[header + 1] += "---|"
    number = header + 2
    while number < len(lines) and lines[number].startswith("|"):
        lines[number] += f" {profile} |"
        number += 1
    plan.write_text("\n".join(lines) + "\n")
