"""Replay a spike trace through the event-driven simulator -> :class:`SimCounts`.

``replay(trace, model)`` walks the trace in sample chunks, population by population, and counts
for every layer (a synapse edge: conv, linear or a residual identity shortcut) and timestep
(summed over samples) the fields of the ``SimCounts`` contract
(``docs/ARCHITECTURE.md``; conventions in ``docs/counting.md``). Counting uses per-layer fan-out
maps (a spike's synapse count depends only on its position), so it is one pass over the packed
bits per layer and timestep, exact at borders, with average pooling folded (each spike drives
its pooled site's synapses: ACs) and max pooling as an OR.

``functional='float'`` (or ``True``) also *runs* the network event by event: every input event
scatters its weight column into the output potentials, then leak, threshold and reset (soft or hard), in
the model's float32 arithmetic, with each step's synaptic current summed in float64 and rounded once
(:data:`FLOAT_SUMS`), as the trace recorder computes it; a population driven by several layers (a residual add)
integrates the sum of their currents (and biases). By default each layer is driven by the
*recorded* spikes of its source population and each population's spikes are compared with its
recorded spikes (0 mismatches on a trace of the torch engine; on a trace whose currents were float32 sums,
near-threshold rounding flips, and the result says so); the output integrator's
accumulations give the predictions and the accuracy. Population figures (spikes, neurons,
membrane updates, mismatches) sit on the row of the population's first layer; the other layers
driving it carry their synaptic counts only (``docs/counting.md``). ``functional='integer'`` runs the quantized model in exact
integer arithmetic (:mod:`snnsim.sim.integer`), by default *chained* (each layer driven by the
simulator's own spikes, as integer hardware would run), and reports its accuracy and how far
its spikes diverge from the float trace.

``counting='neurobench'`` reproduces NeuroBench 2.3's SynapticOperations instead
(:mod:`snnsim.sim.neurobench`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from snnsim.arch import LayerInfo, PopulationInfo, primary_layers
from snnsim.errors import SnnsimError, TraceError
from snnsim.models import Model
from snnsim.sim import kernels as K
from snnsim.sim.integer import IntegerLayer, IntegerSpec, float_logits, integer_spec
from snnsim.sim.neurobench import NeuroBenchCounts, aggregate, inbounds_connections
from snnsim.trace import Trace, TraceChunk, check_trace_matches, load_trace

COUNTINGS = ("snnsim", "neurobench")
FUNCTIONAL_MODES = ("float", "integer")
DRIVES = ("recorded", "chained")
_POOL_MODES = {None: 0, "avg": 1, "max": 2, "sum": 3}
_CHUNK_BUDGET = 128 << 20  # bytes of working memory a chunk may use
# Layers whose scatter weights exceed this are run with every timestep's events in one pass, so
# their weights are read once per sample instead of once per timestep (VGG16's fc layers: 4-20 %
# faster; no difference for layers whose weights stay in cache; benchmarks/perf_results.md).
ALL_STEPS_WEIGHT_BYTES = 8 << 20
# The functional float replay sums each step's synaptic current in float64 (float32 site values
# and weights, so every product is exact) and rounds it to float32 once: the currents of
# ``GraphNet.forward_snn(exact_currents=True)``, which records traces, whatever order either
# side sums in. The event engine passes float32 (docs/counting.md, "Float arithmetic").
FLOAT_SUMS = np.float64


# ---------------------------------------------------------------------------- results
@dataclass
class FunctionalResult:
    """What the functional (value-level) replay found."""

    mode: str  # 'float' | 'integer'
    drive: str  # 'recorded' | 'chained'
    predictions: np.ndarray  # [N] int64
    logits: np.ndarray  # [N, classes] float64 (integer mode: acc * unit / T)
    correct: int | None  # against the trace's labels
    agree_recorded: int  # predictions equal to the recorded model's
    spike_mismatches: np.ndarray  # [L, T] int64: simulated spikes != recorded (on each population's first layer)
    recorded_spikes: np.ndarray  # [L, T] int64: recorded spikes (the denominators; same rows)
    max_logit_error: float  # max |logits - recorded logits| (float mode; integer: vs float logits)
    membrane_updates: np.ndarray  # [L, T] int64: NeuroBench rule (all at t=0, then changed)
    integer: dict[str, Any] | None = None  # IntegerSpec.describe() in integer mode
    note: str = ""  # said after the summary (why float mismatches are expected)

    @property
    def samples(self) -> int:
        return int(self.predictions.shape[0])

    @property
    def accuracy(self) -> float | None:
        return None if self.correct is None else self.correct / max(1, self.samples)

    def summary(self) -> str:
        """One line: mode, accuracy, agreement, spike mismatches."""
        acc = "n/a" if self.accuracy is None else f"{100 * self.accuracy:.2f}%"
        mism = int(self.spike_mismatches.sum())
        tot = int(self.recorded_spikes.sum())
        return (f"functional {self.mode} ({self.drive}): accuracy {acc}, predictions equal to the recorded model "
                f"{self.agree_recorded}/{self.samples}, spike mismatches {mism} of {tot} recorded spikes, "
                f"max |logit error| {self.max_logit_error:.3g}") + (f" ({self.note})" if self.note else "")


@dataclass
class SimCounts:
    """Event counts of a replay (contract in docs/ARCHITECTURE.md; conventions docs/counting.md).

    [L, T] arrays are summed over samples; divide by ``samples`` for per-sample figures.
    Extras beyond the contract: ``counting`` (the profile), ``mac_ops``/``ac_ops`` (``syn_ops``
    split by operation kind: snnsim puts the analog layer's ops in MACs and all others in ACs;
    neurobench splits per call as NeuroBench does), ``neurobench`` (NeuroBench's per-sample
    figures), ``functional`` (functional-mode results), ``model_fingerprint`` and
    ``state_variables`` ([L]: the state variables per neuron of each layer's target population,
    1 for LIF / IF / the integrator, 2 for a CubaLIF (potential and synaptic current); the cost
    model charges the neuron-state traffic of every update per state variable; None = all 1).
    """

    layers: list[LayerInfo]
    samples: int
    timesteps: int
    input_events: np.ndarray
    syn_ops: np.ndarray
    syn_ops_nz: np.ndarray
    touched_neurons: np.ndarray
    spikes_out: np.ndarray
    dense_ops: np.ndarray
    dense_ops_inbounds: np.ndarray
    neurons: np.ndarray
    analog: np.ndarray
    correct: int | None = None
    counting: str = "snnsim"
    mac_ops: np.ndarray | None = None
    ac_ops: np.ndarray | None = None
    neurobench: NeuroBenchCounts | None = None
    functional: FunctionalResult | None = None
    model_fingerprint: str | None = None
    state_variables: np.ndarray | None = None
    input_kind: str = "analog"  # what the first layer read: analog | frames | spikes (snnsim.cost.INPUT_KINDS)

    PER_T_FIELDS = ("input_events", "syn_ops", "syn_ops_nz", "touched_neurons", "spikes_out")

    def per_sample(self, name: str) -> np.ndarray:
        """A [L, T] field divided by the number of samples."""
        return np.asarray(getattr(self, name), dtype=np.float64) / max(1, self.samples)

    def layer_totals(self, name: str) -> np.ndarray:
        """A [L, T] field per sample, summed over timesteps -> [L]."""
        return self.per_sample(name).sum(axis=1)

    def totals(self) -> dict[str, float]:
        """Per-sample totals over layers and timesteps, plus the dense references x T."""
        out = {f: float(self.per_sample(f).sum()) for f in self.PER_T_FIELDS}
        out["dense_ops"] = float(self.dense_ops.sum() * self.timesteps)
        out["dense_ops_inbounds"] = float(self.dense_ops_inbounds.sum() * self.timesteps)
        if self.mac_ops is not None and self.ac_ops is not None:
            out["mac_ops"] = float(self.mac_ops.sum() / max(1, self.samples))
            out["ac_ops"] = float(self.ac_ops.sum() / max(1, self.samples))
        return out

    def to_frame(self) -> Any:
        """Long table, one row per (layer, timestep), counts per sample (pandas DataFrame)."""
        import pandas as pd

        rows = []
        for li, info in enumerate(self.layers):
            for t in range(self.timesteps):
                row: dict[str, Any] = {"layer": info.name, "index": li, "t": t, "analog": bool(self.analog[li])}
                for f in self.PER_T_FIELDS:
                    row[f] = float(getattr(self, f)[li, t]) / max(1, self.samples)
                if self.mac_ops is not None and self.ac_ops is not None:
                    row["mac_ops"] = float(self.mac_ops[li, t]) / max(1, self.samples)
                    row["ac_ops"] = float(self.ac_ops[li, t]) / max(1, self.samples)
                row["dense_ops"] = float(self.dense_ops[li])
                row["dense_ops_inbounds"] = float(self.dense_ops_inbounds[li])
                row["neurons"] = int(self.neurons[li])
                rows.append(row)
        return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- layer plans
@dataclass
class LayerPlan:
    """Everything the kernels need about one layer: geometry, fan-out maps, weights."""

    info: LayerInfo
    c: int
    h: int
    w: int  # source dims (a 1-D source (F,) is (F, 1, 1))
    pool_mode: int
    k: int
    cp: int
    hp: int
    wp: int  # pooled dims (what the synapses read)
    is_conv: bool
    c_out: int
    h_out: int
    w_out: int
    ksize: int
    stride: int
    padding: int
    fan: np.ndarray  # int64 [cp*hp*wp]
    fan_nz: np.ndarray
    weight: np.ndarray = field(repr=False)  # float32, torch layout (empty for an identity edge)
    bias: np.ndarray | None = field(default=None, repr=False)  # float32 [C_out] or None
    _scatter_cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_out(self) -> int:
        """C_out for a conv, out_features for a linear layer (the touched-neuron multiplier)."""
        return self.c_out

    @property
    def groups(self) -> int:
        """The conv's groups (1 for every other layer)."""
        return self.info.groups if self.is_conv else 1

    @property
    def dilation(self) -> int:
        """The conv's dilation (1 for every other layer)."""
        return self.info.dilation if self.is_conv else 1

    @property
    def dense_inbounds(self) -> int:
        return int(self.fan.sum())

    def transposed(self, weight: np.ndarray) -> np.ndarray:
        """Weights in the scatter layout: (C_in, k, k, C_out / groups) for conv (input channel
        ``c``'s taps hold the weights to its group's output channels), (in, out) for linear."""
        if self.is_conv:
            if self.groups == 1:
                return np.ascontiguousarray(weight.transpose(1, 2, 3, 0)).reshape(-1)
            g, k = self.groups, self.ksize
            # (C_out, C_in/g, k, k) -> (g, C_out/g, C_in/g, k, k) -> (g, C_in/g, k, k, C_out/g)
            per_group = weight.reshape(g, self.c_out // g, self.cp // g, k, k)
            return np.ascontiguousarray(per_group.transpose(0, 2, 3, 4, 1)).reshape(-1)
        # torch's blocked transpose: 0.05 s for VGG16's 4096x4096 layer, numpy's 0.15 s
        return torch.from_numpy(np.ascontiguousarray(weight)).t().contiguous().numpy().reshape(-1)

    def scatter_weights(self, key: str, weight: np.ndarray) -> np.ndarray:
        """:meth:`transposed` computed once per plan and ``key`` ('float' | 'integer'), not per
        chunk: VGG16's 4096x4096 transpose alone costs ~0.2 s."""
        wt = self._scatter_cache.get(key)
        if wt is None:
            wt = self._scatter_cache[key] = self.transposed(weight)
        return wt


def plan_for(info: LayerInfo, weight: np.ndarray | None, bias: np.ndarray | None = None) -> LayerPlan:
    """The plan of one layer with weights ``weight`` (torch layout, any float dtype; None for an
    identity edge) and ``bias`` (or None)."""
    src = tuple(info.source_shape)
    c, h, w = (src[0], 1, 1) if len(src) == 1 else (src[0], src[1], 1) if len(src) == 2 else src[:3]
    if info.kind == "identity":  # each spike adds 1 to the neuron at its own position
        ones = np.ones(c * h * w, dtype=np.int64)
        return LayerPlan(info, c, h, w, 0, 1, c, h, w, False, c * h * w, 1, 1, 1, 1, 0, ones, ones.copy(),
                         np.zeros(0, dtype=np.float32))
    assert weight is not None
    k = info.pool_kernel if info.pool else 1
    cp, hp, wp = c, h // k, w // k
    weight = np.asarray(weight, dtype=np.float32)
    if tuple(weight.shape) != tuple(info.weight_shape()):
        raise SnnsimError(f"layer {info.name}: weight shape {tuple(weight.shape)} does not match {info.weight_shape()}")
    nz = weight != 0
    if info.kind == "conv":
        c_out, h_out, w_out = info.out_shape
        if (cp, hp, wp) != tuple(info.in_shape):
            raise SnnsimError(f"layer {info.name}: pooled source {(cp, hp, wp)} does not match its input {info.in_shape}")
        g, ks = info.groups, info.kernel
        # an event at input channel c drives the C_out / groups output channels of its group
        full = np.full((cp, ks, ks), c_out // g, dtype=np.int64)
        cnt = nz.reshape(g, c_out // g, cp // g, ks, ks).sum(axis=1).reshape(cp, ks, ks).astype(np.int64)
        fan = K.conv_fanout(full, hp, wp, h_out, w_out, info.stride, info.padding, info.dilation)
        fan_nz = K.conv_fanout(cnt, hp, wp, h_out, w_out, info.stride, info.padding, info.dilation)
        return LayerPlan(info, c, h, w, _POOL_MODES[info.pool], k, cp, hp, wp, True, c_out, h_out, w_out,
                         info.kernel, info.stride, info.padding, fan, fan_nz, weight, _bias(info, bias))
    n_in = cp * hp * wp
    if n_in != info.in_features:
        raise SnnsimError(f"layer {info.name}: pooled source has {n_in} sites but {info.in_features} inputs")
    fan = np.full(n_in, info.out_features, dtype=np.int64)
    fan_nz = nz.sum(axis=0).astype(np.int64)
    return LayerPlan(info, c, h, w, _POOL_MODES[info.pool], k, cp, hp, wp, False, info.out_features, 1, 1,
                     1, 1, 0, fan, fan_nz, weight, _bias(info, bias))


def _bias(info: LayerInfo, bias: np.ndarray | None) -> np.ndarray | None:
    if not info.bias:
        return None
    if bias is None or tuple(np.shape(bias)) != (info.out_features,):
        raise SnnsimError(f"layer {info.name}: needs a bias of shape ({info.out_features},)")
    return np.ascontiguousarray(bias, dtype=np.float32)


def layer_plans(model: Model) -> list[LayerPlan]:
    """Build the per-layer plans (fan-out maps with and without zero weights) of ``model``."""
    model.check_simulable()
    plans = []
    for info, syn in zip(model.layer_infos, model.synapses, strict=True):
        if syn is None:
            plans.append(plan_for(info, None))
            continue
        bias = None if syn.bias is None else syn.bias.detach().cpu().numpy()
        plans.append(plan_for(info, syn.weight.detach().cpu().numpy(), bias))
    return plans


# ---------------------------------------------------------------------------- chunk simulation
@dataclass
class ChunkResult:
    """Per-sample results of one chunk (arrays indexed [n, L, T] unless noted)."""

    counts: np.ndarray  # int64 [n, L, T, N_COLS]
    spikes_out: np.ndarray  # int64 [n, L, T]
    mismatches: np.ndarray | None = None  # int64 [n, L, T]
    changed: np.ndarray | None = None  # int64 [n, L, T]
    acc: np.ndarray | None = None  # [n, classes] (float32 or int64)
    out_bits: list[np.ndarray | None] | None = None  # per layer [n, T, nbytes] (spiking layers)
    potentials: list[np.ndarray] | None = None  # per layer [n, T, neurons] before reset


def input_rows(x: np.ndarray, per_step: bool) -> np.ndarray:
    """The network input as the first synapses read it: float32 [n, Tv, S] (S the flattened
    input), Tv = 1 for an input fed at every timestep, T for one input per timestep."""
    n = x.shape[0]
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(n, x.shape[1] if per_step else 1, -1))


def _count_identity(bits: np.ndarray | None, analog: np.ndarray | None, steps: int) -> np.ndarray:
    """Counts [n, T, N_COLS] of an identity edge: every event is one op on one neuron."""
    if analog is not None:  # input rows [n, Tv, S]
        per = np.broadcast_to((analog != 0).sum(axis=2), (analog.shape[0], steps)).astype(np.int64)
        binary = np.isin(analog, (-1.0, 0.0, 1.0)).all(axis=2)
        bin_col = np.broadcast_to(binary, (analog.shape[0], steps)).astype(np.int64)
    else:
        assert bits is not None
        per = K.popcount_packed(np.ascontiguousarray(bits))
        bin_col = np.ones_like(per)
    out = np.zeros((*per.shape, K.N_COLS), dtype=np.int64)
    for col in (K.COL_EVENTS, K.COL_SYN, K.COL_SYN_NZ, K.COL_TOUCHED, K.COL_SITES):
        out[..., col] = per
    # NeuroBench counts no adds (it hooks Conv / Linear modules only): 0 effective ops
    out[..., K.COL_NB_BINARY] = bin_col
    return out


def source_bits(info: LayerInfo, table: dict[str, np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """The packed spikes a layer reads from ``table`` (population -> [n, T, nbytes]): its
    source's, or for a sum of populations (a SEW add, ``info.parts``) the list of theirs."""
    return [table[p] for p in info.parts] if info.parts else table[info.source]


def graded_sites(plan: LayerPlan, parts: list[np.ndarray]) -> np.ndarray:
    """int64 [n, T, S]: the summed spikes of several populations per pooled site (the
    multiplicity of a SEW add, before any average pooling's division)."""
    total = None
    for bits in parts:
        m = K.site_values(np.ascontiguousarray(bits), plan.c, plan.h, plan.w, plan.pool_mode, plan.k, np.int64)
        total = m if total is None else total + m
    assert total is not None
    return total


def _count_graded(plan: LayerPlan, parts: list[np.ndarray], steps: int) -> np.ndarray:
    """Counts of a layer reading a sum of populations' spikes: every part's spike is an event
    (events and synaptic ops add up over the parts), while touched neurons, nonzero sites and
    NeuroBench's effective ops are those of the union (a site reached by two spikes is one
    nonzero input), and NeuroBench's binary flag is that of the summed values."""
    out = sum(_count_layer(plan, bits, None, steps) for bits in parts)
    assert isinstance(out, np.ndarray)
    union = parts[0].copy()
    for bits in parts[1:]:
        union |= bits
    either = _count_layer(plan, union, None, steps)
    for col in (K.COL_TOUCHED, K.COL_SITES, K.COL_NB_EFF):
        out[..., col] = either[..., col]
    m = graded_sites(plan, parts)
    one = plan.k * plan.k if plan.pool_mode == 1 else 1  # avg pooling reads m / k^2: binary at m = k^2
    out[..., K.COL_NB_BINARY] = ((m == 0) | (m == one)).all(axis=2)
    return out


def _count_layer(plan: LayerPlan, bits: np.ndarray | list[np.ndarray] | None, analog: np.ndarray | None,
                 steps: int) -> np.ndarray:
    """Counts [n, T, N_COLS] of one layer from packed bits (a list of them for a sum of
    populations), or from the input rows [n, Tv, S] of :func:`input_rows` (counted once and
    repeated when Tv = 1, step by step otherwise)."""
    if isinstance(bits, list):
        return _count_graded(plan, bits, steps)
    if plan.info.kind == "identity":
        return _count_identity(bits, analog, steps)
    if analog is not None:
        per_t = [K.count_analog_layer(np.ascontiguousarray(analog[:, t]), plan.h, plan.w, plan.fan, plan.fan_nz,
                                      plan.is_conv, plan.h_out, plan.w_out, plan.ksize, plan.stride, plan.padding,
                                      plan.n_out, plan.groups, plan.dilation) for t in range(analog.shape[1])]
        if len(per_t) == 1:
            return np.repeat(per_t[0][:, None, :], steps, axis=1)
        return np.stack(per_t[:steps], axis=1)
    assert bits is not None
    return K.count_packed_layer(np.ascontiguousarray(bits), plan.c, plan.h, plan.w, plan.pool_mode, plan.k,
                                plan.fan, plan.fan_nz, plan.is_conv, plan.h_out, plan.w_out, plan.ksize,
                                plan.stride, plan.padding, plan.n_out, plan.groups, plan.dilation)


def layer_values(plan: LayerPlan, bits: np.ndarray | list[np.ndarray] | None, analog: np.ndarray | None, mode: str,
                 ispec: IntegerSpec | None, sums: type | None = None) -> np.ndarray:
    """Values the synapses read, [n, Tv, S]: the float32 values (float mode) held in ``sums``,
    the dtype the float kernels accumulate the synaptic currents in (float64: each step's
    current is rounded to float32 once, :data:`FLOAT_SUMS`; float32: float32 sums, the event
    engine's), or int64 (integer mode). ``analog`` is the input rows of :func:`input_rows`;
    ``bits`` a list for a sum of populations (the summed multiplicity, divided once by k^2
    under average pooling, as PyTorch's avg_pool2d of the summed spikes). ``sums`` None:
    :data:`FLOAT_SUMS`."""
    sums = FLOAT_SUMS if sums is None else sums
    if isinstance(bits, list):
        m = graded_sites(plan, bits)
        if mode == "integer":
            return m
        div = np.float32(plan.k * plan.k) if plan.pool_mode == 1 else np.float32(1.0)
        return np.ascontiguousarray((m.astype(np.float32) / div).astype(sums, copy=False))
    if analog is not None:
        x = analog
        if mode == "integer":
            assert ispec is not None
            return ispec.quantize_input_np(x)
        return np.ascontiguousarray(x.astype(sums, copy=False))
    assert bits is not None
    packed = np.ascontiguousarray(bits)
    if mode == "integer":
        return K.site_values(packed, plan.c, plan.h, plan.w, plan.pool_mode, plan.k, np.int64)
    # avg_pool2d: sum / k^2 in float32, as torch (one float32 division; / 1 elsewhere is exact)
    div = np.float32(plan.k * plan.k) if plan.pool_mode == 1 else np.float32(1.0)
    vals = K.site_values(packed, plan.c, plan.h, plan.w, plan.pool_mode, plan.k, np.float32, div)
    return vals.astype(sums, copy=False)


def _float_neuron(model: Model, pop: PopulationInfo, layout: str) -> tuple[Any, ...]:
    """A population's neuron model as the float kernels take it (:func:`kernels.lif_step`):
    ``(leak, theta, v_reset, fire_ge, alpha)`` for every LIF / IF / CubaLIF variant (``alpha``
    the CubaLIF's synaptic decay, laid out as the leak; None for the others). ``layout`` ``'chw'`` (the
    order of :func:`kernels.population_steps`) or ``'hwc'`` (a conv's order inside
    :func:`kernels.functional_layer`): leak and threshold are float32 scalars, or per-neuron
    float32 arrays in that order for a per-channel population; ``v_reset`` None (soft reset) or
    float32; ``fire_ge`` for ``>=``. The output integrator gets ones (unused).
    """
    one = np.float32(1.0)
    if not pop.spiking:
        return one, one, None, False, None
    if layout not in ("chw", "hwc"):
        raise ValueError(f"unknown neuron layout {layout!r}")
    node = model.graph.nodes[pop.name]
    reset, fire = getattr(node, "reset", "subtract"), getattr(node, "fire", ">")
    leak = model.leak(pop.name).detach().cpu().numpy().astype(np.float32).reshape(-1)
    theta = model.threshold(pop.name).detach().cpu().numpy().astype(np.float32).reshape(-1)
    per_pos = int(np.prod(pop.shape[1:]))  # positions per channel (1 for a vector population)

    def spread(values: np.ndarray) -> np.float32 | np.ndarray:  # one value, or one per neuron
        if values.size == 1:
            return values[0]
        return np.repeat(values, per_pos) if layout == "chw" else np.tile(values, per_pos)

    v_reset = None if reset == "subtract" else np.float32(getattr(node, "v_reset", 0.0))
    decay = model.alpha(pop.name)
    alpha = None if decay is None else spread(decay.detach().cpu().numpy().astype(np.float32).reshape(-1))
    return spread(leak), spread(theta), v_reset, fire == ">=", alpha


def run_layer(plan: LayerPlan, li: int, vals: np.ndarray, steps: int, mode: str, model: Model,
              ispec: IntegerSpec | None = None, keep_potentials: bool = False
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run layer ``li`` and the population it alone drives, event by event, on the site values
    ``vals`` (see :func:`layer_values`); for a bias-free layer that is its population's only one.

    ``mode``: 'float' (the model's float32 arithmetic) or 'integer' (``ispec``'s fixed point).
    Returns :func:`kernels.functional_layer`'s (out_bits, potentials, changed, acc).
    """
    wt_src = plan.weight if mode == "float" else ispec.layers[li].weight  # type: ignore[union-attr]
    wt = plan.scatter_weights(mode, wt_src)
    args = (vals, steps, wt, plan.is_conv, plan.cp, plan.hp, plan.wp, plan.c_out, plan.h_out, plan.w_out,
            plan.ksize, plan.stride, plan.padding, plan.info.spiking)
    all_steps = wt.nbytes > ALL_STEPS_WEIGHT_BYTES
    if mode == "float":
        pop = next(p for p in model.populations if p.name == plan.info.target)
        leak, theta, v_reset, fire_ge, alpha = _float_neuron(model, pop, "hwc" if plan.is_conv else "chw")
        return K.functional_layer(*args, leak, theta, None, keep_potentials, all_steps, plan.groups, plan.dilation,
                                  v_reset, fire_ge, alpha)
    assert ispec is not None
    ip = ispec.populations[plan.info.target]
    return K.functional_layer(*args, np.int64(ip.leak_fx or 0), np.int64(ip.theta or 1),
                              np.int64(ispec.frac_bits), keep_potentials, all_steps, plan.groups, plan.dilation)


def _layer_current(plan: LayerPlan, vals: np.ndarray, steps: int, mode: str = "float",
                   lay: IntegerLayer | None = None) -> np.ndarray:
    """One layer's current [n, T, N] ((C, H, W) order) from its site values: float32 (the
    model's weights and bias), or in integer mode int64 in its population's unit (``lay``'s
    weights x ratio, bias and shortcut code; :mod:`snnsim.sim.integer`)."""
    if plan.info.kind == "identity":  # the source's spikes (or input values) themselves
        dtype = np.float32 if mode == "float" else np.int64
        cur = np.ascontiguousarray(np.broadcast_to(vals, (vals.shape[0], steps, vals.shape[2])), dtype=dtype)
        return cur if lay is None else cur * lay.identity_code
    if mode == "float":
        wt, bias = plan.scatter_weights("float", plan.weight), plan.bias
    else:
        assert lay is not None
        wt, bias = plan.scatter_weights("integer", lay.weight), lay.bias
    return K.layer_currents(vals, steps, wt, plan.is_conv, plan.cp, plan.hp, plan.wp, plan.c_out, plan.h_out,
                            plan.w_out, plan.ksize, plan.stride, plan.padding, bias, plan.groups, plan.dilation)


def normalised_current(model: Model, norm: str, current: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A population's summed input current [n, T, N] ((C, H, W) order) through the unfolded
    BatchNorm2d ``norm`` (inference: running statistics). It is PyTorch's own elementwise batch-norm
    op (``F.batch_norm``), so the values are those the model's forward pass computes from the
    same current."""
    bn = model[norm]
    n, steps, neurons = current.shape
    x = torch.from_numpy(np.ascontiguousarray(current, dtype=np.float32).reshape(n * steps, *shape))
    with torch.no_grad():
        y = F.batch_norm(x, bn.running_mean.detach().cpu(), bn.running_var.detach().cpu(),
                         None if bn.weight is None else bn.weight.detach().cpu(),
                         None if bn.bias is None else bn.bias.detach().cpu(), False, 0.0, bn.eps)
    return np.ascontiguousarray(y.numpy().reshape(n, steps, neurons))


def run_population(pop: PopulationInfo, plans: list[LayerPlan], vals: dict[int, np.ndarray], steps: int,
                    mode: str, model: Model, ispec: IntegerSpec | None, keep_potentials: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run one population on the site values of its layers: the fused one-layer kernel where a
    single bias-free synapse drives it (a VGG chain: the float sums are those of before), else
    the sum of every layer's current (and bias) in ``Add`` operand order through
    :func:`kernels.population_steps`."""
    first = plans[pop.primary]
    norm = first.info.norm
    if len(pop.layers) == 1 and first.info.kind != "identity" and not first.info.bias and not norm:
        return run_layer(first, pop.primary, vals[pop.primary], steps, mode, model, ispec, keep_potentials)
    total: np.ndarray | None = None
    for li in pop.layers:
        cur = _layer_current(plans[li], vals[li], steps, mode, None if ispec is None else ispec.layers[li])
        total = cur if total is None else total + cur
    assert total is not None
    if norm:
        if mode != "float":
            raise SnnsimError(f"population {pop.name!r} normalises its input with the unfolded BatchNorm2d {norm!r}; "
                              "integer replay has no per-channel multiply", "use --functional float for this model")
        total = normalised_current(model, norm, total, pop.shape)
    if mode == "float":
        leak, theta, v_reset, fire_ge, alpha = _float_neuron(model, pop, "chw")
        return K.population_steps(np.ascontiguousarray(total), pop.spiking, leak, theta, None, keep_potentials,
                                  v_reset, fire_ge, alpha)
    assert ispec is not None
    ip = ispec.populations[pop.name]
    return K.population_steps(np.ascontiguousarray(total), pop.spiking, np.int64(ip.leak_fx or 0),
                              np.int64(ip.theta or 1), np.int64(ispec.frac_bits), keep_potentials)


def simulate_chunk(plans: list[LayerPlan], chunk: TraceChunk, steps: int, functional: str | None = None,
                   drive: str = "recorded", model: Model | None = None, ispec: IntegerSpec | None = None,
                   keep_potentials: bool = False, populations: tuple[PopulationInfo, ...] | None = None
                   ) -> ChunkResult:
    """Count (and optionally run) every layer and population for one chunk of a trace.

    ``populations`` (default ``model.populations``; needed without a model too) are visited in
    schedule order; each layer reads its source population's recorded spikes, or in
    ``drive='chained'`` functional mode the spikes the simulator computed for it."""
    if populations is None:
        if model is None:
            raise SnnsimError("simulate_chunk needs the populations (or the model)")
        populations = model.populations
    n = chunk.size
    n_layers = len(plans)
    counts = np.zeros((n, n_layers, steps, K.N_COLS), dtype=np.int64)
    spikes_out = np.zeros((n, n_layers, steps), dtype=np.int64)
    res = ChunkResult(counts, spikes_out)
    recorded = {name: np.ascontiguousarray(bits) for name, bits in chunk.populations.items()}
    analog = input_rows(chunk.analog, chunk.per_step)
    if functional:
        assert model is not None
        res.mismatches = np.zeros((n, n_layers, steps), dtype=np.int64)
        res.changed = np.zeros((n, n_layers, steps), dtype=np.int64)
        res.out_bits = [None] * n_layers
        res.potentials = [np.zeros((n, 0, 0), dtype=np.float32)] * n_layers if keep_potentials else None
    own: dict[str, np.ndarray] = {}
    chained = bool(functional) and drive == "chained"
    for pop in populations:
        vals: dict[int, np.ndarray] = {}
        for li in pop.layers:
            plan = plans[li]
            is_analog = plan.info.analog_input
            bits_in = None if is_analog else source_bits(plan.info, own if chained else recorded)
            counts[:, li] = _count_layer(plan, bits_in, analog if is_analog else None, steps)
            if functional:
                vals[li] = layer_values(plan, bits_in, analog if is_analog else None, functional, ispec)
        row = pop.primary
        if not functional:
            if pop.spiking:
                spikes_out[:, row] = K.popcount_packed(recorded[pop.name])
            continue
        assert model is not None and res.mismatches is not None and res.changed is not None and res.out_bits is not None
        bits, pot, changed, acc = run_population(pop, plans, vals, steps, functional, model, ispec, keep_potentials)
        res.changed[:, row] = changed
        if res.potentials is not None:
            res.potentials[row] = pot
        if pop.spiking:
            res.out_bits[row] = bits
            spikes_out[:, row] = K.popcount_packed(bits if chained else recorded[pop.name])
            res.mismatches[:, row] = K.popcount_packed(bits, recorded[pop.name])  # set bits of bits ^ recorded
            own[pop.name] = bits
        else:
            res.acc = acc
    return res


# ---------------------------------------------------------------------------- replay
def default_chunk_size(trace: Trace, functional: bool) -> int:
    """Samples per chunk so that one chunk's working set stays near 128 MiB."""
    per = 4 * int(np.prod(trace.input_shape)) * (trace.timesteps if trace.input_per_timestep else 1)
    per += trace.timesteps * sum((p.neurons + 7) // 8 for p in trace.populations if p.spiking)
    if functional:
        biggest = max(sum(trace.layers[li].source_size + trace.layers[li].neurons for li in p.layers)
                      for p in trace.populations)
        per += trace.timesteps * biggest * 8 * 2
    return int(max(1, min(trace.samples, 4096, _CHUNK_BUDGET // max(1, per))))


def replay(trace: Trace | str | os.PathLike[str], model: Model, counting: str = "snnsim", functional: bool | str = False,
           chunk_size: int | None = None, progress: bool = True, batch_size: int = 64,
           drive: str | None = None, input_scale: float | None = None, check_model: bool = True) -> SimCounts:
    """Replay ``trace`` through the simulator and count events (see the module docstring).

    ``counting``: 'snnsim' (exact event-driven counts) or 'neurobench' (NeuroBench 2.3's
    rules; ``batch_size`` sets its per-call AC/MAC test). ``functional``: False, True/'float'
    or 'integer'. ``drive``: 'recorded' (default for float) or 'chained' (default for integer).
    ``input_scale``: Δ_x of the integer input quantizer (default from the model's data set).
    ``trace`` may be a :class:`~snnsim.trace.Trace` or the path of a trace directory.
    """
    from snnsim.progress import progress_bar

    if not isinstance(trace, Trace):
        trace = load_trace(trace)

    if counting not in COUNTINGS:
        raise SnnsimError(f"unknown counting profile {counting!r}", f"choose one of {', '.join(COUNTINGS)}")
    mode: str | None
    if functional is True:
        mode = "float"
    elif not functional:
        mode = None
    elif functional in FUNCTIONAL_MODES:
        mode = str(functional)
    else:
        raise SnnsimError(f"unknown functional mode {functional!r}", "use False, 'float' or 'integer'")
    if drive is None:
        drive = "chained" if mode == "integer" else "recorded"
    if drive not in DRIVES:
        raise SnnsimError(f"unknown drive {drive!r}", f"choose one of {', '.join(DRIVES)}")
    if batch_size < 1:
        raise SnnsimError(f"batch size must be >= 1, got {batch_size}")
    if check_model:
        check_trace_matches(trace, model)
    if list(trace.layers) != list(model.layer_infos) or list(trace.populations) != list(model.populations):
        raise TraceError(f"trace {str(trace.path)!r} has another layer structure than the model",
                         "re-record it with `snnsim trace --model ...` for this model")
    steps = trace.timesteps
    n_total = trace.samples
    plans = layer_plans(model)
    ispec = None
    if mode == "integer":
        if trace.input_spikes:  # -1/0/1 events are exact in unit steps: the integer code is the spike itself
            input_scale = 1.0
        ispec = integer_spec(model, input_scale=input_scale, input_absmax=(trace.meta.get("input") or {}).get("absmax"),
                             timesteps=steps)
    size = int(chunk_size) if chunk_size else default_chunk_size(trace, mode is not None)
    if size < 1:
        raise SnnsimError(f"chunk size must be >= 1, got {size}")
    n_layers = len(plans)
    sums = np.zeros((n_layers, steps, K.N_COLS), dtype=np.int64)
    spk = np.zeros((n_layers, steps), dtype=np.int64)
    nb_eff = np.zeros((n_total, n_layers, steps), dtype=np.int64) if counting == "neurobench" else None
    nb_bin = np.zeros((n_total, n_layers, steps), dtype=bool) if counting == "neurobench" else None
    mism = np.zeros((n_layers, steps), dtype=np.int64)
    changed = np.zeros((n_layers, steps), dtype=np.int64)
    accs: list[np.ndarray] = []
    rec_logits = trace.logits()
    with progress_bar(total=n_total, desc=f"replay{' ' + mode if mode else ''}", unit="sample", enabled=progress) as bar:
        for chunk in trace.iter_chunks(size):
            res = simulate_chunk(plans, chunk, steps, mode, drive, model, ispec, populations=trace.populations)
            sums += res.counts.sum(axis=0)
            spk += res.spikes_out.sum(axis=0)
            if nb_eff is not None and nb_bin is not None:
                nb_eff[chunk.start:chunk.stop] = res.counts[..., K.COL_NB_EFF]
                nb_bin[chunk.start:chunk.stop] = res.counts[..., K.COL_NB_BINARY] == 1
            if mode is not None:
                assert res.mismatches is not None and res.changed is not None and res.acc is not None
                mism += res.mismatches.sum(axis=0)
                changed += res.changed.sum(axis=0)
                accs.append(res.acc)
            bar.update(chunk.size)

    infos = list(model.layer_infos)
    primary = primary_layers(infos)
    input_kind = "spikes" if trace.input_spikes else "frames" if trace.input_per_timestep else "analog"
    # ops that multiply a value (MACs): those on the input, unless it is spikes (-1/0/1: accumulates)
    analog = np.array([i.analog_input and input_kind != "spikes" for i in infos], dtype=bool)
    syn = sums[..., K.COL_SYN].astype(np.float64)
    syn_nz = sums[..., K.COL_SYN_NZ].astype(np.float64)
    events = sums[..., K.COL_EVENTS].astype(np.float64)
    dense_inb = np.array([p.dense_inbounds for p in plans], dtype=np.float64)
    for p, info in zip(plans, infos, strict=True):  # the fan-out maps and the closed form must agree
        if p.dense_inbounds != inbounds_connections(info):
            raise AssertionError(f"layer {info.name}: fan-out map sums to {p.dense_inbounds}, expected {inbounds_connections(info)}")
    nb_counts = None
    if counting == "neurobench":
        assert nb_eff is not None and nb_bin is not None
        mu = None
        if mode is not None:
            mu = float(_membrane_updates(changed, infos, primary, n_total).sum() / n_total)
        nb_counts = aggregate(nb_eff, nb_bin, infos, steps, batch_size, membrane_updates=mu)
        syn = syn_nz = sums[..., K.COL_NB_EFF].astype(np.float64)
        events = sums[..., K.COL_SITES].astype(np.float64)
        mac_ops, ac_ops = nb_counts.mac_ops, nb_counts.ac_ops
        analog = mac_ops.sum(axis=1) > 0
    else:
        # the analog input's ops multiply a value: MACs, unless the edge is an identity (an add)
        mult = analog & np.array([i.kind != "identity" for i in infos], dtype=bool)
        mac_ops = np.where(mult[:, None], syn, 0.0)
        ac_ops = np.where(mult[:, None], 0.0, syn)

    counts = SimCounts(
        layers=infos, samples=n_total, timesteps=steps,
        input_events=events, syn_ops=syn, syn_ops_nz=syn_nz,
        touched_neurons=sums[..., K.COL_TOUCHED].astype(np.float64), spikes_out=spk.astype(np.float64),
        dense_ops=np.array([i.macs for i in infos], dtype=np.float64), dense_ops_inbounds=dense_inb,
        neurons=np.array([i.neurons if p else 0 for i, p in zip(infos, primary, strict=True)], dtype=np.float64),
        analog=analog,
        counting=counting, mac_ops=mac_ops, ac_ops=ac_ops, neurobench=nb_counts, model_fingerprint=trace.fingerprint,
        state_variables=state_variables(infos, trace.populations), input_kind=input_kind,
    )
    if mode is not None:
        acc = np.concatenate(accs, axis=0)
        if mode == "float":
            logits = acc.astype(np.float32) / np.float32(steps)
        else:
            assert ispec is not None
            logits = float_logits(acc, ispec, steps)
        preds = np.argmax(acc, axis=1).astype(np.int64)
        labels = trace.labels
        correct = None if labels is None else int((preds == labels).sum())
        rec_spk = np.zeros((n_layers, steps), dtype=np.int64)
        for pop in trace.populations:
            if pop.spiking:
                rec_spk[pop.primary] = _recorded_spikes(trace, pop.name, size)
        counts.functional = FunctionalResult(
            mode=mode, drive=drive, predictions=preds, logits=np.asarray(logits, dtype=np.float64), correct=correct,
            agree_recorded=int((preds == trace.predictions).sum()), spike_mismatches=mism, recorded_spikes=rec_spk,
            max_logit_error=float(np.abs(np.asarray(logits, dtype=np.float64) - np.asarray(rec_logits, dtype=np.float64)).max()),
            membrane_updates=_membrane_updates(changed, infos, primary, n_total),
            integer=ispec.describe() if ispec is not None else None,
            note=_float_note(mode, trace, int(mism.sum())),
        )
        counts.correct = correct
    return counts


def _float_note(mode: str, trace: Trace, mismatches: int) -> str:
    """Why a float replay's mismatches are expected: the trace summed its currents in float32."""
    if mode != "float" or not mismatches or trace.synaptic_sums == "float64":
        return ""
    return ("the trace's currents are float32 sums in another order, so near-threshold neurons can flip; "
            "a trace recorded with the torch engine rounds them from float64 sums, as this replay does")


def state_variables(layers: list[LayerInfo], populations: tuple[PopulationInfo, ...]) -> np.ndarray:
    """Per layer, the state variables per neuron of its target population: 2 for a CubaLIF
    (potential and synaptic current), else 1 (see :class:`SimCounts`)."""
    kind = {p.name: p.kind for p in populations}
    return np.array([2.0 if kind.get(i.target) == "CubaLIF" else 1.0 for i in layers], dtype=np.float64)


def _recorded_spikes(trace: Trace, population: str, chunk: int) -> np.ndarray:
    """Recorded spikes of ``population`` per timestep, summed over samples."""
    out = np.zeros(trace.timesteps, dtype=np.int64)
    ev = trace.spikes(population)
    for a in range(0, trace.samples, chunk):
        out += K.popcount_packed(np.ascontiguousarray(ev[a:a + chunk])).sum(axis=0)
    return out


def _membrane_updates(changed: np.ndarray, infos: list[LayerInfo], primary: list[bool], samples: int) -> np.ndarray:
    """NeuroBench's MembraneUpdates rule: every neuron at t = 0, then the changed ones (on each
    population's first layer)."""
    mu = changed.copy()
    mu[:, 0] = np.array([i.neurons if p else 0 for i, p in zip(infos, primary, strict=True)], dtype=np.int64) * samples
    return mu
