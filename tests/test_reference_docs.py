"""The reference docs read as reference: cli-integration.md has a section per command whose options
table is the parser's (so it cannot drift), every table cell is short, and a fact said once.

The docs' runnable blocks and the tables compared with code (settings, task types, modes) are
tested in test_docs.py, test_task_types.py and test_doctor.py; their links in test_skill.py.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.cli.commands import Parser, build_parser
from orchestrator.plan.markdown import normalize_heading
from orchestrator.plan.table.columns import COLUMNS, ID_GUESSES
from orchestrator.vocabulary import ExitCode

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "SKILL.md", "workflow.md", "cli-integration.md", "templates.md", "examples.md")
REFERENCE = ROOT / "cli-integration.md"
LONGEST_CELL = 400  # characters: a longer explanation is prose under its table

# Options every command takes, said once at the head of "Commands" rather than in each table.
EVERY_COMMAND = {"-h", "--help", "--json"}
# Options a parser hides (argparse.SUPPRESS) that are no one's to type: each is decided here.
INTERNAL = {
    ("run", "--launch"),  # run/launch/background's detached runner: its entry in state/launches.json
    ("spawn", "--task"),  # spawn --detach's background runner: the task it sees through...
    ("spawn", "--since"),  # ...and the event log's offset the task was added at
}


def without_fences(text: str) -> str:
    """``text`` with every fenced block blanked: the same length, each character a space but newlines."""
    return re.sub(r"^(`{3,}|~{3,}).*?^\1", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S | re.M)


def cells(row: str) -> list[str]:
    """A markdown table row's cells (``\\|`` is a pipe inside a cell)."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip().strip("|"))]


def table_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    for number, line in enumerate(without_fences(text).split("\n"), 1):
        if line.startswith("|") and not re.fullmatch(r"\|[\s:|-]*", line.strip()):
            yield number, cells(line)


# --- the parser --------------------------------------------------------------------------------


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every command the parser has, by name (``schedule``, not ``schedule add``)."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def parser_options(parser: argparse.ArgumentParser) -> dict[str, bool]:
    """Each option string of a command and of its sub-commands: whether argparse hides it."""
    found: dict[str, bool] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found.update(parser_options(child))
        for option in action.option_strings:
            found[option] = action.help == argparse.SUPPRESS
    return found


# --- cli-integration.md's command sections -----------------------------------------------------


@dataclass(frozen=True)
class Section:
    name: str
    line: int
    text: str  # the section's lines, fenced blocks included


def commands_part() -> str:
    """cli-integration.md's "Commands", up to the next ``##`` heading (not a line of a fenced block)."""
    text = REFERENCE.read_text(encoding="utf-8")
    blanked = without_fences(text)
    start = blanked.index("\n## Commands\n")
    end = blanked.index("\n## ", start + 1)
    return text[start:end]


def command_sections() -> dict[str, Section]:
    part = commands_part()
    first = REFERENCE.read_text(encoding="utf-8").index(part)
    first = REFERENCE.read_text(encoding="utf-8")[:first].count("\n")
    found: dict[str, Section] = {}
    matches = list(re.finditer(r"^### `([a-z-]+)`\n", part, re.M))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(part)
        name = match.group(1)
        assert name not in found, f"cli-integration.md: two sections for `{name}`"
        found[name] = Section(name, first + part[: match.start()].count("\n") + 1, part[match.start() : end])
    return found


