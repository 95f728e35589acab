"""Spatial pruning: the PCA count (paper.md §7.2), the activation collection, the pruned spec."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sim_testutil import set_thresholds

from snnsim.arch import ArchSpec, make_arch
from snnsim.checkpoint import load_model, save_model
from snnsim.compression.spatial import (
    PCAAccumulator,
    analyze_spatial,
    cumulative_ratio,
    default_samples,
    dims_for_variance,
    explained_variance_curve,
    measure,
    pruned_spec,
    significant_dims,
    spatial_table,
)
from snnsim.errors import SnnsimError
from snnsim.graph import build_graph
from snnsim.models import build_model


def low_rank(n: int, f: int, r: int, noise_rel: float = 1e-4, seed: int = 0) -> np.ndarray:
    """Rank-r signal (comparable variances) + isotropic noise at ``noise_rel`` relative variance."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((f, r)))
    scales = rng.uniform(0.8, 1.2, size=r)
    signal = (rng.standard_normal((n, r)) * scales) @ basis.T
    sig_var = float(signal.var(axis=0).sum())
    noise = rng.standard_normal((n, f)) * np.sqrt(noise_rel * sig_var / f)
    return signal + noise + rng.standard_normal(f) * 5.0  # plus a large mean offset


def svd_count(x: np.ndarray, variance: float) -> int:
    xc = x - x.mean(axis=0)
    s = np.linalg.svd(xc, compute_uv=False)
    cum = np.cumsum(s**2) / np.sum(s**2)
    return int(np.searchsorted(cum, variance - 1e-12) + 1)


@pytest.mark.parametrize("r", [1, 3, 7, 16])
def test_low_rank_count_equals_rank(r: int) -> None:
    x = low_rank(2000, 32, r)
    assert significant_dims(x, 0.999) == r


@pytest.mark.parametrize("variance", [0.5, 0.9, 0.99, 0.999, 1.0])
def test_count_equals_numpy_svd(variance: float) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 20)) @ rng.standard_normal((20, 20)) * rng.uniform(0.1, 3, 20)
    assert significant_dims(x, variance) == svd_count(x, variance)


def test_invariant_to_channel_permutation() -> None:
    x = low_rank(1500, 24, 5, noise_rel=1e-3, seed=3)
    perm = np.random.default_rng(4).permutation(24)
    np.testing.assert_allclose(explained_variance_curve(x), explained_variance_curve(x[:, perm]), atol=1e-10)
    for v in (0.9, 0.99, 0.999):
        assert significant_dims(x, v) == significant_dims(x[:, perm], v)


def test_streaming_equals_one_shot() -> None:
    x = low_rank(999, 16, 4, noise_rel=1e-2, seed=5)
    acc = PCAAccumulator(16)
    for chunk in np.array_split(x, 7):
        acc.update(torch.from_numpy(chunk))
    np.testing.assert_allclose(acc.curve(), explained_variance_curve(x), atol=1e-12)
    ev_np = np.linalg.eigvalsh(np.cov(x, rowvar=False))[::-1]
    np.testing.assert_allclose(acc.eigenvalues(), np.clip(ev_np, 0, None), rtol=1e-9, atol=1e-9)


def test_curve_properties_and_edge_cases() -> None:
    curve = explained_variance_curve(np.random.default_rng(0).standard_normal((100, 6)))
    assert curve.shape == (6,) and curve[-1] == 1.0 and np.all(np.diff(curve) >= -1e-15)
    # constant (dead) layer: k = 1, never 0
    assert significant_dims(np.ones((10, 5)), 0.999) == 1
    assert dims_for_variance(cumulative_ratio(np.zeros(4)), 0.5) == 1
    assert significant_dims(low_rank(500, 8, 8, noise_rel=0.0), 1.0) == 8


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_bad_variance_rejected(bad: float) -> None:
    with pytest.raises(SnnsimError):
        significant_dims(np.random.default_rng(0).standard_normal((10, 3)), bad)


def test_bad_activations_rejected() -> None:
    with pytest.raises(SnnsimError):
        significant_dims(np.zeros(5), 0.9)
    with pytest.raises(SnnsimError):
        significant_dims(np.zeros((1, 5)), 0.9)
    x = np.zeros((4, 2))
    x[0, 0] = np.nan
    with pytest.raises(SnnsimError):
        significant_dims(x, 0.9)


