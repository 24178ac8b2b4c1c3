"""A Condition is read or refused, never a hang, a traceback or a way out of the sandbox: what
would fill the memory (``'a' * 10**10``), reach a Python object (``cycler.__init__``), pass
Python's stack (thousands of nested brackets) or read a field no upstream declares is one line
of ``validate`` at its row, and what only a run's values can decide is decided in bounded time.

Real plans through the CLI; the language itself as values, and under hypothesis.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runner_helpers import cli, cli_in_process

from orchestrator.plan.table.conditions import Condition, ConditionError, compile_condition

PLAN = """---
backend: shell
retries: 0
---
## Task Decomposition
| Task ID | Command | Dependencies | Condition | Output |
|---------|---------|--------------|-----------|--------|
| T-01 | echo '{{"n": 1, "name": "x"}}' | None | | n:int, name |
| T-02 | echo two > two.txt | T-01 | {condition} | |
| T-03 | echo three | None | | |
"""

NESTED = "(" * 3000 + "T-01" + ")" * 3000


@pytest.mark.parametrize(
    ("condition", "said"),
    [
        ("'a' * 10**10 == 'b'", "it does arithmetic on 'a'"),
        ("[1] * 10**9 == [2]", "it does arithmetic on a list"),
        ("T-01.n > 10**1000**10", "is a number of more than 4096 bits: no run could compute it"),
        ("cycler.__init__.__globals__.os is defined", "it applies a test (is ...)"),
        ("cycler.__init__ == 1", "'cycler' in 'cycler.__init__ == 1' is no task of the plan"),
        ("T-01.name \\| attr('__class__') == 1", "it applies a filter (|)"),
        ("range(10**9) == 1", "calls a function"),
        ("_outcome['T-03'] == 'failed'", "'_outcome' in '_outcome['T-03'] == 'failed'' is no task of the plan"),
        ("(" * 30 + "T-01" + ")" * 30, "its brackets are nested more than 20 deep"),
        ("not " * 20 + "T-01", "it has more than 8 of not, - or + in a row"),
        (" and ".join(["T-01"] * 100), "it is nested more than 48 deep"),
        (NESTED, "the condition is 6004 characters long (at most 1000)"),
        ("T-01.n == " + "9" * 100_000, "the condition is 100010 characters long (at most 1000)"),
        ("T-01.n == 1e400", "it writes a number too large to hold"),
        ("T-03.n == 1", "T-02: T-03 declares no Output, so it has no field 'n' to read"),
        ('T-01.name == "{{ item }}"', "a Condition is not filled in, so {{ ... }} would be compared as its own text"),
    ],
)
def test_a_condition_that_would_hang_crash_or_escape_is_one_line_of_validate(
    tmp_path: Path, condition: str, said: str
) -> None:
    dependencies = "T-01, T-03" if "T-03" in condition else "T-01"
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    row = "| T-02 | echo two > two.txt | T-01 |"
    plan.write_text(PLAN.format(condition=condition).replace(row, f"| T-02 | echo two > two.txt | {dependencies} |"))
    before = plan.read_bytes()
    checked = cli_in_process(tmp_path, "validate")
    assert checked.code == 2, checked.stdout + checked.stderr
    first = checked.stderr.splitlines()[0]
    assert first.startswith(".orchestrator/master_plan.md:9: T-02: "), checked.stderr
    assert said in first, checked.stderr
    assert "Traceback" not in checked.stderr and len(first) < 2000
    ran = cli(tmp_path, "run")  # a plan validated by an older version: refused the same way, every run
    assert ran.code == 2 and "Traceback" not in ran.stderr, ran.stderr
    assert plan.read_bytes() == before and not (tmp_path / "two.txt").exists()
    assert not (tmp_path / ".orchestrator" / "results").exists()


@pytest.mark.parametrize(
    ("condition", "refused"),
    [
        pytest.param("(" * 20 + "T-01 completed" + ")" * 20, None, id="20-brackets"),
        pytest.param("(" * 21 + "T-01 completed" + ")" * 21, "its brackets are nested more than 20 deep", id="21"),
        pytest.param("[" * 20 + "T-01.n" + "]" * 20 + " != 1", None, id="20-lists"),
        pytest.param("T-01.name == '" + "(" * 30 + "'", None, id="brackets-in-a-string"),
        pytest.param("2**4095 > T-01.n", None, id="4096-bits"),
        pytest.param("2**4096 > T-01.n", "2 ** 4096 is a number of more than 4096 bits", id="4097-bits"),
        pytest.param("3**2584 > T-01.n", None, id="3**2584-4096-bits"),
        pytest.param("3**2585 > T-01.n", "3 ** 2585 is a number of more than 4096 bits", id="3**2585"),
        pytest.param("(2**2048 - 1) * 2**2048 > T-01.n", None, id="product-4096-bits"),
        pytest.param("2**2048 * 2**2048 > T-01.n", "is a number of more than 4096 bits", id="product-4097"),
        pytest.param("2**4095 + (2**4095 - 1) > T-01.n", None, id="sum-4096-bits"),
        pytest.param("2**4095 + 2**4095 > T-01.n", "is a number of more than 4096 bits", id="sum-4097"),
    ],
)
def test_a_conditions_limits_are_what_their_messages_say_at_both_edges(
    tmp_path: Path, condition: str, refused: str | None
) -> None:
    """20 brackets deep is read and 21 refused as "more than 20 deep" (the lookup a task id is
    made of counted no more); a number of 4,096 bits is held and one of 4,097 refused as "more
    than 4096 bits", whichever operator makes it."""
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    plan.write_text(PLAN.format(condition=condition), encoding="utf-8")
    checked = cli_in_process(tmp_path, "validate")
    if refused is None:
        assert checked.code == 0, checked.stderr
    else:
        assert checked.code == 2 and refused in checked.stderr.splitlines()[0], checked.stderr


