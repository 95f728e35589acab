"""The PyTorch backend of the network graph: the schedule, BN folding, and GraphNet against
SpikingNet (bit-identical on VGG graphs), a hand-written residual network and hand numbers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from legacy_spikingnet import LayerEvent, SpikingNet, state_from_spikingnet
from legacy_spikingnet import build_legacy as build_model

from snnsim.arch import ArchSpec, make_arch
from snnsim.errors import SnnsimError
from snnsim.graph import (
    IF,
    LIF,
    Add,
    Affine,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Graph,
    GraphBuilder,
    GraphError,
    GraphNet,
    Input,
    Integrator,
    MaxPool2d,
    Output,
    Scale,
    SumPool2d,
    digits_resnet,
    fold_batchnorm,
    lower,
    vgg_graph,
)
from snnsim.graph.torch_net import PopulationEvent, convert_spikingnet_state


def _one_line(err: pytest.ExceptionInfo[SnnsimError]) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def _randomise_bn(net: GraphNet, seed: int = 0) -> None:
    """Non-trivial BN affine and running statistics (a fresh BN is the identity in eval)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.values():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)


# ----------------------------------------------------------------------------- schedule
def test_lower_orders_every_node_once_with_its_populations() -> None:
    g = digits_resnet()
    s = lower(g)
    assert [st.name for st in s.steps] == [n for n in g.order if n not in ("input", "output")]
    assert all(st.inputs == tuple(g.predecessors[st.name]) and st.out_shape == g.shapes[st.name] for st in s.steps)
    assert [p.name for p in s.populations] == [i.name for i in g.populations]
    assert [p.index for p in s.populations] == list(range(len(s.populations)))
    assert all(s.steps[p.step].name == p.name for p in s.populations)
    assert s.populations[-1].name == "out_integrator" and s.output_source == "out_integrator"
    assert s.input == "input" and s.input_shape == (1, 8, 8)
    # every value but the output is released exactly once, at the step that reads it last
    released = [n for r in s.release for n in r]
    assert sorted(released) == sorted(n for n in g.nodes if n not in ("output", "out_integrator"))
    position = {st.name: k for k, st in enumerate(s.steps)}
    for k, names in enumerate(s.release):
        for n in names:
            readers = [position[r] for r in g.successors[n]]
            assert max(readers) == k
    assert s.population("s1b1_lif2").node.kind == "LIF"
    with pytest.raises(GraphError, match="no population 'stem'"):
        s.population("stem")
    with pytest.raises(GraphError, match="needs a Graph"):
        lower("digits")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- BN folding
def test_fold_batchnorm_folds_every_resnet_bn_and_keeps_the_outputs() -> None:
    g = digits_resnet()
    torch.manual_seed(0)
    net = GraphNet(g, "ann").double().eval()
    _randomise_bn(net)
    fg, fstate = fold_batchnorm(g, net.state_dict())
    assert not fg.of_kind("BatchNorm2d") and len(g.of_kind("BatchNorm2d")) == 6
    assert all(i.node.bias for i in fg.of_kind("Conv2d"))
    assert not any("_bn." in k for k in fstate)
    assert fg.predecessors["s2b1_add"] == ["s2b1_conv2", "s2b1_down"]  # operand order kept
    folded = GraphNet(fg, "ann").double().eval()
    folded.load_state_dict(fstate, strict=True)
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        ref = net.forward_ann(x)
        assert torch.allclose(folded.forward_ann(x), ref, rtol=1e-10, atol=1e-12)
        ref_snn = net.forward_snn(x, 4)
        assert torch.allclose(folded.forward_snn(x, 4), ref_snn, rtol=1e-10, atol=1e-12)
    assert ref.abs().max() > 0 and ref_snn.abs().max() > 0
    assert set(g.nodes) - set(fg.nodes) == {i.name for i in g.of_kind("BatchNorm2d")}
    assert "s1b1_conv1_bn.weight" in net.state_dict()  # the input state is not modified


