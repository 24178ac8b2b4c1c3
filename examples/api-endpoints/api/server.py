"""A tiny JSON API to test: items with a name and a price, kept in memory (standard library only).

    python3 api/server.py --port-file PATH [--lifetime SECONDS]

Listens on 127.0.0.1 on a free port, writes the port number to PATH once it accepts connections,
and serves until SIGTERM, SIGINT, or --lifetime seconds (a safety net: it never outlives a test run
by long even if nobody stops it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ITEMS: dict[int, dict[str, Any]] = {
    1: {"id": 1, "name": "Pencil", "price": 1.5},
    2: {"id": 2, "name": "Notebook", "price": 4.0},
}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def item_id(self) -> int | None:
        match = re.fullmatch(r"/items/(\d+)", self.path)
        return int(match.group(1)) if match else None

    def do_GET(self) -> None:
        if self.path == "/health":
            return self.reply(200, {"status": "ok"})
        if self.path == "/items":
            with LOCK:
                return self.reply(200, list(ITEMS.values()))
        item_id = self.item_id()
        with LOCK:
            item = ITEMS.get(item_id) if item_id is not None else None
        if item is None:
            return self.reply(404, {"error": "not found"})
        return self.reply(200, item)

    def do_POST(self) -> None:
        if self.path != "/items":
            return self.reply(404, {"error": "not found"})
        try:
            data = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        except ValueError:
            return self.reply(400, {"error": "the body is not JSON"})
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"].strip():
            return self.reply(400, {"error": "name is required"})
        price = data.get("price")
        if not isinstance(price, int | float) or isinstance(price, bool) or price < 0:
            return self.reply(400, {"error": "price must be a number of at least 0"})
        with LOCK:
            item = {"id": max(ITEMS, default=0) + 1, "name": data["name"].strip(), "price": price}
            ITEMS[item["id"]] = item
        return self.reply(201, item)

    def do_DELETE(self) -> None:
        item_id = self.item_id()
        with LOCK:
            found = item_id is not None and ITEMS.pop(item_id, None) is not None
        return self.reply(204) if found else self.reply(404, {"error": "not found"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--lifetime", type=float, default=300.0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # Stop at once on SIGTERM/SIGINT or when the lifetime is over: all state is in memory anyway.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    threading.Timer(args.lifetime, os._exit, (0,)).start()
    temp = f"{args.port_file}.tmp"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(f"{server.server_address[1]}\n")
    os.replace(temp, args.port_file)  # readers never see a half-written port
    server.serve_forever()


if __name__ == "__main__":
    main()
