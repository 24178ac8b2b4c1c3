"""The fast YAML writer must read back, through PyYAML, exactly as it was written."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import documents
from orchestrator.state import store
from orchestrator.yamlio import dump

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["yes", "No", "null", "~", "1:30", "0x1f", "1e3", ".inf", "- x", "a: b", "#x", "T-01", "", " a"])
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(min_size=1, max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _normal(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_normal(v) for v in value]
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=8))
def test_dump_round_trips_through_pyyaml(data: dict[str, Any]) -> None:
    assert yaml.safe_load(dump(data) or "{}") == _normal(data)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=8), st.text(max_size=200))
def test_frontmatter_document_round_trips(meta: dict[str, Any], body: str) -> None:
    parsed_meta, parsed_body = documents.parse(documents.compose(meta, body))
    assert parsed_meta == _normal(meta)
    # python-frontmatter turns CRLF into LF (frontmatter.util.u), as reading a file as text does.
    assert parsed_body == body.replace("\r\n", "\n").strip()


def test_readable_output() -> None:
    text = dump({"task": "T-01", "agent": "Agent-01", "dependencies": ["T-02"], "started": "2026-11-21T06:11:41"})
    assert text == 'task: T-01\nagent: Agent-01\ndependencies:\n- T-02\nstarted: "2026-11-21T06:11:41"'


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=6), st.text(max_size=300))
def test_read_body_matches_the_frontmatter_parser(meta: dict[str, Any], body: str) -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "result.md"
        path.write_text(documents.compose(meta, body), encoding="utf-8")
        document = documents.read_document(path)
        assert document is not None
        assert documents.read_body(path) == document[1]


_CLOSING_FENCE = re.compile(r"^---[ \t]*$\r?\n?", re.M)


_FENCE_LINES = st.sampled_from(["---", "--- ", "---\t \t", "----", "--", "---x", "--- x", " ---", "---\r", "", "x"])


@settings(max_examples=500, deadline=None)
@given(st.lists(_FENCE_LINES | st.text(alphabet="-\r\t xé🤖", max_size=6), min_size=1, max_size=8), st.data())
def test_closing_fence_end_is_the_regex(lines: list[str], data: st.DataObject) -> None:
    text = "\n".join(lines)
    newlines = [i for i, char in enumerate(text) if char == "\n"] or [len(text)]
    if newlines == [len(text)]:
        text += "\n"
    newline = data.draw(st.sampled_from(newlines))  # the scan starts at a newline, as read_body calls it
    match = _CLOSING_FENCE.search(text, newline + 1)
    assert documents.closing_fence_end(text, newline) == (match.end() if match else None)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=8))
def test_load_simple_agrees_with_pyyaml_or_declines(data: dict[str, Any]) -> None:
    from orchestrator.yamlio import load_simple

    text = dump(data)
    fast = load_simple(text.splitlines(keepends=True))
    if fast is not None:
        assert fast == yaml.safe_load(text or "{}")


def test_load_simple_reads_a_real_result_header() -> None:
    from orchestrator.yamlio import load_simple

    meta = {
        "task": "T-01", "agent": "Agent-01", "status": "completed", "attempts": 1, "exit_code": 0,
        "reason": None, "started": "2026-11-21T06:11:41.252+00:00", "duration": 0.313, "backend": "shell",
        "fingerprint": "6fe75a5bed842b5e", "tokens": {"input": 100, "output": 20}, "cost_usd": 0.0008,
        "logs": [".orchestrator/logs/agent-01.attempt-1.out"],
    }  # fmt: skip
    assert load_simple(dump(meta).splitlines(keepends=True)) == meta
    assert load_simple(["status: completed  # a comment\n"]) is None  # hand edits go to PyYAML


_plain_keys = st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_plain_keys, _values, max_size=8))
def test_load_simple_agrees_with_pyyaml_on_plain_keys(data: dict[str, Any]) -> None:
    from orchestrator.yamlio import load_simple

    text = dump(data)
    fast = load_simple(text.splitlines(keepends=True))
    if fast is not None:
        assert fast == yaml.safe_load(text or "{}")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=8), st.integers(min_value=0, max_value=5))
def test_remembered_strings_change_no_output(data: dict[str, Any], limit: int) -> None:
    """Strings are written from a bounded memo once seen; a warm, cold or overflowing memo writes
    the same YAML (``limit`` 0 turns it into a memo that is cleared on every new string)."""
    from orchestrator import yamlio as yamlout

    yamlout._STRINGS.clear()
    cold = dump(data)
    assert dump(data) == cold
    original = yamlout._STRINGS_LIMIT
    yamlout._STRINGS_LIMIT = limit
    try:
        yamlout._STRINGS.clear()
        assert dump(data) == cold
        assert len(yamlout._STRINGS) <= max(limit, 1)
    finally:
        yamlout._STRINGS_LIMIT = original
    assert yaml.safe_load(cold or "{}") == _normal(data)


def _reference_string(value: str) -> str:
    from orchestrator import yamlio as yamlout

    if yamlout._PLAIN.fullmatch(value) and not value.endswith(" ") and value.lower() not in yamlout._SPECIAL:
        return value
    if yamlout._UNSAFE.search(value):
        return yamlout._quoted(value)
    return json.dumps(value, ensure_ascii=False)


def _reference_dump(data: Mapping[Any, Any], indent: str = "") -> list[str]:
    """The writer as it was before its fast paths: isinstance dispatch, json.dumps, no memo."""
    from orchestrator.yamlio import _flow, scalar

    def item(value: Any) -> str:
        return _reference_string(str(value)) if isinstance(value, str) else scalar(value)

    out: list[str] = []
    for key, value in data.items():
        name = _reference_string(str(key))
        if isinstance(value, Mapping):
            out += [f"{indent}{name}:", *_reference_dump(value, indent + "  ")] if value else [f"{indent}{name}: {{}}"]
        elif isinstance(value, list | tuple):
            out.append(f"{indent}{name}:" if value else f"{indent}{name}: []")
            out += [f"{indent}- {_flow(v) if isinstance(v, Mapping | list | tuple) else item(v)}" for v in value]
        else:
            out.append(f"{indent}{name}: {item(value)}")
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12) | st.sampled_from(["task", "inputs"]),
        _values | st.lists(_scalars, max_size=3).map(tuple) | st.dictionaries(st.text(max_size=5), _values, max_size=3),
        max_size=8,
    )
)
def test_dump_writes_what_the_plain_writer_wrote(data: dict[str, Any]) -> None:
    assert dump(data) == "\n".join(_reference_dump(data))
    assert dump(data) == "\n".join(_reference_dump(data))  # from the memo this time


def test_remembered_strings_keep_the_quoting_of_each_string() -> None:
    from orchestrator import yamlio as yamlout

    yamlout._STRINGS.clear()
    meta = {"name": "yes", "agent": "Agent-01", "inputs": [".orchestrator/results/a.md", "yes"], "x": {"yes": "no"}}
    first = dump(meta)
    assert first == dump(meta)
    assert first == (
        'name: "yes"\nagent: Agent-01\ninputs:\n- ".orchestrator/results/a.md"\n- "yes"\nx:\n  "yes": "no"'
    )


@settings(max_examples=300)
@given(st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=8), st.text(max_size=200))
def test_compose_writes_what_python_frontmatter_writes(meta: dict[str, Any], body: str) -> None:
    import frontmatter

    from orchestrator.yamlio import handler

    post = frontmatter.Post(body)
    post.metadata.update(meta)
    expected = frontmatter.dumps(post, handler=handler())
    assert documents.compose(meta, body) == (expected if expected.endswith("\n") else expected + "\n")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "é", "\r", "\n", "\r\n", "-", " ", "\x00", "😀"]), max_size=60).map("".join))
def test_read_text_reads_as_path_read_text(text: str) -> None:
    """Newlines as universal-newline reading gives them, whatever mix of \\r and \\n."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "brief.md"
        path.write_bytes(text.encode("utf-8"))
        assert documents.read_text(path) == path.read_text(encoding="utf-8")


