"""Cost model: the paper's compute-only check table, memory/neuron/routing terms, latency
modes, the ANN baseline, and guards (spike rate applied once, per-inference division)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import yaml

from snnsim.arch import ArchSpec, LayerInfo, make_arch
from snnsim.cost import (
    ROW_COLUMNS,
    ann_baseline,
    cost_report,
    layer_connections,
    snn_cost,
    summarize,
)
from snnsim.errors import SnnsimError, TraceError
from snnsim.hw import HardwareConfig, config_from_dict, load_hw

try:  # the simulator's dataclass, when it exists; otherwise a stand-in with the same fields
    from snnsim.sim.replay import SimCounts
except ImportError:  # pragma: no cover - only before the simulator lands
    from dataclasses import dataclass

    @dataclass
    class SimCounts:  # type: ignore[no-redef]
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


def make_counts(layers: list[LayerInfo], timesteps: int, samples: int = 1, *, syn: np.ndarray,
                syn_nz: np.ndarray | None = None, spikes: np.ndarray | None = None,
                touched: np.ndarray | None = None, events: np.ndarray | None = None) -> Any:
    """SimCounts from per-sample [L, T] arrays (multiplied by ``samples``, as the contract sums)."""
    n = len(layers)
    neurons = np.array([li.neurons for li in layers], dtype=np.float64)
    dense = np.array([li.macs for li in layers], dtype=np.float64)
    inbounds = np.array([layer_connections(li, "inbounds") for li in layers], dtype=np.float64)
    full = np.tile(neurons[:, None], (1, timesteps))
    zeros = np.zeros((n, timesteps))
    return SimCounts(
        layers=layers, samples=samples, timesteps=timesteps,
        input_events=(events if events is not None else zeros) * samples,
        syn_ops=syn * samples,
        syn_ops_nz=(syn_nz if syn_nz is not None else syn) * samples,
        touched_neurons=(touched if touched is not None else full) * samples,
        spikes_out=(spikes if spikes is not None else zeros) * samples,
        dense_ops=dense, dense_ops_inbounds=inbounds, neurons=neurons,
        analog=np.array([li.analog_input for li in layers]),
    )


def paper_counts(R: float, timesteps: int = 5) -> Any:
    """VGG16/CIFAR10 counts of paper.md sec. 7.2 as the simulator would count them: layer 0
    analog (every in-bounds connection every step), every later layer R x its in-bounds
    connections over the T steps (R = spikes per neuron per inference; a uniform rate R drives
    R x the connections that exist). With ``connections="conventional"`` the cost model scales
    these to R x FLOPs, the lineage's formula, on both sides."""
    layers = make_arch("vgg16").layers()
    dense = np.array([layer_connections(li, "inbounds") for li in layers], dtype=np.float64)
    neurons = np.array([li.neurons for li in layers], dtype=np.float64)
    syn = np.zeros((len(layers), timesteps))
    syn[0] = dense[0]
    syn[1:] = (R * dense[1:] / timesteps)[:, None]
    spikes = np.zeros_like(syn)
    spikes[:-1] = (R * neurons[:-1] / timesteps)[:, None]
    return make_counts(layers, timesteps, syn=syn, spikes=spikes)


def tiny_layers() -> list[LayerInfo]:
    """conv 1->4 @4x4 (analog, 576 MACs, 64 neurons), fc 16->5 (80, 5), out 5->3 (15, 3)."""
    return ArchSpec("tiny", (4, "A"), (5,), (1, 4, 4), 3).layers()


BASE: dict[str, Any] = yaml.safe_load("""\
name: unit
technology: {node_nm: 45}
numerics: {weight_bits: 8, potential_bits: 16, activation_bits: 8, spike_bits: 1}
compute: {mac_pj: 2.0, ac_pj: 0.5}
latency: {mode: timestep_serial, clock_hz: 1.0e+9}
baseline: {reuse: no_reuse}
""")


def cfg(**sections: Any) -> HardwareConfig:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return config_from_dict(data, source="unit")


# ----------------------------------------------------------------------------- the paper
PAPER_TABLE = [(0.1, 40.5), (0.2, 22.6), (0.34, 14.0), (0.5, 9.75), (0.615, 8.0), (1.0, 5.00), (2.0, 2.53)]