def test_default_samples() -> None:
    assert default_samples(1437, build_model(make_arch("digits"), "ann", seed=0)) == 1437
    # 2 x the widest hidden FC population (vgg16's 4096-wide classifier, here on a tiny conv stack)
    wide_fc = ArchSpec("wide-fc", (4, "A"), (4096, 100), (1, 8, 8), 10)
    assert default_samples(50000, build_model(wide_fc, "ann", seed=0)) == 8192
    assert default_samples(50000, build_model(make_arch("digits"), "ann", seed=0)) == 2048
    # a graph with no hidden FC population (digits-resnet: convs, then the classifier)
    assert default_samples(50000, build_model(build_graph("digits-resnet"), "ann", seed=0)) == 2048
    assert default_samples(50000) == 2048
    assert default_samples(1, None) == 1


# ----------------------------------------------------------------------------- on a model
def _tiny_snn(seed: int = 0):
    spec = make_arch("digits").with_widths([8, 8, 12, 12, 16], name="tiny")
    model = build_model(spec, "snn", timesteps=3, seed=seed)
    set_thresholds(model, 0.5)
    model.dataset_info = {"name": "synthetic", "input_shape": [1, 8, 8], "num_classes": 10}
    return model


def _loader(n: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)


def _reference_average(model, loader, mode: str, samples: int) -> list[np.ndarray]:
    """Collect A_l by hand (python lists) to check the streamed observer path."""
    out: dict[int, list[torch.Tensor]] = {}
    pops = model.populations
    seen = 0
    for x, _ in loader:
        x = x[: samples - seen]
        acc: dict[int, torch.Tensor] = {}

        def obs(ev, acc=acc):
            if not pops[ev.index].spiking:
                return
            if mode == "potential":
                v = ev.potential
            elif mode == "current":
                v = ev.current
            else:
                v = ev.potential - model.threshold(ev.node)[0] * ev.spikes
            acc[ev.index] = acc.get(ev.index, 0) + v.double()

        with torch.no_grad():
            model.forward_snn(x, model.timesteps, obs)
        for i, v in acc.items():
            a = v / model.timesteps
            a = a.permute(0, 2, 3, 1).reshape(-1, a.shape[1]) if a.ndim == 4 else a
            out.setdefault(i, []).append(a)
        seen += x.shape[0]
        if seen >= samples:
            break
    return [torch.cat(out[i]).numpy() for i in sorted(out)]


@pytest.mark.parametrize("mode", ["potential", "potential-after-reset", "current"])
def test_analyze_matches_hand_collected_pca(mode: str) -> None:
    model = _tiny_snn().eval()
    ana = analyze_spatial(model, _loader(), variance=0.99, mode=mode, samples=37, progress=False)
    ref = _reference_average(model, _loader(), mode, 37)
    assert ana.samples == 37
    assert ana.widths_before == [8, 8, 12, 12, 16]
    assert ana.observations == [37 * 64, 37 * 64, 37 * 16, 37 * 16, 37]
    for curve, a, k in zip(ana.curves, ref, ana.widths_after, strict=True):
        np.testing.assert_allclose(curve, explained_variance_curve(a), atol=1e-9)
        assert k == significant_dims(a, 0.99) and k >= 1
    lo, hi = ana.dims_at(0.5), ana.dims_at(1.0)
    assert all(a <= b <= w for a, b, w in zip(lo, hi, ana.widths_before, strict=True))
    assert ana.table()["k"].tolist() == ana.widths_after
    assert not ana.warnings


def test_analyze_modes_differ_and_reject_bad_input() -> None:
    model = _tiny_snn()
    a = analyze_spatial(model, _loader(), 0.99, "potential", progress=False)
    c = analyze_spatial(model, _loader(), 0.99, "current", progress=False)
    assert not np.allclose(a.curves[0], c.curves[0])
    with pytest.raises(SnnsimError):
        analyze_spatial(model, _loader(), 0.99, "voltage", progress=False)
    ann = build_model(model.spec, "ann")
    with pytest.raises(SnnsimError):
        analyze_spatial(ann, _loader(), 0.99, progress=False)
    few = analyze_spatial(model, _loader(), 0.99, samples=10, progress=False)
    assert any("fc1" in w for w in few.warnings)  # 10 observations for 16 features


