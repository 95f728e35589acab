"""Per-edge counts of the replay equal an independent dense PyTorch reference on random graphs.

Hypothesis draws small graphs with residual adds (identity and 1x1-conv shortcuts), stride 2,
grouped and depthwise convs, dilation 2, biases, folded batch norm, average, sum and max pools,
odd map sizes and a biased classifier. Each is converted to an SNN (batch norm folded with random
running statistics), run by PyTorch with thresholds low enough to spike, recorded and replayed.
The reference walks the graph itself (not the simulator's view): each synapse's input is its
source population's recorded spikes through the graph's own pool / flatten nodes, and its counts
are dense ``conv2d`` (with the node's stride, padding, dilation and groups) / ``linear`` sums with
all-ones and nonzero-weight kernels.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from snnsim.arch import primary_layers
from snnsim.graph import (
    LIF,
    Add,
    Affine,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    GraphBuilder,
    Integrator,
    MaxPool2d,
    SumPool2d,
)
from snnsim.graph.graph import Graph
from snnsim.models import build_model
from snnsim.recording import record_trace
from snnsim.sim.replay import replay
from snnsim.training import folded_snn


# ----------------------------------------------------------------------------- random graphs
def _common_divisors(a: int, b: int) -> list[int]:
    return [d for d in range(1, min(a, b) + 1) if a % d == 0 and b % d == 0]


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    """A small random network: stem, 1-3 blocks (plain, residual, pool), classifier."""
    c = draw(st.integers(1, 3))
    side = draw(st.sampled_from([5, 6, 7, 9]))
    g = GraphBuilder("random", (c, side, side))
    width = draw(st.integers(2, 5))
    k = draw(st.sampled_from([1, 3]))
    dil = draw(st.sampled_from([1, 2])) if k > 1 else 1  # same-size: padding dil * (k // 2)
    g.add("stem", Conv2d(out_channels=width, kernel_size=k, padding=dil * (k // 2), dilation=dil,
                         groups=draw(st.sampled_from(_common_divisors(c, width))), bias=draw(st.booleans())))
    if draw(st.booleans()):
        g.add("stem_bn", BatchNorm2d())
    g.add("stem_lif", LIF())
    for b in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["plain", "residual", "pool", "sew"]))
        if kind == "pool" and side >= 2:
            graded = g.nodes[g.last].kind == "Add"  # a SEW sum: max pooling of it is refused
            cls = draw(st.sampled_from([AvgPool2d, SumPool2d] if graded else [AvgPool2d, MaxPool2d, SumPool2d]))
            g.add(f"b{b}_pool", cls(kernel_size=2))
            side //= 2
            kind = "plain"  # a pool feeds a synapse
        stride = draw(st.sampled_from([1, 2])) if side >= 3 else 1
        out_w = draw(st.integers(2, 6))
        kk = draw(st.sampled_from([1, 3]))
        pad = draw(st.sampled_from([0, kk // 2])) if side >= 3 else kk // 2
        entry = g.last
        if kind == "plain":
            groups = 1
            if draw(st.booleans()):  # grouped: depthwise (one channel per group) or a common divisor
                if draw(st.booleans()):
                    out_w = groups = width
                else:
                    groups = draw(st.sampled_from(_common_divisors(width, out_w)))
            dil = 1
            if kk > 1 and draw(st.booleans()):  # dilation 2, padded to fit (or not, where the map allows)
                dil = 2
                pad = draw(st.sampled_from([0, 1, 2])) if side >= 5 else 2
            g.add(f"b{b}_conv", Conv2d(out_channels=out_w, kernel_size=kk, stride=stride, padding=pad,
                                       dilation=dil, groups=groups, bias=draw(st.booleans())))
            g.add(f"b{b}_lif", LIF())
            side = (side + 2 * pad - dil * (kk - 1) - 1) // stride + 1
            width = out_w
            continue
        if kind == "sew":  # SEW (ADD): conv-LIF-conv-LIF, its spikes added to the block's input spikes
            if g.nodes[entry].kind not in ("LIF", "Add"):  # a pool in front: the sum needs spikes
                g.add(f"b{b}_pre", Conv2d(out_channels=width, kernel_size=1))
                entry = g.add(f"b{b}_pre_lif", LIF())
            g.add(f"b{b}_s1", Conv2d(out_channels=width, kernel_size=3, padding=1), entry)
            g.add(f"b{b}_s1_lif", LIF())
            g.add(f"b{b}_s2", Conv2d(out_channels=width, kernel_size=3, padding=1, bias=draw(st.booleans())))
            main = g.add(f"b{b}_s2_lif", LIF())
            g.add(f"b{b}_sum", Add(), main, entry)
            continue
        # residual: conv-BN-LIF-conv-BN + shortcut -> Add -> LIF (same-size convs)
        if g.nodes[entry].kind != "LIF":  # a pool in front: the shortcut needs a population
            g.add(f"b{b}_pre", Conv2d(out_channels=width, kernel_size=1))
            g.add(f"b{b}_pre_lif", LIF())
            entry = g.last
        g.add(f"b{b}_c1", Conv2d(out_channels=out_w, kernel_size=3, stride=stride, padding=1), entry)
        g.add(f"b{b}_c1_bn", BatchNorm2d())
        g.add(f"b{b}_l1", LIF())
        d2 = draw(st.sampled_from([1, 2]))  # the second conv: grouped and / or dilated, same size
        g.add(f"b{b}_c2", Conv2d(out_channels=out_w, kernel_size=3, padding=d2, dilation=d2,
                                 groups=draw(st.sampled_from(_common_divisors(out_w, out_w)))))
        main = g.add(f"b{b}_c2_bn", BatchNorm2d())
        if stride == 1 and out_w == width:
            short = entry
        else:
            g.add(f"b{b}_down", Conv2d(out_channels=out_w, kernel_size=1, stride=stride), entry)
            short = g.add(f"b{b}_down_bn", BatchNorm2d())
        g.add(f"b{b}_add", Add(), main, short)
        g.add(f"b{b}_l2", LIF())
        side = (side + 2 - 3) // stride + 1
        width = out_w
    if draw(st.booleans()) and side >= 2:
        g.add("gap", AvgPool2d(kernel_size=side))
    g.add("flatten", Flatten())
    g.add("out", Affine(out_features=draw(st.integers(2, 5)), bias=draw(st.booleans())))
    g.add("out_integrator", Integrator())
    return g.build()


def _snn(graph: Graph, seed: int) -> torch.nn.Module:
    """The graph's SNN: random weights (some exactly zero), random BN statistics folded, low
    thresholds so that every population spikes."""
    torch.manual_seed(seed)
    ann = build_model(graph, kind="ann", seed=seed)
    state = ann.state_dict()
    gen = torch.Generator().manual_seed(seed)
    for key, value in state.items():
        if key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=gen) + 0.5
        elif key.endswith(("running_mean", ".bias")) and value.dtype.is_floating_point:
            state[key] = torch.randn(value.shape, generator=gen) * 0.1
        elif key.endswith(".weight") and value.dim() > 1:
            w = torch.randn(value.shape, generator=gen) * 0.5
            w[torch.rand(value.shape, generator=gen) < 0.2] = 0.0  # pruned weights
            state[key] = w
    snn = folded_snn(graph, state, timesteps=3)
    for p in snn.populations:
        if p.spiking:
            with torch.no_grad():
                snn.threshold(p.name).fill_(0.1)
                snn.leak(p.name).fill_(0.9)
    return snn.eval()


# ----------------------------------------------------------------------------- the reference
def _source_path(graph: Graph, synapse: str) -> tuple[str, list[str]]:
    """Walk back from a synapse through pools / flatten to the population, input or sum of
    spikes (a SEW add) it reads: (source, the nodes in between, nearest first)."""
    between = []
    cur = graph.info[synapse].inputs[0]
    while graph.info[cur].kind not in ("LIF", "IF", "Input", "Add"):
        between.append(cur)
        cur = graph.info[cur].inputs[0]
    return cur, between


def _spike_sum(graph: Graph, spikes: dict[tuple[str, int], torch.Tensor], name: str, t: int) -> torch.Tensor:
    """A population's spikes at t, or the sum an Add of spikes (SEW, nested) computes."""
    if graph.info[name].kind == "Add":
        return sum(_spike_sum(graph, spikes, op, t) for op in graph.info[name].inputs)  # type: ignore[return-value]
    return spikes[(name, t)]


