"""Accuracy under additive Gaussian input noise, SNN against its ANN (paper.md §2.12).

The abstract: the pruned SNNs "provide 1-4% higher accuracy in presence of Gaussian noise
corrupted inputs" [ABS]. The sigmas, the domain and the clipping are unknown; chosen here:

* **domain**: the noise is added to the *normalised* input the models actually receive
  (``x_norm + sigma * z``, ``z ~ N(0, 1)`` per element). With snnsim's normalisation (mean 0.5,
  std 0.5, ``snnsim.data``), sigma = 0.1 in normalised units is 0.05 in [0, 1] pixel units.
  With direct encoding the noisy value drives the first layer as is; a Poisson-encoded SNN
  clips its input to [-1, 1] inside its encoder (|x| is a spike probability, paper.md
  sec. 2.12), so the noise is added before that clip.
* **clipping**: off by default (direct encoding puts no range constraint on the input; clipping
  would also shrink the effective noise). ``clip=True`` clamps the noisy input to the valid pixel
  range ``[(0 - mean)/std, (1 - mean)/std]`` per channel, taken from ``model.dataset_info``.
* **same draws**: for repeat r, every batch's ``z`` comes from one CPU generator seeded with
  ``(seed, r)`` in loader order, and the *same* ``z`` tensor is added to the *same* samples for
  every model (SNN and ANN) and scaled for every sigma (common random numbers: differences
  between models and between sigmas are not blurred by different draws). The loader must
  iterate in a fixed order (a test loader).
* **repeats**: accuracy is averaged over ``repeats`` = K independent draws; with K > 1 the
  standard deviation over draws (``*_std``, ddof=1) and the half-width of the 95% Student-t
  confidence interval of the mean (``*_ci95`` = t_{0.975, K-1} * sd / sqrt(K)) are reported
  too, the mean +- ``*_ci95`` being the interval. The ``difference`` interval is the *paired*
  one (per-draw SNN - ANN), valid because both models see the same draws; it is usually
  narrower than the two models' intervals suggest, as the draw-to-draw swings they share cancel.
  The interval covers the variation of the noise draws only: the test set is held fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from snnsim.errors import SnnsimError
from snnsim.models import Model
from snnsim.progress import progress_bar


def t_quantile(p: float, dof: int) -> float:
    """Quantile ``p`` of Student's t with ``dof`` degrees of freedom (``scipy.stats.t.ppf``).

    scipy is not listed in pyproject.toml but is always installed: scikit-learn, a declared
    dependency, requires it. It is imported here only, so ``import snnsim.robustness`` stays light.
    """
    if dof < 1:
        raise SnnsimError(f"a t interval needs >= 1 degree of freedom, got {dof}",
                          "use --repeats 2 or more")
    from scipy.stats import t

    return float(t.ppf(p, dof))


def interval_halfwidth(values: np.ndarray, axis: int = -1, level: float = 0.95) -> np.ndarray:
    """Half-width of the Student-t ``level`` interval of the mean of ``values`` along ``axis``.

    ``t_{(1+level)/2, K-1} * sd(ddof=1) / sqrt(K)`` with K = ``values.shape[axis]`` >= 2. It
    assumes independent, roughly normal values: true of per-draw accuracies, each a mean over
    many test samples under its own noise draw. NaN entries give NaN (a missing model).
    """
    v = np.asarray(values, dtype=float)
    k = v.shape[axis]
    if k < 2:
        raise SnnsimError(f"an interval needs >= 2 repeats, got {k}", "use --repeats 2 or more")
    return t_quantile(0.5 + level / 2.0, k - 1) * v.std(axis=axis, ddof=1) / np.sqrt(k)


def pixel_range(dataset_info: Mapping[str, Any], channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel bounds ``[C,1,1]`` of normalised inputs whose pixels lie in [0, 1]."""
    mean = list(dataset_info.get("mean") or [])
    std = list(dataset_info.get("std") or [])
    if not mean or not std:
        raise SnnsimError("the model records no normalisation mean/std, so inputs cannot be clipped",
                          "drop --clip, or retrain the model with this snnsim")
    if len(mean) == 1:
        mean, std = mean * channels, std * channels
    if len(mean) != channels or len(std) != channels:
        raise SnnsimError(f"normalisation has {len(mean)} channels, the input has {channels}")
    m = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (0.0 - m) / s, (1.0 - m) / s


def check_stds(stds: Sequence[float]) -> list[float]:
    """Noise levels must be finite and >= 0; duplicates are dropped, order kept."""
    out: list[float] = []
    for s in stds:
        s = float(s)
        if not np.isfinite(s) or s < 0:
            raise SnnsimError(f"noise std {s!r} must be a finite number >= 0")
        if s not in out:
            out.append(s)
    if not out:
        raise SnnsimError("no noise levels given", "pass e.g. --noise-std 0,0.05,0.1,0.2")
    return out


