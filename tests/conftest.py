"""What every test runs with.

- **Short clocks.** The product's waits (``orchestrator/timing.py``) are shortened for the whole
  session through ``$ORCHESTRATOR_TIMING``, which every CLI process a test starts inherits and the
  commands run in-process read too: the same paths run, on short clocks. A test about a wait's
  length sets that wait itself (``monkeypatch.setenv(timing.VARIABLE, timing_text(answer_wait=2))``).
  ``ORCHESTRATOR_TIMING= pytest ...`` runs the suite on the product's own clocks instead.
- **Compiled modules kept.** Where ``PYTHONDONTWRITEBYTECODE`` is set (so no checkout gets a
  ``__pycache__``), every ``python -m orchestrator`` a test starts would compile the package's
  modules again: the processes the tests start keep their bytecode in a directory of this
  session's instead (``PYTHONPYCACHEPREFIX``), removed at its end.
- **One Dask cluster per test worker** (``two_workers``): a scheduler and two workers (``shell=4``
  each), started by the first test on this worker that asks, stopped at the end of its session.
  A test that needs a cluster of its own (a worker killed, resources of its own) starts one.
  The tests that use it are test_dask.py's, which stays on one worker: the suite starts one such cluster, not
  one idle on each worker. The tests that start a cluster of their own are test_dask_clusters.py's,
  handed out one by one.
- **Nothing of the person's shell start-up.** ``BASH_ENV``, ``ENV``, exported functions and the
  like (``agenthome.SHELL_START_UP``) are taken out of the session's environment, which every
  process a test starts inherits: a shell task, an agent's shell tool, reads none of the person's
  files. Every real agent CLI a test starts has a ``HOME`` of its own besides (``agenthome``).
- **Dask's own monitors slowed** (``DASK_QUIET``): a worker's profiler samples its threads every
  10 ms and every process ticks every 20 ms, each idle scheduler and worker spending 1.5-2% of a
  core: the clusters the tests start watch themselves every second instead. No test is about them.
- **Tests handed out one by one** (``--dist loadgroup``, the pyproject's): a long file no longer
  holds one worker to the end of the run. The files of ``TOGETHER`` stay on one worker each, in
  the order they are collected: their tests share a module's fixture that does the work of all of
  them at once, or something of this machine one test at a time. (pytest-xdist's own ``loadgroup``
  reads ``xdist_group`` marks into node ids, which pytest 9 no longer lets a plugin change: this
  scheduler groups by file name instead.)
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from agenthome import is_shell_start_up
from dask_helpers import Cluster, cluster, have_dask
from runner_helpers import timing_text

from orchestrator import timing

os.environ.setdefault(timing.VARIABLE, timing_text())
for _name in [name for name in os.environ if is_shell_start_up(name)]:
    del os.environ[_name]

DASK_QUIET = {
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "5s",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__GIL__ENABLED": "False",
}
for _name, _value in DASK_QUIET.items():
    os.environ.setdefault(_name, _value)

TOGETHER = {
    "test_docs.py": "its blocks, run at once by a module's fixture",
    "test_bad_plans.py": "the cases' validate and render, run at once by a module's fixture",
    "test_schedule.py": "this user's crontab, one test at a time",
    "test_report.py": "the run a module's fixture makes once for most of its tests",
    "test_in_process.py": "the run a module's fixture makes once for most of its tests",
    "test_dask.py": "the Dask cluster its tests share: one, not one idle on each worker",
}

if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("PYTHONPYCACHEPREFIX"):
    _PYCACHE = tempfile.mkdtemp(prefix="orchestrator-tests-pycache-")
    os.environ["PYTHONPYCACHEPREFIX"] = _PYCACHE
    del os.environ["PYTHONDONTWRITEBYTECODE"]  # (this process was started without: it writes none)
    atexit.register(shutil.rmtree, _PYCACHE, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``: each test a unit of work of its own, but a file of ``TOGETHER`` one."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class Together(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path.rsplit("/", 1)[-1] in TOGETHER else nodeid

    return Together(config, log)


EVERY_TEST = "ORCHESTRATOR_EVERY_TEST"  # set by .ci/run: a test that skips (a tool missing) fails there


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under ``$ORCHESTRATOR_EVERY_TEST`` a skipped test is a failed one, with its reason: a test
    that skips for a missing tool does not run, and CI must not pass without it (issue 78)."""
    outcome: Any = yield
    report = outcome.get_result()
    if os.environ.get(EVERY_TEST) and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, and {EVERY_TEST} runs every test: {reason}"


@pytest.fixture(scope="session")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """This test worker's Dask cluster: kept as the tests found it (none kills its workers)."""
    if not have_dask():
        pytest.skip("the dask extra is not installed")
    with cluster(tmp_path_factory.mktemp("cluster"), resources="shell=4") as made:
        yield made
