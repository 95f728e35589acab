"""Builders: the named networks as graphs.

* :func:`vgg_graph` turns an :class:`~snnsim.arch.ArchSpec` (the VGG chains: ``digits``,
  ``vgg5/9/11/16`` and every spatially pruned width list) into a graph with the same layers,
  names and sizes as ``ArchSpec.layers()``: ``convK`` / ``fcK`` / ``out`` synapses, each
  spiking one followed by its ``<name>_lif`` population, pools and the flatten in between, and
  the output accumulated by ``out_integrator``. Its parameter and MAC counts equal the spec's.
* :func:`resnet19`: the CIFAR ResNet-19 of the TET / tdBN line (stem conv 128, basic blocks
  [3, 3, 2] at widths 128 / 256 / 512 with strides 1 / 2 / 2, global average pooling, fc 256,
  classifier).
* :func:`resnet20`: He et al.'s CIFAR ResNet-20 (stem conv 16, [3, 3, 3] blocks at 16 / 32 / 64,
  strides 1 / 2 / 2, global average pooling, classifier), with 1x1 convolution shortcuts where
  the shape changes (He's option B).
* :func:`digits_resnet`: a small residual network for the 1x8x8 digits, so the whole pipeline
  runs offline: stem conv 32, one identity block at 32 and one strided block at 64 with a 1x1
  downsample, global average pooling, classifier.

Residual blocks are the "spiking ResNet" form: ``conv-BN-LIF-conv-BN``, the shortcut (identity
or ``1x1 conv-BN``) added to the second BN's output, then the block's LIF: the add is on the
membrane input, so the next synapse is driven by the spikes of one population. Convolutions in
front of a BN have no bias (the BN's shift is the bias), as in the reference code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from snnsim.arch import ArchSpec
from snnsim.graph.graph import Graph
from snnsim.graph.nodes import (
    LIF,
    Add,
    Affine,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Input,
    Integrator,
    MaxPool2d,
    Node,
    Output,
    Shape,
)


class GraphBuilder:
    """Append nodes one after another (each reads the previous by default); names are checked
    for uniqueness; :meth:`build` validates the whole graph."""

    def __init__(self, name: str, input_shape: Shape) -> None:
        self.name = name
        self.nodes: dict[str, Node] = {"input": Input(tuple(input_shape))}
        self.edges: list[tuple[str, str]] = []
        self.last = "input"

    def add(self, name: str, node: Node, *inputs: str) -> str:
        """Add ``node`` as ``name``, fed by ``inputs`` (default: the last node added)."""
        if name in self.nodes:
            raise ValueError(f"duplicate node name {name!r}")
        self.nodes[name] = node
        for src in inputs or (self.last,):
            self.edges.append((src, name))
        self.last = name
        return name

    def build(self) -> Graph:
        self.add("output", Output())
        return Graph(self.nodes, self.edges, name=self.name)


# ----------------------------------------------------------------------------- VGG
def vgg_graph(spec: ArchSpec) -> Graph:
    """The graph of a VGG spec: the same synaptic layers as ``spec.layers()`` (see the module
    docstring); dropout rates ride on the populations they follow."""
    g = GraphBuilder(spec.name, spec.input_shape)
    k, p, pool = spec.kernel_size, spec.padding, spec.pool_size
    pools = 0
    for info in spec.layers():
        if info.pool is not None:
            pools += 1
            cls = AvgPool2d if info.pool == "avg" else MaxPool2d
            g.add(f"pool{pools}", cls(kernel_size=pool))
        if info.flatten:
            g.add("flatten", Flatten())
        if info.kind == "conv":
            g.add(info.name, Conv2d(out_channels=info.out_shape[0], kernel_size=k, padding=p, bias=False))
        else:
            g.add(info.name, Affine(out_features=info.out_features, bias=False))
        if info.spiking:
            dropout = spec.dropout_conv if info.kind == "conv" else spec.dropout_fc
            g.add(f"{info.name}_lif", LIF(dropout=dropout))
        else:
            g.add(f"{info.name}_integrator", Integrator())
    return g.build()


def spec_builds(spec: ArchSpec, graph: Graph) -> bool:
    """Whether the VGG ``spec`` builds exactly ``graph`` (nodes, fields, edges, name): what a
    checkpoint's or a trace's ``arch`` entry must satisfy. A VGG has no batch norm, so its
    folded graph is the same graph. The Input node's encoding is the model's, not the spec's, so
    it is not compared."""
    def without_encoding(g: Graph) -> dict[str, Any]:
        d = g.to_dict()
        d["nodes"][g.input].pop("encoding", None)
        return d

    return without_encoding(vgg_graph(spec)) == without_encoding(graph)


# ----------------------------------------------------------------------------- ResNets
def _conv_bn(g: GraphBuilder, name: str, channels: int, kernel: int, stride: int, *inputs: str) -> str:
    g.add(name, Conv2d(out_channels=channels, kernel_size=kernel, stride=stride, padding=kernel // 2), *inputs)
    return g.add(f"{name}_bn", BatchNorm2d())


def _basic_block(g: GraphBuilder, name: str, in_channels: int, channels: int, stride: int) -> str:
    """conv-BN-LIF-conv-BN + shortcut (identity, or 1x1 conv-BN where the shape changes) -> LIF."""
    entry = g.last
    _conv_bn(g, f"{name}_conv1", channels, 3, stride, entry)
    g.add(f"{name}_lif1", LIF())
    main = _conv_bn(g, f"{name}_conv2", channels, 3, 1)
    shortcut = entry
    if stride != 1 or in_channels != channels:
        shortcut = _conv_bn(g, f"{name}_down", channels, 1, stride, entry)
    g.add(f"{name}_add", Add(), main, shortcut)
    return g.add(f"{name}_lif2", LIF())


def _sew_block(g: GraphBuilder, name: str, in_channels: int, channels: int, stride: int) -> str:
    """A SEW block with the ADD connection (Fang et al., 2021): conv-BN-LIF-conv-BN-LIF, whose
    spikes are *added* to the block's input spikes (or to its 1x1 conv-BN-LIF downsample where
    the shape changes). The sum is graded (a 2 where two spikes meet) and feeds the next synapses."""
    entry = g.last
    _conv_bn(g, f"{name}_conv1", channels, 3, stride, entry)
    g.add(f"{name}_lif1", LIF())
    _conv_bn(g, f"{name}_conv2", channels, 3, 1)
    main = g.add(f"{name}_lif2", LIF())
    shortcut = entry
    if stride != 1 or in_channels != channels:
        _conv_bn(g, f"{name}_down", channels, 1, stride, entry)
        shortcut = g.add(f"{name}_down_lif", LIF())
    return g.add(f"{name}_add", Add(), main, shortcut)


def _resnet(name: str, input_shape: Shape, num_classes: int, stem: int, stages: list[tuple[int, int, int]],
            hidden_fc: int | None, block: Callable[[GraphBuilder, str, int, int, int], str] = _basic_block) -> Graph:
    """A CIFAR-style ResNet: stem conv-BN-LIF, stages of (blocks, width, first stride) of
    ``block``, global average pooling, optional hidden fc + LIF, the classifier into the output
    integrator."""
    g = GraphBuilder(name, input_shape)
    _conv_bn(g, "stem", stem, 3, 1)
    g.add("stem_lif", LIF())
    channels, side = stem, (input_shape[1], input_shape[2])
    for s, (blocks, width, stride) in enumerate(stages, start=1):
        for b in range(1, blocks + 1):
            st = stride if b == 1 else 1
            block(g, f"s{s}b{b}", channels, width, st)
            if st != 1:
                side = ((side[0] + 2 - 3) // st + 1, (side[1] + 2 - 3) // st + 1)
            channels = width
    g.add("gap", AvgPool2d(kernel_size=side))
    g.add("flatten", Flatten())
    if hidden_fc:
        g.add("fc1", Affine(out_features=hidden_fc))
        g.add("fc1_lif", LIF())
    g.add("out", Affine(out_features=num_classes))
    g.add("out_integrator", Integrator())
    return g.build()


def resnet19(input_shape: Shape = (3, 32, 32), num_classes: int = 10) -> Graph:
    """CIFAR ResNet-19 (TET / tdBN line): see the module docstring."""
    return _resnet("resnet19", input_shape, num_classes, 128, [(3, 128, 1), (3, 256, 2), (2, 512, 2)], 256)


def resnet20(input_shape: Shape = (3, 32, 32), num_classes: int = 10) -> Graph:
    """He et al.'s CIFAR ResNet-20 with 1x1 conv shortcuts: see the module docstring."""
    return _resnet("resnet20", input_shape, num_classes, 16, [(3, 16, 1), (3, 32, 2), (3, 64, 2)], None)


