"""Lowering a network graph to one ordered schedule, and lowering passes over graph + state.

:func:`lower` is the *one* place where the order of operations of a graph is written down: a
tuple of :class:`Step` (one per node except ``Input`` and ``Output``, in the graph's
topological order), the populations (``LIF``/``IF``/``Integrator``) with their index, and for
each step the values no later step reads (so a backend can free them). The PyTorch backend
(:mod:`snnsim.graph.torch_net`) runs it; the numba backends are meant to run the same schedule,
so that every backend integrates, fires and draws dropout masks in the same order.

:func:`fold_batchnorm` is a lowering pass for inference: each ``BatchNorm2d`` directly behind a
``Conv2d`` that feeds nothing else is folded into that conv's weight and bias, and disappears
from the graph. Where the conv also feeds another node (or the BN follows something else) the
BN stays, and is costed per element.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch

from snnsim.graph.graph import Graph
from snnsim.graph.nodes import NEURONS, BatchNorm2d, Conv2d, GraphError, Input, Node, Output, Shape


class Step(NamedTuple):
    """One operation of a schedule: the node ``name``, the ``node`` itself, the names of the
    values it reads (in edge order: the operand order of an ``Add``) and its output shape."""

    name: str
    node: Node
    inputs: tuple[str, ...]
    out_shape: Shape


class Population(NamedTuple):
    """A neuron population (LIF, IF or Integrator) of a schedule: its ``index`` among the
    populations, its node name, the node, its shape, and the index of its step."""

    index: int
    name: str
    node: Node
    shape: Shape
    step: int


@dataclass(frozen=True)
class Schedule:
    """A graph lowered to one ordered list of steps (see the module docstring)."""

    graph: Graph
    steps: tuple[Step, ...]
    populations: tuple[Population, ...]
    #: name of the Input node (its value is the network input) and its shape (no batch)
    input: str
    input_shape: Shape
    #: name of the node whose value is the network output (the Output node's input)
    output_source: str
    #: per step, the values that no later step reads (free them after that step)
    release: tuple[tuple[str, ...], ...]

    def population(self, name: str) -> Population:
        """The population named ``name``."""
        for p in self.populations:
            if p.name == name:
                return p
        raise GraphError(f"graph {self.graph.name!r} has no population {name!r}",
                         f"choose one of {', '.join(p.name for p in self.populations)}")


def lower(graph: Graph) -> Schedule:
    """The schedule of ``graph``: its nodes but Input/Output in topological order."""
    if not isinstance(graph, Graph):
        raise GraphError(f"lower() needs a Graph, got a {type(graph).__name__}", "build one with snnsim.graph")
    steps: list[Step] = []
    pops: list[Population] = []
    for name in graph.order:
        info = graph.info[name]
        if isinstance(info.node, Input | Output):
            continue
        if info.kind in NEURONS:
            pops.append(Population(len(pops), name, info.node, info.out_shape, len(steps)))
        steps.append(Step(name, info.node, info.inputs, info.out_shape))
    out_src = graph.info[graph.output].inputs[0]
    last_read: dict[str, int] = {}
    for k, step in enumerate(steps):
        for src in step.inputs:
            last_read[src] = k
    release: list[list[str]] = [[] for _ in steps]
    for src, k in last_read.items():
        if src != out_src:
            release[k].append(src)
    return Schedule(graph, tuple(steps), tuple(pops), graph.input, graph.info[graph.input].out_shape, out_src,
                    tuple(tuple(r) for r in release))


# ----------------------------------------------------------------------------- BN folding
def foldable_batchnorms(graph: Graph) -> list[tuple[str, str]]:
    """(conv, bn) pairs :func:`fold_batchnorm` folds: a BatchNorm2d whose one input is a
    Conv2d that feeds nothing but that BatchNorm2d."""
    succs = graph.successors
    pairs = []
    for name in graph.order:
        info = graph.info[name]
        if not isinstance(info.node, BatchNorm2d):
            continue
        src = info.inputs[0]
        if isinstance(graph.nodes[src], Conv2d) and succs[src] == [name]:
            pairs.append((src, name))
    return pairs


def _need(state: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state:
        raise GraphError(f"fold_batchnorm: the state has no {key!r}",
                         "pass the model's full state_dict() (BN running statistics included)")
    value = state[key]
    if not isinstance(value, torch.Tensor):
        raise GraphError(f"fold_batchnorm: state[{key!r}] is a {type(value).__name__}, not a tensor")
    return value


def fold_batchnorm(graph: Graph, state: Mapping[str, torch.Tensor]) -> tuple[Graph, dict[str, torch.Tensor]]:
    """Fold every foldable BatchNorm2d into the Conv2d in front of it (inference semantics:
    running statistics); returns the new graph and state, leaving the inputs untouched.

    ``w' = w * k`` and ``b' = beta + (b - mean) * k`` with ``k = gamma / sqrt(var + eps)``
    (``b = 0`` for a conv without bias); the conv gets ``bias=True``, the BN node and its state
    entries disappear and its outgoing edges start at the conv (in place, so an ``Add`` keeps
    its operand order). Computed in float64, stored in the weight's dtype.
    """
    if not isinstance(graph, Graph):
        raise GraphError(f"fold_batchnorm() needs a Graph, got a {type(graph).__name__}",
                         "build one with snnsim.graph")
    pairs = foldable_batchnorms(graph)
    new_state: dict[str, torch.Tensor] = dict(state)
    for conv, bn in pairs:
        node = graph.nodes[bn]
        assert isinstance(node, BatchNorm2d)
        conv_node = graph.nodes[conv]
        assert isinstance(conv_node, Conv2d)
        w = _need(state, f"{conv}.weight")
        gamma, beta = _need(state, f"{bn}.weight"), _need(state, f"{bn}.bias")
        mean, var = _need(state, f"{bn}.running_mean"), _need(state, f"{bn}.running_var")
        channels = conv_node.out_channels
        for key, t in ((f"{bn}.weight", gamma), (f"{bn}.bias", beta), (f"{bn}.running_mean", mean),
                       (f"{bn}.running_var", var)):
            if tuple(t.shape) != (channels,):
                raise GraphError(f"fold_batchnorm: state[{key!r}] has shape {list(t.shape)}, expected [{channels}]",
                                 "pass the state of a model built from this graph")
        k = gamma.double() / torch.sqrt(var.double() + node.eps)
        b = state[f"{conv}.bias"].double() if conv_node.bias else torch.zeros_like(k)
        new_state[f"{conv}.weight"] = (w.double() * k.view(-1, 1, 1, 1)).to(w.dtype)
        new_state[f"{conv}.bias"] = (beta.double() + (b - mean.double()) * k).to(w.dtype)
        for key in [key for key in new_state if key.startswith(f"{bn}.")]:
            del new_state[key]
    return fold_structure(graph), new_state


def fold_structure(graph: Graph) -> Graph:
    """The graph :func:`fold_batchnorm` returns, without the values: each foldable BatchNorm2d
    removed, its conv given a bias, the BN's outgoing edges starting at the conv (in place, so an
    ``Add`` keeps its operand order). A graph without foldable BN is returned as it is."""
    pairs = foldable_batchnorms(graph)
    if not pairs:
        return graph
    nodes: dict[str, Node] = dict(graph.nodes)
    bn_to_conv: dict[str, str] = {}
    for conv, bn in pairs:
        nodes[conv] = dataclasses.replace(graph.nodes[conv], bias=True)  # type: ignore[type-var]
        del nodes[bn]
        bn_to_conv[bn] = conv
    edges = [(bn_to_conv.get(a, a), b) for a, b in graph.edges if b not in bn_to_conv]
    return Graph(nodes, edges, name=graph.name)
