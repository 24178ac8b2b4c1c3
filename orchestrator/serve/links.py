"""``/links/TOKEN``: a notification's approve, reject, allow or deny link (``state/words/links``).

Opening it (``GET``) shows what it would do and a button, and changes nothing: a chat's link
preview, a mail scanner or a prefetch acts on nothing. Only the button's ``POST`` acts, once:
the word is said as ``approve``/``reject`` or ``answer`` say it (``serve/words``), by ``link``, and
the link's pair is spent. The token is the link's whole credential: these routes need neither the
dashboard's token nor a loopback host (``app.Guard`` lets ``/links/`` through), and reach
nothing else of it. Every refusal is one line, and writes nothing: a token that is not one of this
workspace's (403), expired, used or withdrawn (410), or for a gate whose inputs changed, or a
question closed (409, naming the question the task asks now), as ``{"ok": false, "error": ...}``,
or for a browser as a page that says it, with the same status. What a link does is a small page
for a browser, JSON for a client that asks for it (``Accept: application/json``).
"""

from __future__ import annotations

import html
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from orchestrator.errors import OrchestratorError
from orchestrator.run.inflight.asking import chosen
from orchestrator.serve.board import Board
from orchestrator.serve.words import Said, say
from orchestrator.state.plans import plan_of
from orchestrator.state.words import links
from orchestrator.state.workspace import Workspace

PREFIX = "/links/"
_TITLE = {"approve": "Approve", "reject": "Reject", "allow": "Allow", "deny": "Deny", links.RAISE: "Raise"}