@pytest.mark.parametrize(("R", "ratio"), PAPER_TABLE)
def test_paper_check_table_compute_only_45nm(R: float, ratio: float) -> None:
    """The paper lineage's check table counts conventional FLOPs (padding taps included) on both
    sides, so it is reproduced with connections="conventional"; the in-bounds default is in
    tests/test_fairness.py."""
    hw = load_hw("45nm", compute_only=True)
    rep = cost_report(paper_counts(R), hw, first_layer="mac_once", connections="conventional")
    # E_SNN = 1,769,472 x 4.6 pJ + 336,633,856 x R x 0.9 pJ (paper.md sec. 7.2)
    assert rep.snn.energy_pj == pytest.approx(1_769_472 * 4.6 + 336_633_856 * R * 0.9, rel=1e-12)
    assert rep.summary["energy_ann_over_snn"] == pytest.approx(ratio, abs=0.006 * ratio)
    assert round(rep.ann.energy_pj / 1e6, 1) == 1556.7  # µJ
    assert rep.ann.totals["mac"] == 338_403_328


def test_paper_check_layer_rows() -> None:
    # the lineage's conventional FLOPs (paper.md sec. 7.2): connections="conventional"
    rep = cost_report(paper_counts(0.34), load_hw("45nm", compute_only=True), first_layer="mac_once",
                      connections="conventional")
    rows = rep.snn.layers
    assert list(rows.columns) == list(ROW_COLUMNS)
    assert rows.loc[0, "mac"] == 1_769_472 and rows.loc[0, "ac"] == 0
    assert rows["ac"].sum() == pytest.approx(0.34 * 336_633_856)
    assert rows.loc[3, "spikes_per_neuron"] == pytest.approx(0.34)
    assert rows.loc[3, "spike_rate"] == pytest.approx(0.34 / 5)  # per neuron per timestep
    assert set(rep.snn.breakdown) >= {"compute_ac", "compute_mac", "neuron", "routing", "static"}
    assert rep.snn.breakdown["memory:sram"] == 0.0  # compute-only: counted, not charged
    assert rows["weight_reads"].sum() > 0


def test_first_layer_mac_per_timestep_costs_T_times() -> None:
    hw = load_hw("45nm", compute_only=True)
    once = snn_cost(paper_counts(0.34, timesteps=25), hw, first_layer="mac_once", connections="conventional")
    every = snn_cost(paper_counts(0.34, timesteps=25), hw, first_layer="mac_per_timestep", connections="conventional")
    assert every.layers.loc[0, "mac"] == pytest.approx(25 * once.layers.loc[0, "mac"], rel=1e-12)
    # paper.md sec. 7.2 (conventional FLOPs): conv1 alone at T=25 costs 203.5 µJ under mac_per_timestep
    assert every.layers.loc[0, "energy_compute_pj"] / 1e6 == pytest.approx(203.5, abs=0.05)
    assert (every.layers.loc[1:, "energy_compute_pj"].to_numpy()
            == once.layers.loc[1:, "energy_compute_pj"].to_numpy()).all()


def test_spike_rate_is_not_applied_twice() -> None:
    """hardware.md sec. 8 pitfall a: syn_ops already hold the rate; E = syn_ops x 0.9 pJ."""
    hw = load_hw("45nm", compute_only=True)
    layers = tiny_layers()
    rate = 0.1366
    syn = np.array([[576.0], [rate * 80], [rate * 15]])
    base = snn_cost(make_counts(layers, 1, syn=syn, spikes=np.array([[rate * 64], [rate * 5], [0.0]])), hw,
                    first_layer="mac_once")
    assert base.layers.loc[1, "energy_compute_pj"] == pytest.approx(rate * 80 * 0.9)
    assert base.layers.loc[1, "energy_compute_pj"] != pytest.approx(rate * 80 * 0.9 * rate)
    # compute energy depends on the op counts only, never again on the spike counts
    other = snn_cost(make_counts(layers, 1, syn=syn, spikes=np.array([[60.0], [5.0], [0.0]]),
                                 events=np.ones((3, 1)) * 7), hw, first_layer="mac_once")
    assert other.energy_pj == pytest.approx(base.energy_pj)
    assert other.layers.loc[0, "spike_rate"] == pytest.approx(60 / 64)


