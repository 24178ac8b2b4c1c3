"""A row's instances' results in its own folder of results/ (``Workspace.result_file``): results/
holds a file a task and a folder a row, however many items a row has, and every door still finds
each item's answer: ``output T-02[N]``, ``status``, ``verify``, checkpoints, a resumed run.

Real runs of the CLI as a subprocess on shell tasks, real files of a project in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from runner_helpers import cli, cli_in_process, results, run

from orchestrator.state.workspace import Workspace, as_kept_now, is_result_name, result_file_of

ITEMS = 30
FIXTURES = Path(__file__).parent / "fixtures"
PLAN = (
    "---\nbackend: shell\nmax_parallel: 4\nretries: 0\n---\n# Plan\n\n## Request\nEach item.\n\n## Tasks\n"
    "| Task ID | Description | Dependencies | Each | Command |\n|---|---|---|---|---|\n"
    "| T-01 | list | None | | `echo listed` |\n"
    "| T-02 | per item | T-01 | lines: items.txt | `echo done {{ item }}` |\n"
)


@pytest.fixture
def ran(tmp_path: Path) -> Path:
    (tmp_path / ".orchestrator").mkdir()
    (tmp_path / ".orchestrator" / "master_plan.md").write_text(PLAN, encoding="utf-8")
    (tmp_path / "items.txt").write_text("".join(f"item-{n}\n" for n in range(1, ITEMS + 1)), encoding="utf-8")
    found = run(tmp_path)
    assert found.code == 0, found.stderr
    return tmp_path


def _folder(project: Path) -> Path:
    return project / ".orchestrator" / "results" / "agent-02-items"


def test_results_holds_a_file_a_task_and_a_folder_a_row_whose_items_answers_every_door_finds(ran: Path) -> None:
    assert sorted(os.listdir(ran / ".orchestrator" / "results")) == [
        "agent-01-result.md",
        "agent-02-items",
        "agent-02-result.md",
    ]
    assert sorted(os.listdir(_folder(ran))) == sorted(f"agent-02[{n}]-result.md" for n in range(1, ITEMS + 1))
    said = cli(ran, "output", "T-02[7]")
    assert (said.code, said.stdout.strip()) == (0, "done item-7"), said.stderr
    shown = cli(ran, "output", "T-02[7]", "--json")
    assert json.loads(shown.stdout)["result_file"] == ".orchestrator/results/agent-02-items/agent-02[7]-result.md"
    status = json.loads(cli(ran, "status", "T-02", "--json").stdout)
    assert status["task"]["items"]["counts"] == {"completed": ITEMS}, status
    assert sum(1 for task in results(ran) if task.startswith("T-02[")) == ITEMS
    # Every write the run told of is held to its digest, the items' in their folder among them.
    verified = cli_in_process(ran, "verify", "--json")
    assert verified.code == 0, verified.stdout
    assert json.loads(verified.stdout)["results"]["matched"] == ITEMS + 2


def test_a_checkpoint_keeps_and_brings_back_the_items_answers(ran: Path) -> None:
    assert cli_in_process(ran, "checkpoint", "save", "one").code == 0
    item = _folder(ran) / "agent-02[3]-result.md"
    kept = item.read_bytes()
    assert cli(ran, "reset", "T-02[3]").code == 0
    assert not item.exists()  # (set aside: reset deletes no result)
    assert cli_in_process(ran, "checkpoint", "restore", "one").code == 0
    assert item.read_bytes() == kept
    verified = cli_in_process(ran, "verify", "--json")
    assert verified.code == 0, verified.stdout


def test_a_workspace_of_a_version_before_has_its_items_answers_moved_in_and_none_runs_again(tmp_path: Path) -> None:
    """The fixture is a workspace the version before row folders ran to completion (036c616): each
    item's result in results/ itself, each brief naming it there. The next run moves them into
    the row's folder (renamed, their bytes as they were) and runs none of them again."""
    shutil.copytree(FIXTURES / "before-row-folders", tmp_path, dirs_exist_ok=True)
    results_dir = tmp_path / ".orchestrator" / "results"
    before = {name: (results_dir / name).read_bytes() for name in os.listdir(results_dir) if "[" in name}
    assert len(before) == 5
    found = cli(tmp_path, "run", "--json")
    assert found.code == 0, found.stderr
    started = json.loads(found.stdout.splitlines()[0])
    assert (started["to_run"], started["already_done"]) == (0, 7), started
    said = [json.loads(line).get("message", "") for line in found.stdout.splitlines()]
    assert (
        "5 results of rows' items moved from results/ into their rows' folders (results/agent-02-items/...), "
        "where this version keeps them" in said
    ), said
    assert {path.name: path.read_bytes() for path in _folder(tmp_path).iterdir()} == before
    assert sorted(os.listdir(results_dir)) == ["agent-01-result.md", "agent-02-items", "agent-02-result.md"]
    assert not any(".attempt-2." in name for name in os.listdir(tmp_path / ".orchestrator" / "logs"))
    assert cli(tmp_path, "output", "T-02[4]").stdout.strip() == "done item-4"
    # The event log names each item's result where that version wrote it: held to it where it is now.
    verified = cli_in_process(tmp_path, "verify", "--json")
    assert verified.code == 0, verified.stdout
    assert json.loads(verified.stdout)["results"]["matched"] == 7


