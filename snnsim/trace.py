"""Spike traces: record a model's population spikes once, replay them many times.

A trace is a directory (written atomically, see :mod:`snnsim.io`), keyed by neuron population:
each LIF / IF population's spikes are stored once, whichever layers read them (a ResNet block's
input population drives its first conv and its shortcut)::

    meta.json         format v3 (below): model fingerprint, T, layers, populations, data set,
                      sample ids, labels, predictions, the engine that computed the spikes
                      ('torch' or 'event', see :mod:`snnsim.sim.engine`), and the size and
                      checksum of every data file and of meta.json itself
    input.npy         what the first synapses read: float32 [N, *input shape], stored ONCE per
                      sample when it is fed at every timestep (direct encoding), or
                      [N, T, *input shape] when it changes per timestep: int8 signed spikes
                      (a Poisson-encoded model's, or a user's ternary frames) or float32
                      (a user's graded frames)
    population_XX.npy uint8 [N, T, ceil(S/8)] for every spiking population XX (its index in
                      the schedule): its spikes at every timestep, the flattened map (C, H, W
                      order, S neurons) bit-packed with ``np.packbits`` (big-endian bit order)
    logits.npy        float32 [N, classes]: the model's output (mean over T of the output
                      integrator's accumulated current)
    spikes.npy        int64 [N, P]: spikes emitted by every spiking population, summed over T

A layer reads the events of its ``source`` population (:meth:`Trace.events`); the simulator's
layers and populations are those of :func:`snnsim.graph.layers.simulation_view`.

**meta.json (format_version 3)** is one JSON object, validated on load against one schema
(:class:`TraceMeta`) plus the cross-field rules of :func:`check_meta`::

    format "snnsim-trace", format_version 3, created, snnsim_version
    model_fingerprint   64 hex digits (:func:`model_fingerprint`)
    model               {graph: Graph dict, arch: ArchSpec dict | null, kind: "snn", timesteps,
                        quantization_bits, provenance}
    timesteps           1..MAX_TIMESTEPS;  samples: 1..MAX_SAMPLES (N)
    encoding "direct"|"poisson" (the model's Input node), engine "torch"|"event", bit_order "big"
    synaptic_sums       "float64" (the torch engine: every synaptic current rounded to float32
                        from its float64 sum, docs/counting.md "Float arithmetic") | "float32"
                        (the event engine, a user's own module, and traces written before the
                        field existed, which load with this default)
    input               {file, shape [N, *input shape] or [N, T, *input shape], dtype "float32"|"int8",
                        repeated_every_timestep (false: one input per step), absmax, spikes (every
                        value -1, 0 or 1: the first layer accumulates), encoder (null, or {kind
                        "poisson", seed}: the draws, :func:`snnsim.graph.encoding.poisson_steps`)}
    layers              one entry per synapse layer, exactly as derived from model.graph
                        (shapes, pooling, source and target population)
    populations         one entry per population, exactly as derived from model.graph (shape,
                        layers; for a spiking one file, packed_bytes, shape [N, T, packed_bytes])
    dataset             {name, split, mean, std, meta (the data set's own identity, e.g. seed)}
    sample_ids          N ints or strings;  predictions: N ints in 0..classes-1
    labels              null or N ints in 0..classes-1
    bytes_per_sample    analog input + packed events of one sample
    files               {file name: {bytes, crc32}} for input.npy, every population_XX.npy,
                        logits.npy and spikes.npy (exactly these)
    meta_sha256         SHA-256 of the canonical JSON (sorted keys, no spaces) of all other keys

Recording preallocates every file's full size (``os.posix_fallocate``) before writing through
a memory map, so a full disk is a one-line :class:`~snnsim.errors.TraceError` instead of a
SIGBUS, and writes in chunks so N samples are never held in RAM at once. Loading validates
meta.json (nesting depth, types, ranges, lengths, consistency with the architecture, its own
checksum), every file's size and ``.npy`` header, and (``verify=True``) every file's CRC-32
in one chunked pass; arrays then open lazily (``mmap_mode='r'``) and
:meth:`Trace.iter_chunks` walks a trace larger than RAM in sample chunks. Every failure is a
one-line TraceError. Traces of formats v1 (no checksums) and v2 (keyed by layer, before the
network graph) are refused with "re-record it" (traces are a cache: :mod:`snnsim.trace_cache`
re-records them). :meth:`Trace.head` is a view
of the first n samples.

**Checksum choice.** Measured on this project's (shared, 2-core) machine, one chunked pass
over a 200 MB file from the page cache: zlib.crc32 1.5-3.4 GB/s, sha256 (SHA-NI) 0.9-1.5 GB/s,
blake2b 0.6-0.7 GB/s (a bare read 1.7-2.5 GB/s); over a VGG16 x 200 trace (36 MiB) crc32 took
16 ms, sha256 32 ms. The data files use CRC-32 (with the byte size): at page-cache read speed,
verification stays one cheap pass, and it detects every burst error of up to 32 bits and any
other corruption (flipped bytes, truncation, a file swapped in from another trace) with
probability 1 - 2^-32. Files are checksummed in parallel threads when a trace holds more than
8 MiB (zlib releases the GIL). It is an integrity check, not a signature: it guards against
accidents, not against someone who rewrites the checksums. meta.json is small, so its own
checksum is SHA-256. Cost on that VGG16 trace: load_trace 5 -> 19-25 ms, load + replay
0.53 -> 0.55 s, a whole ``estimate_many`` 1.32 vs 1.31 s (within noise); recording unchanged.

The model is identified by :func:`model_fingerprint` (graph, weights, thresholds, leaks and
quantization); :func:`check_trace_matches` refuses to replay a trace through another model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import reprlib
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from snnsim.arch import ArchSpec, LayerInfo, PopulationInfo
from snnsim.errors import SnnsimError, TraceError, quote
from snnsim.graph.graph import Graph
from snnsim.graph.layers import simulation_view
from snnsim.limits import (
    MAX_DOCUMENT_DEPTH,
    MAX_INPUT_CHANNELS,
    MAX_INPUT_SIDE,
    MAX_SAMPLES,
    MAX_TIMESTEPS,
    MAX_WIDTH,
)
from snnsim.models import Model

TRACE_FORMAT = "snnsim-trace"
TRACE_VERSION = 3
META_FILE = "meta.json"
INPUT_FILE = "input.npy"
LOGITS_FILE = "logits.npy"
SPIKES_FILE = "spikes.npy"
CHECKSUM = "crc32"  # of every data file; meta.json's own is "meta_sha256"
_REREC = "re-record it with `snnsim trace`"
_READ_BLOCK = 1 << 20  # bytes per read of the checksum pass
_MAX_META_BYTES = 1 << 30  # meta.json of MAX_SAMPLES samples is ~0.3 GB
_CRC_THREADS = 8  # files checksummed at once
_PARALLEL_BYTES = 8 << 20  # below this a thread pool costs more than it saves


def population_file(index: int) -> str:
    """File name of population ``index``'s packed spikes."""
    return f"population_{index:02d}.npy"


