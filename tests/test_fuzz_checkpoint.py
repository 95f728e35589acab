"""Seeded fuzzing of checkpoint loading: damaged files and crafted fields are one-line errors.

Every case is a file built from a small real model (float, 4-bit quantized, a legacy copy without
a checksum, and the shipped example): byte flips at seeded positions in the tensor data, the
pickle, the zip headers and directory; truncations; empty, random, non-zip and foreign-zip files;
pickles that ask for ``os.system``; and mutations of every checkpoint field (type, range,
missing, extra). The oracle, for every case: :func:`load_model` raises :class:`CheckpointError`
with a one-line message (naming the field, for schema mutations), or returns a model whose state
dict and quantization record equal the original's bit for bit. A flip inside tensor data or the
pickle must always be detected; nothing may be built for a refused file.
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

import snnsim.checkpoint as ckpt_mod
from snnsim.arch import ArchSpec
from snnsim.checkpoint import checkpoint_dict, load_model, state_checksum
from snnsim.cli import main
from snnsim.compression.quantize import quantize_model
from snnsim.errors import CheckpointError
from snnsim.limits import MAX_TIMESTEPS
from snnsim.models import Model, build_model

SEED = 20240611
EXAMPLE = Path(__file__).resolve().parents[1] / "snnsim" / "examples" / "digits_pruned_T2.pt"
W0 = "synapses.0.weight"


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


def _float_model() -> Model:
    spec = ArchSpec("fuzz", (4, "A", 6, "M"), (8,), (2, 8, 8), 3, dropout_conv=0.0, dropout_fc=0.0)
    m = build_model(spec, kind="snn", timesteps=3, seed=5)
    with torch.no_grad():
        m.thresholds.copy_(torch.tensor([0.25, 0.5, 0.75]))
        m.leaks.copy_(torch.tensor([0.9, 1.0, 0.0]))
    m.dataset_info = {"name": "synthetic", "mean": [0.5, 0.4], "std": [0.25, 0.3], "input_shape": [2, 8, 8],
                      "num_classes": 3, "train_size": 64}
    m.provenance = {"command": "fuzz", "seed": 7, "accuracy": 0.5, "history": [{"epoch": 1, "loss": 0.25}]}
    return m


def make_originals() -> Originals:
    """Build the originals (also usable outside pytest, to print every case's outcome)."""
    torch.manual_seed(SEED)
    fm = _float_model()
    qm = quantize_model(fm, 4)
    example = load_model(EXAMPLE)
    dicts = {"float": checkpoint_dict(fm), "quant": checkpoint_dict(qm)}
    legacy = copy.deepcopy(dicts["float"])
    del legacy["checksum"]  # what snnsim wrote before it stored checksums
    files = {"float": _torch_bytes(dicts["float"]), "quant": _torch_bytes(dicts["quant"]),
             "legacy": _torch_bytes(legacy), "example": EXAMPLE.read_bytes()}
    return Originals({"float": fm, "quant": qm, "legacy": fm, "example": example}, dicts, files)


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
    t.view(-1)[1] = value


def _nudge_code(t: torch.Tensor) -> None:
    """Move one integer code by one, staying inside the 4-bit range."""
    flat = t.view(-1)
    flat[0] = flat[0] - 1 if flat[0] > 0 else flat[0] + 1


def _nest(depth: int) -> Any:
    v: Any = 1
    for _ in range(depth):
        v = [v]
    return v


def _codes_out_of_range(ck: dict[str, Any]) -> None:
    """int code 100 for 4 bits (range ±7), with the float weight made consistent with it."""
    q = ck["quantization"]
    codes = q["int_weights"][W0].clone()
    codes.view(-1)[0] = 100
    q["int_weights"][W0] = codes
    w = ck["state_dict"][W0].clone()
    w.view(-1)[0] = torch.tensor(100.0) * torch.tensor(q["scales"][0], dtype=torch.float32)
    ck["state_dict"][W0] = w


def _schema_mutations() -> list[tuple[str, str, Callable[[dict[str, Any]], None], str]]:
    """(name, base, edit, the field the error must name) for every schema failure class."""
    m: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = []

    def add(name: str, edit: Callable[[dict[str, Any]], None], needle: str, base: str = "float") -> None:
        m.append((name, base, edit, needle))

    # top level: format, version, kind, timesteps, missing and unknown entries
    for i, v in enumerate(["xyz", None, 5, torch.tensor(1)]):
        add(f"format{i}", _set("format", v), "not an snnsim model checkpoint")
    for i, v in enumerate([0, -1, "1", True, 1.0, None]):
        add(f"version{i}", _set("format_version", v), "format_version")
    add("version-future", _set("format_version", 2), "newer")
    for i, v in enumerate(["xyz", 5, None, ["snn"], "SNN"]):
        add(f"kind{i}", _set("kind", v), "kind")
    for i, v in enumerate(["abc", 0, -3, True, 10**20, 2.5, None, MAX_TIMESTEPS + 1, torch.tensor(3)]):
        add(f"timesteps{i}", _set("timesteps", v), "timesteps")
    for key in ("arch", "kind", "timesteps", "state_dict"):
        add(f"missing-{key}", _set(key, DELETE), f"missing the {key!r}")
    add("unknown-entry", _set("weights", 1), "unknown entries")
    # state dict: type, keys, dtype, shape, values
    for i, v in enumerate([[1, 2], "weights", None, lambda: torch.zeros(3)]):
        add(f"state-type{i}", _set("state_dict", v), "state_dict")
    add("state-missing-thresholds", _set("state_dict.thresholds", DELETE), "lacks")
    add("state-missing-w1", _set("state_dict.synapses/1/weight", DELETE), "lacks")
    add("state-extra-key", _set("state_dict.synapses/9/weight", lambda: torch.zeros(2)), "does not use")
    add("state-extra-bias", _set("state_dict.synapses/0/bias", lambda: torch.zeros(4)), "does not use")
    for dt in (torch.float64, torch.float16, torch.int32, torch.bool):
        add(f"state-dtype-{dt}", _tensor_edit(W0, lambda t, dt=dt: t.to(dt)), "float32")
    add("state-shape-T", _tensor_edit("synapses.2.weight", lambda t: t.t().contiguous()), "shape")
    add("state-shape-flat", _tensor_edit(W0, lambda t: t.reshape(-1)), "shape")
    add("state-shape-extra-dim", _tensor_edit("thresholds", lambda t: t[None]), "shape")
    add("state-shape-short", _tensor_edit("leaks", lambda t: t[:2]), "shape")
    for i, v in enumerate([[0.5, 0.5, 0.5], 1.0, "x", None]):
        add(f"state-value-type{i}", _set("state_dict.thresholds", v), "must be a tensor")
    add("weight-nan", _tensor_edit(W0, lambda t: _put(t, math.nan)), "NaN")
    add("weight-inf", _tensor_edit("synapses.3.weight", lambda t: _put(t, -math.inf)), "NaN or Inf")
    add("thresholds-zero", _tensor_edit("thresholds", lambda t: torch.zeros_like(t)), "thresholds")
    add("thresholds-negative", _tensor_edit("thresholds", lambda t: _put(t, -0.5)), "thresholds")
    add("thresholds-nan", _tensor_edit("thresholds", lambda t: _put(t, math.nan)), "thresholds")
    add("leaks-negative", _tensor_edit("leaks", lambda t: _put(t, -0.1)), "leaks")
    add("leaks-above-one", _tensor_edit("leaks", lambda t: _put(t, 1.5)), "leaks")
    add("leaks-nan", _tensor_edit("leaks", lambda t: _put(t, math.nan)), "leaks")
    # architecture: type, sizes (bounded before anything is allocated), kinds, missing/unknown
    for i, v in enumerate(["vgg16", [1, 2], None]):
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
    # metadata: dataset, provenance, extra
    for i, v in enumerate(["cifar", 5, [1], {"mean": "x"}, {"mean": [math.nan]}, {"std": [0.0]},
                           {"std": [-1.0, 0.5]}, {"mean": [0.1, 0.2, 0.3]}, {"mean": [0.5], "std": [0.5, 0.5]},
                           {"input_shape": [3, 32, 32]}, {"num_classes": 99}, {"name": 5}, {1: 2},
                           {"split": lambda: torch.zeros(2)}, {"mean": [10**400]}]):
        add(f"dataset{i}", _set("dataset", v), "dataset")
    for i, v in enumerate(["x", 5, [1, 2], {"a": lambda: torch.zeros(2)}, {"deep": _nest(40)}, {3: "x"}]):
        add(f"provenance{i}", _set("provenance", v), "provenance")
    for i, v in enumerate(["x", {"epoch": "a"}, {"epoch": -1}, {"stage": 5}, {4: 1}]):
        add(f"extra{i}", _set("extra", v), "extra")
    # quantization record: type, fields, bits, scheme, scales, integer weights, the invariant
    for i, v in enumerate(["x", 5, [1]]):
        add(f"quant-type{i}", _set("quantization", v), "quantization", "quant")
    add("quant-missing-bits", _set("quantization.bits", DELETE), "exactly the fields", "quant")
    add("quant-extra-field", _set("quantization.zero_point", 0), "exactly the fields", "quant")
    for i, v in enumerate([0, 1, 25, 33, -4, "four", True, 4.0, None]):
        add(f"quant-bits{i}", _set("quantization.bits", v), "bits", "quant")
    for i, v in enumerate(["asymmetric", 5, torch.tensor(0)]):
        add(f"quant-scheme{i}", _set("quantization.scheme", v), "scheme", "quant")
    for i, v in enumerate([math.nan, 0.0, -0.1, math.inf, "x", True, 0.1, 10**400, 1e-50]):
        add(f"quant-scale{i}", _set("quantization.scales.0", v), "scales[0]", "quant")
    add("quant-scales-short", lambda ck: ck["quantization"]["scales"].pop(), "scales", "quant")
    add("quant-scales-long", lambda ck: ck["quantization"]["scales"].append(0.5), "scales", "quant")
    add("quant-scales-tensor", _set("quantization.scales", lambda: torch.ones(4)), "scales", "quant")
    add("quant-scale-doubled", lambda ck: ck["quantization"]["scales"].__setitem__(0, ck["quantization"]["scales"][0] * 2),
        "differs", "quant")
    for i, v in enumerate(["x", None, [1]]):
        add(f"quant-ints-type{i}", _set("quantization.int_weights", v), "int_weights", "quant")
    add("quant-ints-missing", _set("quantization.int_weights.synapses/1/weight", DELETE), "int_weights", "quant")
    add("quant-ints-extra", _set("quantization.int_weights.thresholds", lambda: torch.zeros(3, dtype=torch.int8)),
        "int_weights", "quant")
    for dt in (torch.float32, torch.bool):
        add(f"quant-ints-dtype-{dt}", _tensor_edit(W0, lambda t, dt=dt: t.to(dt), "ints"), "integer tensor", "quant")
    add("quant-ints-shape", _tensor_edit(W0, lambda t: t.reshape(-1), "ints"), "shape", "quant")
    add("quant-ints-list", _set("quantization.int_weights.synapses/0/weight", [1, 2]), "tensor", "quant")
    add("quant-ints-plus-one", _tensor_edit(W0, _nudge_code, "ints"), "differs", "quant")
    add("quant-weight-one-ulp", _tensor_edit(W0, lambda t: t.view(-1).__setitem__(
        0, torch.nextafter(t.view(-1)[0], torch.tensor(math.inf)))), "differs", "quant")
    add("quant-codes-range", _codes_out_of_range, "range", "quant")
    # checksum field
    for i, v in enumerate(["x", {"algorithm": "md5", "state": "0" * 64}, {"algorithm": "sha256", "state": "zz"},
                           {"algorithm": "sha256"}, {"algorithm": torch.tensor(1), "state": "0" * 64},
                           {"algorithm": "sha256", "state": "0" * 64}]):
        m.append((f"checksum{i}", "float", _set("checksum", v), "checksum" if i < 5 else "corrupt"))
    return m


def _sealing(name: str, needle: str) -> list[tuple[str, tuple[str, ...]]]:
    """How a schema mutation is sealed, and what its error must name for each sealing.

    Every mutation is resealed (the schema must name the field). Value mutations are also written
    with no checksum (a legacy file: the field again) and with the stale one (the checksum or the
    field, whichever check comes first).
    """
    if name.startswith("checksum"):
        return [("keep", (needle,))]
    out = [("reseal", (needle,))]
    if name.startswith(("weight-", "thresholds-", "leaks-", "quant-scale", "quant-ints-plus", "quant-weight",
                        "quant-codes", "timesteps", "dataset")):
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

    return [Case(f"valid-{b}", b, plain(b), must_fail=False, must_load=True) for b in ("float", "quant", "legacy", "example")] + [
        Case("valid-dataset-none", "float", edited("float", _set("dataset", None)), must_fail=False, must_load=True),
        Case("valid-provenance-extra-key", "float", edited("float", _set("provenance.note", {"a": [1, 2.5, None]})),
             must_fail=False, must_load=True),
        Case("valid-no-checksum-quant", "quant", edited("quant", _set("checksum", DELETE)), must_fail=False, must_load=True),
    ]


def _cases() -> list[Case]:
    cases = _controls()
    for base, n in (("float", 12), ("quant", 8), ("legacy", 6), ("example", 6)):
        cases += [_flip(base, "tensor", k, bit=k % 2 == 1) for k in range(n)]
    for base in ("float", "quant"):
        cases += [_flip(base, "pickle", k, bit=k % 2 == 0) for k in range(4)]
        cases += [_flip(base, region, k) for region in ("header", "padding", "directory", "end") for k in range(4)]
    for base in ("float", "quant", "example"):
        cases += [_truncate(base, f) for f in (0.02, 0.25, 0.5, 0.9, -22, -1)]
    cases += [
        _raw("zero-length", lambda: b""),
        _raw("one-byte", lambda: b"P"),
        _raw("zip-magic-only", lambda: b"PK\x03\x04"),
        _raw("text-file", lambda: b"this is not a model\n" * 20),
        _raw("json", lambda: b'{"format": "snnsim-model", "format_version": 1}'),
        _raw("zip-of-text", lambda: _zip_of({"readme.txt": b"hello"})),
        _raw("zip-fake-pickle", lambda: _zip_of({"archive/data.pkl": b"garbage", "archive/version": b"3\n"})),
        _raw("zip-deflated", lambda: _deflated_copy(_torch_bytes({"a": torch.zeros(64)}))),
        _raw("evil-torch-save", lambda: _torch_bytes({"format": "snnsim-model", "x": _Evil()})),
        _raw("evil-plain-pickle", lambda: pickle.dumps(_Evil())),
        _raw("torch-not-snnsim", lambda: _torch_bytes({"weights": torch.zeros(3)})),
        _raw("torch-list", lambda: _torch_bytes([1, 2, 3])),
        _raw("torch-tensor", lambda: _torch_bytes(torch.zeros(3))),
    ]
    for k in range(4):
        cases.append(_raw(f"random-{k}", lambda k=k: random.Random(SEED + k).randbytes(64 + 997 * k)))
    cases.append(Case("random-with-zip-magic", "float", lambda o: b"PK\x03\x04" + random.Random(SEED).randbytes(2000)))
    # CRC-valid corruption: a weight changed and the file re-zipped; only the checksum sees it
    cases.append(_mutate("rezipped-weight", "float", _tensor_edit(W0, lambda t: _put(t, 0.125)), ("corrupt",), seal="stale"))
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
    "schema-float-checksum5-keep"}]


# ----------------------------------------------------------------------------- the oracle


def _equal_state(model: Model, original: Model) -> None:
    sd, ref = model.state_dict(), original.state_dict()
    assert sd.keys() == ref.keys()
    for k in ref:
        assert sd[k].dtype == ref[k].dtype and torch.equal(sd[k], ref[k]), k
    q, qref = model.quantization, original.quantization
    assert (q is None) == (qref is None)
    if q is not None and qref is not None:
        assert (q["bits"], q["scheme"], q["scales"]) == (qref["bits"], qref["scheme"], list(qref["scales"]))
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
