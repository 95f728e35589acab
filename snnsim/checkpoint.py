"""Self-describing model checkpoints: one ``.pt`` file rebuilds the model with no user code.

Contents (``format: snnsim-model``, ``format_version`` 2):

* ``graph`` – the network graph (:meth:`snnsim.graph.Graph.to_dict`); ``arch`` – the VGG
  :class:`~snnsim.arch.ArchSpec` it was built from, or ``None``; ``kind`` (ann/snn); ``timesteps``;
* ``state_dict`` – the :class:`~snnsim.graph.GraphNet` state, ``<node>.<param>`` (weights,
  biases, BN statistics, thresholds, leaks; float32, bit-exact round trip);
* ``quantization`` – ``None`` or ``{bits, scheme, scales, int_weights}`` (integer weights and
  biases and each synapse node's scale, so the simulator can run integer arithmetic);
* ``dataset`` – name, normalisation mean/std, input shape, classes;
* ``provenance`` – command, seed, accuracy, creation time, snnsim version, parent checkpoint;
* ``extra`` (optional) – resumable training state (stage, epoch, optimizer, scheduler, history);
* ``checksum`` (optional; written since this version) – ``{"algorithm": "sha256", "state": hex}``
  over the state dict and the quantization record (:func:`state_checksum`).

Version-1 files (snnsim before the graph: ``arch`` only, ``synapses.<i>.weight``, ``thresholds``,
``leaks``) are converted on load (:func:`upgrade_v1`): the graph is the spec's VGG graph, the state
is renamed, the quantization record re-keyed; their content checksum is verified first.

Loading checks everything before anything is built, so a bad file is one
:class:`~snnsim.errors.CheckpointError` line, never a traceback or a silently wrong number:

1. the file: every zip member's CRC-32 (``torch.load`` does not check it, so one flipped weight
   byte used to load silently) and the container's layout;
2. the unpickling: ``weights_only=True``, so a file that asks for arbitrary objects is refused;
3. one schema (:func:`validate_checkpoint`): every field's type, range and shape, sizes bounded
   from the architecture's arithmetic before allocation, the state dict against the architecture,
   the quantization record against the float weights (``weight == int_weights * scale``);
4. the content checksum, where the file has one (files written by earlier snnsim have none and
   are verified by CRC only).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import pickle
import re
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch

from snnsim.arch import ArchSpec, plain_data_problem, show_value
from snnsim.errors import CheckpointError, SnnsimError, quote
from snnsim.graph.graph import Graph
from snnsim.graph.torch_net import GraphNet, convert_spikingnet_state
from snnsim.io import atomic_path, existing_file
from snnsim.limits import MAX_TIMESTEPS
from snnsim.models import Model, build_model

FORMAT_NAME = "snnsim-model"
FORMAT_VERSION = 2
CHECKSUM_ALGORITHM = "sha256"

_TOP_KEYS = ("format", "format_version", "graph", "arch", "kind", "timesteps", "state_dict", "quantization",
             "dataset", "provenance", "extra", "checksum")
_REQUIRED_KEYS = {1: ("arch", "kind", "timesteps", "state_dict"), 2: ("graph", "kind", "timesteps", "state_dict")}
_QUANT_KEYS = ("bits", "scheme", "scales", "int_weights")
_FIX = "re-save the model with snnsim"
_CORRUPT_FIX = "restore or re-train it"
_ZIP_CHUNK = 1 << 20


def _version() -> str:
    from snnsim import __version__

    return __version__


# ----------------------------------------------------------------------------- saving


def state_checksum(state_dict: Mapping[str, torch.Tensor], quantization: Mapping[str, Any] | None) -> str:
    """SHA-256 (hex) of the weights: every state-dict tensor and the quantization record.

    Tensors are hashed in sorted name order as a JSON header ``[name, dtype, shape]`` and then
    their raw bytes; the record as ``{bits, scheme, scales}`` (scales as exact float hex) and then
    its integer tensors the same way. Saving stores it; loading recomputes and compares it, which
    catches changes that keep the zip CRCs valid (a file re-zipped or re-pickled after damage).
    """
    h = hashlib.new(CHECKSUM_ALGORITHM)

    def tensors(items: Mapping[str, torch.Tensor]) -> None:
        for name in sorted(items):
            t = items[name].detach().cpu().contiguous()
            h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode() + b"\n")
            h.update(t.reshape(-1).view(torch.uint8).numpy())

    tensors(state_dict)
    if quantization is None:
        h.update(b"quantization: none\n")
    else:
        scales = quantization.get("scales") or []
        shown = ({k: float(v).hex() for k, v in scales.items()} if isinstance(scales, Mapping)
                 else [float(v).hex() for v in scales])
        header = {"bits": quantization.get("bits"), "scheme": quantization.get("scheme"), "scales": shown}
        h.update(json.dumps(header, sort_keys=True).encode() + b"\n")
        tensors(quantization.get("int_weights") or {})
    return h.hexdigest()


def checkpoint_dict(model: Model, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plain-dict checkpoint of ``model`` (tensors on CPU), sealed with its content checksum."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    prov = dict(model.provenance)
    prov.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    prov.setdefault("snnsim_version", _version())
    prov.setdefault("command", " ".join(["snnsim", *sys.argv[1:]]) if sys.argv else "")
    ckpt: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "graph": model.graph.to_dict(),
        "arch": model.spec.to_dict() if model.spec is not None else None,
        "kind": model.kind,
        "timesteps": int(model.timesteps),
        "state_dict": state,
        "quantization": model.quantization,
        "dataset": dict(model.dataset_info),
        "provenance": prov,
        "checksum": {"algorithm": CHECKSUM_ALGORITHM, "state": state_checksum(state, model.quantization)},
    }
    if extra:
        ckpt["extra"] = extra
    return ckpt


def save_model(model: Model, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
    """Save ``model`` atomically to ``path`` and return the path."""
    ckpt = checkpoint_dict(model, extra)
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


# ----------------------------------------------------------------------------- messages


def _show(v: Any) -> str:
    """A short, whole description of a value for a message (never cut mid-word)."""
    if isinstance(v, torch.Tensor):
        return f"a tensor of dtype {str(v.dtype).removeprefix('torch.')} and shape {list(v.shape)}"
    return show_value(v)


def _all_finite(t: torch.Tensor) -> bool:
    """No NaN or Inf in a float tensor (numpy's check: 20x faster than torch.isfinite on one thread)."""
    return bool(np.isfinite(t.detach().cpu().numpy()).all())


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    """A finite int or float that is not a bool (ints too large for a float are not finite)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


class _Schema:
    """Field checks that raise one-line :class:`CheckpointError` messages prefixed by the source."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, problem: str, fix: str = _FIX) -> NoReturn:
        """Raise ``source: problem; fix`` (``source is ...`` when the problem is about the whole file)."""
        sep = " " if problem.startswith(("is ", "has ")) else ": "
        raise CheckpointError(f"{self.source}{sep}{problem}", fix)

    def mapping(self, v: Any, field: str) -> Mapping[str, Any]:
        if not isinstance(v, Mapping):
            self.fail(f"{field} must be a mapping, got {_show(v)}")
        if not all(isinstance(k, str) for k in v):
            self.fail(f"{field} has a key that is not a string")
        return v

    def whole(self, v: Any, field: str, lo: int, hi: int) -> int:
        if not _is_int(v) or not lo <= v <= hi:
            self.fail(f"{field} must be a whole number in {lo}..{hi}, got {_show(v)}")
        return int(v)

    def plain(self, v: Any, field: str) -> dict[str, Any]:
        """An optional (None or absent = empty) str-keyed mapping of plain data."""
        if v is None:
            return {}
        m = self.mapping(v, field)
        problem = plain_data_problem(m)
        if problem:
            self.fail(f"{field} {problem}")
        return dict(m)

    def tensor(self, v: Any, field: str, shape: tuple[int, ...], float32: bool) -> torch.Tensor:
        """A dense CPU-loadable tensor of exactly ``shape``: float32, or a signed/unsigned integer dtype."""
        if not isinstance(v, torch.Tensor):
            self.fail(f"{field} must be a tensor, got {_show(v)}")
        if v.layout != torch.strided or v.is_meta or v.is_quantized:
            self.fail(f"{field} must be a dense tensor, got a {v.layout} one")
        if float32 and v.dtype != torch.float32:
            self.fail(f"{field} must be a float32 tensor, got {_show(v)}")
        if not float32 and (v.dtype.is_floating_point or v.dtype.is_complex or v.dtype == torch.bool):
            self.fail(f"{field} must be an integer tensor, got {_show(v)}")
        if tuple(v.shape) != tuple(shape):
            self.fail(f"{field} has shape {list(v.shape)}, its architecture needs {list(shape)}")
        return v


# ----------------------------------------------------------------------------- the schema


def validate_checkpoint(ckpt: Any, source: str = "checkpoint") -> Graph:
    """Check a whole checkpoint dict against the one schema; return its graph.

    Structure, types and bounds first (the graph's sizes are bounded arithmetically, so nothing
    is allocated for an absurd one), then the content checksum where there is one, then the
    values (finite weights, positive thresholds, leaks in [0, 1], ``weight == int * scale``).
    A version-1 dict is checked as written and converted in place (:func:`upgrade_v1`). Every
    failure is a one-line :class:`CheckpointError` naming the field.
    """
    s = _Schema(source)
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("format"), str) or ckpt["format"] != FORMAT_NAME:
        s.fail("is a PyTorch file but not an snnsim model checkpoint", "pass a file written by `snnsim train` / `snnsim.save_model`")
    version = ckpt.get("format_version")
    if not _is_int(version) or version < 1:
        s.fail(f"has no valid format_version (got {_show(version)})")
    if version > FORMAT_VERSION:
        s.fail(f"is checkpoint format v{version}, newer than this snnsim supports (v{FORMAT_VERSION})", "upgrade snnsim")
    if not all(isinstance(k, str) for k in ckpt):
        s.fail("has an entry name that is not a string")
    unknown = sorted((set(ckpt) - set(_TOP_KEYS)) | ({"graph"} & set(ckpt) if version == 1 else set()))
    if unknown:
        s.fail(f"has unknown entries {unknown[:5]}", "was it written by a newer snnsim?")
    for key in _REQUIRED_KEYS[version]:
        if key not in ckpt:
            s.fail(f"is missing the {key!r} entry")

    # -- architecture: types and bounds; parameter and value counts are arithmetic
    spec = None
    try:
        if version == 1 or ckpt.get("arch") is not None:
            spec = ArchSpec.from_dict(ckpt["arch"])
        if version == 1:
            from snnsim.graph.builders import vgg_graph

            assert spec is not None
            graph = vgg_graph(spec)
        else:
            graph = Graph.from_dict(ckpt["graph"], "graph")
            graph.check_size()
    except SnnsimError as exc:  # its message names the field; add the fix where it has none
        raise CheckpointError(f"{source}: {exc}", None if ";" in str(exc) else _FIX) from None
    if spec is not None and version == 2:
        from snnsim.graph.builders import spec_builds

        if not spec_builds(spec, graph):
            s.fail(f"graph {graph.name!r} is not the graph of its arch entry {spec.name!r}")

    kind = ckpt["kind"]
    if not isinstance(kind, str) or kind not in ("ann", "snn"):
        s.fail(f"kind must be 'ann' or 'snn', got {_show(kind)}")
    s.whole(ckpt["timesteps"], "timesteps", 1, MAX_TIMESTEPS)

    # -- state dict: exactly the graph's tensors, of their shapes and dtypes
    state = s.mapping(ckpt["state_dict"], "state_dict")
    if version == 1:
        assert spec is not None
        layers = spec.layers()
        n_spiking = sum(1 for info in layers if info.spiking)
        shapes: dict[str, tuple[int, ...]] = {f"synapses.{i}.weight": info.weight_shape() for i, info in enumerate(layers)}
        shapes.update(thresholds=(n_spiking,), leaks=(n_spiking,))
        integer_keys: set[str] = set()
        weight_keys = [f"synapses.{i}.weight" for i in range(len(layers))]
    else:
        try:
            shapes, integer_keys = expected_state(graph, kind)
        except SnnsimError as exc:  # e.g. a node name the model reserves
            raise CheckpointError(f"{source}: {exc}", None if ";" in str(exc) else _FIX) from None
        weight_keys = _quantized_keys(shapes)
    missing = [k for k in shapes if k not in state]
    extra_keys = sorted(k for k in state if k not in shapes)
    if missing:
        s.fail(f"state_dict lacks {missing[:3]}{' ...' if len(missing) > 3 else ''} for its architecture")
    if extra_keys:
        s.fail(f"state_dict has entries its architecture does not use: {extra_keys[:3]}{' ...' if len(extra_keys) > 3 else ''}")
    for key, shape in shapes.items():
        s.tensor(state[key], f"state_dict[{key!r}]", shape, float32=key not in integer_keys)

    # -- quantization record: structure
    quant = ckpt.get("quantization")
    if quant is not None:
        quant = _check_quantization_structure(s, quant, shapes, weight_keys, version)

    # -- metadata
    dataset = s.plain(ckpt.get("dataset"), "dataset")
    _check_dataset(s, dataset, graph)
    s.plain(ckpt.get("provenance"), "provenance")
    extra = ckpt.get("extra")
    if extra is not None:
        extra = s.mapping(extra, "extra")
        if "epoch" in extra:
            s.whole(extra["epoch"], "extra.epoch", 0, 2**31 - 1)
        if "stage" in extra and not isinstance(extra["stage"], str):
            s.fail(f"extra.stage must be a string, got {_show(extra['stage'])}")

    # -- content checksum (absent in files written before snnsim stored it)
    checksum = ckpt.get("checksum")
    if checksum is not None:
        checksum = s.mapping(checksum, "checksum")
        if set(checksum) != {"algorithm", "state"}:
            s.fail(f"checksum must have exactly the fields ['algorithm', 'state'], got {sorted(checksum)[:4]}")
        if not isinstance(checksum["algorithm"], str) or checksum["algorithm"] != CHECKSUM_ALGORITHM:
            s.fail(f"checksum algorithm must be {CHECKSUM_ALGORITHM!r}, got {_show(checksum['algorithm'])}")
        digest = checksum["state"]
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            s.fail(f"checksum state must be 64 lowercase hex digits, got {_show(digest)}")
        if state_checksum({k: state[k] for k in shapes}, quant) != digest:
            s.fail("is corrupt: its weights do not match the checksum stored at save time", _CORRUPT_FIX)

    # -- values
    for key in shapes:
        if key not in integer_keys and not _all_finite(state[key]):
            s.fail(f"tensor {key!r} contains NaN or Inf", "retrain, or restore an earlier checkpoint")
    for key in shapes:
        t = state[key]
        if (key == "thresholds" or key.endswith(".threshold")) and t.numel() and not bool((t > 0).all()):
            s.fail(f"thresholds must all be > 0, got {float(t.min()):.7g} in {key!r}",
                   "retrain, or restore an earlier checkpoint")
        decay = "leaks" if key == "leaks" or key.endswith(".leak") else "synaptic decays (alpha)" if key.endswith(".alpha") else None
        if decay and t.numel() and not bool(((t >= 0) & (t <= 1)).all()):
            bad = next(float(v) for v in t.reshape(-1) if not 0 <= float(v) <= 1)
            s.fail(f"{decay} must all be in [0, 1], got {bad:.7g} in {key!r}", "retrain, or restore an earlier checkpoint")
    if quant is not None:
        _check_quantization_values(s, quant, state, weight_keys, version)
    if version == 1:
        assert spec is not None
        upgrade_v1(ckpt, spec, graph, quant)  # type: ignore[arg-type]
    elif quant is not None:
        ckpt["quantization"] = quant  # type: ignore[index]
    return graph


