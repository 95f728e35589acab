"""Replay throughput of the numba kernels against this machine's measured limits.

Measured in one run, on the same machine:

1. **Limits** (microbenchmarks, median of ``--reps``):
   * memory bandwidth: ``np.copyto`` of a large float32 array (GB/s of bytes read + written),
     and a numba ``prange`` copy for 2 threads;
   * add throughput per core (ops per CPU-second of a single-threaded loop, so a loaded machine
     does not deflate it): numba loops over a cache-resident float32 array
     (``a[i] += b[i]``; ``a[i] += v * b[i]``, the scatter's arithmetic; int64 ``a[i] += v * b[i]``
     for the integer path), a random scatter-add ``a[idx[j]] += b[j]`` and a *block* scatter-add
     (a contiguous run of C_out weights added at a random output position: the conv scatter's
     memory pattern). With 2 threads each thread works on its own arrays; the limit's own
     1 -> 2 thread scaling shows what the machine can give right now.
2. **Replay** of a VGG16 trace (random realistic weights, ~10 % spike rates; see
   ``benchmarks/common.py``) with 1 and 2 numba threads (``numba.set_num_threads``):
   * counting (``counting='snnsim'``): input events (spikes) per second, synaptic ops
     *represented* per second and bytes of trace read per second (fraction of the copy
     bandwidth);
   * functional float (``functional='float'``, recorded drive) and functional integer
     (``functional='integer'`` on an 8-bit quantized copy, chained drive): synaptic adds
     *performed* per second (one per weight of every nonzero pooled input site -- what the
     scatter kernels execute), wall-clock and per CPU-second, the latter as a fraction of the
     per-core add limits. "cores got" = CPU time / wall time of the run.
   Kernel time is ``simulate_chunk`` over the trace's chunks (layer plans built once);
   end-to-end is the whole ``replay()`` call (model fingerprint check, plans, chunks, totals).
3. **Numba compile cost**: a fresh subprocess with an empty ``NUMBA_CACHE_DIR`` (cold compile),
   then another one with that cache filled (cache load), first call vs warm call of each path.

Examples::

    python benchmarks/bench_kernels.py                       # defaults: 64 samples, 3 reps
    python benchmarks/bench_kernels.py --samples 16 --functional-samples 4 --reps 1   # quick
"""

from __future__ import annotations

import os

# Idle OpenMP workers (torch and numba both use libgomp here) spin 300,000 iterations by default;
# on a shared, loaded machine that spinning steals the cores the other thread needs (2-thread
# runs were measured 5-40x slower than 1-thread runs), while never spinning (PASSIVE) costs a
# wake-up per short parallel region (float replay scaled 1.47-1.55x instead of 1.74-1.82x).
# A short spin, the CLI's setting (snnsim/cli.py), does both jobs. Set GOMP_SPINCOUNT or
# OMP_WAIT_POLICY in the environment to override (before torch/numba load their OpenMP runtime).
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
import torch
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cached_vgg, cifar_like_inputs, describe_machine, fmt_table, load_average, median  # noqa: E402

from snnsim.sim import kernels as K  # noqa: E402


# ---------------------------------------------------------------------------- limits
@njit(cache=True)
def _add_f32(a: np.ndarray, b: np.ndarray, reps: int) -> None:
    for _ in range(reps):
        for i in range(a.shape[0]):
            a[i] += b[i]


@njit(cache=True)
def _axpy_f32(a: np.ndarray, b: np.ndarray, v: np.float32, reps: int) -> None:
    for _ in range(reps):
        for i in range(a.shape[0]):
            a[i] += v * b[i]


@njit(cache=True)
def _axpy_i64(a: np.ndarray, b: np.ndarray, v: np.int64, reps: int) -> None:
    for _ in range(reps):
        for i in range(a.shape[0]):
            a[i] += v * b[i]


@njit(cache=True)
def _scatter_f32(a: np.ndarray, idx: np.ndarray, b: np.ndarray, reps: int) -> None:
    for _ in range(reps):
        for j in range(idx.shape[0]):
            a[idx[j]] += b[j]