def test_compute_only_is_exactly_mac_and_ac_on_45nm() -> None:
    rng = np.random.default_rng(0)
    layers = make_arch("vgg5").layers()
    syn = rng.uniform(0, 1e5, size=(len(layers), 3)).round()
    counts = make_counts(layers, 3, samples=4, syn=syn, spikes=rng.uniform(0, 50, size=syn.shape).round(),
                         events=rng.uniform(0, 50, size=syn.shape).round())
    res = snn_cost(counts, load_hw("45nm", compute_only=True))
    expected = syn[0].sum() * 4.6 + syn[1:].sum() * 0.9  # per inference (counts were x samples)
    assert res.energy_pj == pytest.approx(expected, rel=1e-12)
    assert res.totals["energy_memory_pj"] == res.totals["energy_neuron_pj"] == res.totals["energy_static_pj"] == 0


def test_totals_are_per_inference() -> None:
    layers = tiny_layers()
    syn = np.array([[576.0, 576.0], [30.0, 10.0], [5.0, 1.0]])
    one = snn_cost(make_counts(layers, 2, samples=1, syn=syn), load_hw("45nm"))
    many = snn_cost(make_counts(layers, 2, samples=7, syn=syn), load_hw("45nm"))
    assert many.energy_pj == pytest.approx(one.energy_pj)
    assert many.layers["ac"].tolist() == pytest.approx(one.layers["ac"].tolist())


def test_skip_zero_weights_uses_nonzero_ops() -> None:
    layers = tiny_layers()
    syn = np.array([[576.0], [40.0], [10.0]])
    nz = np.array([[500.0], [20.0], [10.0]])
    hw = load_hw("45nm", compute_only=True)
    dense = snn_cost(make_counts(layers, 1, syn=syn, syn_nz=nz), hw)
    sparse = snn_cost(make_counts(layers, 1, syn=syn, syn_nz=nz), hw, skip_zero_weights=True)
    assert dense.energy_pj == pytest.approx(576 * 4.6 + 50 * 0.9)
    assert sparse.energy_pj == pytest.approx(500 * 4.6 + 30 * 0.9)


# ----------------------------------------------------------------------------- memory, neurons
MEM = {
    "levels": [{"name": "sram", "kind": "sram", "width_bits": 32, "read_pj": 4.0, "write_pj": 2.0},
               {"name": "dram", "kind": "dram", "energy_per_bit_pj": 10.0}],
    "dataspaces": {"weights": [{"level": "sram", "fetch": "per_synop"}, {"level": "dram", "fetch": "once"}],
                   "potentials": [{"level": "sram", "access": "per_synop"}],
                   "spikes": [{"level": "sram"}]},
}


def test_memory_counts_and_energies_by_policy() -> None:
    layers = tiny_layers()
    T = 2
    syn = np.array([[576.0, 576.0], [30.0, 10.0], [4.0, 6.0]])
    spikes = np.array([[8.0, 6.0], [2.0, 1.0], [0.0, 0.0]])
    events = np.array([[16.0, 16.0], [5.0, 3.0], [2.0, 1.0]])
    res = snn_cost(make_counts(layers, T, syn=syn, spikes=spikes, events=events), cfg(memory=MEM))
    rows = res.layers
    params = np.array([li.params for li in layers], dtype=float)
    neurons = np.array([li.neurons for li in layers], dtype=float)
    ops = syn.sum(axis=1)
    updates = neurons * T  # clock-driven
    assert rows["weight_reads"].tolist() == ops.tolist()
    assert rows["potential_reads"].tolist() == (ops + updates).tolist()
    w_bits, p_bits = 8, 16
    sram = (ops * 4.0 * w_bits / 32                      # weight reads
            + (ops + updates) * (4.0 + 2.0) * p_bits / 32  # potential read + write
            + events.sum(axis=1) * 4.0 * np.array([8, 1, 1]) / 32  # analog inputs 8 bit, spikes 1 bit
            + spikes.sum(axis=1) * 2.0 * 1 / 32)          # spike writes
    dram = params * w_bits * 10.0                          # every weight once per inference
    assert res.layers["energy_memory_pj"].to_numpy() == pytest.approx(sram + dram)
    assert res.breakdown["memory:dram"] == pytest.approx(dram.sum())
    assert res.breakdown["memory:sram"] == pytest.approx(sram.sum())
    acc = res.accesses
    assert acc[(acc.level == "dram")]["count"].sum() == pytest.approx(params.sum())

    per_t = cfg(memory={**MEM, "dataspaces": {"weights": {"level": "sram", "fetch": "per_timestep"},
                                              "potentials": {"level": "sram", "access": "per_update"}}})
    res2 = snn_cost(make_counts(layers, T, syn=syn), per_t)
    assert res2.layers["weight_reads"].tolist() == (params * T).tolist()
    assert res2.layers["potential_writes"].tolist() == updates.tolist()


