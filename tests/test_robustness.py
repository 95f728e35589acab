"""Gaussian-noise robustness: shared noise draws, clipping, table layout (paper.md §2.12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sim_testutil import set_thresholds

from snnsim.arch import make_arch
from snnsim.errors import SnnsimError
from snnsim.models import build_model
from snnsim.robustness import noise_table, noisy_accuracies, pixel_range


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
