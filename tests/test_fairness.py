"""Fairness of the SNN vs ANN comparison (issue 13 item 7): both sides count the same
connections (in-bounds by default, conventional as an option), Loihi's core mapping counts the
same synapses, and on a chip without a MAC datapath the analog first layer is charged, timed and
static-charged on the baseline accelerator it runs on."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sim_testutil import set_thresholds
from test_cost import make_counts, paper_counts

from snnsim.arch import ArchSpec, LayerInfo, make_arch
from snnsim.captions import CONNECTION_RULES, CONNECTIONS_UNRECORDED, comparison_caption
from snnsim.cost import CONNECTIONS_CHOICES, ann_baseline, cost_report, layer_connections, snn_cost
from snnsim.errors import ConfigError, SnnsimError
from snnsim.hw import load_hw


def im2col_connections(layer: LayerInfo) -> tuple[int, int]:
    """(in-bounds, conventional) connections of a conv layer, counted independently: unfold an
    all-ones input padded with zeros (im2col, numpy's sliding windows); the nonzero entries of the
    unfolded matrix are the taps that reach an input, its size the conventional taps; x C_out."""
    c_in, h, w = layer.in_shape
    c_out, h_out, w_out = layer.out_shape
    k, s, p = layer.kernel, layer.stride, layer.padding
    padded = np.pad(np.ones((c_in, h, w), dtype=np.int64), ((0, 0), (p, p), (p, p)))
    cols = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(1, 2))[:, ::s, ::s][:, :h_out, :w_out]
    assert cols.shape == (c_in, h_out, w_out, k, k)
    return int(np.count_nonzero(cols)) * c_out, int(cols.size) * c_out


PADDED = ArchSpec("padded", (4, "A", 6, "M", 5), (7,), (2, 6, 5), 3)  # odd sides, avg and max pools


# ----------------------------------------------------------------------------- item 1: the ANN's MACs
@pytest.mark.parametrize("spec", [PADDED, make_arch("vgg16"), make_arch("digits")], ids=lambda s: s.name)
def test_ann_macs_are_the_inbounds_connections_counted_by_im2col(spec: ArchSpec) -> None:
    layers = spec.layers()
    inb = conv = 0
    for li in layers:
        if li.kind == "conv":
            i, c = im2col_connections(li)
            assert i < c  # padding taps exist in every same-padded conv
        else:
            i = c = li.in_features * li.out_features
        inb, conv = inb + i, conv + c
    ann = ann_baseline(layers, load_hw("45nm", compute_only=True))
    assert ann.totals["mac"] == inb
    assert ann.layers["mac"].tolist() == [float(layer_connections(li)) for li in layers]
    assert ann.energy_pj == pytest.approx(inb * 4.6, rel=1e-12)
    assert ann_baseline(layers, load_hw("45nm"), connections="conventional").totals["mac"] == conv == spec.mac_count()


def test_strided_conv_inbounds_matches_im2col() -> None:
    layer = LayerInfo(0, "s2", "conv", (3, 9, 7), (5, 5, 4), (3, 9, 7), kernel=3, stride=2, padding=1)
    assert (layer_connections(layer, "inbounds"), layer_connections(layer, "conventional")) == im2col_connections(layer)


def test_vgg16_padding_inflated_the_ratio_by_1_24() -> None:
    """The bug: the ANN counted padding taps, the SNN's events never reach them. On VGG16/CIFAR
    the compute-only 45 nm ratio was inflated by 338,403,328 / 272,515,840 = 1.2418."""
    layers = make_arch("vgg16").layers()
    hw = load_hw("45nm", compute_only=True)
    inb = ann_baseline(layers, hw)
    conv = ann_baseline(layers, hw, connections="conventional")
    assert (inb.totals["mac"], conv.totals["mac"]) == (272_515_840, 338_403_328)
    rep = cost_report(paper_counts(0.34), hw, first_layer="mac_once")  # SNN ops: in-bounds events
    mixed = conv.energy_pj / rep.snn.energy_pj  # what was reported before
    assert mixed / rep.summary["energy_ann_over_snn"] == pytest.approx(338_403_328 / 272_515_840, rel=1e-12)
    assert round(mixed / rep.summary["energy_ann_over_snn"], 4) == 1.2418


# ----------------------------------------------------------------------------- conventional = before
# The ANN baseline of VGG16/CIFAR10 as snnsim computed it before issue 13 item 7 (git 9aa583d):
# the conventional option must give these exact numbers.
BEFORE_ANN = {"eyeriss-like": (1851064624.2508802, 0.01342876, 2685752.0),
              "45nm": (4942368203.6, 0.010071555000000001, 2014311.0)}


@pytest.mark.parametrize("name", sorted(BEFORE_ANN))
def test_conventional_restores_the_ann_numbers_exactly(name: str) -> None:
    res = ann_baseline(make_arch("vgg16").layers(), load_hw(name), connections="conventional")
    assert (res.energy_pj, res.latency_s, res.latency_cycles) == BEFORE_ANN[name]
    assert res.totals["mac"] == 338_403_328


def test_conventional_scales_the_snn_ops_to_the_same_connections() -> None:
    """Conventional on the SNN side: each layer's ops x conventional / in-bounds connections (the
    padding taps at the layer's rate per connection), so a uniform rate R gives R x FLOPs."""
    layers = make_arch("vgg16").layers()
    hw = load_hw("45nm", compute_only=True)
    counts = paper_counts(0.5)
    inb = snn_cost(counts, hw)
    conv = snn_cost(counts, hw, connections="conventional")
    ratio = np.array([li.macs / layer_connections(li) for li in layers])
    assert conv.layers["ac"].to_numpy() == pytest.approx(inb.layers["ac"].to_numpy() * ratio, rel=1e-12)
    assert conv.layers["mac"].sum() == pytest.approx(5 * 1_769_472, rel=1e-12)  # conv1, every timestep
    assert conv.layers["ac"].sum() == pytest.approx(0.5 * (338_403_328 - 1_769_472), rel=1e-12)
    assert conv.layers["dense_ops"].tolist() == [float(li.macs) for li in layers]
    assert inb.layers["dense_ops"].tolist() == [float(layer_connections(li)) for li in layers]
    # both conventions compare the same connections: their ratios agree within 5 % (uniform
    # rates), unlike the old mix (conventional ANN over in-bounds SNN), 24 % above
    a = cost_report(counts, hw)
    b = cost_report(counts, hw, connections="conventional")
    assert a.summary["energy_ann_over_snn"] == pytest.approx(b.summary["energy_ann_over_snn"], rel=0.05)
    mixed = b.ann.energy_pj / a.snn.energy_pj
    assert mixed / a.summary["energy_ann_over_snn"] == pytest.approx(1.2418, abs=1e-4)


# ----------------------------------------------------------------------------- item 2: Loihi's cores
def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loihi_cores_count_inbounds_synapses(tmp_path: Path) -> None:
    """A Loihi with a MAC datapath (so every layer sits on its cores): ceil(synapses /
    131,072) cores per layer at least, synapses by the convention; conventional gives the 2,633
    cores snnsim mapped before, in-bounds 2,133."""
    layers = make_arch("vgg16").layers()
    hw = load_hw(_write(tmp_path, "loihi-mac.yaml", "name: loihi-mac\nextends: loihi\ncompute: {mac_pj: 1.0}\n"))

    def cores(connections: str) -> int:
        return sum(max(math.ceil(li.neurons / 1024), math.ceil(layer_connections(li, connections) / 131_072))
                   for li in layers)

    inb = snn_cost(paper_counts(0.2), hw)
    conv = snn_cost(paper_counts(0.2), hw, connections="conventional")
    assert inb.totals["cores_used"] == cores("inbounds") == 2_133
    assert conv.totals["cores_used"] == cores("conventional") == 2_633
    assert (inb.totals["chips"], conv.totals["chips"]) == (17, 21)
    # shipped Loihi: the analog conv1 runs on eyeriss-like and takes none of its cores
    shipped = snn_cost(paper_counts(0.2), load_hw("loihi"))
    assert shipped.totals["cores_used"] == cores("inbounds") - 64  # conv1: 65,536 neurons = 64 cores


# ----------------------------------------------------------------------------- item 3: where conv1 runs
def tiny_layers() -> list[LayerInfo]:
    return ArchSpec("tiny", (4, "A"), (5,), (1, 4, 4), 3).layers()


def test_first_layer_on_a_no_mac_chip_is_timed_and_charged_on_the_baseline(tmp_path: Path) -> None:
    _write(tmp_path, "eyeriss-static.yaml", "name: eyeriss-static\nextends: eyeriss-like\nstatic: {power_mw: 50.0}\n")
    hw = load_hw(_write(tmp_path, "loihi-x.yaml",
                        "name: loihi-x\nextends: loihi\nbaseline: {config: eyeriss-static.yaml}\n"))
    layers = tiny_layers()
    T = 2
    syn = np.array([[400.0, 400.0], [30.0, 10.0], [4.0, 6.0]])
    touched = np.array([[64.0, 64.0], [5.0, 4.0], [3.0, 3.0]])
    spikes = np.array([[8.0, 6.0], [2.0, 1.0], [0.0, 0.0]])
    res = snn_cost(make_counts(layers, T, syn=syn, touched=touched, spikes=spikes), hw)
    rows = res.layers
    assert rows["runs_on"].tolist() == ["eyeriss-static", "loihi-x", "loihi-x"]
    # time: ceil(400 MACs / (168 PEs x 0.75)) = 4 cycles per timestep at 200 MHz, not 400 x 3.5 ns
    assert rows.loc[0, "latency_cycles"] == 2 * 4
    assert rows.loc[0, "latency_s"] == pytest.approx(2 * 4 / 2e8)
    # static: the baseline's 50 mW over the layer's time; Loihi's 104 mW over the whole latency,
    # attributed to the layers on its cores only
    assert rows.loc[0, "energy_static_pj"] == pytest.approx(0.050 * 2 * 4 / 2e8 * 1e12)
    loihi_static = 0.104 * res.latency_s * 1e12
    assert rows.loc[1:, "energy_static_pj"].sum() == pytest.approx(loihi_static)
    assert res.breakdown["static"] == pytest.approx(loihi_static + 0.050 * 8 / 2e8 * 1e12)
    # energy: the baseline's MAC and per-MAC memory (Timeloop ratios), its neuron costs (one compare
    # per update, a reset per spike: 0.042 pJ each), none of Loihi's 81/52 pJ updates
    assert rows.loc[0, "energy_compute_pj"] == pytest.approx(800 * 0.208)
    assert rows.loc[0, "energy_memory_pj"] == pytest.approx(800 * (0.38677 + 1.00669 + 0.11237 + 0.37527 + 3.38086))
    assert rows.loc[0, "energy_neuron_pj"] == pytest.approx(128 * 0.042 + 14 * 0.042)
    assert res.breakdown["memory:eyeriss-static:dram"] == pytest.approx(800 * 3.38086)
    acc = res.accesses
    assert set(acc[acc.layer == "conv1"]["level"]) == {f"eyeriss-static:{lv}" for lv in
                                                       ("psum_spad", "weights_spad", "ifmap_spad", "shared_glb", "dram")}
    assert res.totals["cores_used"] == 2  # fc1 and out; conv1 is not on Loihi
    rep = cost_report(make_counts(layers, T, syn=syn, touched=touched, spikes=spikes), hw)
    assert rep.summary["analog_runs_on"] == "eyeriss-static"


def test_first_layer_time_counts_against_a_fixed_tick(tmp_path: Path) -> None:
    """TrueNorth's tick is fixed, its layers' work unknown; the baseline's part is known: a slow
    baseline (1 kHz) makes every tick overrun."""
    _write(tmp_path, "slow.yaml", "name: slow\nextends: eyeriss-like\nlatency: {clock_hz: 1000}\n")
    hw = load_hw(_write(tmp_path, "tn.yaml", "name: tn\nextends: truenorth\nbaseline: {config: slow.yaml}\n"))
    layers = tiny_layers()
    res = snn_cost(make_counts(layers, 3, syn=np.full((3, 3), 400.0)), hw)
    assert res.layers.loc[0, "latency_s"] == pytest.approx(3 * 4 / 1000)  # 4 ms per tick on the baseline
    assert res.totals["tick_overruns"] == 3
    assert res.latency_s == pytest.approx((3 + 2) * 4e-3)  # T + L - 1 ticks of 4 ms
    fast = snn_cost(make_counts(layers, 3, syn=np.full((3, 3), 400.0)), load_hw("truenorth"))
    assert fast.totals["tick_overruns"] == 0 and fast.latency_s == pytest.approx(5e-3)


def test_a_baseline_without_clock_cannot_time_the_first_layer(tmp_path: Path) -> None:
    _write(tmp_path, "tn-mac.yaml", "name: tn-mac\nextends: truenorth\n"
           "baseline: {config: null, mac_pj: 0.5, reuse: no_reuse}\n")
    own = load_hw(tmp_path / "tn-mac.yaml")  # baseline on the chip itself: conv1 stays there
    res = snn_cost(make_counts(tiny_layers(), 1, syn=np.full((3, 1), 10.0)), own)
    assert res.layers["runs_on"].tolist() == ["tn-mac"] * 3
    assert res.layers.loc[0, "energy_compute_pj"] == pytest.approx(10 * 0.5)
    hw = load_hw(_write(tmp_path, "l.yaml", "name: l\nextends: loihi\nbaseline: {config: tn-mac.yaml}\n"))
    with pytest.raises(ConfigError) as info:
        snn_cost(make_counts(tiny_layers(), 1, syn=np.full((3, 1), 10.0)), hw)
    msg = str(info.value)
    assert "\n" not in msg and "runs on the baseline hardware tn-mac, which has no clock" in msg
    assert "set baseline.clock_hz" in msg


def test_a_chip_with_a_mac_datapath_keeps_its_first_layer() -> None:
    rep = cost_report(paper_counts(0.3), load_hw("45nm"))
    assert set(rep.snn.layers["runs_on"]) == {"45nm"} and rep.summary["analog_runs_on"] == "45nm"
    assert set(rep.ann.layers["runs_on"]) == {"45nm"}


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call", [
    lambda: cost_report(paper_counts(0.3), load_hw("45nm"), connections="padded"),
    lambda: ann_baseline(tiny_layers(), load_hw("45nm"), connections="Inbounds"),
    lambda: layer_connections(tiny_layers()[0], "x" * 500),
])
def test_an_unknown_convention_is_a_one_line_error(call: Any) -> None:
    with pytest.raises(SnnsimError) as info:
        call()
    msg = str(info.value)
    assert "\n" not in msg and "connections must be one of inbounds, conventional" in msg and "; " in msg
    assert len(msg) < 200


