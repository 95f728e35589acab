"""NIR import and export (snnsim.interop.nir_io, `snnsim import` / `snnsim export`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sim_testutil import converted_resnet, set_leaks, set_thresholds

from snnsim.arch import make_arch
from snnsim.errors import SnnsimError
from snnsim.interop import (
    DEFAULT_DT,
    export_nir,
    import_nir,
    model_to_nir,
    nir_to_model,
    write_nirdata,
)
from snnsim.models import build_model

Run = Callable[..., tuple[int, str, str]]
DT = DEFAULT_DT


# ----------------------------------------------------------------------------- graphs written by nir
def _full(shape: tuple[int, ...], value: float) -> np.ndarray:
    return np.full(shape, value)


def chain_graph(seed: int = 0, li: bool = True) -> nir.NIRGraph:
    """conv('same', bias) - LIF (per-channel tau, r = 2, v_leak) - sumpool - flatten - affine - LI."""
    rng = np.random.default_rng(seed)
    tau = np.broadcast_to(np.array([1e-3, 2e-3, 5e-4, 1e-3]).reshape(4, 1, 1), (4, 8, 8)).copy()
    out = (nir.LI(tau=_full((10,), 1e-3), r=np.ones(10), v_leak=np.zeros(10)) if li
           else nir.I(r=_full((10,), 1.0 / DT)))
    nodes = {
        "input": nir.Input(input_type=np.array([1, 8, 8])),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.5, (4, 1, 3, 3)), stride=1, padding="same",
                           dilation=1, groups=1, bias=rng.normal(0, 0.1, 4)),
        "lif": nir.LIF(tau=tau, r=_full((4, 8, 8), 2.0), v_leak=_full((4, 8, 8), 0.05),
                       v_threshold=_full((4, 8, 8), 0.1), v_reset=np.zeros((4, 8, 8))),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 0.3, (10, 64)), bias=rng.normal(0, 0.1, 10)),
        "li": out,
        "output": nir.Output(output_type=np.array([10])),
    }
    edges = [("input", "conv"), ("conv", "lif"), ("lif", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "li"),
             ("li", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=True)


def _block_nodes(rng: np.random.Generator) -> tuple[dict[str, nir.NIRNode], list[tuple[str, str]]]:
    """A residual block on 4x8x8 spikes: conv2 and a 1x1 downsample conv, plus the identity, fan
    into an IF whose input gain r*dt = 0.5 (the identity operand keeps it in the threshold)."""
    nodes = {
        "conv2": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.4, (4, 4, 3, 3)), stride=1, padding=1,
                            dilation=1, groups=1, bias=np.zeros(4)),
        "down": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.4, (4, 4, 1, 1)), stride=1, padding=0,
                           dilation=1, groups=1, bias=rng.normal(0, 0.1, 4)),
        "if2": nir.IF(r=_full((4, 8, 8), 0.5 / DT), v_threshold=_full((4, 8, 8), 0.3), v_reset=np.zeros((4, 8, 8))),
    }
    return nodes, [("conv2", "if2"), ("down", "if2")]


def residual_graph(seed: int = 1, nested: bool = False) -> nir.NIRGraph:
    """conv - LIF - [conv2 + down + identity -> IF] - avgpool(2) - flatten - linear - scale - I.

    ``nested``: the block is a nested NIRGraph (its own Input and Output)."""
    rng = np.random.default_rng(seed)
    nodes: dict[str, nir.NIRNode] = {
        "input": nir.Input(input_type=np.array([1, 8, 8])),
        "conv1": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.6, (4, 1, 3, 3)), stride=1, padding=1,
                            dilation=1, groups=1, bias=rng.normal(0, 0.1, 4)),
        "lif1": nir.LIF(tau=_full((4, 8, 8), 2e-4), r=_full((4, 8, 8), 1.0), v_leak=_full((4, 8, 8), 0.1),
                        v_threshold=_full((4, 8, 8), 0.2), v_reset=_full((4, 8, 8), 0.0)),
    }
    block, block_edges = _block_nodes(rng)
    tail = {
        "pool": nir.AvgPool2d(kernel_size=2, stride=2, padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0),
        "fc": nir.Linear(weight=rng.normal(0, 0.3, (10, 64))),
        "scale": nir.Scale(scale=rng.uniform(0.5, 2.0, 10)),
        "out": nir.I(r=_full((10,), 1.0 / DT)),
        "output": nir.Output(output_type=np.array([10])),
    }
    edges = [("input", "conv1"), ("conv1", "lif1")]
    if nested:
        inner = {"input": nir.Input(input_type=np.array([4, 8, 8])), **block,
                 "output": nir.Output(output_type=np.array([4, 8, 8]))}
        inner_edges = [("input", "conv2"), ("input", "down"), ("input", "if2"), *block_edges, ("if2", "output")]
        nodes["block"] = nir.NIRGraph(nodes=inner, edges=inner_edges, type_check=True)
        edges += [("lif1", "block"), ("block", "pool")]
    else:
        nodes.update(block)
        edges += [("lif1", "conv2"), ("lif1", "down"), ("lif1", "if2"), *block_edges, ("if2", "pool")]
    nodes.update(tail)
    edges += [("pool", "flat"), ("flat", "fc"), ("fc", "scale"), ("scale", "out"), ("out", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=True)


def cuba_lif(shape: tuple[int, ...], tau_syn: np.ndarray | float, tau_mem: np.ndarray | float, r: float, w_in: float,
             threshold: float, v_leak: float = 0.0) -> nir.CubaLIF:
    """A NIR CubaLIF of ``shape`` (time constants per channel or one value)."""
    def full(v: np.ndarray | float) -> np.ndarray:
        a = np.asarray(v, dtype=np.float64)
        return np.broadcast_to(a.reshape(-1, *([1] * (len(shape) - 1))) if a.ndim else a, shape).copy()

    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=_full(shape, r), v_leak=_full(shape, v_leak),
                       v_threshold=_full(shape, threshold), v_reset=np.zeros(shape), w_in=_full(shape, w_in))


def cuba_chain_graph() -> nir.NIRGraph:
    """chain_graph with its LIF a CubaLIF: per-channel tau_syn and tau_mem, r = 3, w_in = 1.5."""
    return _with(chain_graph(), lif=cuba_lif((4, 8, 8), np.array([3e-4, 5e-4, 2e-4, 1e-3]),
                                             np.array([1e-3, 2e-3, 5e-4, 1e-3]), 3.0, 1.5, 0.1))


def cuba_residual_graph() -> nir.NIRGraph:
    """residual_graph with its fan-in IF a CubaLIF (the identity operand keeps the gain in the
    threshold) and lif1 a CubaLIF too."""
    return _with(residual_graph(), lif1=cuba_lif((4, 8, 8), 4e-4, 2e-4, 1.0, 2.0, 0.2),
                 if2=cuba_lif((4, 8, 8), 5e-4, 1e-3, 0.8, 1.0, 0.3))


def euler_reference(g: nir.NIRGraph, x: torch.Tensor, steps: int, reset: str = "value"
                    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """NIR's equations stepped by forward Euler, straight from the NIR nodes (float64, a flat
    graph): every spiking node's spikes [T, B, ...], and the output integrator's value over T.
    LI is integrated without its leak, as snnsim's integrator (documented) does. A CubaLIF steps
    its synaptic current J first and its v from the new J (snnTorch's and snnsim's order)."""
    order: list[str] = []
    preds = {n: [a for a, b in g.edges if b == n] for n in g.nodes}
    while len(order) < len(g.nodes):
        order += [n for n in g.nodes if n not in order and all(p in order for p in preds[n])]
    t64 = {n: {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in vars(node).items()
               if isinstance(v, np.ndarray) and k not in ("input_type", "output_type")} for n, node in g.nodes.items()}
    state: dict[str, torch.Tensor | float] = {n: 0.0 for n in g.nodes}
    current: dict[str, torch.Tensor | float] = {n: 0.0 for n in g.nodes}  # a CubaLIF's J
    spikes: dict[str, list[torch.Tensor]] = {}
    final = torch.zeros(0)
    for _ in range(steps):
        val: dict[str, torch.Tensor] = {}
        for n in order:
            node, p = g.nodes[n], t64[n]
            h = x if isinstance(node, nir.Input) else sum(val[a] for a in preds[n])
            if isinstance(node, nir.Conv2d):
                pad = node.padding if isinstance(node.padding, str) else tuple(node.padding)
                h = F.conv2d(h, p["weight"], p["bias"], tuple(node.stride), pad, tuple(node.dilation), int(node.groups))
            elif isinstance(node, nir.Affine):
                h = h @ p["weight"].T + p["bias"]
            elif isinstance(node, nir.Linear):
                h = h @ p["weight"].T
            elif isinstance(node, nir.Scale):
                h = h * p["scale"]
            elif isinstance(node, nir.SumPool2d | nir.AvgPool2d):
                k = tuple(np.broadcast_to(np.asarray(node.kernel_size), (2,)).tolist())
                h = F.avg_pool2d(h, k, k, divisor_override=1 if isinstance(node, nir.SumPool2d) else None)
            elif isinstance(node, nir.Flatten):
                h = h.flatten(int(node.start_dim) + 1)
            elif isinstance(node, nir.LIF | nir.IF | nir.LI | nir.I | nir.CubaLIF):
                v = state[n]
                if isinstance(node, nir.CubaLIF):
                    current[n] = current[n] + DT / p["tau_syn"] * (-current[n] + p["w_in"] * h)
                    v = v + DT / p["tau_mem"] * (p["v_leak"] - v + p["r"] * current[n])
                elif isinstance(node, nir.LIF):
                    v = v + DT / p["tau"] * (p["v_leak"] - v + p["r"] * h)
                elif isinstance(node, nir.LI):
                    v = v + DT / p["tau"] * (p["v_leak"] + p["r"] * h)  # the leak (-v) dropped
                else:
                    v = v + DT * p["r"] * h
                if isinstance(node, nir.LIF | nir.IF | nir.CubaLIF):
                    s = (v > p["v_threshold"]).double()
                    v = v - p["v_threshold"] * s if reset == "subtract" else v * (1 - s) + p["v_reset"] * s
                    spikes.setdefault(n, []).append(s)
                    h = s
                else:
                    h = v
                    final = v
                state[n] = v
            val[n] = h
    return {n: torch.stack(s) for n, s in spikes.items()}, final / steps


def model_spikes(model, x: torch.Tensor, steps: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:  # type: ignore[no-untyped-def]
    """The imported model run in float64: each spiking population's spikes [T, B, ...] and the logits."""
    seen: dict[str, list[torch.Tensor]] = {}

    def obs(ev) -> None:  # type: ignore[no-untyped-def]
        if ev.spikes is not None:
            seen.setdefault(ev.node, []).append(ev.spikes.detach().clone())

    net = model.double()
    with torch.no_grad():
        logits = net.forward_snn(x, steps, obs)
    return {n: torch.stack(s) for n, s in seen.items()}, logits


