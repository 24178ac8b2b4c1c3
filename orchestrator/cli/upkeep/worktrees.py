"""The commands of ``isolation: worktree``: ``merge`` (the integration branch into yours, when you
ask) and ``worktrees`` (each task's worktree: task, branch, state, disk use; ``prune``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from orchestrator.cli.output import Commands, add_command, add_directory, emit_json
from orchestrator.errors import UsageError
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import DEFAULT_DIR, Workspace
from orchestrator.vocabulary import ExitCode, counted

if TYPE_CHECKING:  # (imported when a command needs it)
    from orchestrator.git.worktrees import Trees


def _size(count: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def _trees(workspace: Workspace, nothing: str) -> Trees:
    """The workspace's worktrees; outside a git repository, a ``GitError`` saying ``nothing``
    (what the command has no use for: "no worktrees to list") and why there is no repository to
    expect: the plan does not use isolation, or it does and needs one."""
    from orchestrator.git.worktrees import Trees
    from orchestrator.plan.config.profiles import Profiles

    plan = plan_of(workspace)
    profiles = Profiles(workspace)
    isolated = any(profiles.settings_for(plan, task).isolation == "worktree" for task in plan.tasks.values())
    why = (
        "isolation: worktree needs one: run `git init` there and commit"
        if isolated
        else "the plan runs its tasks in place, without isolation: worktree"
    )
    integration = plan.settings.integration_branch
    return Trees.of(workspace.project_dir, workspace.root, integration, missing=f"{nothing} ({why})")


def cmd_merge(args: argparse.Namespace) -> int:
    from orchestrator.git.merging import UserMerge, merge_into_checkout
    from orchestrator.git.worktrees import by_hand
    from orchestrator.state.lock import WorkspaceLock

    if args.ff_only and args.no_ff:
        raise UsageError("--ff-only and --no-ff cannot be combined")
    workspace = Workspace.find(args.directory)
    trees = _trees(workspace, "no integration branch to merge")
    mode = "ff" if args.ff_only else "no-ff" if args.no_ff else "auto"

    def about(merge: UserMerge) -> None:  # before anything moves: which branch, from where, by how much
        if not args.json:
            moves = f"{counted(merge.commits, 'commit')} of {trees.integration}"
            verb = "would move" if args.dry_run else "moves"
            print(f"{merge.branch} {verb} from {merge.before[:12]} by {moves} ({merge.how}), in {trees.repo}")

    with WorkspaceLock(workspace.lock_file, workspace.root.name):  # not while a run merges into it
        done = merge_into_checkout(
            trees.repo, trees.integration, mode, workspace_dir=trees.directory.parent, dry_run=args.dry_run, told=about
        )
    data = {
        "ok": not done.conflicts,
        "branch": done.branch,
        "integration_branch": trees.integration,
        "how": done.how,
        "commit": done.commit,
        "conflicts": done.conflicts,
        "before": done.before,
        "commits": done.commits,
        "dry_run": args.dry_run,
    }
    if args.json:
        emit_json(data)
    elif done.conflicts:
        print(
            f"{trees.integration} conflicts with {done.branch} in {', '.join(done.conflicts)}: nothing was changed"
            f" — {by_hand(trees.repo, trees.integration)}"
        )
    elif done.how == "up to date":
        print(f"{done.branch} already has everything on {trees.integration}")
    elif args.dry_run:
        print("nothing was changed (--dry-run)")
    else:
        print(f"merged {trees.integration} into {done.branch} ({done.how}): now at {done.commit[:12]}")
        print(f"to undo it, on {done.branch} with nothing of yours added since: git reset --hard {done.before}")
    return ExitCode.FAILED if done.conflicts else ExitCode.OK


def cmd_worktrees(args: argparse.Namespace) -> int:
    words = list(args.words)
    prune = bool(words) and words[0] == "prune"
    if prune:
        words.pop(0)
    if len(words) > 1:
        raise UsageError(f"worktrees: unexpected {' '.join(words[1:])} — use `orchestrator worktrees [prune] [DIR]`")
    workspace = Workspace.find(words[0] if words else DEFAULT_DIR)
    trees = _trees(workspace, "no worktrees to prune" if prune else "no worktrees to list")
    if prune:
        return _prune(workspace, trees, args.json)
    listed = trees.listing()
    rows = [
        {"task": t.task, "branch": t.branch, "state": t.state, "bytes": t.bytes, "path": workspace.relative(t.path)}
        for t in listed
    ]
    if args.json:
        emit_json({"ok": True, "integration_branch": trees.integration, "worktrees": rows})
        return ExitCode.OK
    if not rows:
        print(f"no worktrees in {workspace.relative(trees.directory)}")
        return ExitCode.OK
    print(f"{'TASK':<16} {'BRANCH':<40} {'STATE':<11} {'DISK':>10}  PATH")
    for row in rows:
        task = row["task"] or "(integration)"
        size = _size(int(row["bytes"] or 0))
        print(f"{task:<16} {row['branch'] or '-':<40} {row['state']:<11} {size:>10}  {row['path']}")
    return ExitCode.OK


def _prune(workspace: Workspace, trees: Trees, as_json: bool) -> int:
    from orchestrator.state import journal
    from orchestrator.state.lock import WorkspaceLock

    with WorkspaceLock(workspace.lock_file, workspace.root.name):  # never under a running run
        busy = journal.read(workspace.journal_file).open  # a dead runner's attempts: maybe still at work
        pruned = trees.prune(busy)
    if as_json:
        emit_json(
            {
                "ok": True,
                "removed": [{"task": t.task, "branch": t.branch, "bytes": t.bytes} for t in pruned.removed],
                "kept": [
                    {"task": k.tree.task, "branch": k.tree.branch, "state": k.tree.state, "why": k.why}
                    for k in pruned.kept
                ],
                "freed_bytes": pruned.freed,
            }
        )
        return ExitCode.OK
    for tree in pruned.removed:
        print(f"removed {workspace.relative(tree.path)} ({tree.task or 'integration'}, {_size(tree.bytes)})")
    for kept in pruned.kept:
        where = workspace.relative(kept.tree.path) if kept.tree.task else "the integration worktree"
        print(f"kept {where}: {kept.why}")
    print(f"freed {_size(pruned.freed)}")
    return ExitCode.OK


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "merge", cmd_merge, "bring the integration branch into your branch (only onto a clean working tree)"
    )
    add_directory(p)
    p.add_argument("--ff-only", action="store_true", help="fast-forward only: refuse when a merge commit is needed")
    p.add_argument("--no-ff", action="store_true", help="always make a merge commit")
    p.add_argument("--dry-run", action="store_true", help="say what would move, and change nothing")
    p = add_command(
        sub,
        "worktrees",
        cmd_worktrees,
        "list the task worktrees (task, branch, state, disk use); `worktrees prune` removes the merged and empty ones",
    )
    p.add_argument("words", nargs="*", metavar="[prune] [DIR]", help="prune: remove merged or empty, clean worktrees")
