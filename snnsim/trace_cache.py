"""The trace cache: a model is traced once on a data set, and every later estimate reuses it.

A cached trace is keyed by what determines its spikes: the model's fingerprint, the data set
and split, the timesteps T and the recording engine, and **not** the sample count: a trace of
N samples serves any request for n <= N samples through the view :meth:`Trace.head(n)
<snnsim.trace.Trace.head>` (its first n samples; the test split's first n items). A request
for more samples than the cached trace holds records the longer trace, replacing it. The
directory name stays readable::

    <root>/<arch>-<dataset>[-<split>]-T<t>-<fingerprint[:12]>[-p<seed>][-event]

(the split is named only when it is not 'test'; a Poisson model's traces name the seed its input
spikes were drawn with; traces of the event engine get ``-event``:
they may differ from PyTorch's by float32 rounding flips). ``snnsim trace`` without ``--out``
writes to the same place.

A cached trace is reused only when it loads (:func:`snnsim.trace.load_trace`: schema, meta
checksum and every file's CRC-32) and its metadata matches the request: the same fingerprint,
engine, T, data set name, split and identity (``DatasetBundle.meta``, e.g. a synthetic set's
seed), and samples that are the split's first items. Otherwise it is recorded again, and a log
line says why (a corrupt trace, one of format v1, another data set draw, too few samples...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snnsim.errors import SnnsimError, TraceError
from snnsim.models import Model
from snnsim.recording import jsonable, record_trace, synaptic_sums
from snnsim.trace import Trace, check_trace_matches, load_trace, model_fingerprint

#: Test samples a trace records when the request names no count (all of a smaller test set).
DEFAULT_SAMPLES = 256

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def _part(text: str) -> str:
    """A name made safe as one path component (no separators, no leading dots)."""
    return _UNSAFE.sub("_", str(text)).strip("._") or "x"


def trace_cache_dir(model: Model, dataset: str, *, root: str | os.PathLike[str] = "traces",
                    engine: str = "torch", split: str = "test", seed: int = 0) -> Path:
    """Where the cached trace of this exact model (fingerprint) on ``dataset``/``split`` at the
    model's T, recorded by ``engine``, lives (see the module docstring; no sample count); a
    Poisson model's input spikes depend on the encoder ``seed`` too (``-p<seed>``)."""
    fp = model_fingerprint(model)[:12]
    split_part = "" if split == "test" else f"-{_part(split)}"
    suffix = "" if engine == "torch" else f"-{_part(engine)}"
    coded = f"-p{int(seed)}" if model.encoding == "poisson" else ""
    return Path(root) / f"{_part(model.name)}-{_part(dataset)}{split_part}-T{int(model.timesteps)}-{fp}{coded}{suffix}"


def reuse_problem(tr: Trace, model: Model, dataset: str, split: str, engine: str,
                  dataset_meta: dict[str, Any], seed: int = 0) -> str | None:
    """Why the loaded cached trace ``tr`` cannot serve this request, or None if it can
    (whatever its sample count)."""
    try:
        check_trace_matches(tr, model)
    except TraceError:
        return f"it was recorded from model {tr.fingerprint[:12]}"
    if tr.meta.get("engine") != engine:
        return f"it was recorded by the {tr.meta.get('engine')} engine, not {engine}"
    if tr.synaptic_sums != synaptic_sums(model, engine):
        return (f"its synaptic currents are {tr.synaptic_sums} sums (recorded by an earlier snnsim), not "
                f"{synaptic_sums(model, engine)} ones")
    if tr.timesteps != int(model.timesteps):
        return f"it was recorded at T={tr.timesteps}, not T={model.timesteps}"
    encoder = (tr.meta.get("input") or {}).get("encoder")
    if encoder is not None and int(encoder.get("seed", -1)) != int(seed):
        return f"its Poisson input spikes were drawn with seed {encoder.get('seed')}, not {seed}"
    ds = tr.dataset
    if ds.get("name") != dataset or ds.get("split") != split:
        return f"it was recorded on {ds.get('name')}/{ds.get('split')}, not {dataset}/{split}"
    if (ds.get("meta") or {}) != dataset_meta:
        return "it was recorded on another draw of the data set (its identity differs)"
    if tr.sample_ids != list(range(tr.samples)):
        return f"its samples are not the first {tr.samples} of the {split} split"
    return None


