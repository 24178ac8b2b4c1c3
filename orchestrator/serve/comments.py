"""A word said in a GitHub comment: ``/approve T-04`` and ``/reject T-04 why`` on the pull request or
issue a run came from, taken by ``serve``'s ``/hooks/github`` as a signed ``issue_comment``
delivery (``serve/hooks`` hands it here before the plan's triggers see it).

The comment's text is untrusted input, read word by word: its first line must be ``/approve ID``
(or ``/allow ID``, and either ``... always`` for an agent's question) or ``/reject ID`` or ``/deny
ID``, with an optional note or reason after it, which is kept as data (history, the result), never
shown to an agent. Spaces and tabs around and between the words do not count; the verb is
written in lower case, the id in any (as every door takes it). A first line that begins as a
word does and says none (``/approve`` alone, ``/approve T-04;rm``) is refused, 422, saying what
to write. An agent's question is named after the task, ``/allow T-03 Q2`` (``/deny T-03 Q2 why``),
as ``answer T-03 Q2 allow`` names it; a word that names none is taken only as ``answer`` takes
one (``run/inflight/asking.chosen``). A comment that is no such line is no word (the triggers may
still take it). One that is:

1. an edit, a deletion (``action`` other than ``created``): ignored, 202;
2. on another repository, pull request or issue than the run's (``approvals.github``'s
   ``repository``/``issue``, else those of the delivery that started the last run from GitHub,
   ``origin`` in ``state/launches.json``): ignored, 202;
3. from a sender the plan does not allow (``approvals.github.from``: ``author_association``
   values, default OWNER, MEMBER, COLLABORATOR, or logins): refused, 403;
4. a delivery taken before: refused, 409;
5. said (``serve/words``), by the commenter's login, ``via`` github, with the comment's URL: 200;
   refused by what the task is doing (not at a gate, asking nothing): 409.

Nothing is written for 1 to 4, nor for a word refused. With ``$ORCHESTRATOR_GITHUB_TOKEN``
(``serve/github``), a word said gets a 👍 reaction, a refused sender a 👎, and a word refused for
what the task is doing a 😕 and a comment saying why in one line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.plan.config.approvals import GitHubWords
from orchestrator.printable import visible
from orchestrator.serve.github import Replies
from orchestrator.serve.words import Said, say
from orchestrator.state import launches
from orchestrator.state.workspace import Workspace

EVENT = "issue_comment"
REASON_LIMIT = 500  # characters of a reason kept from a comment
_LINE = re.compile(r"^/(approve|reject|allow|deny)[ \t]+([A-Za-z0-9][A-Za-z0-9_.-]{0,63})(?:[ \t]+(\S.*))?$")
_VERB = re.compile(r"^/(approve|reject|allow|deny)\b", re.IGNORECASE)
_QUESTION = re.compile(r"^([Qq][1-9][0-9]{0,8})(?:[ \t]+|$)")  # (``Q2``: which question of the task's agent)
_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True, slots=True)
class Word:
    """What a comment's first line says: ``approve`` or not, of ``task`` (its agent's ``question``,
    ``/allow ID Q2``); ``always`` (``/approve ID always``), or a ``reason`` (``/reject ID why``)."""

    approve: bool
    task: str
    always: bool = False
    reason: str = ""
    question: str | None = None


def parse(body: object) -> Word | None:
    """The word a comment's text says, or ``None`` when its first line is not one, exactly."""
    if not isinstance(body, str) or not body.strip():
        return None
    found = _LINE.match(body.strip().splitlines()[0].strip())
    if found is None:
        return None
    verb, task, rest = found.group(1), found.group(2), (found.group(3) or "").strip()
    named = _QUESTION.match(rest)
    question = named.group(1).upper() if named else None
    rest = rest[named.end() :].strip() if named else rest
    always = verb in ("approve", "allow") and re.match(r"always\b", rest) is not None
    note = rest[len("always") :].lstrip(" \t,:;-") if always else rest
    return Word(verb in ("approve", "allow"), task, always, reason=" ".join(visible(note).split())[:REASON_LIMIT],
                question=question)  # fmt: skip


def misread(body: object) -> str | None:
    """Why a comment whose first line begins as a word does (``/approve``) says none: what to
    write instead; ``None`` for a comment that does not begin so (the triggers' to look at)."""
    if not isinstance(body, str) or not body.strip():
        return None
    line = body.strip().splitlines()[0].strip()
    verb = _VERB.match(line)
    if verb is None or _LINE.match(line) is not None:
        return None
    said, name = visible(line)[:60], verb.group(1).lower()
    after = "a note" if name in ("approve", "allow") else "a reason"
    return (
        f"the comment's first line, {said!r}, says no word: write /{name} and a task's id, {after} after it if you like"
    )


@dataclass(frozen=True, slots=True)
class Comment:
    """Where a comment is, who wrote it, and what it is (GitHub's ``issue_comment`` payload)."""

    repository: str
    issue: int
    login: str
    association: str | None
    url: str | None
    id: int
    action: str


