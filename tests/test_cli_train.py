"""`snnsim train` end to end on synthetic data, and its one-line user errors."""

from __future__ import annotations

import json
from pathlib import Path

from snnsim.checkpoint import load_model, read_checkpoint

FAST = ["--dataset", "synthetic", "--synthetic-size", "96,48", "--timesteps", "2", "--ann-epochs", "1",
        "--snn-epochs", "1", "--batch-size", "32", "--snn-batch-size", "32", "--device", "cpu", "--quiet"]


def test_train_snn_end_to_end(tmp_path: Path, run_cli) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_cli("train", *FAST, "--out", out, "--seed", "5")
    assert code == 0, err
    assert stdout.startswith("done: digits on synthetic: ANN test ") and "SNN (T=2) test" in stdout
    assert "wall time" in stdout
    for name in ("ann.pt", "snn.pt", "ann_last.pt", "snn_last.pt", "history.json"):
        assert (out / name).exists(), name
    snn = load_model(out / "snn.pt")
    assert snn.kind == "snn" and snn.timesteps == 2 and snn.spec.name == "digits"
    assert snn.provenance["seed"] == 5 and "snnsim train" in snn.provenance["command"]
    assert 0.0 <= snn.provenance["accuracy"] <= 1.0
    assert snn.dataset_info["name"] == "synthetic" and snn.dataset_info["mean"] == [0.5]
    assert read_checkpoint(out / "snn_last.pt")["extra"]["epoch"] == 1
    hist = json.loads((out / "history.json").read_text())
    assert hist["summary"]["snn_test_acc"] == snn.provenance["accuracy"]
    assert len(hist["ann"]) == 1 and len(hist["snn"]) == 1

    # The same out dir without --resume is refused; with --resume (and more SNN epochs) it continues.
    code, _, err = run_cli("train", *FAST, "--out", out, "--seed", "5")
    assert code == 2 and "--resume" in err and len(err.strip().splitlines()) == 1
    more = [a if a != "1" or i != FAST.index("--snn-epochs") + 1 else "2" for i, a in enumerate(FAST)]
    code, _, err = run_cli("train", *more, "--out", out, "--seed", "5", "--resume")
    assert code == 0, err
    assert read_checkpoint(out / "snn_last.pt")["extra"]["epoch"] == 2
    # Resuming at another T is refused (the checkpoint's T would silently win otherwise).
    other_t = [a if i != FAST.index("--timesteps") + 1 else "3" for i, a in enumerate(more)]
    code, _, err = run_cli("train", *other_t, "--out", out, "--seed", "5", "--resume")
    assert code == 2 and "T=2" in err and len(err.strip().splitlines()) == 1

    # Start an SNN from the saved ANN, and info on the result.
    code, _, err = run_cli("train", *FAST, "--ann", out / "ann.pt", "--out", tmp_path / "from_ann")
    assert code == 0, err
    assert load_model(tmp_path / "from_ann" / "snn.pt").provenance["parent"].endswith("ann.pt")
    code, info, _ = run_cli("info", out / "snn.pt")
    assert code == 0 and "thresholds" in info and "kind          snn" in info


def test_train_ann_only(tmp_path: Path, run_cli) -> None:
    code, stdout, err = run_cli("train", *FAST, "--kind", "ann", "--out", tmp_path / "a")
    assert code == 0, err
    assert (tmp_path / "a" / "ann.pt").exists() and not (tmp_path / "a" / "snn.pt").exists()
    assert load_model(tmp_path / "a" / "ann.pt").kind == "ann"
    assert "SNN" not in stdout


def test_train_user_errors_are_one_line(tmp_path: Path, run_cli) -> None:
    cases = [
        ["--timesteps", "0"],
        ["--leak", "1.5"],
        ["--percentile", "0"],
        ["--threshold-scale", "-1"],
        ["--synthetic-size", "10"],
        ["--ann", tmp_path / "missing.pt"],
        ["--lr", "-0.1"],
    ]
    for extra in cases:
        code, _, err = run_cli("train", *FAST, *extra, "--out", tmp_path / "x")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("snnsim: error:"), (extra, err)
    code, _, err = run_cli("train", "--dataset", "cifar10", "--data-dir", tmp_path / "none", "--out", tmp_path / "c")
    assert code == 2 and "--download" in err and len(err.strip().splitlines()) == 1


def test_train_on_cifar_files_through_the_cli(tmp_path: Path, fake_cifar, run_cli) -> None:
    """The real torchvision CIFAR path (augmentation, worker processes) with a small VGG."""
    fake_cifar(tmp_path / "data", "cifar10", n_train=10, n_test=6)
    code, stdout, err = run_cli("train", "--dataset", "cifar10", "--data-dir", tmp_path / "data", "--arch", "vgg5",
                                "--kind", "ann", "--ann-epochs", "1", "--batch-size", "5", "--workers", "1",
                                "--device", "cpu", "--quiet", "--out", tmp_path / "c")
    assert code == 0, err
    ann = load_model(tmp_path / "c" / "ann.pt")
    assert ann.spec.name == "vgg5" and ann.spec.input_shape == (3, 32, 32)
    assert ann.dataset_info["name"] == "cifar10" and ann.dataset_info["mean"] == [0.5, 0.5, 0.5]
    assert ann.dataset_info["augment"] == "crop32pad4+hflip"
