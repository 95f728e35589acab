"""Integer replay against the PyTorch integer reference, potential by potential, on all 360 digits
test images: ``python benchmarks/integer_checks.py MODEL.pt`` (a quantized digits model; see
benchmarks/RESULTS.md, "Seventh session")."""

from __future__ import annotations

import sys
import tempfile

import numpy as np
import torch

from snnsim.checkpoint import load_model
from snnsim.data import load_dataset
from snnsim.recording import record_trace
from snnsim.sim.integer import integer_forward, integer_spec
from snnsim.sim.replay import layer_plans, simulate_chunk


def main(path: str) -> None:
    model = load_model(path)
    test = load_dataset("digits").test
    x = torch.stack([test[i][0] for i in range(len(test))])
    labels = np.array([int(test[i][1]) for i in range(len(test))])
    trace = record_trace(model, x, tempfile.mkdtemp() + "/t", progress=False)
    steps = model.timesteps
    spec = integer_spec(model, input_absmax=trace.meta["input"]["absmax"], timesteps=steps)
    ref: dict[tuple[str, int], torch.Tensor] = {}

    def observe(ev) -> None:  # type: ignore[no-untyped-def]
        ref[(ev.node, ev.t)] = ev.potential.clone()

    acc = integer_forward(model, x, spec, steps, observe)
    res = simulate_chunk(layer_plans(model), next(trace.iter_chunks(len(x))), steps, "integer", "chained", model, spec,
                         keep_potentials=True)
    assert res.potentials is not None
    differ = total = 0
    for pop in model.populations:
        for t in range(steps):
            ours = res.potentials[pop.primary][:, t]
            theirs = ref[(pop.name, t)].reshape(len(x), -1).numpy()
            differ += int((ours != theirs).sum())
            total += ours.size
    print(f"{path}: {differ} of {total} potentials differ; outputs equal {bool((res.acc == acc.numpy()).all())}; "
          f"integer accuracy {(acc.numpy().argmax(axis=1) == labels).mean():.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