def _conv_bn_graph(bias: bool, shared: bool) -> Graph:
    """conv (+bias) -> bn -> IF; with ``shared`` the conv also feeds an Add (so it cannot fold)."""
    b = GraphBuilder("cbn", (2, 5, 5))
    b.add("c", Conv2d(out_channels=3, kernel_size=3, padding=1, bias=bias))
    b.add("bn", BatchNorm2d(eps=1e-3))
    if shared:
        b.add("sum", Add(), "bn", "c")
    b.add("n", IF())
    b.add("flat", Flatten())
    b.add("fc", Affine(out_features=4))
    b.add("acc", Integrator())
    return b.build()


@pytest.mark.parametrize("bias", [False, True])
def test_fold_batchnorm_with_a_conv_bias_and_an_unfoldable_bn(bias: bool) -> None:
    for shared in (False, True):
        g = _conv_bn_graph(bias, shared)
        torch.manual_seed(1)
        net = GraphNet(g, "ann").double().eval()
        _randomise_bn(net, seed=2)
        if bias:
            with torch.no_grad():
                net["c"].bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
        fg, fstate = fold_batchnorm(g, net.state_dict())
        assert ("bn" in fg.nodes) == shared
        folded = GraphNet(fg, "ann").double().eval()
        folded.load_state_dict(fstate, strict=True)
        x = torch.randn(3, 2, 5, 5, dtype=torch.float64)
        with torch.no_grad():
            assert torch.allclose(folded(x), net(x), rtol=1e-10, atol=1e-12)
        if not shared:  # the formula by hand for channel 0
            k = net["bn"].weight[0] / torch.sqrt(net["bn"].running_var[0] + 1e-3)
            b0 = net["c"].bias[0] if bias else 0.0
            assert torch.allclose(fstate["c.weight"][0], net["c"].weight[0] * k)
            assert torch.allclose(fstate["c.bias"][0], net["bn"].bias[0] + (b0 - net["bn"].running_mean[0]) * k)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 3), s=st.integers(1, 2), p=st.integers(0, 1), groups=st.sampled_from([1, 2]),
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_fold_batchnorm_is_exact_for_any_conv(k: int, s: int, p: int, groups: int, bias: bool, seed: int) -> None:
    b = GraphBuilder("one", (2, 6, 6))
    b.add("c", Conv2d(out_channels=4, kernel_size=k, stride=s, padding=p, groups=groups, bias=bias))
    b.add("bn", BatchNorm2d())
    b.add("flat", Flatten())
    b.add("fc", Affine(out_features=3))
    b.add("acc", Integrator())
    g = b.build()
    torch.manual_seed(seed)
    net = GraphNet(g, "ann").double().eval()
    _randomise_bn(net, seed)
    fg, fstate = fold_batchnorm(g, net.state_dict())
    folded = GraphNet(fg, "ann").double().eval()
    folded.load_state_dict(fstate, strict=True)
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(folded(x), net(x), rtol=1e-10, atol=1e-12)


def test_fold_batchnorm_refuses_an_incomplete_state() -> None:
    g = digits_resnet()
    state = GraphNet(g).state_dict()
    del state["s1b1_conv2_bn.running_var"]
    with pytest.raises(GraphError) as err:
        fold_batchnorm(g, state)
    assert "the state has no 's1b1_conv2_bn.running_var'; pass the model's full state_dict()" in _one_line(err)
    state = GraphNet(g).state_dict()
    state["stem_bn.weight"] = torch.ones(3)
    with pytest.raises(GraphError, match=r"state\['stem_bn.weight'\] has shape \[3\], expected \[32\]"):
        fold_batchnorm(g, state)


# ----------------------------------------------------------------------------- = SpikingNet
TINY = ArchSpec("tiny", (6, "M", 8, "A", 5), (12, 7), (3, 8, 8), 4, dropout_conv=0.3, dropout_fc=0.4)
VGG_SPECS = [make_arch("digits"), TINY]


