"""The current-based LIF population (``CubaLIF``: NIR CubaLIF, snnTorch Synaptic) end to end:
the PyTorch backend, the numba kernels against their reference, functional replay and the
event engine against PyTorch, the integer-replay and threshold-balancing refusals, and the
cost model's charge for the second state variable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snnsim.errors import SnnsimError
from snnsim.graph import Add, Affine, AvgPool2d, Conv2d, Flatten, GraphBuilder, Integrator
from snnsim.graph.graph import Graph
from snnsim.graph.nodes import CubaLIF
from snnsim.models import Model, build_model
from snnsim.sim import kernels as K
from snnsim.sim import reference as R


# ----------------------------------------------------------------------------- graphs
def cuba_graph(residual: bool = True) -> Graph:
    """conv (no bias: the fused one-layer path, per-channel neurons, hard reset, '>=') -> CubaLIF
    -> [conv2 (+ the identity) -> Add] -> CubaLIF (summed path) -> pool -> flatten -> fc (no bias)
    -> CubaLIF (fused linear path) -> fc -> the output integrator."""
    g = GraphBuilder("cuba", (1, 8, 8))
    g.add("c1", Conv2d(out_channels=4, kernel_size=3, padding=1, bias=False))
    entry = g.add("c1_lif", CubaLIF(per_channel=True, reset="value", v_reset=0.1, fire=">="))
    g.add("c2", Conv2d(out_channels=4, kernel_size=3, padding=1, bias=True))
    if residual:
        g.add("add", Add(), "c2", entry)
    g.add("c2_lif", CubaLIF())
    g.add("pool", AvgPool2d(kernel_size=2))
    g.add("flatten", Flatten())
    g.add("fc1", Affine(out_features=12, bias=False))
    g.add("fc1_lif", CubaLIF(per_channel=True))
    g.add("out", Affine(out_features=5))
    g.add("out_integrator", Integrator())
    return g.build()


def cuba_model(seed: int = 0, residual: bool = True) -> Model:
    """The graph's SNN with random weights, leaks and decays, thresholds low enough to spike."""
    model = build_model(cuba_graph(residual), kind="snn", seed=seed, timesteps=6)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pop in model.populations:
            if not pop.spiking:
                continue
            m = model[pop.name]
            m.threshold.copy_(torch.rand(m.threshold.shape, generator=gen) * 0.3 + 0.3)
            m.leak.copy_(torch.rand(m.leak.shape, generator=gen) * 0.3 + 0.6)
            m.alpha.copy_(torch.rand(m.alpha.shape, generator=gen) * 0.5 + 0.4)
        model["out"].weight.mul_(20.0)
    return model.eval()


