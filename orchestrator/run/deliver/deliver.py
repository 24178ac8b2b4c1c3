"""A run's delivery, the orchestrator's act after the work and its gates (the ``deliver`` setting,
``plan/config/deliver``): the integration branch pushed to a remote; one pull request for it
opened, or the one opened before updated (its new commits are the push; its body refreshed);
a comment on the pull request or issue the run came from. Each is an effect of the ledger
(``state/events/effects``): its intent on disk before it is tried, its outcome after, never done twice.

    push ──▶ ledger done? ─ yes ─▶ nothing
                │ no: an intent left unknown? ─▶ the remote's ref at the commit? ─ yes ─▶ done (found)
                └─▶ intent ─▶ git push (over what we pushed before only) ─▶ done | failed
    pr   ──▶ ledger done? ─ yes ─▶ new work, and merged or closed since? ─ yes ─▶ a new one (``after #N``)
                │                       └─ no ─▶ pr_update (PATCH its body, once per commit)
                │ no ─▶ an open pull request for the head branch? ─ yes ─▶ done (found) ─▶ pr_update
                └─▶ intent ─▶ POST ─▶ done (number, URL) | failed
    pr, for a run from a pull request (of the same repository, open): no pull request opened; the
         run's work pushed onto that pull request's head branch, a fast-forward only (its head
         moved to a commit the work does not hold: refused, said in one line), then ``pr_update``
         of that pull request (its page read back; its title and body are its author's, untouched)
    comment ─▶ ledger done? ─ yes ─▶ nothing
                │ no: an intent left unknown? ─▶ a comment there carrying the key? ─ yes ─▶ done (found)
                └─▶ intent ─▶ POST ─▶ done | failed

Work is pushed only when the run completed every task (exit 0): a run that failed delivers nothing
but its comment, which says so; one whose tasks wait for a person, nothing yet (the run that takes
the word delivers). What stops a delivery is an
``Undelivered``: one line, the run's exit code 5, its work left on the local branch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.errors import GitError
from orchestrator.git.github import GitHub, GitHubError, Pull, repository_of
from orchestrator.git.remote import push, remote_sha, url_of
from orchestrator.git.repo import current_branch, git
from orchestrator.plan.config.deliver import Deliver
from orchestrator.run.deliver.bodies import Account, comment_body, marked, pull_body
from orchestrator.state.events.effects import DONE, EffectFailedError, Effects, Entry, Outcome, key
from orchestrator.vocabulary import ExitCode


class Undelivered(Exception):
    """A delivery that could not be made: what stopped it, in one line."""


@dataclass(frozen=True, slots=True)
class Where:
    """Where a run's work goes: the repository it is in (``repo``), its local branch, the remote
    branch it is pushed as, and the pull request or issue the run came from (``origin``)."""

    repo: Path | None
    branch: str | None
    origin: dict[str, Any] | None


class Delivery:
    """One run's delivery, as its ``deliver`` setting says."""

    def __init__(self, deliver: Deliver, where: Where, effects: Effects, github: GitHub | None) -> None:
        self.deliver = deliver
        self.where = where
        self.effects = effects
        self.github = github
        self.made: list[Entry] = []  # what this delivery found done or did, in order
        self.skipped: list[str] = []  # what it left, and why (a run that did not complete)

    def run(self, account: Account) -> list[Entry]:
        """Every effect the setting asks for, once; ``Undelivered`` at the first that fails."""
        pull: Entry | None = None
        if self.deliver.pushes and account.exit_code != 0:
            self.skipped.append(f"not pushed: the run did not complete its work (exit {account.exit_code})")
        elif self.deliver.pushes and (came := self._came_from(account)) is not None:
            pull = self._onto(account, *came)
        elif self.deliver.pushes:
            self._push(account)
            if "pr" in self.deliver.to:
                pull = self._pull(account)
        if "comment" in self.deliver.to and account.exit_code == ExitCode.HELD:
            self.skipped.append("no comment yet: tasks wait for a person's word (the run that takes it answers)")
        elif "comment" in self.deliver.to:
            links = [("Pull request", pull.url)] if pull is not None and pull.url else []
            self._comment(account, links)
        return self.made

    def _step(self, kind: str, target: str, commit: str | None, act: Callable[[], Outcome],
              reconcile: Callable[[], Outcome | None], *, ask_first: bool = False) -> Entry:  # fmt: skip
        try:
            entry = self.effects.do(kind, target, commit, _guarded(act), _guarded(reconcile), ask_first=ask_first)
        except EffectFailedError as exc:
            raise Undelivered(f"{kind} to {target}: {exc}") from None
        self.made.append(entry)
        return entry

    # --- push -------------------------------------------------------------------------------------

    def _remote_branch(self) -> str:
        branch = self.deliver.branch or self.where.branch
        assert branch is not None
        return branch

    def _push(self, account: Account) -> None:
        repo, commit = self.where.repo, account.commit
        if repo is None or commit is None:
            raise Undelivered("deliver: push and pr need isolation: worktree — the run has no branch of its work")
        remote, branch = self.deliver.remote, self._remote_branch()
        target = f"{remote} {branch}"
        lease = self._pushed_before(target)

        def act() -> Outcome:
            push(repo, remote, commit, branch, lease=lease if lease != commit else None)
            return Outcome()

        def reconcile() -> Outcome | None:
            return Outcome() if remote_sha(repo, remote, branch) == commit else None

        self._step("push", target, commit, act, reconcile)

    def _pushed_before(self, target: str) -> str | None:
        """The last commit the ledger has pushed to ``target``: what a push may go over."""
        pushes = [e for e in self.effects.entries.values() if e.kind == "push" and e.target == target]
        done = [e for e in pushes if e.state == DONE]
        return max(done, key=lambda e: e.time).commit if done else None

    # --- the pull request -------------------------------------------------------------------------

    def _repository(self) -> str:
        origin = self.where.origin or {}
        found = self.deliver.repository or origin.get("repository")
        if found is None and self.where.repo is not None:
            found = repository_of(url_of(self.where.repo, self.deliver.remote))
        if not isinstance(found, str):
            said = "say which repository the pull request is in: deliver: {repository: OWNER/NAME}"
            raise Undelivered(f"deliver: the remote {self.deliver.remote} is not on GitHub — {said}")
        return found

    def _client(self) -> GitHub:
        if self.github is None:
            raise Undelivered("deliver: pr and comment need a GitHub token in $ORCHESTRATOR_GITHUB_TOKEN")
        return self.github

    def _pull(self, account: Account) -> Entry:
        github, repository, branch = self._client(), self._repository(), self._remote_branch()
        base = self.deliver.base or (current_branch(self.where.repo) if self.where.repo else None) or "main"
        title, body = account.title(), pull_body(account)

        def opened() -> Outcome:
            made = github.open_pull(repository, branch, base, title, body)
            return Outcome(made.number, made.url)

        def open_now() -> Outcome | None:
            found = github.open_pulls(repository, branch)
            return _of(found[0]) if found else None

        target, entry = self._last_pull(f"{repository} {branch}")
        if entry is not None and self._closed(repository, entry, account.commit):
            target, entry = f"{repository} {branch} after #{entry.number}", None  # (merged or closed: a new one)
        entry = entry or self._step("pr", target, account.commit, opened, open_now, ask_first=True)
        if (entry.found or entry.commit != account.commit) and entry.number is not None:  # (one made before)
            number = entry.number

            def updated() -> Outcome:
                return _of(github.update_pull(repository, number, title, body))

            self._step("pr_update", f"{repository}#{number}", account.commit, updated, lambda: None)
        return entry

    def _last_pull(self, target: str) -> tuple[str, Entry | None]:
        """The last pull request the ledger opened for a branch: the first, else the one opened after
        it was merged or closed (``after #N``), and so on."""
        entry = self.effects.done("pr", target)
        base = target
        while entry is not None and (after := self.effects.done("pr", f"{base} after #{entry.number}")) is not None:
            target, entry = f"{base} after #{entry.number}", after
        return target, entry

    def _closed(self, repository: str, entry: Entry, commit: str | None) -> bool:
        """Whether the pull request ``entry`` opened was merged or closed since: asked of GitHub only
        when there is work for it that it does not hold yet."""
        if (
            entry.number is None
            or entry.commit == commit
            or self.effects.done("pr_update", f"{repository}#{entry.number}", commit)
        ):
            return False
        try:
            return self._client().pull(repository, entry.number).state != "open"
        except GitHubError as exc:
            raise Undelivered(f"pr {repository}#{entry.number}: {exc}") from None

    # --- the pull request the run came from ----------------------------------------------------

    def _came_from(self, account: Account) -> tuple[str, int, Pull | None] | None:
        """The pull request the run came from, when its work goes onto it (``deliver: pr``; the
        same repository): its repository and number, and GitHub's word on it (``None``: its update
        at this commit is done already, nothing to ask). ``None`` for a run from no pull request,
        or from one closed, or a fork's (its branch not ours to push to): its own pull request."""
        origin = self.where.origin or {}
        if "pr" not in self.deliver.to or not origin.get("pull") or not isinstance(origin.get("issue"), int):
            return None
        repository, number = str(origin.get("repository")), int(origin["issue"])
        if self.deliver.repository not in (None, repository):
            return None
        if self.effects.done("pr_update", f"{repository}#{number}", account.commit):
            return repository, number, None
        try:
            pull = self._client().pull(repository, number)
        except GitHubError as exc:
            raise Undelivered(f"pr {repository}#{number}: {exc}") from None
        if pull.state != "open" or not pull.head or pull.head_repository not in (None, repository):
            return None
        return repository, number, pull

    def _onto(self, account: Account, repository: str, number: int, pull: Pull | None) -> Entry:
        """The run's work pushed onto pull request ``number``'s branch, as a fast-forward, and
        recorded as that pull request's update: never a second pull request."""
        target = f"{repository}#{number}"
        if pull is None:  # (done at this commit: the ledger's word)
            entry = self.effects.done("pr_update", target, account.commit)
            assert entry is not None
            self.made.append(entry)
            return entry
        repo, commit = self.where.repo, account.commit
        if repo is None or commit is None:
            raise Undelivered("deliver: pr needs isolation: worktree — the run has no branch of its work")
        remote, branch = self.deliver.remote, pull.head

        def pushed() -> Outcome:
            there = remote_sha(repo, remote, branch)
            if there is not None and there != commit and not git(["merge-base", "--is-ancestor", there, commit],
                                                                 repo, check=False).ok:  # fmt: skip
                raise GitError(f"the branch of #{number} moved to {there[:12]}, which the run's work does not "
                               "hold: not pushed over it (bring it into the work, then run again)")  # fmt: skip
            push(repo, remote, commit, branch)  # (no lease: a fast-forward, or git refuses)
            return Outcome()

        def landed() -> Outcome | None:
            return Outcome() if remote_sha(repo, remote, branch) == commit else None

        self._step("push", f"{remote} {branch}", commit, pushed, landed)
        github = self._client()

        def updated() -> Outcome:
            return _of(github.pull(repository, number))

        return self._step("pr_update", target, commit, updated, lambda: None)

    # --- the comment ------------------------------------------------------------------------------

    def _comment(self, account: Account, links: list[tuple[str, str]]) -> None:
        origin = self.where.origin
        if not origin or not isinstance(origin.get("issue"), int):
            self.skipped.append("no comment: the run came from no pull request or issue (a webhook's delivery)")
            return
        github, repository, issue = self._client(), str(origin["repository"]), int(origin["issue"])
        target = f"{repository}#{issue}"
        commit = account.commit or _digest(account)
        name = key("comment", target, commit)

        def posted() -> Outcome:
            made = github.comment(repository, issue, comment_body(account, name, links))
            return Outcome(made.get("id"), made.get("html_url"))

        def posted_before() -> Outcome | None:
            left = self.effects.entries.get(name)
            since = _before(left.intended) if left is not None else None  # (a long thread: from the intent on)
            found = [c for c in github.comments(repository, issue, since) if marked(c.get("body")) == name]
            return Outcome(found[0].get("id"), found[0].get("html_url")) if found else None

        self._step("comment", target, commit, posted, posted_before)


def _before(moment: str | None) -> str | None:
    """``moment`` a minute earlier, in UTC as GitHub's ``since`` takes it (clocks differ a little)."""
    if moment is None:
        return None
    try:
        when = datetime.fromisoformat(moment) - timedelta(minutes=1)
    except ValueError:
        return None
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _of(pull: Pull) -> Outcome:
    return Outcome(pull.number, pull.url or None)


def _digest(account: Account) -> str:
    """What a run without a branch delivers, named: its tasks' states and results, hashed."""
    said = "\n".join(f"{v.id} {v.status.value} {v.result_file} {v.attempts}" for v in account.views)
    return hashlib.sha256(said.encode()).hexdigest()[:16]


def _guarded(work: Callable[[], Outcome | None]) -> Callable[[], Any]:
    """``work``, its remote's refusal an ``EffectFailedError`` (the ledger's word for it)."""

    def guarded() -> Outcome | None:
        try:
            return work()
        except (GitError, GitHubError, OSError) as exc:
            raise EffectFailedError(str(exc)) from None

    return guarded