def test_aggregate_and_uncharged_levels_count_but_cost_nothing() -> None:
    layers = tiny_layers()
    syn = np.array([[576.0], [30.0], [4.0]])
    res = snn_cost(make_counts(layers, 1, syn=syn), load_hw("truenorth"))
    # TrueNorth's own (aggregate) memory costs nothing; its accesses are still counted
    assert res.breakdown["memory:core_sram"] == 0.0
    assert res.layers["weight_reads"].iloc[1:].sum() == syn[1:].sum()
    assert res.layers.loc[1, "energy_compute_pj"] == pytest.approx(30 * 26.0)
    # no MAC datapath: the analog layer runs on the baseline (eyeriss-like): its MACs at 0.208 pJ
    # and, since issue 13 item 7, its memory at eyeriss-like's per-MAC ratios (it was free on the chip)
    assert res.layers.loc[0, "runs_on"] == "eyeriss-like"
    assert res.layers.loc[0, "energy_compute_pj"] == pytest.approx(576 * 0.208)
    assert res.totals["energy_memory_pj"] == pytest.approx(576 * (0.38677 + 1.00669 + 0.11237 + 0.37527 + 3.38086))
    assert any("no MAC datapath" in n for n in res.notes)


def test_neuron_update_policies_and_active_inactive_energy() -> None:
    layers = tiny_layers()
    T = 3
    syn = np.array([[576.0] * T, [10.0] * T, [2.0] * T])
    touched = np.array([[64.0] * T, [3.0, 2.0, 0.0], [1.0, 1.0, 1.0]])
    spikes = np.array([[5.0] * T, [1.0, 0.0, 0.0], [0.0] * T])
    neuron = {"update_policy": "clock_driven", "update_pj": 10.0, "update_inactive_pj": 4.0, "leak": "mul"}
    compute = {"mac_pj": 2.0, "ac_pj": 0.5, "leak_pj": 1.0, "compare_pj": 0.5, "reset_pj": 0.25}
    clock = snn_cost(make_counts(layers, T, syn=syn, touched=touched, spikes=spikes), cfg(neuron=neuron, compute=compute))
    # fc1: 5 active updates x (10 + 1 + 0.5) + 10 idle x (4 + 1 + 0.5) + 1 spike x 0.25
    assert clock.layers.loc[1, "neuron_updates"] == 15
    assert clock.layers.loc[1, "energy_neuron_pj"] == pytest.approx(5 * 11.5 + 10 * 5.5 + 0.25)
    # output layer: no leak, compare or reset (it only accumulates)
    assert clock.layers.loc[2, "energy_neuron_pj"] == pytest.approx(3 * 10.0 + 6 * 4.0)
    event = snn_cost(make_counts(layers, T, syn=syn, touched=touched, spikes=spikes),
                     cfg(neuron={**neuron, "update_policy": "event_driven"}, compute=compute))
    assert event.layers.loc[1, "neuron_updates"] == 5
    assert event.layers.loc[1, "energy_neuron_pj"] == pytest.approx(5 * 11.5 + 0.25)


def test_routing_energy_per_spike() -> None:
    layers = tiny_layers()
    syn = np.array([[576.0], [30.0], [4.0]])
    spikes = np.array([[10.0], [2.0], [0.0]])
    res = snn_cost(make_counts(layers, 1, syn=syn, spikes=spikes),
                   cfg(routing={"spike_pj": 1.0, "hop_pj": 3.0, "hops_per_spike": 2.0}))
    assert res.layers["energy_routing_pj"].tolist() == pytest.approx([70.0, 14.0, 0.0])


