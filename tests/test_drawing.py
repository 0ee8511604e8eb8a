"""Cell drawings: the graph each space's cells make, and both renderers."""

import os
import stat

import pytest

from rlnas.drawing import cell_graphs, draw_cells, to_dot
from rlnas.spaces import NASNetSpace, NB201Space

NB201_ARCH = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
NASNET_ARCH = ("normal=sep_conv_3x3~0,identity~1,add|sep_conv_5x5~2,sep_conv_5x5~2,concat"
               "|max_pool_3x3~1,avg_pool_3x3~0,add|identity~3,sep_conv_3x3~4,add|sep_conv_3x3~0,identity~1,add;"
               "reduce=avg_pool_3x3~0,max_pool_3x3~1,add|identity~1,sep_conv_3x3~0,concat"
               "|sep_conv_5x5~2,identity~3,add|max_pool_3x3~4,avg_pool_3x3~2,add|sep_conv_3x3~5,identity~0,add")


def test_nb201_cell_is_the_four_node_dag_without_its_none_edges():
    (cell,) = cell_graphs(NB201Space(), NB201_ARCH)
    assert cell.nodes == {"0": ("in", "input"), "1": ("1", "node"), "2": ("2", "node"), "3": ("out", "output")}
    assert cell.edges == [("0", "1", "nor_conv_3x3"), ("1", "2", "nor_conv_1x1"), ("0", "3", "skip_connect"),
                          ("2", "3", "avg_pool_3x3")]


def test_nasnet_cells_have_blocks_and_an_output_of_loose_ends():
    normal, reduce = cell_graphs(NASNetSpace(), NASNET_ARCH)
    assert normal.title == "normal cell" and reduce.title.startswith("reduction cell")
    assert normal.nodes["3"] == ("1: concat", "node") and normal.nodes["out"] == ("c_{k}", "output")
    assert ("2", "3", "sep_conv_5x5") in normal.edges and normal.edges.count(("2", "3", "sep_conv_5x5")) == 2
    # normal: blocks 0..4 are states 2..6; 3 and 4 feed block 3 (state 5), so 5 and 6 are the loose ends
    assert [src for src, dst, _ in normal.edges if dst == "out"] == ["5", "6"]
    assert [src for src, dst, _ in reduce.edges if dst == "out"] == ["6"]  # 2..5 all consumed
    assert len(normal.edges) == 2 * 5 + 2


def test_dot_source_holds_every_cell_node_and_op():
    dot = to_dot(cell_graphs(NASNetSpace(), NASNET_ARCH))
    assert dot.startswith("digraph cells {") and dot.count("subgraph cluster_") == 2
    assert '"0/2" -> "0/3" [label="sep_conv_5x5"];' in dot and '"1/6" -> "1/out" [label=""];' in dot
    assert '"1/0" [label="c_{k-2}", fillcolor="#a6d96a"];' in dot


@pytest.mark.parametrize("space, arch", [(NB201Space(), NB201_ARCH), (NASNetSpace(), NASNET_ARCH)])
def test_matplotlib_draws_png_and_svg_with_the_ops_as_text(tmp_path, space, arch):
    from matplotlib.image import imread

    png, svg = draw_cells(space, arch, tmp_path / "best_cell", engine="matplotlib")
    assert (png.name, svg.name) == ("best_cell.png", "best_cell.svg")
    height, width, _ = imread(png).shape
    assert width > 400 and height > 150
    text = svg.read_text()
    for cell in cell_graphs(space, arch):
        for _, _, op in cell.edges:
            assert f">{op}<" in text or not op
        for label, _ in cell.nodes.values():
            assert f">{label}<" in text


def fake_dot(folder, body):
    script = folder / "dot"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_graphviz_is_used_when_dot_is_on_the_path(tmp_path, monkeypatch):
    # a stand-in for graphviz that writes the DOT source it was given, tagged with its format
    fake_dot(tmp_path, 'while [ $# -gt 0 ]; do case $1 in -T*) f=$1;; -o) shift; o=$1;; esac; shift; done\n'
                       '{ echo "$f"; cat; } > "$o"\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    png, svg = draw_cells(NB201Space(), NB201_ARCH, tmp_path / "cell")
    source = to_dot(cell_graphs(NB201Space(), NB201_ARCH))
    assert png.read_text() == "-Tpng\n" + source and svg.read_text() == "-Tsvg\n" + source


def test_a_broken_graphviz_falls_back_to_matplotlib(tmp_path, monkeypatch):
    fake_dot(tmp_path, "echo 'Format: \"png\" not recognized' >&2; exit 1\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.warns(UserWarning, match="drawing it with matplotlib"):
        png, _ = draw_cells(NB201Space(), NB201_ARCH, tmp_path / "cell")
    assert png.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="engine must be auto, graphviz or matplotlib"):
        draw_cells(NB201Space(), NB201_ARCH, tmp_path / "cell", engine="tikz")


def test_asking_for_graphviz_without_it_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="graphviz's dot is not on the PATH"):
        draw_cells(NB201Space(), NB201_ARCH, tmp_path / "cell", engine="graphviz")


@pytest.mark.parametrize("space, arch", [(NB201Space(), NB201_ARCH), (NASNetSpace(), NASNET_ARCH),
                                         (NB201Space(), NB201Space().to_string((3, 3, 3, 1, 2, 3)))])
def test_every_edge_and_label_is_inside_the_figure_and_readable(space, arch):
    """Before, matplotlib bent the longest arcs out of the figure (the NB201 in-to-out edge
    and its label were cut off) and NASNet's labels sat where edges crossed."""
    from rlnas.drawing import cell_figure

    fig = cell_figure(cell_graphs(space, arch))
    fig.canvas.draw()
    renderer, frame = fig.canvas.get_renderer(), fig.bbox
    for ax, cell in zip(fig.axes, cell_graphs(space, arch), strict=True):
        texts = [t for t in ax.texts if t.get_gid() in ("node",) or str(t.get_gid()).startswith("op ")]
        edges = [a for a in ax.texts if str(a.get_gid()).startswith("edge ")]
        labels = {int(t.get_gid().split()[1]): t.get_window_extent(renderer) for t in texts
                  if t.get_gid().startswith("op ")}
        assert sorted(labels) == [e for e, (_, _, op) in enumerate(cell.edges) if op]  # every op written
        nodes = [t.get_window_extent(renderer) for t in texts if t.get_gid() == "node"]
        for box in [*labels.values(), *nodes, *(a.arrow_patch.get_window_extent(renderer) for a in edges)]:
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        for e, box in labels.items():
            others = [b for f, b in labels.items() if f != e] + nodes
            assert not any(box.overlaps(other) for other in others), cell.edges[e]
            for edge in edges:  # no other edge runs through a label
                if int(edge.get_gid().split()[1]) != e:
                    (x0, y0), (x1, y1) = ax.transData.transform([edge.xyann, edge.xy])
                    assert not any(box.contains(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
                                   for t in [i / 50 for i in range(51)]), (cell.edges[e], edge.get_gid())