class Links:
    """The link routes of one server, over its workspace's ``board``."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.lock = anyio.Lock()  # (and ``links.held`` across processes)

    def routes(self) -> list[Route]:
        return [Route(PREFIX + "{token}", self.page, methods=["GET", "HEAD"]), Route(PREFIX + "{token}", self.act,
                                                                                     methods=["POST"])]  # fmt: skip

    async def page(self, request: Request) -> Response:
        token = request.path_params["token"]
        found = await anyio.to_thread.run_sync(shown, self.board.workspace, token)
        return _answer(request, found)

    async def act(self, request: Request) -> Response:
        token = request.path_params["token"]
        async with self.lock:
            found = await anyio.to_thread.run_sync(used, self.board.workspace, token)
        return _answer(request, found)


def _check(workspace: Workspace, token: str) -> links.Claims | Said:
    try:
        return links.check(workspace, token)
    except links.LinkRefused as exc:
        return Said(False, str(exc), exc.http_status)


def shown(workspace: Workspace, token: str) -> Said:
    """What the link would do, if it still can (the page's text): nothing written."""
    claims = _check(workspace, token)
    if isinstance(claims, Said):
        return claims
    if claims.action == links.RAISE:
        return _budget_shown(workspace, claims)
    try:
        plan = plan_of(workspace)
    except OrchestratorError as exc:
        return Said(False, f"the plan does not load: {str(exc).splitlines()[0]}", 409)
    task = plan.tasks.get(claims.task)
    if task is None:
        return Said(False, f"no task {claims.task} in the plan any more", 409)
    word = _TITLE.get(claims.action, claims.action)
    if claims.question:  # (bound to its question: closed, it is refused naming what the task asks now)
        asked = chosen(workspace, task.id, claims.on)
        if isinstance(asked, str):
            return Said(False, asked, 409)
        return Said(True, f"{word}: {task.id} {task.title} — its agent asks {asked.short}: {asked.said}")
    changed = _inputs_changed(workspace, plan, task, claims.on)
    if changed:
        return Said(False, changed, 409)
    gate = "start it (its gate before it starts)" if task.approval == "before" else "accept its result"
    return Said(True, f"{word}: {task.id} {task.title} — {gate}")


def _budget_shown(workspace: Workspace, claims: links.Claims) -> Said:
    """What a budget link would do: raise the budget of the run it was sent for, while that run goes on."""
    from orchestrator.run.inflight.budgeting import standing

    try:
        planned = plan_of(workspace).settings.max_cost  # (the run's own, unless its command line gave one)
    except OrchestratorError:
        planned = None
    found = standing(workspace, planned)
    if found["run"] != claims.task:
        return Said(False, f"the run this link was sent for ({claims.task}) is not going on any more: "
                           "a run's budget is the plan's max_cost (or `run --max-cost`)", 409)  # fmt: skip
    spent, limit = found["spent"], found["limit"]
    of = f" of ${limit:.2f}" if limit is not None else ""
    return Said(True, f"Raise: the budget of the run going on by ${claims.on.lstrip('+')} (${spent:.4f} spent{of})")


def _raised(workspace: Workspace, claims: links.Claims) -> Said:
    """The budget raised by the link's amount, as ``orchestrator budget +USD`` raises it (the
    command itself, by the link), and the link spent."""
    from orchestrator.commands.budgeting import budget
    from orchestrator.commands.calling import Call
    from orchestrator.commands.options import Arguments

    call = Call(Arguments({"amount": claims.on}), "link", str(workspace.root), _workspace=workspace)
    try:
        raised = budget(call)
    except OrchestratorError as exc:
        return Said(False, str(exc), exc.http_status)
    links.spend(workspace, claims)
    return Said(True, raised.shown().strip() if raised.shown else "")


def _inputs_changed(workspace: Workspace, plan: Any, task: Any, seen: str) -> str | None:
    from orchestrator.run.resume.basis import inputs_now
    from orchestrator.state import approvals
    from orchestrator.state.status import read_records

    now = inputs_now(plan, workspace, read_records(plan, workspace))(task)
    if approvals.same_inputs(seen, now):
        return None
    return f"{task.id}'s inputs changed since this link was made: it is asked again, with a new link"


def used(workspace: Workspace, token: str) -> Said:
    """The link's word said, once: checked as its page is (a token that is none touches nothing,
    not even the lock), checked again under the links' lock, then spent if it held."""
    first = shown(workspace, token)  # (forged, expired, used, inputs changed: refused, untouched)
    if not first.ok:
        return first
    with links.held(workspace):
        claims = _check(workspace, token)
        if isinstance(claims, Said):
            return claims
        if claims.action == links.RAISE:
            return _raised(workspace, claims)
        approve = claims.action in ("approve", "allow")
        said = say(
            workspace, claims.task, approve, by="link", via="link", source="link",
            inputs_seen=None if claims.question else claims.on, question=claims.on if claims.question else None,
        )  # fmt: skip
        if said.ok:
            links.spend(workspace, claims)
        return said


def _answer(request: Request, said: Said) -> Response:
    """A page for a browser (one that says it takes ``text/html``: a used link opened again reads
    as a page too), JSON for a client that asks for it; a refusal to anything else is JSON, as
    every door's."""
    accept = request.headers.get("accept", "")
    browser = "text/html" in accept
    if (not said.ok and not browser) or ("application/json" in accept and not browser):
        return JSONResponse(said.as_json(), 200 if said.ok else said.status)
    return HTMLResponse(_html(said, request.method in ("GET", "HEAD")), 200 if said.ok else said.status)


def _html(said: Said, asking: bool) -> str:
    text = html.escape(said.said)
    if not said.ok:
        body = f"<h1>Not done</h1><p>{text}</p><p>Nothing was changed.</p>"
    elif asking:
        word = text.split(":", 1)[0]
        body = f'<p>{text}</p><form method="post"><button type="submit">{word}</button></form>'
    else:
        started = f"<p>{html.escape(_started(said.started))}</p>" if said.started else ""
        body = f"<h1>Done</h1><p>{text}</p>{started}"
    head = '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
    return f"<!doctype html><html><head>{head}<title>orchestrator</title></head><body>{body}</body></html>"


def _started(started: dict[str, Any] | str | None) -> str:
    if isinstance(started, dict):
        return f"A run started to take it (pid {started.get('pid')})."
    return f"No run could start to take it: {started}" if started else ""
