"""NeuroBench-2.3-compatible profile: golden architecture values (peers-counting.md §4.2),
per-call AC/MAC classification, and the trace profile against a per-call re-implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sim_testutil import MIXED, inputs, set_thresholds, spiking_model
from torch import nn

from snnsim.arch import ArchSpec
from snnsim.models import build_model
from snnsim.recording import record_trace
from snnsim.sim import replay
from snnsim.sim.neurobench import (
    aggregate,
    architecture_metrics,
    inbounds_connections,
    neurobench_call,
)
from snnsim.sim.replay import layer_plans

TINY = ArchSpec("tiny", (8, "M", 16, "M"), (), (2, 16, 16), 10)


def test_tiny_net_golden_architecture_values() -> None:
    layers = TINY.layers()
    arch = architecture_metrics(layers, 8)
    assert arch["DenseByLayer"] == [270_848, 495_616, 20_480]
    assert arch["Dense"] == 786_944
    assert arch["ConventionalDense"] == 905_216
    assert sum(i.neurons for i in layers) == 3_082
    assert arch["MembraneUpdates"] == 24_656
    assert arch["NeuronOperations"] == 98_624
    # the fan-out maps of the simulator agree with the closed form
    plans = layer_plans(build_model(TINY, seed=0))
    assert [p.dense_inbounds for p in plans] == [inbounds_connections(i) for i in layers]


def test_tiny_net_replay_reports_the_golden_dense(tmp_path) -> None:
    model = build_model(TINY, seed=0, timesteps=8)
    set_thresholds(model, 0.5)
    trace = record_trace(model, torch.rand(3, 2, 16, 16), tmp_path / "tiny", progress=False)
    nb = replay(trace, model, counting="neurobench", progress=False).neurobench
    assert nb is not None
    assert nb.dense == 786_944 and nb.membrane_updates == 24_656 and nb.neuron_operations == 98_624
    # real-valued input, max pooling: layer 0 is MAC, every other layer AC (the "real / max" row)
    assert nb.mac_ops[1:].sum() == 0 and nb.ac_ops[0].sum() == 0
    assert nb.effective_macs == 270_848  # no zero inputs, unpruned: every in-bounds connection


def test_generic_call_classifier_edge_cases() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(100, 10)
    with torch.no_grad():
        lin.weight[lin.weight.abs() < 0.03] = 0  # prune some weights
    x = (torch.rand(4, 100) < 0.3).float()
    eff, is_ac, dense = neurobench_call(x, lin)
    assert is_ac and dense == 4 * 1000
    assert eff == float((x @ (lin.weight != 0).float().T).sum())
    j = int((x[2] == 0).nonzero()[0])
    x2 = x.clone()
    x2[2, j] = 0.5  # one graded element anywhere turns the whole batch into MACs
    eff2, is_ac2, _ = neurobench_call(x2, lin)
    assert not is_ac2 and eff2 == eff + int((lin.weight[:, j] != 0).sum())
    x3 = x.clone()
    x3[1, :5] = -1  # ternary spikes still count as ACs
    assert neurobench_call(x3, lin)[1]
    x4 = x.clone()
    x4[0, 0] = 2.0  # graded spikes of value 2 are MACs
    assert not neurobench_call(x4, lin)[1]


def test_aggregate_depends_on_the_batch() -> None:
    layers = TINY.layers()
    eff = np.ones((4, 3, 8), dtype=np.int64)
    binary = np.ones((4, 3, 8), dtype=bool)
    binary[3, 1, 0] = False  # one sample's layer-1 input at t=0 is graded
    one = aggregate(eff, binary, layers, 8, batch_size=1)
    four = aggregate(eff, binary, layers, 8, batch_size=4)
    assert one.effective_macs == pytest.approx(1 / 4) and four.effective_macs == pytest.approx(4 / 4)
    assert one.effective_acs + one.effective_macs == four.effective_acs + four.effective_macs == 24


@pytest.mark.parametrize("batch_size", [3, 10])
def test_trace_profile_equals_per_call_neurobench_rules(tmp_path, batch_size: int) -> None:
    model = spiking_model(MIXED, timesteps=3, prune=0.3)
    x = inputs(MIXED, 10, seed=9)
    x[:3] = torch.randint(-1, 2, (3, *MIXED.input_shape)).float()  # a ternary first batch: layer 0 AC there
    trace = record_trace(model, x, tmp_path / "nb", progress=False)
    nb = replay(trace, model, counting="neurobench", batch_size=batch_size, progress=False)
    # reference: run the model batch by batch and apply NeuroBench's rule to every layer call
    calls: list[tuple[float, bool, float]] = []
    handles = [syn.register_forward_pre_hook(lambda mod, inp: calls.append(neurobench_call(inp[0], mod)))
               for syn in model.synapses]
    try:
        with torch.no_grad():
            for a in range(0, 10, batch_size):
                model.forward_snn(x[a:a + batch_size], 3)
    finally:
        for h in handles:
            h.remove()
    macs = sum(e for e, ac, _ in calls if not ac) / 10
    acs = sum(e for e, ac, _ in calls if ac) / 10
    dense = sum(d for _, _, d in calls) / 10
    assert nb.neurobench is not None
    assert nb.neurobench.effective_macs == pytest.approx(macs, rel=0, abs=1e-9)
    assert nb.neurobench.effective_acs == pytest.approx(acs, rel=0, abs=1e-9)
    assert nb.neurobench.dense == dense
    assert nb.syn_ops.sum() / 10 == pytest.approx(macs + acs)
    if batch_size == 3:
        assert nb.neurobench.ac_ops[0].sum() > 0  # the ternary batch made layer 0 AC


def test_avg_pool_pitfall_is_only_reproduced_in_the_neurobench_profile(tmp_path) -> None:
    model = spiking_model(MIXED, timesteps=3)
    trace = record_trace(model, inputs(MIXED, 6, seed=1), tmp_path / "avg", progress=False)
    ours = replay(trace, model, progress=False)
    theirs = replay(trace, model, counting="neurobench", batch_size=6, progress=False)
    avg_layer = next(i for i, info in enumerate(model.layer_infos) if info.pool == "avg")
    assert ours.mac_ops[avg_layer].sum() == 0 and ours.ac_ops[avg_layer].sum() > 0  # spikes -> avgpool -> conv: ACs
    assert theirs.neurobench.ac_ops[avg_layer].sum() == 0 and theirs.neurobench.mac_ops[avg_layer].sum() > 0
    assert theirs.analog[avg_layer]


def _resnet_snn():  # type: ignore[no-untyped-def]
    """The digits ResNet converted to an SNN (T = 4), BatchNorm statistics calibrated on random
    inputs first so its folded convs carry biases (NeuroBench excludes them)."""
    from sim_testutil import converted_resnet

    x = torch.rand((64, 1, 8, 8), generator=torch.Generator().manual_seed(0)) * 2 - 1
    return converted_resnet(x), x


@pytest.mark.parametrize("batch_size", [5, 12])
def test_resnet_profile_equals_per_call_neurobench_rules(tmp_path, batch_size: int) -> None:
    """On a residual graph: identity shortcuts are adds NeuroBench never sees (no ops, no Dense),
    the strided / 1x1 convs and the avg-pooled fc are counted per call like any layer, and each
    population's neurons enter MembraneUpdates once."""
    model, x = _resnet_snn()
    xs = x[:12]
    trace = record_trace(model, xs, tmp_path / "nb", progress=False)
    nb = replay(trace, model, counting="neurobench", batch_size=batch_size, progress=False)
    calls: list[tuple[float, bool, float]] = []
    handles = [syn.register_forward_pre_hook(lambda mod, inp: calls.append(neurobench_call(inp[0], mod)))
               for syn in model.synapses if syn is not None]
    try:
        with torch.no_grad():
            for a in range(0, 12, batch_size):
                model.forward_snn(xs[a:a + batch_size], 4)
    finally:
        for h in handles:
            h.remove()
    assert nb.neurobench is not None
    assert nb.neurobench.effective_macs == pytest.approx(sum(e for e, ac, _ in calls if not ac) / 12, rel=0, abs=1e-9)
    assert nb.neurobench.effective_acs == pytest.approx(sum(e for e, ac, _ in calls if ac) / 12, rel=0, abs=1e-9)
    assert nb.neurobench.dense == sum(d for _, _, d in calls) / 12
    identities = [li for li, i in enumerate(model.layer_infos) if i.kind == "identity"]
    assert identities
    for li in identities:
        assert nb.neurobench.dense_by_layer[li] == 0
        assert nb.neurobench.mac_ops[li].sum() == nb.neurobench.ac_ops[li].sum() == 0
    arch = architecture_metrics(list(model.layer_infos), 4)
    assert arch["MembraneUpdates"] == 4 * sum(p.neurons for p in model.populations)  # not per layer
    assert nb.neurobench.membrane_updates == arch["MembraneUpdates"]
