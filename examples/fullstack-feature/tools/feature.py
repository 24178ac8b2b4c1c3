"""The offline stand-in for the agents of the full-stack example: one code generator per step.

    python3 tools/feature.py STEP      (spec, schema, repository, api, frontend, tests,
                                        check-frontend, docs, report)

Every step reads what earlier steps wrote under out/ and writes its own files there, as the agents
of claude/master_plan.md would; what it prints is the task's result. The generated code is real:
the tests step runs it.
"""

from __future__ import annotations

import html
import json
import os
import re
import sqlite3
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

OUT = Path("out")
SQL_TYPES = {"text": "TEXT", "url": "TEXT"}


def spec() -> dict:
    return json.loads((OUT / "spec.json").read_text(encoding="utf-8"))


def write(path: str, text: str) -> None:
    target = OUT / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"- wrote `{target}` ({len(text.splitlines())} lines)")


def step_spec() -> None:
    data = json.loads(Path("feature.json").read_text(encoding="utf-8"))
    names = [f["name"] for f in data["fields"]]
    assert len(names) == len(set(names)), "field names must be unique"
    assert all(re.fullmatch(r"[a-z_]+", n) for n in names), "field names must be lower_case"
    assert all(f["type"] in SQL_TYPES for f in data["fields"]), f"types must be one of {sorted(SQL_TYPES)}"
    OUT.mkdir(exist_ok=True)
    write("spec.json", json.dumps(data, indent=2) + "\n")
    print()
    print(f"Resource `{data['resource']}` (`/{data['plural']}`):")
    print()
    print("| Field | Type | Required |")
    print("|-------|------|----------|")
    for field in data["fields"]:
        print(f"| {field['name']} | {field['type']} | {'yes' if field['required'] else 'no'} |")
    print()
    print(f"**{len(names)} fields**")


def step_schema() -> None:
    s = spec()
    columns = ["    id INTEGER PRIMARY KEY AUTOINCREMENT"]
    for field in s["fields"]:
        columns.append(f"    {field['name']} {SQL_TYPES[field['type']]}{' NOT NULL' if field['required'] else ''}")
    sql = f"CREATE TABLE {s['plural']} (\n" + ",\n".join(columns) + "\n);\n"
    sqlite3.connect(":memory:").executescript(sql)  # proves the SQL is valid
    write("backend/schema.sql", sql)
    print()
    print("```sql\n" + sql + "```")
    print()
    print(f"**table {s['plural']}**, checked by SQLite")


def step_repository() -> None:
    s = spec()
    table, names = s["plural"], [f["name"] for f in s["fields"]]
    code = f'''"""Data access for {table}: parameterised SQL only."""

import sqlite3
from pathlib import Path

FIELDS = {names!r}
SCHEMA = (Path(__file__).parent / "schema.sql").read_text(encoding="utf-8")


def connect(path=":memory:"):
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    conn.executescript(SCHEMA)
    return conn


def create(conn, values):
    cursor = conn.execute(
        "INSERT INTO {table} ({", ".join(names)}) VALUES ({", ".join("?" for _ in names)})",
        [values.get(name) for name in FIELDS],
    )
    return get(conn, cursor.lastrowid)


def get(conn, item_id):
    row = conn.execute("SELECT * FROM {table} WHERE id = ?", (item_id,)).fetchone()
    return dict(row) if row else None


def list_all(conn):
    return [dict(row) for row in conn.execute("SELECT * FROM {table} ORDER BY id")]


def delete(conn, item_id):
    return conn.execute("DELETE FROM {table} WHERE id = ?", (item_id,)).rowcount == 1
'''
    write("backend/repository.py", code)
    print("- functions: `connect`, `create`, `get`, `list_all`, `delete`")
    print()
    print("**5 functions**, parameterised SQL only")