def test_rows_sum_to_totals_on_every_shipped_config() -> None:
    layers = tiny_layers()
    syn = np.array([[576.0, 576.0], [30.0, 10.0], [4.0, 6.0]])
    counts = make_counts(layers, 2, syn=syn, spikes=np.array([[8.0, 6.0], [2.0, 1.0], [0.0, 0.0]]),
                         events=np.array([[16.0, 16.0], [5.0, 3.0], [2.0, 1.0]]),
                         touched=np.array([[64.0, 64.0], [5.0, 4.0], [3.0, 3.0]]))
    for name in ("45nm", "45nm-int8", "eyeriss-like", "loihi", "truenorth", "spinnaker2"):
        rep = cost_report(counts, load_hw(name))
        for res in (rep.snn, rep.ann):
            rows = res.layers
            parts = rows[["energy_compute_pj", "energy_memory_pj", "energy_neuron_pj", "energy_routing_pj",
                          "energy_static_pj"]].sum(axis=1)
            assert parts.to_numpy() == pytest.approx(rows["energy_total_pj"].to_numpy()), name
            assert rows["energy_total_pj"].sum() == pytest.approx(res.energy_pj), name
            assert sum(res.breakdown.values()) == pytest.approx(res.energy_pj), name
            assert np.isfinite(res.energy_pj) and res.energy_pj > 0, name
            assert res.latency_s > 0, name
        assert rep.summary["energy_ann_over_snn"] == pytest.approx(rep.ann.energy_pj / rep.snn.energy_pj)


# ----------------------------------------------------------------------------- latency
def test_latency_timestep_serial_cycles() -> None:
    layers = tiny_layers()
    T = 2
    syn = np.array([[576.0, 576.0], [30.0, 10.0], [4.0, 6.0]])
    hw = cfg(parallelism={"cores": 1, "pes_per_core": 8, "synops_per_cycle_per_pe": 1.0,
                          "neuron_updates_per_cycle_per_core": 16.0},
             latency={"mode": "timestep_serial", "clock_hz": 1e8, "sync_cycles": 3})
    res = snn_cost(make_counts(layers, T, syn=syn), hw)
    # per (l, t): ceil(ops / 8) + ceil(neurons / 16)
    c0 = 2 * (72 + 4)
    c1 = (4 + 1) + (2 + 1)
    c2 = (1 + 1) + (1 + 1)
    assert res.layers["latency_cycles"].tolist() == [c0, c1, c2]
    assert res.latency_cycles == c0 + c1 + c2 + T * 3
    assert res.latency_s == pytest.approx((c0 + c1 + c2 + 6) / 1e8)


def test_latency_bandwidth_bound() -> None:
    layers = tiny_layers()
    syn = np.array([[576.0], [30.0], [4.0]])
    mem = {"levels": [{"name": "sram", "kind": "sram", "width_bits": 32, "read_pj": 1.0, "write_pj": 1.0,
                       "bandwidth_bits_per_cycle": 8}],
           "dataspaces": {"weights": {"level": "sram", "fetch": "per_synop"}}}
    hw = cfg(memory=mem, parallelism={"pes_per_core": 1024, "neuron_updates_per_cycle_per_core": 1024.0})
    res = snn_cost(make_counts(layers, 1, syn=syn), hw)
    # 576 weight reads x 8 bits / 8 bits per cycle = 576 cycles > 1 compute cycle + 1 update cycle
    assert res.layers.loc[0, "latency_cycles"] == 576


def test_latency_fixed_tick_truenorth() -> None:
    layers = tiny_layers()
    T = 4
    res = snn_cost(make_counts(layers, T, syn=np.full((3, T), 5.0)), load_hw("truenorth"))
    assert res.latency_s == pytest.approx((T + len(layers) - 1) * 1e-3)  # one tick per layer of delay
    assert math.isnan(res.latency_cycles)


def test_latency_asynchronous_loihi() -> None:
    layers = tiny_layers()
    T = 2
    syn = np.array([[576.0, 576.0], [30.0, 10.0], [4.0, 6.0]])
    touched = np.array([[64.0, 64.0], [5.0, 4.0], [3.0, 3.0]])
    spikes = np.array([[8.0, 6.0], [2.0, 1.0], [0.0, 0.0]])
    hw = load_hw("loihi")
    res = snn_cost(make_counts(layers, T, syn=syn, touched=touched, spikes=spikes), hw)
    # every layer fits one core: work(l, t) = ops x 3.5 + active x 8.4 + idle x 5.3 + spikes x 2.1 ns
    work = (syn * 3.5 + touched * 8.4 + (np.array([[64], [5], [3]]) - touched) * 5.3 + spikes * 2.1)
    # Issue 13 item 7: the analog layer runs on the baseline (eyeriss-like), not on Loihi's cores:
    # ceil(576 MACs / (168 PEs x 0.75)) = 5 cycles at 200 MHz per timestep
    work[0] = 5 / 2e8 * 1e9
    tick = work.max(axis=0) + 465.0
    expected_ns = tick.sum() + (len(layers) - 1) * tick.mean()
    assert res.latency_s == pytest.approx(expected_ns * 1e-9)
    assert res.layers["latency_s"].to_numpy() == pytest.approx(work.sum(axis=1) * 1e-9)
    # static power: 104 mW x 1 chip x latency (eyeriss-like, where layer 0 runs, has none)
    assert res.breakdown["static"] == pytest.approx(0.104 * expected_ns * 1e-9 * 1e12)
    # layer 0 takes no Loihi core (it used to take one: cores_used was 3)
    assert res.totals["chips"] == 1 and res.totals["cores_used"] == 2


