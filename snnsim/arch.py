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

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from snnsim.errors import SnnsimError

FeatureEntry = int | str
LayerKind = Literal["conv", "linear"]
PoolKind = Literal["avg", "max"]

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
    pool: PoolKind | None = None  # pooling folded in front of this layer
    pool_kernel: int = 1
    flatten: bool = False  # input is flattened from a (C, H, W) map
    spiking: bool = True  # False for the output (accumulating) layer
    analog_input: bool = False  # True for the first layer (direct analog input)

    @property
    def in_features(self) -> int:
        return self.in_shape[0] if self.kind == "conv" else _prod(self.in_shape)

    @property
    def out_features(self) -> int:
        return self.out_shape[0]

    @property
    def neurons(self) -> int:
        """Number of output neurons (potentials) of this layer."""
        return _prod(self.out_shape)

    @property
    def params(self) -> int:
        if self.kind == "conv":
            return self.kernel * self.kernel * self.in_shape[0] * self.out_shape[0]
        return self.in_features * self.out_features

    @property
    def macs(self) -> int:
        """Dense MACs of one forward pass (one timestep), by the lineage's compute_mac rule."""
        if self.kind == "conv":
            c_out, h_out, w_out = self.out_shape
            return self.kernel * self.kernel * self.in_shape[0] * h_out * w_out * c_out
        return self.in_features * self.out_features

    @property
    def source_size(self) -> int:
        """Number of input event sites per timestep (elements of the pre-pool input map)."""
        return _prod(self.source_shape)

    def weight_shape(self) -> tuple[int, ...]:
        if self.kind == "conv":
            return (self.out_shape[0], self.in_shape[0], self.kernel, self.kernel)
        return (self.out_features, self.in_features)


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
        """Refuse specs that cannot be built, with a one-line reason."""
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise SnnsimError(f"architecture {self.name!r}: input_shape {self.input_shape} must be (C, H, W) of positive ints")
        if self.num_classes < 1:
            raise SnnsimError(f"architecture {self.name!r}: num_classes must be >= 1")
        if not any(isinstance(f, int) for f in self.features):
            raise SnnsimError(f"architecture {self.name!r}: needs at least one conv layer in features")
        prev_pool = True  # a pool may not come first or follow another pool
        h, w = self.input_shape[1:]
        for f in self.features:
            if isinstance(f, str):
                if f not in ("A", "M"):
                    raise SnnsimError(f"architecture {self.name!r}: unknown layer {f!r} in features", "use an int (conv width), 'A' (avg pool) or 'M' (max pool)")
                if prev_pool:
                    raise SnnsimError(f"architecture {self.name!r}: a pool must follow a conv layer")
                h, w = h // self.pool_size, w // self.pool_size
                if h < 1 or w < 1:
                    raise SnnsimError(f"architecture {self.name!r}: too many pools for input {self.input_shape}")
                prev_pool = True
            elif isinstance(f, int) and not isinstance(f, bool):
                if f < 1:
                    raise SnnsimError(f"architecture {self.name!r}: conv width {f} must be >= 1")
                prev_pool = False
            else:
                raise SnnsimError(f"architecture {self.name!r}: unknown layer {f!r} in features")
        if any(wd < 1 for wd in self.classifier):
            raise SnnsimError(f"architecture {self.name!r}: hidden FC widths must be >= 1")

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
            k, p = self.kernel_size, self.padding
            h_out = h + 2 * p - k + 1
            w_out = w + 2 * p - k + 1
            out.append(
                LayerInfo(
                    index=len(out),
                    name=f"conv{conv_i}",
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
                )
            )
            pending_pool = None
            c, h, w = f, h_out, w_out
            source = (c, h, w)
        flat = c * h * w
        widths = [*self.classifier, self.num_classes]
        for j, width in enumerate(widths):
            is_out = j == len(widths) - 1
            out.append(
                LayerInfo(
                    index=len(out),
                    name="out" if is_out else f"fc{j + 1}",
                    kind="linear",
                    in_shape=(flat,),
                    out_shape=(width,),
                    source_shape=source,
                    pool=pending_pool if j == 0 else None,
                    pool_kernel=self.pool_size if (j == 0 and pending_pool) else 1,
                    flatten=j == 0,
                    spiking=not is_out,
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
    def from_dict(cls, d: dict[str, Any]) -> ArchSpec:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise SnnsimError(f"architecture spec has unknown fields {sorted(unknown)}", "was it written by a newer snnsim?")
        d = dict(d)
        d["features"] = tuple(d["features"])
        d["classifier"] = tuple(d["classifier"])
        d["input_shape"] = tuple(d["input_shape"])
        return cls(**d)

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


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n
