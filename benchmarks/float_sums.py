"""What float64 synaptic sums cost (docs/counting.md, "Float arithmetic"), and what they buy.

``python benchmarks/float_sums.py [--arch vgg16|resnet19] [--samples 64] [--repeats 3]``, or
``--model CKPT.pt`` for a trained digits model on the digits test images.

On a random calibrated network (``benchmarks/common.py``, CIFAR-shaped synthetic input) or the
given model, best of ``--repeats``:

* PyTorch's SNN forward pass with float32 convolutions and with ``exact_currents`` (what
  ``snnsim trace`` records);
* the event engine with float32 and with float64 sums;
* the functional float replay of the recorded trace with float32 and with float64 sums, and
  the spike mismatches of each against the trace.

Also: how many spikes PyTorch's own float32 forward pass at batch size 1 and at the recording
batch size gives differently from the exact trace. Prints one table; RESULTS.md keeps the runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cifar_like_inputs, describe_machine, fmt_table, realistic_vgg, timed  # noqa: E402

import snnsim.sim.engine as engine  # noqa: E402
from snnsim.checkpoint import load_model  # noqa: E402
from snnsim.data import load_dataset  # noqa: E402
from snnsim.recording import record_trace  # noqa: E402

replay = importlib.import_module("snnsim.sim.replay")  # the module (snnsim.sim exports a function of that name)


def _spikes(model, x: torch.Tensor, batch: int, exact: bool) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Every spiking population's spikes [n, T, S] (bool) from PyTorch at batch size ``batch``."""
    out: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for a in range(0, x.shape[0], batch):
            steps: dict[str, list[np.ndarray]] = {}

            def obs(ev, steps=steps) -> None:  # type: ignore[no-untyped-def]
                if ev.spikes is not None:
                    steps.setdefault(ev.node, []).append((ev.spikes != 0).reshape(ev.spikes.shape[0], -1).numpy())

            model.forward_snn(x[a:a + batch], model.timesteps, obs, exact)
            for name, per_t in steps.items():
                out.setdefault(name, []).append(np.stack(per_t, axis=1))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def _flips(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> int:
    return int(sum((a[k] != b[k]).sum() for k in a))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="vgg16")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default=None, help="a trained digits checkpoint (then --samples of the digits test set)")
    args = ap.parse_args()
    print(describe_machine())
    if args.model:
        test = load_dataset("digits").test
        model = load_model(args.model)
        x = torch.stack([test[i][0] for i in range(min(args.samples, len(test)))])
        args.arch = args.model
    else:
        model = realistic_vgg(args.arch)
        x = cifar_like_inputs(args.samples, seed=1)
    steps = model.timesteps
    rows = []

    def best(fn):  # type: ignore[no-untyped-def]
        times, result = [], None
        for _ in range(args.repeats):
            t, result = timed(fn)
            times.append(t)
        return min(times), result

    with torch.no_grad():
        t32, _ = best(lambda: model.forward_snn(x, steps))
        t64, _ = best(lambda: model.forward_snn(x, steps, None, True))
    rows.append({"step": "PyTorch forward_snn", "float32 sums (s)": f"{t32:.2f}", "float64 sums (s)": f"{t64:.2f}",
                 "ratio": f"{t64 / t32:.2f}"})

    plans = replay.layer_plans(model)
    xs = x.numpy()
    engine.SUMS = np.float32
    e32, _ = best(lambda: engine.event_forward(model, xs, steps, plans))
    engine.SUMS = np.float64
    e64, _ = best(lambda: engine.event_forward(model, xs, steps, plans))
    engine.SUMS = np.float32
    rows.append({"step": "event engine", "float32 sums (s)": f"{e32:.2f}", "float64 sums (s)": f"{e64:.2f}",
                 "ratio": f"{e64 / e32:.2f}"})

    trace = record_trace(model, x, tempfile.mkdtemp() + "/t", progress=False)
    mism = {}
    times = {}
    for sums in (np.float32, np.float64):
        replay.FLOAT_SUMS = sums
        times[sums], res = best(lambda: replay.replay(trace, model, functional="float"))
        mism[sums] = int(res.functional.spike_mismatches.sum())
    replay.FLOAT_SUMS = np.float64
    rows.append({"step": "functional float replay", "float32 sums (s)": f"{times[np.float32]:.2f}",
                 "float64 sums (s)": f"{times[np.float64]:.2f}", "ratio": f"{times[np.float64] / times[np.float32]:.2f}"})
    print(fmt_table(rows))

    total = int(res.functional.recorded_spikes.sum())
    batch = min(64, x.shape[0])  # record_trace's batch size
    exact = _spikes(model, x, batch, True)
    print(f"\nspikes in the trace: {total:,} ({args.arch}, {args.samples} samples, T={steps})")
    print(f"float replay mismatches against the trace: float32 sums {mism[np.float32]:,}, "
          f"float64 sums {mism[np.float64]:,}")
    for b in (1, batch):
        print(f"PyTorch float32 convolutions at batch size {b}: {_flips(_spikes(model, x, b, False), exact):,} "
              "spikes differ from the trace")
    print(f"PyTorch exact currents at batch size 1: {_flips(_spikes(model, x, 1, True), exact):,} spikes differ")
    events, _ = engine.event_forward(model, xs, steps, plans)
    unpacked = {name: np.unpackbits(bits, axis=2, count=exact[name].shape[2]).astype(bool)
                for name, bits in events.items()}
    print(f"event engine (float32 sums): {_flips(unpacked, exact):,} spikes differ from the trace")


if __name__ == "__main__":
    main()
