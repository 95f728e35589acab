"""The network graph: typed nodes and directed edges, checked whole when it is built.

``Graph(nodes, edges)`` refuses, with one line naming the node or edge:

* an edge to or from a node that does not exist (a dangling edge), a self-loop, a repeated edge;
* not exactly one :class:`~snnsim.graph.nodes.Input` and one :class:`~snnsim.graph.nodes.Output`;
* a cycle (the graph must be a DAG: recurrence is not supported);
* a node with the wrong number of inputs (an ``Add`` takes two or more, every other node one:
  fan-in is always an explicit ``Add``), a node nothing reads (dead), a node nothing feeds;
* shapes that do not fit, found by shape inference in topological order.

A valid graph knows each node's input and output shape (:attr:`Graph.shapes`), its topological
order (:attr:`Graph.order`), and its per-node parameter, MAC and in-bounds connection counts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from snnsim.errors import SnnsimError, quote
from snnsim.graph.nodes import NEURONS, SYNAPSES, GraphError, Input, Node, Output, Shape


def _plain(value: Any) -> bool:
    """A node field's value as plain data: a number, text, bool, None, or a tuple of numbers."""
    if isinstance(value, tuple):
        return all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    return value is None or isinstance(value, int | float | str | bool)


def _field_problem(default: Any, value: Any) -> str | None:
    """Why ``value`` cannot stand for a node field whose default is ``default`` (its type is
    the default's: a flag is a bool, a size a whole number, a rate or epsilon a finite number,
    a pair a list of whole numbers), or None."""
    import math as _math

    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else f"must be a whole number, got {value!r}"
    if isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool) and _math.isfinite(value)
        return None if ok else f"must be a finite number, got {value!r}"
    if isinstance(default, str):
        return None if isinstance(value, str) else f"must be text, got {value!r}"
    if isinstance(default, tuple) or default is None:
        if value is None and default is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):  # one number for both axes
            return None
        ok = isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        return None if ok else f"must be a whole number or a list of them, got {value!r}"
    return None


def stable_topological_order(preds: Mapping[str, list[str]], succs: Mapping[str, list[str]],
                             rank: Mapping[str, int]) -> list[str]:
    """Kahn's algorithm with ties broken by ``rank`` (stable, deterministic). Nodes on or behind a
    cycle never become ready: the result is shorter than ``preds`` exactly when there is one."""
    waiting = {n: len(p) for n, p in preds.items()}
    ready = sorted((n for n, k in waiting.items() if k == 0), key=rank.__getitem__)
    order: list[str] = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in succs[n]:
            waiting[m] -= 1
            if waiting[m] == 0:
                ready.append(m)
                ready.sort(key=rank.__getitem__)
    return order


@dataclass(frozen=True)
class NodeInfo:
    """A node of a valid graph with everything inferred about it."""

    name: str
    node: Node
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    params: int
    macs: int
    connections: int

    @property
    def kind(self) -> str:
        return self.node.kind


