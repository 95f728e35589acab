"""Architecture specs: one description builds both the ANN and the SNN.

A VGG is a list of feature entries (an int = a 3x3 same-padded conv with that many output
channels, ``'A'`` = 2x2 average pooling, ``'M'`` = 2x2 max pooling), a list of hidden
fully-connected widths, an input shape and a class count. Spatial pruning edits only the widths
(:meth:`ArchSpec.with_widths`), so the parameter and FLOP arithmetic of a pruned network is
exactly that of the spec.

:meth:`ArchSpec.layers` walks the network as the simulator sees it: a list of *synaptic* layers
(conv or linear), each with its input shape, output shape, kernel/stride/padding, the pooling
that sits in front of it (folded into this layer, see ``docs/counting.md``), and whether it
spikes (every synaptic layer but the output layer, which only accumulates membrane potential).

Counting rules (the lineage's ``compute_mac``, ``../shared/docs/paper.md`` §2.13): conv FLOPs =
k*k*C_in*H_out*W_out*C_out, linear = in*out, pooling is free; no biases anywhere.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from snnsim.errors import SnnsimError
from snnsim.limits import (
    MAX_DOCUMENT_DEPTH,
    MAX_INPUT_CHANNELS,
    MAX_INPUT_SIDE,
    MAX_PARAMS,
    MAX_WIDTH,
)

FeatureEntry = int | str
LayerKind = Literal["conv", "linear", "identity"]
PoolKind = Literal["avg", "max", "sum"]

# Lineage VGG feature lists (hybrid-snn-conversion / DIET-SNN / IIR-SNN `cfg`, paper.md §3.2).
VGG_FEATURES: dict[str, list[FeatureEntry]] = {
    "vgg5": [64, "A", 128, 128, "A"],
    "vgg9": [64, "A", 128, 256, "A", 256, 512, "A", 512, "A", 512],
    "vgg11": [64, "A", 128, 256, "A", 512, 512, "A", 512, "A", 512, 512],
    "vgg16": [64, 64, "A", 128, 128, "A", 256, 256, 256, "A", 512, 512, 512, "A", 512, 512, 512],
}
VGG_CLASSIFIER = [4096, 4096]

# A small VGG for scikit-learn's 8x8 digits: wide enough that PCA has something to prune.
DIGITS_FEATURES: list[FeatureEntry] = [64, 64, "A", 128, 128, "A"]
DIGITS_CLASSIFIER = [256]

#: Synaptic layers plus pools of one spec (VGG16 has 21 entries): keeps the layer walk short.
MAX_LAYERS = 1_024
#: Conv kernel and pooling window side (the lineage uses 3 and 2).
MAX_KERNEL = 64
#: Neurons of one forward pass, all layers together (VGG16 on 224x224 ImageNet has 1.5e7):
#: bounds the membrane-potential memory of a single sample before anything runs.
MAX_NEURONS = 2_000_000_000
#: Characters of a spec name (it appears in messages and reports).
MAX_NAME_CHARS = 256

_REQUIRED_FIELDS = ("name", "features", "classifier", "input_shape", "num_classes")


@dataclass(frozen=True)
class LayerInfo:
    """One synaptic layer as the simulator and the trace see it."""

    index: int
    name: str
    kind: LayerKind
    in_shape: tuple[int, ...]  # shape of the tensor the synapses read (after pooling/flatten)
    out_shape: tuple[int, ...]  # (C, H, W) for conv, (F,) for linear
    source_shape: tuple[int, ...]  # shape of the recorded input events (before pooling)
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    groups: int = 1  # conv: input and output channels split into this many independent groups
    dilation: int = 1  # conv: kernel tap ky reads input offset ky * dilation
    pool: PoolKind | None = None  # pooling folded in front of this layer
    pool_kernel: int = 1
    flatten: bool = False  # input is flattened from a (C, H, W) map
    spiking: bool = True  # False for the output (accumulating) layer
    analog_input: bool = False  # True for the first layer (direct analog input)
    source: str = "input"  # the population whose spikes it reads ("input": the analog input)
    target: str = ""  # the population its current drives
    bias: bool = False  # adds a bias to every target neuron at every timestep
    #: a graded source (a SEW add of spikes): ``source`` is the Add node and these are the
    #: populations whose spikes it sums, in operand order; () for a plain source
    parts: tuple[str, ...] = ()
    #: an unfolded BatchNorm2d between the summed input current and the target population (its
    #: node name; "" for none): a per-channel multiply-add per neuron per timestep, charged on
    #: the population's first layer (docs/counting.md)
    norm: str = ""

    @property
    def sources(self) -> tuple[str, ...]:
        """The populations (or ``"input"``) whose events this layer reads: its ``parts`` for a
        graded source, else its one ``source``."""
        return self.parts or (self.source,)

    @property
    def in_features(self) -> int:
        return self.in_shape[0] if self.kind in ("conv", "identity") else _prod(self.in_shape)

    @property
    def out_features(self) -> int:
        return self.out_shape[0]

    @property
    def neurons(self) -> int:
        """Number of output neurons (potentials) of this layer."""
        return _prod(self.out_shape)

    @property
    def group_in(self) -> int:
        """Input channels of one conv group (C_in / groups): the weight's second axis."""
        return self.in_shape[0] // self.groups

    @property
    def params(self) -> int:
        """Weights and biases (an identity edge has none)."""
        bias = self.out_shape[0] if self.bias else 0
        if self.kind == "conv":
            return self.kernel * self.kernel * self.group_in * self.out_shape[0] + bias
        if self.kind == "identity":
            return 0
        return self.in_features * self.out_features + bias

    @property
    def macs(self) -> int:
        """Dense MACs of one forward pass (one timestep), by the lineage's compute_mac rule
        (k*k*C_in/groups*H_out*W_out*C_out: each output reads its group's channels); an
        identity edge (a residual shortcut) is one add per neuron (``docs/counting.md``)."""
        if self.kind == "conv":
            c_out, h_out, w_out = self.out_shape
            return self.kernel * self.kernel * self.group_in * h_out * w_out * c_out
        if self.kind == "identity":
            return self.neurons
        return self.in_features * self.out_features

    @property
    def source_size(self) -> int:
        """Number of input event sites per timestep (elements of the pre-pool input map)."""
        return _prod(self.source_shape)

    def weight_shape(self) -> tuple[int, ...]:
        """The weight tensor's shape (torch layout); ``()`` for an identity edge (no weight)."""
        if self.kind == "conv":
            return (self.out_shape[0], self.group_in, self.kernel, self.kernel)
        if self.kind == "identity":
            return ()
        return (self.out_features, self.in_features)


