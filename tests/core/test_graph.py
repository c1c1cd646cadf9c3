"""The one graph-order helper behind definitions, diagnosis bundles and the DAG layout."""

from taskcenter.core.graph import topological_order


def order(edges: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    return topological_order(list(edges), key=lambda k: k, upstreams=lambda k: edges[k])


def test_upstreams_come_first_and_ties_keep_the_given_order():
    edges = {"a": [], "c": ["a"], "b": ["a"], "d": ["b", "c", "b"], "e": []}
    assert order(edges) == (["a", "e", "c", "b", "d"], [])


def test_unknown_upstreams_are_ignored():
    assert order({"a": ["gone"], "b": ["a"]}) == (["a", "b"], [])


def test_nodes_on_or_behind_a_cycle_are_returned_apart_not_dropped():
    edges = {"root": [], "x": ["y", "root"], "y": ["x"], "after": ["y"]}
    assert order(edges) == (["root"], ["x", "y", "after"])