def test_a_temp_file_a_killed_writer_left_in_a_rows_folder_is_cleaned_at_the_next_run(ran: Path) -> None:
    leftover = _folder(ran) / ".tmp-agent-02[4]-result.md.999999999.1"
    leftover.write_text("half")
    assert run(ran).code == 0
    assert not leftover.exists()


def test_a_results_name_is_a_file_of_results_or_of_a_rows_folder_and_leads_nowhere_else(tmp_path: Path) -> None:
    assert result_file_of("agent-03[7]") == "agent-03-items/agent-03[7]-result.md"
    assert result_file_of("agent-03") == "agent-03-result.md"
    assert result_file_of("agent-03[x]") == "agent-03[x]-result.md"
    for name in ("agent-01-result.md", "agent-03-items/agent-03[7]-result.md"):
        assert is_result_name(name), name
    refused = ["../agent-01-result.md", "agent-03-items/../../x-result.md", "a/b/c-result.md",
               "other/agent-03[7]-result.md", "agent-03-items/notes.md", "", "/etc/x-result.md"]  # fmt: skip
    for name in refused:
        assert not is_result_name(name), name
        assert Workspace(tmp_path).result_at(name) is None
    # As a version before row folders named an item's result, and where it is kept now.
    assert as_kept_now("agent-03[7]-result.md") == "agent-03-items/agent-03[7]-result.md"
    for name in ("agent-03-result.md", "agent-03-items/agent-03[7]-result.md", "agent-03[7]-result.md.edited.md"):
        assert as_kept_now(name) == name


def test_a_rows_folder_that_is_a_symlink_out_of_the_workspace_is_never_written_through(tmp_path: Path) -> None:
    (tmp_path / ".orchestrator" / "results").mkdir(parents=True)
    (tmp_path / ".orchestrator" / "master_plan.md").write_text(PLAN, encoding="utf-8")
    (tmp_path / "items.txt").write_text("one\ntwo\n", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / ".orchestrator" / "results" / "agent-02-items").symlink_to(outside)
    found = run(tmp_path)
    assert found.code == 2, found.stdout + found.stderr
    assert "results/agent-02-items: a symlink to" in found.stderr and "outside .orchestrator/" in found.stderr
    assert list(outside.iterdir()) == []


def test_the_dashboard_sees_an_items_result_change_with_no_run_going_on(
    ran: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dashboard looks at the rows' folders as it looks at results/: a person who sets an item's
    result aside by hand sees it on the page, though results/ itself did not change."""
    import anyio

    from orchestrator.serve import tailer as tailing
    from orchestrator.serve.board import Board

    monkeypatch.setattr(tailing, "ITEMS_EVERY", 0.0)

    async def scenario() -> None:
        tailer = tailing.Tailer(Board(Workspace.find(ran)))
        await tailer.start()
        receiver = tailer.subscribe()
        await tailer.tick()
        with pytest.raises(anyio.WouldBlock):  # (nothing moved: nothing sent)
            receiver.receive_nowait()
        (_folder(ran) / "agent-02[3]-result.md").rename(ran / "kept-aside.md")
        kinds: list[str] = []
        for _ in range(200):  # (a state goes out at most so often: looked at until it does, or 10 s)
            await tailer.tick()
            try:
                kinds.append(receiver.receive_nowait().kind)
                break
            except anyio.WouldBlock:
                await anyio.sleep(0.05)
        assert kinds == ["state"]
        tailer.stop()
        receiver.close()

    anyio.run(scenario)