def inputs(n: int = 6, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((n, 1, 8, 8), generator=gen) * 2 - 1
    x[torch.rand(x.shape, generator=gen) < 0.2] = 0.0
    return x


def torch_run(model: Model, x: torch.Tensor) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """PyTorch's packed spikes per population [n, T, nbytes] (the trace layout) and its logits."""
    seen: dict[str, list[torch.Tensor]] = {}

    def obs(ev) -> None:  # type: ignore[no-untyped-def]
        if ev.spikes is not None:
            seen.setdefault(ev.node, []).append(ev.spikes.detach().reshape(ev.spikes.shape[0], -1))

    with torch.no_grad():
        logits = model.forward_snn(x, model.timesteps, obs)
    return {k: R.pack(torch.stack(v, 1).numpy()) for k, v in seen.items()}, logits.numpy()


# ----------------------------------------------------------------------------- the node and PyTorch
def test_node_state_and_parameters() -> None:
    model = cuba_model()
    keys = set(model.state_dict())
    assert {"c1_lif.threshold", "c1_lif.leak", "c1_lif.alpha", "c2_lif.alpha"} <= keys
    assert model.alpha("c1_lif").shape == (4,) and model.alpha("c2_lif").shape == (1,)
    assert model.graph.nodes["c1_lif"].params((4, 8, 8), (4, 8, 8)) == 12
    assert [p.kind for p in model.populations] == ["CubaLIF"] * 3 + ["Integrator"]
    assert all(p.spiking for p in model.populations[:3])
    assert Graph.from_dict(model.graph.to_dict()).to_dict() == model.graph.to_dict()
    with torch.no_grad():
        model["c1_lif"].alpha.fill_(1.7)
    model.clamp_leaks()
    assert torch.equal(model.alpha("c1_lif"), torch.ones(4))


def test_forward_is_the_stated_recurrence() -> None:
    """``i <- alpha*i + I``, ``u <- leak*u + i``, fire, reset u only: potentials and spikes of the
    observer equal a hand-written loop on the observed currents; the ANN view is a ReLU."""
    model = cuba_model()
    x = inputs()
    events: dict[str, list] = {}  # type: ignore[type-arg]
    with torch.no_grad():
        model.forward_snn(x, 6, lambda ev: events.setdefault(ev.node, []).append(ev))
    for name in ("c1_lif", "c2_lif", "fc1_lif"):
        node = model.graph.nodes[name]
        shape = events[name][0].current.shape[1:]
        view = (-1, *([1] * (len(shape) - 1)))
        alpha, leak, theta = (p.detach().view(view) if p.numel() > 1 else p.detach()[0]
                              for p in (model.alpha(name), model.leak(name), model.threshold(name)))
        i = u = torch.zeros(1)
        fired = 0.0
        for ev in events[name]:
            i = alpha * i + ev.current
            v = leak * u + i
            s = ((v / theta - 1.0) >= 0 if node.fire == ">=" else (v / theta - 1.0) > 0).float()
            assert torch.equal(ev.potential, v) and torch.equal(ev.spikes, s), (name, ev.t)
            u = v - theta * s if node.reset == "subtract" else v * (1 - s) + node.v_reset * s
            fired += float(s.sum())
        assert 0 < fired < s.numel() * 6, name  # spikes sometimes, not always
    ann = build_model(model.graph, kind="ann", seed=0)
    acts: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        ann.forward_ann(x, acts)
    assert set(acts) == {"c1_lif", "c2_lif", "fc1_lif"} and all(bool((a >= 0).all()) for a in acts.values())


def test_surrogate_gradient_reaches_alpha() -> None:
    model = cuba_model().train()
    loss = model.forward_snn(inputs(), 6).square().sum()
    loss.backward()
    for name in ("c1_lif", "c2_lif", "fc1_lif"):
        grad = model[name].alpha.grad
        assert grad is not None and bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0, name


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    from snnsim.checkpoint import load_model, save_model

    model = cuba_model()
    save_model(model, tmp_path / "m.pt")
    back = load_model(tmp_path / "m.pt")
    assert back.graph.to_dict() == model.graph.to_dict()
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in model.state_dict().items())
    x = inputs(3)
    assert torch.equal(back(x), model(x))


# ----------------------------------------------------------------------------- kernels vs reference
@pytest.mark.parametrize("per_neuron", [False, True])
@pytest.mark.parametrize("v_reset,fire", [(None, ">"), (0.2, ">=")])
def test_population_steps_match_the_reference(per_neuron: bool, v_reset: float | None, fire: str) -> None:
    rng = np.random.default_rng(3)
    n, steps, neurons = 3, 7, 50
    cur = rng.normal(0.1, 0.4, (n, steps, neurons)).astype(np.float32)
    if per_neuron:
        leak, alpha, theta = (rng.uniform(lo, hi, neurons).astype(np.float32) for lo, hi in
                              ((0.6, 1.0), (0.3, 0.95), (0.3, 0.8)))
    else:
        leak, alpha, theta = np.float32(0.9), np.float32(0.7), np.float32(0.5)
    vr = None if v_reset is None else np.float32(v_reset)
    bits, pot, changed, _ = K.population_steps(cur, True, leak, theta, None, True, vr, fire == ">=", alpha)
    spikes, want_pot, want_changed, _ = R.population_steps_ref(cur, leak, theta, True, None, v_reset, fire, alpha)
    assert np.array_equal(R.unpack(bits, (neurons,)).astype(bool), spikes)
    assert np.array_equal(pot, want_pot)  # bit for bit: float32 in the model's order
    assert np.array_equal(changed, want_changed)
    assert 0 < spikes.mean() < 1
    plain = K.population_steps(cur, True, leak, theta, None, True, vr, fire == ">=")  # a LIF: another result
    assert not np.array_equal(plain[1], pot)
    lif = R.population_steps_ref(cur, leak, theta, True, None, v_reset, fire)
    assert np.array_equal(plain[1], lif[1])


