"""Pictures of cells, as the papers draw them: NAS-Bench-201's 4-node DAG (``none`` edges
left out), NASNet's normal and reduction cells. Rendered to PNG and SVG with graphviz's
``dot`` when it is on the PATH, else with matplotlib (SVG text stays text)."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from rlnas.spaces import CELLS, NB201_EDGES, NASNetSpace, NB201Space, SearchSpace, loose_ends

COLOURS = {"input": "#a6d96a", "node": "#abd9e9", "output": "#fee08b"}  # DARTS' green, blue, yellow


@dataclass
class CellGraph:
    """One cell: nodes (id -> label, kind: input, node or output) and edges labelled by op."""

    title: str
    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)


def cell_graphs(space: SearchSpace, arch: str) -> list[CellGraph]:
    """The cells of ``arch`` (a canonical string of ``space``) as graphs."""
    decisions = space.from_string(arch)
    if isinstance(space, NB201Space):
        cell = CellGraph("NAS-Bench-201 cell")
        cell.nodes = {"0": ("in", "input"), "1": ("1", "node"), "2": ("2", "node"), "3": ("out", "output")}
        cell.edges = [(str(src), str(dst), space.ops[d]) for (dst, src), d in zip(NB201_EDGES, decisions, strict=True)
                      if space.ops[d] != "none"]
        return [cell]
    if isinstance(space, NASNetSpace):
        graphs = []
        for which in CELLS:
            blocks = space.cell(decisions, which)
            title = "normal cell" if which == "normal" else "reduction cell (ops on c_{k-2}, c_{k-1} stride 2)"
            cell = CellGraph(title, {"0": ("c_{k-2}", "input"), "1": ("c_{k-1}", "input")})
            for b, (i1, i2, op1, op2, comb) in enumerate(blocks):
                cell.nodes[str(b + 2)] = (f"{b}: {comb}", "node")
                cell.edges += [(str(i1), str(b + 2), op1), (str(i2), str(b + 2), op2)]
            cell.nodes["out"] = ("c_{k}", "output")
            cell.edges += [(str(s), "out", "") for s in loose_ends(blocks)]
            graphs.append(cell)
        return graphs
    raise TypeError(f"no drawing for search space {type(space).__name__}")


def to_dot(cells: list[CellGraph]) -> str:
    """Graphviz source: one cluster per cell, left to right."""
    lines = ["digraph cells {", "  rankdir=LR; newrank=true;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    for k, cell in enumerate(cells):
        lines += [f"  subgraph cluster_{k} {{", f'    label="{cell.title}"; fontname="Helvetica";']
        lines += [f'    "{k}/{n}" [label="{label}", fillcolor="{COLOURS[kind]}"];'
                  for n, (label, kind) in cell.nodes.items()]
        lines += [f'    "{k}/{src}" -> "{k}/{dst}" [label="{op}"];' for src, dst, op in cell.edges]
        lines.append("  }")
    return "\n".join([*lines, "}"]) + "\n"


def draw_cells(space: SearchSpace, arch: str, stem: str | Path, engine: str = "auto") -> tuple[Path, Path]:
    """Draw ``arch`` to ``stem``.png and .svg with ``engine`` (graphviz, matplotlib, or auto)."""
    if engine not in ("auto", "graphviz", "matplotlib"):
        raise ValueError(f"engine must be auto, graphviz or matplotlib, got {engine!r}")
    cells = cell_graphs(space, arch)
    stem = Path(stem)
    paths = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".svg")
    dot = shutil.which("dot")
    if engine == "graphviz" and dot is None:
        raise FileNotFoundError("graphviz's dot is not on the PATH; install graphviz or use engine='matplotlib'")
    if engine != "matplotlib" and dot is not None:
        try:
            source = to_dot(cells)
            for path in paths:
                subprocess.run([dot, f"-T{path.suffix[1:]}", "-o", str(path)], input=source, text=True,
                               check=True, capture_output=True, timeout=60)
            return paths
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            if engine == "graphviz":
                raise
            warnings.warn(f"graphviz could not draw the cell ({err}); drawing it with matplotlib", stacklevel=2)
    _draw_with_matplotlib(cells, paths)
    return paths


DX, DY = 2.6, 1.1  # data units between columns, and between rows of a column
DPI = 150


def _layers(cell: CellGraph) -> dict[str, int]:
    """Each node's column: the longest path to it from the inputs (nodes come in topological order)."""
    depth = {n: 0 for n, (_, kind) in cell.nodes.items() if kind == "input"}
    for n in cell.nodes:
        if n not in depth:
            depth[n] = 1 + max((depth[s] for s, d, _ in cell.edges if d == n), default=0)
    return depth