def options_table(section: Section) -> list[list[str]]:
    """The rows of the section's ``| Option | Meaning |`` table (none: no table)."""
    lines = without_fences(section.text).split("\n")
    tables = [i for i, line in enumerate(lines) if re.fullmatch(r"\| *Option *\| *Meaning *\|", line.strip())]
    assert len(tables) <= 1, f"cli-integration.md: `{section.name}` has {len(tables)} options tables"
    if not tables:
        return []
    rows = []
    for line in lines[tables[0] + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return rows


def documented_options(section: Section) -> set[str]:
    found: set[str] = set()
    for row in options_table(section):
        spans = re.findall(r"`([^`]+)`", row[0])
        assert spans, f"cli-integration.md: `{section.name}`: an option cell with no option: {row[0]}"
        for span in spans:
            found.update(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", span))
    return found


def test_every_command_has_one_section_and_a_line_in_the_index() -> None:
    sections = command_sections()
    assert set(sections) == set(commands()), set(sections) ^ set(commands())
    index = commands_part().split("\n### ", 1)[0]
    for name in commands():
        assert re.search(rf"^- \[`{name}`\]\(#{name}\): ", index, re.M), f"the command index has no line for {name}"


@pytest.mark.parametrize("name", sorted(commands()))
def test_the_options_table_is_the_parsers(name: str) -> None:
    """Every option the parser has is in the command's table and every option the table names is
    the parser's: a new option without a row, or a row left for an option gone, fails here."""
    parser = commands()[name]
    section = command_sections()[name]
    options = parser_options(parser)
    hidden = {option for option, suppressed in options.items() if suppressed and option not in EVERY_COMMAND}
    internal = {option for command, option in INTERNAL if command == name}
    assert internal <= hidden, f"{name}: {internal - hidden} is internal here but the parser shows it"
    wanted = set(options) - EVERY_COMMAND - internal
    documented = documented_options(section)
    assert documented == wanted, (
        f"cli-integration.md:{section.line}: `{name}`'s options table: missing {sorted(wanted - documented)}, "
        f"not the parser's {sorted(documented - wanted)}"
    )


def test_every_hidden_option_is_decided() -> None:
    """An option a parser hides is either documented (``plan --dir``, the old spelling) or listed in
    ``INTERNAL`` with why: never left out of the docs by accident."""
    sections = command_sections()
    for name, parser in commands().items():
        for option, suppressed in parser_options(parser).items():
            if suppressed and option not in EVERY_COMMAND:
                assert (name, option) in INTERNAL or option in documented_options(sections[name]), (name, option)


def test_options_every_command_takes_are_said_once() -> None:
    head = commands_part().split("\n### ", 1)[0]
    assert "`--json`" in head and "`--help`" in head and "`orchestrator --version`" in head


@pytest.mark.parametrize("name", sorted(commands()))
def test_a_command_section_has_its_synopsis_an_example_and_its_exit_codes(name: str) -> None:
    section = command_sections()[name]
    body = section.text.split("\n", 1)[1].lstrip("\n")
    synopsis = body.split("\n\n", 1)[0].split("\n")
    assert all(line.startswith(f"`orchestrator {name}") and line.endswith("`") for line in synopsis), (
        f"cli-integration.md:{section.line}: `{name}` does not open with its synopsis, `orchestrator {name} ...`"
    )
    examples = [b for b in fenced(section.text) if b[0] in {"bash", "sh"} and f"orchestrator {name}" in b[1]]
    assert examples, f"cli-integration.md:{section.line}: `{name}` has no example"
    assert re.search(r"^\*\*Exit codes\*\* \(\[all\]\(#exit-codes\)\): ", section.text, re.M), (
        f"cli-integration.md:{section.line}: `{name}` says no exit codes"
    )


def fenced(text: str) -> list[tuple[str, str]]:
    return [(m.group(2), m.group(3)) for m in re.finditer(r"^(`{3,})(\w*)\n(.*?)^\1", text, re.S | re.M)]


def command_lines(script: str) -> Iterator[list[str]]:
    """Each ``orchestrator ...`` command of a shell script as its words, up to the first shell
    operator (a pipe, ``&&``, a redirection, a comment)."""
    script = script.replace("\\\n", " ")
    for line in script.split("\n"):
        for match in re.finditer(r"(?:^|[;&|(]\s*|\$\()\s*orchestrator\s+([^\n]*)", line):
            lexer = shlex.shlex(match.group(1), posix=True, punctuation_chars=";&|()<>")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            words: list[str] = []
            for word in lexer:
                if set(word) <= set(";&|()<>") or re.fullmatch(r"\d?>.*", word):
                    break
                words.append(word)
            yield words


def test_every_example_in_a_command_section_parses() -> None:
    """The commands an example shows are ones the parser takes, options and values alike (the
    runnable ones run too, in test_docs.py): an example cannot keep an option that was renamed."""
    seen = 0
    for section in command_sections().values():
        for info, body in fenced(section.text):
            if info not in {"bash", "sh"}:
                continue
            for words in command_lines(body):
                parser = build_parser(words[0] if words else None)
                assert isinstance(parser, Parser)
                try:
                    parser.parse_args(words)
                except Exception as exc:  # (the parser's refusal, shown)
                    pytest.fail(f"cli-integration.md:{section.line}: `orchestrator {shlex.join(words)}`: {exc}")
                seen += 1
    assert seen >= len(commands())


# --- tables: short cells, each column once ------------------------------------------------------


def _copies() -> list[tuple[str, str]]:
    """Each doc as written, and as a user install of the skill ships it (those it ships)."""
    from orchestrator.cli.agents.skill import SKILL_FILES

    return [(doc, "as written") for doc in DOCS] + [(doc, "as installed") for doc in DOCS if doc in SKILL_FILES]


@pytest.mark.parametrize(("doc", "copy"), _copies())
def test_no_table_cell_is_longer_than_a_few_lines(doc: str, copy: str) -> None:
    """A cell of 2,700 characters is a page nobody reads in a table: what needs saying at length is
    prose under the table. A cell is measured as a reader meets it, between its pipes, padding
    included, and in the copy a user install of the skill ships too (each `orchestrator` made
    `python3 -m orchestrator`): the `hedge` cell, trimmed to exactly 400 characters once the
    spaces round it were stripped, passed a check that measured it so."""
    from orchestrator.cli.agents.skill import SKILL_FILES, localize

    text = (ROOT / doc).read_text(encoding="utf-8")
    if copy == "as installed":
        assert doc in SKILL_FILES
        text = localize(text, "python3")
    for number, line in enumerate(without_fences(text).split("\n"), 1):
        if not line.startswith("|") or re.fullmatch(r"\|[\s:|-]*", line.strip()):
            continue
        for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1]):
            shown = f"{cell[:60].strip()}..."
            assert len(cell) < LONGEST_CELL, f"{doc}:{number} ({copy}): a table cell of {len(cell)} characters: {shown}"


