"""An unfoldable BatchNorm2d (behind a residual add, in front of a population): the simulator
normalises the summed current with PyTorch's own op, the cost model charges one multiply-add per
neuron per timestep (and the ANN baseline one per neuron), integer replay refuses it in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snnsim.compression.quantize import quantize_model
from snnsim.cost import cost_report, layer_connections, norm_ops
from snnsim.errors import SnnsimError
from snnsim.graph.builders import GraphBuilder
from snnsim.graph.layers import simulation_view
from snnsim.graph.nodes import LIF, Add, Affine, AvgPool2d, BatchNorm2d, Conv2d, Flatten, Integrator
from snnsim.hw import load_hw
from snnsim.models import build_model
from snnsim.recording import record_trace
from snnsim.sim.integer import integer_spec
from snnsim.sim.replay import layer_plans, normalised_current, replay, simulate_chunk
from snnsim.training import convert_ann_to_snn

T = 4


def _preact_graph():  # type: ignore[no-untyped-def]
    g = GraphBuilder("preact", (1, 8, 8))
    g.add("c1", Conv2d(out_channels=8, kernel_size=3, padding=1))
    g.add("bn1", BatchNorm2d())
    l1 = g.add("l1", LIF())
    c2 = g.add("c2", Conv2d(out_channels=8, kernel_size=3, padding=1), l1)
    c3 = g.add("c3", Conv2d(out_channels=8, kernel_size=1), l1)
    g.add("add", Add(), c2, c3)
    g.add("bn2", BatchNorm2d())  # behind an add: it cannot be folded into one conv
    g.add("l2", LIF())
    g.add("pool", AvgPool2d(kernel_size=2))
    g.add("fl", Flatten())
    g.add("fc", Affine(out_features=10))
    g.add("out", Integrator())
    return g.build()


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    from snnsim.data import load_dataset

    test = load_dataset("digits").test
    x = torch.stack([test[i][0] for i in range(24)])
    ann = build_model(_preact_graph(), kind="ann", seed=0)
    ann.train()
    with torch.no_grad():  # BN statistics of the data, so the normalisation is not the identity
        for _ in range(5):
            ann.forward_ann(x)
    ann.eval()
    snn = convert_ann_to_snn(ann, [(x, torch.zeros(len(x), dtype=torch.long))], timesteps=T).eval()
    return snn, x


def test_view_marks_the_normalised_population(setup) -> None:  # type: ignore[no-untyped-def]
    snn, _ = setup
    assert "bn1" not in snn.graph.nodes and "bn2" in snn.graph.nodes  # bn1 folded into c1, bn2 kept
    assert {i.name: i.norm for i in snn.layer_infos} == {"c1": "", "c2": "bn2", "c3": "bn2", "fc": ""}


def test_replay_normalises_like_pytorch(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    snn, x = setup
    trace = record_trace(snn, x, tmp_path / "t", progress=False)
    ref: dict = {}

    def obs(ev) -> None:  # type: ignore[no-untyped-def]
        ref[(ev.node, ev.t)] = ev.potential.detach().clone()

    with torch.no_grad():
        snn.forward_snn(x, T, obs)
    res = simulate_chunk(layer_plans(snn), next(trace.iter_chunks(len(x))), T, "float", "recorded", snn,
                         keep_potentials=True)
    assert res.potentials is not None and res.mismatches is not None
    row = next(p.primary for p in snn.populations if p.name == "l2")
    for t in range(T):  # the normalised potentials: PyTorch's, up to float32 summation order of the convs
        np.testing.assert_allclose(res.potentials[row][:, t], ref[("l2", t)].reshape(len(x), -1).numpy(),
                                   rtol=1e-5, atol=1e-5)
    spikes = int(np.unpackbits(np.asarray(trace.spikes("l2"))).sum())
    assert spikes > 100 and res.mismatches[:, row].sum() <= 1e-3 * spikes
    # the normalisation is not the identity here, so skipping it would fail the comparison above
    cur = np.random.default_rng(0).standard_normal((2, T, 8 * 8 * 8)).astype(np.float32)
    assert np.abs(normalised_current(snn, "bn2", cur, (8, 8, 8)) - cur).max() > 0.1


def test_cost_charges_one_multiply_add_per_neuron(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    snn, x = setup
    counts = replay(record_trace(snn, x, tmp_path / "t", progress=False), snn, progress=False)
    layers = list(snn.layer_infos)
    norm = norm_ops(layers, np.ones((len(layers), T), dtype=bool))
    c2 = next(i for i, li in enumerate(layers) if li.name == "c2")
    assert norm[c2].tolist() == [layers[c2].neurons] * T and norm.sum() == T * layers[c2].neurons
    rep = cost_report(counts, load_hw("45nm", compute_only=True))
    assert rep.snn.layers.iloc[c2]["mac"] == pytest.approx(T * layers[c2].neurons)
    assert any("unfolded batch norm (bn2)" in note for note in rep.snn.notes)
    ann_macs = rep.ann.layers.set_index("layer")["mac"]
    assert ann_macs["c2"] == pytest.approx(layer_connections(layers[c2], "inbounds") + layers[c2].neurons)


def test_integer_replay_refuses_it_in_one_line(setup) -> None:  # type: ignore[no-untyped-def]
    snn, _ = setup
    with pytest.raises(SnnsimError, match="unfolded BatchNorm2d 'bn2'"):
        integer_spec(quantize_model(snn, 8))


def test_a_batch_norm_whose_input_feeds_more_is_refused() -> None:
    g = GraphBuilder("bad", (1, 6, 6))
    g.add("c1", Conv2d(out_channels=2, kernel_size=3, padding=1))
    a = g.add("l1", LIF())
    c2 = g.add("c2", Conv2d(out_channels=2, kernel_size=3, padding=1), a)
    c3 = g.add("c3", Conv2d(out_channels=2, kernel_size=3, padding=1), a)
    add = g.add("add", Add(), c2, c3)
    g.add("bn", BatchNorm2d(), add)
    g.add("l2", LIF())
    g.add("l3", LIF(), add)
    g.add("sum", Add(), "l2", "l3")
    g.add("fl", Flatten())
    g.add("fc", Affine(out_features=3))
    g.add("out", Integrator())
    with pytest.raises(SnnsimError, match="feeds BatchNorm2d 'bn' and other nodes"):
        simulation_view(g.build())
