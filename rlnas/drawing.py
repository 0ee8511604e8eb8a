"""Pictures of cells, as the papers draw them.

An architecture becomes one small graph per cell (:func:`cell_graphs`): NAS-Bench-201's
4-node DAG with an op on each edge (``none`` edges carry nothing and are left out), or
NASNet's normal and reduction cells with the two cell inputs, one node per block (how it
combines its two inputs) and the output concatenating the blocks no other block consumed,
as in the NASNet and DARTS figures. :func:`draw_cells` renders them to PNG and SVG with
graphviz's ``dot`` when it is on the PATH, else with matplotlib, which needs no system
package (SVG text stays text, so the ops can be searched and edited).
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from collections import Counter
from dataclasses import dataclass, field
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
    """Draw ``arch`` to ``stem``.png and ``stem``.svg; return their paths.

    ``engine``: ``graphviz``, ``matplotlib``, or ``auto`` (graphviz when ``dot`` is on the
    PATH and works, else matplotlib).
    """
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


def _layout(cell: CellGraph) -> dict[str, tuple[float, float]]:
    """Columns by longest path from the inputs; nodes of a column spread vertically."""
    depth = {n: 0 for n, (_, kind) in cell.nodes.items() if kind == "input"}
    for n in cell.nodes:  # nodes are listed in topological order
        if n not in depth:
            depth[n] = 1 + max((depth[s] for s, d, _ in cell.edges if d == n), default=0)
    columns: dict[int, list[str]] = {}
    for n, d in depth.items():
        columns.setdefault(d, []).append(n)
    return {n: (2.4 * d, 1.3 * (i - (len(col) - 1) / 2)) for d, col in columns.items() for i, n in enumerate(col)}


def _figure(**kwargs):
    """A matplotlib figure drawn by Agg, without pyplot: no display needed, none wanted in a
    worker, and pyplot's import would be half of a short run's drawing time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _draw_with_matplotlib(cells: list[CellGraph], paths: tuple[Path, Path]) -> None:
    import matplotlib

    layouts = [_layout(cell) for cell in cells]
    width = max(max(x for x, _ in pos.values()) for pos in layouts) + 2.4
    heights = [max(y for _, y in pos.values()) - min(y for _, y in pos.values()) + 2.6 for pos in layouts]
    fig = _figure(figsize=(1.1 * width, 1.0 * sum(heights)))
    axes = fig.subplots(len(cells), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    boxes = []
    for ax, cell, pos in zip(axes[:, 0], cells, layouts, strict=True):
        boxes.append({n: ax.text(*pos[n], label, ha="center", va="center", fontsize=9, zorder=3,
                                 bbox={"boxstyle": "round,pad=0.4", "fc": COLOURS[kind], "ec": "0.3"})
                      for n, (label, kind) in cell.nodes.items()})
        xs, ys = [x for x, _ in pos.values()], [y for _, y in pos.values()]
        ax.set_xlim(min(xs) - 1.2, max(xs) + 1.2)
        ax.set_ylim(min(ys) - 1.3, max(ys) + 1.3)
        ax.set_aspect("equal")  # arcs bend in display space; equal axes keep the labels on them
        ax.set_title(cell.title, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    fig.canvas.draw()  # places the node boxes, so that arrows can end at their borders
    for ax, cell, pos, box in zip(axes[:, 0], cells, layouts, boxes, strict=True):
        parallels = Counter((s, d) for s, d, _ in cell.edges)
        seen: Counter[tuple[str, str]] = Counter()
        for e, (src, dst, op) in enumerate(cell.edges):
            (x1, y1), (x2, y2) = pos[src], pos[dst]
            k, parallel = seen[src, dst], parallels[src, dst]
            seen[src, dst] += 1
            # parallel edges fan out; an edge that skips columns bends round the nodes between
            span = round(abs(x2 - x1) / 2.4)
            rad = 0.35 * (k - (parallel - 1) / 2) + (0.3 * (span - 1) * (-1) ** e if parallel == 1 else 0.0)
            ax.annotate("", xy=(x2, y2), xytext=(x1, y1), zorder=1,
                        arrowprops={"arrowstyle": "-|>", "color": "0.35", "shrinkA": 2, "shrinkB": 2,
                                    "patchA": box[src].get_bbox_patch(), "patchB": box[dst].get_bbox_patch(),
                                    "connectionstyle": f"arc3,rad={rad}"})
            if op:  # at the arc's middle: the chord's midpoint moved rad / 2 along its normal
                ax.text((x1 + x2) / 2 + rad / 2 * (y2 - y1), (y1 + y2) / 2 - rad / 2 * (x2 - x1), op,
                        fontsize=7, ha="center", va="center", zorder=2,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        for path in paths:
            fig.savefig(path, dpi=150)


def draw_front(points: list[tuple[float, float]], front: list[tuple[float, float]], cost: str,
               path: str | Path) -> Path:
    """Everything evaluated as grey dots (score against ``cost``) and the front as the
    staircase it dominates, to PNG."""
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
    """A heat map per group of architecture weights (one row per edge, one column per op),
    each cell printed with its weight: which op each edge leans to, and how firmly."""
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
