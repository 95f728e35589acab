"""NeuroBench-2.3-compatible counting profile (``replay(..., counting='neurobench')``).

Reproduces NeuroBench 2.3.0's ``SynapticOperations`` (``Effective_MACs``, ``Effective_ACs``,
``Dense``) and its architecture-level ``MembraneUpdates`` / ``NeuronOperations``
(``../shared/docs/peers-counting.md`` §3.1), from a trace instead of live hooks:

* each call of a layer (one layer, one timestep, one *batch*) reads the tensor after pooling and
  flattening; NeuroBench binarizes it (nonzero -> 1) and the weights (nonzero -> 1) and counts
  the connected pairs: per sample, the sum over nonzero pooled sites of the nonzero-weight
  fan-out (pruning-aware; bias excluded; zero-padding taps never count);
* the call is **AC iff every element of the whole batch tensor is in {-1, 0, 1}**, else MAC.
  So the split depends on the batch size and on which samples share a batch (consecutive
  trace samples, like an unshuffled DataLoader): one average-pooled window holding 1..k²-1
  spikes (value 0.25..0.75) anywhere in the batch turns the whole call into MACs, and the
  analog layer 0 is MAC unless its input happens to be ternary;
* ``Dense`` = all-ones input through all-ones weights = the in-bounds connections (padding taps
  excluded, pruned weights included), per sample per timestep, summed over T;
* totals are divided by the number of samples and summed over timesteps.

``MembraneUpdates`` here is NeuroBench's rule applied to every layer with neurons (the output
accumulator included, as snnTorch's ``Leaky(output=True)`` is): all neurons at t = 0, then those
whose potential changed; with leak < 1 that is ``neurons x T`` (the architecture figure given
when no functional replay ran). ``NeuronOperations`` = 4 x updates (snnTorch ``Leaky``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snnsim.arch import LayerInfo, primary_layers

LEAKY_NEURON_OPS = 4  # NeuroBench's cost table: Leaky, subtract or zero reset


def inbounds_connections(info: LayerInfo) -> int:
    """NeuroBench ``Dense`` of one layer, per sample per timestep (in-bounds connections; an
    identity edge connects each source neuron to one target neuron). A conv connects each output
    channel to the C_in / groups input channels of its group, through the taps whose dilated
    input position ``o * stride - padding + kk * dilation`` is in bounds."""
    if info.kind == "identity":
        return info.neurons
    if info.kind == "linear":
        return info.in_features * info.out_features
    _c_in, h, w = info.in_shape
    c_out, h_out, w_out = info.out_shape

    def taps(n_in: int, n_out: int) -> int:
        total = 0
        for o in range(n_out):
            for kk in range(info.kernel):
                pos = o * info.stride - info.padding + kk * info.dilation
                total += 0 <= pos < n_in
        return total

    return info.group_in * c_out * taps(h, h_out) * taps(w, w_out)


def architecture_metrics(layers: list[LayerInfo], timesteps: int) -> dict[str, Any]:
    """Architecture-only NeuroBench figures per sample (golden-testable)."""
    # NeuroBench hooks Conv / Linear modules only: an identity shortcut (an add) is not in Dense
    dense = [0 if i.kind == "identity" else inbounds_connections(i) * timesteps for i in layers]
    neurons = sum(i.neurons for i, first in zip(layers, primary_layers(layers), strict=True) if first)
    return {
        "Dense": float(sum(dense)),
        "DenseByLayer": [float(d) for d in dense],
        "ConventionalDense": float(sum(i.macs for i in layers) * timesteps),
        "MembraneUpdates": float(neurons * timesteps),
        "NeuronOperations": float(neurons * timesteps * LEAKY_NEURON_OPS),
    }


@dataclass
class NeuroBenchCounts:
    """NeuroBench figures of a replay: per-sample totals plus per-layer, per-timestep splits."""

    batch_size: int
    samples: int
    effective_macs: float
    effective_acs: float
    dense: float
    membrane_updates: float
    neuron_operations: float
    mac_ops: np.ndarray  # [L, T] summed over samples
    ac_ops: np.ndarray  # [L, T]
    dense_by_layer: list[float] = field(default_factory=list)  # per sample, summed over T

    def as_dict(self) -> dict[str, float]:
        """The keys NeuroBench's Benchmark reports (per sample)."""
        return {"Effective_MACs": self.effective_macs, "Effective_ACs": self.effective_acs, "Dense": self.dense,
                "MembraneUpdates": self.membrane_updates, "NeuronOperations": self.neuron_operations}


def aggregate(effective: np.ndarray, binary: np.ndarray, layers: list[LayerInfo], timesteps: int,
              batch_size: int, membrane_updates: float | None = None) -> NeuroBenchCounts:
    """NeuroBench totals from per-sample counts.

    ``effective`` [N, L, T]: connected (nonzero input, nonzero weight) pairs per sample;
    ``binary`` [N, L, T] bool: the sample's input to that call is in {-1, 0, 1}. Samples are
    batched consecutively, ``batch_size`` at a time (the last batch may be short).
    """
    n, n_layers, steps = effective.shape
    mac = np.zeros((n_layers, steps), dtype=np.float64)
    ac = np.zeros((n_layers, steps), dtype=np.float64)
    for a in range(0, n, batch_size):
        b = min(a + batch_size, n)
        ops = effective[a:b].sum(axis=0).astype(np.float64)
        is_ac = binary[a:b].all(axis=0)
        ac += np.where(is_ac, ops, 0.0)
        mac += np.where(is_ac, 0.0, ops)
    arch = architecture_metrics(layers, timesteps)
    mu = arch["MembraneUpdates"] if membrane_updates is None else membrane_updates
    return NeuroBenchCounts(
        batch_size=batch_size, samples=n,
        effective_macs=float(mac.sum() / n), effective_acs=float(ac.sum() / n), dense=arch["Dense"],
        membrane_updates=float(mu), neuron_operations=float(mu * LEAKY_NEURON_OPS),
        mac_ops=mac, ac_ops=ac, dense_by_layer=arch["DenseByLayer"],
    )


def neurobench_call(x: torch.Tensor, layer: nn.Module) -> tuple[float, bool, float]:
    """NeuroBench's rule for one call of ``layer`` on batch ``x``: (effective ops, is_ac, dense).

    A direct re-implementation of ``single_layer_MACs`` for Linear/Conv layers, used as the
    reference the trace-based profile is tested against. Totals are over the batch (divide by
    the batch size for per-sample figures).
    """
    with torch.no_grad():
        xd = x.detach().to(torch.float64)
        is_ac = bool(((xd == 0) | (xd == 1) | (xd == -1)).all())
        xb = (xd != 0).to(torch.float64)
        wb = (layer.weight.detach() != 0).to(torch.float64)
        ones = torch.ones_like(wb)

        def run(inp: torch.Tensor, weight: torch.Tensor) -> float:  # bias excluded
            if isinstance(layer, nn.Linear):
                return float(F.linear(inp, weight).sum())
            if isinstance(layer, nn.Conv2d):
                return float(F.conv2d(inp, weight, None, layer.stride, layer.padding, layer.dilation, layer.groups).sum())
            raise TypeError(f"unsupported layer type {type(layer).__name__}")

        return run(xb, wb), is_ac, run(torch.ones_like(xb), ones)