def packed_bytes(population: PopulationInfo) -> int:
    """Bytes per sample per timestep of a population's packed spikes."""
    return (population.neurons + 7) // 8


def _structure(graph: Graph) -> dict[str, Any]:
    """The graph as plain data without what cannot change a spike: its name and dropout."""
    d = graph.to_dict()
    nodes = {n: {k: v for k, v in e.items() if k != "dropout"} for n, e in d["nodes"].items()}
    return {"nodes": nodes, "edges": d["edges"]}


# ---------------------------------------------------------------------------- fingerprint
def model_fingerprint(model: Model) -> str:
    """SHA-256 of everything that determines the model's spikes: the graph (node kinds, sizes,
    edges; not its name or dropout), every tensor of the state dict (weights, biases,
    thresholds, leaks) and the quantization record (bits, scales, integer weights). A model
    imported from a PyTorch module (``provenance['imported_from']['format'] == 'torch'``) has
    its spikes recorded by running that module's code, so the code's and the weights' SHA-256
    are part of it too."""
    h = hashlib.sha256()
    h.update(json.dumps(_structure(model.graph), sort_keys=True).encode())
    src = (getattr(model, "provenance", None) or {}).get("imported_from")
    if isinstance(src, dict) and src.get("format") == "torch":
        h.update(json.dumps({k: src.get(k) for k in ("format", "framework", "factory", "file_sha256", "weights_sha256")},
                            sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        arr = np.ascontiguousarray(tensor.detach().cpu().numpy())
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}".encode())
        h.update(arr.reshape(-1).view(np.uint8))  # the same bytes as tobytes(), without the copy
    q = model.quantization
    if q:
        h.update(json.dumps({"bits": q.get("bits"), "scheme": q.get("scheme"),
                             "scales": {k: float(v) for k, v in dict(q.get("scales") or {}).items()}},
                            sort_keys=True).encode())
        for name, tensor in sorted((q.get("int_weights") or {}).items()):
            arr = np.ascontiguousarray(torch.as_tensor(tensor).cpu().numpy().astype(np.int64))
            h.update(f"{name}|{arr.shape}".encode())
            h.update(arr.reshape(-1).view(np.uint8))
    return h.hexdigest()


def short_fp(fp: str) -> str:
    """The first 12 hex digits of a fingerprint, for messages."""
    return fp[:12]


# ---------------------------------------------------------------------------- meta schema
class _Strict(BaseModel):
    """Base of every meta.json section: exact JSON types (no bool for int, no str for number),
    no NaN/Inf, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


Text = Annotated[str, Field(max_length=4096)]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Hex8 = Annotated[str, Field(pattern=r"^[0-9a-f]{8}$")]
Size = Annotated[int, Field(ge=0, le=1 << 62)]
Shape = Annotated[list[Size], Field(min_length=1, max_length=8)]
Steps = Annotated[int, Field(ge=1, le=MAX_TIMESTEPS)]
Count = Annotated[int, Field(ge=1, le=MAX_SAMPLES)]
ClassId = Annotated[int, Field(ge=0, le=MAX_WIDTH)]


class ModelMeta(_Strict):
    """``model``: the recorded network (its checkpoint fields that matter for replay)."""

    graph: dict[str, Any]  # Graph.to_dict(): validated by Graph.from_dict, the one graph schema
    arch: dict[str, Any] | None  # the VGG ArchSpec it was built from (ArchSpec.from_dict)
    kind: Literal["snn"]
    timesteps: Steps
    quantization_bits: Annotated[int, Field(ge=1, le=64)] | None
    provenance: dict[str, Any]


class EncoderMeta(_Strict):
    """``input.encoder``: how a Poisson model's input spikes were drawn."""

    kind: Literal["poisson"]
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)]


