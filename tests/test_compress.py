"""The compression CLI end to end on a tiny synthetic model: tables, checkpoints, errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from snnsim.checkpoint import load_model
from snnsim.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny hybrid-trained SNN (synthetic 8x8 data; a few seconds)."""
    from snnsim.arch import make_arch
    from snnsim.data import load_dataset
    from snnsim.training import TrainConfig, hybrid_train

    out = tmp_path_factory.mktemp("run")
    bundle = load_dataset("synthetic", synthetic_size=(128, 64))
    spec = make_arch("digits").with_widths([6, 6, 8, 8, 16], name="tiny")
    cfg_ann = TrainConfig(epochs=2, lr=3e-3, device="cpu", progress=False)
    cfg_snn = TrainConfig(epochs=1, lr=1e-3, device="cpu", progress=False)
    hybrid_train(spec, bundle, cfg_ann, cfg_snn, 3, out_dir=out)
    return out


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return int(exc.value.code)


def test_spatial_dry_run_writes_pca_tables(trained, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = run(["prune", "spatial", "--model", str(trained / "snn.pt"), "--out", "p.pt", "--dry-run",
                "--variance", "0.99", "--device", "cpu"])
    assert code == 0
    pca = pd.read_csv(tmp_path / "reports/prune-spatial-snn/pca.csv")
    assert pca["layer"].tolist() == ["conv1", "conv2", "conv3", "conv4", "fc1"]
    assert (pca["k"] >= 1).all() and (pca["k"] <= pca["width"]).all()
    assert (pca["observations"] == [128 * 64, 128 * 64, 128 * 16, 128 * 16, 128]).all()
    curves = pd.read_csv(tmp_path / "reports/prune-spatial-snn/pca_curves.csv")
    assert len(curves) == 6 + 6 + 8 + 8 + 16
    assert not (tmp_path / "p.pt").exists()


def test_spatial_retrain_table_and_reload(trained, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = run(["prune", "spatial", "--model", str(trained / "snn.pt"), "--out", "pruned.pt",
                "--widths", "3,4,5,6,7", "--ann-epochs", "1", "--snn-epochs", "1", "--device", "cpu",
                "--report-dir", "rep"])
    assert code == 0
    pruned = load_model(tmp_path / "pruned.pt")
    assert pruned.spec.widths() == [3, 4, 5, 6, 7] and pruned.kind == "snn" and pruned.timesteps == 3
    assert pruned.provenance["spatial"]["widths_before"] == [6, 6, 8, 8, 16]
    assert Path(pruned.provenance["ann"]).is_file()
    table = pd.read_csv(tmp_path / "rep/spatial.csv")
    total = table[table["layer"] == "total"].iloc[0]
    assert total["params_after"] == pruned.spec.param_count()
    assert total["compression"] == pytest.approx(total["params_before"] / total["params_after"])
    assert 0 <= total["accuracy_after"] <= 1 and total["accuracy_before"] == pytest.approx(
        load_model(trained / "snn.pt").provenance["accuracy"])
    assert table["channels_after"].tolist()[:5] == [3, 4, 5, 6, 7]

    # evaluate finds the pruned ANN through the provenance and uses it as the baseline
    code = run(["evaluate", "--model", "pruned.pt", "--noise-std", "0,0.3", "--device", "cpu"])
    assert code == 0
    noise = pd.read_csv(tmp_path / "reports/evaluate-pruned/noise.csv")
    assert noise["noise_std"].tolist() == [0.0, 0.3]
    assert noise["ann_accuracy"].notna().all()
    assert noise["difference"].tolist() == pytest.approx((noise["snn_accuracy"] - noise["ann_accuracy"]).tolist())


def test_temporal_gradual_and_direct(trained, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = run(["prune", "temporal", "--model", str(trained / "snn.pt"), "--schedule", "3,2,1",
                "--epochs-per-step", "1", "--out", "tp", "--compare-direct", "--device", "cpu"])
    assert code == 0
    for name in ("snn_T3.pt", "snn_T2.pt", "snn_T1.pt", "direct_T1.pt"):
        m = load_model(tmp_path / "tp" / name)
        assert m.timesteps == int(name.split("_T")[1][0])
    table = pd.read_csv(tmp_path / "reports/prune-temporal-snn/temporal.csv")
    grad = table[table["schedule"] == "gradual"]
    direct = table[table["schedule"] == "direct"]
    assert grad["timesteps"].tolist() == [3, 2, 1] and grad["epochs"].tolist() == [0, 1, 1]
    assert direct["timesteps"].tolist() == [3, 1] and direct["epochs"].tolist() == [0, 2]
    assert grad["cumulative_epochs"].iloc[-1] == direct["cumulative_epochs"].iloc[-1]
    # the from-ANN control: the parent ANN converted at T=1, trained parent SNN epochs (1) + 2
    from_ann = table[table["schedule"] == "from-ann"]
    assert from_ann["timesteps"].tolist() == [1] and from_ann["epochs"].tolist() == [3]
    parent_scale = load_model(trained / "snn.pt").provenance["conversion"]["scale"]
    assert from_ann["threshold_factor"].iloc[0] == pytest.approx(parent_scale * 1 / 3)  # x T_final / T_parent
    ctrl = load_model(tmp_path / "tp" / "from_ann_T1.pt")
    assert ctrl.timesteps == 1 and ctrl.provenance["temporal"]["schedule"] == "from-ann"
    assert (tmp_path / "tp/temporal.csv").exists()


def test_from_ann_control_is_skipped_without_a_parent_ann(trained, tmp_path, monkeypatch, capsys) -> None:
    from snnsim.checkpoint import save_model

    monkeypatch.chdir(tmp_path)
    orphan = load_model(trained / "snn.pt")
    orphan.provenance = {k: v for k, v in orphan.provenance.items() if k not in ("ann", "parent")}
    save_model(orphan, tmp_path / "orphan.pt")
    code = run(["prune", "temporal", "--model", "orphan.pt", "--schedule", "3,2", "--epochs-per-step", "1",
                "--out", "tp", "--compare-direct", "--device", "cpu"])
    assert code == 0
    assert "from-ann control skipped" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "tp/temporal.csv")
    assert set(table["schedule"]) == {"gradual", "direct"}


def test_from_ann_control_needs_the_same_architecture(trained, tmp_path) -> None:
    """A same-named ann.pt of another network beside the model is not taken as its parent ANN."""
    from snnsim.checkpoint import save_model
    from snnsim.commands.compress import _find_ann
    from snnsim.models import build_model

    snn = load_model(trained / "snn.pt")
    assert _find_ann(snn, str(trained / "snn.pt")) is not None
    other = load_model(trained / "ann.pt")
    wider = build_model(other.spec.with_widths([7, 6, 8, 8, 16], name="wider"), kind="ann", timesteps=3)
    save_model(wider, tmp_path / "ann.pt")
    snn.provenance = {"parent": "elsewhere/ann.pt"}
    assert _find_ann(snn, str(tmp_path / "snn.pt")) is None


def test_quantize_writes_checkpoints(trained, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = run(["quantize", "--model", str(trained / "snn.pt"), "--bits", "32,5,3", "--out", "q", "--device", "cpu"])
    assert code == 0
    table = pd.read_csv(tmp_path / "reports/quantize-snn/quantize.csv")
    assert table["bits"].tolist() == [32, 5, 3]
    assert table["accuracy_drop"].iloc[0] == 0.0
    q = load_model(tmp_path / "q/snn_5bit.pt")
    assert q.quantization["bits"] == 5
    assert q.quantization["scheme"] == "uniform-symmetric-per-layer"
    names = [info.name for info in q.layer_infos]
    assert list(q.quantization["scales"]) == names == ["conv1", "conv2", "conv3", "conv4", "fc1", "out"]
    assert set(q.quantization["int_weights"]) == {f"{n}.weight" for n in names}  # bias-free VGG
    for name, syn in zip(names, q.synapses, strict=True):
        codes = q.quantization["int_weights"][f"{name}.weight"]
        assert codes.dtype == torch.int8 and int(codes.abs().max()) <= 15
        assert torch.equal(syn.weight.detach(), codes.float() * q.quantization["scales"][name])
    assert not (tmp_path / "q/snn_32bit.pt").exists()


@pytest.mark.parametrize("argv", [
    ["quantize", "--model", "MODEL", "--bits", "1", "--out", "q"],
    ["quantize", "--model", "MODEL", "--bits", "x", "--out", "q"],
    ["prune", "temporal", "--model", "MODEL", "--schedule", "2,3", "--out", "t"],
    ["prune", "temporal", "--model", "MODEL", "--schedule", "9,2", "--out", "t"],
    ["prune", "spatial", "--model", "MODEL", "--variance", "1.5", "--out", "p.pt"],
    ["prune", "spatial", "--model", "ANN", "--out", "p.pt"],
    ["prune", "spatial", "--model", "MODEL", "--widths", "1,2", "--out", "p.pt", "--dry-run"],
    ["evaluate", "--model", "MODEL", "--noise-std", "-0.1"],
    ["evaluate", "--model", "MODEL", "--baseline", "MODEL"],
    ["evaluate", "--model", "missing.pt"],
])
def test_user_errors_exit_2(trained, tmp_path, monkeypatch, capsys, argv) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("MODEL", str(trained / "snn.pt")).replace("ANN", str(trained / "ann.pt")) for a in argv]
    assert run([*argv, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("snnsim: error:")


# ----------------------------------------------------------------------------- a residual graph
@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory) -> Path:
    """digits-resnet's untrained ANN (ann.pt) converted to an SNN at T=3 (snn.pt), synthetic data."""
    from snnsim.checkpoint import save_model
    from snnsim.data import make_synthetic
    from snnsim.graph import build_graph
    from snnsim.models import build_model
    from snnsim.training import convert_ann_to_snn

    out = tmp_path_factory.mktemp("resnet")
    bundle = make_synthetic(64, 32, (1, 8, 8), 10, seed=0)
    ann = build_model(build_graph("digits-resnet"), kind="ann", seed=0)
    ann.dataset_info = bundle.info()
    x, y = bundle.train.tensors
    snn = convert_ann_to_snn(ann, [(x[:16], y[:16])], 3)
    save_model(ann, out / "ann.pt")
    snn.provenance["parent"] = str(out / "ann.pt")
    save_model(snn, out / "snn.pt")
    return out


def test_resnet_spatial_dry_run_and_quantize(resnet_run, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    model = str(resnet_run / "snn.pt")
    assert run(["prune", "spatial", "--model", model, "--out", "p.pt", "--dry-run", "--variance", "0.99",
                "--samples", "16", "--device", "cpu", "--report-dir", "pca"]) == 0
    pca = pd.read_csv(tmp_path / "pca/pca.csv")
    assert pca["layer"].tolist() == ["stem", "s1b1_conv1", "s1b1_conv2", "s2b1_conv1", "s2b1_conv2"]
    assert pca["width"].tolist() == [32, 32, 32, 64, 64] and (pca["k"] >= 1).all()
    # given widths: the stem and block 1's output share the identity shortcut, so both take the larger
    capsys.readouterr()
    assert run(["prune", "spatial", "--model", model, "--out", "p.pt", "--dry-run", "--widths", "5,6,7,8,9",
                "--device", "cpu"]) == 0
    assert "widths [32, 32, 32, 64, 64] -> [7, 6, 7, 8, 9]" in capsys.readouterr().out
    assert not (tmp_path / "p.pt").exists()
    assert run(["quantize", "--model", model, "--bits", "4", "--out", "q", "--device", "cpu"]) == 0
    q = load_model(tmp_path / "q/snn_4bit.pt")
    assert q.quantization["bits"] == 4 and "s2b1_down" in q.quantization["scales"]
    assert q.quantization["int_weights"]["s2b1_down.bias"].dtype == torch.int32
    scale = torch.tensor(q.quantization["scales"]["s2b1_down"], dtype=torch.float32)
    assert torch.equal(q["s2b1_down"].bias.detach(), q.quantization["int_weights"]["s2b1_down.bias"].float() * scale)
