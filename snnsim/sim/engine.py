"""The event-driven forward pass: a model's spike trains computed from its input images by the
simulator's own kernels, without PyTorch.

``snnsim trace --engine event`` (and ``estimate``/``compare --engine event``) record traces with
it. Each layer runs :func:`~snnsim.sim.kernels.functional_layer` in the model's float32
arithmetic, fed by the previous layer's spikes, so the cost of the forward pass scales with
the number of events instead of the number of synapses. On VGG16 at about 10 % spike rates it
is 2-3x cheaper than PyTorch's dense forward pass on the CPU (``benchmarks/perf_results.md``).

**What it agrees with.** The LIF update is bit-for-bit the model's. The synaptic currents are
float32 sums in event order, while PyTorch sums in its convolution algorithm's order, so a
neuron whose potential lies within float32 rounding of its threshold can fire in one and not
in the other. This is the same kind of difference PyTorch has with itself: the same model run
with batch size 1 instead of 64 changes 0.09 % of VGG16's spikes (its convolution picks
another algorithm). On the trained digits SNN the two engines give identical traces; on the
benchmark VGG16 the flips are measured in ``benchmarks/perf_results.md``. Use the default
``torch`` engine where a trace must equal a PyTorch run bit for bit (counts equal to
NeuroBench's on the same inputs); use ``event`` for speed on large models and many samples.
"""

from __future__ import annotations

import numba
import numpy as np

from snnsim.models import SpikingNet
from snnsim.sim.replay import LayerPlan, layer_plans, layer_values, run_layer
from snnsim.trace import packed_bytes

ENGINES = ("torch", "event")
# Samples run through all layers together: 16 was 10 % faster than 64 on VGG16 (1 thread) and as
# fast with 2 threads (benchmarks/perf_results.md); at least one sample per thread is used.
SUB_BATCH = 16


def event_forward(model: SpikingNet, x: np.ndarray, steps: int, plans: list[LayerPlan] | None = None,
                  sub_batch: int = SUB_BATCH) -> tuple[list[np.ndarray], np.ndarray]:
    """Run ``model`` event by event on normalised images ``x`` [n, C, H, W] for ``steps`` steps.

    Returns ``(events, logits)``: ``events[i - 1]`` is layer ``i``'s packed input spikes
    [n, T, ceil(S/8)] (the trace layout of ``layer_XX.npy``) for every layer ``i >= 1``, and
    ``logits`` float32 [n, classes] the mean over T of the output layer's current (as
    ``SpikingNet.forward_snn``). ``plans`` (from :func:`layer_plans`) may be passed to reuse
    their cached weight layouts across calls. Samples run ``sub_batch`` at a time through all
    layers, so one sub-batch's spike maps stay in cache between layers.
    """
    plans = plans if plans is not None else layer_plans(model)
    if not plans or plans[-1].info.spiking:
        raise ValueError("the model must end in a non-spiking output layer")
    n = int(x.shape[0])
    analog = np.ascontiguousarray(x, dtype=np.float32).reshape(n, -1)
    events = [np.empty((n, steps, packed_bytes(p.info)), dtype=np.uint8) for p in plans[1:]]
    logits = np.empty((n, plans[-1].info.neurons), dtype=np.float32)
    step = max(1, int(sub_batch), numba.get_num_threads())  # every thread gets a sample
    for a in range(0, n, step):
        b = min(n, a + step)
        prev: np.ndarray | None = None
        for li, plan in enumerate(plans):
            vals = layer_values(plan, prev, analog[a:b] if li == 0 else None, "float", None)
            bits, _, _, acc = run_layer(plan, li, vals, steps, "float", model)
            if plan.info.spiking:
                events[li][a:b] = bits
                prev = bits
            else:
                logits[a:b] = acc.astype(np.float32) / np.float32(steps)
    return events, logits
