"""Spike traces: record a model's per-layer input events once, replay them many times.

A trace is a directory (written atomically, see :mod:`snnsim.io`)::

    meta.json         format, model fingerprint, T, layers, data set, sample ids, labels,
                      predictions, file table, the engine that computed the spikes
                      ('torch' or 'event', see :mod:`snnsim.sim.engine`)
    input.npy         float32 [N, C, H, W]: the analog input of layer 0, stored ONCE per
                      sample (direct encoding feeds the same image at every timestep)
    layer_XX.npy      uint8 [N, T, ceil(S/8)] for every layer XX >= 1: its input spikes at
                      every timestep, the flattened pre-pool source map (C, H, W order, S
                      sites) bit-packed with ``np.packbits`` (big-endian bit order)
    logits.npy        float32 [N, classes]: the model's output (mean over T of the output
                      layer's accumulated current)
    spikes.npy        int64 [N, L-1]: spikes emitted by every spiking layer, summed over T

Recording writes every array in chunks through ``np.lib.format.open_memmap`` so N samples are
never held in RAM at once; loading is lazy (``mmap_mode='r'``) and :meth:`Trace.iter_chunks`
walks a trace larger than RAM in sample chunks. Every validation failure on load (missing
directory or meta, wrong format, truncated ``.npy``, NaN input) is a one-line
:class:`~snnsim.errors.TraceError`.

The model is identified by :func:`model_fingerprint` (architecture, weights, thresholds, leaks
and quantization); :func:`check_trace_matches` refuses to replay a trace through another model.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from snnsim.arch import ArchSpec, LayerInfo
from snnsim.errors import TraceError
from snnsim.io import atomic_dir
from snnsim.models import LayerEvent, SpikingNet

TRACE_FORMAT = "snnsim-trace"
TRACE_VERSION = 1
META_FILE = "meta.json"
INPUT_FILE = "input.npy"
LOGITS_FILE = "logits.npy"
SPIKES_FILE = "spikes.npy"
_ARCH_KEYS = ("features", "classifier", "input_shape", "num_classes", "kernel_size", "padding",
              "pool_size")


def layer_file(index: int) -> str:
    """File name of layer ``index``'s packed input spikes."""
    return f"layer_{index:02d}.npy"


def packed_bytes(layer: LayerInfo) -> int:
    """Bytes per sample per timestep of a layer's packed input spikes."""
    return (layer.source_size + 7) // 8


