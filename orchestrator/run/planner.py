"""``orchestrator plan "<request>"``: an agent decomposes the request; we validate and write master_plan.md.

With claude the answer is constrained by ``--json-schema`` and arrives as ``structured_output``;
other backends are asked for the same JSON in their text. Whatever comes back is rendered to
markdown and validated exactly like a hand-written plan. An invalid answer is sent back once with
the problems; a second invalid answer writes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio

from orchestrator import backends
from orchestrator.backends.base import AgentResult, Job
from orchestrator.errors import AgentCallError, PlanError, Problem, shown
from orchestrator.output.skeleton import plan_markdown
from orchestrator.plan.config.filling import check_references
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.config.tasktypes import BUILT_IN
from orchestrator.plan.model import PLAN_FILE, Plan, Task
from orchestrator.plan.parser import parse_plan
from orchestrator.plan.table.conditions import plan_problems
from orchestrator.run.attempts import call_agent
from orchestrator.state import store

PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "goal": {"type": "string", "description": "The primary goal: what the final result is"},
        "success_criteria": {"type": "string", "description": "How to tell the work is done"},
        "tasks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$", "description": "T-01, T-02, ..."},
                    "name": {"type": "string", "description": "Two to four words"},
                    "description": {"type": "string", "description": "One line: what the task produces"},
                    "dependencies": {"type": "array", "items": {"type": "string"}},
                    "priority": {"type": "string", "enum": ["P0", "P1", "P2", "P3"]},
                    "access": {
                        "type": "string",
                        "enum": ["read", "edit"],
                        "description": "read: the task only reads (analysis, review, research); edit: it changes files",
                    },
                    "type": {
                        "type": "string",
                        "enum": list(BUILT_IN),
                        "description": "The kind of work, which gives the task its defaults (cli-integration.md)",
                    },
                    "details": {"type": "string", "description": "The full instructions for the sub-agent"},
                    "condition": {
                        "type": "string",
                        "description": 'When the task runs, said of tasks it depends on: "T-02 failed" (a fallback), '
                        '"T-01.failing > 0" (a field of T-01\'s output); joined by and, or, not',
                    },
                    "approval": {
                        "type": "string",
                        "enum": ["before", "after"],
                        "description": "before: a person approves the task before it starts; after: its result, "
                        "before what depends on it starts",
                    },
                    "output": {
                        "type": "array",
                        "description": "The JSON fields the task must end its answer with, for a condition to read",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                "type": {"type": "string", "enum": ["str", "int", "number", "bool", "list", "object"]},
                            },
                            "required": ["name"],
                        },
                    },
                },
                "required": ["id", "name", "description", "dependencies", "details"],
            },
        },
        "params": {
            "type": "array",
            "description": "What changes from one run of the plan to the next, used as {{ params.NAME }}",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                    "default": {"type": "string"},
                    "description": {"type": "string"},
                },
                "required": ["name", "default", "description"],
            },
        },
    },
    "required": ["goal", "success_criteria", "tasks"],
}

PLANNER_PROMPT = """You are planning work for a team of sub-agents that run in parallel. Decompose the
request below into atomic tasks and answer with the plan as JSON matching the schema.

Rules:
- Each task is one coherent piece of work a sub-agent can finish in 1 to 5 minutes.
- Minimise dependencies: a task depends on another only if it needs that task's result. Tasks that
  can run at the same time must not depend on each other.
- Ids are T-01, T-02, ... in a sensible order; dependencies name earlier ids. No cycles.
- "details" are the complete instructions for the sub-agent: what to read, what to do, what to
  produce. A task receives the results of the tasks it depends on.
- When the request needs one combined answer, end with a task that depends on the others and
  combines their results.
- Priority P0 (most urgent) to P3; most tasks are P2.
- "access" is what the sub-agent may do: "read" for analysis, review and research (it reads and
  changes nothing), "edit" for implementation (it edits files). Give "edit" only to tasks that
  must change files.
