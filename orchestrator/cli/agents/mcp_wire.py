"""The stdio wire of ``orchestrator mcp``: JSON-RPC messages, one a line, on the process's stdin and
stdout, with every line that is not one answered as JSON-RPC 2.0 says (the SDK's own transport
drops it without a word, so a client waiting on its id waits forever).

    not JSON                      -32700 Parse error, id null
    not an object (``42``, ``[]``) -32600 Invalid Request, id null (MCP takes no batches)
    no ``"jsonrpc": "2.0"``, an id that is no string or integer, neither a method nor a result
    or an error, or a message MCP does not read
                                  -32600 Invalid Request, with its id when it has a usable one
    a string that is no text (a lone surrogate, ``"\\ud800"``, which the SDK cannot read)
                                  -32602 Invalid params, naming where it is, as ``NotText`` says
                                  it on every other door (422, exit 2)

While it serves, fd 0 reads the null device and fd 1 writes to stderr, so that nothing a command
prints, nor a child it starts, reaches the wire; the wire is served from duplicates of both.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio


def problem(line: str) -> tuple[int, str, object] | None:
    """Why ``line`` is no JSON-RPC message MCP reads: (code, message, the id to answer with); None: it is one."""
    import mcp_types as types

    try:
        found = json.loads(line)
    except (ValueError, RecursionError):
        return -32700, "Parse error: the line is not JSON", None
    if not isinstance(found, dict):
        what = "a batch (an array): MCP takes one message a line" if isinstance(found, list) else "not an object"
        return -32600, f"Invalid Request: {what}", None
    ident = found.get("id")
    usable = ident if isinstance(ident, str | int) and not isinstance(ident, bool) else None
    if "id" in found and usable is None and ident is not None:
        return -32600, "Invalid Request: an id is a string or an integer", None
    if found.get("jsonrpc") != "2.0":
        return -32600, 'Invalid Request: "jsonrpc" must be "2.0"', usable
    if not any(key in found for key in ("method", "result", "error")):
        return -32600, "Invalid Request: a message has a method, a result or an error", usable
    fault = _not_text(found, "")
    if fault is not None:
        return -32602, f"Invalid params: {fault} — give UTF-8 text; nothing was written", usable
    try:
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except Exception:
        return -32600, "Invalid Request: not a message of the Model Context Protocol", usable
    return None


def _not_text(data: object, where: str) -> str | None:
    """Where ``data`` holds a string that is no text, and what is wrong with it (``None``: nowhere).
    A NUL is text JSON carries: the command's own check says what it makes of one."""
    from orchestrator.errors import NotText

    if isinstance(data, str):
        try:
            data.encode("utf-8")
            return None
        except UnicodeEncodeError:
            return f"{where or 'a value'} is not text ({NotText.fault(data)})"
    pairs = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in pairs:
        place = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)
        found = _not_text(key, f"a key of {where or 'the message'}") or _not_text(value, place)
        if found is not None:
            return found
    return None


def answer(code: int, message: str, ident: object) -> str:
    """The JSON-RPC error answering a line, as one line."""
    return json.dumps({"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}) + "\n"


class Wire:
    """The two ends of the wire: lines read (``lines``: the ones MCP reads; the others answered),
    and lines written whole, one at a time."""

    def __init__(self, stdin: Any, stdout: Any) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.lock = anyio.Lock()

    async def write(self, text: str) -> None:
        async with self.lock:
            await self.stdout.write(text)

    async def flush(self) -> None:
        async with self.lock:
            await self.stdout.flush()

    async def lines(self) -> AsyncIterator[str]:
        async for line in self.stdin:
            if not line.strip():
                continue
            wrong = problem(line)
            if wrong is None:
                yield line
                continue
            async with self.lock:
                await self.stdout.write(answer(*wrong))
                await self.stdout.flush()

    def __aiter__(self) -> AsyncIterator[str]:
        return self.lines()


@contextlib.contextmanager
def claimed() -> Iterator[Wire]:
    """The wire on duplicates of fd 0 and 1, with fd 0 reading the null device and fd 1 writing to
    stderr while it is held: what a command prints, or a child it starts, never reaches the wire."""
    import io

    wire_in, wire_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    sys.stdout.flush()
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
    finally:
        os.close(null)
    reader = io.TextIOWrapper(os.fdopen(wire_in, "rb"), encoding="utf-8", errors="replace")
    writer = io.TextIOWrapper(os.fdopen(wire_out, "wb"), encoding="utf-8", write_through=True)
    try:
        yield Wire(anyio.wrap_file(reader), anyio.wrap_file(writer))
    finally:
        with contextlib.suppress(OSError):
            writer.flush()
        for fd, original in ((0, reader), (1, writer)):
            with contextlib.suppress(OSError, ValueError):
                os.dup2(original.fileno(), fd)
        with contextlib.suppress(OSError, ValueError):
            reader.close()
            writer.close()
