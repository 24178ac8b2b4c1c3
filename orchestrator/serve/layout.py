"""Where each box and each edge of the task graph goes, for ``picture``: a layered drawing after
Sugiyama, kept small.

Each task sits in the column of its layer (``plan.graph.layers``). An edge that skips layers goes
through a *virtual node* in every column between: a lane of its own, kept apart from the boxes
there as boxes are kept apart from each other, so an edge is never drawn through a box it does not
connect (drawn straight from one end to the other, it would pass behind the boxes between and show
a dependency that does not exist). The order within a column is improved by barycentre sweeps
(fewer crossings, counted; the best order found is kept); heights by setting each box and lane as
near the middle of its neighbours as the order and the gaps allow (least squares: pool adjacent
violators).

An edge is drawn as straight runs through its lanes joined by cubic curves in the gaps between
columns. A curve's control points lie in the gap, and a Bézier curve lies in the hull of its
control points: it never enters a column, let alone a box.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from orchestrator.plan.graph import layers
from orchestrator.plan.model import Plan

BOX_W = 176
BOX_H = 44
GAP_X = 56  # between two columns: where the curves go
GAP_Y = 14  # between two boxes of a column
LANE_TO_BOX = 12  # between a lane (an edge passing a column) and a box
LANE_TO_LANE = 8  # between two lanes
MARGIN = 12
SWEEPS = 4  # rounds of reordering (down and up); the order with the fewest crossings is kept
SETTLES = 3  # rounds of setting heights from the neighbours'

Point = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Route:
    """One edge: from the right side of ``source``'s box, through its lanes, to the left side of
    ``target``'s. ``points`` pair up as a curve across a gap, a straight run across a column, a
    curve... : ``[leave, enter, leave, enter, ..., enter]``."""

    source: str
    target: str
    points: tuple[Point, ...]

    def path(self) -> str:
        """The SVG path's ``d``: curves across the gaps (horizontal at both ends), lines across the columns."""
        (x, y), *rest = self.points
        parts = [f"M{x},{y}"]
        for index, (nx, ny) in enumerate(rest):
            if index % 2 == 0:
                bend = (nx - x) // 2
                parts.append(f"C{x + bend},{y} {nx - bend},{ny} {nx},{ny}")
            else:
                parts.append(f"L{nx},{ny}")
            x, y = nx, ny
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Layout:
    """The picture's size, each task's box (its top left corner) and each edge's route."""

    width: int
    height: int
    boxes: dict[str, Point]
    routes: list[Route]


@dataclass(frozen=True, slots=True)
class Lane:
    """Where the edge from ``source`` to ``target`` passes ``column``: a virtual node."""

    source: str
    target: str
    column: int


Node = str | Lane  # a task's box, or a lane