- "type" is the kind of work: research, analysis, review or coordination (they read only),
  implementation or docs (they edit files), test (it runs tests, with more time). Its brief asks
  the sub-agent for a section of its kind: Findings, Verdict, Changes...
- Only when the request calls for a branch or a person's word (leave them out otherwise):
  - "condition": the task runs only when it holds, else it is bypassed (no failure). "T-02 failed"
    for a fallback that takes over when T-02 fails; "T-01.failing > 0" or 'T-01.severity == "high"'
    for a step that depends on what T-01 found. Every task it names is one of its dependencies.
  - "output": the fields a condition reads must be declared on the task it reads them of, with
    their type ("failing", "int"); that task's answer ends with a JSON object holding them.
  - "approval": "before" for a risky step a person approves before it starts (a deploy, a
    migration, a mass edit, a message sent); "after" for a result a person approves before what
    depends on it starts.
- "params": only for what the request says changes from one run to the next (a repository, a
  language, a version): each with a default and a description, written as {{{{ params.NAME }}}} in
  names, descriptions and details.
{json_hint}
The request:
{request}
"""


@dataclass(slots=True)
class Planned:
    text: str  # the master_plan.md
    plan: Plan
    cost_usd: float | None
    attempts: int


def _rows(data: Any) -> tuple[list[dict[str, str]], str, str]:
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        raise ValueError("the answer has no 'tasks' list")
    rows: list[dict[str, str]] = []
    for item in data["tasks"]:
        if not isinstance(item, dict):
            raise ValueError("a task is not an object")
        deps = item.get("dependencies") or []
        if isinstance(deps, str):
            deps = [deps]
        rows.append(
            {
                "id": str(item.get("id", "")),
                "name": str(item.get("name", "")),
                "description": str(item.get("description", "")),
                "deps": ", ".join(str(d) for d in deps) or "None",
                "priority": str(item.get("priority") or "P2"),
                "access": str(item.get("access") or ""),
                "type": str(item.get("type") or "").strip().lower(),
                "condition": str(item.get("condition") or "").strip(),
                "approval": str(item.get("approval") or "").strip().lower(),
                "output": _output_cell(item.get("output")),
                "details": str(item.get("details") or item.get("description") or "").strip(),
            }
        )
    return rows, str(data.get("goal") or ""), str(data.get("success_criteria") or "")


def _output_cell(fields: Any) -> str:
    """An Output cell from the answer's fields: ``[{"name": "failing", "type": "int"}]`` ->
    ``failing:int`` (a cell written as text is taken as it is)."""
    if isinstance(fields, str):
        return fields.strip()
    if not isinstance(fields, list):
        return ""
    found: list[str] = []
    for field in fields:
        if isinstance(field, dict):
            found.append(f"{field.get('name', '')}:{field.get('type') or 'str'}")
        else:
            found.append(str(field))
    return ", ".join(found)


def _params(data: Any) -> dict[str, dict[str, str]]:
    """The plan's parameters the answer declares, as the ``params`` setting holds them."""
    found: dict[str, dict[str, str]] = {}
    for item in data.get("params") or [] if isinstance(data, dict) else []:
        if not isinstance(item, dict) or not item.get("name"):
            raise ValueError("a parameter is not an object with a name")
        spec = {key: str(item[key]) for key in ("default", "description") if item.get(key) is not None}
        found[str(item["name"])] = spec
    return found


def answer_json(result: AgentResult) -> Any:
    """The plan JSON from an agent's answer: structured output, else the first JSON object in its text."""
    if result.structured is not None:
        return result.structured
    text = result.text.strip()
    fenced = re.search(r"```(?:json)?\s*(\{.*\})\s*```", text, re.S)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("the answer holds no JSON object")
    return json.loads(text[start : end + 1])


ANSWER = "the planner's answer"  # what a problem of the plan an agent wrote names: no file has it yet


