"""SEW connections (a synapse reading an Add of spikes: graded values): the simulator's view,
counts against the dense reference, float and integer replay, the event engine, NeuroBench's
rules, spatial pruning's width groups and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sim_testutil import converted_resnet

from snnsim.compression.quantize import quantize_model
from snnsim.compression.spatial import width_groups
from snnsim.errors import SnnsimError
from snnsim.graph import build_graph
from snnsim.graph.builders import GraphBuilder
from snnsim.graph.layers import simulation_view
from snnsim.graph.nodes import LIF, Add, Affine, Conv2d, Flatten, Integrator, MaxPool2d
from snnsim.graph.schedule import fold_structure
from snnsim.recording import record_trace
from snnsim.sim import kernels as K
from snnsim.sim.integer import integer_forward, integer_spec
from snnsim.sim.reference import counts_ref
from snnsim.sim.replay import layer_plans, replay, simulate_chunk

T = 4


@pytest.fixture(scope="module")
def sew_x() -> torch.Tensor:
    from snnsim.data import load_dataset

    test = load_dataset("digits").test
    return torch.stack([test[i][0] for i in range(12)])


@pytest.fixture(scope="module")
def sew_model(sew_x: torch.Tensor):  # type: ignore[no-untyped-def]
    return converted_resnet(sew_x, arch="digits-sew", timesteps=T)


def test_view_reads_sums_of_populations() -> None:
    layers, _ = simulation_view(fold_structure(build_graph("digits-sew")))
    graded = {i.name: i.parts for i in layers if i.parts}
    assert graded == {"s2b1_conv1": ("s1b1_lif2", "stem_lif"), "s2b1_down": ("s1b1_lif2", "stem_lif"),
                      "out": ("s2b1_lif2", "s2b1_down_lif")}
    assert all(i.source.endswith("_add") for i in layers if i.parts)
    # the populations a SEW add sums share one width under spatial pruning
    groups = width_groups(build_graph("digits-sew"))
    assert ["stem_lif", "s1b1_lif2"] in [sorted(g, reverse=True) for g in groups]
    assert any({"s2b1_lif2", "s2b1_down_lif"} <= set(g) for g in groups)


def test_max_pool_of_a_sum_and_a_sum_of_currents_are_refused() -> None:
    g = GraphBuilder("bad", (1, 6, 6))
    g.add("c1", Conv2d(out_channels=2, kernel_size=3, padding=1))
    a = g.add("l1", LIF())
    g.add("c2", Conv2d(out_channels=2, kernel_size=3, padding=1))
    b = g.add("l2", LIF())
    g.add("sum", Add(), a, b)
    g.add("mp", MaxPool2d(kernel_size=2))
    g.add("fl", Flatten())
    g.add("fc", Affine(out_features=3))
    g.add("out", Integrator())
    with pytest.raises(SnnsimError, match="does not max-pool a sum of spikes"):
        simulation_view(g.build())
    g = GraphBuilder("bad2", (1, 6, 6))
    g.add("c1", Conv2d(out_channels=2, kernel_size=3, padding=1))
    a = g.add("l1", LIF())
    c2 = g.add("c2", Conv2d(out_channels=2, kernel_size=3, padding=1), a)
    g.add("sum", Add(), a, c2)
    g.add("fl", Flatten())
    g.add("fc", Affine(out_features=3))
    g.add("out", Integrator())
    with pytest.raises(SnnsimError, match="must sum spikes"):
        simulation_view(g.build())


def test_counts_float_replay_and_event_engine(tmp_path: Path, sew_model, sew_x: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    trace = record_trace(sew_model, sew_x, tmp_path / "t", labels=np.arange(12) % 10, progress=False)
    counts = replay(trace, sew_model, functional="float", progress=False)
    # Spike for spike as PyTorch, up to float32 summation-order flips (docs/counting.md): a wrong
    # graded value (a 2 read as a 1, or avg pooling divided twice) would flip thousands.
    mism = counts.functional.spike_mismatches.sum(axis=1)
    spikes = counts.functional.recorded_spikes.sum(axis=1)
    graded_rows = [i.index for i in sew_model.layer_infos if i.parts and i.spiking]
    assert spikes[graded_rows].min() > 100
    assert mism[graded_rows].sum() <= 1e-3 * spikes[graded_rows].sum() and mism.sum() <= 1e-3 * spikes.sum()
    np.testing.assert_array_equal(counts.functional.predictions, trace.predictions)
    nb = replay(trace, sew_model, counting="neurobench", progress=False)
    graded_seen = 0
    for li, info in enumerate(sew_model.layer_infos):
        if info.analog_input:
            continue
        events = trace.unpack(li)
        graded_seen += int(events.max() > 1)
        ref = counts_ref(info, sew_model[info.name].weight, events)
        for field, got in (("events", counts.input_events), ("syn", counts.syn_ops), ("syn_nz", counts.syn_ops_nz),
                           ("touched", counts.touched_neurons)):
            np.testing.assert_array_equal(got[li], ref[field].sum(axis=0), err_msg=f"{info.name} {field}")
        # NeuroBench: effective ops on the binarised input, MACs where a value is not 0/1
        np.testing.assert_array_equal(nb.syn_ops[li], ref["nb_eff"].sum(axis=0), err_msg=f"{info.name} nb_eff")
        if info.parts and (events > 1).any(axis=tuple(range(2, events.ndim))).all():
            assert nb.mac_ops[li].sum() > 0 and nb.ac_ops[li].sum() == 0
    assert graded_seen >= 2  # two spikes met somewhere: the sums were graded
    # the event engine is the simulator's chained float replay, run from the images
    event = record_trace(sew_model, sew_x, tmp_path / "e", progress=False, engine="event")
    chained = simulate_chunk(layer_plans(sew_model), next(trace.iter_chunks(12)), T, "float", "chained", sew_model)
    assert chained.out_bits is not None
    for pop in sew_model.populations:
        if pop.spiking:
            np.testing.assert_array_equal(np.asarray(event.spikes(pop.name)), chained.out_bits[pop.primary])


def test_graded_counts_split_events_and_union(sew_model) -> None:  # type: ignore[no-untyped-def]
    """Two spikes at one site: two events (each drives its fan-out), one nonzero site."""
    info = next(i for i in sew_model.layer_infos if i.name == "out")
    plan = layer_plans(sew_model)[info.index]
    bits = np.zeros((1, 1, (info.source_size + 7) // 8), dtype=np.uint8)
    bits[0, 0, 0] = 0b1000_0000
    from snnsim.sim.replay import _count_layer

    one = _count_layer(plan, bits, None, 1)
    both = _count_layer(plan, [bits, bits.copy()], None, 1)
    assert both[0, 0, K.COL_EVENTS] == 2 * one[0, 0, K.COL_EVENTS]
    assert both[0, 0, K.COL_SYN] == 2 * one[0, 0, K.COL_SYN]
    assert both[0, 0, K.COL_SITES] == one[0, 0, K.COL_SITES] == 1
    assert both[0, 0, K.COL_TOUCHED] == one[0, 0, K.COL_TOUCHED]
    assert one[0, 0, K.COL_NB_BINARY] == 0  # avg pooling: 1 of k^2 spikes is not binary
    assert both[0, 0, K.COL_NB_BINARY] == 0


@pytest.mark.parametrize("bits", [8, 5])
def test_integer_replay_of_sew_is_bit_exact(tmp_path: Path, sew_model, sew_x: torch.Tensor, bits: int) -> None:  # type: ignore[no-untyped-def]
    model = quantize_model(sew_model, bits)
    spec = integer_spec(model, timesteps=T)
    ref: dict = {}

    def obs(ev) -> None:  # type: ignore[no-untyped-def]
        ref[(ev.node, ev.t)] = ev.potential.clone()

    acc = integer_forward(model, sew_x, spec, T, obs)
    trace = record_trace(model, sew_x, tmp_path / "q", progress=False)
    res = simulate_chunk(layer_plans(model), next(trace.iter_chunks(12)), T, "integer", "chained", model, spec,
                         keep_potentials=True)
    assert res.potentials is not None
    for pop in model.populations:
        for t in range(T):
            np.testing.assert_array_equal(res.potentials[pop.primary][:, t], ref[(pop.name, t)].reshape(12, -1).numpy(),
                                          err_msg=f"{pop.name} t {t}")
    np.testing.assert_array_equal(res.acc, acc.numpy())


def test_cli_info_and_estimate_on_a_sew_model(tmp_path: Path, run_cli, sew_model) -> None:  # type: ignore[no-untyped-def]
    from snnsim.checkpoint import save_model

    sew_model.dataset_info = {"name": "digits", "mean": [0.5], "std": [0.5], "input_shape": [1, 8, 8],
                              "num_classes": 10}
    save_model(sew_model, tmp_path / "sew.pt")
    code, out, err = run_cli("info", "--arch", "digits-sew")
    assert code == 0 and "s1b1_add" in out, err
    code, out, err = run_cli("estimate", "--model", tmp_path / "sew.pt", "--samples", "16", "--out", tmp_path / "r",
                             "--quiet", "--functional", "float")
    assert code == 0, err
    layers = (tmp_path / "r" / "layers.csv").read_text()
    assert "s2b1_down" in layers and "spike mismatches" in out