def test_latency_layer_pipelined() -> None:
    layers = tiny_layers()
    syn = np.array([[576.0], [32.0], [8.0]])
    hw = cfg(parallelism={"cores": 8, "neurons_per_core": 64, "pes_per_core": 1,
                          "neuron_updates_per_cycle_per_core": 64.0},
             latency={"mode": "layer_pipelined", "clock_hz": 1e9, "pipeline_start_fraction": 0.5})
    res = snn_cost(make_counts(layers, 1, syn=syn), hw)
    dur = np.array([576 + 1, 32 + 1, 8 + 1], dtype=float)  # one core per layer
    start = np.array([0, 0.5 * dur[0], 0.5 * dur[0] + 0.5 * dur[1]])
    assert res.latency_cycles == pytest.approx(float(np.max(start + dur)))


def test_mapped_cores_respect_synapse_capacity() -> None:
    layers = make_arch("vgg16").layers()
    res = snn_cost(paper_counts(0.2), load_hw("loihi"))
    # in-bounds synapses (issue 13 item 7; they were LayerInfo.macs), on the chip's layers only
    # (the analog layer runs on eyeriss-like)
    synapses = sum(layer_connections(li, "inbounds") for li in layers[1:])
    assert res.totals["cores_used"] >= synapses / 131072
    assert res.totals["chips"] == math.ceil(res.totals["cores_used"] / 128)


# ----------------------------------------------------------------------------- ANN baseline
def test_ann_baseline_reuse_modes() -> None:
    layers = tiny_layers()
    # in-bounds connections (issue 13 item 7): conv1 has 400, not the conventional 576
    macs = np.array([layer_connections(li, "inbounds") for li in layers], dtype=float)
    assert macs.tolist() == [400, 80, 15]
    params = np.array([li.params for li in layers], dtype=float)
    neurons = np.array([li.neurons for li in layers], dtype=float)
    ins = np.array([16.0, 16.0, 5.0])
    mem = {"levels": [{"name": "sram", "kind": "sram", "width_bits": 32, "read_pj": 4.0, "write_pj": 2.0}],
           "dataspaces": {"weights": {"level": "sram"}, "spikes": {"level": "sram"}}}
    no = ann_baseline(layers, cfg(memory=mem))
    assert no.layers["weight_reads"].tolist() == macs.tolist()
    assert no.energy_pj == pytest.approx(macs.sum() * 2.0 + (2 * macs * 4.0 * 8 / 32).sum()
                                         + (neurons * 2.0 * 8 / 32).sum())
    ideal = ann_baseline(layers, cfg(memory=mem, baseline={"reuse": "ideal_reuse"}))
    assert ideal.layers["weight_reads"].tolist() == params.tolist()
    assert ideal.layers["input_reads"].tolist() == ins.tolist()
    assert ideal.energy_pj < no.energy_pj
    eyeriss = ann_baseline(layers, load_hw("eyeriss-like"))
    assert eyeriss.energy_pj == pytest.approx(macs.sum() * (0.208 + 0.38677 + 1.00669 + 0.11237 + 0.37527 + 3.38086)
                                              + (neurons[:2].sum()) * 0.042)
    # latency: ceil(MACs / (168 PEs x 0.75)) cycles at 200 MHz
    assert eyeriss.layers["latency_cycles"].tolist() == np.ceil(macs / 126).tolist()
    co = ann_baseline(layers, load_hw("eyeriss-like", compute_only=True))
    assert co.energy_pj == pytest.approx(macs.sum() * 0.208)


def test_eyeriss_reference_layer_cycles() -> None:
    """Timeloop's reference conv (C=3, M=32, 112x112 out, 3x3) = 10,838,016 MACs on 126 PEs
    takes 86,016 cycles (hardware.md sec. 2.3). Timeloop's loop nest runs every R x S tap,
    padding included, so this is the conventional count."""
    layer = LayerInfo(0, "ref", "conv", (3, 224, 224), (32, 112, 112), (3, 224, 224), kernel=3, stride=2,
                      padding=1, spiking=False)
    res = ann_baseline([layer], load_hw("eyeriss-like"), connections="conventional")
    assert res.totals["mac"] == 10_838_016
    assert res.latency_cycles == 86_016