@dataclass(frozen=True)
class PopulationInfo:
    """One neuron population as the simulator and the trace see it: a LIF/IF population (it
    spikes) or the output integrator, with the synapse layers that drive it (``layers``, indices
    into the layer list, in order; their currents are summed)."""

    index: int
    name: str
    kind: str  # 'LIF' | 'IF' | 'CubaLIF' | 'Integrator'
    shape: tuple[int, ...]
    layers: tuple[int, ...]

    @property
    def spiking(self) -> bool:
        return self.kind != "Integrator"

    @property
    def neurons(self) -> int:
        return _prod(self.shape)

    @property
    def primary(self) -> int:
        """The first layer (lowest index) driving it: its rows carry the population's neuron
        counts (as :func:`primary_layers` marks them)."""
        return min(self.layers)


def primary_layers(layers: list[LayerInfo] | tuple[LayerInfo, ...]) -> list[bool]:
    """Per layer, whether it is the first to drive its target population: that row carries the
    population's neuron figures (neurons, spikes, membrane updates), the others only synaptic
    ones, so a population fed by a residual add is counted once."""
    seen: set[str] = set()
    out = []
    for info in layers:
        out.append(info.target not in seen)
        seen.add(info.target)
    return out


@dataclass(frozen=True)
class ArchSpec:
    """A VGG-style network: features (convs + pools), hidden FC widths, input shape, classes."""

    name: str
    features: tuple[FeatureEntry, ...]
    classifier: tuple[int, ...]
    input_shape: tuple[int, int, int]
    num_classes: int
    kernel_size: int = 3
    padding: int = 1
    pool_size: int = 2
    dropout_conv: float = 0.2
    dropout_fc: float = 0.2
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "classifier", tuple(int(w) for w in self.classifier))
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        self.validate()

    # ----------------------------------------------------------------- validation
    def validate(self) -> None:
        """Refuse specs that cannot be built, or that are too large to build, with a one-line reason.

        Every size is bounded (``snnsim.limits``) and the parameter and neuron counts are computed
        arithmetically from the spec, so an absurd spec is refused before any tensor is allocated.
        """
        arch = f"architecture {self.name!r}" if isinstance(self.name, str) else "architecture"
        if not isinstance(self.name, str) or len(self.name) > MAX_NAME_CHARS:
            raise SnnsimError(f"{arch}: name must be a string of at most {MAX_NAME_CHARS} characters")
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise SnnsimError(f"{arch}: input_shape {self.input_shape} must be (C, H, W) of positive ints")
        c_in, h, w = self.input_shape
        if c_in > MAX_INPUT_CHANNELS or max(h, w) > MAX_INPUT_SIDE:
            raise SnnsimError(f"{arch}: input_shape {self.input_shape} is too large",
                              f"use at most {MAX_INPUT_CHANNELS} channels and sides of at most {MAX_INPUT_SIDE}")
        if not _is_int(self.num_classes) or not 1 <= self.num_classes <= MAX_WIDTH:
            raise SnnsimError(f"{arch}: num_classes must be a whole number in 1..{MAX_WIDTH}, got {show_value(self.num_classes)}")
        if not _is_int(self.kernel_size) or not 1 <= self.kernel_size <= MAX_KERNEL:
            raise SnnsimError(f"{arch}: kernel_size must be a whole number in 1..{MAX_KERNEL}, got {show_value(self.kernel_size)}")
        if not _is_int(self.padding) or not 0 <= self.padding < self.kernel_size:
            raise SnnsimError(f"{arch}: padding must be a whole number in 0..{self.kernel_size - 1} "
                              f"(below kernel_size), got {show_value(self.padding)}")
        if not _is_int(self.pool_size) or not 1 <= self.pool_size <= MAX_KERNEL:
            raise SnnsimError(f"{arch}: pool_size must be a whole number in 1..{MAX_KERNEL}, got {show_value(self.pool_size)}")
        for name in ("dropout_conv", "dropout_fc"):
            p = getattr(self, name)
            if not _is_real(p) or not 0.0 <= p < 1.0:
                raise SnnsimError(f"{arch}: {name} must be a number in [0, 1), got {show_value(p)}")
        if len(self.features) + len(self.classifier) > MAX_LAYERS:
            raise SnnsimError(f"{arch}: has {len(self.features) + len(self.classifier)} layers, more than {MAX_LAYERS}")
        if not any(_is_width(f) for f in self.features):
            raise SnnsimError(f"{arch}: needs at least one conv layer in features")
        prev_pool = True  # a pool may not come first or follow another pool
        for f in self.features:
            if isinstance(f, str):
                if f not in ("A", "M"):
                    raise SnnsimError(f"{arch}: unknown layer {f!r} in features", "use an int (conv width), 'A' (avg pool) or 'M' (max pool)")
                if prev_pool:
                    raise SnnsimError(f"{arch}: a pool must follow a conv layer")
                h, w = h // self.pool_size, w // self.pool_size
                if h < 1 or w < 1:
                    raise SnnsimError(f"{arch}: too many pools for input {self.input_shape}")
                prev_pool = True
            elif _is_width(f):
                if not 1 <= f <= MAX_WIDTH:
                    raise SnnsimError(f"{arch}: conv width {f} must be in 1..{MAX_WIDTH}")
                h, w = h + 2 * self.padding - self.kernel_size + 1, w + 2 * self.padding - self.kernel_size + 1
                if h < 1 or w < 1:
                    raise SnnsimError(f"{arch}: kernel_size {self.kernel_size} is larger than the "
                                      f"(padded) feature map of input {self.input_shape}")
                if max(h, w) > MAX_INPUT_SIDE:
                    raise SnnsimError(f"{arch}: feature maps grow past side {MAX_INPUT_SIDE}", "use a smaller padding")
                prev_pool = False
            else:
                raise SnnsimError(f"{arch}: unknown layer {show_value(f)} in features",
                                  "use an int (conv width), 'A' (avg pool) or 'M' (max pool)")
        if any(not 1 <= wd <= MAX_WIDTH for wd in self.classifier):
            raise SnnsimError(f"{arch}: hidden FC widths must be in 1..{MAX_WIDTH}")
        layers = self.layers()  # shapes only: arithmetic, no allocation
        params = sum(layer.params for layer in layers)
        if params > MAX_PARAMS:
            raise SnnsimError(f"{arch}: has {params:,} weights, more than the {MAX_PARAMS:,} snnsim builds",
                              "use narrower layers or a smaller input")
        neurons = sum(layer.neurons for layer in layers)
        if neurons > MAX_NEURONS:
            raise SnnsimError(f"{arch}: has {neurons:,} neurons per sample, more than {MAX_NEURONS:,}",
                              "use narrower layers or a smaller input")

    # ----------------------------------------------------------------- walking
    def layers(self) -> list[LayerInfo]:
        """The synaptic layers in order, with shapes and the pooling folded in front of each."""
        out: list[LayerInfo] = []
        c, h, w = self.input_shape
        source: tuple[int, ...] = (c, h, w)
        pending_pool: PoolKind | None = None
        conv_i = 0
        for f in self.features:
            if isinstance(f, str):
                pending_pool = "avg" if f == "A" else "max"
                h, w = h // self.pool_size, w // self.pool_size
                continue
            conv_i += 1
            name = f"conv{conv_i}"
            k, p = self.kernel_size, self.padding
            h_out = h + 2 * p - k + 1
            w_out = w + 2 * p - k + 1
            out.append(
                LayerInfo(
                    index=len(out),
                    name=name,
                    kind="conv",
                    in_shape=(c, h, w),
                    out_shape=(f, h_out, w_out),
                    source_shape=source,
                    kernel=k,
                    stride=1,
                    padding=p,
                    pool=pending_pool,
                    pool_kernel=self.pool_size if pending_pool else 1,
                    analog_input=len(out) == 0,
                    source=out[-1].target if out else "input",
                    target=f"{name}_lif",
                )
            )
            pending_pool = None
            c, h, w = f, h_out, w_out
            source = (c, h, w)
        flat = c * h * w
        widths = [*self.classifier, self.num_classes]
        for j, width in enumerate(widths):
            is_out = j == len(widths) - 1
            name = "out" if is_out else f"fc{j + 1}"
            out.append(
                LayerInfo(
                    index=len(out),
                    name=name,
                    kind="linear",
                    in_shape=(flat,),
                    out_shape=(width,),
                    source_shape=source,
                    pool=pending_pool if j == 0 else None,
                    pool_kernel=self.pool_size if (j == 0 and pending_pool) else 1,
                    flatten=j == 0,
                    spiking=not is_out,
                    source=out[-1].target,
                    target=f"{name}_integrator" if is_out else f"{name}_lif",
                )
            )
            flat = width
            source = (width,)
        return out

    # ----------------------------------------------------------------- sizes
    def param_count(self) -> int:
        """Total weights (no biases in this network family)."""
        return sum(layer.params for layer in self.layers())

    def mac_count(self) -> int:
        """Dense MACs of one ANN inference (= FLOPs in the lineage's convention)."""
        return sum(layer.macs for layer in self.layers())

    def widths(self) -> list[int]:
        """Prunable widths: every conv's channels, then every hidden FC width."""
        return [f for f in self.features if isinstance(f, int)] + list(self.classifier)

    def with_widths(self, widths: list[int], name: str | None = None) -> ArchSpec:
        """The same network with new conv/FC widths (spatial pruning edits only these)."""
        current = self.widths()
        if len(widths) != len(current):
            raise SnnsimError(f"architecture {self.name!r}: got {len(widths)} widths, expected {len(current)} (convs + hidden FCs)")
        it = iter(int(w) for w in widths)
        features = tuple(next(it) if isinstance(f, int) else f for f in self.features)
        classifier = tuple(next(it) for _ in self.classifier)
        return replace(self, name=name or f"{self.name}-pruned", features=features, classifier=classifier)

    # ----------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["features"] = list(self.features)
        d["classifier"] = list(self.classifier)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d: Any) -> ArchSpec:
        """Rebuild a spec from :meth:`to_dict` output read from a file, checking every field's type.

        The dict comes from a checkpoint or a trace, so nothing is coerced: a string or a bool
        where an int belongs, a missing or unknown field, or a size out of bounds is a one-line
        :class:`SnnsimError` naming the field (sizes are checked by :meth:`validate` before
        anything is allocated). Messages carry no fix where it depends on the file: the caller
        (checkpoint or trace loading) adds its own.
        """
        if not isinstance(d, Mapping):
            raise SnnsimError(f"architecture entry must be a mapping of fields, got {show_value(d)}")
        if not all(isinstance(k, str) for k in d):
            raise SnnsimError("architecture entry has a field name that is not a string")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise SnnsimError(f"architecture spec has unknown fields {sorted(unknown)}", "was it written by a newer snnsim?")
        missing = [k for k in _REQUIRED_FIELDS if k not in d]
        if missing:
            raise SnnsimError(f"architecture spec lacks the fields {missing}")
        name = d["name"]
        if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
            raise SnnsimError(f"architecture name must be a string of at most {MAX_NAME_CHARS} characters, got {show_value(name)}")
        arch = f"architecture {name!r}"
        out: dict[str, Any] = {"name": name}
        features = _sequence(d["features"], arch, "features")
        for i, f in enumerate(features):
            if not (_is_width(f) or isinstance(f, str)):
                raise SnnsimError(f"{arch}: unknown layer {show_value(f)} in features (entry {i})",
                                  "use an int (conv width), 'A' (avg pool) or 'M' (max pool)")
        out["features"] = tuple(features)
        classifier = _sequence(d["classifier"], arch, "classifier")
        for i, wd in enumerate(classifier):
            if not _is_int(wd):
                raise SnnsimError(f"{arch}: classifier[{i}] must be a whole number (FC width), got {show_value(wd)}")
        out["classifier"] = tuple(classifier)
        shape = _sequence(d["input_shape"], arch, "input_shape")
        if len(shape) != 3 or not all(_is_int(s) for s in shape):
            raise SnnsimError(f"{arch}: input_shape must be 3 whole numbers (C, H, W), got {show_value(d['input_shape'])}")
        out["input_shape"] = tuple(shape)
        for key in ("num_classes", "kernel_size", "padding", "pool_size"):
            if key in d:
                if not _is_int(d[key]):
                    raise SnnsimError(f"{arch}: {key} must be a whole number, got {show_value(d[key])}")
                out[key] = d[key]
        for key in ("dropout_conv", "dropout_fc"):
            if key in d:
                if not _is_real(d[key]):
                    raise SnnsimError(f"{arch}: {key} must be a number in [0, 1), got {show_value(d[key])}")
                out[key] = float(d[key])
        if "meta" in d:
            meta = d["meta"]
            problem = plain_data_problem(meta) if isinstance(meta, Mapping) else f"is {show_value(meta)}, not a mapping"
            if problem:
                raise SnnsimError(f"{arch}: meta {problem}")
            out["meta"] = dict(meta)
        return cls(**out)

    def describe(self) -> str:
        """Compact one-line form, e.g. ``vgg16 [64,64,A,...] fc[4096,4096] -> 10``."""
        feats = ",".join(str(f) for f in self.features)
        fcs = ",".join(str(w) for w in self.classifier)
        return f"{self.name} in{list(self.input_shape)} [{feats}] fc[{fcs}] -> {self.num_classes}"


