"""Translate a markdown document into Pig Latin: the offline stand-in for an agent translating it.

Prose is translated word by word; fenced code blocks, `inline code` and link targets are kept
verbatim, so the document's structure survives. Prints what it did, and exits 1 if the output
does not have the same headings, list items and code blocks as the input.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
KEEP = re.compile(r"(`[^`]*`|\]\([^)]*\))")  # inline code and link targets


def pig(word: str) -> str:
    lower = word.lower()
    if lower[0] in "aeiou":
        out = lower + "way"
    else:
        head = re.match(r"[^aeiouy]+", lower)
        cut = len(head.group(0)) if head else 1
        out = lower[cut:] + lower[:cut] + "ay"
    return out.capitalize() if word[0].isupper() else out


def translate_line(line: str) -> tuple[str, int]:
    count = 0
    parts = KEEP.split(line)
    for index in range(0, len(parts), 2):  # even parts are prose, odd parts are kept verbatim

        def replace(match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return pig(match.group(0))

        parts[index] = WORD.sub(replace, parts[index])
    return "".join(parts), count


def shape(lines: list[str]) -> list[str]:
    """The structure a translation must keep: heading levels, list items, code fences."""
    return [re.match(r"(#+|-|```)", line).group(1) for line in lines if re.match(r"(#+ |- |```)", line)]  # type: ignore[union-attr]


def main(source: str, target: str) -> int:
    lines = Path(source).read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    words = blocks = 0
    in_code = False
    for line in lines:
        if line.startswith("```"):
            in_code = not in_code
            blocks += in_code
            out.append(line)
        elif in_code:
            out.append(line)
        else:
            translated, count = translate_line(line)
            words += count
            out.append(translated)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text("\n".join(out) + "\n", encoding="utf-8")
    same = shape(lines) == shape(out)
    kept = f"{blocks} code block{'s' if blocks != 1 else ''} kept verbatim"
    print(f"- `{source}` → `{target}`: {words} words translated, {kept}")
    print(f"- Structure check (headings, list items, code fences): {'same as the source' if same else 'DIFFERENT'}")
    print()
    print("First lines:")
    print()
    print("\n".join(f"> {line}".rstrip() for line in out[:3]))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