def step_api() -> None:
    s = spec()
    plural = s["plural"]
    required = [f["name"] for f in s["fields"] if f["required"]]
    urls = [f["name"] for f in s["fields"] if f["type"] == "url"]
    code = f'''"""The /{plural} endpoints as one function: handle(conn, method, path, body) -> (status, json)."""

import re

from repository import FIELDS, create, delete, get, list_all

REQUIRED = {required!r}
URL_FIELDS = {urls!r}


def validate(body):
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    for name in REQUIRED:
        if not str(body.get(name) or "").strip():
            return f"{{name}} is required"
    for name in URL_FIELDS:
        if body.get(name) and not re.match(r"https?://", body[name]):
            return f"{{name}} must start with http:// or https://"
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        return f"unknown fields: {{', '.join(unknown)}}"
    return None


def handle(conn, method, path, body=None):
    if path == "/{plural}":
        if method == "GET":
            return 200, list_all(conn)
        if method == "POST":
            problem = validate(body)
            return (400, {{"error": problem}}) if problem else (201, create(conn, body))
        return 405, {{"error": "method not allowed"}}
    match = re.fullmatch(r"/{plural}/(\\d+)", path)
    if not match:
        return 404, {{"error": "not found"}}
    item_id = int(match.group(1))
    if method == "GET":
        item = get(conn, item_id)
        return (200, item) if item else (404, {{"error": "not found"}})
    if method == "DELETE":
        return (204, None) if delete(conn, item_id) else (404, {{"error": "not found"}})
    return 405, {{"error": "method not allowed"}}
'''
    write("backend/api.py", code)
    print(f"- routes: `GET /{plural}`, `POST /{plural}`, `GET /{plural}/{{id}}`, `DELETE /{plural}/{{id}}`")
    print(f"- required fields: {', '.join(required)}; URL fields: {', '.join(urls) or 'none'}")
    print()
    print("**4 routes**")


def step_frontend() -> None:
    s = spec()
    inputs = []
    for field in s["fields"]:
        kind = "url" if field["type"] == "url" else "text"
        required = " required" if field["required"] else ""
        label = html.escape(field["name"].capitalize())
        inputs.append(f'    <label>{label} <input name="{field["name"]}" type="{kind}"{required}></label>')
    page = f"""<!doctype html>
<title>{s['plural'].capitalize()}</title>
<form id="new-{s['resource']}">
{chr(10).join(inputs)}
    <button>Add {s['resource']}</button>
</form>
<ul id="{s['plural']}"></ul>
<script>
const form = document.getElementById("new-{s['resource']}");
form.addEventListener("submit", async (event) => {{
  event.preventDefault();
  const body = Object.fromEntries(new FormData(form));
  const response = await fetch("/{s['plural']}", {{method: "POST", body: JSON.stringify(body)}});
  if (response.ok) location.reload(); else alert((await response.json()).error);
}});
</script>
"""
    write("frontend/index.html", page)
    print(f"- a form with {len(inputs)} fields that POSTs to `/{s['plural']}`")
    print()
    print(f"**{len(inputs)} inputs**")


