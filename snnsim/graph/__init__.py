"""snnsim's network graph: typed nodes (named after NIR's), directed edges, validation, shape
inference and counts; builders for the named networks (VGG chains, ResNet-19/20, a digits
ResNet). See :mod:`snnsim.graph.nodes`, :mod:`snnsim.graph.graph`, :mod:`snnsim.graph.builders`.
"""

from __future__ import annotations

from snnsim.graph.builders import (
    GRAPH_BUILDERS,
    GraphBuilder,
    build_graph,
    build_network,
    digits_resnet,
    network_names,
    resnet19,
    resnet20,
    vgg_graph,
)
from snnsim.graph.graph import Graph, NodeInfo
from snnsim.graph.layers import simulation_view
from snnsim.graph.nodes import (
    IF,
    LIF,
    NODE_TYPES,
    SPIKING,
    Add,
    Affine,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    CubaLIF,
    Flatten,
    GraphError,
    Input,
    Integrator,
    MaxPool2d,
    Node,
    Output,
    Scale,
    SumPool2d,
)
from snnsim.graph.schedule import Schedule, fold_batchnorm, fold_structure, lower
from snnsim.graph.torch_net import GraphNet, convert_spikingnet_state

__all__ = [
    "GRAPH_BUILDERS", "IF", "LIF", "NODE_TYPES", "SPIKING", "Add", "Affine", "AvgPool2d", "BatchNorm2d", "Conv2d", "CubaLIF", "Flatten",
    "Graph", "GraphBuilder", "GraphError", "GraphNet", "Input", "Integrator", "MaxPool2d", "Node", "NodeInfo", "Output",
    "Scale", "Schedule", "SumPool2d", "build_graph", "build_network", "convert_spikingnet_state", "digits_resnet",
    "fold_batchnorm", "fold_structure", "lower", "network_names", "resnet19", "resnet20", "simulation_view", "vgg_graph",
]
