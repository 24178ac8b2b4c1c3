"""T-05: one report from the three analyses, whose result files are in $ORCHESTRATOR_INPUTS."""

from __future__ import annotations

import os
import re
from pathlib import Path

areas = []
high: list[str] = []
for path in os.environ["ORCHESTRATOR_INPUTS"].split("\n"):
    text = Path(path).read_text(encoding="utf-8")
    # A result file is YAML frontmatter between two '---' lines, then the task's output.
    _, meta, body = text.split("---\n", 2)
    name = re.search(r"^name: (.*)$", meta, re.M).group(1)  # type: ignore[union-attr]
    count = int(re.search(r"\*\*(\d+) findings\*\*", body).group(1))  # type: ignore[union-attr]
    rows = [line for line in body.splitlines() if "**high**" in line]
    high += rows
    areas.append((name, count, len(rows)))

print("# Code analysis report")
print()
print(f"{sum(a[1] for a in areas)} findings in `app/`, {len(high)} of them high severity.")
print()
print("| Area | Findings | High severity |")
print("|------|----------|---------------|")
for name, count, severe in areas:
    print(f"| {name} | {count} | {severe} |")
print()
print("Fix first:")
print()
for row in high:
    where, finding = (cell.strip() for cell in row.strip("|").split("|", 1))
    print(f"- {where}: {finding.replace('**high**: ', '')}")