@njit(cache=True)
def _block_scatter_f32(a: np.ndarray, pos: np.ndarray, w: np.ndarray, woff: np.ndarray, c: int, reps: int) -> None:
    for _ in range(reps):
        for e in range(pos.shape[0]):
            ab = a[pos[e] * c:pos[e] * c + c]
            wb = w[woff[e]:woff[e] + c]
            for i in range(c):
                ab[i] += wb[i]


@njit(cache=True, parallel=True)
def _par(kind: int, a: np.ndarray, b: np.ndarray, idx: np.ndarray, pos: np.ndarray, w: np.ndarray,
         woff: np.ndarray, c: int, reps: int) -> None:
    """Each of the a.shape[0] rows is one thread's independent problem."""
    for t in prange(a.shape[0]):
        if kind == 0:
            _add_f32(a[t], b[t], reps)
        elif kind == 1:
            _axpy_f32(a[t], b[t], np.float32(0.5), reps)
        elif kind == 2:
            _scatter_f32(a[t], idx, b[t], reps)
        else:
            _block_scatter_f32(a[t], pos, w, woff, c, reps)


@njit(cache=True, parallel=True)
def _par_copy(dst: np.ndarray, src: np.ndarray, chunks: int) -> None:
    n = src.shape[0]
    step = (n + chunks - 1) // chunks
    for ci in prange(chunks):
        a = ci * step
        b = min(n, a + step)
        for i in range(a, b):
            dst[i] = src[i]


def _time(fn, reps: int) -> float:
    return _time_cpu(fn, reps)[0]