def _routes(cell: CellGraph) -> tuple[dict[str, tuple[float, float]], list[list[tuple[float, float]]]]:
    """Node positions and one polyline per edge (a layered layout): an edge skipping columns
    runs through a slot of its own in each, so none leaves the drawing or crosses a node."""
    depth = _layers(cell)
    slots: dict[int, list[tuple]] = {}  # column -> its nodes, and the edges passing through it
    for n in cell.nodes:
        slots.setdefault(depth[n], []).append(("node", n))
    for e, (src, dst, _) in enumerate(cell.edges):
        for col in range(depth[src] + 1, depth[dst]):
            slots[col].append(("pass", e, col))

    def before(e: int, col: int) -> tuple:  # where edge e comes from into column col
        src = cell.edges[e][0]
        return ("node", src) if depth[src] == col - 1 else ("pass", e, col - 1)

    def feed(item: tuple, col: int, row: dict[tuple, int]) -> float:  # the mean row of what feeds it
        edges = [item[1]] if item[0] == "pass" else [e for e, (_, d, _) in enumerate(cell.edges) if d == item[1]]
        return sum(row[before(e, col)] for e in edges) / len(edges) if edges else row[item]

    for _ in range(4):  # barycentre sweeps
        row = {item: i for items in slots.values() for i, item in enumerate(items)}
        for col in sorted(slots)[1:]:
            slots[col].sort(key=partial(feed, col=col, row=row))
    point = {item: (DX * col, -DY * (i - (len(items) - 1) / 2)) for col, items in slots.items()
             for i, item in enumerate(items)}
    parallels: Counter[tuple[str, str]] = Counter()
    routes = []
    for e, (src, dst, _) in enumerate(cell.edges):
        inner = [point[("pass", e, col)] for col in range(depth[src] + 1, depth[dst])]
        twins = sum(1 for s, d, _ in cell.edges if (s, d) == (src, dst))
        if twins > 1 and not inner:  # parallel edges bow apart, each through a bend of its own
            (x1, y1), (x2, y2) = point[("node", src)], point[("node", dst)]
            inner = [((x1 + x2) / 2, (y1 + y2) / 2 + 0.45 * DY * (parallels[src, dst] - (twins - 1) / 2))]
        parallels[src, dst] += 1
        routes.append([point[("node", src)], *inner, point[("node", dst)]])
    return {n: point[("node", n)] for n in cell.nodes}, routes