def digits_resnet(input_shape: Shape = (1, 8, 8), num_classes: int = 10) -> Graph:
    """Two residual blocks for the 8x8 digits, the second strided with a 1x1 downsample."""
    return _resnet("digits-resnet", input_shape, num_classes, 32, [(1, 32, 1), (1, 64, 2)], None)


def digits_sew(input_shape: Shape = (1, 8, 8), num_classes: int = 10) -> Graph:
    """``digits-resnet`` with SEW blocks (ADD connection): the blocks' outputs are sums of spikes."""
    return _resnet("digits-sew", input_shape, num_classes, 32, [(1, 32, 1), (1, 64, 2)], None, _sew_block)


#: Graph-only architectures by name (VGG specs come from :func:`snnsim.arch.make_arch`).
GRAPH_BUILDERS: dict[str, Callable[..., Graph]] = {
    "resnet19": resnet19,
    "resnet20": resnet20,
    "digits-resnet": digits_resnet,
    "digits-sew": digits_sew,
}


def network_names() -> tuple[str, ...]:
    """Every named architecture: the VGG specs, then the graph builders (the CLI's choices)."""
    from snnsim.arch import ARCH_NAMES

    return (*ARCH_NAMES, *GRAPH_BUILDERS)


def build_network(name: str, input_shape: Shape | None = None, num_classes: int | None = None) -> ArchSpec | Graph:
    """A named architecture as it is trained: a VGG's :class:`~snnsim.arch.ArchSpec` (spatial
    pruning edits its widths), or a graph builder's graph."""
    from snnsim.arch import ARCH_NAMES, make_arch

    if name in ARCH_NAMES:
        return make_arch(name, input_shape, num_classes)  # type: ignore[arg-type]
    return build_graph(name, input_shape, num_classes)


def build_graph(name: str, input_shape: Shape | None = None, num_classes: int | None = None) -> Graph:
    """The graph of any named architecture: a VGG spec's or a graph builder's."""
    from snnsim.arch import ARCH_NAMES, make_arch
    from snnsim.graph.nodes import GraphError

    kwargs = {k: v for k, v in (("input_shape", input_shape), ("num_classes", num_classes)) if v is not None}
    if name in GRAPH_BUILDERS:
        return GRAPH_BUILDERS[name](**kwargs)
    if name in ARCH_NAMES:
        return vgg_graph(make_arch(name, input_shape, num_classes))
    raise GraphError(f"unknown architecture {name!r}", f"choose one of {', '.join((*ARCH_NAMES, *GRAPH_BUILDERS))}")
