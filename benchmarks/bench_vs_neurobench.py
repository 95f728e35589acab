"""snnsim trace + replay against NeuroBench 2.3.0's SynapticOperations: counts and wall time.

The same SNN and the same inputs are counted three ways, in one process:

* **NeuroBench**: ``Benchmark(TorchModel(wrapper), DataLoader, [], [], [[], [SynapticOperations]])``
  (the wrapper calls ``Model.forward_snn``, so every nn.Conv2d/nn.Linear is called once per
  timestep and NeuroBench's pre-hooks see every step; the whole run is under ``torch.no_grad()``,
  NeuroBench's fastest configuration). Timed: hook registration + forward passes with hooks +
  metric computation, i.e. ``Benchmark(...)`` and ``.run()``.
* **snnsim, counting='neurobench'**: ``record_trace`` (one forward pass, bit-packing the spikes
  to disk) + ``replay(counting='neurobench', batch_size=B)``; timed with the default trace
  (synaptic currents rounded from float64 sums, docs/counting.md "Float arithmetic"). On the
  same spikes its counts must equal NeuroBench's: NeuroBench counts PyTorch's float32 forward
  pass at batch size B, so the parity trace is recorded that way (``exact_currents=False``),
  and the script prints OK or MISMATCH (exit status 1 on a mismatch). How far the default
  trace's counts are from NeuroBench's (its float32 rounding flips) is printed too.
* **snnsim, counting='snnsim'**: ``replay(counting='snnsim')`` of the same trace, snnsim's own
  conventions (docs/counting.md), printed layer by layer next to NeuroBench's.
* **snnsim, event engine**: ``record_trace(engine='event')`` computes the spikes with snnsim's
  event-driven kernels instead of PyTorch, then ``replay(counting='neurobench')``. Its spikes
  can differ from PyTorch's where a potential lies within float32 rounding of the threshold
  (the currents are summed in another order). The script counts those flips, layer by layer,
  and the resulting count difference to NeuroBench, next to the flips PyTorch itself makes
  when the same model runs with batch size 1 instead of B (``--flip-ref-samples``).

Timings are medians over ``--reps`` repetitions, the three pipelines interleaved in every
repetition (the machine is shared: interleaving spreads load changes evenly). A plain
``forward_snn`` under ``torch.no_grad()`` is timed too, as the floor every pipeline that runs
the model pays. Replay alone (re-costing an existing trace, the common case) is reported
separately from trace + replay; it includes loading the trace with its checksums
verified, as ``snnsim estimate --trace`` does. Warm-up (torch's first-call primitive setup, numba's cache
load) is done once before timing and is not counted.

Models: a VGG16 (default; ``--arch`` to change) with random Kaiming weights and thresholds
calibrated to ~10 % spike rate per layer, on CIFAR-shaped synthetic images (see
``benchmarks/common.py``), and with ``--digits-model PATH`` a trained digits SNN on the digits
test set.

``--nb-samples M`` runs NeuroBench on only the first M samples (and snnsim on all) and
extrapolates NeuroBench's time linearly to ``--samples`` -- printed as EXTRAPOLATED.

Examples::

    python benchmarks/bench_vs_neurobench.py --samples 64 --reps 3          # quick
    python benchmarks/bench_vs_neurobench.py --samples 1000 --reps 1        # the issue's target
    python benchmarks/bench_vs_neurobench.py --digits-model runs/digits/snn.pt --samples 256
"""

from __future__ import annotations

import os

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # a short OpenMP spin: see bench_kernels.py

import argparse
import gc
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    cached_vgg,
    cifar_like_inputs,
    describe_machine,
    fmt_table,
    load_average,
    median,
    peak_rss_mib,
)

from snnsim.models import Model, describe_arch  # noqa: E402
from snnsim.recording import record_trace  # noqa: E402
from snnsim.sim import replay  # noqa: E402
from snnsim.sim.kernels import popcount_packed  # noqa: E402
from snnsim.trace import load_trace  # noqa: E402

NB_KEYS = ("Effective_MACs", "Effective_ACs", "Dense")
# NeuroBench sums every call's conv/linear output in float32 before int(): totals are exact
# integers only up to float32 rounding of each per-call sum (~6e-8 relative).
REL_TOL = 1e-5


