"""Graph order for DAGs of subtasks: definitions, diagnosis bundles and the DAG layout."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

Node = TypeVar("Node")
Key = TypeVar("Key", bound=Hashable)


def topological_order(
    nodes: Sequence[Node],
    key: Callable[[Node], Key],
    upstreams: Callable[[Node], Iterable[Key]],
) -> tuple[list[Node], list[Node]]:
    """Kahn's algorithm: (the nodes with every upstream before its downstreams, the rest).

    Among nodes that become ready together, the order of `nodes` is kept, so callers choose
    the tie-break by how they sort the input. Upstream keys that name no node are ignored.
    The rest (in the order of `nodes`) are the nodes on a cycle or behind one: a caller
    reports them or places them anyway, but nothing is dropped silently.
    """
    by_key = {key(node): node for node in nodes}
    waiting, downstreams = _edges(by_key, key, upstreams)
    ready = deque(k for k in by_key if waiting[k] == 0)
    ordered: list[Node] = []
    while ready:
        current = ready.popleft()
        ordered.append(by_key[current])
        for down in downstreams[current]:
            waiting[down] -= 1
            if waiting[down] == 0:
                ready.append(down)
    rest = [node for node in nodes if waiting[key(node)] > 0]
    return ordered, rest


def _edges(
    by_key: dict[Key, Node], key: Callable[[Node], Key], upstreams: Callable[[Node], Iterable[Key]]
) -> tuple[dict[Key, int], dict[Key, list[Key]]]:
    """Each node's count of known upstreams, and its downstreams in the order of the nodes."""
    waiting: dict[Key, int] = {}
    downstreams: dict[Key, list[Key]] = {k: [] for k in by_key}
    for k, node in by_key.items():
        ups = [u for u in dict.fromkeys(upstreams(node)) if u in by_key]
        waiting[k] = len(ups)
        for up in ups:
            downstreams[up].append(k)
    return waiting, downstreams