def test_read_text_of_what_cannot_be_read_is_none(tmp_path: Any) -> None:
    (tmp_path / "latin1.md").write_bytes("café".encode("latin-1"))
    assert documents.read_text(tmp_path / "latin1.md") is None
    assert documents.read_text(tmp_path / "missing.md") is None
    assert documents.read_text(tmp_path) is None  # a directory
    assert documents.read_body(tmp_path / "latin1.md") is None


def test_a_write_told_its_directory_exists_makes_it_again_when_it_is_gone(tmp_path: Any) -> None:
    """The runner lists results/ once and then writes without a mkdir: someone may remove it meanwhile."""
    path = tmp_path / "results" / "agent-01-result.md"
    store.write_text(
        path, documents.compose({"task": "T-01"}, "# done\n"), durable=False, parent_exists=True, exists=False
    )
    assert documents.read_document(path) == ({"task": "T-01"}, "# done")


_FLAT_KEY_LIST = ["backend", "max_parallel", "timeout", "x_1", "_a", "a-b", "on", "Yes", "null", "y", "N", "1a", "k k",
                  " k", "ké"]  # fmt: skip
_FLAT_VALUE_LIST = (
    ["shell", "claude", "2", "0", "-3", "007", "010", "08", "-012", "+4", "1_000",
     "4.00", "-0.5", "00.5", "1.", ".5", "1e3", "1.5e+3",
     "30m", "1.5h", "10min", "0x1f", "0xff", "0XFF", "0b", "0o17", "1:30", "2026-11-22", "none", "None", "nan", ".nan",
     "inf", ".inf", "y", "n", "yes", "Yes", "YES", "yEs", "on", "OFF", "true", "False", "TRUE", "null", "Null", "~",
     "Run the tests", "a  b", "a, b", "a: b", "a #c", "a#b", "(x)", "a/b.c", "@x", "=", "<<", "-", "- x", "[1]", "{}",
     '"quoted"', '"with \\" quote"', '"esc \\n"', "'single'", "'it''s'", '""', "''", '"a\'b"', "'", "\"", "é",
     "x\t", "", " padded "]
)  # fmt: skip
_FLAT_KEYS = st.sampled_from(_FLAT_KEY_LIST)
_FLAT_VALUES = st.sampled_from(_FLAT_VALUE_LIST)


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(
        st.tuples(_FLAT_KEYS, st.sampled_from([": ", ":  ", ":", " : "]), _FLAT_VALUES | st.text(max_size=8))
        | st.sampled_from(["", "   ", "# comment", "  nested: 1", "- item", "...", "%YAML 1.1"]),
        max_size=6,
    )
)
def test_load_flat_agrees_with_pyyaml_or_declines(rows: list[tuple[str, str, str] | str]) -> None:
    from orchestrator.yamlio import load_flat

    lines = [("".join(row) if isinstance(row, tuple) else row) + "\n" for row in rows]
    ours = load_flat(lines)
    if ours is None:
        return
    assert ours == (yaml.load("".join(lines), Loader=yaml.SafeLoader) or {})
    assert all(type(ours[k]) is type(v) for k, v in (yaml.safe_load("".join(lines)) or {}).items())