def dig(data: object, *path: str) -> object:
    for key in path:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def comment_of(payload: Mapping[str, Any]) -> Comment | None:
    """The comment a delivery is about; ``None`` when it lacks what GitHub always sends."""
    repository, issue = dig(payload, "repository", "full_name"), dig(payload, "issue", "number")
    login, number = dig(payload, "comment", "user", "login"), dig(payload, "comment", "id")
    association, url = dig(payload, "comment", "author_association"), dig(payload, "comment", "html_url")
    action = payload.get("action")
    if not (isinstance(repository, str) and _REPOSITORY.match(repository) and isinstance(login, str)):
        return None
    if not (_LOGIN.match(login) and isinstance(issue, int) and isinstance(number, int) and isinstance(action, str)):
        return None
    link = url if isinstance(url, str) and url.startswith("https://") and len(url) < 500 else None
    return Comment(repository, issue, login, association if isinstance(association, str) else None, link, number,
                   action)  # fmt: skip


def origin_of(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where a delivery that started a run came from: its repository and pull request or issue
    (``pull``: a pull request, whose branch a run's ``deliver: pr`` updates)."""
    repository = dig(payload, "repository", "full_name")
    number = next(
        (n for n in (dig(payload, "pull_request", "number"), dig(payload, "issue", "number"), payload.get("number"))
         if isinstance(n, int) and not isinstance(n, bool)),
        None,
    )  # fmt: skip
    if not isinstance(repository, str) or not _REPOSITORY.match(repository) or number is None:
        return None
    pull = isinstance(dig(payload, "pull_request", "number"), int) or isinstance(
        dig(payload, "issue", "pull_request"), dict
    )
    return {"repository": repository, "issue": number, **({"pull": True} if pull else {})}


def remember_origin(workspace: Workspace, launch: str, payload: Mapping[str, Any]) -> None:
    """Note, in the launch a delivery started, where it came from: its comments may answer its gates."""
    origin = origin_of(payload)
    if origin is None:
        return
    with launches.held(workspace):
        found = launches.read(workspace)
        for entry in found:
            if entry.get("id") == launch:
                entry["origin"] = origin
                launches.replace(workspace, found)
                return


def place(workspace: Workspace, words: GitHubWords) -> tuple[str | None, int | None]:
    """The repository and issue whose comments answer: the plan's, else the last GitHub run's."""
    repository, issue = words.repository, words.issue
    if repository is None:
        for entry in reversed(launches.read(workspace)):
            origin = entry.get("origin")
            if entry.get("source") == "github" and isinstance(origin, dict):
                repository, issue = str(origin.get("repository")), issue or origin.get("issue")
                break
    return repository, issue if isinstance(issue, int) else None


def take(
    workspace: Workspace, words: GitHubWords | None, payload: Mapping[str, Any], delivery: str, replies: Replies | None
) -> tuple[int, dict[str, Any]] | None:
    """What comes of an ``issue_comment`` delivery (its HTTP status and body), or ``None`` when its
    comment says no word (for the triggers to look at)."""
    body = dig(payload, "comment", "body")
    word, comment = parse(body), comment_of(payload)
    if comment is None:
        return None
    why = misread(body) if word is None else None
    if word is None and why is None:
        return None
    if words is None:
        return 202, {"ok": True, "ignored": "this plan takes no word from GitHub comments (approvals.github: false)"}
    if comment.action != "created":
        return 202, {"ok": True, "ignored": f"a comment {comment.action} says no word: only a new comment does"}
    repository, issue = place(workspace, words)
    here = f"{comment.repository}#{comment.issue}"
    if repository is None or repository.lower() != comment.repository.lower() or issue not in (None, comment.issue):
        theirs = f"{repository}#{issue}" if repository and issue else repository or "none"
        return 202, {"ok": True, "ignored": f"{here} is not where this plan's runs take words from ({theirs})"}
    if not words.allows(comment.login, comment.association):
        if replies is not None:
            replies.react(comment.repository, comment.id, "-1")
        who = ", ".join(sorted(words.associations | {f"@{login}" for login in words.logins}))
        return 403, {"ok": False, "error": f"@{comment.login} may not answer here: this plan takes words from {who}"}
    if word is None:  # (where words are taken, from one allowed to say them: what to write instead)
        return 422, {"ok": False, "error": why}
    with launches.held(workspace):
        if launches.seen(workspace, delivery) is not None:
            return 409, {"ok": False, "error": f"delivery {delivery} was taken before: a comment answers once"}
    said = say(workspace, word.task, word.approve, by=comment.login, via="github", source="github", url=comment.url,
               reason=word.reason, always=word.always, question=word.question)  # fmt: skip
    if said.ok:
        with launches.held(workspace):
            launches.taken(workspace, delivery)
    _reply(replies, comment, word, said)
    return said.status, said.as_json()


def _reply(replies: Replies | None, comment: Comment, word: Word, said: Said) -> None:
    if replies is None:
        return
    replies.react(comment.repository, comment.id, "+1" if said.ok else "confused")
    if not said.ok:
        verb = "approve" if word.approve else "reject"
        named = f" {word.question}" if word.question else ""
        replies.comment(comment.repository, comment.issue, f"`/{verb} {word.task}{named}`: {said.said}")
