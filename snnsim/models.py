"""The model: one network graph run by PyTorch as an ANN or an SNN.

Every snnsim model is a :class:`~snnsim.graph.torch_net.GraphNet` (named ``Model`` here): the
VGG chains are built from their :class:`~snnsim.arch.ArchSpec` by
:func:`snnsim.graph.vgg_graph`, the ResNets by their graph builders. Neuron model, direct input,
surrogate gradient, dropout and output integration are documented in
:mod:`snnsim.graph.torch_net`; the SNN neuron follows paper.md §2.2 (the DIET-SNN / IIR-SNN
form): integrate ``u <- leak * u + I``, fire ``u > theta``, soft reset, all in one timestep,
per-population threshold and leak trained, leak clamped to [0, 1], initialised to 0.9901.
"""

from __future__ import annotations

import torch

from snnsim.arch import ArchSpec
from snnsim.errors import SnnsimError
from snnsim.graph.builders import vgg_graph
from snnsim.graph.graph import Graph
from snnsim.graph.torch_net import (
    DEFAULT_LEAK,
    MODEL_KINDS,
    SURROGATE_GAMMA,
    GraphNet,
    LinearSpike,
    Observer,
    PopulationEvent,
)

#: The model type of every snnsim function that takes a network.
Model = GraphNet

__all__ = ["DEFAULT_LEAK", "MODEL_KINDS", "SURROGATE_GAMMA", "LinearSpike", "Model", "Observer", "PopulationEvent",
           "build_model", "describe_arch", "graph_of"]


def describe_arch(arch: ArchSpec | Graph) -> str:
    """One line for a VGG spec (its widths) or a graph (its name, nodes and weights)."""
    if isinstance(arch, ArchSpec):
        return arch.describe()
    shape = list(arch.info[arch.input].out_shape)
    return f"{arch.name} in{shape} ({len(arch.nodes)} nodes, {arch.weight_count():,} weights)"


def graph_of(arch: ArchSpec | Graph) -> Graph:
    """The graph of a VGG spec (:func:`snnsim.graph.vgg_graph`), or the graph itself."""
    if isinstance(arch, ArchSpec):
        return vgg_graph(arch)
    if isinstance(arch, Graph):
        return arch
    raise SnnsimError(f"a model is built from an ArchSpec or a Graph, got a {type(arch).__name__}",
                      "use snnsim.arch.make_arch or snnsim.graph.build_graph")


def build_model(arch: ArchSpec | Graph, kind: str = "snn", timesteps: int = 5, leak: float = DEFAULT_LEAK,
                seed: int | None = None) -> Model:
    """A freshly initialised model of ``arch`` (a VGG spec or a graph); ``seed`` makes the
    initial weights reproducible (a VGG spec gets the same weights as snnsim before the graph)."""
    graph = graph_of(arch)

    def make() -> Model:
        net = GraphNet(graph, kind=kind, timesteps=timesteps, leak=leak)
        net.spec = arch if isinstance(arch, ArchSpec) else None
        return net

    if seed is not None:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return make()
    return make()