def _pair(spec: ArchSpec, kind: str) -> tuple[SpikingNet, GraphNet]:
    ref = build_model(spec, kind, seed=3)
    with torch.no_grad():  # per-layer values, low enough that every layer spikes
        n = ref.thresholds.numel()
        ref.thresholds.copy_(torch.linspace(0.3, 0.2, n))
        ref.leaks.copy_(torch.linspace(0.95, 0.8, n))
    torch.manual_seed(99)  # a different init: every value must come from the copy
    net = GraphNet(vgg_graph(spec), kind)
    net.load_state_dict(state_from_spikingnet(ref), strict=True)
    return ref, net


def _grads(ref: SpikingNet) -> dict[str, torch.Tensor | None]:
    """SpikingNet's gradients under GraphNet's names (None where the pass did not use it)."""
    out: dict[str, torch.Tensor | None] = {}
    th, lk = ref.thresholds.grad, ref.leaks.grad
    for i, info in enumerate(ref.layer_infos):
        out[f"{info.name}.weight"] = ref.synapses[i].weight.grad
        if info.spiking:
            out[f"{info.name}_lif.threshold"] = None if th is None else th[i:i + 1]
            out[f"{info.name}_lif.leak"] = None if lk is None else lk[i:i + 1]
    return out


def _loss(out: torch.Tensor) -> torch.Tensor:
    target = torch.arange(out.shape[0]) % out.shape[1]
    return F.cross_entropy(out * 5.0, target) + (out ** 2).sum()


