"""Recording spike traces: run a model once and write its population spikes to disk.

:func:`record_trace` runs the model (PyTorch's forward pass, or the event-driven engine of
:mod:`snnsim.sim.engine`) on a data set or tensors and writes a trace directory in the format of
:mod:`snnsim.trace` (format v3, one file per spiking population), atomically and in chunks. It
lives apart from the format so that the simulator (which reads traces) and the recorder (which
runs the simulator's event engine) import the format without importing each other.
"""

from __future__ import annotations

import datetime as _dt
import errno
import io
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from snnsim.data import is_ternary
from snnsim.errors import TraceError
from snnsim.graph.encoding import poisson_steps
from snnsim.io import atomic_dir
from snnsim.limits import MAX_DOCUMENT_DEPTH, MAX_SAMPLES, MAX_TIMESTEPS
from snnsim.models import Model, PopulationEvent
from snnsim.progress import progress_bar
from snnsim.sim.engine import ENGINES, event_forward
from snnsim.sim.kernels import popcount_packed
from snnsim.sim.replay import layer_plans
from snnsim.trace import (
    CHECKSUM,
    INPUT_FILE,
    LOGITS_FILE,
    META_FILE,
    SPIKES_FILE,
    TRACE_FORMAT,
    TRACE_VERSION,
    Trace,
    canonical_json,
    check_meta,
    classes_of,
    data_files,
    file_crc32,
    input_layout,
    json_depth,
    layer_meta,
    load_trace,
    meta_digest,
    model_fingerprint,
    per_sample_bytes,
    population_file,
    population_meta,
    short_value,
)

_READ_BLOCK = 1 << 20  # bytes of the zero-writing fallback of preallocation


def _input_batches(model: Model, inputs: Any, samples: int | None, labels: Any,
                   sample_ids: list[Any] | None, batch_size: int, split: str
                   ) -> tuple[int, Iterator[tuple[torch.Tensor, np.ndarray | None]], list[Any], dict[str, Any],
                              tuple[bool, bool]]:
    """Normalise the accepted input kinds into (N, batch iterator, sample ids, dataset meta,
    :func:`_sequence_kind` of the inputs)."""
    ds_meta: dict[str, Any] = {}
    if hasattr(inputs, "train") and hasattr(inputs, "test") and hasattr(inputs, "name"):
        ds_meta = {"name": inputs.name, "split": split,
                   "mean": [float(m) for m in inputs.mean], "std": [float(s) for s in inputs.std],
                   "meta": dict(getattr(inputs, "meta", None) or {})}
        if split not in ("train", "test"):
            raise TraceError(f"split must be 'train' or 'test', got {split!r}")
        inputs = inputs.train if split == "train" else inputs.test
    kind = _sequence_kind(inputs, tuple(model.input_shape), ds_meta)
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

        return n, gen_t(), ids, ds_meta, kind
    if isinstance(inputs, Dataset) or (hasattr(inputs, "__getitem__") and hasattr(inputs, "__len__")):
        n_avail = len(inputs)
        n = n_avail if samples is None else int(samples)
        if n > n_avail:
            raise TraceError(f"asked for {n} samples but the data set holds {n_avail}", f"use --samples {n_avail} or fewer")
        ids = list(range(n)) if sample_ids is None else list(sample_ids)[:n]
        has_labels = _labelled(ds_meta)

        def gen_d() -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
            for a in range(0, n, batch_size):
                items = [inputs[int(i)] for i in range(a, min(a + batch_size, n))]
                xs = torch.stack([torch.as_tensor(it[0]) for it in items]).float()
                ys = np.asarray([int(it[1]) for it in items], dtype=np.int64) if has_labels else None
                yield xs, ys

        return n, gen_d(), ids, ds_meta, kind
    raise TraceError(f"cannot record a trace from a {type(inputs).__name__}",
                     "pass a tensor (N, C, H, W), a Dataset of (image, label) or a DatasetBundle")


