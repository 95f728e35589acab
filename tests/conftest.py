"""Shared, small, generic fixtures. Keep each one fast: the whole suite runs on 2 CPU cores."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from snnsim.arch import ArchSpec

# The longest test files are collected first, so that with two workers (`pytest -n 2`, README)
# they start at once instead of running alone at the end.
_LONGEST_FIRST = ("test_readme.py", "test_interrupts.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the tests of :data:`_LONGEST_FIRST` to the front (a stable sort: the order within a
    file is kept)."""
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """Test models are tiny: one intra-op thread is as fast and avoids oversubscribing the
    2 shared cores (spinning OpenMP threads slow everything down several-fold under load)."""
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _deterministic_torch() -> None:
    """Every test starts from the same torch RNG state."""
    torch.manual_seed(0)


@pytest.fixture
def tiny_spec() -> ArchSpec:
    """A 2-conv, 1-hidden-FC VGG for 1x8x8 inputs and 4 classes (a few thousand weights)."""
    return ArchSpec("tiny", (8, "A", 16, "A"), (32,), (1, 8, 8), 4, dropout_conv=0.0, dropout_fc=0.0)


@pytest.fixture
def synthetic_bundle():  # type: ignore[no-untyped-def]
    """A learnable synthetic data set matching ``tiny_spec`` (1x8x8, 4 classes, 256/128 samples)."""
    from snnsim.data import make_synthetic

    return make_synthetic(256, 128, (1, 8, 8), 4, seed=0)


@pytest.fixture(scope="session")
def digits_bundle():  # type: ignore[no-untyped-def]
    """scikit-learn digits (real data, 1437 train / 360 test, 1x8x8, 10 classes)."""
    from snnsim.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def small_digits_ann(digits_bundle):  # type: ignore[no-untyped-def]
    """A small ANN trained on digits for a few seconds (>= 90 % test accuracy): conv16-A-conv32-A-fc64.

    Session-scoped and read-only: tests that modify it must ``copy.deepcopy`` it first.
    """
    from snnsim.data import make_loaders
    from snnsim.models import build_model
    from snnsim.training import TrainConfig, train_ann

    spec = ArchSpec("digits-small", (16, "A", 32, "A"), (64,), (1, 8, 8), 10,
                    dropout_conv=0.0, dropout_fc=0.0)
    ann = build_model(spec, kind="ann", seed=0)
    ann.dataset_info = digits_bundle.info()
    tr, te = make_loaders(digits_bundle, batch_size=32, seed=0)
    cfg = TrainConfig(epochs=12, lr=0.1, optimizer="sgd", weight_decay=5e-4, lr_step=8, lr_gamma=0.1,
                      batch_size=32, device="cpu", progress=False)
    train_ann(ann, tr, te, cfg)
    ann.eval()
    return ann


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``snnsim ARGS`` in-process through the real entry point; return (exit code, stdout, stderr)."""
    from snnsim.cli import main

    def run(*args: object) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        code = exc.value.code
        return (0 if code is None else int(code)), captured.out, captured.err

    return run


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _write_fake_cifar(root: Path, kind: str, n_train: int, n_test: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """Write a tiny data set in torchvision's on-disk pickle format and point the class's md5s at it.

    The real torchvision loader runs unchanged (integrity check with md5, pickle loading,
    meta file); only the expected md5 lists on the class are replaced by those of our files.
    """
    from torchvision import datasets

    rng = np.random.default_rng(0)
    classes = 10 if kind == "cifar10" else 100
    cls = datasets.CIFAR10 if kind == "cifar10" else datasets.CIFAR100
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    label_key = "labels" if kind == "cifar10" else "fine_labels"
    arrays: dict[str, np.ndarray] = {}

    def write(name: str, n: int) -> list[str]:
        data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, classes, size=n)]
        entry = {"data": data, label_key: labels, "batch_label": name.encode()}
        if kind == "cifar100":
            entry["coarse_labels"] = [v // 5 for v in labels]
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh)
        arrays[name] = data
        arrays[name + "_labels"] = np.array(labels)
        return [name, _md5(folder / name)]

    train_names = [e[0] for e in cls.train_list]
    per = max(1, n_train // len(train_names))
    train_list = [write(name, per) for name in train_names]
    test_list = [write(cls.test_list[0][0], n_test)]
    meta_key = cls.meta["key"]
    with open(folder / cls.meta["filename"], "wb") as fh:
        pickle.dump({meta_key: [f"class{i}" for i in range(classes)]}, fh)
    meta = {**cls.meta, "md5": _md5(folder / cls.meta["filename"])}
    monkeypatch.setattr(cls, "train_list", train_list)
    monkeypatch.setattr(cls, "test_list", test_list)
    monkeypatch.setattr(cls, "meta", meta)
    return arrays


@pytest.fixture
def fake_cifar(monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, np.ndarray]]:
    """``fake_cifar(root, 'cifar10'|'cifar100', n_train, n_test)``: write a tiny CIFAR in
    torchvision's on-disk format under ``root`` (md5s patched for this test); returns the
    arrays written, by file name (``<name>`` pixels, ``<name>_labels``)."""

    def make(root: Path, kind: str = "cifar10", n_train: int = 10, n_test: int = 6) -> dict[str, np.ndarray]:
        return _write_fake_cifar(Path(root), kind, n_train, n_test, monkeypatch)

    return make