def test_pruned_spec_and_table_and_reload(tmp_path) -> None:
    model = _tiny_snn()
    spec = pruned_spec(model.spec, [4, 5, 6, 7, 3])
    assert spec.widths() == [4, 5, 6, 7, 3]
    assert spec.input_shape == model.spec.input_shape and spec.num_classes == 10
    assert [f for f in spec.features if isinstance(f, str)] == [f for f in model.spec.features if isinstance(f, str)]
    with pytest.raises(SnnsimError):
        pruned_spec(model.spec, [0, 5, 6, 7, 3])
    with pytest.raises(SnnsimError):
        pruned_spec(model.spec, [9, 5, 6, 7, 3])
    small = build_model(spec, "snn", timesteps=3, seed=1)
    m0 = measure(model, _loader(), progress=False)
    m1 = measure(small, _loader(), progress=False)
    assert m0.spikes.shape == (6,) and m0.spikes[-1] == 0.0 and m0.total_spikes > 0
    table = spatial_table(model, small, m0, m1)
    assert list(table["layer"]) == ["conv1", "conv2", "conv3", "conv4", "fc1", "out", "total"]
    total = table.iloc[-1]
    assert total["params_before"] == model.spec.param_count()
    assert total["params_after"] == spec.param_count()
    assert total["compression"] == pytest.approx(model.spec.param_count() / spec.param_count())
    assert total["spikes_before"] == pytest.approx(m0.total_spikes)
    assert table.iloc[0]["params_after"] == 9 * 1 * 4
    path = save_model(small, tmp_path / "pruned.pt")
    back = load_model(path)
    assert back.spec == spec and back.spec.widths() == [4, 5, 6, 7, 3]


def test_measure_spike_counts_by_hand() -> None:
    model = _tiny_snn()
    loader = _loader(20)
    m = measure(model, loader, progress=False)
    total = torch.zeros(model.num_layers)
    correct = 0

    def obs(ev):
        if ev.spikes is not None:
            total[ev.index] += ev.spikes.sum()  # a chain: population k is driven by layer k

    with torch.no_grad():
        for x, y in loader:
            correct += int((model.forward_snn(x, None, obs).argmax(1) == y).sum())
    np.testing.assert_allclose(m.spikes, (total / 20).numpy(), rtol=1e-6)
    assert m.accuracy == correct / 20


# ----------------------------------------------------------------------------- VGG16 arithmetic
def _expected_counts(spec_widths: list[int], fc: list[int], classes: int = 10) -> tuple[int, int]:
    """paper.md §3.2 formulas: conv k*k*Cin*Cout params, k*k*Cin*H*W*Cout MACs; fc in*out."""
    feats = [64, 64, "A", 128, 128, "A", 256, 256, 256, "A", 512, 512, 512, "A", 512, 512, 512]
    it = iter(spec_widths)
    feats = [next(it) if isinstance(f, int) else f for f in feats]
    params = macs = 0
    c, h = 3, 32
    for f in feats:
        if f == "A":
            h //= 2
            continue
        params += 9 * c * f
        macs += 9 * c * h * h * f
        c = f
    flat = c * h * h
    for width in [*fc, classes]:
        params += flat * width
        macs += flat * width
        flat = width
    return params, macs


def test_vgg16_unpruned_counts() -> None:
    spec = make_arch("vgg16")
    assert spec.param_count() == 39_917_248
    assert spec.mac_count() == 338_403_328
    assert _expected_counts(spec.widths()[:13], [4096, 4096]) == (39_917_248, 338_403_328)
    assert spec.layers()[0].macs == 1_769_472


