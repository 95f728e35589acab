"""The event-driven forward pass: a model's spike trains computed from its input images by the
simulator's own kernels, without PyTorch.

``snnsim trace --engine event`` (and ``estimate``/``compare --engine event``) record traces with
it. Each population runs :func:`~snnsim.sim.kernels.functional_layer` (or, where several layers or
a bias drive it, their summed currents) in the model's float32 arithmetic, fed by the spikes of
its layers' source populations, so the cost of the forward pass scales with
the number of events instead of the number of synapses. On VGG16 at about 10 % spike rates it
is 2-3x cheaper than PyTorch's dense forward pass on the CPU (``benchmarks/perf_results.md``).

**What it agrees with.** The neuron update is bit-for-bit the model's, in every variant (soft
or hard reset to ``v_reset``, ``>`` or ``>=`` firing, one threshold and leak or one per channel,
and a CubaLIF's synaptic current ``i <- alpha*i + I`` in front of the LIF step:
:func:`snnsim.sim.kernels.lif_step`), on the fused one-layer path and on the summed-currents
path (a residual or biased population) alike; grouped and dilated convs scatter into their
group's channels through their dilated taps. The synaptic currents are
float32 sums in event order (:data:`SUMS`, for speed), while the ``torch`` recorder rounds
each current from its float64 sum (``docs/counting.md``, "Float arithmetic"), so a neuron
whose potential lies within float32 rounding of its threshold can fire in one and not in the
other. This is the same kind of difference PyTorch's float32 convolutions have with
themselves: the same model run with batch size 1 instead of 64 changes 0.09 % of VGG16's
spikes (its convolution picks another algorithm). On the trained digits SNN the two engines
give identical traces; on the benchmark VGG16 the flips are measured in
``benchmarks/perf_results.md``. Use the default ``torch`` engine where a trace must be the
model's exactly (the float replay then finds 0 mismatches); use ``event`` for speed on large
models and many samples.
"""

from __future__ import annotations

import numba
import numpy as np

from snnsim.errors import SnnsimError
from snnsim.models import Model
from snnsim.sim.replay import (
    LayerPlan,
    input_rows,
    layer_plans,
    layer_values,
    run_population,
    source_bits,
)

ENGINES = ("torch", "event")
# Samples run through all layers together: 16 was 10 % faster than 64 on VGG16 (1 thread) and as
# fast with 2 threads (benchmarks/perf_results.md); at least one sample per thread is used.
SUB_BATCH = 16
# The dtype the engine sums synaptic currents in: float32 (float64 sums, as the replay's, would
# halve the scatter's vector width; see replay.FLOAT_SUMS).
SUMS = np.float32


def event_forward(model: Model, x: np.ndarray, steps: int, plans: list[LayerPlan] | None = None,
                  sub_batch: int = SUB_BATCH) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Run ``model`` event by event on normalised inputs ``x`` [n, *input shape] for ``steps`` steps
    (or on one input per timestep, [n, T, *input shape]: frames, or a Poisson model's spikes).

    Returns ``(spikes, logits)``: ``spikes[name]`` is each spiking population's packed spikes
    [n, T, ceil(S/8)] (the trace layout of ``population_XX.npy``), and ``logits`` float32
    [n, classes] the mean over T of the output integrator (as ``GraphNet.forward_snn``).
    Populations run in schedule order, each on the spikes of its layers' sources
    (:func:`snnsim.sim.replay.run_population`). ``plans`` (from :func:`layer_plans`) may be
    passed to reuse their cached weight layouts across calls. Samples run ``sub_batch`` at a
    time through all populations, so one sub-batch's spike maps stay in cache between layers.
    """
    plans = plans if plans is not None else layer_plans(model)
    pops = model.populations
    if not pops or pops[-1].spiking:
        raise SnnsimError(f"model {model.name!r} does not end in a non-spiking output integrator; the event engine "
                          "reads its predictions from one", "end the graph in an Integrator (NIR: I or LI)")
    n = int(x.shape[0])
    per_step = x.ndim == len(model.input_shape) + 2  # one input per timestep: [n, T, *input shape]
    analog = input_rows(x, per_step)
    spikes = {p.name: np.empty((n, steps, (p.neurons + 7) // 8), dtype=np.uint8) for p in pops if p.spiking}
    logits = np.empty((n, pops[-1].neurons), dtype=np.float32)
    step = max(1, int(sub_batch), numba.get_num_threads())  # every thread gets a sample
    for a in range(0, n, step):
        b = min(n, a + step)
        own: dict[str, np.ndarray] = {}
        for pop in pops:
            vals = {}
            for li in pop.layers:
                info = plans[li].info
                vals[li] = layer_values(plans[li], None if info.analog_input else source_bits(info, own),
                                        analog[a:b] if info.analog_input else None, "float", None, SUMS)
            bits, _, _, acc = run_population(pop, plans, vals, steps, "float", model, None, False)
            if pop.spiking:
                spikes[pop.name][a:b] = bits
                own[pop.name] = bits
            else:
                logits[a:b] = acc.astype(np.float32) / np.float32(steps)
    return spikes, logits