def digits_x(n: int = 8) -> torch.Tensor:
    from snnsim.data import load_dataset

    bundle = load_dataset("digits")
    return torch.stack([bundle.test[i][0] for i in range(n)])


# ----------------------------------------------------------------------------- discretisation
@pytest.mark.parametrize("make,reset", [(chain_graph, "value"), (chain_graph, "subtract"), (residual_graph, "value"),
                                        (cuba_chain_graph, "value"), (cuba_chain_graph, "subtract"),
                                        (cuba_residual_graph, "value")],
                         ids=["chain", "chain-subtract", "residual", "cuba-chain", "cuba-chain-subtract", "cuba-residual"])
def test_imported_dynamics_equal_euler_reference(make: Callable[[], nir.NIRGraph], reset: str) -> None:
    """Every population's spikes and the logits equal NIR's equations stepped by forward Euler
    (run from the NIR nodes themselves), including the gains folded into weights, the v_leak
    bias, per-channel leaks, a Scale, and a fan-in with an identity operand (threshold units)."""
    _check_against_reference(make(), reset)


def _check_against_reference(g: nir.NIRGraph, reset: str = "value") -> None:
    x = digits_x(16).double()
    result = nir_to_model(g, timesteps=6, reset=reset)
    ref_spikes, ref_out = euler_reference(g, x, 6, reset)
    got_spikes, logits = model_spikes(result.model, x, 6)
    assert set(got_spikes) == set(ref_spikes) and ref_spikes
    for name, s in ref_spikes.items():
        assert 0 < float(s.mean()) < 1, f"{name} must spike sometimes for the test to mean something"
        assert torch.equal(got_spikes[name], s), name
    torch.testing.assert_close(logits, ref_out, rtol=1e-5, atol=1e-7)  # weights are stored in float32