def _figure(**kwargs):
    """A figure drawn by Agg without pyplot: no display, and half the import time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def cell_figure(cells: list[CellGraph]):
    """The cells drawn with matplotlib, one panel each, each op on its edge."""
    layouts = [_routes(cell) for cell in cells]
    width = max(x for pos, _ in layouts for x, _ in pos.values()) + 2.6
    heights = [2 * max(abs(y) for route in [*routes, list(pos.values())] for _, y in route) + 1.8
               for pos, routes in layouts]
    fig = _figure(figsize=(1.2 * width, 0.95 * sum(heights)), dpi=DPI)  # drawn at the dpi it is saved at:
    # arrows end at node borders measured in pixels
    axes = fig.subplots(len(cells), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, cell, (pos, routes), height in zip(axes, cells, layouts, heights, strict=True):
        ax.set_xlim(-1.3, max(x for x, _ in pos.values()) + 1.3)
        ax.set_ylim(-height / 2, height / 2)
        ax.set_title(cell.title, fontsize=10)
        ax.axis("off")
        boxes = {n: ax.text(*pos[n], label, ha="center", va="center", fontsize=9, zorder=3, gid="node",
                            bbox={"boxstyle": "round,pad=0.4", "fc": COLOURS[kind], "ec": "0.3"})
                 for n, (label, kind) in cell.nodes.items()}
        fig.canvas.draw()  # places the boxes, so that arrows can end at their borders
        for e, ((src, dst, _), route) in enumerate(zip(cell.edges, routes, strict=True)):
            for k, (a, b) in enumerate(itertools.pairwise(route)):
                ax.annotate("", xy=b, xytext=a, zorder=1, gid=f"edge {e}", arrowprops={
                    "arrowstyle": "-|>" if k == len(route) - 2 else "-", "color": "0.35", "shrinkA": 0,
                    "shrinkB": 0, "patchA": boxes[src].get_bbox_patch() if k == 0 else None,
                    "patchB": boxes[dst].get_bbox_patch() if k == len(route) - 2 else None})
        _place_labels(fig, ax, cell, routes, list(boxes.values()))
    return fig


def _place_labels(fig, ax, cell: CellGraph, routes: list[list[tuple[float, float]]], boxes: list) -> None:
    """Each op on its edge where it overlaps no node, label or other edge (middle first)."""
    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform
    taken = [b.get_window_extent(renderer).expanded(1.05, 1.2) for b in boxes]
    segments = [(e, to_px(a), to_px(b)) for e, route in enumerate(routes) for a, b in itertools.pairwise(route)]
    for e, ((_, _, op), route) in enumerate(zip(cell.edges, routes, strict=True)):
        if not op:
            continue
        spots = [(a, b, t) for t in (0.5, 0.35, 0.65, 0.25, 0.75, 0.15, 0.85) for a, b in itertools.pairwise(route)]
        text = ax.text(0, 0, op, fontsize=7, ha="center", va="center", zorder=2, gid=f"op {e}",
                       bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9})
        best = None
        for a, b, t in spots:
            text.set_position((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])))
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            clashes = sum(box.overlaps(other) for other in taken) + sum(
                _crosses(box, p, q) for f, p, q in segments if f != e)
            if best is None or clashes < best[0]:
                best = (clashes, text.get_position())
            if clashes == 0:
                break
        text.set_position(best[1])
        taken.append(text.get_window_extent(renderer).expanded(1.05, 1.1))


def _crosses(box, p, q, samples: int = 24) -> bool:
    """Whether the segment from ``p`` to ``q`` (pixels) passes through ``box``."""
    return any(box.contains(p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]))
               for t in (i / samples for i in range(samples + 1)))


def _draw_with_matplotlib(cells: list[CellGraph], paths: tuple[Path, Path]) -> None:
    import matplotlib

    fig = cell_figure(cells)
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        for path in paths:
            fig.savefig(path, dpi=DPI)


def draw_front(points: list[tuple[float, float]], front: list[tuple[float, float]], cost: str,
               path: str | Path) -> Path:
    """Everything evaluated (grey) and the front's staircase, score against ``cost``, to PNG."""
    fig = _figure(figsize=(5, 3.5))
    ax = fig.subplots()
    ax.scatter([c for _, c in points], [s for s, _ in points], s=8, c="#bbbbbb", label="evaluated")
    ax.step([c for _, c in front], [s for s, _ in front], where="post", c="#d7191c", marker="o", ms=4,
            label="Pareto front")
    ax.set_xlabel(f"{cost} (lower is better)")
    ax.set_ylabel("score")
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def weights_figure(weights: dict[str, np.ndarray], rows: dict[str, list[str]], ops: list[str], title: str):
    """A heat map per group of architecture weights, edges by ops, each weight printed."""
    fig = _figure(figsize=(1.2 + 0.9 * len(ops) * len(weights), 1.2 + 0.3 * max(map(len, rows.values()))))
    axes = fig.subplots(1, len(weights), squeeze=False)
    for ax, (name, w) in zip(axes[0], weights.items(), strict=True):
        ax.imshow(w, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(ops)), ops, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(rows[name])), rows[name], fontsize=7)
        for (i, j), value in np.ndenumerate(w):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6, color="w" if value < 0.6 else "k")
        ax.set_title(f"{name}: {title}", fontsize=8)
    fig.tight_layout()
    return fig