def test_load_flat_agrees_with_pyyaml_on_every_key_and_value_here() -> None:
    """Every key, separator and value above, one line each: exhaustive, where the test before
    samples combinations of lines."""
    from orchestrator.yamlio import load_flat

    understood = 0
    for key in _FLAT_KEY_LIST:
        for separator in (": ", ":  ", ":", " : "):
            for value in _FLAT_VALUE_LIST:
                line = f"{key}{separator}{value}\n"
                ours = load_flat([line])
                if ours is not None:
                    understood += 1
                    theirs = yaml.load(line, Loader=yaml.SafeLoader)
                    assert ours == theirs and type(ours[key]) is type(theirs[key]), line
    assert understood > 500  # the common shapes are read without PyYAML


def test_load_flat_reads_a_plans_settings() -> None:
    from orchestrator.yamlio import load_flat

    lines = ["backend: shell\n", "max_parallel: 2\n", "retries: 0\n", "timeout: none\n", "inactivity_timeout: 10m\n",
             "fail_fast: true\n", "max_cost: 4.00\n", 'name: "x y"\n']  # fmt: skip
    assert load_flat(lines) == {
        "backend": "shell", "max_parallel": 2, "retries": 0, "timeout": "none", "inactivity_timeout": "10m",
        "fail_fast": True, "max_cost": 4.0, "name": "x y",
    }  # fmt: skip
    assert load_flat(["env: {A: 1}\n"]) is None and load_flat(["x: 1  # note\n"]) is None