def _time_cpu(fn, reps: int) -> tuple[float, float]:
    """Median wall time and median process CPU time (all threads) of ``fn``.

    CPU / wall = the cores this process actually got. On this shared machine the kernel's
    autogroup scheduler shares the CPUs fairly between *sessions*, so with other sessions busy a
    second thread gets no extra core: the CPU time shows whether the parallel code itself
    loses anything (same CPU-seconds per op at 1 and 2 threads = no parallel overhead).
    """
    ts, cs = [], []
    for _ in range(reps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    return median(ts), median(cs)


def measure_limits(reps: int, copy_mib: int, threads: list[int]) -> dict[str, Any]:
    """Memory bandwidth and add throughputs; per-thread-count aggregate rates."""
    out: dict[str, Any] = {}
    n = copy_mib * (1 << 20) // 4
    src = np.ones(n, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    t = _time(lambda: np.copyto(dst, src), reps)  # noqa: F821 (bound before the del below)
    out["copy_GBps_numpy"] = 2 * src.nbytes / t / 1e9
    for th in threads:
        numba.set_num_threads(th)
        _par_copy(dst, src, 4 * th)
        t = _time(lambda th=th: _par_copy(dst, src, 4 * th), reps)  # noqa: F821
        out[f"copy_GBps_{th}t"] = 2 * src.nbytes / t / 1e9
    del src, dst

    m = 4096  # 16 KiB float32: L1-resident
    inner = 20_000
    rng = np.random.default_rng(0)
    a = np.zeros(m, dtype=np.float32)
    b = rng.random(m, dtype=np.float32)
    _add_f32(a, b, 1)
    out["add_f32_per_core"] = m * inner / _time_cpu(lambda: _add_f32(a, b, inner), reps)[1]
    _axpy_f32(a, b, np.float32(0.5), 1)
    out["axpy_f32_per_core"] = m * inner / _time_cpu(lambda: _axpy_f32(a, b, np.float32(0.5), inner), reps)[1]
    ai = np.zeros(m, dtype=np.int64)
    bi = rng.integers(-100, 100, m).astype(np.int64)
    _axpy_i64(ai, bi, np.int64(3), 1)
    out["axpy_i64_per_core"] = m * inner / _time_cpu(lambda: _axpy_i64(ai, bi, np.int64(3), inner), reps)[1]
    # random scatter into a 256 KiB (L2) accumulator: an unpooled 64x32x32 conv output
    big = 65536
    acc = np.zeros(big, dtype=np.float32)
    idx = rng.integers(0, big, 1 << 16).astype(np.int64)
    vals = rng.random(1 << 16, dtype=np.float32)
    _scatter_f32(acc, idx, vals, 1)
    out["scatter_f32_per_core"] = idx.size * 200 / _time_cpu(lambda: _scatter_f32(acc, idx, vals, 200), reps)[1]
    # block scatter: C_out = 64 contiguous weights at a random output position (conv2's shape)
    c = 64
    pos = rng.integers(0, big // c, 4096).astype(np.int64)
    wts = rng.random(64 * 9 * c, dtype=np.float32)
    woff = (rng.integers(0, 64 * 9, 4096) * c).astype(np.int64)
    _block_scatter_f32(acc, pos, wts, woff, c, 1)
    out["block_scatter_f32_per_core"] = pos.size * c * 200 / _time_cpu(lambda: _block_scatter_f32(acc, pos, wts, woff, c, 200), reps)[1]
    # the same loops on 1 and 2 threads, independent arrays per thread
    for th in threads:
        numba.set_num_threads(th)
        A = np.zeros((th, big), dtype=np.float32)
        B = rng.random((th, big), dtype=np.float32)
        Aa = np.zeros((th, m), dtype=np.float32)
        Ba = rng.random((th, m), dtype=np.float32)
        _par(1, Aa, Ba, idx, pos, wts, woff, c, 1)
        t, cpu = _time_cpu(lambda Aa=Aa, Ba=Ba: _par(1, Aa, Ba, idx, pos, wts, woff, c, inner), reps)
        out[f"axpy_f32_{th}t"] = th * m * inner / t
        out[f"axpy_f32_{th}t_cores_got"] = cpu / t
        _par(3, A, B, idx, pos, wts, woff, c, 1)
        out[f"block_scatter_f32_{th}t"] = th * pos.size * c * 200 / _time(lambda A=A, B=B: _par(3, A, B, idx, pos, wts, woff, c, 200), reps)
    return out


# ---------------------------------------------------------------------------- replay
def adds_performed(plans: list[Any], trace: Any, start: int, stop: int, steps: int, analog_once: bool) -> int:
    """Synaptic adds the functional scatter executes: for every nonzero pooled input site, one
    add per weight of its fan-out (zero weights included). The analog layer's constant input is
    scattered once per sample and reused at every step (``analog_once``), else T times."""
    total = 0
    for li, plan in enumerate(plans):
        if li == 0:
            x = np.asarray(trace.analog_input()[start:stop]).reshape(stop - start, -1)
            per = int(((x != 0) * plan.fan[None, :]).sum())
            total += per * (1 if analog_once else steps)
            continue
        mult = K.sites_from_packed(np.ascontiguousarray(trace.events(li)[start:stop]), plan.c, plan.h, plan.w,
                                   plan.pool_mode, plan.k)
        total += int(((mult > 0) * plan.fan[None, None, :]).sum())
    return total


def bench_replay(model: Any, trace: Any, mode: str | None, threads: list[int], reps: int, label: str) -> list[dict[str, Any]]:
    from snnsim.sim.replay import default_chunk_size, layer_plans, replay, simulate_chunk

    ispec = None
    if mode == "integer":
        from snnsim.sim.integer import integer_spec

        ispec = integer_spec(model, input_absmax=(trace.meta.get("input") or {}).get("absmax"), timesteps=trace.timesteps)
    drive = "chained" if mode == "integer" else "recorded"
    plans = layer_plans(model)
    size = default_chunk_size(trace, mode is not None)
    steps = trace.timesteps
    n = trace.samples
    # totals from one replay (counts do not depend on threads)
    c = replay(trace, model, functional=mode or False, progress=False)
    spikes = float(c.input_events[1:].sum())
    syn_rep = float(c.syn_ops.sum())
    trace_bytes = trace.bytes_per_sample() * n
    adds = adds_performed(plans, trace, 0, n, steps, analog_once=True) if mode else 0
    def kernels_only() -> None:
        for chunk in trace.iter_chunks(size):
            simulate_chunk(plans, chunk, steps, mode, drive, model, ispec)

    kernels_only()  # warm (and page the trace in)
    # thread counts interleaved within every repetition, so a load change hits all of them
    wall: dict[int, list[float]] = {th: [] for th in threads}
    cpu: dict[int, list[float]] = {th: [] for th in threads}
    end: dict[int, list[float]] = {th: [] for th in threads}
    for _ in range(reps):
        for th in threads:
            numba.set_num_threads(th)
            t, c_ = _time_cpu(kernels_only, 1)
            wall[th].append(t)
            cpu[th].append(c_)
            end[th].append(_time(lambda: replay(trace, model, functional=mode or False, progress=False), 1))
    rows = []
    for th in threads:
        rows.append({"label": label, "path": mode or "counting", "threads": th, "samples": n, "chunk": size,
                     "kernel_s": median(wall[th]), "kernel_cpu_s": median(cpu[th]), "replay_s": median(end[th]),
                     "kernel_s_all": wall[th], "spikes": spikes, "syn_ops_represented": syn_rep,
                     "adds_performed": adds, "trace_bytes": trace_bytes, "load": load_average()})
    return rows


# ---------------------------------------------------------------------------- compile cost
_COMPILE_SNIPPET = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, torch
from snnsim.arch import make_arch
from snnsim.models import build_model
from snnsim.compression.quantize import quantize_model
from snnsim.recording import record_trace
from snnsim.sim import replay
t_import = time.perf_counter() - t0
torch.manual_seed(0)
m = build_model(make_arch("digits"), seed=0, timesteps=3)
with torch.no_grad():
    m.thresholds.fill_(0.3)
    for s in m.synapses:
        if isinstance(s, torch.nn.Linear): s.weight.mul_(30)
m.dataset_info = {"name": "synthetic", "mean": [0.5], "std": [0.5], "input_shape": [1, 8, 8], "num_classes": 10}
q = quantize_model(m, 8)
x = torch.rand(4, 1, 8, 8) * 2 - 1
d = sys.argv[1]
tr = record_trace(m, x, d + "/f", progress=False)
tq = record_trace(q, x, d + "/q", progress=False)
out = {"import_s": t_import}
for name, fn in [("counting", lambda: replay(tr, m, progress=False)),
                 ("neurobench", lambda: replay(tr, m, counting="neurobench", progress=False)),
                 ("functional float", lambda: replay(tr, m, functional="float", progress=False)),
                 ("functional integer", lambda: replay(tq, q, functional="integer", progress=False))]:
    t0 = time.perf_counter(); fn(); first = time.perf_counter() - t0
    t0 = time.perf_counter(); fn(); warm = time.perf_counter() - t0
    out[name] = [first, warm]
print("RESULT" + json.dumps(out))
"""


def compile_cost() -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as work:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for phase in ("cold compile (empty cache)", "cache load (cache filled)"):
            proc = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET, work], env=env, capture_output=True, text=True)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
            if proc.returncode != 0 or not line:
                rows.append({"phase": phase, "path": "(failed)", "first call s": proc.stderr.strip().splitlines()[-1:], "warm s": ""})
                continue
            res = json.loads(line[0][6:])
            for path in ("counting", "neurobench", "functional float", "functional integer"):
                first, warm = res[path]
                rows.append({"phase": phase, "path": path, "first call s": f"{first:.2f}", "warm s": f"{warm:.3f}",
                             "compile/load s": f"{first - warm:.2f}"})
    return rows


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="See benchmarks/README.md.")
    p.add_argument("--samples", type=int, default=64, help="samples of the counting trace")
    p.add_argument("--functional-samples", type=int, default=24, help="samples replayed functionally (float and integer)")
    p.add_argument("--timesteps", type=int, default=5)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", default="1,2", help="numba thread counts to compare")
    p.add_argument("--copy-mib", type=int, default=256, help="size of the array copied for the bandwidth limit")
    p.add_argument("--arch", default="vgg16")
    p.add_argument("--model", default=None, help="checkpoint (default: a cached random realistic VGG in --work-dir)")
    p.add_argument("--work-dir", default="/tmp/snnsim-bench")
    p.add_argument("--skip-compile", action="store_true", help="skip the numba compile-cost subprocesses")
    p.add_argument("--skip-integer", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",") if t]
    threads = [t for t in threads if t <= numba.config.NUMBA_NUM_THREADS]
    torch.set_num_threads(1)  # torch only records the traces here
    print(describe_machine())
    print(f"command: {' '.join(sys.argv)}")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)

    print(f"\n--- limits (median of {args.reps})")
    lim = measure_limits(args.reps, args.copy_mib, threads)
    lim_rows = [{"limit": k, "value": (f"{v:.2f} GB/s" if "GBps" in k else f"{v:.2f}" if "cores" in k else f"{v / 1e9:.2f} G/s")}
                for k, v in lim.items()]
    print(fmt_table(lim_rows))
    for th in threads[1:]:
        print(f"limit scaling 1 -> {th} threads: axpy {lim[f'axpy_f32_{th}t'] / lim['axpy_f32_1t']:.2f}x, "
              f"block scatter {lim[f'block_scatter_f32_{th}t'] / lim['block_scatter_f32_1t']:.2f}x, "
              f"copy {lim[f'copy_GBps_{th}t'] / lim['copy_GBps_1t']:.2f}x  (load {load_average()})")

    from snnsim.compression.quantize import quantize_model
    from snnsim.recording import record_trace

    ckpt = Path(args.model) if args.model else work / f"{args.arch}_T{args.timesteps}_seed0.pt"
    model = cached_vgg(ckpt, args.arch, args.timesteps, 0, log=print)
    shape = tuple(model.input_shape)
    x = cifar_like_inputs(max(args.samples, args.functional_samples), seed=1, shape=shape)
    tr = record_trace(model, x[:args.samples], work / "kern-count", batch_size=32, progress=False)
    trf = record_trace(model, x[:args.functional_samples], work / "kern-func", batch_size=32, progress=False)
    rows = bench_replay(model, tr, None, threads, args.reps, args.arch)
    rows += bench_replay(model, trf, "float", threads, args.reps, args.arch)
    if not args.skip_integer:
        q = quantize_model(model, 8)
        trq = record_trace(q, x[:args.functional_samples], work / "kern-int", batch_size=32, progress=False)
        rows += bench_replay(q, trq, "integer", threads, args.reps, args.arch + " int8")

    table = []
    base: dict[str, float] = {}
    for r in rows:
        th = r["threads"]
        t = r["kernel_s"]
        d: dict[str, Any] = {"path": r["path"], "thr": th, "N": r["samples"], "kernel s": f"{t:.3f}",
                             "replay s": f"{r['replay_s']:.3f}", "ms/sample": f"{1e3 * r['replay_s'] / r['samples']:.2f}"}
        if r["path"] == "counting":
            bw = lim.get(f"copy_GBps_{th}t", lim["copy_GBps_numpy"])
            d["spikes/s"] = f"{r['spikes'] / t / 1e9:.2f} G"
            d["syn ops repr./s"] = f"{r['syn_ops_represented'] / t / 1e9:.1f} G"
            d["trace read"] = f"{r['trace_bytes'] / t / 1e9:.2f} GB/s ({100 * r['trace_bytes'] / t / 1e9 / bw:.0f}% of copy)"
        else:
            lim_axpy = lim["axpy_i64_per_core" if r["path"] == "integer" else "axpy_f32_per_core"]
            lim_blk = lim["block_scatter_f32_per_core"]
            rate = r["adds_performed"] / t
            per_core = r["adds_performed"] / r["kernel_cpu_s"]  # adds per CPU-second = per core
            d["adds/s (wall)"] = f"{rate / 1e9:.2f} G"
            d["adds/CPU-s"] = f"{per_core / 1e9:.2f} G"
            d["of axpy limit"] = f"{100 * per_core / lim_axpy:.0f}%"
            d["of block-scatter"] = f"{100 * per_core / lim_blk:.0f}%"
        key = r["path"]
        if th == threads[0]:
            base[key] = t
            base[key + "cpu"] = r["kernel_cpu_s"]
        d["scaling"] = f"{base[key] / t:.2f}x"
        d["cores got"] = f"{r['kernel_cpu_s'] / t:.2f}"
        d["CPU-s vs 1t"] = f"{r['kernel_cpu_s'] / base[key + 'cpu']:.2f}"
        d["load"] = r["load"]
        table.append(d)
    print(f"\n--- replay of {args.arch} traces (kernel = simulate_chunk over chunks; replay = whole call)")
    for path in ("counting", "float", "integer"):
        sub = [d for d in table if d["path"] == path]
        if sub:
            print(fmt_table(sub))
            print()
    comp: list[dict[str, Any]] = []
    if not args.skip_compile:
        print("--- numba compile cost (fresh subprocess, small digits model)")
        comp = compile_cost()
        print(fmt_table(comp))
    if args.json:
        Path(args.json).write_text(json.dumps({"limits": lim, "replay": rows, "compile": comp}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