ARCH_NAMES = ("digits", "vgg5", "vgg9", "vgg11", "vgg16")


def make_arch(name: str, input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None,
              dropout_conv: float = 0.2, dropout_fc: float = 0.2) -> ArchSpec:
    """Build a named architecture (``digits``, ``vgg5``, ``vgg9``, ``vgg11``, ``vgg16``).

    VGGs default to 32x32x3 CIFAR input with 10 classes and the lineage's 4096-4096 classifier
    (VGG5 included: paper.md §3.2). ``digits`` defaults to 1x8x8 input and 10 classes.
    Dropout 0.2 for conv and FC follows the DCT-SNN / DIET / IIR code (paper.md §2.2).
    """
    key = name.lower()
    if key == "digits":
        return ArchSpec("digits", tuple(DIGITS_FEATURES), tuple(DIGITS_CLASSIFIER),
                        input_shape or (1, 8, 8), num_classes or 10,
                        dropout_conv=dropout_conv, dropout_fc=dropout_fc)
    if key in VGG_FEATURES:
        return ArchSpec(key, tuple(VGG_FEATURES[key]), tuple(VGG_CLASSIFIER),
                        input_shape or (3, 32, 32), num_classes or 10,
                        dropout_conv=dropout_conv, dropout_fc=dropout_fc)
    raise SnnsimError(f"unknown architecture {name!r}", f"choose one of {', '.join(ARCH_NAMES)}")