def synaptic_sums(model: Model, engine: str, exact_currents: bool = True) -> str:
    """The ``synaptic_sums`` of a trace ``record_trace`` writes: 'float64' for the torch engine
    with exact currents, unless the model is run as the user's own PyTorch module (``snnsim
    import --torch``), which sums in float32; 'float32' otherwise (the event engine)."""
    from snnsim.interop.torch_import import torch_source

    return "float64" if engine == "torch" and exact_currents and torch_source(model) is None else "float32"


def _sequence_kind(inputs: Any, in_shape: tuple[int, ...], ds_meta: dict[str, Any]) -> tuple[bool, bool]:
    """``(sequence, ternary)`` of the inputs (a tensor, an array or a Dataset, the split already
    chosen): whether each sample is [T, *input shape] (one input per timestep), and whether
    every value of them is -1, 0 or 1 (spikes, stored as int8)."""
    if isinstance(inputs, np.ndarray | torch.Tensor):
        x = torch.as_tensor(inputs)
        seq = x.dim() == len(in_shape) + 2
        return seq, seq and is_ternary(x)
    if hasattr(inputs, "__getitem__") and hasattr(inputs, "__len__") and len(inputs):
        seq = torch.as_tensor(inputs[0][0]).dim() == len(in_shape) + 1
        if not seq:
            return False, False
        tensors = getattr(inputs, "tensors", None)  # a TensorDataset: check its values whole
        meta = ds_meta.get("meta") or {}
        ternary = bool(meta["ternary"]) if "ternary" in meta else tensors is not None and is_ternary(tensors[0])
        return True, ternary
    return False, False


def _labelled(ds_meta: dict[str, Any]) -> bool:
    """Whether a data set's items carry real labels (a user's ``--inputs`` file may not)."""
    return bool((ds_meta.get("meta") or {}).get("labelled", True))


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The ``.npy`` (v1.0) header of a C-order array, as ``np.lib.format.open_memmap`` writes it."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                               "fortran_order": False, "shape": tuple(int(s) for s in shape)})
    return buf.getvalue()


def _npy_size(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return len(_npy_header(shape, dtype)) + math.prod(shape) * np.dtype(dtype).itemsize


def _preallocate(fd: int, size: int) -> None:
    """Reserve the file's first ``size`` bytes on disk, so a full disk fails here (OSError
    ENOSPC) instead of as SIGBUS when a memory-mapped page is first written."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        try:
            fallocate(fd, 0, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
    zeros = bytes(_READ_BLOCK)  # no fallocate here: writing the zeros allocates the blocks
    pos = os.lseek(fd, 0, os.SEEK_END)
    while pos < size:
        pos += os.write(fd, zeros[:min(len(zeros), size - pos)])


def _create_npy(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.memmap:
    """Create a ``.npy`` file with its full size allocated on disk and map it for writing."""
    header = _npy_header(shape, dtype)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.flush()
        _preallocate(fh.fileno(), len(header) + math.prod(shape) * np.dtype(dtype).itemsize)
    return np.memmap(path, dtype=dtype, mode="r+", offset=len(header), shape=shape)


def _write_error(exc: OSError, out: Path, needed: int) -> TraceError:
    """A one-line TraceError for an OSError while writing a trace."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return TraceError(f"no space left on device writing trace to {str(out)!r} (needs {needed / 1e6:,.1f} MB)",
                          "free space or pass --out elsewhere")
    return TraceError(f"cannot write trace to {str(out)!r} ({exc.strerror or type(exc).__name__})",
                      "check the path and its permissions, or pass --out elsewhere")