class _SnnForward(nn.Module):
    """What NeuroBench's TorchModel calls: ``net(batch)`` -> all timesteps of forward_snn."""

    def __init__(self, net: Model, timesteps: int) -> None:
        super().__init__()
        self.net = net
        self.timesteps = timesteps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_snn(x, self.timesteps)


def run_neurobench(model: Model, x: torch.Tensor, y: torch.Tensor, batch_size: int, timesteps: int) -> dict[str, float]:
    """NeuroBench's SynapticOperations on (x, y); everything it does is inside this call."""
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import TorchModel

    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
    with torch.no_grad():
        bench = Benchmark(TorchModel(_SnnForward(model, timesteps)), loader, [], [], [[], [SynapticOperations]])
        try:
            res = bench.run(quiet=True)["SynapticOperations"]
        finally:
            bench.workload_metric_manager.cleanup_hooks(bench.model)  # never leave hooks behind
    return {k: float(res[k]) for k in NB_KEYS}


def plain_forward(model: Model, x: torch.Tensor, batch_size: int, timesteps: int) -> None:
    with torch.no_grad():
        for a in range(0, x.shape[0], batch_size):
            model.forward_snn(x[a:a + batch_size], timesteps)


def warm_up(model: Model, x: torch.Tensor, timesteps: int, batch_size: int, work: Path) -> None:
    """First-call costs (oneDNN primitives, numba cache load/compile) paid before any timing."""
    n = min(x.shape[0], max(2, min(batch_size, 8)))
    plain_forward(model, x[:n], n, timesteps)
    tr = record_trace(model, x[:n], work / "warmup", batch_size=n, timesteps=timesteps, progress=False)
    replay(tr, model, counting="neurobench", batch_size=n, progress=False)
    replay(tr, model, counting="snnsim", progress=False)
    record_trace(model, x[:n], work / "warmup", batch_size=n, timesteps=timesteps, progress=False, engine="event")


def neurobench_profile(model: Model, x: torch.Tensor, steps: int, batch_size: int, where: Path,
                       engine: str, exact_currents: bool = True) -> dict[str, float]:
    """snnsim's NeuroBench-profile counts of ``x`` from a scratch trace recorded by ``engine``
    (``exact_currents``: see ``record_trace``)."""
    tr = record_trace(model, x, where, batch_size=batch_size, timesteps=steps, progress=False, engine=engine,
                      exact_currents=exact_currents)
    counts = replay(tr, model, counting="neurobench", batch_size=batch_size, progress=False).neurobench.as_dict()
    shutil.rmtree(where, ignore_errors=True)
    return counts


def spike_flips(a: Any, b: Any, stop: int | None = None) -> list[int]:
    """Per spiking population: spikes that differ between traces ``a`` and ``b`` (first ``stop`` samples)."""
    out = []
    for pop in a.populations:
        if pop.spiking:
            ea = np.ascontiguousarray(a.spikes(pop.name)[:stop])
            eb = np.ascontiguousarray(b.spikes(pop.name)[:stop])
            out.append(int(popcount_packed(ea, eb).sum()))
    return out


def total_spikes(tr: Any, stop: int | None = None) -> int:
    return int(np.asarray(tr.spike_counts())[:stop].sum())


def layer_table(nb: Any, sn: Any) -> list[dict[str, Any]]:
    """Per layer, per sample, summed over T: NeuroBench-profile vs snnsim-native counts."""
    rows = []
    nbc = nb.neurobench
    for li, info in enumerate(sn.layers):
        nb_mac = float(nbc.mac_ops[li].sum()) / nb.samples
        nb_ac = float(nbc.ac_ops[li].sum()) / nb.samples
        nb_eff = nb_mac + nb_ac
        syn = float(sn.syn_ops[li].sum()) / sn.samples
        syn_nz = float(sn.syn_ops_nz[li].sum()) / sn.samples
        kind = "MAC" if sn.analog[li] else "AC"
        nb_kind = "MAC" if nb_ac == 0 and nb_mac > 0 else "AC" if nb_mac == 0 else f"mixed ({100 * nb_mac / nb_eff:.0f}% MAC)"
        rows.append({
            "layer": info.name, "pool_in": info.pool or "-",
            "NB eff": f"{nb_eff:,.0f}", "NB kind": nb_kind,
            "snnsim syn_ops": f"{syn:,.0f}", "syn_ops_nz": f"{syn_nz:,.0f}", "snnsim kind": kind,
            "snnsim/NB": f"{syn_nz / nb_eff:.3f}" if nb_eff else "-",
            "NB Dense": f"{nbc.dense_by_layer[li]:,.0f}",
            "dense_ops xT": f"{sn.dense_ops[li] * sn.timesteps:,.0f}",
            "events/site": f"{float(sn.input_events[li].sum()) / max(1.0, float(nb.input_events[li].sum())):.3f}",
        })
    return rows


