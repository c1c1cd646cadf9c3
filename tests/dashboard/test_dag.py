"""The server-side DAG layout and its SVG."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from taskcenter.dashboard import dag


@dataclass
class Node:
    pk: int
    name: str
    upstream_ids: list[int] = field(default_factory=list)
    downstream_ids: list[int] = field(default_factory=list)
    status: str = "PENDING"
    operation: str = "EXECUTE"
    run_time: int = 0
    series_id: int = 0


def graph(edges: list[tuple[int, int]], count: int, **states) -> list[Node]:
    nodes = {i: Node(pk=i, name=f"step {i}", series_id=i) for i in range(1, count + 1)}
    for up, down in edges:
        nodes[down].upstream_ids.append(up)
        nodes[up].downstream_ids.append(down)
    for pk, status in states.items():
        nodes[int(pk.removeprefix("n"))].status = status
    return list(nodes.values())


def units_by_member(plan: dag.Layout) -> dict[int, dag.Unit]:
    return {m.pk: u for u in plan.units for m in u.members}


def test_a_chain_goes_down_one_layer_per_step():
    plan = dag.layout(graph([(1, 2), (2, 3)], 3))
    unit = units_by_member(plan)
    assert unit[1].y < unit[2].y < unit[3].y
    assert unit[1].cx == unit[2].cx == unit[3].cx
    assert len(plan.edges) == 2


def test_parallel_branches_sit_side_by_side_on_one_layer():
    edges = [(1, b) for b in (2, 3, 4)] + [(b, 5) for b in (2, 3, 4)]
    plan = dag.layout(graph(edges, 5))
    unit = units_by_member(plan)
    assert unit[2].y == unit[3].y == unit[4].y
    assert unit[2].x < unit[3].x < unit[4].x
    assert not any(u.grouped for u in plan.units)  # three are drawn as nodes
    assert abs(unit[1].cx - unit[3].cx) < 1  # the fan-out is centred under its root


def test_a_long_edge_puts_the_node_below_its_deepest_upstream():
    plan = dag.layout(graph([(1, 2), (2, 3), (1, 3)], 3))
    unit = units_by_member(plan)
    assert unit[3].y > unit[2].y > unit[1].y


def test_wide_fan_outs_become_one_group_with_exact_edges():
    width = 1000
    edges = [(1, b) for b in range(2, width + 2)] + [(b, width + 2) for b in range(2, width + 2)]
    plan = dag.layout(graph(edges, width + 2))
    groups = [u for u in plan.units if u.grouped]
    assert len(groups) == 1 and len(groups[0].members) == width and groups[0].compact
    assert len(plan.edges) == 2  # root -> group, group -> end
    assert plan.width < 1200  # a 40-column block, not a 200,000 px row


def test_twenty_siblings_are_a_grid_of_full_nodes():
    edges = [(1, b) for b in range(2, 22)] + [(b, 22) for b in range(2, 22)]
    plan = dag.layout(graph(edges, 22))
    group = next(u for u in plan.units if u.grouped)
    assert not group.compact and group.cols == dag.GROUP_COLS


def test_svg_has_every_node_with_status_text_and_escapes_names():
    nodes = graph([(1, 2)], 2, n1="FAILED", n2="RUNNING")
    nodes[0].name = '<script>alert("x")</script> & more'
    svg = dag.render_svg(dag.layout(nodes), selected_id=2, link="?subtask=")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert len(re.findall(r'data-sid="\d+"', svg)) == 2
    assert ">Failed<" in svg and ">Running<" in svg  # text, not only colour
    assert 'class="dag-node is-selected" href="?subtask=2"' in svg


def test_long_names_wrap_to_two_lines():
    nodes = graph([], 1)
    nodes[0].name = "Create resource unit on node 4 of the east zone, then verify it"
    svg = dag.render_svg(dag.layout(nodes), selected_id=None, link="?s=")
    assert "<tspan" in svg and "…" in svg


def test_empty_graph_renders_nothing():
    assert dag.render_svg(dag.layout([]), selected_id=None, link="") == ""