def layout(plan: Plan) -> Layout:
    """The plan's graph laid out: boxes in columns by layer, every edge routed around the boxes."""
    columns: list[list[Node]] = [list(ids) for ids in layers(plan.graph, plan.order)]
    rank = {task_id: col for col, ids in enumerate(columns) for task_id in ids}
    edges = [(s, t) for s, t in plan.edges() if s in rank and t in rank and rank[s] < rank[t]]
    preds: dict[Node, list[Node]] = {node: [] for column in columns for node in column}
    succs: dict[Node, list[Node]] = {node: [] for column in columns for node in column}
    chains: list[tuple[str, str, list[Lane]]] = []
    for source, target in edges:
        lanes = [Lane(source, target, col) for col in range(rank[source] + 1, rank[target])]
        for lane in lanes:
            columns[lane.column].append(lane)
            preds[lane], succs[lane] = [], []
        chain: list[Node] = [source, *lanes, target]
        for a, b in pairwise(chain):
            succs[a].append(b)
            preds[b].append(a)
        chains.append((source, target, lanes))
    columns = _ordered(columns, preds, succs)
    centre = _heights(columns, preds, succs)
    top = min((centre[node] - _half(node) for column in columns for node in column), default=0)
    ys = {node: y - top + MARGIN for node, y in centre.items()}
    bottom = max((ys[node] + _half(node) for column in columns for node in column), default=MARGIN)
    boxes = {
        node: (_x(col), ys[node] - BOX_H // 2)
        for col, column in enumerate(columns)
        for node in column
        if isinstance(node, str)
    }
    routes = []
    for source, target, lanes in chains:
        points: list[Point] = [(_x(rank[source]) + BOX_W, ys[source])]
        for lane in lanes:
            points += [(_x(lane.column), ys[lane]), (_x(lane.column) + BOX_W, ys[lane])]
        points.append((_x(rank[target]), ys[target]))
        routes.append(Route(source, target, tuple(points)))
    width = MARGIN * 2 + max(len(columns), 1) * (BOX_W + GAP_X) - GAP_X
    return Layout(width, max(bottom + MARGIN, MARGIN * 2 + BOX_H), boxes, routes)


def _x(col: int) -> int:
    return MARGIN + col * (BOX_W + GAP_X)


def _half(node: Node) -> int:
    return BOX_H // 2 if isinstance(node, str) else 0


def _gap(a: Node, b: Node) -> int:
    """How far apart the centres of two neighbours in a column must be."""
    boxes = isinstance(a, str) + isinstance(b, str)
    between = (LANE_TO_LANE, LANE_TO_BOX, GAP_Y)[boxes]
    return _half(a) + between + _half(b)


# --- the order within each column ----------------------------------------------------------------


def _ordered(
    columns: list[list[Node]], preds: Mapping[Node, list[Node]], succs: Mapping[Node, list[Node]]
) -> list[list[Node]]:
    """Barycentre sweeps, down then up, ``SWEEPS`` times; the order with the fewest crossings."""
    best, fewest = [list(c) for c in columns], _crossings(columns, succs)
    current = [list(c) for c in columns]
    for sweep in range(SWEEPS * 2):
        down = sweep % 2 == 0
        indices = range(1, len(current)) if down else range(len(current) - 2, -1, -1)
        for col in indices:
            near = current[col - 1] if down else current[col + 1]
            place = {node: index for index, node in enumerate(near)}
            links = preds if down else succs
            current[col] = _by_barycentre(current[col], links, place)
        found = _crossings(current, succs)
        if found < fewest:
            best, fewest = [list(c) for c in current], found
        if fewest == 0:
            break
    return best


def _by_barycentre(column: Sequence[Node], links: Mapping[Node, list[Node]], place: Mapping[Node, int]) -> list[Node]:
    """``column`` sorted by the mean place of each node's links in the column beside; a node with
    none there keeps its own place; ties keep their order."""

    def key(item: tuple[int, Node]) -> tuple[float, int]:
        index, node = item
        near = [place[other] for other in links[node] if other in place]
        return (sum(near) / len(near) if near else float(index), index)

    return [node for _, node in sorted(enumerate(column), key=key)]


def _crossings(columns: Sequence[Sequence[Node]], succs: Mapping[Node, list[Node]]) -> int:
    """How many pairs of edges cross between neighbouring columns (inversions, counted with a
    Fenwick tree: a plan of thousands of tasks is laid out in a moment)."""
    total = 0
    for left, right in pairwise(columns):
        place = {node: index for index, node in enumerate(right)}
        ends = [e for node in left for e in sorted(place[s] for s in succs[node] if s in place)]
        tree = [0] * (len(right) + 1)
        for seen, end in enumerate(ends):
            below, i = 0, end + 1
            while i > 0:
                below += tree[i]
                i -= i & -i
            total += seen - below  # the earlier edges that end below this one's end
            i = end + 1
            while i <= len(right):
                tree[i] += 1
                i += i & -i
    return total


# --- heights ---------------------------------------------------------------------------------------


def _heights(
    columns: Sequence[Sequence[Node]], preds: Mapping[Node, list[Node]], succs: Mapping[Node, list[Node]]
) -> dict[Node, int]:
    """Each node's centre: first stacked, then set near the mean of its neighbours', down the
    columns from what comes before, up from what comes after, and down from both."""
    centre: dict[Node, int] = {}
    for column in columns:
        y = 0
        for index, node in enumerate(column):
            y += _gap(column[index - 1], node) if index else 0
            centre[node] = y
    rounds: list[tuple[bool, tuple[Mapping[Node, list[Node]], ...]]] = [
        (True, (preds,)),
        (False, (succs,)),
        (True, (preds, succs)),
    ]
    for down, links in rounds[:SETTLES]:
        order = columns[1:] if down else list(reversed(columns[:-1]))
        for column in order:
            wanted = []
            for node in column:
                near = [centre[other] for found in links for other in found[node]]
                wanted.append(sum(near) / len(near) if near else float(centre[node]))
            for node, y in zip(column, _fitted(column, wanted), strict=True):
                centre[node] = y
    return centre


def _fitted(column: Sequence[Node], wanted: Sequence[float]) -> list[int]:
    """The centres nearest ``wanted`` (least squares) that keep ``column``'s order and gaps: with
    each centre less the gaps above it, the centres only have to rise, which pool adjacent
    violators solves in one pass."""
    offsets = [0]
    for a, b in pairwise(column):
        offsets.append(offsets[-1] + _gap(a, b))
    blocks: list[tuple[float, int]] = []  # (mean, how many): runs of centres that rise together
    for want, offset in zip(wanted, offsets, strict=True):
        blocks.append((want - offset, 1))
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (mean, size), (last, count) = blocks[-2], blocks.pop()
            blocks[-1] = ((mean * size + last * count) / (size + count), size + count)
    rising = [round(mean) for mean, size in blocks for _ in range(size)]
    return [z + offset for z, offset in zip(rising, offsets, strict=True)]