def test_groups_and_dilation_are_carried() -> None:
    """A dilated first conv and a grouped block conv keep their settings (and dynamics)."""
    rng = np.random.default_rng(5)
    chain = chain_graph()
    dilated = nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.5, (4, 1, 3, 3)), stride=1, padding=2,
                         dilation=2, groups=1, bias=rng.normal(0, 0.1, 4))
    res = residual_graph()
    grouped = nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.5, (4, 2, 3, 3)), stride=1, padding="same",
                         dilation=1, groups=2, bias=np.zeros(4))
    for g, name, field, value in ((_with(chain, conv=dilated), "conv", "dilation", (2, 2)),
                                  (_with(res, conv2=grouped), "conv2", "groups", 2)):
        assert getattr(nir_to_model(g, timesteps=2).model.graph.nodes[name], field) == value
        _check_against_reference(g)


def _dense_counts(model, spikes: dict[str, torch.Tensor], x: torch.Tensor) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    """Per-edge counts (summed over samples and timesteps) from spike maps [T, B, ...] alone:
    events x fan-out by dense conv2d / linear sums over the graph's own nodes (the helpers of
    tests/test_graph_counting.py), not through the simulator's view."""
    from test_graph_counting import _edge_counts, _multiplicity, _source_path

    from snnsim.graph import Add, Affine, Conv2d

    graph = model.graph
    steps = next(iter(spikes.values())).shape[0]
    edges: dict[str, dict[str, float]] = {}
    for name in graph.order:
        node = graph.nodes[name]
        if isinstance(node, Conv2d | Affine):
            source, between = _source_path(graph, name)
            weight = model[name].weight.detach().double()
            total: dict[str, float] = {}
            for t in range(steps):
                m = (x != 0).double() if source == graph.input else _multiplicity(graph, between, spikes[source][t])
                for key, v in _edge_counts(node, weight, m).items():  # dense_ops_inbounds: one pass's
                    total[key] = v if key == "dense_ops_inbounds" else total.get(key, 0.0) + v
            edges[name] = total
        elif isinstance(node, Add):  # an identity operand: one op per spike, on one neuron
            for op in graph.info[name].inputs:
                if op in spikes:
                    s = float(spikes[op].sum())
                    edges[f"{name}.{op}"] = {"input_events": s, "syn_ops": s, "syn_ops_nz": s, "touched_neurons": s}
    return edges


