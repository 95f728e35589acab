"""Data sets and loaders: CIFAR10/100 (torchvision), scikit-learn digits, synthetic.

Every item is ``(normalised_image_tensor (C, H, W) float32, int_label)``.

Normalisation choice: **mean 0.5, std 0.5 per channel** for every data set, i.e. pixels in
[0, 1] map to [-1, 1]. This is what the same authors' DCT-SNN code and the secondary summary of
the paper use for the SNN (paper.md §2.6); it keeps inputs in [-1, 1] so a Poisson/rate encoder
could use |x| as a probability, and it makes one convention hold for every data set so that
noise levels (``snnsim evaluate``) mean the same thing everywhere. The mean/std are stored in
every checkpoint (``model.dataset_info``), so nothing downstream has to guess.

* ``cifar10`` / ``cifar100``: torchvision's loaders on ``data_dir`` (``cifar-10-batches-py`` /
  ``cifar-100-python``), training augmentation = random crop 32 with padding 4 + horizontal flip
  (the lineage's, paper.md §2.6).
* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 real samples, offline), pixels
  scaled by 1/16 to [0, 1], then normalised. Split 80/20, stratified, with a **fixed seed 0
  regardless of the run's seed**, so test sets are comparable across runs. No augmentation:
  flips change digit identity and an 8x8 crop with padding would remove a large part of the
  image.
* ``synthetic``: random but learnable (one smooth random prototype per class + pixel noise),
  any shape and class count, for fast tests. Deterministic in ``seed``.
* ``file:PATH`` (the CLI's ``--inputs PATH``): the user's own inputs, a ``.npy`` array or a
  ``.npz`` with ``inputs`` (and optional ``labels``), shape [N, C, H, W], fed to the model as
  they are (already normalised the way the model expects). See :func:`load_inputs`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from snnsim.errors import DataError, quote
from snnsim.io import existing_file, file_sha256
from snnsim.limits import MAX_TIMESTEPS

DATASET_NAMES = ("cifar10", "cifar100", "digits", "synthetic")
#: ``load_dataset(INPUTS_PREFIX + path)`` loads a user's input file (:func:`load_inputs`).
INPUTS_PREFIX = "file:"
#: ``.npz`` keys of a user's input file.
INPUTS_KEY = "inputs"
LABELS_KEY = "labels"
#: Largest input file read (bytes): more than any trace may hold.
MAX_INPUTS_BYTES = 8 << 30
NORM_MEAN = 0.5
NORM_STD = 0.5
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2

_CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


@dataclass
class DatasetBundle:
    """A train/test pair plus what a model needs to know about its input."""

    name: str
    train: Dataset
    test: Dataset
    input_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """The ``model.dataset_info`` dict stored in checkpoints."""
        return {
            "name": self.name,
            "mean": [float(m) for m in self.mean],
            "std": [float(s) for s in self.std],
            "input_shape": [int(s) for s in self.input_shape],
            "num_classes": int(self.num_classes),
            **self.meta,
        }


def load_dataset(name: str, data_dir: str | os.PathLike[str] = "data", download: bool = False,
                 seed: int = 0, augment: bool = True, synthetic_size: tuple[int, int] = (512, 256),
                 synthetic_shape: tuple[int, int, int] = (1, 8, 8),
                 synthetic_classes: int = 10) -> DatasetBundle:
    """Load ``'cifar10'|'cifar100'|'digits'|'synthetic'`` as a :class:`DatasetBundle`.

    ``augment`` only affects CIFAR training data. ``seed`` only affects ``synthetic`` (the
    digits split is fixed on purpose, see the module docstring). ``synthetic_size`` is
    (train, test) sample counts.
    """
    if name.startswith(INPUTS_PREFIX):
        return load_inputs(name[len(INPUTS_PREFIX):])
    key = name.lower()
    if key in _CIFAR_FOLDERS:
        return _load_cifar(key, Path(data_dir), download, augment)
    if key == "digits":
        return _load_digits()
    if key == "synthetic":
        return make_synthetic(synthetic_size[0], synthetic_size[1], synthetic_shape,
                              synthetic_classes, seed)
    raise DataError(f"unknown data set {name!r}", f"choose one of {', '.join(DATASET_NAMES)}")


# ----------------------------------------------------------------------------- CIFAR
def _cifar_transforms(channels: int, augment: bool) -> tuple[Any, Any]:
    from torchvision import transforms as tv

    norm = tv.Normalize((NORM_MEAN,) * channels, (NORM_STD,) * channels)
    test_tf = tv.Compose([tv.ToTensor(), norm])
    if not augment:
        return test_tf, test_tf
    train_tf = tv.Compose([tv.RandomCrop(32, padding=4), tv.RandomHorizontalFlip(), tv.ToTensor(), norm])
    return train_tf, test_tf


def _load_cifar(key: str, data_dir: Path, download: bool, augment: bool) -> DatasetBundle:
    from torchvision import datasets

    cls = datasets.CIFAR10 if key == "cifar10" else datasets.CIFAR100
    folder = _CIFAR_FOLDERS[key]
    if not download and not (data_dir / folder).is_dir():
        raise DataError(f"{key} not found: no {folder!r} folder under --data-dir {str(data_dir)!r}",
                        f"rerun with --download where you have internet, or place {folder} (the "
                        f"torchvision python version) under --data-dir")
    train_tf, test_tf = _cifar_transforms(3, augment)
    try:
        train = cls(str(data_dir), train=True, transform=train_tf, download=download)
        test = cls(str(data_dir), train=False, transform=test_tf, download=False)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted", bad meta file
        raise DataError(f"{key} under {str(data_dir / folder)!r} is incomplete or corrupt "
                        f"({quote(exc, 80)})",
                        f"delete the folder and rerun with --download, or copy a complete {folder}") from None
    except OSError as exc:  # no network, disk full, permission denied
        raise DataError(f"could not download or read {key} into {str(data_dir)!r} ({type(exc).__name__}: "
                        f"{quote(exc, 80)})",
                        f"check your connection, or place {folder} under --data-dir") from None
    classes = 10 if key == "cifar10" else 100
    return DatasetBundle(key, train, test, (3, 32, 32), classes, (NORM_MEAN,) * 3, (NORM_STD,) * 3,
                         meta={"augment": "crop32pad4+hflip" if augment else "none"})


# ----------------------------------------------------------------------------- digits
def _normalise(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(((x - NORM_MEAN) / NORM_STD).astype(np.float32))


def _load_digits() -> DatasetBundle:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    images = (d.images.astype(np.float64) / 16.0)[:, None, :, :]  # (N, 1, 8, 8) in [0, 1]
    labels = d.target.astype(np.int64)
    idx = np.arange(len(labels))
    tr, te = train_test_split(idx, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED,
                              stratify=labels)
    train = TensorDataset(_normalise(images[tr]), torch.from_numpy(labels[tr]))
    test = TensorDataset(_normalise(images[te]), torch.from_numpy(labels[te]))
    return DatasetBundle("digits", train, test, (1, 8, 8), 10, (NORM_MEAN,), (NORM_STD,),
                         meta={"split": f"stratified {1 - DIGITS_TEST_FRACTION:.0%}/{DIGITS_TEST_FRACTION:.0%} seed {DIGITS_SPLIT_SEED}",
                               "train_size": len(tr), "test_size": len(te)})


# ----------------------------------------------------------------------------- synthetic
def make_synthetic(n_train: int = 512, n_test: int = 256, shape: tuple[int, int, int] = (1, 8, 8),
                   num_classes: int = 10, seed: int = 0, noise: float = 0.25) -> DatasetBundle:
    """A learnable synthetic image set: one smooth random prototype per class plus noise.

    Prototypes are random [0, 1] maps blurred by a 3x3 box filter (so convs and pooling see
    spatial structure); a sample is its class prototype plus N(0, ``noise``^2) pixel noise,
    clipped to [0, 1], then normalised like every other set. Labels are balanced.
    """
    if n_train < 1 or n_test < 1:
        raise DataError(f"synthetic sizes must be >= 1, got {(n_train, n_test)}")
    if num_classes < 2:
        raise DataError(f"synthetic data needs >= 2 classes, got {num_classes}")
    if len(shape) != 3 or min(shape) < 1:
        raise DataError(f"synthetic input shape must be (C, H, W) of positive ints, got {shape}")
    g = torch.Generator().manual_seed(int(seed))
    protos = torch.rand((num_classes, *shape), generator=g)
    if shape[1] >= 3 and shape[2] >= 3:
        protos = torch.nn.functional.avg_pool2d(protos, 3, stride=1, padding=1, count_include_pad=False)
        lo = protos.amin(dim=(1, 2, 3), keepdim=True)
        hi = protos.amax(dim=(1, 2, 3), keepdim=True)
        protos = (protos - lo) / (hi - lo).clamp_min(1e-6)

    def draw(n: int) -> TensorDataset:
        labels = torch.arange(n) % num_classes
        labels = labels[torch.randperm(n, generator=g)]
        x = protos[labels] + noise * torch.randn((n, *shape), generator=g)
        x = (x.clamp(0.0, 1.0) - NORM_MEAN) / NORM_STD
        return TensorDataset(x.float(), labels.long())

    train, test = draw(n_train), draw(n_test)
    return DatasetBundle("synthetic", train, test, tuple(int(s) for s in shape), int(num_classes),  # type: ignore[arg-type]
                         (NORM_MEAN,) * shape[0], (NORM_STD,) * shape[0],
                         meta={"seed": int(seed), "noise": float(noise),
                               "train_size": n_train, "test_size": n_test})


# ----------------------------------------------------------------------------- a user's inputs
def _read_arrays(p: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(inputs, labels or None) of a ``.npy`` / ``.npz`` file, never unpickling anything."""
    shown = quote(str(p))
    magic = b"PK" if p.suffix.lower() == ".npz" else b"\x93NUMPY"
    with open(p, "rb") as fh:
        if fh.read(len(magic)) != magic:
            raise DataError(f"inputs file {shown} is not a {p.suffix.lower()} file (it does not start like one)",
                            "write it with np.save (.npy) or np.savez (.npz)")
    try:
        with open(p, "rb") as fh:
            if p.suffix.lower() == ".npz":
                with np.load(fh, allow_pickle=False) as z:
                    keys = list(z.keys())
                    if INPUTS_KEY not in keys:
                        raise DataError(f"inputs file {shown} has no {INPUTS_KEY!r} array (it has {', '.join(keys) or 'none'})",
                                        f"save it with np.savez(path, {INPUTS_KEY}=x, {LABELS_KEY}=y)")
                    return z[INPUTS_KEY], (z[LABELS_KEY] if LABELS_KEY in keys else None)
            return np.load(fh, allow_pickle=False), None
    except DataError:
        raise
    except (ValueError, OSError, EOFError) as exc:  # not an npy/npz, truncated, or pickled objects
        raise DataError(f"inputs file {shown} is not a readable .npy/.npz array file ({quote(exc, 80)})",
                        "write it with np.save / np.savez (numeric arrays, no pickled objects)") from None


