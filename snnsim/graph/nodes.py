"""The node types of snnsim's network graph, named after NIR's where the meaning is the same.

A node describes one operation's *structure* (sizes, strides, which parameters exist); its
values (weights, biases, thresholds, leaks, batch-norm statistics) live in the model's state
dict under ``<node name>.<parameter>``. Shapes carry no batch dimension, as in NIR:
``(C, H, W)`` for maps, ``(F,)`` for vectors.

=================  ===========================  ==============================================
snnsim node        NIR                          notes
=================  ===========================  ==============================================
``Input``          ``Input``                    the (normalised) input; ``shape`` = (C, H, W),
                                               ``encoding`` direct | poisson
``Output``         ``Output``                   the logits
``Conv2d``         ``Conv2d``                   ``bias`` optional; per-node kernel, stride, ...
``Affine``         ``Affine`` / ``Linear``      ``bias=False`` is NIR's ``Linear``
``AvgPool2d``      ``AvgPool2d``
``SumPool2d``      ``SumPool2d``
``MaxPool2d``      (none)                       on spikes: an OR of the window
``Flatten``        ``Flatten``                  ``start_dim`` counts without the batch, as NIR
``Add``            fan-in (several edges)       a residual connection: two or more inputs
``BatchNorm2d``    (none)                       trained in the ANN, folded for the SNN
``Scale``          ``Scale``                    per channel (or one value)
``LIF``            ``LIF``                      discrete time: ``u <- leak*u + I``
``IF``             ``IF``                       ``LIF`` without leak
``CubaLIF``        ``CubaLIF``                  ``i <- alpha*i + I``, ``u <- leak*u + i``
``Integrator``     ``I``                        non-spiking output: accumulates its input
=================  ===========================  ==============================================

Every node computes its output shape from its input shapes (:meth:`Node.out_shape`), refusing
a mismatch with a :class:`GraphError` naming the node, so that a graph is checked whole before
anything is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

from snnsim.errors import SnnsimError

Shape = tuple[int, ...]
Pair = tuple[int, int]
#: How the Input node turns a (normalised) sample into what the first synapses read at each
#: timestep: ``direct`` feeds the analog values at every step; ``poisson`` feeds signed Poisson
#: spikes, ``sign(x)`` with probability ``min(|x|, 1)`` per element and step (paper.md sec. 2.3;
#: :mod:`snnsim.graph.encoding`).
ENCODINGS: tuple[str, ...] = ("direct", "poisson")
Reset = Literal["subtract", "value"]
Fire = Literal[">", ">="]


class GraphError(SnnsimError):
    """A network graph that cannot be built: the message names the node (or edge) and the fix."""


#: Largest kernel, stride, padding or dilation along one axis (the largest input side).
MAX_WINDOW = 4_096


def pair(value: int | tuple[int, ...] | list[int], what: str) -> Pair:
    """A kernel/stride/padding/dilation as a (height, width) pair: ``3`` -> ``(3, 3)``; each
    entry at most :data:`MAX_WINDOW`, so counting a window's taps stays finite."""
    if isinstance(value, bool):
        raise GraphError(f"{what} must be a whole number or a pair of them, got {value!r}")
    if isinstance(value, int):
        value = (value, value)
    if isinstance(value, tuple | list) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        if max(abs(int(v)) for v in value) > MAX_WINDOW:
            raise GraphError(f"{what} {list(value)} exceeds {MAX_WINDOW}", "use sizes up to the input side")
        return (int(value[0]), int(value[1]))
    raise GraphError(f"{what} must be a whole number or a pair of them, got {value!r}")