def _reason(exc: TraceError, cache: Path) -> str:
    """A TraceError's problem, without the path prefix and the fix (for a log line)."""
    text = str(exc).replace(f"trace {str(cache)!r}: ", "").replace(f"trace {str(cache)!r} ", "it ")
    return text.split("; re-record it")[0]


def obtain_trace(model: Model, trace: str | os.PathLike[str] | None = None, dataset: str | None = None,
                 samples: int | None = None, data_dir: str | os.PathLike[str] = "data",
                 trace_root: str | os.PathLike[str] = "traces", device: str = "auto", seed: int = 0,
                 progress: bool = True, log: Callable[[str], None] | None = None, engine: str = "torch") -> Trace:
    """Load ``trace`` (checking it matches the model), or reuse/record the cached trace of the
    model on ``dataset``'s test split with ``engine`` ('torch' or 'event', see
    :func:`snnsim.recording.record_trace`): a cached trace with at least ``samples`` samples is
    reused (its first ``samples``), otherwise one is recorded. A given ``trace`` serves its first
    ``samples`` too. ``log`` gets one line saying which trace is used and why."""
    say = log or (lambda _msg: None)
    if trace is not None:
        tr = load_trace(trace)
        check_trace_matches(tr, model)
        if samples is not None and int(samples) > tr.samples:
            raise TraceError(f"asked for {samples} samples but trace {str(tr.path)!r} holds {tr.samples}",
                             f"use --samples {tr.samples} or fewer, or record a longer trace")
        if samples is not None and int(samples) < tr.samples:
            say(f"using trace {str(tr.path)!r}: its first {samples} of {tr.samples} samples, T={tr.timesteps}")
            return tr.head(int(samples))
        say(f"using trace {str(tr.path)!r} ({tr.samples} samples, T={tr.timesteps})")
        return tr
    from snnsim.data import INPUTS_PREFIX, load_dataset
    from snnsim.device import resolve_device

    name = dataset or model.dataset_info.get("name")
    if not name:
        raise SnnsimError("the model does not record which data set it was trained on",
                          "pass --dataset (digits, cifar10, cifar100, synthetic) or --trace DIR")
    bundle = load_dataset(name, data_dir=data_dir, seed=seed, augment=False)
    n_test = len(bundle.test)
    n = min(DEFAULT_SAMPLES, n_test) if samples is None else int(samples)
    if n < 1:
        raise SnnsimError(f"--samples must be >= 1, got {n}")
    if n > n_test:
        raise SnnsimError(f"asked for {n} samples but the {name} test set has {n_test}", f"use --samples {n_test} or fewer")
    split = "test"
    cache = trace_cache_dir(model, bundle.name, root=trace_root, engine=engine, split=split, seed=seed)
    if cache.exists():
        shown = str(cache)
        try:
            tr = load_trace(cache)
            problem = reuse_problem(tr, model, bundle.name, split, engine, jsonable(dict(bundle.meta)), seed)
        except TraceError as exc:
            problem = _reason(exc, cache)
        if problem is not None:
            say(f"cached trace {shown!r} is unusable ({problem}); recording it again")
        elif tr.samples < n:
            say(f"cached trace {shown!r} holds {tr.samples} samples, fewer than the {n} asked; recording {n} to replace it")
        else:
            say(f"reusing trace {shown!r}: {n} of its {tr.samples} samples (recorded earlier for this exact model)")
            return tr.head(n)
    what = f"samples of {name[len(INPUTS_PREFIX):]!r}" if name.startswith(INPUTS_PREFIX) else f"{name} test samples"
    say(f"recording trace of {n} {what} at T={model.timesteps} ({engine} engine) -> {str(cache)!r}")
    dev = resolve_device(device)
    model.to(dev)
    try:
        return record_trace(model, bundle, cache, samples=n, split=split, device=dev, progress=progress,
                            engine=engine, seed=seed)
    finally:
        model.to("cpu")