def test_lif_step_without_alpha_leaves_the_synaptic_buffer_alone() -> None:
    u = np.zeros(4, dtype=np.float32)
    cur = np.array([0.2, 0.9, -0.1, 0.6], dtype=np.float32)
    spikes = np.zeros(4, dtype=np.bool_)
    syn = np.full(4, 7.0, dtype=np.float32)
    K.lif_step(u, cur.copy(), np.float32(0.9), np.float32(0.5), None, spikes, None, False, syn, None)
    assert np.array_equal(syn, np.full(4, 7.0, dtype=np.float32)) and spikes.tolist() == [False, True, False, True]
    u2, spikes2 = np.zeros(4, dtype=np.float32), np.zeros(4, dtype=np.bool_)
    K.lif_step(u2, cur.copy(), np.float32(0.9), np.float32(0.5), None, spikes2, None, False, syn, np.float32(0.5))
    assert np.array_equal(syn, np.float32(0.5) * np.float32(7.0) + cur) and spikes2.all() == (syn > 0.5).all()


# ----------------------------------------------------------------------------- replay and the event engine
def _chunk(model: Model, x: torch.Tensor, spikes: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    from snnsim.trace import TraceChunk

    events = [None if i.analog_input else spikes[i.source] for i in model.layer_infos]
    return TraceChunk(0, x.shape[0], x.numpy().astype(np.float32), spikes, events)


@pytest.mark.parametrize("residual", [True, False], ids=["residual", "chain"])
def test_float_replay_and_event_engine_equal_pytorch(residual: bool) -> None:
    """Functional float replay driven by PyTorch's spikes: 0 mismatches in every population;
    the event engine computes PyTorch's spikes and logits from the images alone."""
    from snnsim.sim.engine import event_forward
    from snnsim.sim.replay import layer_plans, simulate_chunk

    model = cuba_model(residual=residual)
    x = inputs(8)
    want, logits = torch_run(model, x)
    plans = layer_plans(model)
    res = simulate_chunk(plans, _chunk(model, x, want), 6, functional="float", drive="recorded", model=model)
    assert res.mismatches is not None and int(res.mismatches.sum()) == 0
    for pop in model.populations:
        if pop.spiking:
            assert int(res.spikes_out[:, pop.primary].sum()) == int(K.popcount_packed(want[pop.name]).sum()) > 0
    got, got_logits = event_forward(model, x.numpy(), 6, plans)
    assert set(got) == set(want)
    for name, bits in want.items():
        assert np.array_equal(got[name], bits), name
    np.testing.assert_allclose(got_logits, logits, rtol=1e-5, atol=1e-6)
    chained = simulate_chunk(plans, _chunk(model, x, want), 6, functional="float", drive="chained", model=model)
    assert chained.mismatches is not None and int(chained.mismatches.sum()) == 0


def test_integer_replay_is_refused_in_one_line() -> None:
    from snnsim.sim.integer import check_integer_neurons

    with pytest.raises(SnnsimError, match="'c1_lif'.*CubaLIF") as exc:
        check_integer_neurons(cuba_model())
    assert "\n" not in str(exc.value) and "--functional float" in str(exc.value)


def test_threshold_balancing_is_refused_in_one_line() -> None:
    from snnsim.training import balance_thresholds

    model = cuba_model()
    before = model.threshold("c1_lif").clone()
    with pytest.raises(SnnsimError, match="CubaLIF") as exc:
        balance_thresholds(model, [(inputs(4), torch.zeros(4))], timesteps=2)
    assert "\n" not in str(exc.value) and torch.equal(model.threshold("c1_lif"), before)


# ----------------------------------------------------------------------------- counting and cost
def test_two_state_variables_double_the_state_charge() -> None:
    """The cost model charges a CubaLIF update's state traffic twice (potential and synaptic
    current) and one decay per state variable; synaptic ops and everything else are unchanged."""
    from snnsim.cost import snn_cost
    from snnsim.hw import load_hw
    from snnsim.sim.replay import SimCounts, state_variables

    model = cuba_model()
    layers, pops = list(model.layer_infos), model.populations
    states = state_variables(layers, pops)
    assert states.tolist() == [2.0 if li.target != "out_integrator" else 1.0 for li in layers]
    steps, n = 6, len(layers)
    rng = np.random.default_rng(0)
    syn = rng.uniform(10, 100, (n, steps)).round()
    neurons = np.array([float(li.neurons) for li in layers])
    counts = SimCounts(layers=layers, samples=1, timesteps=steps, input_events=syn / 9, syn_ops=syn, syn_ops_nz=syn,
                       touched_neurons=np.tile(neurons[:, None], (1, steps)), spikes_out=syn / 20,
                       dense_ops=np.array([float(li.macs) for li in layers]),
                       dense_ops_inbounds=np.array([float(li.macs) for li in layers]), neurons=neurons,
                       analog=np.array([li.analog_input for li in layers]))
    hw = load_hw("45nm")
    one = snn_cost(counts, hw).layers.set_index("layer")
    counts.state_variables = states
    two = snn_cost(counts, hw).layers.set_index("layer")
    updates = one["neuron_updates"]
    extra = (states - 1.0) * updates.to_numpy()
    np.testing.assert_allclose(two["potential_reads"].to_numpy(), one["potential_reads"].to_numpy() + extra)
    np.testing.assert_allclose(two["potential_writes"].to_numpy(), one["potential_writes"].to_numpy() + extra)
    np.testing.assert_allclose(two["energy_neuron_pj"].to_numpy(),
                               one["energy_neuron_pj"].to_numpy() + extra * hw.compute.leak_pj)
    assert float(two["energy_memory_pj"].sum()) > float(one["energy_memory_pj"].sum())
    for col in ("ac", "mac", "weight_reads", "neuron_updates", "spikes_out", "input_reads"):
        assert two[col].equals(one[col]), col


@pytest.mark.parametrize("residual", [True, False], ids=["residual", "chain"])
def test_trace_files_replay_and_estimate(tmp_path: Path, residual: bool) -> None:
    """The whole path through files: record (PyTorch and the event engine), replay with the
    float functional mode, and estimate."""
    from snnsim.estimation import estimate
    from snnsim.recording import record_trace
    from snnsim.sim.replay import replay

    model = cuba_model(residual=residual)
    x = inputs(8)
    tr = record_trace(model, x, tmp_path / "t", labels=np.arange(8) % 3, progress=False)
    ev = record_trace(model, x, tmp_path / "e", engine="event", progress=False)
    assert {p.kind for p in tr.populations} >= {"CubaLIF"}
    for pop in tr.populations:
        if pop.spiking:
            np.testing.assert_array_equal(np.asarray(ev.spikes(pop.name)), np.asarray(tr.spikes(pop.name)), err_msg=pop.name)
    counts = replay(tr, model, functional="float", progress=False)
    f = counts.functional
    assert f is not None and int(f.spike_mismatches.sum()) == 0 and f.recorded_spikes.sum() > 0
    assert counts.state_variables is not None
    assert (counts.state_variables[[p.primary for p in model.populations if p.kind == "CubaLIF"]] == 2).all()
    res = estimate(model, "45nm", trace=tmp_path / "t", progress=False)
    assert len(res.summary) == 1 and float(res.layers["energy_neuron_pj"].sum()) > 0


def test_checkpoint_refuses_an_alpha_outside_0_1(tmp_path: Path) -> None:
    from snnsim.checkpoint import CheckpointError, load_model, save_model

    model = cuba_model()
    name = next(p.name for p in model.populations if p.kind == "CubaLIF")
    with torch.no_grad():
        model[name].alpha.fill_(1.5)
    save_model(model, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"synaptic decays \(alpha\) must all be in \[0, 1\], got 1\.5"):
        load_model(tmp_path / "m.pt")
