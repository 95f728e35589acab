"""Seeded fuzzing of checkpoint loading: damaged files and crafted fields are one-line errors.

Every case is a file built from a small real model, in both checkpoint formats:

* format v2 (the graph): a float VGG SNN, its 4-bit quantized copy (scales keyed by node), a copy
  without a checksum (what snnsim wrote before it stored one), a ResNet ANN with batch norm and
  no ``arch`` entry, and a folded, biased, 6-bit quantized ResNet SNN (int32 bias codes);
* format v1 (before the graph): the legacy ``SpikingNet``'s state (``synapses.<i>.weight``,
  ``thresholds``, ``leaks``), float and 4-bit quantized (list scales), and the shipped example.

Byte flips at seeded positions in the tensor data, the pickle, the zip headers and directory;
truncations; empty, random, non-zip and foreign-zip files; pickles that ask for ``os.system``;
and mutations of every checkpoint field (type, range, missing, extra), of the graph (sizes,
kinds, edges, node fields), of the v2 state keys and the dict scales, and across versions. The
oracle, for every case: :func:`load_model` raises :class:`CheckpointError` with a one-line
message (naming the field, for schema mutations), or returns a model whose state dict and
quantization record equal the original's bit for bit (a v1 original: its state renamed to the
graph's keys, its record keyed by node). A flip inside tensor data or the pickle must always be
detected; nothing may be built for a refused file.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import pickle
import random
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from legacy_spikingnet import v1_checkpoint

import snnsim.checkpoint as ckpt_mod
from snnsim.arch import ArchSpec
from snnsim.checkpoint import FORMAT_VERSION, checkpoint_dict, load_model, state_checksum
from snnsim.cli import main
from snnsim.compression.quantize import quantize_model
from snnsim.errors import CheckpointError
from snnsim.graph import build_graph
from snnsim.graph.schedule import fold_batchnorm
from snnsim.limits import MAX_TIMESTEPS
from snnsim.models import Model, build_model

SEED = 20240611
EXAMPLE = Path(__file__).resolve().parents[1] / "snnsim" / "examples" / "digits_pruned_T2.pt"
SPEC = ArchSpec("fuzz", (4, "A", 6, "M"), (8,), (2, 8, 8), 3, dropout_conv=0.0, dropout_fc=0.0)
LAYERS = ["conv1", "conv2", "fc1", "out"]
#: the bases of each format
V2_BASES = ("float", "quant", "nochecksum", "resnet", "resnetq")
V1_BASES = ("v1", "v1quant", "example")


@dataclass(frozen=True)
class Keys:
    """The names one format gives the same tensors (so one mutation list serves both)."""

    w0: str  # the first conv's weight
    w2: str  # a 2-D (linear) weight
    w3: str  # the output layer's weight
    w1: str  # the second conv's weight
    th: str  # a threshold tensor
    lk: str  # a leak tensor
    scale0: str  # the path of the first layer's scale under "quantization.scales"
    scale0_needle: str  # how the error names it
    extra_bias: str  # a bias the (bias-free) VGG does not have


V2 = Keys("conv1.weight", "fc1.weight", "out.weight", "conv2.weight", "conv1_lif.threshold", "fc1_lif.leak",
          "conv1", "scales['conv1']", "conv1.bias")
V1 = Keys("synapses.0.weight", "synapses.2.weight", "synapses.3.weight", "synapses.1.weight", "thresholds", "leaks",
          "0", "scales[0]", "synapses.0.bias")
KEYS = {"float": V2, "quant": V2, "nochecksum": V2, "v1": V1, "v1quant": V1}


# ----------------------------------------------------------------------------- the originals


@dataclass
class Originals:
    """The models every case is derived from, their checkpoint dicts and their files' bytes."""

    models: dict[str, Model]
    dicts: dict[str, dict[str, Any]]
    files: dict[str, bytes]


def _torch_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


_DATASET = {"name": "synthetic", "mean": [0.5, 0.4], "std": [0.25, 0.3], "input_shape": [2, 8, 8],
            "num_classes": 3, "train_size": 64}
_PROVENANCE = {"command": "fuzz", "seed": 7, "accuracy": 0.5, "history": [{"epoch": 1, "loss": 0.25}]}
_THRESHOLDS, _LEAKS = [0.25, 0.5, 0.75], [0.9, 1.0, 0.0]


def _float_model() -> Model:
    m = build_model(SPEC, kind="snn", timesteps=3, seed=5)
    with torch.no_grad():
        for pop, th, lk in zip(("conv1_lif", "conv2_lif", "fc1_lif"), _THRESHOLDS, _LEAKS, strict=True):
            m.threshold(pop).fill_(th)
            m.leak(pop).fill_(lk)
    m.dataset_info = dict(_DATASET)
    m.provenance = copy.deepcopy(_PROVENANCE)
    return m


def _v1(bits: int | None) -> tuple[dict[str, Any], Model]:
    """A version-1 checkpoint of the legacy SpikingNet (list scales, v1 checksum), and the model
    it must load as: the same tensors under the graph's names (renamed here, not by snnsim)."""
    ck, _legacy = v1_checkpoint(SPEC, _THRESHOLDS, _LEAKS, bits, dict(_DATASET), copy.deepcopy(_PROVENANCE), seed=6)
    state, quant = ck["state_dict"], ck["quantization"]
    renamed = {f"{n}.weight": state[f"synapses.{i}.weight"] for i, n in enumerate(LAYERS)}
    for i, n in enumerate(LAYERS[:-1]):
        renamed[f"{n}_lif.threshold"] = state["thresholds"][i:i + 1].clone()
        renamed[f"{n}_lif.leak"] = state["leaks"][i:i + 1].clone()
    model = build_model(SPEC, kind="snn", timesteps=3)
    model.load_state_dict(renamed, strict=True)
    if quant is not None:
        model.quantization = {"bits": bits, "scheme": quant["scheme"],
                              "scales": dict(zip(LAYERS, quant["scales"], strict=True)),
                              "int_weights": {f"{n}.weight": quant["int_weights"][f"synapses.{i}.weight"]
                                              for i, n in enumerate(LAYERS)}}
    return ck, model


def _resnets() -> tuple[Model, Model]:
    """digits-resnet: an ANN with batch norm (trained statistics), and its folded, biased SNN
    quantized to 6 bits (int32 bias codes)."""
    ann = build_model(build_graph("digits-resnet"), kind="ann", timesteps=2, seed=8)
    ann.train()
    with torch.no_grad():
        ann(torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(SEED)))
    ann.eval()
    ann.dataset_info = {"name": "digits", "mean": [0.5], "std": [0.5], "input_shape": [1, 8, 8], "num_classes": 10}
    graph, state = fold_batchnorm(ann.graph, ann.state_dict())
    snn = build_model(graph, kind="snn", timesteps=2, seed=8)
    snn.load_state_dict(state, strict=True)
    snn = quantize_model(snn, 6)
    snn.dataset_info = dict(ann.dataset_info)
    return ann, snn