class InputMeta(_Strict):
    """``input``: the input file (one input per sample, or one per sample and timestep)."""

    file: Literal["input.npy"]
    shape: Shape
    dtype: Literal["float32", "int8"]
    repeated_every_timestep: bool
    absmax: Annotated[float, Field(ge=0)]
    spikes: bool = False
    encoder: EncoderMeta | None = None


class LayerMeta(_Strict):
    """One entry of ``layers``; :func:`check_meta` requires it to equal what ``model.graph`` derives."""

    index: Annotated[int, Field(ge=0, le=1 << 20)]
    name: Text
    kind: Literal["conv", "linear", "identity"]
    in_shape: Shape
    out_shape: Shape
    source_shape: Shape
    source_size: Size
    kernel: Annotated[int, Field(ge=1, le=MAX_INPUT_SIDE)]
    stride: Annotated[int, Field(ge=1, le=MAX_INPUT_SIDE)]
    padding: Annotated[int, Field(ge=0, le=MAX_INPUT_SIDE)]
    pool: Literal["avg", "max", "sum"] | None
    pool_kernel: Annotated[int, Field(ge=1, le=MAX_INPUT_SIDE)]
    spiking: bool
    analog_input: bool
    source: Text
    target: Text
    bias: bool
    parts: Annotated[list[Text], Field(max_length=4096)] = []
    norm: Annotated[str, Field(max_length=256)] = ""


class PopulationMeta(_Strict):
    """One entry of ``populations``; :func:`check_meta` requires it to equal what ``model.graph`` derives."""

    index: Annotated[int, Field(ge=0, le=1 << 20)]
    name: Text
    kind: Literal["LIF", "IF", "CubaLIF", "Integrator"]
    shape: Shape
    layers: Annotated[list[Annotated[int, Field(ge=0, le=1 << 20)]], Field(max_length=4096)]
    file: Text | None
    packed_bytes: Size | None
    array_shape: Shape | None  # [N, T, packed_bytes] for a spiking population


class DatasetMeta(_Strict):
    """``dataset``: what the samples were drawn from (all optional: a tensor input has none)."""

    name: Text | None = None
    split: Text | None = None
    mean: Annotated[list[float], Field(max_length=MAX_INPUT_CHANNELS)] | None = None
    std: Annotated[list[float], Field(max_length=MAX_INPUT_CHANNELS)] | None = None
    meta: dict[str, Any] | None = None


class FileMeta(_Strict):
    """One entry of ``files``: a data file's size and CRC-32 (8 hex digits)."""

    bytes: Size
    crc32: Hex8


class TraceMeta(_Strict):
    """The one schema of meta.json (format v3); cross-field rules are in :func:`check_meta`."""

    format: Literal["snnsim-trace"]
    format_version: Literal[3]
    created: Text
    snnsim_version: Text
    model_fingerprint: Hex64
    model: ModelMeta
    timesteps: Steps
    samples: Count
    encoding: Literal["direct", "poisson"]
    engine: Literal["torch", "event"]
    synaptic_sums: Literal["float64", "float32"] = "float32"
    input: InputMeta
    layers: Annotated[list[LayerMeta], Field(min_length=1, max_length=4096)]
    populations: Annotated[list[PopulationMeta], Field(min_length=1, max_length=4096)]
    dataset: DatasetMeta
    sample_ids: Annotated[list[int | Text], Field(max_length=MAX_SAMPLES)]
    labels: Annotated[list[ClassId], Field(max_length=MAX_SAMPLES)] | None
    predictions: Annotated[list[ClassId], Field(max_length=MAX_SAMPLES)]
    files: Annotated[dict[str, FileMeta], Field(max_length=4100)]
    bytes_per_sample: Annotated[int, Field(ge=1)]
    bit_order: Literal["big"]
    meta_sha256: Hex64


_UNION_TAGS = {"int", "str", "float", "bool", "none", "dict", "list"}