# ----------------------------------------------------------------------------- caption, CSV, CLI
def test_caption_states_the_convention() -> None:
    base = {"hw": "loihi", "baseline_hw": "eyeriss-like", "baseline_model": "base/ann", "counting": "snnsim",
            "first_layer": "mac_per_timestep", "skip_zero_weights": False}
    for conv in CONNECTIONS_CHOICES:
        lines = comparison_caption(pd.DataFrame([{**base, "connections": conv, "analog_runs_on": "eyeriss-like"}]))
        counting = next(line for line in lines if line.startswith("counting: "))
        assert CONNECTION_RULES[conv] in counting
        assert "the analog first layer runs on eyeriss-like" in "\n".join(lines)
    old = comparison_caption(pd.DataFrame([base]))  # a summary.csv written before the column existed
    assert CONNECTIONS_UNRECORDED in old[1] and not any("runs on" in line for line in old)


def test_estimate_csv_and_cli_state_the_convention(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from snnsim.checkpoint import save_model
    from snnsim.cli import cli
    from snnsim.estimation import estimate
    from snnsim.models import build_model

    monkeypatch.chdir(tmp_path)
    spec = ArchSpec("tiny-fair", (8, "A", 16, "A"), (32,), (1, 8, 8), 10)
    net = build_model(spec, "snn", timesteps=3, seed=0)
    set_thresholds(net, 0.3)
    net.dataset_info = {"name": "synthetic"}
    save_model(net, tmp_path / "m.pt")
    inb = sum(layer_connections(li) for li in spec.layers())
    conv = sum(li.macs for li in spec.layers())
    for connections, macs in (("inbounds", inb), ("conventional", conv)):
        res = estimate(tmp_path / "m.pt", ["45nm", "loihi"], samples=8, progress=False, connections=connections)
        s = res.summary
        assert set(s["connections"]) == {connections}
        assert set(s["ann_macs"]) == {macs}
        assert set(s["ann_macs_inbounds"]) == {inb} and set(s["ann_macs_conventional"]) == {conv}
        assert s.set_index("hw")["analog_runs_on"].to_dict() == {"45nm": "45nm", "loihi": "eyeriss-like"}
        lay = res.layers
        assert lay[(lay.hw == "loihi") & (lay.layer == "conv1")]["runs_on"].iloc[0] == "eyeriss-like"
        assert CONNECTION_RULES[connections] in res.table()
    r = CliRunner().invoke(cli, ["compare", "--model", "m.pt", "--hw", "45nm", "--samples", "8", "--out", "c",
                                 "--connections", "conventional"])
    assert r.exit_code == 0, r.output
    assert CONNECTION_RULES["conventional"] in r.output
    table = pd.read_csv(tmp_path / "c" / "compare.csv")
    assert list(table["connections"]) == ["conventional"] and list(table["ann_macs"]) == [conv]
    r = CliRunner().invoke(cli, ["estimate", "--model", "m.pt", "--samples", "8", "--out", "e",
                                 "--connections", "padded"])
    assert r.exit_code == 2 and "'padded' is not one of 'inbounds', 'conventional'" in r.output


def test_cli_choices_are_the_library_constant() -> None:
    import click

    from snnsim.commands.estimate import estimate as estimate_cmd
    from snnsim.commands.report import compare as compare_cmd

    for cmd in (estimate_cmd, compare_cmd):
        param = next(p for p in cmd.params if "--connections" in getattr(p, "opts", []))
        assert isinstance(param.type, click.Choice)
        assert tuple(param.type.choices) == CONNECTIONS_CHOICES and param.default == "inbounds"