def make_originals() -> Originals:
    """Build the originals (also usable outside pytest, to print every case's outcome)."""
    torch.manual_seed(SEED)
    fm = _float_model()
    qm = quantize_model(fm, 4)
    example = load_model(EXAMPLE)
    v1, v1_model = _v1(None)
    v1q, v1q_model = _v1(4)
    ann, snnq = _resnets()
    dicts = {"float": checkpoint_dict(fm), "quant": checkpoint_dict(qm), "v1": v1, "v1quant": v1q,
             "resnet": checkpoint_dict(ann), "resnetq": checkpoint_dict(snnq)}
    nochecksum = copy.deepcopy(dicts["float"])
    del nochecksum["checksum"]  # what snnsim wrote before it stored checksums
    dicts["nochecksum"] = nochecksum
    files = {name: _torch_bytes(d) for name, d in dicts.items()}
    files["example"] = EXAMPLE.read_bytes()
    models = {"float": fm, "quant": qm, "nochecksum": fm, "example": example, "v1": v1_model, "v1quant": v1q_model,
              "resnet": ann, "resnetq": snnq}
    return Originals(models, dicts, files)


@pytest.fixture(scope="module")
def originals() -> Originals:
    return make_originals()


# ----------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """One fuzzed file: ``build`` makes its bytes; ``base`` names the original it came from.

    ``must_fail``: the file must be refused (damage to weights or pickle, every schema mutation);
    ``needle``: substrings of which the error must contain one (the field's name, or "corrupt");
    ``must_load``: a valid control that must load and equal its original.
    """

    id: str
    base: str
    build: Callable[[Originals], bytes]
    must_fail: bool = True
    needle: tuple[str, ...] = ()
    must_load: bool = False


def _regions(data: bytes) -> dict[str, list[tuple[int, int]]]:
    """Byte ranges of a torch zip: tensor data, pickle, local headers, their padding, directory."""
    out: dict[str, list[tuple[int, int]]] = {"tensor": [], "pickle": [], "header": [], "padding": [],
                                              "directory": [], "end": []}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            off = info.header_offset
            n_name, n_extra = struct.unpack("<HH", data[off + 26: off + 30])
            start = off + 30 + n_name + n_extra
            out["header"].append((off, off + 30 + n_name))
            if n_extra > 4:  # torch's alignment field: a 4-byte id+length, then padding bytes
                out["padding"].append((off + 30 + n_name + 4, start))
            if info.file_size:
                tail = info.filename.split("/", 1)[-1]
                region = "tensor" if tail.startswith("data/") else "pickle" if tail == "data.pkl" else "header"
                out[region].append((start, start + info.file_size))
    eocd = data.rindex(b"PK\x05\x06")
    cd_offset = struct.unpack("<I", data[eocd + 16: eocd + 20])[0]
    out["directory"].append((cd_offset, eocd))
    out["end"].append((eocd, len(data)))
    return out


def _flip(base: str, region: str, k: int, bit: bool = False) -> Case:
    """Flip one byte (XOR a random non-zero mask, or one bit) at a seeded position in ``region``."""

    def build(o: Originals) -> bytes:
        data = bytearray(o.files[base])
        rng = random.Random(f"{SEED}-{base}-{region}-{k}-{bit}")
        ranges = [r for r in _regions(bytes(data))[region] if r[1] > r[0]]
        lo, hi = rng.choice(ranges)
        pos = rng.randrange(lo, hi)
        data[pos] ^= (1 << rng.randrange(8)) if bit else rng.randrange(1, 256)
        return bytes(data)

    return Case(f"flip-{base}-{region}-{k}{'-bit' if bit else ''}", base, build,
                must_fail=region in ("tensor", "pickle"))


def _truncate(base: str, frac: float | int) -> Case:
    def build(o: Originals) -> bytes:
        data = o.files[base]
        n = int(len(data) * frac) if isinstance(frac, float) else len(data) + frac
        return data[:n]

    return Case(f"truncate-{base}-{frac}", base, build)


def _raw(name: str, make: Callable[[], bytes]) -> Case:
    return Case(name, "float", lambda o: make())


def _zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return buf.getvalue()


MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / f"snnsim-fuzz-pwned-{os.getpid()}"


class _Evil:
    """Unpickling this would run a shell command that creates MARKER."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {MARKER}",))


def _reseal(ck: dict[str, Any]) -> None:
    """Store the checksum of the mutated content, so the schema (not the checksum) must catch it."""
    with contextlib.suppress(Exception):  # content too malformed to hash: keep the stale checksum
        ck["checksum"] = {"algorithm": "sha256", "state": state_checksum(ck["state_dict"], ck.get("quantization"))}


def _mutate(name: str, base: str, edit: Callable[[dict[str, Any]], None], needle: tuple[str, ...],
            seal: str = "reseal") -> Case:
    """A checkpoint dict of ``base`` edited by ``edit``.

    ``seal``: ``reseal`` (checksum of the edited content), ``stale`` (the original checksum),
    ``none`` (no checksum: a legacy file) or ``keep`` (the edit sets the checksum itself).
    """

    def build(o: Originals) -> bytes:
        ck = copy.deepcopy(o.dicts[base])
        edit(ck)
        if seal == "reseal":
            _reseal(ck)
        elif seal == "none":
            ck.pop("checksum", None)
        return _torch_bytes(ck)

    return Case(f"schema-{base}-{name}-{seal}", base, build, needle=needle)


DELETE = object()