@pytest.mark.parametrize("spec", VGG_SPECS, ids=[s.name for s in VGG_SPECS])
@pytest.mark.parametrize("kind", ["ann", "snn"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_graphnet_is_bit_identical_to_spikingnet(spec: ArchSpec, kind: str, training: bool) -> None:
    ref, net = _pair(spec, kind)
    ref.train(training)
    net.train(training)
    x = torch.randn(5, *spec.input_shape, generator=torch.Generator().manual_seed(7)) * 2.0
    spiked: dict[str, int] = {}
    for t in (range(1, 6) if kind == "snn" else [1]):
        seen_ref: dict[tuple[str, int], torch.Tensor] = {}
        seen_net: dict[tuple[str, int], torch.Tensor] = {}

        def on_ref(e: LayerEvent, seen: dict[tuple[str, int], torch.Tensor] = seen_ref) -> None:
            if e.spikes is not None:
                seen[(f"{e.layer.name}_lif", e.t)] = e.spikes.detach().clone()

        def on_net(e: PopulationEvent, seen: dict[tuple[str, int], torch.Tensor] = seen_net) -> None:
            if e.spikes is not None:
                seen[(e.node, e.t)] = e.spikes.detach().clone()

        torch.manual_seed(11)
        a = ref(x, t, on_ref) if kind == "snn" else ref(x)
        ref.zero_grad()
        _loss(a).backward()
        torch.manual_seed(11)
        b = net(x, t, on_net) if kind == "snn" else net(x)
        net.zero_grad()
        _loss(b).backward()
        assert a.dtype == b.dtype == torch.float32
        assert torch.equal(a, b)
        grads = _grads(ref)
        assert set(grads) == {n for n, _ in net.named_parameters()}
        for name, p in net.named_parameters():
            want = grads[name]
            if kind == "ann" and "_lif." in name:  # the ANN has no thresholds or leaks
                assert p.grad is None and want is None, name
                continue
            assert p.grad is not None and want is not None, name
            assert torch.equal(p.grad, want), name
        assert seen_ref.keys() == seen_net.keys()
        if kind == "snn":
            assert len(seen_net) == (len(spec.layers()) - 1) * t
        for key, spikes in seen_ref.items():
            assert torch.equal(spikes, seen_net[key]), key
        for (pop, _t), s in seen_net.items():
            spiked[pop] = spiked.get(pop, 0) + int(s.sum())
    assert a.abs().sum() > 0
    if kind == "snn":
        assert len(spiked) == len(spec.layers()) - 1 and min(spiked.values()) > 0, spiked
        assert any(p.grad.abs().sum() > 0 for n, p in net.named_parameters() if "threshold" in n)
    if training:  # dropout really draws: another seed gives another output
        torch.manual_seed(12)
        assert not torch.equal(net(x, 5) if kind == "snn" else net(x), b)


def test_same_seed_gives_spikingnets_initial_weights() -> None:
    for spec in VGG_SPECS:
        ref = build_model(spec, "snn", seed=5)
        torch.manual_seed(5)
        net = GraphNet(vgg_graph(spec), "snn")
        mine = net.state_dict()
        theirs = state_from_spikingnet(ref)
        assert set(mine) == set(theirs)
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    # the rule itself: fan_out Kaiming for convs, N(0, 0.01) for the classifier
    torch.manual_seed(0)
    big = GraphNet(vgg_graph(make_arch("digits").with_widths([64, 64, 128, 128, 512])))
    w = big["out"].weight.detach()
    assert 0.005 < float(w.std()) < 0.02
    conv = big["conv3"].weight.detach()
    fan_out = conv.shape[0] * conv.shape[2] * conv.shape[3]
    assert abs(float(conv.std()) - (2.0 / fan_out) ** 0.5) < 0.1 * (2.0 / fan_out) ** 0.5
    assert all(torch.all(big[f"{n}_lif"].threshold == 1.0) for n in ("conv1", "fc1"))


def test_state_from_spikingnet_names_and_refusals() -> None:
    ref = build_model(TINY, "snn", seed=0)
    with torch.no_grad():
        ref.thresholds.copy_(torch.tensor([0.5, 0.6, 0.7, 0.8, 0.9]))
    state = state_from_spikingnet(ref)
    assert list(state) == ["conv1.weight", "conv1_lif.threshold", "conv1_lif.leak", "conv2.weight",
                           "conv2_lif.threshold", "conv2_lif.leak", "conv3.weight", "conv3_lif.threshold",
                           "conv3_lif.leak", "fc1.weight", "fc1_lif.threshold", "fc1_lif.leak", "fc2.weight",
                           "fc2_lif.threshold", "fc2_lif.leak", "out.weight"]
    assert state["fc1_lif.threshold"].shape == (1,) and float(state["fc1_lif.threshold"]) == pytest.approx(0.8)
    assert torch.equal(state["fc1.weight"], ref.synapses[3].weight)
    state["conv1.weight"].zero_()  # a copy: the model is untouched
    assert ref.synapses[0].weight.abs().sum() > 0
    with pytest.raises(SnnsimError) as err:
        state_from_spikingnet(GraphNet(vgg_graph(TINY)))
    assert "state_from_spikingnet needs a SpikingNet, got a GraphNet" in _one_line(err)
    bad = dict(ref.state_dict())
    del bad["synapses.3.weight"]
    with pytest.raises(SnnsimError, match="no tensor 'synapses.3.weight' for layer 'fc1'"):
        convert_spikingnet_state(bad, [i.name for i in ref.layer_infos], [i.spiking for i in ref.layer_infos])
    bad = dict(ref.state_dict(), leaks=torch.ones(3))
    with pytest.raises(SnnsimError, match=r"'leaks' must be a tensor of shape \[5\]"):
        convert_spikingnet_state(bad, [i.name for i in ref.layer_infos], [i.spiking for i in ref.layer_infos])


# ----------------------------------------------------------------------------- digits-resnet
def _resnet_reference(s: dict[str, torch.Tensor], x: torch.Tensor, training: bool,
                      act: Callable[[str, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """digits-resnet written out by hand: conv-BN-act stem, an identity block at 32, a strided
    block at 64 with a 1x1 conv-BN shortcut, global average pooling, the classifier."""
    def conv(h: torch.Tensor, n: str, stride: int, pad: int) -> torch.Tensor:
        return F.conv2d(h, s[f"{n}.weight"], None, stride, pad)

    def bn(h: torch.Tensor, n: str) -> torch.Tensor:
        # running stats are cloned: the reference must not update the net's buffers
        return F.batch_norm(h, s[f"{n}.running_mean"].clone(), s[f"{n}.running_var"].clone(), s[f"{n}.weight"],
                            s[f"{n}.bias"], training=training, eps=1e-5)

    h = act("stem_lif", bn(conv(x, "stem", 1, 1), "stem_bn"))
    main = act("s1b1_lif1", bn(conv(h, "s1b1_conv1", 1, 1), "s1b1_conv1_bn"))
    main = bn(conv(main, "s1b1_conv2", 1, 1), "s1b1_conv2_bn")
    h = act("s1b1_lif2", main + h)
    main = act("s2b1_lif1", bn(conv(h, "s2b1_conv1", 2, 1), "s2b1_conv1_bn"))
    main = bn(conv(main, "s2b1_conv2", 1, 1), "s2b1_conv2_bn")
    short = bn(conv(h, "s2b1_down", 2, 0), "s2b1_down_bn")
    h = act("s2b1_lif2", main + short)
    h = F.avg_pool2d(h, 4).flatten(1)
    return F.linear(h, s["out.weight"], s["out.bias"])


def _resnet_net(kind: str) -> GraphNet:
    torch.manual_seed(4)
    net = GraphNet(digits_resnet(), kind).double()
    _randomise_bn(net, 4)
    with torch.no_grad():
        net["out"].bias.copy_(torch.linspace(-0.5, 0.5, 10))
        net["out"].weight.mul_(30.0)
        for n in ("stem_lif", "s1b1_lif1", "s1b1_lif2", "s2b1_lif1", "s2b1_lif2"):
            net[n].threshold.fill_(0.8)
            net[n].leak.fill_(0.7)
    return net


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_digits_resnet_ann_equals_a_hand_written_reference(training: bool) -> None:
    net = _resnet_net("ann").train(training)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    out = net(x)
    assert out.shape == (4, 10)
    ref = _resnet_reference(state, x, training, lambda _n, h: F.relu(h))
    assert torch.allclose(out, ref, rtol=1e-12, atol=1e-12)
    assert float((out - net["out"].bias).detach().abs().max()) > 1e-3  # the network contributes, not just the bias


def test_digits_resnet_snn_equals_a_hand_written_reference_and_trains() -> None:
    net = _resnet_net("snn").eval()
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64) * 2.0
    steps = 4
    pots: dict[str, torch.Tensor | float] = {}
    spikes_seen = 0

    def lif(name: str, cur: torch.Tensor) -> torch.Tensor:
        nonlocal spikes_seen
        u = 0.7 * pots.get(name, 0.0) + cur
        s = (u > 0.8).double()
        pots[name] = u - 0.8 * s
        spikes_seen += int(s.sum())
        return s

    with torch.no_grad():
        ref = sum(_resnet_reference(state, x, False, lif) for _ in range(steps)) / steps
        events: list[PopulationEvent] = []
        out = net(x, steps, events.append)
    assert out.shape == (3, 10) and spikes_seen > 0
    assert torch.allclose(out, ref, rtol=1e-10, atol=1e-10)
    assert len(events) == steps * len(net.schedule.populations)
    last = [e for e in events if e.node == "out_integrator"]
    assert [e.t for e in last] == list(range(steps)) and all(e.spikes is None for e in last)
    assert torch.allclose(last[-1].potential / steps, out)
    # backward through the whole residual SNN, BN in training mode
    net.train()
    net.float()
    loss = _loss(net(x.float(), steps))
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert net["stem"].weight.grad.abs().sum() > 0
    assert any(float(net[n].threshold.grad.abs().sum()) > 0 for n in ("stem_lif", "s1b1_lif2", "s2b1_lif2"))


def test_graphnet_state_dict_names_and_shapes() -> None:
    b = GraphBuilder("names", (3, 4, 4))
    b.add("c", Conv2d(out_channels=5, kernel_size=3, padding=1, bias=True))
    b.add("bn", BatchNorm2d())
    b.add("sc", Scale())
    b.add("lifc", LIF(per_channel=True))
    b.add("flat", Flatten())
    b.add("fc", Affine(out_features=6, bias=False))
    b.add("if1", IF())
    b.add("out", Affine(out_features=2))
    b.add("acc", Integrator())
    net = GraphNet(b.build(), leak=0.5)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == {"c.weight": (5, 3, 3, 3), "c.bias": (5,), "bn.weight": (5,), "bn.bias": (5,),
                      "bn.running_mean": (5,), "bn.running_var": (5,), "bn.num_batches_tracked": (),
                      "sc.scale": (5,), "lifc.threshold": (5,), "lifc.leak": (5,), "fc.weight": (6, 80),
                      "if1.threshold": (1,), "out.weight": (2, 6), "out.bias": (2,)}
    assert torch.all(net["lifc"].leak == 0.5) and torch.all(net["c"].bias == 0) and torch.all(net["bn"].weight == 1)
    assert list(net) == ["c", "bn", "sc", "lifc", "fc", "if1", "out"]
    with torch.no_grad():
        net["lifc"].leak.copy_(torch.tensor([-1.0, 0.5, 2.0, 1.0, 0.0]))
        net["if1"].threshold.fill_(-3.0)
    net.clamp_leaks()
    assert net["lifc"].leak.tolist() == [0.0, 0.5, 1.0, 1.0, 0.0]
    assert net["if1"].threshold.tolist() == [pytest.approx(1e-3)]


# ----------------------------------------------------------------------------- hand numbers
def _affine_lif(neuron: LIF | IF, w: list[list[float]]) -> GraphNet:
    g = Graph({"input": Input((2,)), "fc": Affine(out_features=2, bias=False), "n": neuron, "output": Output()},
              [("input", "fc"), ("fc", "n"), ("n", "output")], name="tiny-lif")
    net = GraphNet(g, "snn").double()
    with torch.no_grad():
        net["fc"].weight.copy_(torch.tensor(w, dtype=torch.float64))
    return net


def test_per_channel_lif_with_value_reset_by_hand() -> None:
    net = _affine_lif(LIF(per_channel=True, reset="value", v_reset=0.25), [[1.0, 0.0], [0.0, 1.0]])
    with torch.no_grad():
        net["n"].threshold.copy_(torch.tensor([1.0, 0.5]))
        net["n"].leak.copy_(torch.tensor([0.5, 0.9]))
    events: list[PopulationEvent] = []
    out = net(torch.tensor([[0.6, 0.3]], dtype=torch.float64), 3, events.append)
    # neuron 0: u = 0.6, 0.9, 1.05 -> fires at t=2 (theta 1); neuron 1: u = 0.3, 0.57 -> fires
    # (theta 0.5), reset to 0.25, then 0.9 * 0.25 + 0.3 = 0.525 -> fires again
    assert [e.spikes[0].tolist() for e in events if e.spikes is not None] == [[0, 0], [0, 1], [1, 1]]
    pots = [e.potential[0].tolist() for e in events]
    assert pots == [pytest.approx([0.6, 0.3]), pytest.approx([0.9, 0.57]), pytest.approx([1.05, 0.525])]
    assert all(torch.equal(e.current, torch.tensor([[0.6, 0.3]], dtype=torch.float64)) for e in events)
    assert out.tolist() == [pytest.approx([1 / 3, 2 / 3])]  # LIF -> Output: the spike rate
    # the same numbers with the soft reset: neuron 1 keeps 0.07, then 0.9 * 0.07 + 0.3 = 0.363 < 0.5
    soft = _affine_lif(LIF(per_channel=True), [[1.0, 0.0], [0.0, 1.0]])
    with torch.no_grad():
        soft["n"].threshold.copy_(torch.tensor([1.0, 0.5]))
        soft["n"].leak.copy_(torch.tensor([0.5, 0.9]))
    assert soft(torch.tensor([[0.6, 0.3]], dtype=torch.float64), 3).tolist() == [pytest.approx([1 / 3, 1 / 3])]


def test_fire_at_or_above_and_if_by_hand() -> None:
    x = torch.tensor([[0.5, 0.25]], dtype=torch.float64)
    strict = _affine_lif(IF(), [[1.0, 0.0], [0.0, 1.0]])
    at = _affine_lif(IF(fire=">="), [[1.0, 0.0], [0.0, 1.0]])
    for net in (strict, at):
        with torch.no_grad():
            net["n"].threshold.fill_(0.5)
    # IF: u = 0.5, then 0.5 + 0.5 = 1.0 (strict) ...; at threshold 0.5 exactly '>' does not fire
    assert strict(x, 2).tolist() == [[0.5, 0.0]]  # neuron 0: t0 0.5 (no), t1 1.0 (yes)
    assert at(x, 2).tolist() == [[1.0, 0.5]]  # neuron 0 fires at 0.5 both steps; neuron 1 at t1 (0.5)
    z = torch.tensor([0.0, 0.5, -2.0], requires_grad=True)
    from snnsim.graph.torch_net import LinearSpikeGE
    s = LinearSpikeGE.apply(z)
    s.sum().backward()
    assert s.tolist() == [1.0, 1.0, 0.0] and z.grad.tolist() == pytest.approx([0.3, 0.15, 0.0])


def test_sum_max_pool_scale_and_flatten_match_torch() -> None:
    b = GraphBuilder("ops", (2, 6, 6))
    b.add("c", Conv2d(out_channels=4, kernel_size=3, padding=1, bias=True))
    b.add("sc", Scale())
    b.add("n1", IF())
    b.add("sum", SumPool2d(kernel_size=3, stride=2, padding=1))
    b.add("max", MaxPool2d(kernel_size=2))
    b.add("flat", Flatten(start_dim=1))  # (4, 1, 1) -> (4, 1)
    b.add("flat2", Flatten())
    b.add("fc", Affine(out_features=3))
    b.add("acc", Integrator())
    torch.manual_seed(2)
    net = GraphNet(b.build(), "ann").double()
    with torch.no_grad():
        net["sc"].scale.copy_(torch.tensor([1.0, -2.0, 0.5, 3.0]))
        net["c"].bias.copy_(torch.tensor([0.1, 0.2, -0.3, 0.0]))
    s = {k: v.detach() for k, v in net.state_dict().items()}
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64)
    h = F.conv2d(x, s["c.weight"], s["c.bias"], padding=1) * s["sc.scale"].view(4, 1, 1)
    h = F.relu(h)
    h = F.pad(h, (1, 1, 1, 1)).unfold(2, 3, 2).unfold(3, 3, 2).sum((-1, -2))  # a plain 3x3 window sum
    h = F.max_pool2d(h, 2).flatten(1)
    ref = F.linear(h, s["fc.weight"], s["fc.bias"])
    assert torch.allclose(net(x), ref, rtol=1e-12, atol=1e-12)
    assert net.graph.shapes["flat"] == (4, 1)


# ----------------------------------------------------------------------------- refusals
def test_graphnet_refusals_are_one_line() -> None:
    net = GraphNet(vgg_graph(TINY))
    with pytest.raises(SnnsimError) as err:
        net(torch.zeros(2, 1, 8, 8))
    assert "graph 'tiny': input has shape [2, 1, 8, 8], expected [B, 3, 8, 8]" in _one_line(err)
    with pytest.raises(SnnsimError) as err:
        net.forward_ann(torch.zeros(3, 8, 8))
    assert "expected [B, 3, 8, 8]" in _one_line(err)
    with pytest.raises(SnnsimError, match="timesteps must be a whole number >= 1, got 0"):
        net(torch.zeros(1, 3, 8, 8), 0)
    with pytest.raises(SnnsimError, match="kind must be 'ann' or 'snn', got 'cnn'"):
        GraphNet(vgg_graph(TINY), "cnn")
    with pytest.raises(SnnsimError, match="timesteps must be a whole number >= 1"):
        GraphNet(vgg_graph(TINY), timesteps=-2)
    with pytest.raises(GraphError, match="GraphNet needs a Graph, got a ArchSpec"):
        GraphNet(TINY)  # type: ignore[arg-type]
    g = Graph({"input": Input((2,)), "train": Affine(out_features=2), "acc": Integrator(), "output": Output()},
              [("input", "train"), ("train", "acc"), ("acc", "output")])
    with pytest.raises(GraphError) as gerr:
        GraphNet(g)
    assert "node name 'train' clashes with a GraphNet attribute; rename the node" in _one_line(gerr)