def to_markdown(request: str, data: Any, backend: str) -> str:
    """The agent's JSON as master_plan.md's text, not validated yet (``PlanError`` when it is
    no plan at all)."""
    try:
        rows, goal, criteria = _rows(data)
        params = _params(data)
    except ValueError as exc:
        raise PlanError([Problem(ANSWER, 0, f"not a plan: {exc}", "")]) from None
    return plan_markdown(request, rows, backend=backend, goal=goal, criteria=criteria, params=params)


def checked(text: str, path: Path) -> Plan:
    """``text`` read as a plan and checked as ``validate`` checks one before a run: its
    parameters' expressions and its Conditions too (``PlanError``)."""
    plan = parse_plan(text, path)
    check_references(plan)
    problems = [Problem(shown(path), line, what, hint) for line, what, hint in plan_problems(plan.tasks)]
    if problems:
        raise PlanError(problems)
    return plan


async def _call(backend_name: str, settings: Settings, prompt: str, project: Path, logs: Path, attempt: int
                ) -> AgentResult:  # fmt: skip
    backend = backends.get(backend_name)
    backend = backend.answering(json.dumps(PLAN_SCHEMA)) or backend
    task = Task(id="plan", name="Plan", description=prompt, agent="planner")
    job = Job(task, settings, prompt, prompt, project, logs.parent, attempt)
    result, _ = await call_agent(backend, job, logs / f"planner.attempt-{attempt}")
    return result


def make_plan(request: str, workspace: Path, settings: Settings, *, logs: Path | None = None) -> Planned:
    """Ask the backend for a plan, validate it, and send it back once with the problems if needed.
    The planner's logs go to ``logs`` (default: the workspace's ``logs/``)."""
    backend = backends.get(settings.backend)
    if not backend.reads_prompt:
        raise AgentCallError(
            f"`plan` needs an agent backend ({backends.listing(backends.prompted())}), not {settings.backend}"
        )
    hint = (
        ""
        if backend.answering(json.dumps(PLAN_SCHEMA)) is not None  # (its CLI holds the answer to the schema)
        else ("\nAnswer with only the JSON object, matching this JSON schema:\n" + json.dumps(PLAN_SCHEMA) + "\n")
    )
    prompt = PLANNER_PROMPT.format(request=request.strip(), json_hint=hint)
    where = f" (logs in {workspace / 'logs'})" if logs is None else ""  # other logs are not kept
    logs = logs if logs is not None else workspace / "logs"
    cost = 0.0
    for attempt in (1, 2):
        result = anyio.run(_call, settings.backend, settings, prompt, workspace.parent, logs, attempt)
        cost += result.cost_usd or 0.0
        if not result.completed:
            raise AgentCallError(f"the planner failed: {result.message}{where}")
        data: Any = result.text
        text: str | None = None
        try:
            data = answer_json(result)
            text = to_markdown(request, data, settings.backend)
            return Planned(text, checked(text, workspace / PLAN_FILE), cost or None, attempt)
        except (ValueError, PlanError) as exc:
            problems = str(exc)
            if attempt == 2:
                # Not master_plan.md, never written: the answer as a plan, kept beside the
                # planner's logs for the lines to be read in, or (no logs kept) named as such.
                answer = ANSWER
                if text is not None and where:
                    kept = logs / f"planner.attempt-{attempt}.plan.md"
                    store.write_text(kept, text)
                    answer = shown(kept)
                raise PlanError(
                    [replace(p, file=answer) for p in exc.problems]
                    if isinstance(exc, PlanError)
                    else [Problem(answer, 0, f"not a plan: {exc}", "")]
                ) from None
            previous = json.dumps(data, indent=1)[:20_000]
            prompt = (
                PLANNER_PROMPT.format(request=request.strip(), json_hint=hint)
                + f"\nYour previous answer was:\n{previous}\n\nIt was rejected for these problems; fix them all:\n"
                + problems
                + "\n"
            )
    raise AssertionError("unreachable")  # pragma: no cover
