"""Cost model: simulator counts x hardware config -> per-layer energy, memory traffic, latency.

Input is a :class:`~snnsim.sim.replay.SimCounts` (see ``docs/ARCHITECTURE.md``: float arrays
``[L, T]`` summed over samples, plus per-layer architecture numbers) and a
:class:`~snnsim.hw.HardwareConfig`. Every output number is **per inference** (sums divided by
``samples``). Energy is counts x per-op costs (hardware.md sec. 8):

* compute: ACs (spike-driven synaptic ops) x ``ac_pj`` + MACs (analog-input ops of the first
  layer) x ``mac_pj``; the spike rate is already inside the op counts and is never applied
  again (hardware.md sec. 8 pitfall a);
* memory: per dataspace placement (weights per synaptic op / per timestep / once; potentials
  read-modify-write per op or per update; spikes read per input event, written per spike),
  value-width-scaled access energy of the level;
* neuron: updates (clock-driven = neurons x T, event-driven = neurons that received input)
  x (update + leak + compare) + spikes x reset; a CubaLIF neuron has two state variables
  (potential and synaptic current): each update reads and writes both and decays both (two
  leaks), its synaptic ops accumulate into the current (docs/counting.md);
* routing: spikes x (spike_pj + hops x hop_pj); static: power x chips x latency.

The ANN baseline (:func:`ann_baseline`) costs the same-spec ANN on the config's baseline
hardware with the same row schema. :func:`summarize` gives the SNN/ANN ratio, latency and EDP.

Both sides count the same connections (``connections``, :data:`CONNECTIONS_CHOICES`): by
default the in-bounds ones, the only ones a spike can drive; ``conventional`` counts the
padding taps on both sides (docs/counting.md). On a chip without a MAC datapath the analog
first layer runs on the baseline's MAC accelerator, and is charged and timed there (its rows
say so in ``runs_on``).

Every finished result is checked: an infinite, NaN or negative energy, latency or ratio is a
one-line :class:`~snnsim.errors.ConfigError` naming the config and the fields that feed it
(the schema's bounds make this unreachable from a loaded config; it is the backstop).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from snnsim.arch import LayerInfo, primary_layers, show_value
from snnsim.errors import ConfigError, SnnsimError, TraceError
from snnsim.hw import AnnBaseline, HardwareConfig, MemoryLevel

FirstLayer = Literal["auto", "mac_per_timestep", "mac_once", "ac_with_input_rate"]
#: How the first layer (the synapses reading the network input) is charged (paper.md sec. 2.13,
#: docs/counting.md): ``mac_per_timestep`` MACs at every timestep, ``mac_once`` MACs once per
#: inference (an input held over T), ``ac_with_input_rate`` the recorded input spikes x fan-out
#: as accumulates (a Poisson model: FLOPs_1 x R_0); ``auto`` picks ``ac_with_input_rate`` when
#: the input is spikes, else ``mac_per_timestep`` (:func:`resolve_first_layer`).
FIRST_LAYER_CHOICES: tuple[str, ...] = ("auto", "mac_per_timestep", "mac_once", "ac_with_input_rate")
#: What the recorded input of a model is (``SimCounts.input_kind``): ``analog`` values fed at
#: every timestep (direct encoding), graded ``frames`` (one input per timestep), or ``spikes``
#: (-1/0/1 per timestep: a Poisson model's, or ternary frames).
INPUT_KINDS: tuple[str, ...] = ("analog", "frames", "spikes")
Connections = Literal["inbounds", "conventional"]
#: Connection-counting conventions, applied to the SNN and the ANN alike (docs/counting.md):
#: ``inbounds`` counts the connections that exist (padding taps never count: a padded zero
#: never spikes), ``conventional`` the k*k*C_in*H_out*W_out*C_out formula with padding taps.
CONNECTIONS_CHOICES: tuple[str, ...] = ("inbounds", "conventional")
DEFAULT_CONNECTIONS: Connections = "inbounds"

#: Columns of every per-layer table (SNN and ANN), in order.
ROW_COLUMNS: tuple[str, ...] = (
    "layer", "index", "kind", "population", "runs_on", "timesteps", "neurons", "input_events", "spike_rate",
    "spikes_per_neuron", "ac", "mac", "dense_ops", "weight_reads", "potential_reads",
    "potential_writes", "input_reads", "output_writes", "neuron_updates", "spikes_out",
    "energy_compute_pj", "energy_memory_pj", "energy_neuron_pj", "energy_routing_pj",
    "energy_static_pj", "energy_total_pj", "latency_cycles", "latency_s",
)

ACCESS_COLUMNS: tuple[str, ...] = ("layer", "dataspace", "level", "action", "count", "bits", "energy_pj", "charged")


class CountsLike(Protocol):
    """What the cost model reads from a ``SimCounts`` (docs/ARCHITECTURE.md)."""

    layers: list[LayerInfo]
    samples: int
    timesteps: int
    input_events: np.ndarray
    syn_ops: np.ndarray
    syn_ops_nz: np.ndarray
    touched_neurons: np.ndarray
    spikes_out: np.ndarray
    dense_ops: np.ndarray
    neurons: np.ndarray
    analog: np.ndarray


@dataclass
class CostResult:
    """Per-layer table, energy breakdown by component, memory-access table and totals."""

    kind: Literal["snn", "ann"]
    hw_name: str
    layers: pd.DataFrame
    breakdown: dict[str, float]
    accesses: pd.DataFrame
    totals: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def energy_pj(self) -> float:
        return float(self.totals["energy_pj"])

    @property
    def latency_s(self) -> float:
        return float(self.totals["latency_s"])

    @property
    def latency_cycles(self) -> float:
        return float(self.totals["latency_cycles"])

    def breakdown_frame(self) -> pd.DataFrame:
        """The breakdown as a tidy table (component, energy_pj, share)."""
        total = sum(self.breakdown.values())
        rows = [{"component": k, "energy_pj": v, "share": (v / total if total > 0 else 0.0)}
                for k, v in self.breakdown.items()]
        return pd.DataFrame(rows, columns=["component", "energy_pj", "share"])


@dataclass
class CostReport:
    """SNN cost, ANN-baseline cost and their summary, for one model on one config."""

    snn: CostResult
    ann: CostResult
    summary: dict[str, Any]


# --------------------------------------------------------------------------- helpers
def _check_counts(counts: CountsLike) -> tuple[int, int, int]:
    layers = list(counts.layers)
    n_layers, steps, samples = len(layers), int(counts.timesteps), int(counts.samples)
    if n_layers == 0:
        raise TraceError("counts hold no layers", "record the trace of a model with synaptic layers")
    if samples < 1 or steps < 1:
        raise TraceError(f"counts have samples={samples}, timesteps={steps}", "both must be >= 1")
    for name in ("input_events", "syn_ops", "syn_ops_nz", "touched_neurons", "spikes_out"):
        arr = np.asarray(getattr(counts, name))
        if arr.shape != (n_layers, steps):
            raise TraceError(f"counts.{name} has shape {arr.shape}, expected ({n_layers}, {steps})",
                             "the counts do not match their layer list; re-run the simulator")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise TraceError(f"counts.{name} has negative or non-finite entries", "re-run the simulator")
    for name in ("dense_ops", "neurons", "analog"):
        arr = np.asarray(getattr(counts, name))
        if arr.shape != (n_layers,):
            raise TraceError(f"counts.{name} has shape {arr.shape}, expected ({n_layers},)",
                             "the counts do not match their layer list; re-run the simulator")
    return n_layers, steps, samples


def _prod(shape: Sequence[int]) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


def _ceil(x: np.ndarray) -> np.ndarray:
    """Ceil that ignores float noise just above an integer (1e-9 relative)."""
    return np.ceil(x - 1e-9 * np.maximum(1.0, np.abs(x)))


def _access_energy(level: MemoryLevel, action: str, bits: int) -> float:
    return level.read_energy(bits) if action == "read" else level.write_energy(bits)


@dataclass
class _Traffic:
    """Memory accesses of one dataspace placement, [L, T] counts per inference."""

    dataspace: str
    level: MemoryLevel
    action: str
    bits: np.ndarray  # [L] value width per layer
    counts: np.ndarray  # [L, T]


# --------------------------------------------------------------------------- connections
def layer_connections(info: LayerInfo, connections: str = DEFAULT_CONNECTIONS) -> int:
    """Connections of one pass of a layer under a counting convention (:data:`CONNECTIONS_CHOICES`).

    ``inbounds``: the input-output pairs that exist (NeuroBench's ``Dense``), the only ones an
    event can drive, since a zero-padding position never spikes. ``conventional``: the usual
    k*k*C_in*H_out*W_out*C_out (``LayerInfo.macs``), which adds one tap per padding position.
    Linear layers have no padding: both are in*out.
    """
    _check_connections(connections)
    if connections == "conventional" or info.kind == "linear":
        return int(info.macs)
    # The one closed form of in-bounds connections; replay checks its fan-out maps against it.
    from snnsim.sim.neurobench import inbounds_connections

    return int(inbounds_connections(info))


def _check_connections(connections: str) -> None:
    if connections not in CONNECTIONS_CHOICES:
        raise SnnsimError(f"connections must be one of {', '.join(CONNECTIONS_CHOICES)}, got {show_value(connections)}",
                          "use inbounds (padding taps never count, the default) or conventional")


# --------------------------------------------------------------------------- the baseline's MAC array
@dataclass
class _ArrayCost:
    """Layers run on the baseline's MAC accelerator by the ANN cost model: [L] per layer, [L, P] per pass."""

    e_mac: np.ndarray
    e_mem_by_level: dict[str, np.ndarray]
    access_rows: list[dict[str, Any]]
    weight_reads: np.ndarray  # NaN where the reuse mode has no per-access counts (ratios)
    input_reads: np.ndarray
    output_writes: np.ndarray
    cycles: np.ndarray  # [L, P] at the baseline's clock
    seconds: np.ndarray  # [L, P]; NaN when the baseline has no clock


def _on_baseline(ann: AnnBaseline, layers: Sequence[LayerInfo], macs: np.ndarray, passes: np.ndarray,
                 charge: bool, prefix: str = "") -> _ArrayCost:
    """Cost ``layers`` on the baseline MAC accelerator ``ann``: the ANN baseline's model, shared by
    the ANN (one pass per layer) and by an SNN's analog layers on a chip without a MAC datapath
    (one pass per timestep the layer computes).

    ``macs`` [L, P]: MACs of each pass; ``passes`` [L, P] bool: the layer computes in that pass.
    Energy: MACs x ``mac_pj``; memory by ``reuse`` (``no_reuse``: a weight and an input read per
    MAC, each output written once per pass; ``ideal_reuse``: every tensor through its level once
    per pass; ``ratios``: ``pj_per_mac`` per level). Time per pass: ceil(MACs / (PEs x
    utilization x MACs per cycle)), or the bandwidth bound, at the baseline clock. ``prefix``
    is put before the level names (the SNN's breakdown keeps the baseline's levels apart).
    """
    bhw = ann.hw
    nb = bhw.numerics
    n_layers = len(layers)
    on = passes.astype(np.float64)
    params = np.array([float(li.params) for li in layers])
    neurons = np.array([float(li.neurons) for li in layers])
    in_size = np.array([float(_prod(li.in_shape)) for li in layers])
    levels = {lv.name: lv for lv in bhw.memory.levels}
    e_mem_by_level: dict[str, np.ndarray] = {prefix + name: np.zeros(n_layers) for name in levels}
    access_rows: list[dict[str, Any]] = []
    nan = np.full(n_layers, np.nan)
    w_reads, i_reads, o_writes = nan, nan, nan
    mem_bits: dict[str, np.ndarray] = {}
    total_macs = macs.sum(axis=1)
    if ann.reuse == "ratios":
        for name, pj in ann.pj_per_mac.items():
            energy = total_macs * pj if charge else np.zeros(n_layers)
            e_mem_by_level[prefix + name] += energy
            for i, li in enumerate(layers):
                access_rows.append({"layer": li.name, "dataspace": "all", "level": prefix + name, "action": "per_mac",
                                    "count": float(total_macs[i]), "bits": 0, "energy_pj": float(energy[i]),
                                    "charged": charge})
    else:
        if ann.reuse == "no_reuse":
            per_pass = (macs, macs, neurons[:, None] * on)
        else:
            per_pass = (params[:, None] * on, in_size[:, None] * on, neurons[:, None] * on)
        w_reads, i_reads, o_writes = (cnt.sum(axis=1) for cnt in per_pass)
        for space, level, action, cnt, bits in (("weights", ann.weights, "read", per_pass[0], nb.weight_bits),
                                                ("inputs", ann.inputs, "read", per_pass[1], nb.activation_bits),
                                                ("outputs", ann.outputs, "write", per_pass[2], nb.activation_bits)):
            if level is None:
                continue
            lv = levels[level]
            charged = charge and lv.charged
            total = cnt.sum(axis=1)
            energy = total * _access_energy(lv, action, bits) if charged else np.zeros(n_layers)
            e_mem_by_level[prefix + level] += energy
            if lv.bandwidth_bits_per_cycle:
                mem_bits.setdefault(level, np.zeros_like(macs))
                mem_bits[level] += cnt * bits / lv.bandwidth_bits_per_cycle
            for i, li in enumerate(layers):
                access_rows.append({"layer": li.name, "dataspace": space, "level": prefix + level, "action": action,
                                    "count": float(total[i]), "bits": int(bits), "energy_pj": float(energy[i]),
                                    "charged": charged})
    rate = ann.pes * ann.utilization * ann.macs_per_cycle_per_pe
    cycles = _ceil(macs / rate)
    for arr in mem_bits.values():
        cycles = np.maximum(cycles, _ceil(arr))
    seconds = cycles / ann.clock_hz if ann.clock_hz else np.full_like(cycles, np.nan)
    return _ArrayCost(total_macs * ann.mac_pj, e_mem_by_level, access_rows, w_reads, i_reads, o_writes,
                      cycles, seconds)


# --------------------------------------------------------------------------- SNN
def resolve_first_layer(first_layer: str, counts: CountsLike) -> str:
    """The first-layer convention for these counts: ``auto`` becomes ``ac_with_input_rate``
    when the input is spikes, else ``mac_per_timestep``; a convention that does not fit the input
    is refused in one line (``ac_with_input_rate`` needs spikes, ``mac_once`` an input that is
    the same at every timestep)."""
    if first_layer not in FIRST_LAYER_CHOICES:
        raise SnnsimError(f"first_layer must be one of {', '.join(FIRST_LAYER_CHOICES)}, got {first_layer!r}")
    kind = getattr(counts, "input_kind", "analog")
    if first_layer == "auto":
        return "ac_with_input_rate" if kind == "spikes" else "mac_per_timestep"
    if first_layer == "ac_with_input_rate" and kind != "spikes":
        what = "analog values (direct encoding)" if kind == "analog" else "graded frames"
        raise SnnsimError(f"first layer convention ac_with_input_rate charges input spikes as accumulates, but this "
                          f"model's input is {what}", "use mac_per_timestep or mac_once, or a Poisson-encoded model "
                          "(--encoding poisson)")
    if first_layer == "mac_once" and kind == "frames":
        raise SnnsimError("first layer convention mac_once assumes the input is the same at every timestep, but these "
                          "inputs change per timestep", "use mac_per_timestep")
    return first_layer


def snn_cost(counts: CountsLike, hw: HardwareConfig, first_layer: FirstLayer = "auto",
             skip_zero_weights: bool = False, connections: Connections = DEFAULT_CONNECTIONS) -> CostResult:
    """Energy and latency of the recorded SNN on ``hw``, per inference.

    ``first_layer`` (:data:`FIRST_LAYER_CHOICES`, resolved by :func:`resolve_first_layer`):
    ``mac_per_timestep`` charges the first layer's MACs every timestep (what the counts of an
    analog input hold: the image drives it each step); ``mac_once`` counts them once (input
    constant over T, W x computed once and reused; paper.md sec. 2.13); on a model whose input
    is spikes both charge the first layer as the analog image would drive it, densely (every
    in-bounds connection a MAC: the paper's FLOPs_1 x E_MAC), while ``ac_with_input_rate``
    charges the recorded input spikes x fan-out as ACs (FLOPs_1 x R_0 x E_AC).
    ``skip_zero_weights``: use ``syn_ops_nz`` (pruned / quantized-to-zero weights cost nothing).
    ``connections``: ``inbounds`` costs the ops as counted (events reach in-bounds connections
    only); ``conventional`` scales each layer's ops by its conventional / in-bounds connections,
    charging the padding taps at the layer's measured rate per connection (the lineage's
    FLOPs x R), so that the SNN counts what a conventionally counted ANN counts
    (docs/counting.md).

    On a chip without a MAC datapath (``compute.mac_pj: null``) the layers whose ops are MACs
    (the analog first layer) run on the baseline's MAC accelerator: their MACs, memory traffic
    (the baseline's reuse model), neuron updates, time (the baseline's MAC throughput and
    clock) and static power are the baseline hardware's, and the row's ``runs_on`` names it.
    """
    first_layer = resolve_first_layer(first_layer, counts)  # type: ignore[assignment]
    _check_connections(connections)
    n_layers, steps, samples = _check_counts(counts)
    layers = list(counts.layers)
    notes: list[str] = []
    analog = np.asarray(counts.analog, dtype=bool).copy()
    neurons = np.asarray(counts.neurons, dtype=np.float64)
    spiking = np.array([bool(getattr(li, "spiking", True)) for li in layers])
    params = np.array([float(li.params) for li in layers])
    conns = np.array([float(layer_connections(li, connections)) for li in layers])
    ops = np.asarray(counts.syn_ops_nz if skip_zero_weights else counts.syn_ops, dtype=np.float64) / samples
    if connections == "conventional":  # padding taps at the layer's rate per connection (x conv / in-bounds)
        inb = np.maximum(np.array([float(layer_connections(li, "inbounds")) for li in layers]), 1.0)
        ops = ops * conns[:, None] / inb[:, None]
        scale = conns / inb
        if np.any(scale != 1.0):
            notes.append(f"connections: conventional (padding taps counted on both sides): SNN ops scaled per layer "
                         f"by conventional / in-bounds connections (x{scale.min():.4g} to x{scale.max():.4g})")
    events = np.asarray(counts.input_events, dtype=np.float64) / samples
    touched = population_touched(layers, np.asarray(counts.touched_neurons, dtype=np.float64) / samples)
    spikes = np.asarray(counts.spikes_out, dtype=np.float64) / samples
    computes = np.ones((n_layers, steps), dtype=bool)  # (l, t) where the layer's synapses run
    if getattr(counts, "input_kind", "analog") == "spikes":
        if first_layer == "ac_with_input_rate":
            notes.append("first layer: the recorded input spikes x fan-out, as ACs (FLOPs_1 x R_0)")
        else:  # as the analog image would drive it: every connection, a MAC
            for i in np.flatnonzero(_dense_first(counts, first_layer)):
                ops[i] = conns[i]
                events[i] = float(layers[i].source_size)
                analog[i] = True
            notes.append("first layer: input spikes charged as the analog image would drive it, densely "
                         f"({'once' if first_layer == 'mac_once' else 'every timestep'}, every connection a MAC)")
    if first_layer == "mac_once":
        for i in np.flatnonzero(analog):
            for arr in (ops, events):
                once = arr[i].sum() / steps
                arr[i] = 0.0
                arr[i, 0] = once
            computes[i, 1:] = False
        if analog.any():
            notes.append("first layer: analog-input MACs counted once (input constant over T)")
    bias = bias_adds(layers, computes)
    if bias.sum() > 0:
        ops = ops + bias
        notes.append(f"biases: one add per neuron per timestep the layer computes ({bias.sum():.4g} adds), on its "
                     "layer's datapath")
    mac = np.where(analog[:, None], ops, 0.0)
    ac = np.where(analog[:, None], 0.0, ops)
    norm = norm_ops(layers, computes)
    if norm.sum() > 0:  # x * gamma/sigma + (beta - mu*gamma/sigma): one multiply-add per neuron per step
        mac = mac + norm
        names = ", ".join(dict.fromkeys(li.norm for li in layers if getattr(li, "norm", "")))
        notes.append(f"unfolded batch norm ({names}): one multiply-add per neuron per timestep ({norm.sum():.4g} MACs)")

    c = hw.compute
    ann = hw.ann
    if ac.sum() > 0 and c.ac_pj is None:
        raise ConfigError(f"hardware config {hw.name!r} has compute.ac_pj: null and cannot run spiking layers",
                          "choose a config with an accumulate energy")
    mac_pj = c.mac_pj
    # No MAC datapath: the MAC layers run on the baseline's accelerator (unless it is this chip).
    offload = analog & (c.mac_pj is None) & (ann.hw.name != hw.name)
    bname = ann.hw.name
    if mac_pj is None:
        mac_pj = ann.mac_pj
        if mac.sum() > 0 and offload.any():
            names = ", ".join(layers[i].name for i in np.flatnonzero(offload))
            notes.append(f"{hw.name} has no MAC datapath: {names} runs on the baseline accelerator {bname}: "
                         f"{mac.sum():.4g} analog-input MACs at {mac_pj} pJ ({ann.source}), with {bname}'s memory, "
                         f"neuron, time and static power")
        elif mac.sum() > 0:
            notes.append(f"{hw.name} has no MAC datapath: {mac.sum():.4g} MACs charged at the "
                         f"baseline's {mac_pj} pJ ({ann.source})")
    ac_pj = c.ac_pj or 0.0
    runs_on = [bname if off else hw.name for off in offload]

    # neuron updates, by the update policy of the hardware each layer runs on
    def policy_updates(h: HardwareConfig) -> tuple[np.ndarray, np.ndarray]:
        if h.neuron.update_policy == "clock_driven":
            return touched, np.maximum(neurons[:, None] - touched, 0.0)
        return touched, np.zeros_like(touched)

    active, inactive = policy_updates(hw)
    if offload.any():
        a_base, i_base = policy_updates(ann.hw)
        active = np.where(offload[:, None], a_base, active)
        inactive = np.where(offload[:, None], i_base, inactive)
    updates = active + inactive

    # memory traffic per placement (on the chip: none for the layers that run on the baseline)
    nb = hw.numerics
    traffic: list[_Traffic] = []
    ds = hw.memory.dataspaces
    for pl in ds.weights:
        lv = hw.memory.level(pl.level)
        if pl.fetch == "per_synop":
            cnt = ops.copy()
        elif pl.fetch == "per_timestep":
            cnt = np.where(computes, params[:, None], 0.0)
        else:  # once per inference
            cnt = np.zeros_like(ops)
            cnt[:, 0] = params
        bits = np.full(n_layers, pl.bits or nb.weight_bits)
        traffic.append(_Traffic("weights", lv, "read", bits, cnt))
    # neuron state per update: the potential, and a CubaLIF's synaptic current too (SimCounts.state_variables)
    state_vars = getattr(counts, "state_variables", None)
    states = np.ones(n_layers) if state_vars is None else np.asarray(state_vars, dtype=np.float64)
    state_updates = updates * states[:, None]
    for pl in ds.potentials:
        lv = hw.memory.level(pl.level)
        cnt = ops + state_updates if pl.access == "per_synop" else state_updates.copy()
        bits = np.full(n_layers, pl.bits or nb.potential_bits)
        traffic.append(_Traffic("potentials", lv, "read", bits, cnt))
        traffic.append(_Traffic("potentials", lv, "write", bits, cnt.copy()))
    for pl in ds.spikes:
        lv = hw.memory.level(pl.level)
        in_bits = np.where(analog, nb.activation_bits, pl.bits or nb.spike_bits)
        traffic.append(_Traffic("spikes", lv, "read", in_bits, events.copy()))
        traffic.append(_Traffic("spikes", lv, "write", np.full(n_layers, pl.bits or nb.spike_bits), spikes.copy()))
    for tr in traffic:
        tr.counts[offload] = 0.0

    charge = not hw.compute_only
    e_ac = ac.sum(axis=1) * ac_pj
    e_mac = mac.sum(axis=1) * mac_pj
    e_mem_by_level: dict[str, np.ndarray] = {lv.name: np.zeros(n_layers) for lv in hw.memory.levels}
    access_rows: list[dict[str, Any]] = []
    for tr in traffic:
        per_value = np.array([_access_energy(tr.level, tr.action, int(b)) for b in tr.bits])
        charged = charge and tr.level.charged
        energy = tr.counts.sum(axis=1) * per_value if charged else np.zeros(n_layers)
        e_mem_by_level[tr.level.name] += energy
        for i, li in enumerate(layers):
            if offload[i]:
                continue
            access_rows.append({"layer": li.name, "dataspace": tr.dataspace, "level": tr.level.name,
                                "action": tr.action, "count": float(tr.counts[i].sum()), "bits": int(tr.bits[i]),
                                "energy_pj": float(energy[i]), "charged": charged})
    off_idx = np.flatnonzero(offload)
    off_s = np.zeros((n_layers, steps))
    off_cycles = np.zeros(n_layers)
    base: _ArrayCost | None = None
    if off_idx.size:
        if ann.clock_hz is None:
            raise ConfigError(f"{_hw_where(hw)}: has no MAC datapath, so its analog layer runs on the baseline "
                              f"hardware {bname}, which has no clock: that layer's time is unknown",
                              "set baseline.clock_hz to the clock of the hardware the ANN runs on")
        base = _on_baseline(ann, [layers[i] for i in off_idx], mac[off_idx], computes[off_idx], charge,
                            prefix=f"{bname}:")
        for key, energy in base.e_mem_by_level.items():
            e_mem_by_level.setdefault(key, np.zeros(n_layers))[off_idx] += energy
        access_rows.extend(base.access_rows)
        off_s[off_idx] = base.seconds
        off_cycles[off_idx] = base.cycles.sum(axis=1)
    e_mem = sum(e_mem_by_level.values(), np.zeros(n_layers))

    def neuron_energy(h: HardwareConfig) -> np.ndarray:
        hc = h.compute
        leak_pj = hc.leak_pj if h.neuron.leak != "none" else 0.0
        upd_pj = h.neuron.update_pj
        upd_idle_pj = upd_pj if h.neuron.update_inactive_pj is None else h.neuron.update_inactive_pj
        extra = np.where(spiking, leak_pj * states + hc.compare_pj, 0.0)  # one decay per state variable
        return (active.sum(axis=1) * (upd_pj + extra) + inactive.sum(axis=1) * (upd_idle_pj + extra)
                + spikes.sum(axis=1) * np.where(spiking, hc.reset_pj, 0.0))

    e_neuron = neuron_energy(hw)
    if off_idx.size:
        e_neuron = np.where(offload, neuron_energy(ann.hw), e_neuron)
    r = hw.routing  # the analog layer's spikes enter the chip's network wherever it ran
    e_route = spikes.sum(axis=1) * (r.spike_pj + r.hops_per_spike * r.hop_pj)
    if not charge:
        e_neuron = np.zeros(n_layers)
        e_route = np.zeros(n_layers)

    lat = _snn_latency(hw, neurons, conns, mac, ac, active, inactive, spikes, traffic, offload, off_s)
    static_w = hw.static.power_mw * 1e-3 * lat["chips"] if charge else 0.0
    e_static_chip = static_w * lat["total_s"] * 1e12 if static_w > 0 else 0.0
    dynamic = e_ac + e_mac + e_mem + e_neuron + e_route
    on_chip = ~offload
    e_static = _split(e_static_chip, np.where(on_chip, lat["layer_s"], 0.0), np.where(on_chip, dynamic, 0.0))
    e_static_base = 0.0
    if off_idx.size and charge and ann.static_mw > 0:  # the baseline accelerator's leakage while it works
        per_layer = ann.static_mw * 1e-3 * off_s.sum(axis=1) * 1e12
        e_static = e_static + per_layer
        e_static_base = float(per_layer.sum())
    e_static_total = e_static_chip + e_static_base

    total = dynamic + e_static
    first_w = ds.weights[0] if ds.weights else None
    first_p = ds.potentials[0] if ds.potentials else None
    w_reads = next((t.counts for t in traffic if t.dataspace == "weights"), ops) if first_w else ops
    p_reads = next((t.counts for t in traffic if t.dataspace == "potentials"), ops + state_updates) \
        if first_p else ops + state_updates
    w_col, p_col = w_reads.sum(axis=1), p_reads.sum(axis=1)
    in_col, out_col = events.sum(axis=1), spikes.sum(axis=1)
    cycles_col = np.asarray(lat["layer_cycles"], dtype=np.float64).copy()
    if base is not None:  # the baseline's counts and cycles, as in its ANN rows
        w_col[off_idx], p_col[off_idx] = base.weight_reads, 0.0
        in_col[off_idx], out_col[off_idx] = base.input_reads, base.output_writes
        cycles_col[off_idx] = off_cycles[off_idx]
    rows = []
    for i, li in enumerate(layers):
        n_out = neurons[i]
        rows.append({
            "layer": li.name, "index": i, "kind": li.kind, "population": li.target, "runs_on": runs_on[i],
            "timesteps": steps,
            "neurons": int(n_out), "input_events": float(events[i].sum()),
            "spike_rate": float(spikes[i].sum() / (n_out * steps)) if n_out > 0 else 0.0,
            "spikes_per_neuron": float(spikes[i].sum() / n_out) if n_out > 0 else 0.0,
            "ac": float(ac[i].sum()), "mac": float(mac[i].sum()), "dense_ops": float(conns[i]),
            "weight_reads": float(w_col[i]), "potential_reads": float(p_col[i]),
            "potential_writes": float(p_col[i]), "input_reads": float(in_col[i]),
            "output_writes": float(out_col[i]), "neuron_updates": float(updates[i].sum()),
            "spikes_out": float(spikes[i].sum()),
            "energy_compute_pj": float(e_ac[i] + e_mac[i]), "energy_memory_pj": float(e_mem[i]),
            "energy_neuron_pj": float(e_neuron[i]), "energy_routing_pj": float(e_route[i]),
            "energy_static_pj": float(e_static[i]), "energy_total_pj": float(total[i]),
            "latency_cycles": float(cycles_col[i]), "latency_s": float(lat["layer_s"][i]),
        })
    breakdown = {"compute_ac": float(e_ac.sum()), "compute_mac": float(e_mac.sum())}
    breakdown.update({f"memory:{k}": float(v.sum()) for k, v in e_mem_by_level.items()})
    breakdown.update({"neuron": float(e_neuron.sum()), "routing": float(e_route.sum()),
                      "static": float(e_static_total)})
    totals = {
        "energy_pj": float(total.sum()), "energy_compute_pj": float((e_ac + e_mac).sum()),
        "energy_memory_pj": float(e_mem.sum()), "energy_neuron_pj": float(e_neuron.sum()),
        "energy_routing_pj": float(e_route.sum()), "energy_static_pj": float(e_static_total),
        "latency_cycles": float(lat["total_cycles"]), "latency_s": float(lat["total_s"]),
        "chips": float(lat["chips"]), "cores_used": float(lat["cores_used"]),
        "tick_overruns": float(lat["overruns"]), "timesteps": float(steps),
        "ac": float(ac.sum()), "mac": float(mac.sum()), "spikes_out": float(spikes.sum()),
        "neuron_updates": float(updates.sum()),
    }
    if lat["overruns"]:
        notes.append(f"{int(lat['overruns'])} of {steps} timesteps need longer than the {hw.latency.tick_s} s tick")
    if hw.compute_only:
        notes.append("compute-only: memory, neuron, routing and static energy counted but not charged")
    res = CostResult("snn", hw.label, _frame(rows), breakdown,
                     pd.DataFrame(access_rows, columns=list(ACCESS_COLUMNS)), totals, notes)
    _check_finite(res, hw)
    return res


def population_touched(layers: Sequence[LayerInfo], touched: np.ndarray) -> np.ndarray:
    """Touched neurons [L, T] per population: a population driven by several layers (a residual
    add) is updated once per timestep, so the touched counts of its layers are summed, capped at
    its size, and put on its first layer's row (the others get 0, as their ``neurons``)."""
    out = np.zeros_like(touched)
    first: dict[str, int] = {}
    primary = primary_layers(layers)
    for i, (li, is_first) in enumerate(zip(layers, primary, strict=True)):
        key = li.target or f"#{i}"
        if is_first:
            first[key] = i
        out[first[key]] += touched[i]
    for i, (li, is_first) in enumerate(zip(layers, primary, strict=True)):
        if is_first:
            out[i] = np.minimum(out[i], float(li.neurons))
    return out


def norm_ops(layers: Sequence[LayerInfo], computes: np.ndarray) -> np.ndarray:
    """[L, T] multiply-adds of unfolded batch norms: one per neuron of a normalised population
    at every timestep, on the population's first layer (``LayerInfo.norm``; docs/counting.md)."""
    primary = primary_layers(list(layers))
    per = np.array([float(li.neurons) if getattr(li, "norm", "") and p else 0.0
                    for li, p in zip(layers, primary, strict=True)])
    return np.repeat(per[:, None], computes.shape[1], axis=1)


def bias_adds(layers: Sequence[LayerInfo], computes: np.ndarray) -> np.ndarray:
    """[L, T] adds of the layers' biases: one per output neuron at every timestep the layer
    computes (``docs/counting.md``); 0 for a layer without bias."""
    per = np.array([float(li.neurons) if getattr(li, "bias", False) else 0.0 for li in layers])
    return np.where(computes, per[:, None], 0.0)


def _split(total: float, weights_s: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Attribute a chip-wide energy to layers by busy time (or dynamic energy if no times)."""
    if total == 0:
        return np.zeros_like(fallback)
    w = weights_s if np.all(np.isfinite(weights_s)) and weights_s.sum() > 0 else fallback
    s = w.sum()
    return total * w / s if s > 0 else np.full_like(fallback, total / len(fallback))


def _snn_latency(hw: HardwareConfig, neurons: np.ndarray, synapses: np.ndarray, mac: np.ndarray,
                 ac: np.ndarray, active: np.ndarray, inactive: np.ndarray, spikes: np.ndarray,
                 traffic: list[_Traffic], offload: np.ndarray, off_s: np.ndarray) -> dict[str, Any]:
    """Latency per layer and in total (hardware.md sec. 5): per-timestep work of each layer on
    its cores, composed by ``latency.mode``. Units: cycles on clocked chips, ns on
    asynchronous ones; fixed-tick chips take max(tick, computed work). ``synapses``: each
    layer's connections (by the counting convention) for ``synapses_per_core``. Layers with
    ``offload`` run on the baseline accelerator: no cores of the chip, and their work is
    ``off_s`` [L, T] seconds there."""
    lat, par = hw.latency, hw.parallelism
    n_layers, steps = mac.shape
    mapped = lat.mode in ("tick_parallel", "layer_pipelined")
    on_chip = ~offload
    if mapped:
        assert par.neurons_per_core is not None
        units = np.maximum(1.0, np.ceil(neurons / par.neurons_per_core))
        if par.synapses_per_core is not None:
            units = np.maximum(units, np.ceil(synapses / par.synapses_per_core))  # explicit connections
        cores_used = float(units[on_chip].sum())
        chips = float(max(1, math.ceil(cores_used / par.cores)))
    else:
        units = np.full(n_layers, float(par.cores))
        cores_used = float(par.cores)
        chips = 1.0
    u = units[:, None]

    clocked = lat.clock_hz is not None
    timed = clocked or lat.synop_ns is not None
    if clocked:
        assert lat.clock_hz is not None
        ns_to_unit = lat.clock_hz * 1e-9
        syn_rate = par.pes_per_core * par.synops_per_cycle_per_pe
        work = (_ceil((mac + ac) / (u * syn_rate)) + _ceil((active + inactive) / (u * par.neuron_updates_per_cycle_per_core))
                + _ceil(spikes / u) * lat.spike_ns * ns_to_unit)
        sync = lat.sync_cycles + lat.sync_ns * ns_to_unit
        unit_s = 1.0 / lat.clock_hz
        # bandwidth bound: bits moved at each level / its bits per cycle
        mem_bits: dict[str, np.ndarray] = {}
        for tr in traffic:
            if tr.level.bandwidth_bits_per_cycle:
                mem_bits.setdefault(tr.level.name, np.zeros_like(mac))
                mem_bits[tr.level.name] += tr.counts * tr.bits[:, None] / tr.level.bandwidth_bits_per_cycle
        mem_cycles = np.zeros_like(mac)
        for arr in mem_bits.values():
            mem_cycles = np.maximum(mem_cycles, _ceil(arr))
        if lat.mode != "tick_parallel":
            work = np.maximum(work, mem_cycles)
    elif timed:
        assert lat.synop_ns is not None and lat.neuron_update_ns is not None
        pes = float(par.pes_per_core)
        idle_ns = lat.neuron_update_inactive_ns if lat.neuron_update_inactive_ns is not None else lat.neuron_update_ns
        work = (_ceil(ac / (u * pes)) * lat.synop_ns
                + _ceil(mac / (u * pes)) * (lat.mac_ns if lat.mac_ns is not None else lat.synop_ns)
                + _ceil(active / u) * lat.neuron_update_ns + _ceil(inactive / u) * idle_ns
                + _ceil(spikes / u) * lat.spike_ns)
        sync = lat.sync_ns
        unit_s = 1e-9
        mem_cycles = np.zeros_like(mac)
    else:  # fixed tick only: work per layer unknown
        work = np.full_like(mac, np.nan)
        sync = 0.0
        unit_s = 1.0
        mem_cycles = np.zeros_like(mac)
    if offload.any():  # the baseline accelerator's time, in this chip's units
        work = np.where(offload[:, None], off_s / unit_s, work)

    overruns = 0
    if lat.mode == "timestep_serial":
        total_units = float(work.sum() + steps * sync)
    elif lat.mode == "layer_pipelined":
        dur = work.sum(axis=1)
        start = np.zeros(n_layers)
        for i in range(1, n_layers):
            start[i] = start[i - 1] + lat.pipeline_start_fraction * dur[i - 1]
        total_units = float(np.max(start + dur) + steps * sync)
    else:  # tick_parallel
        if timed:
            tick_units = np.max(work, axis=0)
            if clocked:
                tick_units = np.maximum(tick_units, _ceil(mem_cycles.sum(axis=0)))
            tick_units = tick_units + sync
        elif offload.any():  # only the baseline's part of each tick is known
            tick_units = np.max(np.where(offload[:, None], work, 0.0), axis=0)
        else:
            tick_units = np.zeros(steps)
        if lat.tick_s is not None:
            fixed = lat.tick_s / unit_s
            known = timed or bool(offload.any())
            overruns = int(np.sum(tick_units > fixed * (1 + 1e-12))) if known else 0
            tick_units = np.maximum(tick_units, fixed)
        total_units = float(tick_units.sum())
        if lat.layer_delay_ticks and n_layers > 1:
            total_units += (n_layers - 1) * float(tick_units.mean())

    layer_units = work.sum(axis=1)
    total_s = total_units * unit_s
    return {
        "layer_s": layer_units * unit_s,
        "layer_cycles": layer_units if clocked else np.full(n_layers, np.nan),
        "total_s": total_s,
        "total_cycles": total_units if clocked else (total_s * lat.clock_hz if lat.clock_hz else math.nan),
        "chips": chips, "cores_used": cores_used, "overruns": overruns,
    }


# --------------------------------------------------------------------------- ANN
def ann_baseline(layers: Sequence[LayerInfo], hw: HardwareConfig,
                 connections: Connections = DEFAULT_CONNECTIONS) -> CostResult:
    """Energy and latency of the same-spec ANN on ``hw``'s baseline hardware, per inference.

    Dense MACs (the layers' connections by ``connections``: in-bounds by default, the same
    connections the SNN's events can reach; ``conventional`` = ``LayerInfo.macs``, padding taps
    included) x the baseline's MAC energy; memory by the baseline's reuse mode (``no_reuse``:
    one weight and one input read per MAC, each output written once; ``ideal_reuse``: every
    tensor through its level once; ``ratios``: per-level pJ per MAC); one activation (a compare)
    per hidden neuron; latency = sum over layers of ceil(MACs / (PEs x utilization x MACs per
    cycle)) at the baseline clock.
    """
    layers = list(layers)
    if not layers:
        raise SnnsimError("ann_baseline: no layers given", "pass the model's layer_infos")
    _check_connections(connections)
    ann = hw.ann
    bhw = ann.hw
    charge = not ann.compute_only
    n_layers = len(layers)
    primary = primary_layers(layers)
    macs = np.array([float(layer_connections(li, connections)) for li in layers])
    macs = macs + bias_adds(layers, np.ones((n_layers, 1), dtype=bool))[:, 0]  # a bias add per neuron
    macs = macs + norm_ops(layers, np.ones((n_layers, 1), dtype=bool))[:, 0]  # an unfolded BN: a multiply-add per neuron
    neurons = np.array([float(li.neurons) if first else 0.0 for li, first in zip(layers, primary, strict=True)])
    in_size = np.array([float(_prod(li.in_shape)) for li in layers])
    acts = np.array([float(li.neurons) if li.spiking and first else 0.0 for li, first in zip(layers, primary, strict=True)])

    arr = _on_baseline(ann, layers, macs[:, None], np.ones((n_layers, 1), dtype=bool), charge)
    e_mem_by_level = arr.e_mem_by_level
    e_mem = sum(e_mem_by_level.values(), np.zeros(n_layers))
    e_mac = arr.e_mac
    e_neuron = acts * ann.compare_pj if charge else np.zeros(n_layers)
    cycles = arr.cycles[:, 0]
    layer_s = arr.seconds[:, 0]
    total_s = float(layer_s.sum()) if ann.clock_hz else math.nan
    static_total = ann.static_mw * 1e-3 * total_s * 1e12 if (charge and ann.static_mw > 0) else 0.0
    dynamic = e_mac + e_mem + e_neuron
    e_static = _split(static_total, layer_s, dynamic)
    total = dynamic + e_static

    rows = []
    for i, li in enumerate(layers):
        rows.append({
            "layer": li.name, "index": i, "kind": li.kind, "population": li.target, "runs_on": bhw.name,
            "timesteps": 1,
            "neurons": int(neurons[i]), "input_events": float(in_size[i]), "spike_rate": math.nan,
            "spikes_per_neuron": math.nan, "ac": 0.0, "mac": float(macs[i]), "dense_ops": float(macs[i]),
            "weight_reads": float(arr.weight_reads[i]), "potential_reads": 0.0, "potential_writes": 0.0,
            "input_reads": float(arr.input_reads[i]), "output_writes": float(arr.output_writes[i]),
            "neuron_updates": float(acts[i]), "spikes_out": 0.0,
            "energy_compute_pj": float(e_mac[i]), "energy_memory_pj": float(e_mem[i]),
            "energy_neuron_pj": float(e_neuron[i]), "energy_routing_pj": 0.0,
            "energy_static_pj": float(e_static[i]), "energy_total_pj": float(total[i]),
            "latency_cycles": float(cycles[i]), "latency_s": float(layer_s[i]),
        })
    breakdown = {"compute_ac": 0.0, "compute_mac": float(e_mac.sum())}
    breakdown.update({f"memory:{k}": float(v.sum()) for k, v in e_mem_by_level.items()})
    breakdown.update({"neuron": float(e_neuron.sum()), "routing": 0.0, "static": float(static_total)})
    totals = {
        "energy_pj": float(total.sum()), "energy_compute_pj": float(e_mac.sum()),
        "energy_memory_pj": float(e_mem.sum()), "energy_neuron_pj": float(e_neuron.sum()),
        "energy_routing_pj": 0.0, "energy_static_pj": float(static_total),
        "latency_cycles": float(cycles.sum()), "latency_s": total_s, "chips": 1.0, "cores_used": 1.0,
        "tick_overruns": 0.0, "timesteps": 1.0, "ac": 0.0, "mac": float(macs.sum()), "spikes_out": 0.0,
        "neuron_updates": float(acts.sum()),
    }
    notes = [f"ANN baseline on {bhw.name}: reuse={ann.reuse}, MAC {ann.mac_pj} pJ, {connections} connections"
             + (f"; {ann.reason}" if ann.reason else "")]
    if ann.compute_only:
        notes.append("compute-only: memory, activation and static energy counted but not charged")
    label = f"{bhw.name} (compute-only)" if ann.compute_only else bhw.name
    res = CostResult("ann", label, _frame(rows), breakdown,
                     pd.DataFrame(arr.access_rows, columns=list(ACCESS_COLUMNS)), totals, notes)
    _check_finite(res, hw)
    return res


# --------------------------------------------------------------------------- summary
def summarize(snn: CostResult, ann: CostResult) -> dict[str, Any]:
    """Headline numbers: energies, ANN/SNN ratio (also compute-only), latency and EDP."""
    e_snn, e_ann = snn.energy_pj, ann.energy_pj
    c_snn, c_ann = snn.totals["energy_compute_pj"], ann.totals["energy_compute_pj"]
    lat_s, lat_ann_s = snn.latency_s, ann.latency_s
    edp = e_snn * lat_s
    edp_ann = e_ann * lat_ann_s
    return {
        "hw": snn.hw_name, "baseline_hw": ann.hw_name,
        "energy_snn_pj": e_snn, "energy_ann_pj": e_ann,
        "energy_ann_over_snn": _ratio(e_ann, e_snn),
        "energy_snn_compute_pj": c_snn, "energy_ann_compute_pj": c_ann,
        "energy_compute_ann_over_snn": _ratio(c_ann, c_snn),
        "latency_cycles": snn.latency_cycles, "latency_s": lat_s,
        "latency_ann_cycles": ann.latency_cycles, "latency_ann_s": lat_ann_s,
        "latency_snn_over_ann": _ratio(lat_s, lat_ann_s),
        "edp_pj_s": edp, "edp_ann_pj_s": edp_ann, "edp_ann_over_snn": _ratio(edp_ann, edp),
        "timesteps": int(snn.totals["timesteps"]), "chips": int(snn.totals["chips"]),
        "tick_overruns": int(snn.totals["tick_overruns"]),
    }


def _ratio(num: float, den: float) -> float:
    if not (math.isfinite(num) and math.isfinite(den)) or den == 0:
        return math.nan
    return num / den


def _dense_first(counts: CountsLike, first_layer: str) -> np.ndarray:
    """[L] the layers a MAC convention charges densely on a spike-input model (its first layer)."""
    spikes = getattr(counts, "input_kind", "analog") == "spikes" and first_layer != "ac_with_input_rate"
    return np.array([spikes and bool(getattr(li, "analog_input", False)) and li.kind != "identity"
                     for li in counts.layers], dtype=bool)


def cost_report(counts: CountsLike, hw: HardwareConfig, first_layer: FirstLayer = "auto",
                skip_zero_weights: bool = False, ann_layers: Sequence[LayerInfo] | None = None,
                connections: Connections = DEFAULT_CONNECTIONS) -> CostReport:
    """SNN cost, ANN baseline (on ``ann_layers``, default the counts' layers) and summary.

    Pass the *unpruned* network's layers as ``ann_layers`` to compare a pruned SNN with its
    unpruned ANN, as the paper does. ``connections`` (:data:`CONNECTIONS_CHOICES`) is applied to
    both sides, so that they count the same connections: ``inbounds`` (default, padding taps
    never count) or ``conventional`` (padding taps counted on both sides; docs/counting.md).
    """
    _check_connections(connections)
    first_layer = resolve_first_layer(first_layer, counts)  # type: ignore[assignment]
    snn = snn_cost(counts, hw, first_layer=first_layer, skip_zero_weights=skip_zero_weights,
                   connections=connections)
    ann = ann_baseline(list(ann_layers) if ann_layers is not None else list(counts.layers), hw,
                       connections=connections)
    summary = summarize(snn, ann)
    analog = np.flatnonzero(np.asarray(counts.analog, dtype=bool) | _dense_first(counts, first_layer))
    where = list(dict.fromkeys(str(snn.layers["runs_on"].iloc[i]) for i in analog))
    summary.update({"first_layer": first_layer, "skip_zero_weights": bool(skip_zero_weights),
                    "compute_only": bool(hw.compute_only), "connections": connections,
                    "analog_runs_on": ", ".join(where) if where else "-"})
    _check_summary(summary, hw)
    return CostReport(snn, ann, summary)


# --------------------------------------------------------------------------- finiteness backstop
# The schema's bounds (snnsim.hw, docs/hardware-configs.md "Bounds") keep every figure finite for
# realistic counts; these checks make sure no inf, NaN or negative number is ever reported if
# something slips through (a config edited in Python, absurd counts), naming the fields to fix.


def _hw_where(hw: HardwareConfig) -> str:
    return f"hardware config {hw.label!r}" + (f" ({hw.path})" if hw.path is not None else "")


def _fields_of(component: str, kind: str, hw: HardwareConfig) -> tuple[str, str]:
    """(how the figure is formed, the config fields to fix) for one energy component or figure."""
    if kind == "ann":
        bname = hw.ann.hw.name
        if component.startswith("memory"):
            fields = f"baseline.pj_per_mac or the memory levels of {bname}"
            return f"MACs x {fields}", fields
        table = {
            "compute_mac": ("MACs x baseline MAC energy", "baseline.mac_pj (or compute.mac_pj of the baseline)"),
            "neuron": (f"activations x compute.compare_pj of {bname}", f"compute.compare_pj of {bname}"),
            "static": (f"static.power_mw of {bname} x ANN latency", f"static.power_mw of {bname}"),
            "latency": ("MACs / (pes x utilization x macs_per_cycle_per_pe) / clock_hz",
                        "baseline.clock_hz, pes, utilization, macs_per_cycle_per_pe"),
        }
        return table.get(component, ("the baseline", "the baseline section"))
    if component.startswith("memory:") and component.count(":") == 2:  # a baseline level (analog layer)
        _, where, name = component.split(":")
        return (f"accesses x the energy of memory level {name!r} of {where}",
                f"read_pj, write_pj or energy_per_bit_pj of memory level {name!r} of {where}, or baseline.pj_per_mac")
    if component.startswith("memory:"):
        name = component.split(":", 1)[1]
        return (f"accesses x the energy of memory level {name!r}",
                f"read_pj, write_pj or energy_per_bit_pj of memory level {name!r}")
    table = {
        "compute_ac": ("ACs x compute.ac_pj", "compute.ac_pj"),
        "compute": ("ops x compute.ac_pj / mac_pj", "compute.ac_pj and compute.mac_pj"),
        "compute_mac": ("MACs x compute.mac_pj", "compute.mac_pj (or the baseline's MAC energy)"),
        "memory": ("accesses x memory energies", "the memory levels' read_pj, write_pj, energy_per_bit_pj"),
        "neuron": ("updates x neuron and compute energies",
                   "neuron.update_pj / update_inactive_pj and compute.leak_pj / compare_pj / reset_pj"),
        "routing": ("spikes x routing energies", "routing.spike_pj, hop_pj, hops_per_spike"),
        "static": ("static.power_mw x latency", "static.power_mw"),
        "latency": ("work / throughput x time per cycle or event",
                    "latency.* (clock_hz, tick_s, *_ns, sync_*) and parallelism.*"),
    }
    return table.get(component, ("the config", "the config's energies and timing"))


def _bad(value: float) -> bool:
    return not math.isfinite(value) or value < 0


def _fail(hw: HardwareConfig, kind: str, what: str, value: float, component: str) -> None:
    how, fields = _fields_of(component, kind, hw)
    raise ConfigError(f"{_hw_where(hw)}: {kind.upper()} {what} is {value:g}: {how} overflowed or went negative",
                      f"{'check' if component == 'latency' else 'lower'} {fields} (bounds: docs/hardware-configs.md)")


def _check_finite(res: CostResult, hw: HardwareConfig) -> None:
    """Every energy (component, layer row, access, total) and the latency of ``res`` must be finite
    and >= 0. NaN is allowed only where it means "not applicable": cycles on an unclocked chip,
    the ANN's time when its hardware has no clock."""
    kind = res.kind
    for comp, value in res.breakdown.items():
        if _bad(float(value)):
            _fail(hw, kind, f"energy component {comp!r}", float(value), comp)
    unclocked = (hw.latency.clock_hz is None) if kind == "snn" else (hw.ann.clock_hz is None)
    for key, value in res.totals.items():
        v = float(value)
        comp = {"energy_compute_pj": "compute", "energy_memory_pj": "memory", "energy_neuron_pj": "neuron",
                "energy_routing_pj": "routing", "energy_static_pj": "static"}.get(key, "latency")
        if key.startswith("energy"):
            if _bad(v):
                _fail(hw, kind, f"total {key}", v, comp)
        elif key.startswith("latency"):
            na = math.isnan(v) and unclocked and ((key == "latency_cycles" and kind == "snn")
                                                  or (key == "latency_s" and kind == "ann"))
            if _bad(v) and not na:
                _fail(hw, kind, key, v, "latency")
        elif _bad(v):
            _fail(hw, kind, key, v, "latency")
    energy_cols = [c for c in res.layers.columns if c.startswith("energy_")]
    values = res.layers[energy_cols].to_numpy(dtype=np.float64)
    if values.size and (not np.all(np.isfinite(values)) or np.any(values < 0)):
        col = energy_cols[int(np.argwhere(~np.isfinite(values) | (values < 0))[0][1])]
        _fail(hw, kind, f"per-layer {col}", float(values[~np.isfinite(values) | (values < 0)][0]),
              col.removeprefix("energy_").removesuffix("_pj"))
    acc = res.accesses["energy_pj"].to_numpy(dtype=np.float64) if len(res.accesses) else np.zeros(0)
    if acc.size and (not np.all(np.isfinite(acc)) or np.any(acc < 0)):
        bad = ~np.isfinite(acc) | (acc < 0)
        _fail(hw, kind, "a memory-access energy", float(acc[bad][0]), f"memory:{res.accesses['level'][bad].iloc[0]}")


_RATIOS = ("energy_ann_over_snn", "energy_compute_ann_over_snn", "latency_snn_over_ann", "edp_ann_over_snn")


def _check_summary(summary: dict[str, Any], hw: HardwareConfig) -> None:
    """Headline figures: energies and EDPs finite and >= 0; ratios >= 0 and finite, or NaN where
    undefined (a zero denominator, or an ANN without a clock)."""
    for key, value in summary.items():
        if not isinstance(value, float | int) or isinstance(value, bool):
            continue
        v = float(value)
        may_be_nan = key in _RATIOS or key.startswith(("latency_ann", "edp_ann")) or key == "latency_cycles"
        if _bad(v) and not (may_be_nan and math.isnan(v)):
            comp = "latency" if ("latency" in key or "edp" in key) else "compute"
            _fail(hw, "snn/ann", f"summary figure {key!r}", v, comp)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


__all__ = [
    "ACCESS_COLUMNS",
    "CONNECTIONS_CHOICES",
    "DEFAULT_CONNECTIONS",
    "FIRST_LAYER_CHOICES",
    "norm_ops",
    "INPUT_KINDS",
    "resolve_first_layer",
    "ROW_COLUMNS",
    "CostReport",
    "CostResult",
    "CountsLike",
    "ann_baseline",
    "cost_report",
    "layer_connections",
    "snn_cost",
    "summarize",
]