def expected_state(graph: Graph, kind: str) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """The state-dict entries of ``GraphNet(graph, kind)``: ``({key: shape}, integer keys)``.

    The model is built on PyTorch's meta device, so nothing is allocated; the graph's size has
    been bounded (:meth:`Graph.check_size`) before."""
    with torch.device("meta"):
        net = GraphNet(graph, kind=kind)
    state = net.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    integer = {k for k, v in state.items() if not v.dtype.is_floating_point}
    return shapes, integer


def _quantized_keys(shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """The synapse weights and biases a quantization record holds codes for (not BN values)."""
    keys = []
    for key in shapes:
        node, _, param = key.rpartition(".")
        if param == "weight" and len(shapes[key]) in (2, 4):
            keys.append(key)
            if f"{node}.bias" in shapes:
                keys.append(f"{node}.bias")
    return keys


def upgrade_v1(ckpt: dict[str, Any], spec: ArchSpec, graph: Graph, quant: Mapping[str, Any] | None) -> None:
    """Convert a validated version-1 checkpoint dict to version 2 in place: the graph, the
    renamed state (:func:`snnsim.graph.torch_net.convert_spikingnet_state`), the quantization
    record keyed by node, and a checksum of the new state."""
    layers = spec.layers()
    names = [i.name for i in layers]
    ckpt["state_dict"] = convert_spikingnet_state(ckpt["state_dict"], names, [i.spiking for i in layers])
    if quant is not None:
        quant = {"bits": quant["bits"], "scheme": quant["scheme"],
                 "scales": {n: float(quant["scales"][i]) for i, n in enumerate(names)},
                 "int_weights": {f"{n}.weight": quant["int_weights"][f"synapses.{i}.weight"] for i, n in enumerate(names)}}
    ckpt["quantization"] = quant
    ckpt["graph"] = graph.to_dict()
    ckpt["format_version"] = FORMAT_VERSION
    ckpt["provenance"] = {**dict(ckpt.get("provenance") or {}), "converted_from_format": 1}
    ckpt["checksum"] = {"algorithm": CHECKSUM_ALGORITHM, "state": state_checksum(ckpt["state_dict"], quant)}


def _check_quantization_structure(s: _Schema, quant: Any, shapes: Mapping[str, tuple[int, ...]],
                                  weight_keys: list[str], version: int) -> dict[str, Any]:
    """Types and shapes of the quantization record (see :mod:`snnsim.compression.quantize`)."""
    from snnsim.compression.quantize import BIAS_BITS, MAX_INT_BITS, MIN_BITS, SCHEME, int_dtype

    q = s.mapping(quant, "quantization")
    if set(q) != set(_QUANT_KEYS):
        s.fail(f"quantization must have exactly the fields {list(_QUANT_KEYS)}, got {sorted(q)[:6]}")
    s.whole(q["bits"], "quantization.bits", MIN_BITS, MAX_INT_BITS)
    if not isinstance(q["scheme"], str) or q["scheme"] != SCHEME:
        s.fail(f"quantization.scheme must be {SCHEME!r}, got {_show(q['scheme'])}")
    scales = q["scales"]
    nodes = [k.rpartition(".")[0] for k in weight_keys if k.endswith(".weight")]
    items: list[tuple[Any, Any]]
    if version == 1:
        if not isinstance(scales, (list, tuple)) or len(scales) != len(nodes):
            s.fail(f"quantization.scales must be a list of {len(nodes)} numbers (one per layer), got {_show(scales)}")
        items = list(enumerate(scales))
    else:
        if not isinstance(scales, Mapping) or set(scales) != set(nodes):
            s.fail(f"quantization.scales must map each of the {len(nodes)} synapse nodes to its scale, got {_show(scales)}",
                   "re-run `snnsim quantize`")
        items = [(n, scales[n]) for n in nodes]
    for where, scale in items:
        ok = _is_real(scale) and scale > 0
        if not ok or float(torch.tensor(float(scale), dtype=torch.float32)) != float(scale):
            s.fail(f"quantization.scales[{where!r}] must be a positive number exactly representable in float32, "
                   f"got {_show(scale)}", "re-run `snnsim quantize`")
    ints = s.mapping(q["int_weights"], "quantization.int_weights")
    if set(ints) != set(weight_keys):
        s.fail(f"quantization.int_weights must hold exactly {weight_keys[0]} .. {weight_keys[-1]}, got {len(ints)} entries",
               "re-run `snnsim quantize`")
    for key in weight_keys:
        s.tensor(ints[key], f"quantization.int_weights[{key!r}]", shapes[key], float32=False)
        if key.endswith(".bias") and ints[key].dtype != int_dtype(BIAS_BITS):
            s.fail(f"quantization.int_weights[{key!r}] must be {int_dtype(BIAS_BITS)}", "re-run `snnsim quantize`")
    out_scales: Any = [float(x) for x in scales] if version == 1 else {n: float(scales[n]) for n in nodes}
    return {"bits": q["bits"], "scheme": q["scheme"], "scales": out_scales, "int_weights": {k: ints[k] for k in weight_keys}}


def _check_quantization_values(s: _Schema, quant: Mapping[str, Any], state: Mapping[str, torch.Tensor],
                               weight_keys: list[str], version: int) -> None:
    """Integer codes in range (k bits for weights, BIAS_BITS for biases), and every float value
    exactly ``int * scale`` in float32."""
    from snnsim.compression.quantize import BIAS_BITS, dequantize, qmax

    for i, key in enumerate(weight_keys):
        node = key.rpartition(".")[0]
        scale = quant["scales"][i] if version == 1 else quant["scales"][node]
        bits = BIAS_BITS if key.endswith(".bias") else quant["bits"]
        q = qmax(bits)
        codes = quant["int_weights"][key]
        if codes.numel() and (int(codes.max()) > q or int(codes.min()) < -q):
            s.fail(f"quantization.int_weights[{key!r}] exceed the {bits}-bit range ±{q}", "re-run `snnsim quantize`")
        if not torch.equal(dequantize(codes, scale), state[key]):
            where = f"scales[{i}]" if version == 1 else f"scales[{node!r}]"
            s.fail(f"{key} differs from quantization.int_weights * {where}", "re-run `snnsim quantize`")


def _check_dataset(s: _Schema, ds: Mapping[str, Any], graph: Graph) -> None:
    """The fields snnsim reads back (name, mean/std, input shape, classes) agree with the model."""
    if "name" in ds and not isinstance(ds["name"], str):
        s.fail(f"dataset.name must be a string, got {_show(ds['name'])}")
    input_shape = list(graph.info[graph.input].out_shape)
    out_shape = graph.info[graph.output].in_shapes[0]
    channels = input_shape[0]
    for key in ("mean", "std"):
        if key not in ds or ds[key] is None:
            continue
        v = ds[key]
        if (not isinstance(v, (list, tuple)) or len(v) not in (1, channels)
                or not all(_is_real(x) for x in v)):
            s.fail(f"dataset.{key} must be a list of 1 or {channels} finite numbers, got {_show(v)}")
        if key == "std" and not all(x > 0 for x in v):
            s.fail(f"dataset.std must be > 0, got {_show(v)}")
    if isinstance(ds.get("mean"), (list, tuple)) and isinstance(ds.get("std"), (list, tuple)) and len(ds["mean"]) != len(ds["std"]):
        s.fail(f"dataset.mean has {len(ds['mean'])} entries but dataset.std has {len(ds['std'])}")
    shape = ds.get("input_shape")
    if shape is not None and (not isinstance(shape, (list, tuple)) or list(shape) != input_shape):
        s.fail(f"dataset.input_shape {_show(shape)} differs from the architecture's {input_shape}")
    if ds.get("num_classes") is not None and (not _is_int(ds["num_classes"]) or (ds["num_classes"],) != tuple(out_shape)):
        s.fail(f"dataset.num_classes {_show(ds['num_classes'])} differs from the architecture's {out_shape[0]}")


# ----------------------------------------------------------------------------- reading


def _check_file(p: Path, source: str) -> None:
    """The container: a zip as torch.save writes it, every member's CRC-32 intact."""
    try:
        is_zip = zipfile.is_zipfile(p)
        with open(p, "rb") as fh:
            zip_magic = fh.read(4) == b"PK\x03\x04"  # torch.save's zip container; truncation loses the end
    except OSError as exc:
        raise CheckpointError(f"model file {source} cannot be read ({exc.strerror or type(exc).__name__})",
                              "check its permissions") from None
    if not is_zip:
        if zip_magic:
            raise CheckpointError(f"model file {source} is truncated or corrupt (its zip directory is missing)",
                                  "re-save or re-train the model")
        raise CheckpointError(f"model file {source} is not a PyTorch checkpoint (not the zip container torch.save writes)",
                              "pass a file written by snnsim")
    member = ""
    try:
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
            if not any(i.filename == "data.pkl" or i.filename.endswith("/data.pkl") for i in infos):
                raise CheckpointError(f"model file {source} is a zip archive but not a PyTorch checkpoint (no data.pkl)",
                                      "pass a file written by snnsim")
            for info in infos:
                member = info.filename.split("/", 1)[-1]
                if info.compress_type != zipfile.ZIP_STORED:  # torch.save never compresses
                    raise CheckpointError(f"model file {source} was not written by torch.save (zip member {member!r} is compressed)",
                                          "pass a file written by snnsim")
                with zf.open(info) as fh:  # reading to the end checks the CRC-32
                    while fh.read(_ZIP_CHUNK):
                        pass
    except CheckpointError:
        raise
    except Exception as exc:  # BadZipFile (bad CRC-32, bad header), EOFError, OSError, ValueError, ...
        if not member:
            where = f"its zip directory is damaged: {type(exc).__name__}"
        elif "CRC" in str(exc):
            where = f"zip member {member!r} fails its CRC-32 check"
        else:
            where = f"zip member {member!r} is damaged: {type(exc).__name__}"
        raise CheckpointError(f"model file {source} is truncated or corrupt ({where})", "re-save or re-train the model") from None


def _unpickle(p: Path, source: str) -> Any:
    """``torch.load`` with ``weights_only=True``: tensors and plain data only, never code."""
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        asked = re.search(r"GLOBAL ([\w.]+)", str(exc))  # the weights-only unpickler names what it refused
        if asked:
            raise CheckpointError(f"model file {source} asks to unpickle {asked.group(1)} (snnsim loads only tensors and "
                                  "plain data: anything else could run code)", "pass a file written by snnsim") from None
        raise CheckpointError(f"model file {source} holds a corrupt or unsupported pickle", "re-save or re-train the model") from None
    except Exception as exc:  # RuntimeError from the zip reader, EOFError, ValueError, ...
        if "PytorchStreamReader" in str(exc):  # PyTorch's own zip reader refuses the container
            raise CheckpointError(f"model file {source} is truncated or corrupt (its zip structure is damaged)",
                                  "re-save or re-train the model") from None
        raise CheckpointError(f"model file {source} cannot be read as a PyTorch checkpoint "
                              f"({type(exc).__name__}: {quote(exc, 100)})",
                              "re-save or re-train the model") from None


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Graph]:
    """Read, CRC-check, unpickle and validate a checkpoint file: ``(checkpoint dict, its graph)``;
    a version-1 dict comes back converted to version 2."""
    p = existing_file(path, "model file", "check the path, or train one with `snnsim train`",
                      dir_fix="pass the .pt file inside it", error=CheckpointError)
    source = repr(str(p))
    if p.stat().st_size == 0:
        raise CheckpointError(f"model file {source} is empty", "re-save or re-train the model")
    _check_file(p, source)
    ckpt = _unpickle(p, source)
    graph = validate_checkpoint(ckpt, source)
    return ckpt, graph


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a checkpoint dict (version 1 converted to 2); every failure is a
    one-line :class:`CheckpointError`."""
    return _read(path)[0]


def _build(ckpt: Mapping[str, Any], graph: Graph, source: str) -> Model:
    """The model of a checkpoint that :func:`validate_checkpoint` accepted (and converted)."""
    model = build_model(graph, kind=ckpt["kind"], timesteps=ckpt["timesteps"])
    model.spec = ArchSpec.from_dict(ckpt["arch"]) if ckpt.get("arch") is not None else None
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:  # not reachable after validation; kept so it cannot be a traceback
        raise CheckpointError(f"{source}: weights do not match its architecture ({quote(exc, 100)})",
                              _FIX) from None
    quant = ckpt.get("quantization")
    if quant is not None:
        quant = {"bits": quant["bits"], "scheme": quant["scheme"], "scales": dict(quant["scales"]),
                 "int_weights": dict(quant["int_weights"])}
    model.quantization = quant
    model.dataset_info = dict(ckpt.get("dataset") or {})
    model.provenance = dict(ckpt.get("provenance") or {})
    model.eval()
    return model


def model_from_checkpoint(ckpt: dict[str, Any], source: str = "checkpoint") -> Model:
    """Validate a checkpoint dict (:func:`validate_checkpoint`; version 1 is converted in place)
    and rebuild its model."""
    return _build(ckpt, validate_checkpoint(ckpt, source), source)


def load_model(path: str | os.PathLike[str]) -> Model:
    """Load an snnsim checkpoint (version 1 or 2) and rebuild the model (eval mode, CPU)."""
    ckpt, graph = _read(path)
    return _build(ckpt, graph, repr(str(path)))