@dataclass(frozen=True)
class Node:
    """Base of every node: its kind, how many inputs it takes, its output shape and counts."""

    kind: ClassVar[str] = "node"
    #: (min, max) number of incoming edges; max None = any number.
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    #: Fields added after checkpoint format v2 first shipped: written by ``Graph.to_dict`` only
    #: when they differ from their default, so that every earlier graph (and the fingerprint of
    #: every model built from one) is unchanged.
    later_fields: ClassVar[frozenset[str]] = frozenset()

    def out_shape(self, name: str, inputs: list[Shape]) -> Shape:
        """The output shape for ``inputs`` (one shape per incoming edge)."""
        raise NotImplementedError

    def params(self, in_shape: Shape, out_shape: Shape) -> int:
        """Trainable values of this node (weights, biases, thresholds, leaks, BN affine)."""
        return 0

    def macs(self, in_shape: Shape, out_shape: Shape) -> int:
        """Multiply-accumulates of one dense forward pass, by the conventional formula (padding
        taps included, as the lineage's ``compute_mac``); 0 for nodes that are not synapses."""
        return 0

    def connections(self, in_shape: Shape, out_shape: Shape) -> int:
        """Synaptic connections of one dense forward pass that touch an in-bounds input (no
        padding taps): what an event-driven count can ever reach; 0 for non-synapses."""
        return 0

    def describe(self) -> str:
        """The node's settings in one short line (its non-default fields)."""
        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v != f.default:
                parts.append(f"{f.name}={_fmt(v)}")
        return " ".join(parts)

    def _need_map(self, name: str, shape: Shape) -> tuple[int, int, int]:
        if len(shape) != 3:
            raise GraphError(f"graph node {name!r} ({self.kind}) needs a (C, H, W) input, got shape {list(shape)}",
                             "put it before the Flatten, or use an Affine")
        return shape[0], shape[1], shape[2]


def _fmt(v: Any) -> str:
    if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1]:
        return str(v[0])
    return str(v)


# ----------------------------------------------------------------------------- ends
@dataclass(frozen=True)
class Input(Node):
    """The network input; ``shape`` without batch. ``encoding`` (:data:`ENCODINGS`): ``direct``
    feeds the sample at every timestep; ``poisson`` feeds its signed Poisson spikes. A sample
    that is already a sequence ([T, *shape]: a user's event frames) is fed step by step as is."""

    shape: Shape = (1, 1, 1)
    encoding: str = "direct"
    kind: ClassVar[str] = "Input"
    arity: ClassVar[tuple[int, int | None]] = (0, 0)
    later_fields: ClassVar[frozenset[str]] = frozenset({"encoding"})

    def out_shape(self, name: str, inputs: list[Shape]) -> Shape:
        from snnsim.limits import MAX_INPUT_CHANNELS, MAX_INPUT_SIDE

        if self.encoding not in ENCODINGS:
            raise GraphError(f"graph node {name!r} (Input): unknown encoding {self.encoding!r}",
                             f"choose one of {', '.join(ENCODINGS)}")

        if not self.shape or len(self.shape) > 3 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                              for v in self.shape) or min(self.shape) < 1:
            raise GraphError(f"graph node {name!r} (Input): shape {list(self.shape)} must be 1 to 3 positive sizes")
        if self.shape[0] > max(MAX_INPUT_CHANNELS, MAX_INPUT_SIDE ** 2) or max(self.shape[1:], default=1) > MAX_INPUT_SIDE:
            raise GraphError(f"graph node {name!r} (Input): shape {list(self.shape)} is too large",
                             f"use at most {MAX_INPUT_CHANNELS} channels and sides of at most {MAX_INPUT_SIDE}")
        return tuple(self.shape)


@dataclass(frozen=True)
class Output(Node):
    """The network output (the logits)."""

    kind: ClassVar[str] = "Output"

    def out_shape(self, name: str, inputs: list[Shape]) -> Shape:
        return inputs[0]


