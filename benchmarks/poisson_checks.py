"""Poisson-trace checks of benchmarks/RESULTS.md ("Seventh session").

Usage: ``python benchmarks/poisson_checks.py <demo out>/poisson`` (after ``snnsim demo --encoding
both``). For each of the Poisson pipeline's models, on all 360 digits test images (encoder seed
0): the first layer's MACs and ACs against an independent count (``counts_ref``: dense PyTorch
convolutions of the recorded input spikes), the float replay's spike mismatches against the
PyTorch trace, and for the quantized model the integer replay's potentials against the PyTorch
integer reference.
"""

from __future__ import annotations

import sys
import tempfile

import numpy as np
import torch

from snnsim.checkpoint import load_model
from snnsim.data import load_dataset
from snnsim.recording import record_trace
from snnsim.sim.integer import integer_forward, integer_spec
from snnsim.sim.reference import counts_ref
from snnsim.sim.replay import layer_plans, replay, simulate_chunk

MODELS = ("unpruned_T10", "pruned_T10", "pruned_T2", "pruned_T2_5bit")


def main(root: str) -> None:
    bundle = load_dataset("digits")
    x = torch.stack([bundle.test[i][0] for i in range(len(bundle.test))])
    y = np.array([int(bundle.test[i][1]) for i in range(len(bundle.test))])
    work = tempfile.mkdtemp()
    for name in MODELS:
        model = load_model(f"{root}/models/{name}.pt")
        trace = record_trace(model, x, f"{work}/{name}", labels=y, progress=False, seed=0)
        counts = replay(trace, model, functional="float", progress=False)
        spikes = np.asarray(trace.analog_input())
        n, steps = spikes.shape[:2]
        info = model.layer_infos[0]
        ref = counts_ref(info, model[info.name].weight, spikes.reshape(n * steps, *info.source_shape), analog=True)
        f = counts.functional
        print(f"{name}: T={steps} accuracy {(trace.predictions == y).mean():.4f}; float replay "
              f"{int(f.spike_mismatches.sum())} of {int(f.recorded_spikes.sum())} spikes differ; first layer MACs "
              f"{int(counts.mac_ops[0].sum())}, ACs {int(counts.syn_ops[0].sum())} (independent count "
              f"{int(ref['syn'].sum())}), input spikes {int(np.abs(spikes).sum())}")
        if not model.quantization:
            continue
        spec = integer_spec(model, input_scale=1.0, timesteps=steps)
        potentials: dict[tuple[int, int], torch.Tensor] = {}

        def observe(ev, store: dict[tuple[int, int], torch.Tensor] = potentials) -> None:  # type: ignore[no-untyped-def]
            store[(ev.index, ev.t)] = ev.potential.clone()  # a chain: population k is driven by layer k

        acc = integer_forward(model, torch.from_numpy(spikes.astype(np.float32)), spec, steps, observe)
        res = simulate_chunk(layer_plans(model), next(trace.iter_chunks(n)), steps, "integer", "chained", model, spec,
                             keep_potentials=True)
        assert res.potentials is not None
        differ = total = 0
        for li in range(model.num_layers):
            for t in range(steps):
                ours, theirs = res.potentials[li][:, t], potentials[(li, t)].reshape(n, -1).numpy()
                differ += int((ours != theirs).sum())
                total += ours.size
        integer = replay(trace, model, functional="integer", progress=False)
        print(f"  integer replay: {differ} of {total} potentials differ; outputs equal: "
              f"{bool((res.acc == acc.numpy()).all())}; integer accuracy {integer.functional.correct / len(y):.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