def test_summary_fields() -> None:
    # conventional: the 9.75 below is paper.md sec. 7.2's (conventional FLOPs) at R = 0.5
    rep = cost_report(paper_counts(0.5), load_hw("45nm"), first_layer="mac_once", connections="conventional")
    s = rep.summary
    for key in ("energy_snn_pj", "energy_ann_pj", "energy_ann_over_snn", "latency_cycles", "latency_s", "edp_pj_s",
                "energy_compute_ann_over_snn", "latency_ann_s", "edp_ann_over_snn"):
        assert key in s
    assert s["edp_pj_s"] == pytest.approx(s["energy_snn_pj"] * s["latency_s"])
    assert s["energy_compute_ann_over_snn"] == pytest.approx(9.75, abs=0.01)  # compute-only part of the same run
    assert s["energy_ann_over_snn"] < s["energy_compute_ann_over_snn"]  # memory narrows the gap
    assert summarize(rep.snn, rep.ann)["energy_ann_over_snn"] == s["energy_ann_over_snn"]


def test_quantized_weights_shrink_weight_memory_only_on_snn_side() -> None:
    counts = paper_counts(0.3)
    full = cost_report(counts, load_hw("45nm"))
    q4 = cost_report(counts, load_hw("45nm").with_numerics(weight_bits=4))
    w_full = full.snn.accesses.query("dataspace == 'weights'")["energy_pj"].sum()
    w_q4 = q4.snn.accesses.query("dataspace == 'weights'")["energy_pj"].sum()
    assert w_q4 == pytest.approx(w_full * 4 / 32)
    assert q4.ann.energy_pj == pytest.approx(full.ann.energy_pj)


# ----------------------------------------------------------------------------- guards
def test_bad_counts_and_options() -> None:
    layers = tiny_layers()
    good = make_counts(layers, 2, syn=np.ones((3, 2)))
    bad = make_counts(layers, 2, syn=np.ones((3, 2)))
    bad.spikes_out = np.ones((2, 2))
    with pytest.raises(TraceError, match="spikes_out"):
        snn_cost(bad, load_hw("45nm"))
    bad = make_counts(layers, 2, syn=np.ones((3, 2)))
    bad.syn_ops = -bad.syn_ops
    with pytest.raises(TraceError, match="syn_ops"):
        snn_cost(bad, load_hw("45nm"))
    with pytest.raises(SnnsimError, match="first_layer"):
        snn_cost(good, load_hw("45nm"), first_layer="mac_twice")  # type: ignore[arg-type]
    with pytest.raises(SnnsimError):
        ann_baseline([], load_hw("45nm"))


# ----------------------------------------------------------------------------- finiteness
EXTREME = """\
name: extreme
technology: {{node_nm: 100000, voltage_v: 1000}}
numerics: {{weight_bits: 64, potential_bits: 64, activation_bits: 64, spike_bits: 64}}
compute: {{mac_pj: {E}, ac_pj: {E}, leak_pj: {E}, compare_pj: {E}, reset_pj: {E}}}
neuron: {{update_pj: {E}, update_inactive_pj: {E}, leak: mul}}
memory:
  levels:
    - {{name: m, kind: dram, width_bits: 1, read_pj: {E}, write_pj: {E}, bandwidth_bits_per_cycle: {BW}}}
  dataspaces:
    weights: [{{level: m, fetch: per_synop}}, {{level: m, fetch: per_timestep}}]
    potentials: [{{level: m, access: per_synop}}]
    spikes: [{{level: m}}]
routing: {{spike_pj: {E}, hop_pj: {E}, hops_per_spike: 1.0e+6}}
parallelism: {{cores: 1, pes_per_core: 1, synops_per_cycle_per_pe: {RATE}, neuron_updates_per_cycle_per_core: {RATE},
              neurons_per_core: 1}}
latency: {{mode: layer_pipelined, clock_hz: {CLOCK}, spike_ns: {T}, sync_cycles: 1.0e+9, sync_ns: {T}}}
static: {{power_mw: {P}}}
baseline: {{reuse: no_reuse, utilization: 1.0e-6, macs_per_cycle_per_pe: {RATE}, pes: 1}}
"""
#: Every bound at the end that makes figures largest, and at the end that makes them smallest.
LARGEST = {"E": "1.0e+6", "BW": "1.0e-3", "RATE": "1.0e-6", "CLOCK": "1000", "T": "1.0e+9", "P": "1.0e+6"}
SMALLEST = {"E": "1.0e-9", "BW": "1.0e+9", "RATE": "1.0e+6", "CLOCK": "1.0e+12", "T": "1.0e-6", "P": "1.0e-9"}