@pytest.mark.parametrize("make", [chain_graph, residual_graph], ids=["chain", "residual"])
def test_event_engine_equals_euler_reference_and_dense_counts(make: Callable[[], nir.NIRGraph], tmp_path: Path) -> None:
    """A graph written by nir, imported with the default hard reset: the event engine's spikes
    are the float64 Euler reference's, and the replayed counts of its trace equal dense counts
    (events x fan-out, per edge) computed from the reference's spikes."""
    from snnsim.recording import record_trace
    from snnsim.sim.replay import replay

    g, steps = make(), 6
    x = digits_x(16).double()
    model = nir_to_model(g, timesteps=steps).model
    assert {model.graph.nodes[p.name].reset for p in model.populations if p.spiking} == {"value"}
    ref_spikes, _ = euler_reference(g, x, steps)
    trace = record_trace(model, x.float(), tmp_path / "tr", engine="event", progress=False)
    assert trace.meta["engine"] == "event"
    for name, ref in ref_spikes.items():
        pop = trace.population(name)
        got = np.unpackbits(np.asarray(trace.spikes(name)), axis=-1, count=pop.neurons).astype(bool)
        want = ref.transpose(0, 1).reshape(x.shape[0], steps, -1).numpy().astype(bool)
        assert 0 < want.mean() < 1, name
        assert int((got != want).sum()) == 0, (name, int((got != want).sum()))  # no float32 flips on these graphs
    counts = replay(trace, model, progress=False)
    want_edges = _dense_counts(model, ref_spikes, x)
    assert sorted(i.name for i in counts.layers) == sorted(want_edges)
    for li, info in enumerate(counts.layers):
        for key, value in want_edges[info.name].items():
            assert float(getattr(counts, key)[li].sum()) == value, (info.name, key)
    assert counts.syn_ops.sum() > 0


def test_chain_mapping_values() -> None:
    """The stated discretisation, value by value: leak = 1 - dt/tau per channel, gain r*dt/tau
    folded into the conv's weights, (dt/tau)*v_leak into its bias; LI warned about."""
    g = chain_graph()
    result = nir_to_model(g, timesteps=3)
    m = result.model
    a = DT / np.array([1e-3, 2e-3, 5e-4, 1e-3])
    np.testing.assert_allclose(m.leak("lif").detach().numpy(), (1 - a).astype(np.float32))
    assert m.graph.nodes["lif"].per_channel and m.graph.nodes["lif"].reset == "value"
    w = g.nodes["conv"].weight * (2.0 * a).reshape(4, 1, 1, 1)
    np.testing.assert_allclose(m["conv"].weight.detach().numpy(), w.astype(np.float32), rtol=1e-6)
    b = g.nodes["conv"].bias * 2.0 * a + a * 0.05
    np.testing.assert_allclose(m["conv"].bias.detach().numpy(), b.astype(np.float32), rtol=1e-6)
    assert m.graph.nodes["li"].kind == "Integrator"
    assert any("LI" in w and "not modelled" in w for w in result.warnings)
    assert any("not modelled" in n for n in m.provenance["import_notes"])
    assert any(f"dt = {DT:g}" in w for w in result.warnings) and result.dt_source == "default"
    other = nir_to_model(g, timesteps=3, dt=2.5e-4)  # --dt: only dt/tau and r*dt change
    np.testing.assert_allclose(other.model.leak("lif").detach().numpy(), (1 - 2.5 * a).astype(np.float32))
    assert other.dt_source == "given" and not any("dt =" in w for w in other.warnings)


