"""Data sets: digits split, synthetic set, CIFAR loaders on fake torchvision-format files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snnsim.data import (
    ShardSampler,
    load_dataset,
    make_loaders,
    make_synthetic,
)
from snnsim.errors import DataError, SnnsimError

# ----------------------------------------------------------------------------- digits


def test_digits_split_is_fixed_stratified_and_normalised(digits_bundle) -> None:
    b = digits_bundle
    assert (len(b.train), len(b.test)) == (1437, 360)
    assert b.input_shape == (1, 8, 8) and b.num_classes == 10
    x, y = b.train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and isinstance(int(y), int)
    xs = b.train.tensors[0]
    assert float(xs.min()) == -1.0 and float(xs.max()) == 1.0  # pixel/16 in [0,1], then (x-.5)/.5
    test_labels = b.test.tensors[1].numpy()
    counts = np.bincount(test_labels, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # stratified: ~36 per class
    # The split does not depend on the run's seed.
    other = load_dataset("digits", seed=123)
    assert torch.equal(other.test.tensors[0], b.test.tensors[0])
    info = b.info()
    assert info["mean"] == [0.5] and info["std"] == [0.5] and info["name"] == "digits"
    assert info["input_shape"] == [1, 8, 8] and info["num_classes"] == 10


def test_digits_train_and_test_are_disjoint(digits_bundle) -> None:
    tr = {tuple(r.tolist()) for r in digits_bundle.train.tensors[0].reshape(1437, -1)}
    te = [tuple(r.tolist()) for r in digits_bundle.test.tensors[0].reshape(360, -1)]
    # sklearn digits has a handful of exact duplicate images; the split must not copy rows.
    assert sum(t in tr for t in te) < 10


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_shaped_and_learnable() -> None:
    a = make_synthetic(200, 100, (3, 6, 5), 5, seed=7)
    b = make_synthetic(200, 100, (3, 6, 5), 5, seed=7)
    c = make_synthetic(200, 100, (3, 6, 5), 5, seed=8)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])
    assert a.train.tensors[0].shape == (200, 3, 6, 5) and a.num_classes == 5
    assert a.input_shape == (3, 6, 5) and len(a.mean) == 3
    assert np.bincount(a.train.tensors[1].numpy()).tolist() == [40] * 5
    # Learnable: nearest class mean (from train) classifies the test set well.
    xtr, ytr = a.train.tensors[0].flatten(1), a.train.tensors[1]
    means = torch.stack([xtr[ytr == k].mean(0) for k in range(5)])
    pred = torch.cdist(a.test.tensors[0].flatten(1), means).argmin(1)
    assert float((pred == a.test.tensors[1]).float().mean()) > 0.9


def test_load_dataset_errors() -> None:
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("mnist")
    with pytest.raises(DataError):
        make_synthetic(0, 10)
    with pytest.raises(DataError):
        make_synthetic(10, 10, num_classes=1)


# ----------------------------------------------------------------------------- loaders


def test_train_loader_order_depends_only_on_seed_and_epoch(synthetic_bundle) -> None:
    def order(seed: int, epoch: int) -> list[int]:
        tr, _ = make_loaders(synthetic_bundle, batch_size=256, seed=seed)
        tr.sampler.set_epoch(epoch)
        return list(iter(tr.sampler))

    assert order(0, 1) == order(0, 1)
    assert order(0, 1) != order(0, 2)
    assert order(0, 1) != order(1, 1)
    assert sorted(order(0, 3)) == list(range(256))
    tr, te = make_loaders(synthetic_bundle, batch_size=64)
    x, y = next(iter(tr))
    assert x.shape == (64, 1, 8, 8) and y.dtype == torch.int64
    assert sum(int(b[1].numel()) for b in te) == 128


def test_shard_sampler_partitions_without_padding() -> None:
    shards = [list(ShardSampler(10, r, 3)) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(10))
    assert [len(ShardSampler(10, r, 3)) for r in range(3)] == [4, 3, 3]


def test_make_loaders_rejects_bad_input(synthetic_bundle) -> None:
    with pytest.raises(SnnsimError, match="batch size"):
        make_loaders(synthetic_bundle, batch_size=0)
    with pytest.raises(SnnsimError, match="process group"):
        make_loaders(synthetic_bundle, distributed=True)


# ----------------------------------------------------------------------------- CIFAR (fake files)


@pytest.mark.parametrize("kind", ["cifar10", "cifar100"])
def test_cifar_loaders_read_torchvision_files(tmp_path: Path, fake_cifar, kind: str) -> None:
    arrays = fake_cifar(tmp_path, kind, n_train=10, n_test=6)
    b = load_dataset(kind, data_dir=tmp_path)
    n_train = 10 if kind == "cifar10" else 10  # 5 batches x 2, or 1 file x 10
    assert (len(b.train), len(b.test)) == (n_train, 6)
    assert b.input_shape == (3, 32, 32) and b.num_classes == (10 if kind == "cifar10" else 100)
    assert b.info()["mean"] == [0.5, 0.5, 0.5] and b.info()["std"] == [0.5, 0.5, 0.5]
    # Test items: exact normalisation of the stored pixels, no augmentation, right labels.
    test_name = "test_batch" if kind == "cifar10" else "test"
    x, y = b.test[2]
    raw = arrays[test_name][2].reshape(3, 32, 32).astype(np.float32) / 255.0
    assert x.shape == (3, 32, 32)
    np.testing.assert_allclose(x.numpy(), (raw - 0.5) / 0.5, atol=1e-6)
    assert y == int(arrays[test_name + "_labels"][2])
    # Train items are augmented (crop + flip) but keep shape and range.
    xt, _ = b.train[0]
    assert xt.shape == (3, 32, 32) and float(xt.min()) >= -1.0 and float(xt.max()) <= 1.0
    tr, te = make_loaders(b, batch_size=4)
    xb, yb = next(iter(tr))
    assert xb.shape == (4, 3, 32, 32) and yb.shape == (4,)
    # augment=False: train items are exact too.
    plain = load_dataset(kind, data_dir=tmp_path, augment=False)
    first_train = "data_batch_1" if kind == "cifar10" else "train"
    raw0 = arrays[first_train][0].reshape(3, 32, 32).astype(np.float32) / 255.0
    np.testing.assert_allclose(plain.train[0][0].numpy(), (raw0 - 0.5) / 0.5, atol=1e-6)


def test_cifar_missing_folder_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_dataset("cifar10", data_dir=tmp_path / "nothing")
    msg = str(exc.value)
    assert "\n" not in msg and "--download" in msg and "cifar-10-batches-py" in msg
    with pytest.raises(DataError, match="cifar-100-python"):
        load_dataset("cifar100", data_dir=tmp_path)


def test_cifar_corrupt_files_are_one_line_error(tmp_path: Path, fake_cifar) -> None:
    fake_cifar(tmp_path, "cifar10", n_train=5, n_test=2)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"garbage")  # md5 mismatch
    with pytest.raises(DataError) as exc:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "\n" not in str(exc.value) and "corrupt" in str(exc.value)