def _materialize(v: Any) -> Any:
    """A fresh copy of a mutation value; callables (tensor factories) are called."""
    if callable(v):
        return v()
    if isinstance(v, dict):
        return {k: _materialize(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_materialize(x) for x in v]
    return copy.deepcopy(v)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Edit: set (or with value DELETE, remove) the entry at a dotted path; '/' stands for '.'
    inside a key (``state_dict.synapses/0/weight``), digits index lists."""

    def key(node: Any, k: str) -> Any:
        return int(k) if isinstance(node, list) else k.replace("/", ".")

    def edit(ck: dict[str, Any]) -> None:
        node: Any = ck
        *parents, last = path.split(".")
        for k in parents:
            node = node[key(node, k)]
        if value is DELETE:
            del node[key(node, last)]
        else:
            node[key(node, last)] = _materialize(value)

    return edit


def _tensor_edit(key: str, fn: Callable[[torch.Tensor], torch.Tensor | None], where: str = "state_dict") \
        -> Callable[[dict[str, Any]], None]:
    """Edit: replace a tensor by ``fn(tensor)`` (or edit it in place when fn returns None)."""

    def edit(ck: dict[str, Any]) -> None:
        holder = ck[where] if where == "state_dict" else ck["quantization"]["int_weights"]
        t = holder[key].clone()
        out = fn(t)
        holder[key] = t if out is None else out

    return edit


def _put(t: torch.Tensor, value: float) -> None:
    """Set one entry (the second, or the only one of a population's (1,) value)."""
    flat = t.view(-1)
    flat[min(1, flat.numel() - 1)] = value


def _nudge_code(t: torch.Tensor) -> None:
    """Move one integer code by one, staying inside the 4-bit range."""
    flat = t.view(-1)
    flat[0] = flat[0] - 1 if flat[0] > 0 else flat[0] + 1


def _nest(depth: int) -> Any:
    v: Any = 1
    for _ in range(depth):
        v = [v]
    return v


def _sd(key: str) -> str:
    """The ``_set`` path of a state-dict entry (its dots escaped)."""
    return "state_dict." + key.replace(".", "/")


def _codes_out_of_range(key: str, node: Any, code: int) -> Callable[[dict[str, Any]], None]:
    """Integer ``code`` (outside the weights' or the biases' range) with the float value made
    consistent with it, so only the range check can catch it."""

    def edit(ck: dict[str, Any]) -> None:
        q = ck["quantization"]
        codes = q["int_weights"][key].clone()
        codes.view(-1)[0] = code
        q["int_weights"][key] = codes
        w = ck["state_dict"][key].clone()
        w.view(-1)[0] = torch.tensor(float(code)) * torch.tensor(q["scales"][node], dtype=torch.float32)
        ck["state_dict"][key] = w

    return edit


def _rename_node(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    """Rename a graph node everywhere: the graph's nodes and edges and its state entries."""

    def edit(ck: dict[str, Any]) -> None:
        g = ck["graph"]
        g["nodes"] = {new if n == old else n: v for n, v in g["nodes"].items()}
        g["edges"] = [[new if a == old else a, new if b == old else b] for a, b in g["edges"]]
        ck["state_dict"] = {(new + k[len(old):] if k.startswith(old + ".") else k): v for k, v in ck["state_dict"].items()}

    return edit


def _edges(fn: Callable[[list[list[str]]], list[list[str]]]) -> Callable[[dict[str, Any]], None]:
    def edit(ck: dict[str, Any]) -> None:
        ck["graph"]["edges"] = fn(ck["graph"]["edges"])

    return edit


def _to_v1_state(ck: dict[str, Any]) -> None:
    """A v2 state renamed back to the v1 keys (a v2 file with the old names)."""
    sd = ck["state_dict"]
    old = {f"synapses.{i}.weight": sd[f"{n}.weight"] for i, n in enumerate(LAYERS)}
    old["thresholds"] = torch.cat([sd[f"{n}_lif.threshold"] for n in LAYERS[:-1]])
    old["leaks"] = torch.cat([sd[f"{n}_lif.leak"] for n in LAYERS[:-1]])
    ck["state_dict"] = old


def _to_v2_state(ck: dict[str, Any]) -> None:
    """A v1 state renamed to the v2 keys (a v1 file with the new names)."""
    sd = ck["state_dict"]
    new = {f"{n}.weight": sd[f"synapses.{i}.weight"] for i, n in enumerate(LAYERS)}
    for i, n in enumerate(LAYERS[:-1]):
        new[f"{n}_lif.threshold"] = sd["thresholds"][i:i + 1].clone()
        new[f"{n}_lif.leak"] = sd["leaks"][i:i + 1].clone()
    ck["state_dict"] = new


Mutation = tuple[str, str, Callable[[dict[str, Any]], None], str]


def _top_mutations(base: str, v1: bool) -> list[Mutation]:
    """Top level: format, version, kind, timesteps, missing and unknown entries, the other version."""
    m: list[Mutation] = []

    def add(name: str, edit: Callable[[dict[str, Any]], None], needle: str) -> None:
        m.append((name, base, edit, needle))

    for i, v in enumerate(["xyz", None, 5, torch.tensor(1)]):
        add(f"format{i}", _set("format", v), "not an snnsim model checkpoint")
    for i, v in enumerate([0, -1, "1", True, 1.0, None]):
        add(f"version{i}", _set("format_version", v), "format_version")
    add("version-future", _set("format_version", FORMAT_VERSION + 1), "newer")
    for i, v in enumerate(["xyz", 5, None, ["snn"], "SNN"]):
        add(f"kind{i}", _set("kind", v), "kind")
    for i, v in enumerate(["abc", 0, -3, True, 10**20, 2.5, None, MAX_TIMESTEPS + 1, torch.tensor(3)]):
        add(f"timesteps{i}", _set("timesteps", v), "timesteps")
    for key in ("arch" if v1 else "graph", "kind", "timesteps", "state_dict"):
        add(f"missing-{key}", _set(key, DELETE), f"missing the {key!r}")
    add("unknown-entry", _set("weights", 1), "unknown entries")
    if v1:  # a v1 file read as v2 needs the graph; a v1 file has none
        add("as-v2", _set("format_version", 2), "missing the 'graph'")
        add("v1-with-graph", lambda ck: ck.__setitem__("graph", build_graph("digits").to_dict()), "unknown entries ['graph']")
        add("state-v2-keys", _to_v2_state, "lacks")
    else:  # a v2 file read as v1: the graph entry is unknown there
        add("as-v1", _set("format_version", 1), "unknown entries ['graph']")
        add("state-v1-keys", _to_v1_state, "lacks")
    return m


def _state_mutations(base: str, k: Keys) -> list[Mutation]:
    """State dict: type, keys, dtype, shape, values (in the base's format's names)."""
    m: list[Mutation] = []

    def add(name: str, edit: Callable[[dict[str, Any]], None], needle: str) -> None:
        m.append((name, base, edit, needle))

    for i, v in enumerate([[1, 2], "weights", None, lambda: torch.zeros(3)]):
        add(f"state-type{i}", _set("state_dict", v), "state_dict")
    add("state-missing-thresholds", _set(_sd(k.th), DELETE), "lacks")
    add("state-missing-w1", _set(_sd(k.w1), DELETE), "lacks")
    add("state-extra-key", _set(_sd(k.w0.replace("0", "9").replace("conv1", "conv9")), lambda: torch.zeros(2)),
        "does not use")
    add("state-extra-bias", _set(_sd(k.extra_bias), lambda: torch.zeros(4)), "does not use")
    for dt in (torch.float64, torch.float16, torch.int32, torch.bool):
        add(f"state-dtype-{dt}", _tensor_edit(k.w0, lambda t, dt=dt: t.to(dt)), "float32")
    add("state-shape-T", _tensor_edit(k.w2, lambda t: t.t().contiguous()), "shape")
    add("state-shape-flat", _tensor_edit(k.w0, lambda t: t.reshape(-1)), "shape")
    add("state-shape-extra-dim", _tensor_edit(k.th, lambda t: t[None]), "shape")
    add("state-shape-long", _tensor_edit(k.lk, lambda t: torch.cat([t, t])), "shape")
    for i, v in enumerate([[0.5, 0.5, 0.5], 1.0, "x", None]):
        add(f"state-value-type{i}", _set(_sd(k.th), v), "must be a tensor")
    add("weight-nan", _tensor_edit(k.w0, lambda t: _put(t, math.nan)), "NaN")
    add("weight-inf", _tensor_edit(k.w3, lambda t: _put(t, -math.inf)), "NaN or Inf")
    add("thresholds-zero", _tensor_edit(k.th, lambda t: torch.zeros_like(t)), "thresholds")
    add("thresholds-negative", _tensor_edit(k.th, lambda t: _put(t, -0.5)), "thresholds")
    add("thresholds-nan", _tensor_edit(k.th, lambda t: _put(t, math.nan)), "threshold")
    add("leaks-negative", _tensor_edit(k.lk, lambda t: _put(t, -0.1)), "leaks")
    add("leaks-above-one", _tensor_edit(k.lk, lambda t: _put(t, 1.5)), "leaks")
    add("leaks-nan", _tensor_edit(k.lk, lambda t: _put(t, math.nan)), "leak")
    return m


def _arch_mutations(base: str, v1: bool) -> list[Mutation]:
    """The arch entry: type, sizes (bounded before anything is allocated), kinds, missing/unknown.
    (A v2 file may have none: ``arch = None`` is a valid control there.)"""
    m: list[Mutation] = []

    def add(name: str, edit: Callable[[dict[str, Any]], None], needle: str) -> None:
        m.append((name, base, edit, needle))

    for i, v in enumerate(["vgg16", [1, 2], None if v1 else 5]):
        add(f"arch-type{i}", _set("arch", v), "architecture entry must be a mapping")
    add("arch-10M-channels", _set("arch.features", [10**7, "A", 6, "M"]), "conv width")
    add("arch-huge-fc", _set("arch.classifier", [10**7]), "FC widths")
    add("arch-too-many-params", _set("arch.features", [65_536, 65_536, 65_536, "A"]), "weights, more than")
    for i, (v, needle) in enumerate([("abc", "features"), (None, "features"), (8, "features"),
                                     ([8, "A", 6, "X"], "unknown layer 'X'"), (["A", 8], "pool must follow"),
                                     ([True, "A"], "unknown layer True"), ([-3], "conv width -3"), ([0], "conv width 0"),
                                     ([8.5], "unknown layer 8.5"), ([], "at least one conv"),
                                     ([8, "A", "A"], "pool must follow"), ([8, None], "unknown layer None")]):
        add(f"arch-features{i}", _set("arch.features", v), needle)
    for i, v in enumerate(["abc", [1, 8], [1, 8, "8"], [0, 8, 8], [2, 8, 8.0], [2, 10**6, 8], [5000, 8, 8],
                           [True, 8, 8]]):
        add(f"arch-input{i}", _set("arch.input_shape", v), "input_shape")
    for i, v in enumerate(["ten", 0, True, 10**9, 2.0]):
        add(f"arch-classes{i}", _set("arch.num_classes", v), "num_classes")
    for i, v in enumerate([0, "3", 1000, 9]):
        add(f"arch-kernel{i}", _set("arch.kernel_size", v), "kernel_size")
    for i, v in enumerate([-1, 5, None]):
        add(f"arch-padding{i}", _set("arch.padding", v), "padding")
    for i, v in enumerate([0, 100, False]):
        add(f"arch-pool{i}", _set("arch.pool_size", v), "pool")
    for i, v in enumerate([1.0, -0.1, "x", math.nan, 10**400]):
        add(f"arch-dropout{i}", _set("arch.dropout_fc", v), "dropout_fc")
    for i, v in enumerate([5, "x" * 1000]):
        add(f"arch-name{i}", _set("arch.name", v), "name")
    for i, v in enumerate(["x", {1: 2}, {"t": lambda: torch.zeros(1)}]):
        add(f"arch-meta{i}", _set("arch.meta", v), "meta")
    add("arch-unknown-field", _set("arch.stride", 2), "unknown fields")
    add("arch-missing-field", _set("arch.num_classes", DELETE), "lacks")
    if not v1:  # a valid arch that is not the graph's network
        add("arch-other-widths", _set("arch.features", [5, "A", 6, "M"]), "is not the graph of its arch entry")
        add("arch-other-dropout", _set("arch.dropout_fc", 0.5), "is not the graph of its arch entry")
    return m


def _meta_mutations(base: str) -> list[Mutation]:
    """Metadata: dataset, provenance, extra, and the checksum field."""
    m: list[Mutation] = []

    def add(name: str, edit: Callable[[dict[str, Any]], None], needle: str) -> None:
        m.append((name, base, edit, needle))

    for i, v in enumerate(["cifar", 5, [1], {"mean": "x"}, {"mean": [math.nan]}, {"std": [0.0]},
                           {"std": [-1.0, 0.5]}, {"mean": [0.1, 0.2, 0.3]}, {"mean": [0.5], "std": [0.5, 0.5]},
                           {"input_shape": [3, 32, 32]}, {"num_classes": 99}, {"name": 5}, {1: 2},
                           {"split": lambda: torch.zeros(2)}, {"mean": [10**400]}]):
        add(f"dataset{i}", _set("dataset", v), "dataset")
    for i, v in enumerate(["x", 5, [1, 2], {"a": lambda: torch.zeros(2)}, {"deep": _nest(40)}, {3: "x"}]):
        add(f"provenance{i}", _set("provenance", v), "provenance")
    for i, v in enumerate(["x", {"epoch": "a"}, {"epoch": -1}, {"stage": 5}, {4: 1}]):
        add(f"extra{i}", _set("extra", v), "extra")
    for i, v in enumerate(["x", {"algorithm": "md5", "state": "0" * 64}, {"algorithm": "sha256", "state": "zz"},
                           {"algorithm": "sha256"}, {"algorithm": torch.tensor(1), "state": "0" * 64},
                           {"algorithm": "sha256", "state": "0" * 64}]):
        m.append((f"checksum{i}", base, _set("checksum", v), "checksum" if i < 5 else "corrupt"))
    return m


def _quant_mutations(base: str, k: Keys, v1: bool) -> list[Mutation]:
    """The quantization record: type, fields, bits, scheme, scales (a list in v1, a dict keyed by
    node in v2), integer weights, the invariant ``weight == int * scale``."""
    m: list[Mutation] = []

    def add(name: str, edit: Callable[[dict[str, Any]], None], needle: str) -> None:
        m.append((name, base, edit, needle))

    scale0 = f"quantization.scales.{k.scale0}"
    node0: Any = 0 if v1 else "conv1"
    for i, v in enumerate(["x", 5, [1]]):
        add(f"quant-type{i}", _set("quantization", v), "quantization")
    add("quant-missing-bits", _set("quantization.bits", DELETE), "exactly the fields")
    add("quant-extra-field", _set("quantization.zero_point", 0), "exactly the fields")
    for i, v in enumerate([0, 1, 25, 33, -4, "four", True, 4.0, None]):
        add(f"quant-bits{i}", _set("quantization.bits", v), "bits")
    for i, v in enumerate(["asymmetric", 5, torch.tensor(0)]):
        add(f"quant-scheme{i}", _set("quantization.scheme", v), "scheme")
    for i, v in enumerate([math.nan, 0.0, -0.1, math.inf, "x", True, 0.1, 10**400, 1e-50]):
        add(f"quant-scale{i}", _set(scale0, v), k.scale0_needle)
    if v1:
        add("quant-scales-short", lambda ck: ck["quantization"]["scales"].pop(), "scales")
        add("quant-scales-long", lambda ck: ck["quantization"]["scales"].append(0.5), "scales")
        add("quant-scales-as-dict", lambda ck: ck["quantization"].__setitem__(
            "scales", dict(zip(LAYERS, ck["quantization"]["scales"], strict=True))), "list of 4 numbers")
    else:
        add("quant-scales-short", lambda ck: ck["quantization"]["scales"].pop("out"), "scales")
        add("quant-scales-long", _set("quantization.scales.conv9", 0.5), "scales")
        add("quant-scales-renamed", lambda ck: ck["quantization"]["scales"].__setitem__(
            "conv1_lif", ck["quantization"]["scales"].pop("conv1")), "scales")
        add("quant-scales-as-list", lambda ck: ck["quantization"].__setitem__(
            "scales", list(ck["quantization"]["scales"].values())), "map each of the 4 synapse nodes")
        add("quant-ints-v1-keys", lambda ck: ck["quantization"].__setitem__("int_weights", {
            f"synapses.{i}.weight": ck["quantization"]["int_weights"][f"{n}.weight"] for i, n in enumerate(LAYERS)}),
            "int_weights")
    add("quant-scales-tensor", _set("quantization.scales", lambda: torch.ones(4)), "scales")
    add("quant-scale-doubled", lambda ck: ck["quantization"]["scales"].__setitem__(
        node0, ck["quantization"]["scales"][node0] * 2), "differs")
    for i, v in enumerate(["x", None, [1]]):
        add(f"quant-ints-type{i}", _set("quantization.int_weights", v), "int_weights")
    add("quant-ints-missing", _set("quantization.int_weights." + k.w1.replace(".", "/"), DELETE), "int_weights")
    add("quant-ints-extra", _set("quantization.int_weights." + k.th.replace(".", "/"),
                                 lambda: torch.zeros(3, dtype=torch.int8)), "int_weights")
    for dt in (torch.float32, torch.bool):
        add(f"quant-ints-dtype-{dt}", _tensor_edit(k.w0, lambda t, dt=dt: t.to(dt), "ints"), "integer tensor")
    add("quant-ints-shape", _tensor_edit(k.w0, lambda t: t.reshape(-1), "ints"), "shape")
    add("quant-ints-list", _set("quantization.int_weights." + k.w0.replace(".", "/"), [1, 2]), "tensor")
    add("quant-ints-plus-one", _tensor_edit(k.w0, _nudge_code, "ints"), "differs")
    add("quant-weight-one-ulp", _tensor_edit(k.w0, lambda t: t.view(-1).__setitem__(
        0, torch.nextafter(t.view(-1)[0], torch.tensor(math.inf)))), "differs")
    add("quant-codes-range", _codes_out_of_range(k.w0, node0, 100), "range")
    return m


def _graph_mutations() -> list[Mutation]:
    """The v2 graph entry: of a VGG (checked against its arch) and of a ResNet (no arch: the graph
    alone is the network), and the ResNet's batch-norm state and bias codes."""
    m: list[Mutation] = []

    def add(name: str, edit: Callable[[dict[str, Any]], None], needle: str, base: str = "resnet") -> None:
        m.append((name, base, edit, needle))

    def node(name: str, **fields: Any) -> Callable[[dict[str, Any]], None]:
        def edit(ck: dict[str, Any]) -> None:
            ck["graph"]["nodes"][name].update({k: _materialize(v) for k, v in fields.items()})

        return edit

    # a VGG's graph: its type, and against its arch entry
    for i, v in enumerate([[1], None, "fuzz", 5]):
        add(f"graph-type{i}", _set("graph", v), "graph", "float")
    add("graph-conv-1e9", node("conv1", out_channels=10**9), "out_channels", "float")
    add("graph-other-width", node("conv1", out_channels=5), "is not the graph of its arch entry", "float")
    add("graph-other-name", _set("graph.name", "other"), "is not the graph of its arch entry", "float")
    add("graph-unknown-kind", node("conv2", kind="Conv3d"), "unknown kind 'Conv3d'", "float")
    add("graph-v1-quant-dropout", node("fc1_lif", dropout=2.0), "dropout", "quant")
    # a ResNet's graph: sizes, bounded arithmetically before anything is allocated
    add("graph-conv-1e9", node("stem", out_channels=10**9), "out_channels")
    add("graph-conv-1e30", node("stem", out_channels=10**30), "out_channels")
    add("graph-conv-0", node("s1b1_conv1", out_channels=0), "out_channels")
    add("graph-affine-1e9", node("out", out_features=10**9), "out_features")
    add("graph-too-many-params", lambda ck: [ck["graph"]["nodes"][n].update(out_channels=65_536)
                                             for n in ("stem", "s1b1_conv1", "s1b1_conv2")], "parameters, more than")
    add("graph-too-many-values", node("input", shape=[1, 4096, 4096]), "values per sample")
    add("graph-input-huge", node("input", shape=[1, 10**6, 10**6]), "too large")
    add("graph-kernel-huge", node("stem", kernel_size=10**6), "exceeds")
    add("graph-groups", node("stem", groups=3), "groups=3")
    add("graph-stride-0", node("s2b1_conv1", stride=0), "sizes must be positive")
    add("graph-padding-neg", node("stem", padding=-1), "sizes must be positive")
    add("graph-kernel-type", node("stem", kernel_size="abc"), "kernel_size")
    add("graph-kernel-3d", node("stem", kernel_size=[3, 3, 3]), "kernel_size")
    add("graph-input-shape", node("input", shape=[0, 8, 8]), "shape [0, 8, 8]")
    add("graph-input-2d", node("input", shape=[1, 8]), "needs a (C, H, W) input")
    add("graph-eps", node("stem_bn", eps=-1.0), "eps")
    add("graph-dropout", node("stem_lif", dropout=1.0), "dropout")
    add("graph-fire", node("stem_lif", fire="x"), "fire")
    add("graph-reset", node("s1b1_lif2", reset=None), "reset")
    add("graph-per-channel", node("stem_lif", per_channel=True), "stem_lif.threshold")
    add("graph-bias", node("stem", bias=True), "stem.bias")
    # a ResNet's graph: structure
    add("graph-unknown-kind", node("s1b1_add", kind="Mul"), "unknown kind 'Mul'")
    add("graph-unknown-field", node("stem", colour="red"), "unknown field 'colour'")
    add("graph-field-tensor", node("stem", out_channels=lambda: torch.tensor(32)), "field 'out_channels'")
    add("graph-field-nested", node("stem", kernel_size=[[3]]), "field 'kernel_size'")
    add("graph-nodes-list", _set("graph.nodes", [1]), "must be a mapping with 'nodes'")
    add("graph-edges-dict", _set("graph.edges", {"a": "b"}), "must be a mapping with 'nodes'")
    add("graph-edge-triple", _edges(lambda e: [*e, ["stem", "stem_bn", "x"]]), "pair of node names")
    add("graph-edge-ints", _edges(lambda e: [*e, [1, 2]]), "pair of node names")
    add("graph-edge-nowhere", _edges(lambda e: [*e, ["stem", "nowhere"]]), "'nowhere'")
    add("graph-self-loop", _edges(lambda e: [*e, ["stem", "stem"]]), "self-loop")
    add("graph-cycle", _edges(lambda e: [*e, ["stem_lif", "stem"]]), "'stem'")
    add("graph-dup-edge", _edges(lambda e: [*e, e[1]]), "appears twice")
    add("graph-no-edges", _edges(lambda e: []), "feeds nothing")
    add("graph-add-one-input", _edges(lambda e: [x for x in e if x != ["stem_lif", "s1b1_add"]]), "'s1b1_add'")
    add("graph-add-shapes", _edges(lambda e: [["input", "s1b1_add"] if x == ["stem_lif", "s1b1_add"] else x for x in e]),
        "different shapes")
    add("graph-two-inputs", lambda ck: ck["graph"]["nodes"].__setitem__("input2", {"kind": "Input", "shape": [1, 8, 8]}),
        "exactly one Input")
    add("graph-no-output", lambda ck: (ck["graph"]["nodes"].pop("output"), _edges(
        lambda e: [x for x in e if "output" not in x])(ck)), "exactly one Output")
    add("graph-dangling", lambda ck: ck["graph"]["nodes"].__setitem__("extra", {"kind": "AvgPool2d"}), "'extra'")
    add("graph-name-type", _set("graph.name", 5), "graph name")
    add("graph-node-dot", _rename_node("stem", "a.b"), "'a.b'")
    add("graph-node-empty", _rename_node("stem", ""), "node name")
    add("graph-node-long", _rename_node("stem", "x" * 300), "node names")
    add("graph-node-int", lambda ck: ck["graph"]["nodes"].__setitem__(5, {"kind": "Add"}), "node names")
    add("graph-node-entry-str", _set("graph.nodes.stem", "Conv2d"), "'stem'")
    add("graph-arch-for-resnet", lambda ck: ck.__setitem__("arch", SPEC.to_dict()), "is not the graph of its arch entry")
    # the ResNet's state: batch norm values and buffers, biases
    add("bn-missing-var", _set(_sd("stem_bn.running_var"), DELETE), "lacks")
    add("bn-extra-key", _set(_sd("stem.bias"), lambda: torch.zeros(32)), "does not use")
    add("bn-counter-float", _tensor_edit("stem_bn.num_batches_tracked", lambda t: t.float()), "integer tensor")
    add("bn-counter-shape", _tensor_edit("stem_bn.num_batches_tracked", lambda t: t.reshape(1)), "shape")
    add("bn-weight-shape", _tensor_edit("s2b1_down_bn.weight", lambda t: t[:32].clone()), "shape")
    add("bn-nan-var", _tensor_edit("stem_bn.running_var", lambda t: _put(t, math.nan)), "NaN")
    add("bn-inf-mean", _tensor_edit("s1b1_conv2_bn.running_mean", lambda t: _put(t, math.inf)), "NaN or Inf")
    add("bias-nan", _tensor_edit("out.bias", lambda t: _put(t, math.nan)), "NaN")
    add("thresholds-negative", _tensor_edit("s2b1_lif2.threshold", lambda t: _put(t, -1.0)), "'s2b1_lif2.threshold'")
    add("leaks-above-one", _tensor_edit("s1b1_lif1.leak", lambda t: _put(t, 1.5)), "'s1b1_lif1.leak'")
    # the folded, quantized ResNet: bias codes (int32, 24-bit range, the weight's scale)
    q = "resnetq"
    add("bias-codes-dtype", _tensor_edit("stem.bias", lambda t: t.to(torch.int8), "ints"), "int32", q)
    add("bias-codes-float", _tensor_edit("stem.bias", lambda t: t.float(), "ints"), "integer tensor", q)
    add("bias-codes-missing", _set("quantization.int_weights.stem/bias", DELETE), "int_weights", q)
    add("bias-codes-range", _codes_out_of_range("out.bias", "out", 2**24), "24-bit range", q)
    add("bias-codes-plus-one", _tensor_edit("s2b1_down.bias", _nudge_code, "ints"), "differs", q)
    add("bias-one-ulp", _tensor_edit("s1b1_conv1.bias", lambda t: t.view(-1).__setitem__(
        0, torch.nextafter(t.view(-1)[0], torch.tensor(math.inf)))), "differs", q)
    add("bias-scale-missing", lambda ck: ck["quantization"]["scales"].pop("s2b1_down"), "scales", q)
    add("bias-scale-nan", _set("quantization.scales.s2b1_down", math.nan), "scales['s2b1_down']", q)
    add("bias-weight-codes-range", _codes_out_of_range("stem.weight", "stem", 100), "6-bit range", q)
    add("bias-graph-unfolded", lambda ck: ck.__setitem__("graph", build_graph("digits-resnet").to_dict()), "lacks", q)
    return m


def _bug_mutations() -> list[Mutation]:
    """Graph entries whose fields have the wrong type, or whose node names clash with the model
    class: still one-line CheckpointErrors naming the node. (These found library bugs: the
    node fields are not type-checked, so a string size reaches a comparison and raises a
    TypeError; a name like 'schedule' raises a GraphError from GraphNet, not a CheckpointError.)"""
    m: list[Mutation] = []

    def add(name: str, edit: Callable[[dict[str, Any]], None], needle: str) -> None:
        m.append((name, "resnet", edit, needle))

    def node(name: str, **fields: Any) -> Callable[[dict[str, Any]], None]:
        return lambda ck: ck["graph"]["nodes"][name].update(fields)

    add("graph-node-name-clash", _rename_node("stem", "schedule"), "'schedule'")
    add("graph-node-name-forward", _rename_node("s1b1_add", "forward"), "'forward'")
    add("graph-conv-channels-str", node("stem", out_channels="64"), "out_channels")
    add("graph-conv-channels-none", node("stem", out_channels=None), "out_channels")
    add("graph-conv-channels-float", node("stem", out_channels=2.5), "out_channels")
    add("graph-conv-groups-str", node("stem", groups="1"), "groups")
    add("graph-affine-features-float", node("out", out_features=2.5), "out_features")
    add("graph-affine-features-str", node("out", out_features="10"), "out_features")
    add("graph-dropout-str", node("stem_lif", dropout="x"), "dropout")
    add("graph-eps-str", node("stem_bn", eps="x"), "eps")
    add("graph-input-none", node("input", shape=None), "shape")
    add("graph-v-reset-str", node("stem_lif", reset="value", v_reset="x"), "v_reset")
    add("graph-v-reset-nan", node("stem_lif", reset="value", v_reset=math.nan), "v_reset")
    return m


def _schema_mutations() -> list[Mutation]:
    """(name, base, edit, the field the error must name) for every schema failure class, in
    both formats."""
    return [*_top_mutations("float", v1=False), *_top_mutations("v1", v1=True),
            *_state_mutations("float", V2), *_state_mutations("v1", V1),
            *_arch_mutations("float", v1=False), *_arch_mutations("v1", v1=True),
            *_meta_mutations("float"),
            *[(n, "v1", e, nd) for n, _, e, nd in _meta_mutations("v1") if n in ("dataset0", "dataset10", "checksum5")],
            *_quant_mutations("quant", V2, v1=False), *_quant_mutations("v1quant", V1, v1=True),
            *_graph_mutations(), *_bug_mutations()]


VALUE_MUTATIONS = ("weight-", "thresholds-", "leaks-", "quant-scale", "quant-ints-plus", "quant-weight", "quant-codes",
                   "timesteps", "dataset", "bn-nan", "bn-inf", "bias-nan", "bias-codes-range", "bias-codes-plus",
                   "bias-one-ulp")


def _sealing(name: str, needle: str) -> list[tuple[str, tuple[str, ...]]]:
    """How a schema mutation is sealed, and what its error must name for each sealing.

    Every mutation is resealed (the schema must name the field). Value mutations are also written
    with no checksum (a legacy file: the field again) and with the stale one (the checksum or the
    field, whichever check comes first).
    """
    if name.startswith("checksum"):
        return [("keep", (needle,))]
    out = [("reseal", (needle,))]
    if name.startswith(VALUE_MUTATIONS):
        out += [("none", (needle,)), ("stale", (needle, "corrupt"))]
    return out


def _controls() -> list[Case]:
    """Valid files that must load and equal their original (the oracle is not vacuous)."""

    def plain(base: str) -> Callable[[Originals], bytes]:
        return lambda o: o.files[base]

    def edited(base: str, edit: Callable[[dict[str, Any]], None]) -> Callable[[Originals], bytes]:
        def build(o: Originals) -> bytes:
            ck = copy.deepcopy(o.dicts[base])
            edit(ck)
            return _torch_bytes(ck)

        return build

    def valid(name: str, base: str, edit: Callable[[dict[str, Any]], None]) -> Case:
        return Case(name, base, edited(base, edit), must_fail=False, must_load=True)

    return [Case(f"valid-{b}", b, plain(b), must_fail=False, must_load=True) for b in (*V2_BASES, *V1_BASES)] + [
        valid("valid-dataset-none", "float", _set("dataset", None)),
        valid("valid-provenance-extra-key", "float", _set("provenance.note", {"a": [1, 2.5, None]})),
        valid("valid-no-checksum-quant", "quant", _set("checksum", DELETE)),
        valid("valid-no-checksum-v1quant", "v1quant", _set("checksum", DELETE)),
        valid("valid-no-checksum-resnetq", "resnetq", _set("checksum", DELETE)),
        valid("valid-float-arch-none", "float", _set("arch", None)),  # v2: the graph alone is the network
        valid("valid-float-no-arch", "float", _set("arch", DELETE)),
        valid("valid-resnet-graph-name", "resnet", _set("graph.name", "renamed")),
    ]


def _cases() -> list[Case]:
    cases = _controls()
    for base, n in (("float", 12), ("quant", 8), ("nochecksum", 6), ("example", 6), ("v1", 6), ("v1quant", 6),
                    ("resnet", 6), ("resnetq", 6)):
        cases += [_flip(base, "tensor", k, bit=k % 2 == 1) for k in range(n)]
    for base in ("float", "quant", "v1quant", "resnetq"):
        cases += [_flip(base, "pickle", k, bit=k % 2 == 0) for k in range(4)]
        cases += [_flip(base, region, k) for region in ("header", "padding", "directory", "end") for k in range(4)]
    for base in ("float", "quant", "example", "v1quant", "resnetq"):
        cases += [_truncate(base, f) for f in (0.02, 0.25, 0.5, 0.9, -22, -1)]
    cases += [
        _raw("zero-length", lambda: b""),
        _raw("one-byte", lambda: b"P"),
        _raw("zip-magic-only", lambda: b"PK\x03\x04"),
        _raw("text-file", lambda: b"this is not a model\n" * 20),
        _raw("json", lambda: b'{"format": "snnsim-model", "format_version": 1}'),
        _raw("json-v2", lambda: b'{"format": "snnsim-model", "format_version": 2, "graph": {}}'),
        _raw("zip-of-text", lambda: _zip_of({"readme.txt": b"hello"})),
        _raw("zip-fake-pickle", lambda: _zip_of({"archive/data.pkl": b"garbage", "archive/version": b"3\n"})),
        _raw("zip-deflated", lambda: _deflated_copy(_torch_bytes({"a": torch.zeros(64)}))),
        _raw("evil-torch-save", lambda: _torch_bytes({"format": "snnsim-model", "x": _Evil()})),
        _raw("evil-in-graph", lambda: _torch_bytes({"format": "snnsim-model", "format_version": 2,
                                                    "graph": {"nodes": {"x": _Evil()}, "edges": []}})),
        _raw("evil-plain-pickle", lambda: pickle.dumps(_Evil())),
        _raw("torch-not-snnsim", lambda: _torch_bytes({"weights": torch.zeros(3)})),
        _raw("torch-list", lambda: _torch_bytes([1, 2, 3])),
        _raw("torch-tensor", lambda: _torch_bytes(torch.zeros(3))),
    ]
    for k in range(4):
        cases.append(_raw(f"random-{k}", lambda k=k: random.Random(SEED + k).randbytes(64 + 997 * k)))
    cases.append(Case("random-with-zip-magic", "float", lambda o: b"PK\x03\x04" + random.Random(SEED).randbytes(2000)))
    # CRC-valid corruption: a weight changed and the file re-zipped; only the checksum sees it
    for base, key in (("float", V2.w0), ("v1", V1.w0), ("resnet", "s1b1_conv2_bn.running_mean")):
        cases.append(_mutate("rezipped-weight", base, _tensor_edit(key, lambda t: _put(t, 0.125)), ("corrupt",),
                             seal="stale"))
    for name, base, edit, needle in _schema_mutations():
        for seal, needles in _sealing(name, needle):
            cases.append(_mutate(name, base, edit, needles, seal=seal))
    return cases


def _deflated_copy(data: bytes) -> bytes:
    """The same torch zip with every member deflate-compressed (torch.save never compresses)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    return buf.getvalue()


CASES = _cases()
CLI_CASES = [c for c in CASES if c.id in {
    "zero-length", "text-file", "evil-torch-save", "zip-of-text", "truncate-float-0.5", "flip-float-tensor-0",
    "schema-float-timesteps0-reseal", "schema-float-arch-10M-channels-reseal", "schema-quant-quant-scale0-reseal",
    "schema-float-thresholds-zero-reseal", "schema-float-rezipped-weight-stale", "schema-float-dataset0-reseal",
    "schema-float-checksum5-keep", "flip-v1quant-tensor-0", "schema-v1quant-quant-scale0-reseal",
    "schema-v1-as-v2-reseal", "schema-resnet-graph-conv-1e9-reseal", "schema-resnetq-bias-codes-dtype-reseal",
    "schema-quant-quant-scales-as-list-reseal", "schema-resnet-graph-node-name-clash-reseal"}]


# ----------------------------------------------------------------------------- the oracle


def _equal_state(model: Model, original: Model) -> None:
    sd, ref = model.state_dict(), original.state_dict()
    assert sd.keys() == ref.keys()
    for k in ref:
        assert sd[k].dtype == ref[k].dtype and torch.equal(sd[k], ref[k]), k
    q, qref = model.quantization, original.quantization
    assert (q is None) == (qref is None)
    if q is not None and qref is not None:
        assert isinstance(q["scales"], dict)  # keyed by node, whatever the file's version
        assert (q["bits"], q["scheme"], q["scales"]) == (qref["bits"], qref["scheme"], dict(qref["scales"]))
        assert q["int_weights"].keys() == qref["int_weights"].keys()
        for k, v in qref["int_weights"].items():
            assert q["int_weights"][k].dtype == v.dtype and torch.equal(q["int_weights"][k], v), k


@pytest.fixture
def no_build_on_refusal(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the models checkpoint loading builds (none may be built for a refused file)."""
    built: list[int] = []
    real = ckpt_mod.build_model

    def counting(*args: Any, **kwargs: Any) -> Model:
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ckpt_mod, "build_model", counting)
    return built


def test_at_least_100_cases() -> None:
    assert len(CASES) >= 100, len(CASES)
    # both formats are covered: v1 files (legacy state, list scales, the example) and the v2
    # graph, its state keys and dict scales
    v1 = [c for c in CASES if c.base in V1_BASES]
    graph = [c for c in CASES if c.id.startswith(("schema-resnet-graph", "schema-float-graph"))]
    dict_scales = [c for c in CASES if c.id.startswith(("schema-quant-quant-scale", "schema-resnetq-bias-scale"))]
    assert len(v1) >= 150 and len(graph) >= 50 and len(dict_scales) >= 30, (len(v1), len(graph), len(dict_scales))
    assert {c.base for c in CASES if c.must_load} == {*V2_BASES, *V1_BASES}
    assert len({c.id for c in CASES}) == len(CASES)  # ids are unique
    assert len(CLI_CASES) >= 10


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_fuzzed_checkpoint(case: Case, originals: Originals, tmp_path: Path, no_build_on_refusal: list[int]) -> None:
    path = tmp_path / "m.pt"
    path.write_bytes(case.build(originals))
    try:
        model = load_model(path)
    except CheckpointError as exc:
        msg = str(exc)
        assert not case.must_load, (case.id, msg)
        assert "\n" not in msg and msg == msg.strip() and 0 < len(msg) < 400, (case.id, msg)
        assert "Traceback" not in msg and "weights_only` set to `False" not in msg, msg
        if case.needle:
            assert any(n in msg for n in case.needle), (case.id, case.needle, msg)
        assert not no_build_on_refusal, f"{case.id}: a model was built before the file was refused"
        assert not MARKER.exists(), "an unpickled object ran a shell command"
        return
    assert not case.must_fail, f"{case.id}: a damaged or invalid file loaded"
    _equal_state(model, originals.models[case.base])


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.id)
def test_fuzzed_checkpoint_through_the_cli(case: Case, originals: Originals, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.pt"
    path.write_bytes(case.build(originals))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["info", str(path)])
    captured = capsys.readouterr()
    assert exc.value.code == 2, (case.id, captured.err)
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnsim: error: "), (case.id, captured.err)
    assert captured.out == ""