def is_ternary(x: np.ndarray | torch.Tensor) -> bool:
    """Whether every value is -1, 0 or +1: spike events (costed as accumulates, not MACs)."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return bool(np.isin(a, (-1, 0, 1)).all()) if a.size else True


def load_inputs(path: str | os.PathLike[str]) -> DatasetBundle:
    """A user's input file as a test-only :class:`DatasetBundle` (``--inputs``).

    ``.npy``: an array [N, C, H, W] or [N, T, C, H, W]; ``.npz``: ``inputs`` of either shape and
    optional ``labels`` [N] (integer classes; they give the accuracy). Values must be real and
    finite; they are fed to the model unchanged (float32): a map at every timestep (through the
    model's input encoding), a sequence step by step (event frames or spikes; the model must run
    T steps; ``meta['timesteps']`` = T, ``meta['ternary']`` whether every value is -1, 0 or 1,
    which makes them events costed as accumulates). The bundle's name carries the file's content
    hash, so the trace cache never mixes two files; its class count is the labels' range (10
    without labels; the model's own count is what the trace checks labels against).
    """
    p = existing_file(path, "inputs file", "check the --inputs path", suffixes=(".npy", ".npz"),
                      suffix_fix="save the inputs with np.save or np.savez", error=DataError)
    shown = quote(str(p))
    if p.stat().st_size > MAX_INPUTS_BYTES:
        raise DataError(f"inputs file {shown} is {p.stat().st_size / 2**30:.1f} GiB, more than {MAX_INPUTS_BYTES >> 30} GiB",
                        "pass fewer samples")
    x, labels = _read_arrays(p)
    if x.dtype.kind not in "biuf":
        raise DataError(f"inputs in {shown} have dtype {x.dtype}, not a real number type", "store float32 (or integer) values")
    if x.ndim not in (4, 5) or min(x.shape) < 1:
        raise DataError(f"inputs in {shown} have shape {list(x.shape)}, not [N, C, H, W] or [N, T, C, H, W]",
                        "store one (C, H, W) map per sample, or one per sample and timestep")
    if x.ndim == 5 and x.shape[1] > MAX_TIMESTEPS:
        raise DataError(f"inputs in {shown} hold {x.shape[1]} timesteps per sample, more than {MAX_TIMESTEPS}",
                        "re-bin them into fewer frames")
    xf = np.ascontiguousarray(x, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(xf.reshape(xf.shape[0], -1)).all(axis=1))
    if bad.size:
        raise DataError(f"inputs in {shown}: sample {int(bad[0])} contains NaN or Inf "
                        f"({bad.size} sample{'s' if bad.size > 1 else ''} in all)", "clean the inputs")
    n = int(xf.shape[0])
    if labels is not None:
        if labels.dtype.kind not in "iu" or labels.ndim != 1 or labels.shape[0] != n:
            raise DataError(f"labels in {shown} must be {n} integers (one per sample), got dtype {labels.dtype} shape "
                            f"{list(labels.shape)}", f"save {LABELS_KEY} as an integer array of shape [{n}]")
        if labels.size and int(labels.min()) < 0:
            raise DataError(f"labels in {shown}: label {int(labels.min())} is negative", "use class indices 0..K-1")
    digest = file_sha256(p)[:12]
    name = f"inputs-{p.stem}-{digest}"
    y = torch.from_numpy(labels.astype(np.int64)) if labels is not None else torch.full((n,), -1, dtype=torch.long)
    test = TensorDataset(torch.from_numpy(xf), y)
    classes = int(labels.max()) + 1 if labels is not None and labels.size else 10
    shape = tuple(int(s) for s in xf.shape[(2 if x.ndim == 5 else 1):])
    sequence = {"timesteps": int(x.shape[1]), "ternary": is_ternary(xf)} if x.ndim == 5 else {}
    return DatasetBundle(name, TensorDataset(torch.zeros((0, *shape)), torch.zeros(0, dtype=torch.long)), test,
                         shape, max(2, classes), (0.0,) * shape[0], (1.0,) * shape[0],  # type: ignore[arg-type]
                         meta={"file": str(p.resolve()), "sha256": digest, "labelled": labels is not None,
                               "test_size": n, "normalised": "as given", **sequence})


def labelled(bundle: DatasetBundle) -> bool:
    """Whether the bundle's test items carry real labels (a user's inputs may not)."""
    return bool(bundle.meta.get("labelled", True))


# ----------------------------------------------------------------------------- loaders
class ShardSampler(Sampler[int]):
    """Evaluation sampler: rank ``r`` of ``w`` gets indices ``r, r+w, ...`` (no padding).

    Unlike :class:`DistributedSampler` it never duplicates samples, so summing correct counts
    over ranks gives the exact test accuracy (see :func:`snnsim.training.evaluate`).
    """

    def __init__(self, size: int, rank: int, world_size: int) -> None:
        self.size, self.rank, self.world_size = size, rank, world_size

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(range(self.rank, self.size, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.world_size))


def make_loaders(bundle: DatasetBundle, batch_size: int = 64, seed: int = 0, num_workers: int = 0,
                 distributed: bool = False) -> tuple[DataLoader, DataLoader]:
    """(train, test) loaders; the train order is a seeded permutation per epoch.

    The train loader always uses a :class:`DistributedSampler` (one replica when not
    distributed) so that the shuffle of epoch ``e`` depends only on ``(seed, e)``: the training
    loops call ``sampler.set_epoch(e)``, which is what makes ``--resume`` continue exactly.
    With ``distributed=True`` (a process group must be initialised) each rank gets its shard of
    the training set and a :class:`ShardSampler` slice of the test set.
    """
    if batch_size < 1:
        raise DataError(f"batch size must be >= 1, got {batch_size}")
    if distributed:
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise DataError("distributed loaders need an initialised process group", "launch with torchrun")
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    train_sampler = DistributedSampler(bundle.train, num_replicas=world, rank=rank, shuffle=True,
                                       seed=int(seed), drop_last=False)
    test_sampler = ShardSampler(len(bundle.test), rank, world)  # type: ignore[arg-type]
    pin = torch.cuda.is_available()
    train = DataLoader(bundle.train, batch_size=batch_size, sampler=train_sampler,
                       num_workers=num_workers, pin_memory=pin, persistent_workers=False)
    test = DataLoader(bundle.test, batch_size=max(batch_size, 256), sampler=test_sampler,
                      num_workers=num_workers, pin_memory=pin)
    return train, test