def _is_int(v: Any) -> bool:
    """A whole number that is not a bool (``True`` is an int to Python, never a size to snnsim)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_width(f: Any) -> bool:
    """A conv entry of ``features``: a plain int, as :meth:`ArchSpec.widths` and ``layers`` expect."""
    return isinstance(f, int) and not isinstance(f, bool)


def _is_real(v: Any) -> bool:
    """A finite real number that is not a bool (ints too large for a float are not finite)."""
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _sequence(v: Any, arch: str, key: str) -> list[Any]:
    """``v`` as a list, refusing anything but a list or tuple of at most MAX_LAYERS entries."""
    if not isinstance(v, (list, tuple)):
        raise SnnsimError(f"{arch}: {key} must be a list, got {show_value(v)}")
    if len(v) > MAX_LAYERS:
        raise SnnsimError(f"{arch}: {key} has {len(v)} entries, more than {MAX_LAYERS}")
    return list(v)


def show_value(v: Any) -> str:
    """A short, whole description of a value for a message: never cut mid-word, never huge."""
    if v is None or isinstance(v, (bool, numbers.Number)):
        text = repr(v)
        return text if len(text) <= 40 else f"a {len(text)}-digit number"
    if isinstance(v, str):
        return repr(v) if len(v) <= 40 else f"a {len(v)}-character string"
    if isinstance(v, (list, tuple)) and len(v) <= 8 and all(x is None or isinstance(x, (bool, numbers.Number, str)) for x in v):
        text = repr(list(v))
        if len(text) <= 60:
            return text
    if isinstance(v, (list, tuple, Mapping)):
        return f"a {type(v).__name__} of {len(v)} {'entry' if len(v) == 1 else 'entries'}"
    return f"a {type(v).__name__}"


def plain_data_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` is not plain data (str-keyed dicts, lists, str, numbers, bools, None), or None.

    Metadata read from files (arch ``meta``, checkpoint ``provenance``/``dataset``) must be plain
    data nested at most MAX_DOCUMENT_DEPTH deep, so printing, comparing and re-saving it is safe.
    """
    if depth > MAX_DOCUMENT_DEPTH:
        return f"is nested deeper than {MAX_DOCUMENT_DEPTH} levels"
    if value is None or isinstance(value, (str, bool, int, float)):
        return None
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"has a key {show_value(k)} that is not a string"
            problem = plain_data_problem(v, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for v in value:
            problem = plain_data_problem(v, depth + 1)
            if problem:
                return problem
        return None
    return f"holds {show_value(value)}, which is not plain data"


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n