# ---------------------------------------------------------------------------- fingerprint
def model_fingerprint(model: SpikingNet) -> str:
    """SHA-256 of everything that determines the model's spikes: architecture (shapes, kernel,
    padding, pooling; not its name or dropout), every tensor of the state dict (weights,
    thresholds, leaks) and the quantization record (bits, scales, integer weights)."""
    h = hashlib.sha256()
    spec = model.spec.to_dict()
    h.update(json.dumps({k: spec[k] for k in _ARCH_KEYS}, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        arr = np.ascontiguousarray(tensor.detach().cpu().numpy())
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}".encode())
        h.update(arr.reshape(-1).view(np.uint8))  # the same bytes as tobytes(), without the copy
    q = model.quantization
    if q:
        h.update(json.dumps({"bits": q.get("bits"), "scheme": q.get("scheme"),
                             "scales": [float(s) for s in q.get("scales", [])]},
                            sort_keys=True).encode())
        for name, tensor in sorted((q.get("int_weights") or {}).items()):
            arr = np.ascontiguousarray(torch.as_tensor(tensor).cpu().numpy().astype(np.int64))
            h.update(f"{name}|{arr.shape}".encode())
            h.update(arr.reshape(-1).view(np.uint8))
    return h.hexdigest()


def short_fp(fp: str) -> str:
    """The first 12 hex digits of a fingerprint, for messages."""
    return fp[:12]


# ---------------------------------------------------------------------------- trace object
@dataclass
class TraceChunk:
    """Samples ``[start, stop)`` of a trace: lazy (memory-mapped) array slices."""

    start: int
    stop: int
    analog: np.ndarray  # float32 [n, C, H, W]
    events: list[np.ndarray | None]  # per layer: uint8 [n, T, nbytes]; None for layer 0

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass
class Trace:
    """A recorded spike trace on disk (see the module docstring); arrays open lazily."""

    path: Path
    meta: dict[str, Any]
    layers: list[LayerInfo]
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    # -------------------------------------------------------------- metadata
    @property
    def samples(self) -> int:
        return int(self.meta["samples"])

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
    def spec(self) -> ArchSpec:
        return ArchSpec.from_dict(self.meta["model"]["arch"])

    def bytes_per_sample(self) -> int:
        """Disk bytes of one sample's events (analog input + all packed layers)."""
        return int(self.meta["bytes_per_sample"])

    # -------------------------------------------------------------- arrays
    def _array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = np.load(self.path / name, mmap_mode="r", allow_pickle=False)
        return self._arrays[name]

    def analog_input(self) -> np.ndarray:
        """Layer 0's analog input, float32 [N, C, H, W] (memory-mapped)."""
        return self._array(INPUT_FILE)

    def events(self, layer: int) -> np.ndarray:
        """Packed input spikes of ``layer`` (>= 1), uint8 [N, T, nbytes] (memory-mapped)."""
        if layer == 0:
            raise ValueError("layer 0 has analog input; use analog_input()")
        return self._array(layer_file(layer))

    def logits(self) -> np.ndarray:
        """The recorded model's logits, float32 [N, classes]."""
        return self._array(LOGITS_FILE)

    def spike_counts(self) -> np.ndarray:
        """Spikes per sample per spiking layer summed over T, int64 [N, L-1]."""
        return self._array(SPIKES_FILE)

    def unpack(self, layer: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Input events of ``layer`` for samples [start, stop) as bool [n, T, *source_shape]."""
        stop = self.samples if stop is None else stop
        info = self.layers[layer]
        if layer == 0:
            x = np.asarray(self.analog_input()[start:stop]) != 0
            return np.repeat(x[:, None], self.timesteps, axis=1)
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
            events: list[np.ndarray | None] = [None]
            events += [self.events(i)[a:b] for i in range(1, len(self.layers))]
            yield TraceChunk(a, b, self.analog_input()[a:b], events)

    def describe(self) -> str:
        """One line: path, samples, T, model fingerprint, size per sample, recording engine."""
        return (f"trace {str(self.path)!r}: {self.samples} samples x T={self.timesteps}, "
                f"{len(self.layers)} layers, model {short_fp(self.fingerprint)}, "
                f"{self.bytes_per_sample() / 1024:.1f} KiB/sample, {self.meta.get('engine', 'torch')} engine")


# ---------------------------------------------------------------------------- recording
def _input_batches(model: SpikingNet, inputs: Any, samples: int | None, labels: Any,
                   sample_ids: list[Any] | None, batch_size: int, split: str
                   ) -> tuple[int, Iterator[tuple[torch.Tensor, np.ndarray | None]], list[Any], dict[str, Any]]:
    """Normalise the accepted input kinds into (N, batch iterator, sample ids, dataset meta)."""
    ds_meta: dict[str, Any] = {}
    if hasattr(inputs, "train") and hasattr(inputs, "test") and hasattr(inputs, "name"):
        ds_meta = {"name": inputs.name, "split": split,
                   "mean": [float(m) for m in inputs.mean], "std": [float(s) for s in inputs.std]}
        if split not in ("train", "test"):
            raise TraceError(f"split must be 'train' or 'test', got {split!r}")
        inputs = inputs.train if split == "train" else inputs.test
    if isinstance(inputs, np.ndarray):
        inputs = torch.from_numpy(np.ascontiguousarray(inputs))
    if isinstance(inputs, torch.Tensor):
        x_all = inputs
        if x_all.dim() == 3:
            x_all = x_all.unsqueeze(0)
        n_avail = int(x_all.shape[0])
        n = n_avail if samples is None else int(samples)
        if n > n_avail:
            raise TraceError(f"asked for {n} samples but the inputs hold {n_avail}", f"use --samples {n_avail} or fewer")
        lab_all = None if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1)
        if lab_all is not None and lab_all.shape[0] < n:
            raise TraceError(f"got {lab_all.shape[0]} labels for {n} samples", "pass one label per sample")
        ids = list(range(n)) if sample_ids is None else list(sample_ids)[:n]

        def gen_t() -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
            for a in range(0, n, batch_size):
                b = min(a + batch_size, n)
                yield x_all[a:b].float(), None if lab_all is None else lab_all[a:b]

        return n, gen_t(), ids, ds_meta
    if isinstance(inputs, Dataset) or (hasattr(inputs, "__getitem__") and hasattr(inputs, "__len__")):
        n_avail = len(inputs)
        n = n_avail if samples is None else int(samples)
        if n > n_avail:
            raise TraceError(f"asked for {n} samples but the data set holds {n_avail}", f"use --samples {n_avail} or fewer")
        ids = list(range(n)) if sample_ids is None else list(sample_ids)[:n]

        def gen_d() -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
            for a in range(0, n, batch_size):
                items = [inputs[int(i)] for i in range(a, min(a + batch_size, n))]
                xs = torch.stack([torch.as_tensor(it[0]) for it in items]).float()
                ys = np.asarray([int(it[1]) for it in items], dtype=np.int64)
                yield xs, ys

        return n, gen_d(), ids, ds_meta
    raise TraceError(f"cannot record a trace from a {type(inputs).__name__}",
                     "pass a tensor (N, C, H, W), a Dataset of (image, label) or a DatasetBundle")


def record_trace(model: SpikingNet, inputs: Any, out_dir: str | os.PathLike[str], *,
                 samples: int | None = None, batch_size: int = 64, labels: Any = None,
                 timesteps: int | None = None, sample_ids: list[Any] | None = None,
                 split: str = "test", dataset: str | None = None,
                 device: str | torch.device | None = None, progress: bool = True,
                 engine: str = "torch") -> Trace:
    """Run ``model`` (as an SNN) on ``inputs`` and write its spike trace to ``out_dir``.

    ``inputs``: a tensor/array (N, C, H, W) of normalised images (``labels`` optional), a
    Dataset of ``(image, label)`` items, or a ``DatasetBundle`` (its ``split`` is used). Only
    the first ``samples`` items are recorded (all by default), ``batch_size`` at a time.
    ``timesteps`` defaults to ``model.timesteps``. The directory is written atomically; an
    existing trace at ``out_dir`` is replaced. Returns the loaded :class:`Trace`.
    ``engine``: 'torch' (the model's PyTorch forward pass, on ``device``) or 'event' (the
    simulator's event-driven kernels on the CPU, see :mod:`snnsim.sim.engine`).
    """
    from tqdm.auto import tqdm

    from snnsim.sim.engine import ENGINES, event_forward
    from snnsim.sim.kernels import popcount_packed
    from snnsim.sim.replay import layer_plans

    if model.kind != "snn":
        raise TraceError("the model is an ANN; only SNNs have spikes to trace", "convert it first (`snnsim train` produces an SNN)")
    if batch_size < 1:
        raise TraceError(f"batch size must be >= 1, got {batch_size}")
    if engine not in ENGINES:
        raise TraceError(f"unknown trace engine {engine!r}", f"choose one of {', '.join(ENGINES)}")
    steps = int(timesteps or model.timesteps)
    if steps < 1:
        raise TraceError(f"timesteps must be >= 1, got {steps}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise TraceError(f"trace output {str(out)!r} is a file", "choose a directory path for the trace")
    n, batches, ids, ds_meta = _input_batches(model, inputs, samples, labels, sample_ids, batch_size, split)
    if n < 1:
        raise TraceError("no samples to record", "pass at least one input")
    if dataset is not None:
        ds_meta["name"] = dataset
    if "name" not in ds_meta and model.dataset_info.get("name"):
        ds_meta = {"name": model.dataset_info.get("name"), "split": split,
                   "mean": model.dataset_info.get("mean"), "std": model.dataset_info.get("std")}

    layers = model.layer_infos
    in_shape = tuple(model.spec.input_shape)
    home = next(model.parameters()).device
    dev = torch.device(device) if device is not None and engine == "torch" else home
    fp = model_fingerprint(model)
    plans = layer_plans(model) if engine == "event" else None
    was_training = model.training
    model.eval()
    if dev != home:
        model.to(dev)  # moved back in the finally clause
    label_list: list[int] | None = [] if labels is not None or not isinstance(inputs, torch.Tensor | np.ndarray) else None
    preds: list[int] = []
    absmax = 0.0
    try:
        with atomic_dir(out) as tmp:
            x_mm = np.lib.format.open_memmap(tmp / INPUT_FILE, mode="w+", dtype=np.float32, shape=(n, *in_shape))
            ev_mm: list[np.ndarray | None] = [None]
            for info in layers[1:]:
                ev_mm.append(np.lib.format.open_memmap(tmp / layer_file(info.index), mode="w+", dtype=np.uint8,
                                                       shape=(n, steps, packed_bytes(info))))
            n_classes = layers[-1].out_features
            logits_mm = np.lib.format.open_memmap(tmp / LOGITS_FILE, mode="w+", dtype=np.float32, shape=(n, n_classes))
            spikes_mm = np.lib.format.open_memmap(tmp / SPIKES_FILE, mode="w+", dtype=np.int64, shape=(n, len(layers) - 1))
            spikes_mm[:] = 0
            pos = 0
            with torch.no_grad(), tqdm(total=n, desc=f"trace ({engine})", unit="sample", disable=not progress) as bar:
                for xb, yb in batches:
                    b = int(xb.shape[0])
                    if tuple(xb.shape[1:]) != in_shape:
                        raise TraceError(f"input shape {tuple(xb.shape[1:])} does not match the model's {in_shape}",
                                         "record with inputs from the data set the model was trained on")
                    if not torch.isfinite(xb).all():
                        raise TraceError(f"input samples {pos}..{pos + b - 1} contain NaN or Inf", "clean the inputs before tracing")
                    x_np = xb.numpy().astype(np.float32, copy=False)
                    x_mm[pos:pos + b] = x_np
                    absmax = max(absmax, float(np.abs(x_np).max()) if x_np.size else 0.0)
                    sl = slice(pos, pos + b)

                    if plans is not None:
                        events, logits_np = event_forward(model, x_np, steps, plans)
                        for i, bits_i in enumerate(events, start=1):
                            ev_mm[i][sl] = bits_i
                            spikes_mm[sl, i - 1] = popcount_packed(bits_i).sum(axis=1)
                        logits = torch.from_numpy(logits_np)
                    else:
                        def observer(ev: LayerEvent, sl: slice = sl, b: int = b) -> None:
                            i = ev.layer.index
                            if i == 0:
                                return
                            bits = (ev.inputs.detach() != 0).reshape(b, -1).cpu().numpy()
                            ev_mm[i][sl, ev.t] = np.packbits(bits, axis=1)
                            spikes_mm[sl, i - 1] += bits.sum(axis=1)

                        logits = model.forward_snn(xb.to(dev), steps, observer)
                    logits_mm[pos:pos + b] = logits.detach().cpu().numpy().astype(np.float32)
                    preds.extend(int(p) for p in logits.argmax(dim=1).cpu())
                    if label_list is not None:
                        if yb is not None:
                            label_list.extend(int(v) for v in yb)
                        elif labels is not None:
                            label_list.extend(int(v) for v in np.asarray(labels).reshape(-1)[pos:pos + b])
                    pos += b
                    bar.update(b)
            for arr in (x_mm, logits_mm, spikes_mm, *[a for a in ev_mm if a is not None]):
                arr.flush()
            per_sample = 4 * math.prod(in_shape) + steps * sum(packed_bytes(i) for i in layers[1:])
            meta = {
                "format": TRACE_FORMAT,
                "format_version": TRACE_VERSION,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "snnsim_version": _version(),
                "model_fingerprint": fp,
                "model": {"arch": model.spec.to_dict(), "kind": model.kind, "timesteps": int(model.timesteps),
                          "quantization_bits": (model.quantization or {}).get("bits"),
                          "provenance": _jsonable(model.provenance)},
                "timesteps": steps,
                "samples": n,
                "encoding": "direct",
                "engine": engine,
                "input": {"file": INPUT_FILE, "shape": [n, *in_shape], "dtype": "float32",
                          "repeated_every_timestep": True, "absmax": absmax},
                "layers": [_layer_meta(info, steps) for info in layers],
                "dataset": _jsonable(ds_meta),
                "sample_ids": _jsonable(ids),
                "labels": label_list if label_list else None,
                "predictions": preds,
                "files": {"logits": LOGITS_FILE, "spikes": SPIKES_FILE},
                "bytes_per_sample": per_sample,
                "bit_order": "big",
            }
            (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    finally:
        model.train(was_training)
        if dev != home:
            model.to(home)
    return load_trace(out, check_finite=False)


def _layer_meta(info: LayerInfo, steps: int) -> dict[str, Any]:
    d: dict[str, Any] = {
        "index": info.index, "name": info.name, "kind": info.kind,
        "in_shape": list(info.in_shape), "out_shape": list(info.out_shape),
        "source_shape": list(info.source_shape), "source_size": info.source_size,
        "pool": info.pool, "pool_kernel": info.pool_kernel, "spiking": info.spiking,
        "analog_input": info.analog_input,
    }
    if info.index == 0:
        d["file"] = INPUT_FILE
    else:
        d.update(file=layer_file(info.index), packed_bytes=packed_bytes(info), shape=[None, steps, packed_bytes(info)])
    return d


def _jsonable(obj: Any) -> Any:
    """Best-effort conversion of metadata (numpy/torch scalars, tuples) to JSON types."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _version() -> str:
    from snnsim import __version__

    return __version__


# ---------------------------------------------------------------------------- loading
def _check_npy(path: Path, trace: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Validate one .npy file's header and size against the expected shape and dtype."""
    name = path.name
    if not path.exists():
        raise TraceError(f"trace {trace!r} is missing {name}", "re-record it with `snnsim trace`")
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            hdr_shape, fortran, hdr_dtype = reader(fh)
            offset = fh.tell()
    except Exception as exc:  # bad magic, truncated header
        raise TraceError(f"trace {trace!r}: {name} is not a valid .npy file ({type(exc).__name__})",
                         "re-record it with `snnsim trace`") from None
    if tuple(hdr_shape) != tuple(shape) or np.dtype(hdr_dtype) != np.dtype(dtype) or fortran:
        raise TraceError(f"trace {trace!r}: {name} holds {np.dtype(hdr_dtype)}{list(hdr_shape)}, expected {np.dtype(dtype)}{list(shape)}",
                         "re-record it with `snnsim trace`")
    need = offset + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    have = path.stat().st_size
    if have < need:
        raise TraceError(f"trace {trace!r}: {name} is truncated ({have} of {need} bytes)", "re-record it with `snnsim trace`")


def load_trace(path: str | os.PathLike[str], check_finite: bool = True) -> Trace:
    """Open a trace directory lazily, validating metadata and every file's size.

    ``check_finite`` scans the analog input (in chunks) for NaN/Inf.
    """
    p = Path(path)
    t = str(p)
    if not p.exists():
        raise TraceError(f"trace {t!r} does not exist", "record one with `snnsim trace --model MODEL.pt --out DIR`")
    if not p.is_dir():
        raise TraceError(f"trace {t!r} is a file, not a trace directory", "pass the directory written by `snnsim trace`")
    meta_p = p / META_FILE
    if not meta_p.exists():
        raise TraceError(f"trace {t!r} has no {META_FILE} (incomplete or not a trace)", "re-record it with `snnsim trace`")
    try:
        meta = json.loads(meta_p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TraceError(f"trace {t!r}: {META_FILE} is unreadable ({type(exc).__name__})", "re-record it with `snnsim trace`") from None
    if not isinstance(meta, dict) or meta.get("format") != TRACE_FORMAT:
        raise TraceError(f"{t!r} is not an snnsim trace (format {meta.get('format') if isinstance(meta, dict) else None!r})",
                         "pass a directory written by `snnsim trace`")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise TraceError(f"trace {t!r} has no valid format_version", "re-record it with `snnsim trace`")
    if version > TRACE_VERSION:
        raise TraceError(f"trace {t!r} is format v{version}, newer than this snnsim supports (v{TRACE_VERSION})", "upgrade snnsim")
    for key in ("model_fingerprint", "model", "timesteps", "samples", "layers", "predictions", "sample_ids"):
        if key not in meta:
            raise TraceError(f"trace {t!r}: {META_FILE} lacks {key!r}", "re-record it with `snnsim trace`")
    try:
        spec = ArchSpec.from_dict(meta["model"]["arch"])
        layers = spec.layers()
    except Exception as exc:
        raise TraceError(f"trace {t!r}: its architecture entry is malformed ({str(exc).splitlines()[0][:120]})",
                         "re-record it with `snnsim trace`") from None
    n = int(meta["samples"])
    steps = int(meta["timesteps"])
    if len(meta["layers"]) != len(layers):
        raise TraceError(f"trace {t!r}: meta lists {len(meta['layers'])} layers, its architecture has {len(layers)}",
                         "re-record it with `snnsim trace`")
    for info, lm in zip(layers, meta["layers"], strict=True):
        if list(info.source_shape) != list(lm.get("source_shape", [])):
            raise TraceError(f"trace {t!r}: layer {info.name} source shape {lm.get('source_shape')} does not match its architecture {list(info.source_shape)}",
                             "re-record it with `snnsim trace`")
    if len(meta["predictions"]) != n or len(meta["sample_ids"]) != n or (meta.get("labels") is not None and len(meta["labels"]) != n):
        raise TraceError(f"trace {t!r}: sample lists in {META_FILE} do not have {n} entries", "re-record it with `snnsim trace`")
    _check_npy(p / INPUT_FILE, t, (n, *spec.input_shape), np.dtype(np.float32))
    for info in layers[1:]:
        _check_npy(p / layer_file(info.index), t, (n, steps, packed_bytes(info)), np.dtype(np.uint8))
    _check_npy(p / LOGITS_FILE, t, (n, layers[-1].out_features), np.dtype(np.float32))
    _check_npy(p / SPIKES_FILE, t, (n, len(layers) - 1), np.dtype(np.int64))
    trace = Trace(p, meta, layers)
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


def check_trace_matches(trace: Trace, model: SpikingNet) -> None:
    """Refuse a trace that was recorded from a different model (one-line TraceError)."""
    fp = model_fingerprint(model)
    if fp != trace.fingerprint:
        raise TraceError(f"trace {str(trace.path)!r} was recorded from model {short_fp(trace.fingerprint)}, not {short_fp(fp)}",
                         "re-record it with `snnsim trace --model ...` for this model")