def test_vgg16_pruned_widths_reproduce_formula_counts() -> None:
    """A chosen width list (the paper's own pruned counts are not available, paper.md §0)."""
    spec = make_arch("vgg16")
    conv = [21, 37, 60, 64, 101, 99, 87, 120, 77, 53, 40, 31, 29]
    fc = [300, 117]
    pruned = pruned_spec(spec, conv + fc)
    params, macs = _expected_counts(conv, fc)
    assert pruned.param_count() == params
    assert pruned.mac_count() == macs
    # only the widths changed: pool positions, kernel, input, classes, dropout identical
    assert [f for f in pruned.features if isinstance(f, str)] == [f for f in spec.features if isinstance(f, str)]
    assert [isinstance(f, int) for f in pruned.features] == [isinstance(f, int) for f in spec.features]
    for field_name in ("input_shape", "num_classes", "kernel_size", "padding", "pool_size",
                       "dropout_conv", "dropout_fc"):
        assert getattr(pruned, field_name) == getattr(spec, field_name)
    assert [li.kind for li in pruned.layers()] == [li.kind for li in spec.layers()]
    assert [li.out_shape[1:] for li in pruned.layers()] == [li.out_shape[1:] for li in spec.layers()]
    # first conv by formula: 3x3x3x21 weights and 9*3*32*32*21 MACs
    assert pruned.layers()[0].params == 9 * 3 * 21
    assert pruned.layers()[0].macs == 9 * 3 * 32 * 32 * 21


def test_first_layer_current_rank_is_bounded_by_patch_size() -> None:
    """conv1's input current is W . (3x3x1 patch): its PCA can have at most 9 dimensions."""
    spec = make_arch("digits").with_widths([16, 8, 8, 8, 8], name="wide-conv1")
    model = build_model(spec, "snn", timesteps=2, seed=3)
    ana = analyze_spatial(model, _loader(60), 0.999, "current", progress=False)
    assert ana.curves[0][8] == pytest.approx(1.0, abs=1e-9)
    assert ana.dims_at(0.999999)[0] <= 9


def test_default_variance_per_dataset() -> None:
    from snnsim.compression.spatial import default_variance

    assert default_variance("digits") == 0.995
    assert default_variance("cifar10") == 0.999
    assert default_variance(None) == 0.999


# ----------------------------------------------------------------------------- residual graphs
RESNET_POPS = ["stem_lif", "s1b1_lif1", "s1b1_lif2", "s2b1_lif1", "s2b1_lif2"]


@pytest.fixture(scope="module")
def resnet_snn():
    """digits-resnet's untrained ANN converted to an SNN (BN folded into conv biases), T=4."""
    from snnsim.training import convert_ann_to_snn

    ann = build_model(build_graph("digits-resnet"), kind="ann", seed=0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)
    return convert_ann_to_snn(ann, [(x, y)], 4).eval()


def test_width_groups_join_identity_shortcuts_only() -> None:
    from snnsim.compression.spatial import width_groups

    groups = width_groups(build_graph("digits-resnet"))
    # block 1's shortcut is the identity: its output population adds the stem's own spikes
    assert groups[0] == ["stem_lif", "s1b1_lif2"]
    # block 2 is strided (1x1 downsample): its populations are free, and so is every other
    assert sorted(groups[1:]) == [["s1b1_lif1"], ["s2b1_lif1"], ["s2b1_lif2"]]
    assert sorted(p for grp in groups for p in grp) == sorted(RESNET_POPS)
    # a VGG chain has no shortcut: one group per population
    assert width_groups(build_graph("digits")) == [[p] for p in
                                                   ["conv1_lif", "conv2_lif", "conv3_lif", "conv4_lif", "fc1_lif"]]


