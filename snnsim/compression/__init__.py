"""Spatio-temporal compression of trained SNNs (paper.md §2.8-§2.11).

* :mod:`snnsim.compression.spatial` -- structured pruning of layer widths by PCA of the averaged
  membrane potential, and the retraining of the narrower network;
* :mod:`snnsim.compression.temporal` -- gradual timestep reduction with fine-tuning per stage, and
  the direct-cut control;
* :mod:`snnsim.compression.quantize` -- post-training uniform symmetric per-layer k-bit weights.

Gaussian-noise robustness lives in :mod:`snnsim.robustness`; the CLI in
:mod:`snnsim.commands.compress`.
"""

from __future__ import annotations

from snnsim.compression.quantize import check_quantized, quantize_model, quantize_tensor
from snnsim.compression.spatial import (
    analyze_spatial,
    explained_variance_curve,
    measure,
    pruned_spec,
    significant_dims,
)
from snnsim.compression.temporal import Stage, plan_schedule, prune_temporal

__all__ = [
    "Stage",
    "analyze_spatial",
    "check_quantized",
    "explained_variance_curve",
    "measure",
    "plan_schedule",
    "prune_temporal",
    "pruned_spec",
    "quantize_model",
    "quantize_tensor",
    "significant_dims",
]