def test_the_column_table_is_the_registrys_columns_each_once() -> None:
    """Each column of the task table has one row (`Approval` had two), under the header the
    registry gives it (``plan/table/columns.COLUMNS``: what `add` writes), naming every other header
    the parser takes for it and no other."""
    text = REFERENCE.read_text(encoding="utf-8")
    table = text.split("| Column | Also accepted as | Content |", 1)[1].split("\n\n", 1)[0]
    rows = [cells(line) for line in table.strip().split("\n")[1:]]
    by_header = {column.header: column for column in COLUMNS}
    seen: list[str] = []
    for row in rows:
        header = re.sub(r"\s*\(required\)", "", row[0])
        column = by_header.get(header)
        assert column is not None, f"the column table's row {row[0]} is no column of plan/table/columns.COLUMNS"
        assert column.key not in seen, f"the column table has {header} twice"
        seen.append(column.key)
        also = {normalize_heading(name) for name in re.findall(r"`([^`]+)`", row[1])}
        guesses = {normalize_heading(name) for name in ID_GUESSES} if column.key == "id" else set()
        assert also == set(column.aliases) | guesses, (header, also ^ (set(column.aliases) | guesses))
    assert sorted(seen) == sorted(column.key for column in COLUMNS)


# --- a fact said in one place --------------------------------------------------------------------


def test_the_readme_says_what_each_exit_code_of_run_means() -> None:
    """A script's author reads the README first: it said nothing of exit code 4 (a run that waits
    for a person), which a CI step reads as a failure."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    said = text.split("**`run`'s exit code:**", 1)
    assert len(said) == 2, "README.md says nothing of run's exit codes"
    sentence = " ".join(said[1].split("\n\n", 1)[0].split())
    for code in ExitCode:
        assert re.search(rf"(?:^|; ){code.value} \w", sentence), (
            f"README.md does not say what exit code {code.value} means"
        )
    assert "4 nothing failed, but tasks wait for a person" in sentence


def test_the_exit_code_table_has_every_code_once() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    table = text.split("\n## Exit codes\n", 1)[1].split("| Code | Meaning |", 1)[1].split("\n\n", 1)[0]
    codes = [int(cells(line)[0]) for line in table.strip().split("\n")[1:]]
    assert codes == sorted(code.value for code in ExitCode)


def test_help_names_every_exit_code() -> None:
    """`orchestrator --help` said the codes but 4, as README did."""
    epilog = build_parser().epilog or ""
    said = [int(code) for code in re.findall(r"\b(\d+) ", epilog.split("Exit codes:", 1)[1])]
    assert said == sorted(code.value for code in ExitCode)


@pytest.mark.parametrize("doc", ["README.md", "SKILL.md", "workflow.md", "templates.md", "examples.md"])
def test_other_docs_link_to_the_exit_codes_rather_than_list_them(doc: str) -> None:
    """README's list of exit codes left out 4: the table is cli-integration.md's alone."""
    text = without_fences((ROOT / doc).read_text(encoding="utf-8"))
    listed = re.search(r"[Ee]xit codes?:? 0\b", text)
    assert not listed, f"{doc} lists the exit codes: link to cli-integration.md#exit-codes"
    if doc in {"README.md", "SKILL.md"}:
        assert "cli-integration.md#exit-codes" in text, doc


NUMBERS = {
    word: number
    for number, word in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
    )
}


def test_the_examples_are_counted_alike_or_not_at_all() -> None:
    """examples.md's scenarios were five in SKILL.md, eight in README and nine in examples.md."""
    scenarios = len(re.findall(r"^## \d+\. ", (ROOT / "examples.md").read_text(encoding="utf-8"), re.M))
    assert scenarios >= 9
    said = 0
    for doc in DOCS:
        text = " ".join((ROOT / doc).read_text(encoding="utf-8").split())
        for word in re.findall(r"\b(\w+) (?:scenarios|complete plans|requests of the kind)\b", text, re.I):
            number = NUMBERS.get(word.lower(), int(word) if word.isdigit() else None)
            assert number is None or number == scenarios, f"{doc}: {word} scenarios, examples.md has {scenarios}"
            said += number is not None
    assert said <= 1  # (examples.md may say how many it holds; the others link to it)