class Graph:
    """A validated network graph (see the module docstring); immutable once built."""

    def __init__(self, nodes: Mapping[str, Node], edges: Iterable[tuple[str, str]], name: str = "graph") -> None:
        self.name = name
        self.nodes: dict[str, Node] = dict(nodes)
        self.edges: tuple[tuple[str, str], ...] = tuple((str(a), str(b)) for a, b in edges)
        self._check_structure()
        self.order: tuple[str, ...] = self._topological_order()
        self.info: dict[str, NodeInfo] = self._infer()

    # ----------------------------------------------------------------- structure
    def _check_structure(self) -> None:
        where = f"graph {self.name!r}"
        for name, node in self.nodes.items():
            if not isinstance(name, str) or not name or "." in name:
                raise GraphError(f"{where}: node name {name!r} must be non-empty text without '.'",
                                 "rename it (parameters are stored as '<node>.<param>')")
            if not isinstance(node, Node):
                raise GraphError(f"{where}: node {name!r} is a {type(node).__name__}, not a graph node")
        seen: set[tuple[str, str]] = set()
        for a, b in self.edges:
            for end in (a, b):
                if end not in self.nodes:
                    raise GraphError(f"{where}: edge {a!r} -> {b!r} names node {end!r}, which does not exist",
                                     "add the node or remove the edge")
            if a == b:
                raise GraphError(f"{where}: edge {a!r} -> {b!r} is a self-loop", "recurrent graphs are not supported")
            if (a, b) in seen:
                raise GraphError(f"{where}: edge {a!r} -> {b!r} appears twice", "list each edge once")
            seen.add((a, b))
        for kind in (Input, Output):
            found = [n for n, node in self.nodes.items() if isinstance(node, kind)]
            if len(found) != 1:
                raise GraphError(f"{where}: needs exactly one {kind.kind} node, found {len(found)}"
                                 + (f" ({', '.join(found)})" if found else ""))
        preds = self.predecessors
        succs = self.successors
        for name, node in self.nodes.items():
            lo, hi = node.arity
            n_in = len(preds[name])
            if n_in < lo or (hi is not None and n_in > hi):
                want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
                fix = ("join several inputs with an Add node" if n_in > 1 else "connect its input")
                raise GraphError(f"{where}: node {name!r} ({node.kind}) has {n_in} inputs, needs {want}",
                                 fix if node.kind != "Input" else "the Input takes no edges")
            if not isinstance(node, Output) and not succs[name]:
                raise GraphError(f"{where}: node {name!r} ({node.kind}) feeds nothing", "connect it or remove it")

    def _neighbours(self, incoming: bool) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n: [] for n in self.nodes}
        for a, b in self.edges:
            src, dst = (b, a) if incoming else (a, b)
            out[src].append(dst)
        return out

    @property
    def predecessors(self) -> dict[str, list[str]]:
        """Each node's input nodes, in edge order (the order of an Add's operands)."""
        return self._neighbours(incoming=True)

    @property
    def successors(self) -> dict[str, list[str]]:
        """Each node's output nodes, in edge order."""
        return self._neighbours(incoming=False)

    def _topological_order(self) -> tuple[str, ...]:
        """:func:`stable_topological_order` by the order nodes were given; a cycle is refused."""
        order = stable_topological_order(self.predecessors, self.successors, {n: i for i, n in enumerate(self.nodes)})
        if len(order) != len(self.nodes):
            stuck = next(n for n in self.nodes if n not in set(order))
            raise GraphError(f"graph {self.name!r}: node {stuck!r} is on a cycle",
                             "remove the edge that closes the loop (recurrent graphs are not supported)")
        return tuple(order)

    def _infer(self) -> dict[str, NodeInfo]:
        preds, succs = self.predecessors, self.successors
        shapes: dict[str, Shape] = {}
        info: dict[str, NodeInfo] = {}
        for name in self.order:
            node = self.nodes[name]
            ins = [shapes[p] for p in preds[name]]
            out = tuple(int(v) for v in node.out_shape(name, ins))
            shapes[name] = out
            first = ins[0] if ins else out
            info[name] = NodeInfo(name, node, tuple(preds[name]), tuple(succs[name]), tuple(ins), out,
                                  node.params(first, out), node.macs(first, out), node.connections(first, out))
        return info

    # ----------------------------------------------------------------- queries
    @property
    def input(self) -> str:
        return next(n for n, node in self.nodes.items() if isinstance(node, Input))

    @property
    def output(self) -> str:
        return next(n for n, node in self.nodes.items() if isinstance(node, Output))

    @property
    def shapes(self) -> dict[str, Shape]:
        """Each node's output shape (no batch dimension)."""
        return {n: i.out_shape for n, i in self.info.items()}

    def of_kind(self, *kinds: str) -> list[NodeInfo]:
        """The nodes of the given kinds, in topological order."""
        return [self.info[n] for n in self.order if self.info[n].kind in kinds]

    @property
    def synapses(self) -> list[NodeInfo]:
        return self.of_kind(*SYNAPSES)

    @property
    def populations(self) -> list[NodeInfo]:
        return self.of_kind(*NEURONS)

    def param_count(self) -> int:
        """Trainable values of the whole graph (weights, biases, BN affine, thresholds, leaks)."""
        return sum(i.params for i in self.info.values())

    def weight_count(self) -> int:
        """Synaptic weights and biases only (what spatial pruning shrinks)."""
        return sum(i.params for i in self.synapses)

    def mac_count(self) -> int:
        """Dense MACs of one forward pass, conventional formula (padding taps included)."""
        return sum(i.macs for i in self.info.values())

    def connection_count(self) -> int:
        """Dense in-bounds synaptic connections of one forward pass (no padding taps)."""
        return sum(i.connections for i in self.info.values())

    # ----------------------------------------------------------------- (de)serialisation
    def check_size(self, source: str | None = None) -> None:
        """Refuse a graph too large to build (``snnsim.limits``): node count, parameters, values
        per sample and layer widths, computed arithmetically before anything is allocated."""
        from snnsim.limits import MAX_GRAPH_NODES, MAX_PARAMS, MAX_VALUES, MAX_WIDTH

        where = source or f"graph {self.name!r}"
        fix = "use narrower layers or a smaller input"
        if len(self.nodes) > MAX_GRAPH_NODES:
            raise GraphError(f"{where}: has {len(self.nodes):,} nodes, more than {MAX_GRAPH_NODES:,}")
        for info in self.info.values():
            if info.out_shape and info.out_shape[0] > MAX_WIDTH and len(info.out_shape) == 3:
                raise GraphError(f"{where}: node {info.name!r} has {info.out_shape[0]:,} channels, more than {MAX_WIDTH:,}", fix)
        params = self.param_count()
        if params > MAX_PARAMS:
            raise GraphError(f"{where}: has {params:,} parameters, more than the {MAX_PARAMS:,} snnsim builds", fix)
        values = sum(math.prod(i.out_shape) for i in self.info.values())
        if values > MAX_VALUES:
            raise GraphError(f"{where}: has {values:,} values per sample, more than {MAX_VALUES:,}", fix)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able): ``{"name", "nodes": {name: {"kind", field: value}}, "edges"}``;
        what a checkpoint or a trace stores. :meth:`from_dict` reads it back."""
        nodes: dict[str, Any] = {}
        for name, node in self.nodes.items():
            entry: dict[str, Any] = {"kind": node.kind}
            for f in dataclasses.fields(node):
                v = getattr(node, f.name)
                if f.name in node.later_fields and v == f.default:
                    continue  # an earlier graph's dict (and fingerprint) stays what it was
                entry[f.name] = list(v) if isinstance(v, tuple) else v
            nodes[name] = entry
        return {"name": self.name, "nodes": nodes, "edges": [list(e) for e in self.edges]}

    @classmethod
    def from_dict(cls, data: Any, source: str = "graph") -> Graph:
        """Rebuild and validate a graph from :meth:`to_dict`'s form; one-line GraphError on any
        malformed entry (unknown kind or field, wrong type), naming the node."""
        from snnsim.graph.nodes import NODE_TYPES
        from snnsim.limits import MAX_GRAPH_NODES

        if not isinstance(data, Mapping) or not isinstance(data.get("nodes"), Mapping) \
                or not isinstance(data.get("edges"), list):
            raise GraphError(f"{source}: must be a mapping with 'nodes' (a mapping) and 'edges' (a list)")
        if len(data["nodes"]) > MAX_GRAPH_NODES or len(data["edges"]) > 4 * MAX_GRAPH_NODES:
            raise GraphError(f"{source}: has {len(data['nodes']):,} nodes and {len(data['edges']):,} edges, more than "
                             f"snnsim reads ({MAX_GRAPH_NODES:,} nodes)")
        graph_name = data.get("name", "graph")
        if not isinstance(graph_name, str) or len(graph_name) > 256:
            raise GraphError(f"{source}: the graph name must be text of at most 256 characters")
        nodes: dict[str, Node] = {}
        for name, entry in data["nodes"].items():
            if not isinstance(name, str) or len(name) > 256:
                raise GraphError(f"{source}: node names must be text of at most 256 characters")
            if not isinstance(entry, Mapping) or entry.get("kind") not in NODE_TYPES:
                kind = entry.get("kind") if isinstance(entry, Mapping) else entry
                raise GraphError(f"{source}: node {name!r} has unknown kind {kind!r}",
                                 f"use one of {', '.join(NODE_TYPES)}")
            node_type = NODE_TYPES[entry["kind"]]
            known = {f.name: f for f in dataclasses.fields(node_type)}
            values: dict[str, Any] = {}
            for key, v in entry.items():
                if key == "kind":
                    continue
                if key not in known:
                    raise GraphError(f"{source}: node {name!r} ({entry['kind']}) has unknown field {key!r}",
                                     f"allowed: {', '.join(known) or '(none)'}")
                values[key] = tuple(v) if isinstance(v, list) else v
                if not _plain(values[key]):
                    raise GraphError(f"{source}: node {name!r} field {key!r} must be a number, text, true/false "
                                     f"or a list of numbers, got {type(v).__name__}")
                problem = _field_problem(known[key].default, values[key])
                if problem:
                    raise GraphError(f"{source}: node {name!r} ({entry['kind']}) field {key!r} {problem}")
            try:
                nodes[str(name)] = node_type(**values)
            except (TypeError, ValueError, SnnsimError) as exc:
                raise GraphError(f"{source}: node {name!r} ({entry['kind']}) is malformed ({quote(exc, 100)})") from None
        edges = data["edges"]
        if not all(isinstance(e, list | tuple) and len(e) == 2 and all(isinstance(x, str) for x in e) for e in edges):
            raise GraphError(f"{source}: every edge must be a pair of node names")
        try:
            return cls(nodes, [(a, b) for a, b in edges], name=graph_name)
        except (TypeError, ValueError, OverflowError) as exc:  # a backstop: fields are type-checked above
            raise GraphError(f"{source}: is malformed ({quote(exc, 100)})") from None

    # ----------------------------------------------------------------- text
    def table(self) -> list[dict[str, Any]]:
        """One row per node in topological order (what ``snnsim info`` prints)."""
        return [{"node": i.name, "kind": i.kind, "inputs": ",".join(i.inputs) or "-",
                 "shape": "x".join(map(str, i.out_shape)), "params": i.params, "macs": i.macs,
                 "connections": i.connections, "settings": i.node.describe()}
                for i in (self.info[n] for n in self.order)]

    def describe(self) -> str:
        """The graph as an aligned text table with totals."""
        rows = self.table()
        cols = ("node", "kind", "inputs", "shape", "params", "macs", "connections", "settings")
        text = [[str(r[c]) if c not in ("params", "macs", "connections") else f"{r[c]:,}" for c in cols] for r in rows]
        widths = [max(len(c), *(len(t[k]) for t in text)) for k, c in enumerate(cols)]
        right = {"params", "macs", "connections"}

        def line(cells: list[str]) -> str:
            return "  ".join(c.rjust(w) if cols[k] in right else c.ljust(w)
                             for k, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

        out = [line(list(cols)), line(["-" * w for w in widths])]
        out += [line(t) for t in text]
        out.append(f"{len(self.nodes)} nodes, {len(self.edges)} edges; {self.param_count():,} params "
                   f"({self.weight_count():,} synaptic); {self.mac_count():,} MACs per timestep "
                   f"(conventional), {self.connection_count():,} in-bounds connections")
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.nodes)} nodes, {len(self.edges)} edges)"