def _loc(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as ``a.b[3].c``, without the union-branch tags pydantic adds."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS or any(ch in str(part) for ch in "[-('\" "):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def short_value(value: Any) -> str:
    """A value for a message: a short repr, never a wall of text."""
    r = reprlib.Repr()
    r.maxstring, r.maxother, r.maxlist, r.maxdict, r.maxlevel = 40, 40, 4, 4, 2
    return r.repr(value)


def _schema_problem(exc: ValidationError) -> str:
    """The first schema violation as 'field X: what, got Y' (one line)."""
    errs = exc.errors(include_url=False)
    e = errs[0]
    where, typ = _loc(tuple(e.get("loc", ()))), e.get("type", "")
    if typ == "missing":
        return f"lacks the field {where}"
    if typ == "extra_forbidden":
        return f"has an unknown field {where}"
    msg = str(e.get("msg", "is invalid"))
    msg = msg[6:] if msg.startswith("Input ") else msg
    msg = re.sub(r" or instance of \w+", "", msg)
    return f"field {where}: {msg}, got {short_value(e.get('input'))}"


#: ``layers`` fields added after format v3 first shipped, with the value an earlier trace means.
_LAYER_LATER_FIELDS: dict[str, Any] = {"parts": [], "norm": ""}


def layer_meta(info: LayerInfo) -> dict[str, Any]:
    """The ``layers`` entry of one layer (derived from the graph alone)."""
    return {
        "index": info.index, "name": info.name, "kind": info.kind,
        "in_shape": list(info.in_shape), "out_shape": list(info.out_shape),
        "source_shape": list(info.source_shape), "source_size": info.source_size,
        "kernel": info.kernel, "stride": info.stride, "padding": info.padding,
        "pool": info.pool, "pool_kernel": info.pool_kernel, "spiking": info.spiking,
        "analog_input": info.analog_input, "source": info.source, "target": info.target, "bias": info.bias,
        "parts": list(info.parts), "norm": info.norm,
    }


def population_meta(pop: PopulationInfo, steps: int, samples: int) -> dict[str, Any]:
    """The ``populations`` entry of one population (derived from the graph alone)."""
    spiking = pop.spiking
    return {"index": pop.index, "name": pop.name, "kind": pop.kind, "shape": list(pop.shape),
            "layers": list(pop.layers), "file": population_file(pop.index) if spiking else None,
            "packed_bytes": packed_bytes(pop) if spiking else None,
            "array_shape": [samples, steps, packed_bytes(pop)] if spiking else None}


def input_layout(input_shape: tuple[int, ...], samples: int, steps: int, per_step: bool = False,
                 spikes: bool = False) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of ``input.npy``: [N, *input shape] float32 for an input fed at every
    timestep, [N, T, *input shape] for one input per timestep (int8 when they are spikes)."""
    if not per_step:
        return (samples, *input_shape), np.dtype(np.float32)
    return (samples, steps, *input_shape), np.dtype(np.int8 if spikes else np.float32)


def data_files(input_shape: tuple[int, ...], pops: tuple[PopulationInfo, ...], classes: int, samples: int,
               steps: int, per_step: bool = False, spikes: bool = False) -> list[tuple[str, tuple[int, ...], np.dtype]]:
    """Every data file of a trace: (name, array shape, dtype), in a fixed order."""
    spiking = [p for p in pops if p.spiking]
    out: list[tuple[str, tuple[int, ...], np.dtype]] = [(INPUT_FILE, *input_layout(input_shape, samples, steps,
                                                                                   per_step, spikes))]
    out += [(population_file(p.index), (samples, steps, packed_bytes(p)), np.dtype(np.uint8)) for p in spiking]
    out.append((LOGITS_FILE, (samples, classes), np.dtype(np.float32)))
    out.append((SPIKES_FILE, (samples, len(spiking)), np.dtype(np.int64)))
    return out


def per_sample_bytes(input_shape: tuple[int, ...], pops: tuple[PopulationInfo, ...], steps: int,
                     per_step: bool = False, spikes: bool = False) -> int:
    """Bytes of one sample: its input (see :func:`input_layout`) and every population's packed spikes."""
    shape, dtype = input_layout(input_shape, 1, steps, per_step, spikes)
    return math.prod(shape) * dtype.itemsize + steps * sum(packed_bytes(p) for p in pops if p.spiking)


def input_kind(meta: dict[str, Any]) -> tuple[bool, bool]:
    """``(per_step, spikes)`` of a trace's ``input`` entry: one input per timestep, and whether
    its values are all -1, 0 or 1."""
    entry = meta["input"]
    return (not bool(entry["repeated_every_timestep"]), bool(entry.get("spikes", False)))


def classes_of(graph: Graph) -> int:
    shape = graph.info[graph.output].in_shapes[0]
    return int(math.prod(shape))


def _first_out_of_range(values: list[int], limit: int) -> int | None:
    """Index of the first value >= ``limit`` (values are already known to be ints >= 0)."""
    if not values or max(values) < limit:
        return None
    return next(i for i, v in enumerate(values) if v >= limit)


def check_meta(meta: Any, where: str) -> tuple[Graph, tuple[LayerInfo, ...], tuple[PopulationInfo, ...]]:
    """Validate a parsed meta.json: the :class:`TraceMeta` schema, then every cross-field rule
    (graph buildable, layers / populations / shapes as derived from it, list lengths ==
    samples, class ids in range, the file table). Returns the graph, its layers and its
    populations; raises a one-line TraceError naming the field. (Checksums are checked by
    :func:`load_trace`.)"""
    pre = f"trace {where!r}: {META_FILE}"
    try:
        TraceMeta.model_validate(meta)
    except ValidationError as exc:
        raise TraceError(f"{pre} {_schema_problem(exc)}", _REREC) from None
    try:
        graph = Graph.from_dict(meta["model"]["graph"], "graph")
        graph.check_size()
        layers, pops = simulation_view(graph)
    except (SnnsimError, TypeError, ValueError, KeyError) as exc:
        problem = quote(exc, 200).split("; ")[0]
        raise TraceError(f"{pre} field model.graph: {problem}", _REREC) from None
    if meta["model"]["arch"] is not None:  # the VGG spec must build exactly this graph
        from snnsim.graph.builders import spec_builds

        try:
            spec = ArchSpec.from_dict(meta["model"]["arch"])
        except (SnnsimError, TypeError, ValueError, KeyError) as exc:
            raise TraceError(f"{pre} field model.arch: {quote(exc, 200).split('; ')[0]}", _REREC) from None
        if not spec_builds(spec, graph):
            raise TraceError(f"{pre} field model.arch: architecture {spec.name!r} does not build model.graph "
                             f"({graph.name!r})", _REREC)
    n, steps = meta["samples"], meta["timesteps"]
    input_shape = graph.info[graph.input].out_shape
    per_step, spikes = input_kind(meta)
    want_shape, want_dtype = input_layout(input_shape, n, steps, per_step, spikes)
    if meta["input"]["shape"] != list(want_shape):
        what = "[samples, T, *input shape]" if per_step else "[samples, *input shape]"
        raise TraceError(f"{pre} field input.shape: {short_value(meta['input']['shape'])} is not {what} "
                         f"= {list(want_shape)}", _REREC)
    if meta["input"]["dtype"] != want_dtype.name:
        raise TraceError(f"{pre} field input.dtype: {meta['input']['dtype']!r}, expected {want_dtype.name!r} for "
                         f"{'spikes' if spikes else 'values'}", _REREC)
    encoding = getattr(graph.nodes[graph.input], "encoding", "direct")
    if meta["encoding"] != encoding:
        raise TraceError(f"{pre} field encoding: {meta['encoding']!r} is not model.graph's {encoding!r}", _REREC)
    if spikes and not per_step:
        raise TraceError(f"{pre} field input.spikes: true for an input fed at every timestep", _REREC)
    poisson = encoding == "poisson"
    if poisson != (meta["input"].get("encoder") is not None) or (poisson and not (per_step and spikes)):
        raise TraceError(f"{pre} field input: a {'Poisson' if poisson else 'direct'}-encoded model's input "
                         f"{'must' if poisson else 'cannot'} be per-timestep spikes drawn by an encoder", _REREC)
    for key, derived, make in (("layers", layers, lambda x: layer_meta(x)),
                               ("populations", pops, lambda x: population_meta(x, steps, n))):
        if len(meta[key]) != len(derived):
            raise TraceError(f"{pre} field {key}: {len(meta[key])} entries, model.graph has {len(derived)}", _REREC)
        for k, (info, entry) in enumerate(zip(derived, meta[key], strict=True)):
            want = make(info)
            if key == "layers":  # fields added within format v3 (SEW parts, unfolded BN) default as in LayerMeta
                entry = {**_LAYER_LATER_FIELDS, **entry}
            for field_name in sorted(set(want) | set(entry)):
                if entry.get(field_name) != want.get(field_name):
                    raise TraceError(f"{pre} field {key}[{k}].{field_name}: {short_value(entry.get(field_name))} does not "
                                     f"match model.graph ({short_value(want.get(field_name))})", _REREC)
    for key in ("sample_ids", "predictions", "labels"):
        values = meta[key]
        if values is not None and len(values) != n:
            raise TraceError(f"{pre} field {key}: {len(values)} entries for {n} samples", _REREC)
    classes = classes_of(graph)
    for key in ("predictions", "labels"):
        bad = None if meta[key] is None else _first_out_of_range(meta[key], classes)
        if bad is not None:
            raise TraceError(f"{pre} field {key}[{bad}]: {meta[key][bad]} is not one of the model's {classes} classes", _REREC)
    expected = data_files(input_shape, pops, classes, n, steps, per_step, spikes)
    names = [name for name, _, _ in expected]
    missing = [name for name in names if name not in meta["files"]]
    extra = sorted(set(meta["files"]) - set(names))
    if missing or extra:
        what = f"lacks the field files.{missing[0]}" if missing else f"has an unknown field files.{short_value(extra[0])}"
        raise TraceError(f"{pre} {what} (one entry per data file)", _REREC)
    per = per_sample_bytes(input_shape, pops, steps, per_step, spikes)
    if meta["bytes_per_sample"] != per:
        raise TraceError(f"{pre} field bytes_per_sample: {meta['bytes_per_sample']}, its populations give {per}", _REREC)
    return graph, layers, pops


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def meta_digest(meta: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of every meta key but ``meta_sha256`` itself."""
    return hashlib.sha256(canonical_json({k: v for k, v in meta.items() if k != "meta_sha256"})).hexdigest()


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def json_depth(raw: bytes) -> int:
    """Nesting depth of a JSON text, found without parsing (so a 100,000-deep document cannot
    exhaust the parser's recursion): strings are blanked, then brackets counted with numpy."""
    stripped = _JSON_STRING.sub(b'""', raw)
    deepest, level = 0, 0
    block = 16 << 20
    for a in range(0, len(stripped), block):
        b = np.frombuffer(stripped, dtype=np.uint8, count=min(block, len(stripped) - a), offset=a)
        step = ((b == 0x5B) | (b == 0x7B)).astype(np.int32) - ((b == 0x5D) | (b == 0x7D)).astype(np.int32)
        if step.size:
            run = np.cumsum(step) + level
            deepest = max(deepest, int(run.max()))
            level = int(run[-1])
    return deepest


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_meta(meta_path: Path, where: str) -> dict[str, Any]:
    """Read and parse meta.json (size, UTF-8, depth and JSON checked) and check its format and
    version; the schema is :func:`check_meta`'s."""
    pre = f"trace {where!r}: {META_FILE}"
    try:
        if not meta_path.is_file():
            raise TraceError(f"{pre} is not a file", _REREC)
        size = meta_path.stat().st_size
        if size > _MAX_META_BYTES:
            raise TraceError(f"{pre} is {size:,} bytes, more than a trace's metadata can be ({_MAX_META_BYTES:,})", _REREC)
        raw = meta_path.read_bytes()
    except OSError as exc:
        raise TraceError(f"{pre} is unreadable ({exc.strerror or type(exc).__name__})", _REREC) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{pre} is not valid UTF-8 (byte {exc.start})", _REREC) from None
    depth = json_depth(raw)
    if depth > MAX_DOCUMENT_DEPTH:
        raise TraceError(f"{pre} nests {depth} levels deep, more than {MAX_DOCUMENT_DEPTH}", _REREC)
    try:
        meta = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise TraceError(f"{pre} is not valid JSON ({quote(exc)})", _REREC) from None
    if not isinstance(meta, dict):
        raise TraceError(f"{where!r} is not an snnsim trace ({META_FILE} holds a JSON {type(meta).__name__}, not an object)",
                         "pass a directory written by `snnsim trace`")
    fmt = meta.get("format")
    if fmt != TRACE_FORMAT:
        raise TraceError(f"{where!r} is not an snnsim trace (format {short_value(fmt)})", "pass a directory written by `snnsim trace`")
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        raise TraceError(f"trace {where!r} has no valid format_version (got {short_value(version)})", _REREC)
    if version > TRACE_VERSION:
        raise TraceError(f"trace {where!r} is format v{version}, newer than this snnsim supports (v{TRACE_VERSION})", "upgrade snnsim")
    if version < TRACE_VERSION:
        why = "without checksums" if version == 1 else "keyed by layer, before the network graph"
        raise TraceError(f"trace {where!r} is format v{version}, written by an older snnsim ({why})", _REREC)
    return meta


# ---------------------------------------------------------------------------- trace object
@dataclass
class TraceChunk:
    """Samples ``[start, stop)`` of a trace: lazy (memory-mapped) array slices."""

    start: int
    stop: int
    analog: np.ndarray  # the input: float32 [n, *input shape], or [n, T, *input shape] (per_step)
    populations: dict[str, np.ndarray]  # per spiking population: uint8 [n, T, nbytes]
    events: list[Any]  # per layer, its source's spikes (a tuple of them for a sum); None for the input
    per_step: bool = False  # the input holds one value per timestep

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass
class Trace:
    """A recorded spike trace on disk (see the module docstring); arrays open lazily.

    A trace may be a *view* of the first ``samples`` of ``total_samples`` (:meth:`head`):
    its meta (samples, sample ids, labels, predictions, input shape and absmax) and every
    array cover those samples only.
    """

    path: Path
    meta: dict[str, Any]
    layers: tuple[LayerInfo, ...]
    populations: tuple[PopulationInfo, ...]
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _total: int | None = field(default=None, repr=False)  # samples on disk, for a view

    # -------------------------------------------------------------- metadata
    @property
    def samples(self) -> int:
        return int(self.meta["samples"])

    @property
    def total_samples(self) -> int:
        """Samples in the files on disk (more than :attr:`samples` for a :meth:`head` view)."""
        return self.samples if self._total is None else self._total

    @property
    def timesteps(self) -> int:
        return int(self.meta["timesteps"])

    @property
    def fingerprint(self) -> str:
        return str(self.meta["model_fingerprint"])

    @property
    def labels(self) -> np.ndarray | None:
        lab = self.meta.get("labels")
        return None if lab is None else np.asarray(lab, dtype=np.int64)

    @property
    def predictions(self) -> np.ndarray:
        return np.asarray(self.meta["predictions"], dtype=np.int64)

    @property
    def sample_ids(self) -> list[Any]:
        return list(self.meta["sample_ids"])

    @property
    def dataset(self) -> dict[str, Any]:
        return dict(self.meta.get("dataset") or {})

    @property
    def spec(self) -> ArchSpec | None:
        """The VGG spec of the recorded model, or None for a model built from a graph."""
        arch = self.meta["model"]["arch"]
        return None if arch is None else ArchSpec.from_dict(arch)

    @property
    def graph(self) -> Graph:
        return Graph.from_dict(self.meta["model"]["graph"], "graph")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.meta["input"]["shape"][1:])

    def bytes_per_sample(self) -> int:
        """Disk bytes of one sample's events (analog input + all packed populations)."""
        return int(self.meta["bytes_per_sample"])

    # -------------------------------------------------------------- arrays
    def _array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            arr = np.load(self.path / name, mmap_mode="r", allow_pickle=False)
            self._arrays[name] = arr if arr.shape[0] == self.samples else arr[:self.samples]
        return self._arrays[name]

    @property
    def encoding(self) -> str:
        """The recorded model's input encoding ('direct' or 'poisson')."""
        return str(self.meta["encoding"])

    @property
    def synaptic_sums(self) -> str:
        """'float64' when every synaptic current was rounded from its float64 sum (the torch
        engine's traces), 'float32' otherwise (see the module docstring)."""
        return str(self.meta.get("synaptic_sums", TraceMeta.model_fields["synaptic_sums"].default))

    @property
    def input_per_timestep(self) -> bool:
        """Whether the input holds one value per timestep ([N, T, *input shape])."""
        return input_kind(self.meta)[0]

    @property
    def input_spikes(self) -> bool:
        """Whether the input is spike events (-1, 0, 1 per timestep): a Poisson model's, or a
        user's ternary frames. The first layer then accumulates (ACs), it does not multiply."""
        return input_kind(self.meta)[1]

    def analog_input(self) -> np.ndarray:
        """The input the first synapses read (memory-mapped): float32 [N, *input shape], or
        [N, T, *input shape] (float32, or int8 spikes) when it changes per timestep."""
        return self._array(INPUT_FILE)

    def population(self, name: str) -> PopulationInfo:
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise TraceError(f"trace {str(self.path)!r} has no population {name!r}")

    def spikes(self, population: str) -> np.ndarray:
        """Packed spikes of a LIF / IF population, uint8 [N, T, nbytes] (memory-mapped)."""
        pop = self.population(population)
        if not pop.spiking:
            raise TraceError(f"population {population!r} of trace {str(self.path)!r} does not spike")
        return self._array(population_file(pop.index))

    def events(self, layer: int) -> np.ndarray:
        """Packed input events of ``layer``: its source population's spikes, uint8 [N, T, nbytes]
        (memory-mapped). A layer reading the analog input has none (use analog_input())."""
        info = self.layers[layer]
        if info.analog_input:
            raise ValueError(f"layer {layer} ({info.name}) reads the analog input; use analog_input()")
        if info.parts:
            raise ValueError(f"layer {layer} ({info.name}) reads the sum of populations {', '.join(info.parts)}; "
                             "use spikes() of each")
        return self.spikes(info.source)

    def logits(self) -> np.ndarray:
        """The recorded model's logits, float32 [N, classes]."""
        return self._array(LOGITS_FILE)

    def spike_counts(self) -> np.ndarray:
        """Spikes per sample per spiking population summed over T, int64 [N, P]."""
        return self._array(SPIKES_FILE)

    def unpack(self, layer: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Input events of ``layer`` for samples [start, stop) as bool [n, T, *source_shape]; for
        a layer reading a sum of populations (SEW), the spikes per site (int8)."""
        stop = self.samples if stop is None else stop
        info = self.layers[layer]
        if info.analog_input:
            x = np.asarray(self.analog_input()[start:stop]) != 0
            return x if self.input_per_timestep else np.repeat(x[:, None], self.timesteps, axis=1)
        if info.parts:
            total = np.zeros((stop - start, self.timesteps, info.source_size), dtype=np.int8)
            for part in info.parts:
                packed = np.asarray(self.spikes(part)[start:stop])
                total += np.unpackbits(packed, axis=2, count=info.source_size).astype(np.int8)
            return total.reshape(stop - start, self.timesteps, *info.source_shape)
        packed = np.asarray(self.events(layer)[start:stop])
        bits = np.unpackbits(packed, axis=2, count=info.source_size).astype(bool)
        return bits.reshape(stop - start, self.timesteps, *info.source_shape)

    def iter_chunks(self, chunk_size: int, start: int = 0, stop: int | None = None) -> Iterator[TraceChunk]:
        """Yield consecutive sample chunks (lazy memory-mapped slices)."""
        if chunk_size < 1:
            raise TraceError(f"chunk size must be >= 1, got {chunk_size}")
        stop = self.samples if stop is None else min(stop, self.samples)
        for a in range(start, stop, chunk_size):
            b = min(a + chunk_size, stop)
            pops = {p.name: self.spikes(p.name)[a:b] for p in self.populations if p.spiking}
            events = [None if info.analog_input else tuple(pops[p] for p in info.parts) if info.parts
                      else pops[info.source] for info in self.layers]
            yield TraceChunk(a, b, self.analog_input()[a:b], pops, events, self.input_per_timestep)

    def head(self, n: int) -> Trace:
        """A view of the first ``n`` samples: samples, sample ids, labels, predictions, logits,
        spike counts, events and chunks all cover those n only (memory-mapped slices, nothing
        copied), so replay and every other consumer work unchanged. A longer cached trace
        serves a shorter request this way (:mod:`snnsim.trace_cache`)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= int(n) <= self.samples:
            raise TraceError(f"cannot take the first {n!r} samples of trace {str(self.path)!r}",
                             f"ask for 1..{self.samples} samples")
        n = int(n)
        if n == self.samples:
            return self
        meta = dict(self.meta)
        meta["samples"] = n
        for key in ("sample_ids", "predictions", "labels"):
            if meta.get(key) is not None:
                meta[key] = list(meta[key][:n])
        x = self.analog_input()[:n]
        step = max(1, (64 << 20) // max(1, x[0].nbytes))
        absmax = max(float(np.abs(np.asarray(x[a:a + step])).max()) for a in range(0, n, step))
        meta["input"] = {**meta["input"], "shape": [n, *meta["input"]["shape"][1:]], "absmax": absmax}
        return Trace(self.path, meta, self.layers, self.populations, _total=self.total_samples)

    def describe(self) -> str:
        """One line: path, samples, T, model fingerprint, size per sample, recording engine."""
        count = f"{self.samples}" if self._total is None else f"first {self.samples} of {self._total}"
        return (f"trace {str(self.path)!r}: {count} samples x T={self.timesteps}, "
                f"{len(self.layers)} layers, {len(self.populations)} populations, model {short_fp(self.fingerprint)}, "
                f"{self.bytes_per_sample() / 1024:.1f} KiB/sample, {self.meta.get('engine', 'torch')} engine")


# ---------------------------------------------------------------------------- checksums
def file_crc32(path: Path) -> str:
    """CRC-32 of a file as 8 hex digits, read in 1 MiB blocks (never the whole file in RAM)."""
    buf = bytearray(_READ_BLOCK)
    view = memoryview(buf)
    crc = 0
    with open(path, "rb", buffering=0) as fh:
        while True:
            k = fh.readinto(buf)
            if not k:
                break
            crc = zlib.crc32(view[:k], crc)
    return f"{crc & 0xFFFFFFFF:08x}"


def _crc32_files(paths: list[Path], total_bytes: int) -> list[str]:
    """:func:`file_crc32` of every path, in order; files are checksummed in parallel threads
    (zlib releases the GIL) when there is enough data for it to pay off."""
    workers = min(len(paths), os.cpu_count() or 1, _CRC_THREADS)
    if workers < 2 or total_bytes < _PARALLEL_BYTES:
        return [file_crc32(path) for path in paths]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="snnsim-crc") as pool:
        return list(pool.map(file_crc32, paths))


# ---------------------------------------------------------------------------- loading
def _check_npy(path: Path, trace: str, shape: tuple[int, ...], dtype: np.dtype, size: int | None = None) -> None:
    """Validate one .npy file: present, a regular file, ``size`` bytes (when given), and a
    header for the expected shape and dtype."""
    name = path.name
    if not path.exists():
        raise TraceError(f"trace {trace!r} is missing {name}", _REREC)
    if not path.is_file():
        raise TraceError(f"trace {trace!r}: {name} is not a file", _REREC)
    try:
        have = path.stat().st_size
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            hdr_shape, fortran, hdr_dtype = reader(fh)
            offset = fh.tell()
    except OSError as exc:
        raise TraceError(f"trace {trace!r}: {name} is unreadable ({exc.strerror or type(exc).__name__})", _REREC) from None
    except Exception as exc:  # bad magic, truncated or garbled header
        raise TraceError(f"trace {trace!r}: {name} is not a valid .npy file ({type(exc).__name__})", _REREC) from None
    if tuple(hdr_shape) != tuple(shape) or np.dtype(hdr_dtype) != np.dtype(dtype) or fortran:
        raise TraceError(f"trace {trace!r}: {name} holds {np.dtype(hdr_dtype)}{list(hdr_shape)}, expected {np.dtype(dtype)}{list(shape)}",
                         _REREC)
    need = offset + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if have < need:
        raise TraceError(f"trace {trace!r}: {name} is truncated ({have} of {need} bytes)", _REREC)
    if size is not None and have != size:
        raise TraceError(f"trace {trace!r}: {name} has {have} bytes, {META_FILE} records {size}", _REREC)


def load_trace(path: str | os.PathLike[str], check_finite: bool = True, verify: bool = True) -> Trace:
    """Open a trace directory lazily, validating its metadata (:func:`check_meta`, the meta
    checksum) and every data file's size and header.

    ``verify`` checks every data file's CRC-32 against meta.json in one chunked pass (off only
    for a trace this process has just written, or one edited on purpose); ``check_finite``
    scans the analog input (in chunks) for NaN/Inf.
    """
    p = Path(path)
    t = str(p)
    if not p.exists():
        raise TraceError(f"trace {t!r} does not exist", "record one with `snnsim trace --model MODEL.pt --out DIR`")
    if not p.is_dir():
        raise TraceError(f"trace {t!r} is a file, not a trace directory", "pass the directory written by `snnsim trace`")
    meta_p = p / META_FILE
    if not meta_p.exists():
        raise TraceError(f"trace {t!r} has no {META_FILE} (incomplete or not a trace)", _REREC)
    meta = read_meta(meta_p, t)
    graph, layers, pops = check_meta(meta, t)
    if meta_digest(meta) != meta["meta_sha256"]:
        raise TraceError(f"trace {t!r}: {META_FILE} was modified or is corrupt (its checksum does not match)", _REREC)
    n, steps = int(meta["samples"]), int(meta["timesteps"])
    files = data_files(graph.info[graph.input].out_shape, pops, classes_of(graph), n, steps, *input_kind(meta))
    for name, shape, dtype in files:
        _check_npy(p / name, t, shape, dtype, meta["files"][name]["bytes"])
    if verify:
        names = [name for name, _, _ in files]
        try:
            crcs = _crc32_files([p / name for name in names], sum(meta["files"][x]["bytes"] for x in names))
        except OSError as exc:
            raise TraceError(f"trace {t!r}: {Path(exc.filename or '?').name} is unreadable "
                             f"({exc.strerror or type(exc).__name__})", _REREC) from None
        for name, crc in zip(names, crcs, strict=True):
            if crc != meta["files"][name][CHECKSUM]:
                raise TraceError(f"trace {t!r}: {name} is corrupt (its CRC-32 {crc} is not the {meta['files'][name][CHECKSUM]} "
                                 f"recorded in {META_FILE})", _REREC)
    trace = Trace(p, meta, layers, pops)
    if check_finite:
        x = trace.analog_input()
        step = max(1, (64 << 20) // max(1, x[0].nbytes))
        for a in range(0, n, step):
            block = np.asarray(x[a:a + step])
            if not np.isfinite(block).all():
                bad = a + int(np.argwhere(~np.isfinite(block.reshape(block.shape[0], -1)).all(axis=1))[0, 0])
                raise TraceError(f"trace {t!r}: analog input of sample {bad} contains NaN or Inf",
                                 "re-record the trace from finite inputs")
    return trace


def check_trace_matches(trace: Trace, model: Model) -> None:
    """Refuse a trace that was recorded from a different model (one-line TraceError)."""
    fp = model_fingerprint(model)
    if fp != trace.fingerprint:
        raise TraceError(f"trace {str(trace.path)!r} was recorded from model {short_fp(trace.fingerprint)}, not {short_fp(fp)}",
                         "re-record it with `snnsim trace --model ...` for this model")