def noisy_accuracies(models: Mapping[str, Model], loader: Iterable[Any], stds: Sequence[float],
                     repeats: int = 1, seed: int = 0, device: torch.device | str = "cpu",
                     clip: bool = False, timesteps: int | None = None,
                     progress: bool = True) -> dict[str, np.ndarray]:
    """Accuracy of every model at every noise level and repeat: ``{name: [len(stds), repeats]}``.

    See the module docstring for the domain, the clipping and the shared noise draws.
    ``timesteps`` overrides the SNNs' T (ANNs ignore it).
    """
    if not models:
        raise SnnsimError("no model to evaluate")
    if repeats < 1:
        raise SnnsimError(f"repeats must be >= 1, got {repeats}")
    stds = check_stds(stds)
    dev = torch.device(device)
    nets = {name: m.to(dev).eval() for name, m in models.items()}
    shapes = {tuple(m.input_shape) for m in nets.values()}
    if len(shapes) != 1:
        raise SnnsimError(f"the models expect different input shapes {sorted(shapes)}",
                          "compare an SNN with the ANN of the same data set")
    first = next(iter(nets.values()))
    bounds = None
    if clip:
        lo, hi = pixel_range(first.dataset_info, first.input_shape[0])
        bounds = (lo.to(dev), hi.to(dev))
    gens = [torch.Generator().manual_seed(int(seed) * 1_000_003 + r) for r in range(repeats)]
    correct = {name: np.zeros((len(stds), repeats), dtype=np.int64) for name in nets}
    seen = 0
    with torch.no_grad():
        for x, y in progress_bar(loader, desc="noise sweep", unit="batch", enabled=progress, leave=False):
            x, y = x.to(dev), y.to(dev)
            for r, gen in enumerate(gens):
                z = torch.randn(x.shape, generator=gen, dtype=torch.float32).to(dev)
                for i, sigma in enumerate(stds):
                    xn = x + sigma * z if sigma > 0 else x
                    if bounds is not None:
                        xn = torch.maximum(torch.minimum(xn, bounds[1]), bounds[0])
                    for name, net in nets.items():
                        logits = net.forward_snn(xn, timesteps) if net.kind == "snn" else net.forward_ann(xn)
                        correct[name][i, r] += int((logits.argmax(1) == y).sum())
            seen += int(y.numel())
    if seen == 0:
        raise SnnsimError("the evaluation data set is empty", "check --data-dir and the data set")
    return {name: c / seen for name, c in correct.items()}


def noise_table(snn: Model, ann: Model | None, loader: Iterable[Any], stds: Sequence[float],
                repeats: int = 1, seed: int = 0, device: torch.device | str = "cpu",
                clip: bool = False, timesteps: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Table ``noise_std, snn_accuracy, ann_accuracy, difference``, means over the repeats.

    ``snn`` is the model under test (an ANN is accepted too, then it fills the snn column);
    ``ann`` the baseline or None (its columns are then NaN). ``difference`` = snn - ann, in
    accuracy units (0.01 = 1 point). With repeats K > 1 also ``snn_std, ann_std,
    difference_std`` (sd over draws, ddof=1) and ``snn_ci95, ann_ci95, difference_ci95``: the
    half-width of the 95% Student-t interval of the mean (:func:`interval_halfwidth`). The
    difference columns are *paired*: computed from the per-draw SNN - ANN, which is valid
    because both models see the same noise draws.
    """
    models = {"snn": snn} if ann is None else {"snn": snn, "ann": ann}
    acc = noisy_accuracies(models, loader, stds, repeats, seed, device, clip, timesteps, progress)
    stds = check_stds(stds)
    nan = np.full((len(stds), repeats), np.nan)
    a_snn, a_ann = acc["snn"], acc.get("ann", nan)
    df = pd.DataFrame({
        "noise_std": stds,
        "snn_accuracy": a_snn.mean(axis=1),
        "ann_accuracy": a_ann.mean(axis=1),
        "difference": (a_snn - a_ann).mean(axis=1),
    })
    if repeats > 1:
        df["snn_std"] = a_snn.std(axis=1, ddof=1)
        df["ann_std"] = a_ann.std(axis=1, ddof=1)
        df["difference_std"] = (a_snn - a_ann).std(axis=1, ddof=1)
        df["snn_ci95"] = interval_halfwidth(a_snn, axis=1)
        df["ann_ci95"] = interval_halfwidth(a_ann, axis=1)
        df["difference_ci95"] = interval_halfwidth(a_snn - a_ann, axis=1)
    num = [c for c in df.columns if c != "noise_std"]
    df[num] = df[num].round(12)  # accuracies are k/n: drop float dust such as 1e-16 stds
    df["repeats"] = repeats
    df["clip"] = bool(clip)
    return df