def bench_model(label: str, model: Model, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace,
                work: Path) -> dict[str, Any]:
    n = int(x.shape[0])
    steps = args.timesteps
    n_nb = min(n, args.nb_samples) if args.nb_samples else n
    print(f"\n=== {label}: {n} samples x T={steps}, batch size {args.batch_size}"
          + (f", NeuroBench on the first {n_nb} samples (time EXTRAPOLATED x{n / n_nb:.2f})" if n_nb < n else ""))
    print(f"    model {describe_arch(model.spec if model.spec is not None else model.graph)}")
    warm_up(model, x, steps, args.batch_size, work)
    times: dict[str, list[float]] = {k: [] for k in ("neurobench", "forward", "trace", "replay_nb", "replay_snnsim",
                                                      "trace_event", "replay_nb_event")}
    nb_res: dict[str, float] = {}
    counts_nb = counts_sn = None
    trace_dir = work / f"trace-{label}"
    event_dir = work / f"trace-{label}-event"
    counts_ev = None
    nb_peak = 0.0
    for rep in range(args.reps):
        loads = [load_average()]
        if not args.skip_neurobench:
            gc.collect()
            t0 = time.perf_counter()
            nb_res = run_neurobench(model, x[:n_nb], y[:n_nb], args.batch_size, steps)
            times["neurobench"].append((time.perf_counter() - t0) * n / n_nb)
            nb_peak = max(nb_peak, peak_rss_mib())
        if not args.skip_forward:
            t0 = time.perf_counter()
            plain_forward(model, x, args.batch_size, steps)
            times["forward"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        record_trace(model, x, trace_dir, batch_size=args.batch_size, timesteps=steps, labels=y.numpy(), progress=False)
        times["trace"].append(time.perf_counter() - t0)
        for _ in range(args.replay_reps):
            # Re-costing an existing trace as `estimate --trace` does: load it (schema, meta
            # SHA-256, every file's CRC-32 verified), then replay.
            t0 = time.perf_counter()
            counts_nb = replay(load_trace(trace_dir), model, counting="neurobench", batch_size=args.batch_size,
                               progress=False)
            times["replay_nb"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            counts_sn = replay(load_trace(trace_dir), model, counting="snnsim", progress=False)
            times["replay_snnsim"].append(time.perf_counter() - t0)
        if not args.skip_event:
            t0 = time.perf_counter()
            tr_ev = record_trace(model, x, event_dir, batch_size=args.batch_size, timesteps=steps, labels=y.numpy(),
                                 progress=False, engine="event")
            times["trace_event"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            counts_ev = replay(tr_ev, model, counting="neurobench", batch_size=args.batch_size, progress=False)
            times["replay_nb_event"].append(time.perf_counter() - t0)
        loads.append(load_average())
        print(f"  rep {rep + 1}/{args.reps}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items() if v)
              + f"  (load {loads[0]} -> {loads[1]})")
    assert counts_nb is not None and counts_sn is not None and counts_nb.neurobench is not None
    med = {k: median(v) for k, v in times.items() if v}

    # ---- parity: snnsim's neurobench profile vs NeuroBench itself, on the same spikes: NeuroBench
    # counts its own float32 forward pass at this batch size, so the parity trace records exactly
    # that (exact_currents=False); the default trace's difference to it is printed below
    ok = True
    exact_nb = counts_nb.neurobench.as_dict()
    ours = exact_nb
    if nb_res:
        ours = neurobench_profile(model, x[:n_nb], steps, args.batch_size, work / f"trace-{label}-nb", "torch",
                                  exact_currents=False)
    parity_rows = []
    for k in NB_KEYS:
        theirs = nb_res.get(k)
        if theirs is None:
            parity_rows.append({"metric": k, "NeuroBench": "(skipped)", "snnsim neurobench": f"{ours[k]:,.2f}", "rel diff": "-", "": ""})
            continue
        rel = abs(ours[k] - theirs) / max(1.0, abs(theirs))
        good = rel <= REL_TOL
        ok &= good
        parity_rows.append({"metric": k, "NeuroBench": f"{theirs:,.2f}", "snnsim neurobench": f"{ours[k]:,.2f}",
                            "rel diff": f"{rel:.1e}", "": "OK" if good else "MISMATCH"})
    print("\n  counts per sample (NeuroBench SynapticOperations vs snnsim counting='neurobench'):")
    print("  " + fmt_table(parity_rows).replace("\n", "\n  "))
    if nb_res:
        print(f"  parity: {'OK' if ok else 'MISMATCH'} (relative tolerance {REL_TOL:g}: NeuroBench rounds each call's sum in float32; "
              "snnsim counted a trace of PyTorch's float32 forward pass at the same batch size, NeuroBench's spikes)")
        if n_nb == n:
            diffs = ", ".join(f"{k} {abs(exact_nb[k] - nb_res[k]) / max(1.0, abs(nb_res[k])):.1e}" for k in NB_KEYS
                              if nb_res.get(k) is not None)
            print(f"  the default trace (currents rounded from float64 sums) against NeuroBench: {diffs} "
                  "(the near-threshold spikes that PyTorch's float32 order at this batch size flips)")

    # ---- the event engine: spikes vs PyTorch's, counts vs NeuroBench's
    event_summary: dict[str, Any] = {}
    if counts_ev is not None:
        tr_t, tr_e = load_trace(trace_dir), load_trace(event_dir)
        flips = spike_flips(tr_t, tr_e)
        spikes = total_spikes(tr_t)
        m = min(n, args.flip_ref_samples)
        ref_dir = work / f"trace-{label}-bs1"
        tr_1 = record_trace(model, x[:m], ref_dir, batch_size=1, timesteps=steps, progress=False)
        flips_bs1 = spike_flips(tr_t, tr_1, m)
        flips_ev_m = spike_flips(tr_t, tr_e, m)
        pred_bs1 = int((tr_t.predictions[:m] == tr_1.predictions).sum())
        pred_ev_m = int((tr_t.predictions[:m] == tr_e.predictions[:m]).sum())
        shutil.rmtree(ref_dir, ignore_errors=True)
        ev_nb = counts_ev.neurobench.as_dict()
        if n_nb < n:  # NeuroBench saw only the first n_nb samples: compare on those
            ev_nb = neurobench_profile(model, x[:n_nb], steps, args.batch_size, work / f"trace-{label}-event-nb",
                                       "event")
        print(f"\n  event engine vs PyTorch: {sum(flips):,} of {spikes:,} input spikes differ "
              f"({sum(flips) / max(1, spikes):.2e}); per layer: {flips}")
        pred_agree = int((tr_t.predictions == tr_e.predictions).sum())
        print(f"  predictions equal on {pred_agree} of {n} samples")
        print(f"  reference, PyTorch vs itself at batch size 1 instead of {args.batch_size} (first {m} samples): "
              f"{sum(flips_bs1):,} of {total_spikes(tr_t, m):,} differ, predictions equal on {pred_bs1}; "
              f"event engine on the same samples: {sum(flips_ev_m):,} differ, predictions equal on {pred_ev_m}")
        ev_rows = []
        for k in NB_KEYS:
            theirs = nb_res.get(k)
            rel = abs(ev_nb[k] - theirs) / max(1.0, abs(theirs)) if theirs is not None else float("nan")
            ev_rows.append({"metric": k, "NeuroBench": "(skipped)" if theirs is None else f"{theirs:,.2f}",
                            "snnsim event trace": f"{ev_nb[k]:,.2f}", "rel diff": f"{rel:.1e}"})
        print("  counts per sample, NeuroBench vs snnsim (event-engine trace, neurobench profile):")
        print("  " + fmt_table(ev_rows).replace("\n", "\n  "))
        event_summary = {"flips": flips, "spikes": spikes, "flips_bs1_ref": flips_bs1, "flips_event_ref": flips_ev_m,
                         "ref_samples": m, "pred_agree": pred_agree, "pred_agree_bs1_ref": pred_bs1,
                         "pred_agree_event_ref": pred_ev_m, "counts": ev_nb}

    # ---- snnsim's own numbers, layer by layer
    tot = counts_sn.totals()
    print("\n  snnsim native counts (counting='snnsim') per sample: "
          f"MACs {tot['mac_ops']:,.0f}, ACs {tot['ac_ops']:,.0f}, syn_ops {tot['syn_ops']:,.0f}, "
          f"dense_ops (conventional, incl. padding) {tot['dense_ops']:,.0f}, in-bounds {tot['dense_ops_inbounds']:,.0f}, "
          f"spikes {tot['spikes_out']:,.0f}")
    first = counts_sn.neurons > 0
    rates = counts_sn.per_sample("spikes_out").sum(axis=1)[first] / (counts_sn.neurons[first] * counts_sn.timesteps)
    print("  spike rates per population: " + " ".join(f"{r:.3f}" for r in rates[:-1]))
    print("\n  per layer, per sample, summed over T:")
    print("  " + fmt_table(layer_table(counts_nb, counts_sn)).replace("\n", "\n  "))

    # ---- timings
    trace_replay = med["trace"] + med["replay_nb"]
    rows = []
    def row(name: str, secs: float, note: str = "") -> None:
        r = {"pipeline": name, "median s": f"{secs:.3f}", "per sample ms": f"{1e3 * secs / n:.2f}"}
        if "neurobench" in med:
            r["NeuroBench / this"] = f"{med['neurobench'] / secs:.1f}x"
        r["note"] = note
        rows.append(r)
    if "neurobench" in med:
        row("NeuroBench SynapticOperations", med["neurobench"], "EXTRAPOLATED" if n_nb < n else "")
    if "forward" in med:
        row("plain forward_snn (no counting)", med["forward"], "floor for any live-hook tool")
    row("snnsim trace (record)", med["trace"], "one forward pass + bit-packing to disk")
    row("snnsim replay neurobench", med["replay_nb"], "re-costing an existing trace")
    row("snnsim replay snnsim", med["replay_snnsim"], "re-costing an existing trace")
    row("snnsim trace + replay neurobench", trace_replay, "from scratch")
    if "trace_event" in med:
        row("snnsim trace --engine event (record)", med["trace_event"], "event-driven forward + bit-packing")
        row("snnsim event trace + replay neurobench", med["trace_event"] + med["replay_nb_event"],
            "from scratch, spikes equal to PyTorch's up to float32 rounding flips")
    if "neurobench" in med and "forward" in med:
        # paired per repetition (the pipelines of one repetition ran back to back), then median:
        # a difference of medians is noisy when the trace-forward gap is a few percent
        rr = args.replay_reps
        nb_o, sn_o = [], []
        for i in range(len(times["forward"])):
            rep_replay = median(times["replay_nb"][i * rr:(i + 1) * rr])
            nb_o.append(times["neurobench"][i] - times["forward"][i])
            sn_o.append(times["trace"][i] - times["forward"][i] + rep_replay)
        nb_over, sn_over = median(nb_o), median(sn_o)
        ratio = median([a / b for a, b in zip(nb_o, sn_o, strict=True) if b > 0]) if any(b > 0 for b in sn_o) else float("nan")
        row("counting overhead: NeuroBench - forward", nb_over, "what counting adds to a forward pass")
        rows.append({"pipeline": "counting overhead: snnsim trace - forward + replay", "median s": f"{sn_over:.3f}",
                     "per sample ms": f"{1e3 * sn_over / n:.2f}", "NeuroBench / this": f"{ratio:.1f}x",
                     "note": "median over reps of the paired ratio NB overhead / snnsim overhead"})
    print(f"\n  wall time, median of {args.reps} reps (replay: of {args.reps * args.replay_reps}):")
    print("  " + fmt_table(rows).replace("\n", "\n  "))
    if nb_peak:
        print(f"  peak RSS of this process after NeuroBench: {nb_peak:,.0f} MiB")
    shutil.rmtree(trace_dir, ignore_errors=True)
    shutil.rmtree(event_dir, ignore_errors=True)
    return {"label": label, "samples": n, "nb_samples": n_nb, "timesteps": steps, "batch_size": args.batch_size,
            "reps": args.reps, "times": times, "median": med, "parity_ok": ok, "neurobench": nb_res,
            "snnsim_neurobench": ours, "snnsim_totals": tot, "event": event_summary}


def digits_data(model: Model, n: int, data_dir: str) -> tuple[torch.Tensor, torch.Tensor]:
    from snnsim.data import load_dataset

    bundle = load_dataset(model.dataset_info.get("name") or "digits", data_dir=data_dir, augment=False)
    n = min(n, len(bundle.test))
    xs = torch.stack([torch.as_tensor(bundle.test[i][0]) for i in range(n)]).float()
    ys = torch.tensor([int(bundle.test[i][1]) for i in range(n)], dtype=torch.long)
    return xs, ys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="See benchmarks/README.md.")
    p.add_argument("--samples", type=int, default=1000, help="samples counted (default 1000, the issue's target)")
    p.add_argument("--timesteps", type=int, default=5)
    p.add_argument("--reps", type=int, default=3, help="repetitions of every pipeline (median reported)")
    p.add_argument("--replay-reps", type=int, default=3, help="replays per repetition (replay is cheap)")
    p.add_argument("--batch-size", type=int, default=64, help="NeuroBench DataLoader and trace batch size")
    p.add_argument("--arch", default="vgg16", help="network with random realistic weights (vgg5|vgg9|vgg11|vgg16|"
                   "resnet19|resnet20); 'none' to skip; several comma-separated, one row each")
    p.add_argument("--model", default=None, help="checkpoint for --arch (created and cached at --work-dir if absent)")
    p.add_argument("--digits-model", default=None, help="also bench a trained digits SNN checkpoint on the digits test set")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--nb-samples", type=int, default=0, help="run NeuroBench on only this many samples and extrapolate its time")
    p.add_argument("--skip-neurobench", action="store_true", help="time snnsim only (no parity check)")
    p.add_argument("--skip-forward", action="store_true", help="do not time the plain forward pass")
    p.add_argument("--skip-event", action="store_true", help="do not time the event-driven trace engine")
    p.add_argument("--flip-ref-samples", type=int, default=64,
                   help="samples re-recorded by PyTorch at batch size 1, the float-rounding reference for the event engine")
    p.add_argument("--threads", type=int, default=0,
                   help="torch AND numba threads (default: their own). On a loaded machine use 1: torch's OpenMP "
                        "barriers with 2 threads on 2 busy cores were measured 5-40x slower than 1 thread")
    p.add_argument("--work-dir", default="/tmp/snnsim-bench", help="traces and the cached random VGG checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.threads:
        import numba

        torch.set_num_threads(args.threads)
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    print(describe_machine())
    print(f"command: {' '.join(sys.argv)}")
    results = []
    for arch in ([] if args.arch == "none" else args.arch.split(",")):
        ckpt = Path(args.model) if args.model else work / f"{arch}_T{args.timesteps}_seed{args.seed}_v2.pt"
        t0 = time.perf_counter()
        model = cached_vgg(ckpt, arch, args.timesteps, args.seed, log=print)
        print(f"model {ckpt} ready in {time.perf_counter() - t0:.1f}s")
        shape = tuple(model.input_shape)
        x = cifar_like_inputs(args.samples, seed=args.seed + 1, shape=shape)
        y = torch.arange(args.samples) % model.num_classes
        results.append(bench_model(arch, model, x, y, args, work))
        del model, x
    if args.digits_model:
        from snnsim.checkpoint import load_model

        model = load_model(args.digits_model)
        model.eval()
        x, y = digits_data(model, args.samples, args.data_dir)
        results.append(bench_model(f"digits ({args.digits_model})", model, x, y, args, work))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    bad = [r["label"] for r in results if not r["parity_ok"]]
    print("\nparity: " + ("MISMATCH in " + ", ".join(bad) if bad else "OK for every model"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