def record_trace(model: Model, inputs: Any, out_dir: str | os.PathLike[str], *,
                 samples: int | None = None, batch_size: int = 64, labels: Any = None,
                 timesteps: int | None = None, sample_ids: list[Any] | None = None,
                 split: str = "test", dataset: str | None = None,
                 device: str | torch.device | None = None, progress: bool = True,
                 engine: str = "torch", seed: int = 0, exact_currents: bool = True) -> Trace:
    """Run ``model`` (as an SNN) on ``inputs`` and write its spike trace to ``out_dir``.

    ``inputs``: a tensor/array (N, *input shape) of normalised images (``labels`` optional), a
    Dataset of ``(image, label)`` items, or a ``DatasetBundle`` (its ``split`` is used); or the
    same with one input per timestep (N, T, *input shape: event frames, spikes), fed step by step
    (T must be the trace's). A Poisson-encoded model's input spikes are drawn per sample from
    ``seed`` (:func:`snnsim.graph.encoding.poisson_steps`) and stored in the trace. Only
    the first ``samples`` items are recorded (all by default), ``batch_size`` at a time.
    ``timesteps`` defaults to ``model.timesteps``. The directory is written atomically; an
    existing trace at ``out_dir`` is replaced; a full disk is a one-line TraceError and leaves
    nothing behind. Returns the loaded :class:`Trace`.
    ``engine``: 'torch' (the model's PyTorch forward pass, on ``device``) or 'event' (the
    simulator's event-driven kernels on the CPU, see :mod:`snnsim.sim.engine`). With 'torch', a
    model imported from the user's PyTorch module (``snnsim import --torch``) is run as that
    module itself, its spikes read by forward hooks (:class:`snnsim.interop.torch_import.SourceRunner`).
    ``exact_currents`` (torch engine): every synaptic current rounded to float32 from its float64
    sum, the same at any batch size (docs/counting.md, "Float arithmetic"); False records
    PyTorch's float32 convolutions at this ``batch_size`` instead, e.g. to count the very spikes
    another tool's float32 forward pass produces (NeuroBench parity,
    ``benchmarks/bench_vs_neurobench.py``).
    """
    if model.kind != "snn":
        raise TraceError("the model is an ANN; only SNNs have spikes to trace", "convert it first (`snnsim train` produces an SNN)")
    model.check_simulable()
    if batch_size < 1:
        raise TraceError(f"batch size must be >= 1, got {batch_size}")
    if engine not in ENGINES:
        raise TraceError(f"unknown trace engine {engine!r}", f"choose one of {', '.join(ENGINES)}")
    steps = int(timesteps or model.timesteps)
    if not 1 <= steps <= MAX_TIMESTEPS:
        raise TraceError(f"timesteps must be in 1..{MAX_TIMESTEPS}, got {steps}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise TraceError(f"trace output {str(out)!r} is a file", "choose a directory path for the trace")
    if out.is_dir() and not (out / META_FILE).is_file() and any(out.iterdir()):
        # Replacing a trace is fine (traces are a cache); replacing a user's folder never is.
        raise TraceError(f"trace output {str(out)!r} is a directory that holds other files, not a trace",
                         "choose a new directory for the trace")
    n, batches, ids, ds_meta, (sequence, ternary) = _input_batches(model, inputs, samples, labels, sample_ids,
                                                                   batch_size, split)
    if n < 1:
        raise TraceError("no samples to record", "pass at least one input")
    if n > MAX_SAMPLES:
        raise TraceError(f"{n:,} samples is more than a trace may hold ({MAX_SAMPLES:,})", "record fewer samples")
    if dataset is not None:
        ds_meta["name"] = dataset
    if "name" not in ds_meta and model.dataset_info.get("name"):
        ds_meta = {"name": model.dataset_info.get("name"), "split": split,
                   "mean": model.dataset_info.get("mean"), "std": model.dataset_info.get("std")}

    layers, pops = model.layer_infos, model.populations
    spiking = [p for p in pops if p.spiking]
    column = {p.name: k for k, p in enumerate(spiking)}
    in_shape = tuple(model.input_shape)
    n_classes = classes_of(model.graph)
    poisson = model.encoding == "poisson"
    if poisson and sequence:
        raise TraceError("the model is Poisson-encoded: it draws its own input spikes from one input per sample, but "
                         "the inputs hold one per timestep", "pass inputs of shape [N, C, H, W], or --encoding direct")
    per_step, spikes = sequence or poisson, poisson or (sequence and ternary)
    files = data_files(in_shape, pops, n_classes, n, steps, per_step, spikes)
    input_shape, input_dtype = input_layout(in_shape, n, steps, per_step, spikes)
    needed = sum(_npy_size(shape, dtype) for _, shape, dtype in files)
    home = next(model.parameters()).device
    dev = torch.device(device) if device is not None and engine == "torch" else home
    fp = model_fingerprint(model)
    plans = layer_plans(model) if engine == "event" else None
    runner = None
    if engine == "torch":
        from snnsim.interop.torch_import import source_runner

        runner = source_runner(model, dev)  # None unless the model was imported with --torch
    was_training = model.training
    model.eval()
    if dev != home:
        model.to(dev)  # moved back in the finally clause
    label_list: list[int] | None = [] if labels is not None or not isinstance(inputs, torch.Tensor | np.ndarray) else None
    if labels is None and not _labelled(ds_meta):  # a user's inputs file without labels
        label_list = None
    preds: list[int] = []
    absmax = 0.0
    try:
        with atomic_dir(out) as tmp:
            mm = {name: _create_npy(tmp / name, shape, dtype) for name, shape, dtype in files}
            x_mm, logits_mm, spikes_mm = mm[INPUT_FILE], mm[LOGITS_FILE], mm[SPIKES_FILE]
            pop_mm = {p.name: mm[population_file(p.index)] for p in spiking}
            spikes_mm[:] = 0
            pos = 0
            with torch.no_grad(), progress_bar(total=n, desc=f"trace ({engine})", unit="sample", enabled=progress) as bar:
                for xb, yb in batches:
                    b = int(xb.shape[0])
                    got = tuple(xb.shape[2:] if sequence else xb.shape[1:])
                    if got != in_shape:
                        raise TraceError(f"input shape {got} does not match the model's {in_shape}",
                                         f"pass inputs of shape [N, {', '.join(map(str, in_shape))}] (the data set the "
                                         "model was trained on)")
                    if sequence and int(xb.shape[1]) != steps:
                        raise TraceError(f"the inputs hold {int(xb.shape[1])} timesteps per sample, the trace runs T={steps}",
                                         f"use a model with T={int(xb.shape[1])}, or re-bin the inputs into {steps} frames")
                    if not torch.isfinite(xb).all():
                        raise TraceError(f"input samples {pos}..{pos + b - 1} contain NaN or Inf", "clean the inputs before tracing")
                    if label_list is not None:
                        lab_b = yb if yb is not None else np.asarray(labels).reshape(-1)[pos:pos + b].astype(np.int64)
                        bad = np.flatnonzero((lab_b < 0) | (lab_b >= n_classes))
                        if bad.size:
                            raise TraceError(f"label {int(lab_b[bad[0]])} of sample {pos + int(bad[0])} is not one of the "
                                             f"model's {n_classes} classes", "record on the data set the model was trained on")
                        label_list.extend(int(v) for v in lab_b)
                    if poisson:  # the spikes every engine reads, drawn per sample
                        stream = poisson_steps(xb, steps, seed, pos)
                        x_mm[pos:pos + b] = stream
                        xb = torch.from_numpy(stream.astype(np.float32))
                    else:
                        x_mm[pos:pos + b] = xb.numpy().astype(x_mm.dtype, copy=False)
                    x_np = xb.numpy().astype(np.float32, copy=False)
                    absmax = max(absmax, float(np.abs(x_np).max()) if x_np.size else 0.0)
                    sl = slice(pos, pos + b)

                    if plans is not None or runner is not None:
                        pop_bits, logits_np = (event_forward(model, x_np, steps, plans) if plans is not None
                                               else runner.run(xb, steps))
                        for name, bits_p in pop_bits.items():
                            pop_mm[name][sl] = bits_p
                            spikes_mm[sl, column[name]] = popcount_packed(bits_p).sum(axis=1)
                        logits = torch.from_numpy(logits_np)
                    else:
                        def observer(ev: PopulationEvent, sl: slice = sl, b: int = b) -> None:
                            if ev.spikes is None:
                                return
                            bits = (ev.spikes.detach() != 0).reshape(b, -1).cpu().numpy()
                            pop_mm[ev.node][sl, ev.t] = np.packbits(bits, axis=1)
                            spikes_mm[sl, column[ev.node]] += bits.sum(axis=1)

                        logits = model.forward_snn(xb.to(dev), steps, observer, exact_currents=exact_currents)
                    logits_mm[pos:pos + b] = logits.detach().cpu().numpy().astype(np.float32)
                    preds.extend(int(p) for p in logits.argmax(dim=1).cpu())
                    pos += b
                    bar.update(b)
            for arr in mm.values():
                arr.flush()
            table = {name: {"bytes": (tmp / name).stat().st_size, CHECKSUM: file_crc32(tmp / name)}
                     for name, _, _ in files}
            meta = jsonable({
                "format": TRACE_FORMAT,
                "format_version": TRACE_VERSION,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "snnsim_version": _version(),
                "model_fingerprint": fp,
                "model": {"graph": model.graph.to_dict(),
                          "arch": model.spec.to_dict() if model.spec is not None else None,
                          "kind": model.kind, "timesteps": int(model.timesteps),
                          "quantization_bits": (model.quantization or {}).get("bits"),
                          "provenance": model.provenance},
                "timesteps": steps,
                "samples": n,
                "encoding": model.encoding,
                "engine": engine,
                "synaptic_sums": synaptic_sums(model, engine, exact_currents),
                "input": {"file": INPUT_FILE, "shape": list(input_shape), "dtype": input_dtype.name,
                          "repeated_every_timestep": not per_step, "absmax": absmax, "spikes": spikes,
                          "encoder": {"kind": "poisson", "seed": int(seed)} if poisson else None},
                "layers": [layer_meta(info) for info in layers],
                "populations": [population_meta(p, steps, n) for p in pops],
                "dataset": ds_meta,
                "sample_ids": ids,
                "labels": label_list if label_list else None,
                "predictions": preds,
                "bytes_per_sample": per_sample_bytes(in_shape, pops, steps, per_step, spikes),
                "bit_order": "big",
                "files": table,
            })
            _check_recordable(meta, out)
            meta["meta_sha256"] = meta_digest(meta)
            check_meta(meta, str(out))  # the one schema: every trace written loads
            (tmp / META_FILE).write_text(json.dumps(meta, indent=1, allow_nan=False), encoding="utf-8")
    except OSError as exc:
        raise _write_error(exc, out, needed) from None
    finally:
        model.train(was_training)
        if dev != home:
            model.to(home)
    return load_trace(out, check_finite=False, verify=False)


def _check_recordable(meta: dict[str, Any], out: Path) -> None:
    """Refuse, before writing, metadata that the loader would refuse for reasons the caller
    controls (sample ids, an over-deep provenance), with a message that names the input."""
    ids = meta["sample_ids"]
    if len(ids) != meta["samples"]:
        raise TraceError(f"got {len(ids)} sample ids for {meta['samples']} samples", "pass one sample id per sample")
    bad = next((i for i in ids if isinstance(i, bool) or not isinstance(i, int | str)), None)
    if bad is not None:
        raise TraceError(f"sample id {short_value(bad)} is not an int or a string", "pass sample ids as ints or strings")
    try:
        text = canonical_json(meta)
    except ValueError:
        raise TraceError("the model's provenance or data set info holds NaN or Inf, which a trace cannot store",
                         "fix or drop that entry of the checkpoint") from None
    depth = json_depth(text)
    if depth > MAX_DOCUMENT_DEPTH:
        raise TraceError(f"the metadata of trace {str(out)!r} would nest {depth} levels deep (at most {MAX_DOCUMENT_DEPTH})",
                         "flatten the model's provenance or dataset meta")


def jsonable(obj: Any) -> Any:
    """Best-effort conversion of metadata (numpy/torch scalars, tuples) to JSON types."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _version() -> str:
    from snnsim import __version__

    return __version__


