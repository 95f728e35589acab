"""Gaussian-noise robustness: shared noise draws, clipping, table layout (paper.md §2.12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sim_testutil import set_thresholds

from snnsim.arch import make_arch
from snnsim.errors import SnnsimError
from snnsim.models import build_model
from snnsim.robustness import (
    interval_halfwidth,
    noise_table,
    noisy_accuracies,
    pixel_range,
    t_quantile,
)


def _models():
    spec = make_arch("digits").with_widths([6, 6, 8, 8, 12], name="tiny")
    snn = build_model(spec, "snn", timesteps=3, seed=0)
    set_thresholds(snn, 0.3)
    ann = build_model(spec, "ann", seed=0)
    info = {"name": "synthetic", "mean": [0.5], "std": [0.5], "input_shape": [1, 8, 8], "num_classes": 10}
    snn.dataset_info = ann.dataset_info = info
    return snn, ann


def _loader(n: int = 40):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)


class Recorder(torch.nn.Module):
    """Stands in for a model: records every input it is shown."""

    def __init__(self, like):
        super().__init__()
        self.spec, self.kind, self.dataset_info = like.spec, "ann", like.dataset_info
        self.input_shape = like.input_shape
        self.seen: list[torch.Tensor] = []

    def forward_ann(self, x):
        self.seen.append(x.clone())
        return torch.zeros(x.shape[0], 10)


def test_same_noise_for_both_models_and_reproducible() -> None:
    snn, _ = _models()
    a, b = Recorder(snn), Recorder(snn)
    noisy_accuracies({"a": a, "b": b}, _loader(), [0.0, 0.2], repeats=2, seed=7, progress=False)
    assert len(a.seen) == len(b.seen) == 3 * 2 * 2  # batches x repeats x sigmas
    for xa, xb in zip(a.seen, b.seen, strict=True):
        assert torch.equal(xa, xb)
    clean = torch.cat([x for x, _ in _loader()])
    # sigma 0 is the clean input; sigma 0.2 noise has ~0.2 std; repeats draw different noise
    assert torch.equal(a.seen[0], clean[:16])
    z0 = (a.seen[1] - clean[:16]) / 0.2
    z1 = (a.seen[3] - clean[:16]) / 0.2
    assert 0.8 < float(z0.std()) < 1.2 and not torch.allclose(z0, z1)
    c = Recorder(snn)
    noisy_accuracies({"c": c}, _loader(), [0.0, 0.2], repeats=2, seed=7, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.seen, c.seen, strict=True))
    d = Recorder(snn)
    noisy_accuracies({"d": d}, _loader(), [0.0, 0.2], repeats=2, seed=8, progress=False)
    assert not torch.equal(a.seen[1], d.seen[1])


def test_clipping_to_pixel_range() -> None:
    snn, _ = _models()
    lo, hi = pixel_range(snn.dataset_info, 1)
    assert float(lo) == -1.0 and float(hi) == 1.0
    r = Recorder(snn)
    noisy_accuracies({"r": r}, _loader(), [3.0], clip=True, progress=False)
    allx = torch.cat(r.seen)
    assert float(allx.min()) == -1.0 and float(allx.max()) == 1.0
    with pytest.raises(SnnsimError):
        pixel_range({}, 1)


def test_table_matches_direct_evaluation() -> None:
    snn, ann = _models()
    df = noise_table(snn, ann, _loader(), [0.0, 0.1, 0.5], repeats=1, seed=0, progress=False)
    assert list(df.columns[:4]) == ["noise_std", "snn_accuracy", "ann_accuracy", "difference"]
    assert df["noise_std"].tolist() == [0.0, 0.1, 0.5]
    np.testing.assert_allclose(df["difference"], df["snn_accuracy"] - df["ann_accuracy"])
    # sigma 0 row equals plain clean accuracy of each model
    x = torch.cat([b[0] for b in _loader()])
    y = torch.cat([b[1] for b in _loader()])
    with torch.no_grad():
        assert df["snn_accuracy"][0] == pytest.approx(float((snn(x).argmax(1) == y).float().mean()))
        assert df["ann_accuracy"][0] == pytest.approx(float((ann(x).argmax(1) == y).float().mean()))
    only = noise_table(snn, None, _loader(), [0.0, 0.1], repeats=2, progress=False)
    assert only["ann_accuracy"].isna().all() and "snn_std" in only.columns


@pytest.mark.parametrize("stds", [[-0.1], [float("nan")], []])
def test_bad_noise_levels(stds) -> None:
    snn, ann = _models()
    with pytest.raises(SnnsimError):
        noise_table(snn, ann, _loader(), stds, progress=False)


def test_mismatched_models_rejected() -> None:
    snn, _ = _models()
    other = build_model(make_arch("vgg5"), "ann")
    with pytest.raises(SnnsimError):
        noisy_accuracies({"snn": snn, "ann": other}, _loader(), [0.1], progress=False)
    with pytest.raises(SnnsimError):
        noisy_accuracies({"snn": snn}, _loader(), [0.1], repeats=0, progress=False)


def test_noise_table_on_a_resnet_snn_and_its_ann() -> None:
    """The sweep runs on a residual graph: the converted digits-resnet SNN against its ANN."""
    from snnsim.graph import build_graph
    from snnsim.training import convert_ann_to_snn

    ann = build_model(build_graph("digits-resnet"), kind="ann", seed=0).eval()
    x = torch.cat([b[0] for b in _loader()])
    y = torch.cat([b[1] for b in _loader()])
    snn = convert_ann_to_snn(ann, [(x[:16], y[:16])], 4)
    ann.dataset_info = snn.dataset_info = {"name": "synthetic", "mean": [0.5], "std": [0.5],
                                           "input_shape": [1, 8, 8], "num_classes": 10}
    df = noise_table(snn, ann, _loader(), [0.0, 0.5], repeats=2, seed=0, clip=True, progress=False)
    assert df["noise_std"].tolist() == [0.0, 0.5] and "snn_std" in df.columns and df["clip"].all()
    np.testing.assert_allclose(df["difference"], df["snn_accuracy"] - df["ann_accuracy"], atol=1e-12)
    lo, hi = pixel_range(snn.dataset_info, 1)
    xc = torch.maximum(torch.minimum(x, hi), lo)
    with torch.no_grad():
        assert df["snn_accuracy"][0] == pytest.approx(float((snn.forward_snn(xc).argmax(1) == y).float().mean()))
        assert df["ann_accuracy"][0] == pytest.approx(float((ann.forward_ann(xc).argmax(1) == y).float().mean()))
    # a timesteps override reaches the residual SNN: the sigma-0 row is its T=1 accuracy
    t1 = noise_table(snn, None, _loader(), [0.0], timesteps=1, progress=False)
    with torch.no_grad():
        assert t1["snn_accuracy"][0] == pytest.approx(float((snn.forward_snn(x, 1).argmax(1) == y).float().mean()))


# ----------------------------------------------------------------------------- 95% intervals
@pytest.mark.parametrize(("k", "t"), [(2, 12.7062), (5, 2.7764), (10, 2.2622)])
def test_interval_halfwidth_uses_student_t(k: int, t: float) -> None:
    assert t_quantile(0.975, k - 1) == pytest.approx(t, abs=1e-3)
    rng = np.random.default_rng(k)
    vals = rng.uniform(0.5, 0.9, size=(3, k))
    want = t * vals.std(axis=1, ddof=1) / np.sqrt(k)
    np.testing.assert_allclose(interval_halfwidth(vals, axis=1), want, rtol=1e-4)
    # the axis is honoured, and a constant row has a zero-width interval
    np.testing.assert_allclose(interval_halfwidth(vals.T, axis=0), want, rtol=1e-4)
    assert interval_halfwidth(np.full(k, 0.7))[()] == 0.0


def test_interval_halfwidth_by_hand_and_bad_input() -> None:
    # [0.80, 0.84]: sd = 0.02 * sqrt(2) = 0.028284, half-width = 12.7062 * 0.028284 / sqrt(2) = 0.254124
    assert float(interval_halfwidth(np.array([0.80, 0.84]))) == pytest.approx(0.254124, abs=1e-5)
    assert np.isnan(interval_halfwidth(np.array([np.nan, np.nan, np.nan])))
    with pytest.raises(SnnsimError):
        interval_halfwidth(np.array([[0.8], [0.9]]), axis=1)
    with pytest.raises(SnnsimError):
        t_quantile(0.975, 0)


def test_noise_table_intervals_from_fake_accuracies(monkeypatch) -> None:
    """ci95 columns are the t half-widths of the per-draw values; the difference one is paired."""
    import snnsim.robustness as rob

    a_snn = np.array([[0.90, 0.90, 0.90], [0.80, 0.70, 0.75], [0.60, 0.50, 0.40]])
    a_ann = np.array([[0.92, 0.92, 0.92], [0.78, 0.66, 0.70], [0.50, 0.45, 0.30]])
    monkeypatch.setattr(rob, "noisy_accuracies", lambda *a, **k: {"snn": a_snn, "ann": a_ann})
    snn, ann = _models()
    df = rob.noise_table(snn, ann, [], [0.0, 0.1, 0.2], repeats=3, progress=False)
    t2 = 4.302653  # t_{0.975, 2}
    for col, vals in (("snn", a_snn), ("ann", a_ann), ("difference", a_snn - a_ann)):
        np.testing.assert_allclose(df[f"{col}_ci95"], t2 * vals.std(axis=1, ddof=1) / np.sqrt(3), atol=1e-6)
    # paired: the difference interval is narrower than the unpaired one would be, and the
    # shared-draw swings of row 1 cancel almost completely
    d = a_snn - a_ann
    assert df["difference_ci95"][1] == pytest.approx(t2 * d[1].std(ddof=1) / np.sqrt(3))
    assert df["difference_ci95"][1] < 0.5 * df["snn_ci95"][1]
    assert df["snn_ci95"][0] == 0.0 and "snn_std" in df.columns
    monkeypatch.setattr(rob, "noisy_accuracies", lambda *a, **k: {"snn": a_snn[:, :1], "ann": a_ann[:, :1]})
    one = rob.noise_table(snn, ann, [], [0.0, 0.1, 0.2], repeats=1, progress=False)
    assert not [c for c in one.columns if c.endswith(("_ci95", "_std")) and c != "noise_std"]
    assert one["snn_accuracy"].tolist() == a_snn[:, 0].tolist()


def test_noise_table_repeats_3_has_intervals() -> None:
    snn, ann = _models()
    df = noise_table(snn, ann, _loader(), [0.0, 0.5, 1.0], repeats=3, seed=0, progress=False)
    cols = ["snn_ci95", "ann_ci95", "difference_ci95"]
    assert set(cols) <= set(df.columns) and (df["repeats"] == 3).all()
    vals = df[cols].to_numpy(dtype=float)
    assert np.isfinite(vals).all() and (vals >= 0).all()
    # sigma 0 is noise-free: every draw gives the same accuracy, so the interval is zero
    assert (vals[0] == 0).all() and vals[1:].max() > 0
    np.testing.assert_allclose(df["snn_ci95"], t_quantile(0.975, 2) * df["snn_std"] / np.sqrt(3), atol=1e-9)
    only = noise_table(snn, None, _loader(), [0.0, 0.5], repeats=2, progress=False)
    assert only["ann_ci95"].isna().all() and only["difference_ci95"].isna().all()
    assert np.isfinite(only["snn_ci95"]).all()


def test_plot_noise_draws_the_95_intervals(tmp_path, monkeypatch) -> None:
    import matplotlib.image as mpimg
    import pandas as pd

    from snnsim import plots

    df = pd.DataFrame({"noise_std": [0.0, 0.1, 0.2], "snn_accuracy": [0.9, 0.85, 0.7],
                       "ann_accuracy": [0.92, 0.8, 0.5], "difference": [-0.02, 0.05, 0.2],
                       "snn_std": [0.0, 0.01, 0.02], "ann_std": [0.0, 0.01, 0.03],
                       "snn_ci95": [0.0, 0.025, 0.05], "ann_ci95": [0.0, 0.025, 0.075],
                       "difference_ci95": [0.0, 0.01, 0.02], "repeats": 3, "clip": False})
    figs = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figs.append(fig) or save(fig, path))
    out = plots.plot_noise(df, tmp_path / "noise.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and mpimg.imread(out).shape[1] >= 400
    ax = figs[0].axes[0]
    assert ax.get_legend().get_title().get_text() == "mean and 95% interval over 3 draws"
    half = [np.array([abs(s[1][1] - s[0][1]) / 2 for s in c.lines[2][0].get_segments()]) for c in ax.containers]
    np.testing.assert_allclose(half[0], [0.0, 2.5, 5.0], atol=1e-9)   # SNN, percent
    np.testing.assert_allclose(half[1], [0.0, 2.5, 7.5], atol=1e-9)   # ANN
    # without ci95 columns the bars are the sd, as before, and the legend has no title
    plots.plot_noise(df.drop(columns=["snn_ci95", "ann_ci95", "difference_ci95"]), tmp_path / "sd.png")
    ax = figs[1].axes[0]
    assert ax.get_legend().get_title().get_text() == ""
    half = [abs(s[1][1] - s[0][1]) / 2 for s in ax.containers[1].lines[2][0].get_segments()]
    np.testing.assert_allclose(half, [0.0, 1.0, 3.0], atol=1e-9)