def test_cubalif_mapping_values() -> None:
    """CubaLIF, value by value: alpha = 1 - dt/tau_syn and leak = 1 - dt/tau_mem per channel, the
    gain w_in (dt/tau_syn) r (dt/tau_mem) folded into the conv; v_leak folded and warned about."""
    g = cuba_chain_graph()
    m = nir_to_model(g, timesteps=3).model
    node = m.graph.nodes["lif"]
    assert node.kind == "CubaLIF" and node.per_channel and node.reset == "value"
    a_syn = DT / np.array([3e-4, 5e-4, 2e-4, 1e-3])
    a_mem = DT / np.array([1e-3, 2e-3, 5e-4, 1e-3])
    np.testing.assert_allclose(m.alpha("lif").detach().numpy(), (1 - a_syn).astype(np.float32))
    np.testing.assert_allclose(m.leak("lif").detach().numpy(), (1 - a_mem).astype(np.float32))
    gain = 1.5 * a_syn * 3.0 * a_mem
    np.testing.assert_allclose(m["conv"].weight.detach().numpy(),
                               (g.nodes["conv"].weight * gain.reshape(4, 1, 1, 1)).astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(m["conv"].bias.detach().numpy(), (g.nodes["conv"].bias * gain).astype(np.float32),
                               rtol=1e-6)
    leaky = nir_to_model(_with(g, lif=cuba_lif((4, 8, 8), 3e-4, 1e-3, 3.0, 1.5, 0.1, v_leak=0.05)), timesteps=3)
    np.testing.assert_allclose(leaky.model["conv"].bias.detach().numpy(),
                               (g.nodes["conv"].bias * 1.5 * 3.0 * (DT / 3e-4) * (DT / 1e-3)
                                + (DT / 3e-4) * (DT / 1e-3) * 0.05).astype(np.float32), rtol=1e-6)
    assert any("CubaLIF" in w and "v_leak" in w for w in leaky.warnings)
    with pytest.raises(SnnsimError, match="tau_syn .* shorter than dt"):
        nir_to_model(_with(g, lif=cuba_lif((4, 8, 8), 5e-5, 1e-3, 1.0, 1.0, 0.1)), timesteps=2)


def test_cubalif_exports_and_imports_back_identically(tmp_path: Path) -> None:
    """snnsim -> NIR -> snnsim on CubaLIF populations: NIR's CubaLIF with tau_syn = dt/(1 - alpha)
    and unit gain, then the same graph and state bit for bit, and the same dynamics."""
    model = nir_to_model(cuba_residual_graph(), timesteps=4).model
    model.dataset_info = {"name": "digits", "mean": [0.5], "std": [0.5], "input_shape": [1, 8, 8], "num_classes": 10}
    path = tmp_path / "cuba.nir"
    export_nir(model, path)
    g = nir.read(path)
    node = g.nodes["if2"]
    assert isinstance(node, nir.CubaLIF)
    alpha = np.float64(model.alpha("if2").detach().numpy()[0])
    np.testing.assert_allclose(node.tau_syn, DT / (1 - alpha))
    np.testing.assert_allclose(node.w_in * DT / node.tau_syn * node.r * DT / node.tau_mem, 1.0)
    back = import_nir(path).model
    assert back.graph.to_dict() == model.graph.to_dict()
    a, b = model.state_dict(), back.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    x = digits_x(4)
    assert torch.equal(back(x), model(x))


def test_nested_graph_imports_as_its_flat_form() -> None:
    flat = nir_to_model(residual_graph(nested=False), timesteps=4).model
    nested = nir_to_model(residual_graph(nested=True), timesteps=4).model
    rename = {f"block_{n}": n for n in ("conv2", "down", "if2")} | {"block_if2_add": "if2_add"}
    assert sorted(rename.get(n, n) for n in nested.graph.nodes) == sorted(flat.graph.nodes)
    for key, value in flat.state_dict().items():
        node, _, param = key.partition(".")
        other = next(k for k, v in rename.items() if v == node) if node in rename.values() else node
        assert torch.equal(nested.state_dict()[f"{other}.{param}"], value), key
    x = digits_x(4)
    assert torch.equal(flat(x), nested(x))


# ----------------------------------------------------------------------------- the CLI on nir's own files
@pytest.mark.parametrize("make", [chain_graph, lambda: residual_graph(nested=True)], ids=["chain", "residual"])
def test_nir_file_imports_traces_and_estimates(make: Callable[[], nir.NIRGraph], run_cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "net.nir"
    nir.write(path, make())
    ckpt = tmp_path / "net.pt"
    code, out, err = run_cli("import", path, "--timesteps", 4, "--out", ckpt)
    assert code == 0, err
    assert ckpt.is_file() and "wrote" in out and "dt=0.0001" in out
    code, out, err = run_cli("trace", "--model", ckpt, "--dataset", "digits", "--samples", 8, "--out",
                             tmp_path / "tr", "--quiet")
    assert code == 0, err
    code, out, err = run_cli("estimate", "--model", ckpt, "--trace", tmp_path / "tr", "--dataset", "digits",
                             "--samples", 8, "--out", tmp_path / "rep", "--quiet")
    assert code == 0, err
    import pandas as pd

    layers = pd.read_csv(tmp_path / "rep" / "layers.csv")
    assert len(layers) >= 2 and float((layers["ac"] + layers["mac"]).sum()) > 0 and float(layers["spikes_out"].sum()) > 0


# ----------------------------------------------------------------------------- snnsim -> NIR -> snnsim
def _spiking_vgg():  # type: ignore[no-untyped-def]
    model = build_model(make_arch("digits"), seed=3, timesteps=4)
    set_thresholds(model, [0.6, 0.9, 0.7, 1.1, 0.8])
    set_leaks(model, [0.9901, 0.87, 1.0, 0.95, 0.75])  # a leak of 1 is written as IF (+ metadata)
    with torch.no_grad():
        model["out"].weight.mul_(30.0)
    model.dataset_info = {"name": "digits", "mean": [0.5], "std": [0.5], "input_shape": [1, 8, 8], "num_classes": 10}
    return model.eval()


@pytest.mark.parametrize("which", ["digits-vgg", "digits-resnet"])
def test_snnsim_nir_snnsim_is_identical(which: str, tmp_path: Path) -> None:
    """Same graph, same state bit for bit, same trace and the same replayed counts."""
    from snnsim.recording import record_trace
    from snnsim.sim.replay import replay

    x = digits_x(8)
    model = _spiking_vgg() if which == "digits-vgg" else converted_resnet(x)
    model.dataset_info = {"name": "digits", "mean": [0.5], "std": [0.5], "input_shape": [1, 8, 8], "num_classes": 10}
    path = tmp_path / "m.nir"
    warnings = export_nir(model, path)
    assert any("subtract" in w for w in warnings)
    back = import_nir(path)
    assert back.dt == DT and back.dt_source == "file" and not back.warnings
    m2 = back.model
    assert m2.graph.to_dict() == model.graph.to_dict()
    a, b = model.state_dict(), m2.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert m2.timesteps == model.timesteps and m2.dataset_info["name"] == "digits"
    t1 = record_trace(model, x, tmp_path / "t1", progress=False)
    t2 = record_trace(m2, x, tmp_path / "t2", progress=False)
    c1, c2 = replay(t1, model, progress=False), replay(t2, m2, progress=False)
    assert c1.syn_ops.sum() > 0
    for f in ("input_events", "syn_ops", "syn_ops_nz", "touched_neurons", "spikes_out", "dense_ops"):
        assert np.array_equal(getattr(c1, f), getattr(c2, f)), f


def test_exported_file_speaks_nir(tmp_path: Path) -> None:
    """What another NIR reader sees: LIF tau = dt/(1 - leak), r = tau/dt (gain 1), hard reset,
    a leak of 1 as IF with r = 1/dt, the integrator as I, pools and fan-in edges."""
    model = _spiking_vgg()
    path = tmp_path / "m.nir"
    export_nir(model, path)
    g = nir.read(path)
    lif = g.nodes["conv2_lif"]
    assert isinstance(lif, nir.LIF) and lif.tau.shape == (64, 8, 8)
    np.testing.assert_allclose(lif.tau, DT / (1 - np.float64(np.float32(0.87))))
    np.testing.assert_allclose(lif.r * DT / lif.tau, 1.0)
    assert float(lif.v_threshold.flat[0]) == float(np.float32(0.9)) and not lif.v_reset.any()
    assert isinstance(g.nodes["conv3_lif"], nir.IF)  # leak 1
    assert isinstance(g.nodes["out_integrator"], nir.I) and isinstance(g.nodes["pool1"], nir.AvgPool2d)
    rn, _ = model_to_nir(converted_resnet(digits_x(8)))
    assert ("s1b1_conv2", "s1b1_lif2") in rn.edges and ("stem_lif", "s1b1_lif2") in rn.edges
    assert not any("add" in b for _, b in rn.edges)


def test_export_refuses_maxpool_and_ann(run_cli: Run, tmp_path: Path) -> None:
    from sim_testutil import MIXED

    from snnsim.checkpoint import save_model

    for kind in ("snn", "ann"):
        ckpt = tmp_path / f"{kind}.pt"
        save_model(build_model(MIXED if kind == "snn" else make_arch("digits"), kind=kind, seed=0), ckpt)
        out = tmp_path / f"{kind}.nir"
        code, _, err = run_cli("export", ckpt, "--nir", out)
        assert code == 2 and len(err.strip().splitlines()) == 1 and not out.exists()
        assert ("MaxPool2d" if kind == "snn" else "ANN") in err


def test_import_reset_option_and_metadata(run_cli: Run, tmp_path: Path) -> None:
    """A soft reset survives snnsim's round trip by metadata; `--reset value` overrides it."""
    from snnsim.checkpoint import load_model, save_model

    ckpt, path = tmp_path / "m.pt", tmp_path / "m.nir"
    save_model(_spiking_vgg(), ckpt)
    code, _, err = run_cli("export", ckpt, "--nir", path)
    assert code == 0 and "warning:" in err and "subtract" in err and path.is_file()
    code, _, err = run_cli("import", path, "--reset", "value", "--out", tmp_path / "hard.pt")
    assert code == 0, err
    hard = load_model(tmp_path / "hard.pt")
    assert {hard.graph.nodes[p.name].reset for p in hard.populations if p.spiking} == {"value"}
    assert hard.timesteps == 4  # from the file's metadata


# ----------------------------------------------------------------------------- a framework's exporter
def test_snntorch_exported_chain_imports_and_costs(run_cli: Run, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """snnTorch 1.0's exporter (nirtorch under it) on a conv-Leaky-avgpool-flatten-linear-Leaky
    chain: the file imports with beta as the leak and snnTorch's threshold, and costs."""
    monkeypatch.chdir(tmp_path)  # estimate records into the trace cache (./traces)
    pytest.importorskip("nirtorch")
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        snn.Leaky(beta=torch.full((4, 8, 8), 0.9), threshold=torch.full((4, 8, 8), 0.5), init_hidden=True),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(64, 10),
        snn.Leaky(beta=torch.full((10,), 0.8), threshold=torch.full((10,), 0.5), init_hidden=True, output=True))
    path = tmp_path / "snntorch.nir"
    nir.write(path, export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0]))
    ckpt = tmp_path / "snntorch.pt"
    code, _, err = run_cli("import", path, "--timesteps", 4, "--out", ckpt)
    assert code == 0, err
    from snnsim.checkpoint import load_model

    m = load_model(ckpt)
    lifs = [p.name for p in m.populations if p.spiking]
    assert len(lifs) == 2 and all(m.graph.nodes[n].reset == "value" for n in lifs)  # the exporter's hard reset
    assert torch.allclose(m.leak(lifs[0]), torch.tensor([0.9])) and torch.allclose(m.threshold(lifs[1]), torch.tensor([0.5]))
    assert torch.equal(m[m.layer_infos[0].name].weight, net[0].weight)  # r = tau/dt in float32: gain 1
    code, _, err = run_cli("estimate", "--model", ckpt, "--dataset", "digits", "--samples", 8, "--out",
                           tmp_path / "rep", "--quiet")
    assert code == 0, err
    assert (tmp_path / "rep" / "summary.csv").is_file()