def test_the_language_a_condition_has_still_reads_and_decides() -> None:
    ids = ["T-01", "T-02"]
    done = {"T-01": "completed", "T-02": "failed"}
    fields = {"T-01": {"n": 12, "ratio": 0.25, "tags": ["a", "b"], "deep": {"level": 3}, "s": "high"}}
    for text, holds in [
        ("T-01.n > -1 and T-02 failed", True),
        ("T-01.n * 2 == 24 and T-01.n ** 2 == 144 and T-01.n // 5 == 2 and T-01.n % 5 == 2", True),
        ("T-01.n / 4 == 3.0 and T-01.n - 2 >= 10 and +T-01.n == 12", True),
        ('T-01.s in ["high", "critical"] and "a" in T-01.tags and T-01.tags[1] == "b"', True),
        ("T-01.deep.level == 3 and T-01.deep['level'] != 4", True),
        ("not (T-01.ratio > 0.5) or T-02 completed", True),
        ("T-01.n ** 1000 > 1 and T-01.n < 10**1000", True),
    ]:
        assert compile_condition(text, ids, ids).evaluate(done, fields) is holds, text
    # What only a run's values can decide is decided, bounded: never computed past MAX_BITS.
    power = compile_condition("T-01.n ** T-01.big > 1", ids, ids)
    with pytest.raises(ConditionError, match=re.escape("12 ** 100000000 is a number of more than 4096 bits")):
        power.evaluate(done, {"T-01": {"n": 12, "big": 10**8}})
    repeat = compile_condition("T-01.s * T-01.n == 'b'", ids, ids)
    with pytest.raises(ConditionError, match="arithmetic is on numbers"):
        repeat.evaluate(done, {"T-01": {"s": "a", "n": 10**10}})
    # A field is a key, never a Python attribute of what the answer held.
    attribute = compile_condition("T-01.s.upper == 1", ids, ids)
    with pytest.raises(ConditionError):
        attribute.evaluate(done, {"T-01": {"s": "x"}})


_PIECES = st.sampled_from(
    ["T-01", "T-02", "T-01.n", "T-02.s", "T-01.n.x", " failed", " completed", " and ", " or ", "not ", "(", ")",
     "[", "]", ",", " == ", " != ", " > ", " <= ", " in ", " not in ", " * ", " ** ", " + ", " - ", " / ", " // ",
     " % ", " ~ ", " | ", "|attr('__class__')", " is defined", ".__class__", "cycler", "range(9)", "10", "10**10",
     "9" * 50, "1e400", "-", "'a'", '"b"', "[1]", "{}", "{{", "}}", "{%", "#}", "if", " else ", "true", "none",
     "_outcome", "_fields", ".", "'", '"', "\\", "\x00", "é", " "]
)  # fmt: skip
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["n", "s", "x"]), inner, max_size=3),
    max_leaves=8,
)
_OUTCOMES = st.sampled_from(["completed", "failed", "skipped", "bypassed", "rejected", "cancelled"])


@settings(max_examples=400, deadline=None)
@given(
    text=st.lists(_PIECES, min_size=1, max_size=40).map("".join) | st.text(max_size=60),
    outcomes=st.fixed_dictionaries({"T-01": _OUTCOMES, "T-02": _OUTCOMES}),
    outputs=st.fixed_dictionaries(
        {
            "T-01": st.none() | st.dictionaries(st.sampled_from(["n", "s", "x"]), _VALUES, max_size=3),
            "T-02": st.none() | st.dictionaries(st.sampled_from(["n", "s", "x"]), _VALUES, max_size=3),
        }
    ),
)
def test_any_condition_is_read_or_refused_and_decided_or_said_why(
    text: str, outcomes: dict[str, str], outputs: dict[str, Any]
) -> None:
    """Whatever is written: a ``Condition`` or a ``ConditionError``; whatever a run hands it: a
    bool or a ``ConditionError``. Never another exception (a traceback), never a hang."""
    try:
        condition = compile_condition(text, ["T-01", "T-02"], ["T-01", "T-02"])
    except ConditionError as exc:
        assert "\n" not in str(exc).strip() or "\n" in text
        return
    assert isinstance(condition, Condition)
    with contextlib.suppress(ConditionError):
        assert condition.evaluate(outcomes, outputs) in (True, False)


def test_a_sub_field_a_condition_reads_and_the_answer_lacks_is_said_in_the_plans_words() -> None:
    """``T-01.name.x.y`` where ``x`` is a number: where the path breaks and what stands there, not
    jinja's "'int object' has no attribute 'y'" (issue 78)."""
    ids = ["T-01", "T-02"]
    done = {"T-01": "completed"}
    for text, fields, said in [
        ("T-01.name.x.y == 1", {"name": {"x": 2}}, "T-01.name.x is a number: it has no field 'y'"),
        ("T-01.name.z == 1", {"name": {"x": 2}}, "T-01.name is an object (it has: x): it has no field 'z'"),
        ("T-01.list[3] == 1", {"list": [1, 2]}, "T-01.list is a list of 2: it has no item 3"),
    ]:
        with pytest.raises(ConditionError) as caught:
            compile_condition(text, ids, ids).evaluate(done, {"T-01": fields})
        assert str(caught.value) == f"{said}, which the condition reads ({text})", str(caught.value)
        assert "attribute" not in str(caught.value)