def test_pruned_graph_follows_group_widths_and_shapes() -> None:
    from snnsim.compression.spatial import group_widths, pruned_graph
    from snnsim.graph.graph import Graph

    graph = build_graph("digits-resnet")
    chosen = group_widths(graph, RESNET_POPS, [5, 7, 9, 11, 13])
    # stem (5) and block 1's output (9) share the identity shortcut: both get the larger k
    assert chosen == {"stem_lif": 9, "s1b1_lif2": 9, "s1b1_lif1": 7, "s2b1_lif1": 11, "s2b1_lif2": 13}
    pruned = pruned_graph(graph, chosen)
    assert pruned.name == "digits-resnet-pruned"
    info = pruned.info
    # the strided block: conv2 and the 1x1 downsample both feed s2b1_lif2, so both get its width
    assert pruned.nodes["s2b1_conv2"].out_channels == 13 and pruned.nodes["s2b1_down"].out_channels == 13
    assert info["s2b1_conv2"].in_shapes[0] == (11, 4, 4) and info["s2b1_down"].in_shapes[0] == (9, 8, 8)
    # batch norms follow by shape inference
    for bn, width in [("stem_bn", 9), ("s1b1_conv1_bn", 7), ("s1b1_conv2_bn", 9), ("s2b1_conv1_bn", 11),
                      ("s2b1_conv2_bn", 13), ("s2b1_down_bn", 13)]:
        assert info[bn].out_shape[0] == width, bn
    assert info["out"].in_shapes[0] == (13,) and info["out"].out_shape == (10,)
    assert info[pruned.input].out_shape == (1, 8, 8)
    # a valid graph: it survives a serialisation round-trip and runs as a model
    again = Graph.from_dict(pruned.to_dict())
    ann = build_model(again, "ann", seed=0)
    assert ann["s2b1_down_bn"].num_features == 13 and ann["s2b1_down"].weight.shape == (13, 9, 1, 1)
    assert ann(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert [p.shape[0] for p in ann.populations if p.spiking] == [9, 7, 9, 11, 13]
    assert ann.param_count() < build_model(graph, "ann", seed=0).param_count()


@pytest.mark.parametrize("widths", [{"stem_lif": 4, "s1b1_lif2": 5}, {"stem_lif": 4}])
def test_pruned_graph_refuses_two_widths_in_one_group(widths: dict[str, int]) -> None:
    from snnsim.compression.spatial import pruned_graph

    with pytest.raises(SnnsimError, match="stem_lif, s1b1_lif2") as exc:
        pruned_graph(build_graph("digits-resnet"), widths)
    assert "\n" not in str(exc.value) and "group_widths" in str(exc.value)


def test_pruned_graph_refuses_bad_widths() -> None:
    from snnsim.compression.spatial import pruned_graph

    graph = build_graph("digits-resnet")
    with pytest.raises(SnnsimError, match="1..64"):
        pruned_graph(graph, {"s2b1_lif2": 65})
    with pytest.raises(SnnsimError, match="1..64"):
        pruned_graph(graph, {"s2b1_lif2": 0})
    with pytest.raises(SnnsimError, match="no LIF / IF population 'gap'"):
        pruned_graph(graph, {"gap": 3})


def test_analyze_spatial_on_a_resnet_snn(resnet_snn) -> None:
    from snnsim.compression.spatial import group_widths, pruned_graph

    ana = analyze_spatial(resnet_snn, _loader(24), variance=0.99, samples=20, progress=False)
    spiking = [p for p in resnet_snn.populations if p.spiking]
    assert [p.name for p in spiking] == RESNET_POPS
    # one width per LIF population, named after the population's first layer
    assert ana.layer_names == ["stem", "s1b1_conv1", "s1b1_conv2", "s2b1_conv1", "s2b1_conv2"]
    assert ana.widths_before == [32, 32, 32, 64, 64]
    assert ana.observations == [20 * 64, 20 * 64, 20 * 64, 20 * 16, 20 * 16]
    assert len(ana.widths_after) == len(ana.curves) == 5
    assert all(1 <= k <= w for k, w in zip(ana.widths_after, ana.widths_before, strict=True))
    assert all(c.shape == (w,) and c[-1] == 1.0 for c, w in zip(ana.curves, ana.widths_before, strict=True))
    assert ana.table()["k"].tolist() == ana.widths_after
    # the widths make a valid pruned graph of the SNN's (folded) graph
    chosen = group_widths(resnet_snn.graph, RESNET_POPS, ana.widths_after)
    assert chosen["stem_lif"] == chosen["s1b1_lif2"] == max(ana.widths_after[0], ana.widths_after[2])
    small = build_model(pruned_graph(resnet_snn.graph, chosen), "snn", timesteps=2, seed=0)
    assert [p.shape[0] for p in small.populations if p.spiking] == [chosen[p] for p in RESNET_POPS]
    # spikes are counted per population, on the row of its first layer (none on the shortcut rows)
    m0 = measure(resnet_snn, _loader(8), progress=False)
    assert m0.spikes.shape == (8,) and m0.total_spikes > 0
    assert m0.spikes[3] == 0.0 and m0.spikes[6] == 0.0 and m0.spikes[7] == 0.0  # identity, down, out
    table = spatial_table(resnet_snn, small, m0, None)
    assert list(table["layer"]) == [i.name for i in resnet_snn.layer_infos] + ["total"]
    assert table.iloc[-1]["params_after"] == small.param_count() < resnet_snn.param_count()
    assert table.iloc[-1]["channels_before"] == 32 * 3 + 64 * 2