def _all_finite(rep: Any) -> None:
    for res in (rep.snn, rep.ann):
        assert all(math.isfinite(v) and v >= 0 for v in res.breakdown.values())
        assert math.isfinite(res.energy_pj) and math.isfinite(res.latency_s)
        assert np.isfinite(res.layers.filter(like="energy_").to_numpy()).all()
    for key in ("energy_ann_over_snn", "energy_compute_ann_over_snn", "latency_snn_over_ann", "edp_ann_over_snn", "edp_pj_s"):
        assert math.isfinite(rep.summary[key]) and rep.summary[key] >= 0, key


def test_every_bound_at_its_extreme_still_costs_finitely(tmp_path: Any) -> None:
    """The largest energies, static power and slowest clock the schema accepts (and the smallest
    non-zero ones), on VGG16 at R = 2 / 0.1 with T = 5: every figure stays finite."""
    from pathlib import Path

    p = Path(tmp_path) / "extreme.yaml"
    p.write_text(EXTREME.format(**LARGEST))
    rep = cost_report(paper_counts(2.0), load_hw(p))
    _all_finite(rep)
    assert rep.snn.energy_pj > 1e20 and rep.snn.latency_s > 1e9  # really extreme, and still finite
    p.write_text(EXTREME.format(**SMALLEST))
    rep = cost_report(paper_counts(0.1), load_hw(p))
    _all_finite(rep)
    assert 0 < rep.snn.energy_pj < 1e6


@pytest.mark.parametrize(("edit", "component", "field"), [
    (lambda hw: setattr(hw.static, "power_mw", 1e305), "'static' is inf", "lower static.power_mw"),
    (lambda hw: setattr(hw.compute, "ac_pj", 1e308), "'compute_ac' is inf", "lower compute.ac_pj"),
    (lambda hw: setattr(hw.memory.levels[0], "read_pj", float("inf")), "'memory:sram'", "memory level 'sram'"),
    (lambda hw: setattr(hw.latency, "clock_hz", 5e-324), "latency_s is inf", "check latency.*"),
    (lambda hw: setattr(hw.routing, "spike_pj", -1.0), "'routing' is -", "lower routing.spike_pj"),
])
def test_a_non_finite_figure_is_a_one_line_config_error(edit: Any, component: str, field: str) -> None:
    """Backstop: a config changed after validation cannot make the report print inf or nan."""
    from snnsim.errors import ConfigError

    hw = load_hw("45nm")
    edit(hw)
    with pytest.raises(ConfigError) as info, np.errstate(all="ignore"):
        cost_report(paper_counts(0.5), hw)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("hardware config '45nm'") and "45nm.yaml" in msg
    assert component in msg and field in msg, msg


def test_ann_backstop_names_the_baseline_fields() -> None:
    from snnsim.errors import ConfigError

    hw = load_hw("loihi")
    hw.ann.hw.static.power_mw = 1e306  # the eyeriss-like baseline, edited after loading
    with pytest.raises(ConfigError, match=r"ANN energy component 'static' is inf.*static.power_mw of eyeriss-like"), \
            np.errstate(all="ignore"):
        ann_baseline(make_arch("vgg16").layers(), hw)


def test_not_applicable_nan_is_allowed_only_where_documented() -> None:
    tn = load_hw("truenorth")
    rep = cost_report(paper_counts(0.5), tn)
    assert math.isnan(rep.summary["latency_cycles"])  # unclocked chip: cycles not applicable
    assert math.isfinite(rep.summary["energy_ann_over_snn"]) and math.isfinite(rep.summary["latency_s"])
    zero = cfg(compute={"mac_pj": 0.0, "ac_pj": 0.0})
    layers = tiny_layers()
    rep = cost_report(make_counts(layers, 2, syn=np.ones((3, 2))), zero)
    assert rep.snn.energy_pj == 0 and math.isnan(rep.summary["energy_ann_over_snn"])  # 0/0 stays "n/a"