def _multiplicity(graph: Graph, between: list[str], x: torch.Tensor) -> torch.Tensor:
    """The events a synapse reads: pooled multiplicities (sum for average pooling, OR for max)."""
    for name in reversed(between):
        node = graph.nodes[name]
        if isinstance(node, AvgPool2d | SumPool2d):  # every spike of the window is an event
            x = F.avg_pool2d(x, node.kernel_size, node.stride, divisor_override=1)
        elif isinstance(node, MaxPool2d):
            x = F.max_pool2d(x, node.kernel_size, node.stride)
        elif isinstance(node, Flatten):
            x = x.flatten(1)
    return x


def _edge_counts(node: Conv2d | Affine, weight: torch.Tensor, m: torch.Tensor) -> dict[str, float]:
    ones = torch.ones_like(weight, dtype=torch.float64)
    nz = (weight != 0).to(torch.float64)

    def apply(inp: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if isinstance(node, Conv2d):
            return F.conv2d(inp, w, stride=node.stride, padding=node.padding, dilation=node.dilation, groups=node.groups)
        return F.linear(inp.reshape(inp.shape[0], -1), w)

    per_out = apply(m, ones)
    dense = apply(torch.ones_like(m[:1]), ones)
    return {"input_events": float(m.sum()), "syn_ops": float(per_out.sum()), "syn_ops_nz": float(apply(m, nz).sum()),
            "touched_neurons": float((per_out > 0).sum()), "dense_ops_inbounds": float(dense.sum())}


def reference(snn: torch.nn.Module, x: torch.Tensor, steps: int) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Per-edge counts (summed over samples and timesteps) and per-population spikes, computed
    from the PyTorch forward pass and the graph alone."""
    graph = snn.graph
    spikes: dict[tuple[str, int], torch.Tensor] = {}

    def obs(ev) -> None:  # type: ignore[no-untyped-def]
        if ev.spikes is not None:
            spikes[(ev.node, ev.t)] = ev.spikes.detach().to(torch.float64)

    with torch.no_grad():
        snn.forward_snn(x, steps, obs)
    edges: dict[str, dict[str, float]] = {}
    for name in graph.order:
        node = graph.nodes[name]
        if isinstance(node, Conv2d | Affine):
            source, between = _source_path(graph, name)
            weight = snn[name].weight.detach().to(torch.float64)
            total: dict[str, float] = {}
            for t in range(steps):
                if source == graph.input:
                    m = (x != 0).to(torch.float64)
                else:  # a population's spikes, or a SEW add's sum of them (every spike an event)
                    m = _multiplicity(graph, between, _spike_sum(graph, spikes, source, t))
                for key, v in _edge_counts(node, weight, m).items():
                    total[key] = total.get(key, 0.0) + (v if key != "dense_ops_inbounds" else v / steps)
            edges[name] = total
        elif isinstance(node, Add) and any(graph.info[o].kind in ("LIF", "IF", "Integrator")
                                           for o in graph.info[name].outputs):  # identity operands: one op per spike
            for op in graph.info[name].inputs:
                if graph.info[op].kind in ("LIF", "IF"):
                    s = sum(float(spikes[(op, t)].sum()) for t in range(steps))
                    edges[f"{name}.{op}"] = {"input_events": s, "syn_ops": s, "syn_ops_nz": s, "touched_neurons": s,
                                             "dense_ops_inbounds": float(np.prod(graph.info[op].out_shape))}
    pops = {p: sum(float(spikes[(p, t)].sum()) for t in range(steps))
            for p in {k[0] for k in spikes}}
    return edges, pops


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(graph=graphs(), seed=st.integers(0, 2**16))
def test_per_edge_counts_equal_the_dense_reference(graph: Graph, seed: int, tmp_path_factory: pytest.TempPathFactory
                                                   ) -> None:
    snn = _snn(graph, seed)
    steps, n = 3, 4
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.rand((n, *snn.input_shape), generator=gen) * 2 - 1
    x[torch.rand(x.shape, generator=gen) < 0.2] = 0.0
    out = Path(tmp_path_factory.mktemp("t")) / "trace"
    trace = record_trace(snn, x, out, progress=False)
    counts = replay(trace, snn, progress=False)
    edges, pops = reference(snn, x, steps)
    names = [info.name for info in counts.layers]
    assert sorted(names) == sorted(edges), (names, sorted(edges))
    for li, info in enumerate(counts.layers):
        want = edges[info.name]
        for key in ("input_events", "syn_ops", "syn_ops_nz", "touched_neurons"):
            got = float(getattr(counts, key)[li].sum())
            assert got == want[key], (info.name, key, got, want[key])
        assert float(counts.dense_ops_inbounds[li]) * n == want["dense_ops_inbounds"] * n, info.name
    for li, (info, first) in enumerate(zip(counts.layers, primary_layers(counts.layers), strict=True)):
        spiked = float(counts.spikes_out[li].sum())
        if first and info.spiking:
            assert spiked == pops[info.target], (info.target, spiked, pops[info.target])
            assert counts.neurons[li] == np.prod(snn.graph.info[info.target].out_shape)
        else:
            assert spiked == 0.0
            assert counts.neurons[li] == (0 if not first else counts.neurons[li])
    assume(sum(pops.values()) > 0)  # a silent draw compares nothing: hypothesis draws another


def test_the_random_graphs_cover_every_case() -> None:
    """The strategy reaches each construct the counting test is meant to exercise."""
    seen: set[str] = set()

    @settings(max_examples=200, deadline=None, database=None)
    @given(graph=graphs())
    def collect(graph: Graph) -> None:
        for name, node in graph.nodes.items():
            seen.add(node.kind)
            if isinstance(node, Conv2d):
                seen.add(f"stride{node.stride[0]}")
                seen.add(f"dilation{node.dilation[0]}")
                if node.bias:
                    seen.add("bias")
                if node.groups > 1:
                    c_in = graph.info[name].in_shapes[0][0]
                    seen.add("depthwise" if node.groups == c_in == node.out_channels else "grouped")
            if isinstance(node, Add) and any(graph.info[o].kind == "LIF" for o in graph.info[name].inputs):
                seen.add("identity")
            if isinstance(node, Add) and not any(graph.info[o].kind == "LIF" for o in graph.info[name].outputs):
                seen.add("sew")
        side = graph.info[graph.input].out_shape[1]
        seen.add("odd" if side % 2 else "even")

    collect()
    for case in ("Add", "identity", "stride2", "bias", "BatchNorm2d", "AvgPool2d", "MaxPool2d", "SumPool2d", "odd", "even",
                 "grouped", "depthwise", "dilation2", "sew"):
        assert case in seen, case


def test_the_reference_is_not_the_simulator_view() -> None:
    """The reference walks the graph's own nodes: a graph with a pool and a flatten in front of
    its classifier is read through both, as the simulator folds them."""
    g = GraphBuilder("walk", (1, 6, 6))
    g.add("c", Conv2d(out_channels=2, kernel_size=3, padding=1))
    g.add("c_lif", LIF())
    g.add("p", AvgPool2d(kernel_size=2))
    g.add("flatten", Flatten())
    g.add("out", Affine(out_features=3))
    g.add("out_integrator", Integrator())
    graph = g.build()
    source, between = _source_path(graph, "out")
    assert source == "c_lif" and between == ["flatten", "p"]
    m = _multiplicity(graph, between, torch.ones(1, 2, 6, 6, dtype=torch.float64))
    assert m.shape == (1, 18) and float(m.sum()) == 72.0  # 4 spikes per window, 18 windows
    assert dataclasses.replace(graph.nodes["c"], bias=True).bias