def step_tests() -> None:
    s = spec()
    plural = s["plural"]
    good = {f["name"]: ("https://example.org" if f["type"] == "url" else f"a {f['name']}") for f in s["fields"]}
    first_required = next(f["name"] for f in s["fields"] if f["required"])
    code = f'''import unittest

from api import handle
from repository import connect

GOOD = {good!r}


class {plural.capitalize()}Test(unittest.TestCase):
    def setUp(self):
        self.conn = connect()

    def test_create_then_get(self):
        status, item = handle(self.conn, "POST", "/{plural}", GOOD)
        self.assertEqual(status, 201)
        self.assertEqual(handle(self.conn, "GET", f"/{plural}/{{item['id']}}"), (200, item))

    def test_list(self):
        handle(self.conn, "POST", "/{plural}", GOOD)
        status, items = handle(self.conn, "GET", "/{plural}")
        self.assertEqual((status, len(items)), (200, 1))

    def test_missing_required_field(self):
        body = dict(GOOD, {first_required}="")
        self.assertEqual(handle(self.conn, "POST", "/{plural}", body)[0], 400)

    def test_unknown_field(self):
        self.assertEqual(handle(self.conn, "POST", "/{plural}", dict(GOOD, colour="red"))[0], 400)

    def test_delete(self):
        _, item = handle(self.conn, "POST", "/{plural}", GOOD)
        path = f"/{plural}/{{item['id']}}"
        self.assertEqual(handle(self.conn, "DELETE", path)[0], 204)
        self.assertEqual(handle(self.conn, "GET", path)[0], 404)

    def test_unknown_path(self):
        self.assertEqual(handle(self.conn, "GET", "/nothing")[0], 404)
'''
    if any(f["type"] == "url" for f in s["fields"]):
        name = next(f["name"] for f in s["fields"] if f["type"] == "url")
        code += f'''
    def test_bad_url(self):
        self.assertEqual(handle(self.conn, "POST", "/{plural}", dict(GOOD, {name}="ftp://x"))[0], 400)
'''
    write("backend/test_api.py", code)
    run = subprocess.run(
        [sys.executable, "-m", "unittest", "-v", "test_api"], cwd=OUT / "backend", capture_output=True, text=True
    )
    ran = re.findall(r"^(test_\w+) .*\.\.\. (\w+)", run.stderr, re.M)
    print()
    print("| Test | Result |")
    print("|------|--------|")
    for name, outcome in ran:
        print(f"| {name} | {outcome} |")
    print()
    print(f"**{sum(o == 'ok' for _, o in ran)} of {len(ran)} tests passed**")
    if run.returncode:
        print("\n```\n" + run.stderr[-2000:] + "```")
    sys.exit(run.returncode)


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input":
            self.names.append(dict(attrs).get("name") or "")


def step_check_frontend() -> None:
    parser = _Inputs()
    parser.feed((OUT / "frontend/index.html").read_text(encoding="utf-8"))
    source = (OUT / "backend/repository.py").read_text(encoding="utf-8")
    fields = json.loads(re.search(r"^FIELDS = (.*)$", source, re.M).group(1).replace("'", '"'))
    print(f"- form inputs: {', '.join(parser.names)}")
    print(f"- API fields: {', '.join(fields)}")
    same = sorted(parser.names) == sorted(fields)
    print(f"- **{'match' if same else 'MISMATCH'}**: every form input is a field the API accepts, and back")
    sys.exit(0 if same else 1)


def step_docs() -> None:
    s = spec()
    p = s["plural"]
    rows = "\n".join(
        f"| `{f['name']}` | {f['type']} | {'yes' if f['required'] else 'no'} |" for f in s["fields"]
    )
    doc = f"""# {p.capitalize()} API

| Method | Path | Success | Errors |
|--------|------|---------|--------|
| GET | `/{p}` | 200, a list | |
| POST | `/{p}` | 201, the new {s['resource']} | 400 with `{{"error": ...}}` |
| GET | `/{p}/{{id}}` | 200, the {s['resource']} | 404 |
| DELETE | `/{p}/{{id}}` | 204 | 404 |

## Fields

| Field | Type | Required |
|-------|------|----------|
{rows}
"""
    write("docs/api.md", doc)
    print()
    print("**1 page**")


def step_report() -> None:
    print("| Step | Result |")
    print("|------|--------|")
    for path in os.environ["ORCHESTRATOR_INPUTS"].split("\n"):
        _, meta, body = Path(path).read_text(encoding="utf-8").split("---\n", 2)
        name = re.search(r"^name: (.*)$", meta, re.M).group(1)
        bold = re.findall(r"\*\*(.+?)\*\*", body)
        print(f"| {name} | {bold[-1] if bold else 'done'} |")
    print()
    print("Files of the feature:")
    print()
    for file in sorted(p for p in OUT.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        print(f"- `{file}`")


if __name__ == "__main__":
    globals()["step_" + sys.argv[1].replace("-", "_")]()
