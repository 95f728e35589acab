"""Shared, small, generic fixtures. Keep each one fast: the whole suite runs on 2 CPU cores."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from snnsim.arch import ArchSpec


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