# ----------------------------------------------------------------------------- synapses
def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def inbounds_taps(size: int, k: int, s: int, p: int, d: int) -> int:
    """(output position, kernel tap) pairs along one axis whose input index is in bounds."""
    n_out = _conv_out(size, k, s, p, d)
    total = 0
    for tap in range(k):
        # output positions o with 0 <= o*s - p + tap*d < size
        lo = max(0, math.ceil((p - tap * d) / s))
        hi = min(n_out - 1, (size - 1 + p - tap * d) // s)
        total += max(0, hi - lo + 1)
    return total


@dataclass(frozen=True)
class Conv2d(Node):
    """2-D convolution; weight ``[out_channels, in_channels / groups, kH, kW]``."""

    out_channels: int = 1
    kernel_size: Pair = (3, 3)
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = False
    kind: ClassVar[str] = "Conv2d"

    def __post_init__(self) -> None:
        for f in ("kernel_size", "stride", "padding", "dilation"):
            object.__setattr__(self, f, pair(getattr(self, f), f"Conv2d {f}"))

    def out_shape(self, name: str, inputs: list[Shape]) -> Shape:
        c, h, w = self._need_map(name, inputs[0])
        from snnsim.limits import MAX_WIDTH

        if not 1 <= self.out_channels <= MAX_WIDTH or not 1 <= self.groups <= MAX_WIDTH:
            raise GraphError(f"graph node {name!r} (Conv2d): out_channels and groups must be in 1..{MAX_WIDTH}")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 \
                or min(self.dilation) < 1 or min(self.padding) < 0:
            raise GraphError(f"graph node {name!r} (Conv2d): sizes must be positive ({self.describe()})")
        if c % self.groups or self.out_channels % self.groups:
            raise GraphError(f"graph node {name!r} (Conv2d): groups={self.groups} must divide its "
                             f"{c} input and {self.out_channels} output channels")
        hw = tuple(_conv_out(n, k, s, p, d) for n, k, s, p, d in
                   zip((h, w), self.kernel_size, self.stride, self.padding, self.dilation, strict=True))
        if min(hw) < 1:
            raise GraphError(f"graph node {name!r} (Conv2d): kernel {list(self.kernel_size)} does not fit its "
                             f"(padded) {h}x{w} input", "use a smaller kernel or more padding")
        return (self.out_channels, hw[0], hw[1])

    def weight_shape(self, in_shape: Shape) -> Shape:
        return (self.out_channels, in_shape[0] // self.groups, *self.kernel_size)

    def params(self, in_shape: Shape, out_shape: Shape) -> int:
        return math.prod(self.weight_shape(in_shape)) + (self.out_channels if self.bias else 0)

    def macs(self, in_shape: Shape, out_shape: Shape) -> int:
        return math.prod(self.weight_shape(in_shape)) * out_shape[1] * out_shape[2]

    def connections(self, in_shape: Shape, out_shape: Shape) -> int:
        taps = [inbounds_taps(n, k, s, p, d) for n, k, s, p, d in
                zip(in_shape[1:], self.kernel_size, self.stride, self.padding, self.dilation, strict=True)]
        return self.out_channels * (in_shape[0] // self.groups) * taps[0] * taps[1]


@dataclass(frozen=True)
class Affine(Node):
    """Fully connected ``y = W x (+ b)``; weight ``[out_features, in_features]``."""

    out_features: int = 1
    bias: bool = True
    kind: ClassVar[str] = "Affine"

    def out_shape(self, name: str, inputs: list[Shape]) -> Shape:
        if len(inputs[0]) != 1:
            raise GraphError(f"graph node {name!r} (Affine) needs a vector input, got shape {list(inputs[0])}",
                             "put a Flatten in front of it")
        from snnsim.limits import MAX_WIDTH

        if not 1 <= self.out_features <= MAX_WIDTH:
            raise GraphError(f"graph node {name!r} (Affine): out_features must be in 1..{MAX_WIDTH}, got {self.out_features}")
        return (self.out_features,)

    def params(self, in_shape: Shape, out_shape: Shape) -> int:
        return in_shape[0] * self.out_features + (self.out_features if self.bias else 0)

    def macs(self, in_shape: Shape, out_shape: Shape) -> int:
        return in_shape[0] * self.out_features

    connections = macs


# ----------------------------------------------------------------------------- shape ops
@dataclass(frozen=True)
class _Pool2d(Node):
    kernel_size: Pair = (2, 2)
    stride: Pair | None = None  # None = kernel_size, as torch and NIR
    padding: Pair = (0, 0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel_size", pair(self.kernel_size, f"{self.kind} kernel_size"))
        object.__setattr__(self, "padding", pair(self.padding, f"{self.kind} padding"))
        stride = self.kernel_size if self.stride is None else pair(self.stride, f"{self.kind} stride")
        object.__setattr__(self, "stride", stride)

    def describe(self) -> str:
        parts = [f"kernel_size={_fmt(self.kernel_size)}"]
        if self.stride != self.kernel_size:
            parts.append(f"stride={_fmt(self.stride)}")
        if self.padding != (0, 0):
            parts.append(f"padding={_fmt(self.padding)}")
        return " ".join(parts)

    def out_shape(self, name: str, inputs: list[Shape]) -> Shape:
        c, h, w = self._need_map(name, inputs[0])
        assert self.stride is not None
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0 or \
                any(2 * p > k for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise GraphError(f"graph node {name!r} ({self.kind}): kernel and stride must be >= 1 and padding at "
                             f"most half the kernel ({self.describe()})")
        hw = [(n + 2 * p - k) // s + 1 for n, k, s, p in zip((h, w), self.kernel_size, self.stride, self.padding,
                                                              strict=True)]
        if min(hw) < 1:
            raise GraphError(f"graph node {name!r} ({self.kind}): window {list(self.kernel_size)} is larger than its "
                             f"{h}x{w} input")
        return (c, hw[0], hw[1])


@dataclass(frozen=True)
class AvgPool2d(_Pool2d):
    """Average pooling (NIR ``AvgPool2d``)."""

    kind: ClassVar[str] = "AvgPool2d"


@dataclass(frozen=True)
class SumPool2d(_Pool2d):
    """Sum pooling (NIR ``SumPool2d``): average pooling times the window size."""

    kind: ClassVar[str] = "SumPool2d"


@dataclass(frozen=True)
class MaxPool2d(_Pool2d):
    """Max pooling; on spikes an OR of the window (not in NIR)."""

    kind: ClassVar[str] = "MaxPool2d"


@dataclass(frozen=True)
class Flatten(Node):
    """Flatten dims ``start_dim..end_dim`` (NIR's, counted without the batch dimension)."""

    start_dim: int = 0
    end_dim: int = -1
    kind: ClassVar[str] = "Flatten"

    def out_shape(self, name: str, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        n = len(shape)
        a = self.start_dim + n if self.start_dim < 0 else self.start_dim
        b = self.end_dim + n if self.end_dim < 0 else self.end_dim
        if not 0 <= a <= b < n:
            raise GraphError(f"graph node {name!r} (Flatten): dims {self.start_dim}..{self.end_dim} do not fit "
                             f"a {n}-dim input {list(shape)}")
        return (*shape[:a], math.prod(shape[a:b + 1]), *shape[b + 1:])


@dataclass(frozen=True)
class Add(Node):
    """Elementwise sum of two or more inputs of one shape (a residual connection)."""

    kind: ClassVar[str] = "Add"
    arity: ClassVar[tuple[int, int | None]] = (2, None)

    def out_shape(self, name: str, inputs: list[Shape]) -> Shape:
        if len(set(inputs)) != 1:
            raise GraphError(f"graph node {name!r} (Add): its inputs have different shapes "
                             f"{', '.join(str(list(s)) for s in inputs)}",
                             "give the shortcut a downsample (a strided 1x1 Conv2d) to match")
        return inputs[0]


@dataclass(frozen=True)
class BatchNorm2d(Node):
    """Per-channel batch norm (weight, bias, running mean and var); folded into the synapse in
    front of it for the SNN, costed per element where it cannot be folded."""

    eps: float = 1e-5
    kind: ClassVar[str] = "BatchNorm2d"

    def out_shape(self, name: str, inputs: list[Shape]) -> Shape:
        self._need_map(name, inputs[0])
        if not (self.eps > 0 and math.isfinite(self.eps)):
            raise GraphError(f"graph node {name!r} (BatchNorm2d): eps must be a positive number, got {self.eps}")
        return inputs[0]

    def params(self, in_shape: Shape, out_shape: Shape) -> int:
        return 2 * in_shape[0]


@dataclass(frozen=True)
class Scale(Node):
    """Multiply by a per-channel factor (NIR ``Scale``); ``per_channel=False`` = one factor."""

    per_channel: bool = True
    kind: ClassVar[str] = "Scale"

    def out_shape(self, name: str, inputs: list[Shape]) -> Shape:
        return inputs[0]

    def params(self, in_shape: Shape, out_shape: Shape) -> int:
        return in_shape[0] if self.per_channel else 1


# ----------------------------------------------------------------------------- neurons
@dataclass(frozen=True)
class _Neuron(Node):
    per_channel: bool = False  # one threshold (and leak) per channel instead of per population
    reset: Reset = "subtract"  # soft reset by the threshold, or a hard reset to v_reset
    v_reset: float = 0.0
    fire: Fire = ">"  # spike when u > threshold (snnsim, NIR, snnTorch) or u >= (SpikingJelly)
    dropout: float = 0.0  # training only: one mask per sample, held for every timestep

    def out_shape(self, name: str, inputs: list[Shape]) -> Shape:
        if self.reset not in ("subtract", "value"):
            raise GraphError(f"graph node {name!r} ({self.kind}): reset must be 'subtract' or 'value', "
                             f"got {self.reset!r}")
        if self.fire not in (">", ">="):
            raise GraphError(f"graph node {name!r} ({self.kind}): fire must be '>' or '>=', got {self.fire!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise GraphError(f"graph node {name!r} ({self.kind}): dropout must be in [0, 1), got {self.dropout}")
        return inputs[0]

    def _values(self, shape: Shape) -> int:
        return shape[0] if self.per_channel else 1


@dataclass(frozen=True)
class LIF(_Neuron):
    """Leaky integrate-and-fire, discrete time: ``u <- leak * u + I``; fire ``u (fire) theta``;
    reset by subtracting ``theta`` or to ``v_reset``. Threshold and leak are trained."""

    kind: ClassVar[str] = "LIF"

    def params(self, in_shape: Shape, out_shape: Shape) -> int:
        return 2 * self._values(in_shape)


@dataclass(frozen=True)
class IF(_Neuron):
    """Integrate-and-fire: a :class:`LIF` whose leak is 1 (no leak parameter)."""

    kind: ClassVar[str] = "IF"

    def params(self, in_shape: Shape, out_shape: Shape) -> int:
        return self._values(in_shape)


@dataclass(frozen=True)
class CubaLIF(_Neuron):
    """Current-based LIF (NIR ``CubaLIF``, snnTorch ``Synaptic``): a LIF whose input passes
    through a decaying synaptic current, so each neuron has two states, discrete time:
    ``i <- alpha * i + I`` (``I`` the step's summed synaptic input, biases included), then
    ``u <- leak * u + i``; fire ``u (fire) theta``; reset ``u`` by subtracting ``theta`` or to
    ``v_reset`` (``i`` is not reset). Threshold, leak and ``alpha`` (the synaptic decay, kept in
    [0, 1] like the leak) are trained."""

    kind: ClassVar[str] = "CubaLIF"

    def params(self, in_shape: Shape, out_shape: Shape) -> int:
        return 3 * self._values(in_shape)


@dataclass(frozen=True)
class Integrator(Node):
    """The non-spiking output population: accumulates its input over the timesteps; the logits
    are the mean over T (NIR ``I``)."""

    kind: ClassVar[str] = "Integrator"

    def out_shape(self, name: str, inputs: list[Shape]) -> Shape:
        return inputs[0]


#: Every node type by its kind name (for serialisation).
NODE_TYPES: dict[str, type[Node]] = {t.kind: t for t in (Input, Output, Conv2d, Affine, AvgPool2d, SumPool2d,
                                                         MaxPool2d, Flatten, Add, BatchNorm2d, Scale, LIF, IF,
                                                         CubaLIF, Integrator)}
#: Node kinds that are synapses (hold a weight and drive a population).
SYNAPSES = ("Conv2d", "Affine")
#: Node kinds that are spiking neuron populations.
SPIKING = ("LIF", "IF", "CubaLIF")
#: Node kinds that are neuron populations.
NEURONS = (*SPIKING, "Integrator")