def test_spikingjelly_exported_chain_imports_spikes_alike_and_costs(run_cli: Run, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """SpikingJelly 2.0's exporter (torch.fx) on a conv-IF-avgpool-flatten-linear-IF chain: the
    file imports (hard reset, gain 1) and the first population spikes exactly as SpikingJelly's
    own IFNode does on the same inputs; the model costs."""
    monkeypatch.chdir(tmp_path)
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange.to_nir import export_to_nir

    torch.manual_seed(0)
    net = torch.nn.Sequential(layer.Conv2d(1, 4, 3, padding=1), neuron.IFNode(v_reset=0.0), layer.AvgPool2d(2),
                              layer.Flatten(), layer.Linear(64, 10), neuron.IFNode(v_reset=0.0))
    functional.set_step_mode(net, "s")
    path = tmp_path / "sj.nir"
    nir.write(path, export_to_nir(net, torch.rand(1, 1, 8, 8)))
    code, _, err = run_cli("import", path, "--timesteps", 4, "--out", tmp_path / "sj.pt")
    assert code == 0, err
    from snnsim.checkpoint import load_model

    m = load_model(tmp_path / "sj.pt")
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 2
    seen: list[torch.Tensor] = []
    hook = net[1].register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
    functional.reset_net(net)
    with torch.no_grad():
        for _ in range(4):
            net(x)
    hook.remove()
    theirs = torch.stack(seen, 1).reshape(16, 4, -1).numpy()
    first = next(p.name for p in m.populations if p.spiking)
    ours: list[np.ndarray] = []

    def observe(ev: Any) -> None:
        if ev.node == first:
            ours.append(ev.spikes.reshape(16, -1).numpy())

    with torch.no_grad():
        m.forward_snn(x, 4, observe)
    assert theirs.sum() > 0
    np.testing.assert_array_equal(np.stack(ours, 1), theirs)
    code, _, err = run_cli("estimate", "--model", tmp_path / "sj.pt", "--dataset", "digits", "--samples", 8, "--out",
                           tmp_path / "rep", "--quiet")
    assert code == 0, err


# ----------------------------------------------------------------------------- NIRData
def test_write_nirdata_holds_the_trace_spikes(tmp_path: Path) -> None:
    from snnsim.recording import record_trace

    model = _spiking_vgg()
    tr = record_trace(model, digits_x(6), tmp_path / "tr", progress=False)
    out = write_nirdata(tr, tmp_path / "spikes.h5")
    data = nir.read_data(out)
    graph, _ = model_to_nir(model)
    spiking = [p for p in tr.populations if p.spiking]
    assert set(data.nodes) == {p.name for p in spiking} and set(data.nodes) <= set(graph.nodes)
    for pop in spiking:
        obs = data.nodes[pop.name].observables["spikes"]
        assert obs.data.dtype == bool and obs.data.shape == (6, 4, pop.neurons) and obs.dt == DT
        want = np.unpackbits(np.asarray(tr.spikes(pop.name)), axis=-1, count=pop.neurons).astype(bool)
        assert np.array_equal(obs.data, want)
    assert sum(int(data.nodes[p.name].observables["spikes"].data.sum()) for p in spiking) == int(tr.spike_counts().sum())


# ----------------------------------------------------------------------------- bad input
def _with(g: nir.NIRGraph, **changes: nir.NIRNode) -> nir.NIRGraph:
    nodes = {**g.nodes, **changes}
    return nir.NIRGraph(nodes=nodes, edges=list(g.edges), type_check=False)


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a word the one-line error must contain)."""
    files: dict[str, tuple[Path, str]] = {}
    g = chain_graph()
    cuba_li = nir.CubaLI(tau_syn=_full((10,), 2e-4), tau_mem=_full((10,), 1e-3), r=_full((10,), 1.0),
                         v_leak=np.zeros(10))
    files["cubali"] = (tmp / "cubali.nir", "'li' (CubaLI)")
    nir.write(files["cubali"][0], _with(g, li=cuba_li))
    files["delay"] = (tmp / "delay.nir", "'pool' (Delay)")
    nir.write(files["delay"][0], _with(g, pool=nir.Delay(delay=np.ones((4, 8, 8)))))
    rec = chain_graph()
    rec.nodes["rec"] = nir.Conv2d(input_shape=(8, 8), weight=np.zeros((4, 4, 1, 1)), stride=1, padding=0, dilation=1,
                                  groups=1, bias=np.zeros(4))
    rec.edges += [("lif", "rec"), ("rec", "lif")]
    files["recurrent"] = (tmp / "rec.nir", "recurrent edge")
    nir.write(files["recurrent"][0], rec)
    per = np.random.default_rng(0).uniform(0.1, 0.2, (4, 8, 8))
    lif = g.nodes["lif"]
    files["per-element"] = (tmp / "per.nir", "varies within a channel")
    nir.write(files["per-element"][0], _with(g, lif=nir.LIF(tau=lif.tau, r=lif.r, v_leak=lif.v_leak, v_threshold=per,
                                                            v_reset=lif.v_reset)))
    files["unknown-type"] = (tmp / "maxpool.nir", "'pool' has type 'MaxPool2d', which NIR")
    nir.write(files["unknown-type"][0], g)
    import h5py

    with h5py.File(files["unknown-type"][0], "r+") as f:  # a type NIR 1.0 does not define
        del f["node/nodes/pool/type"]
        f["node/nodes/pool"].create_dataset("type", data="MaxPool2d", dtype=h5py.string_dtype())
    files["text"] = (tmp / "text.nir", "not a NIR file")
    files["text"][0].write_text("not hdf5\n")
    files["hdf5"] = (tmp / "other.h5", "not a NIR graph")
    with h5py.File(files["hdf5"][0], "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    files["missing"] = (tmp / "none.nir", "does not exist")
    return files


def test_bad_input_is_one_line_exit_2_nothing_written(run_cli: Run, tmp_path: Path) -> None:
    for name, (path, word) in _bad_files(tmp_path).items():
        out = tmp_path / f"{name}.pt"
        code, _, err = run_cli("import", path, "--timesteps", 4, "--out", out)
        lines = err.strip().splitlines()
        assert code == 2, (name, err)
        assert len(lines) == 1 and lines[0].startswith("snnsim: error: ") and word in lines[0], (name, err)
        assert not out.exists() and not list(tmp_path.glob(f".{name}.pt*")), name


@pytest.mark.parametrize("change,word", [
    ({"conv": nir.Conv2d(input_shape=(8, 8), weight=np.ones((4, 1, 2, 2)), stride=1, padding="same", dilation=1,
                         groups=1, bias=np.zeros(4))}, "even kernel"),
    ({"lif": nir.LIF(tau=_full((4, 8, 8), 5e-5), r=np.ones((4, 8, 8)), v_leak=np.zeros((4, 8, 8)),
                     v_threshold=_full((4, 8, 8), 0.1), v_reset=np.zeros((4, 8, 8)))}, "shorter than dt"),
    ({"lif": nir.LIF(tau=_full((4, 8, 8), 1e-3), r=np.ones((4, 8, 8)), v_leak=np.zeros((4, 8, 8)),
                     v_threshold=np.zeros((4, 8, 8)), v_reset=np.zeros((4, 8, 8)))}, "v_threshold <= 0"),
    ({"fc": nir.Affine(weight=np.ones((10, 63)), bias=np.zeros(10))}, "weight shape"),
], ids=["same-even", "tau<dt", "threshold0", "weights"])
def test_values_snnsim_cannot_hold_are_refused(change: dict[str, nir.NIRNode], word: str) -> None:
    with pytest.raises(SnnsimError, match=word) as exc:
        nir_to_model(_with(chain_graph(), **change), timesteps=2)
    assert "\n" not in str(exc.value)


def test_timesteps_are_required_without_metadata() -> None:
    with pytest.raises(SnnsimError, match="--timesteps"):
        nir_to_model(chain_graph())
