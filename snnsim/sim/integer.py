"""Integer semantics of a quantized SNN, and its PyTorch integer reference.

A quantized model (``model.quantization = {'bits', 'scales', 'int_weights'}``, float weights
exactly ``int * Δ_l``) runs on integer hardware as follows (the numba simulator in
:mod:`snnsim.sim.kernels` and :func:`integer_forward` below implement exactly this, bit for bit):

* **Input** (layer 0, direct encoding): ``x_int = clamp(round(x / Δ_x), -127, 127)``, 8 bits,
  with ``Δ_x = A / 127`` and ``A`` the largest |input| the data set can produce: from
  ``model.dataset_info`` mean/std as ``max_c max(|0 - m_c|, |1 - m_c|) / s_c`` (pixels in
  [0, 1]); without mean/std, the trace's recorded input maximum. ``round`` is half-to-even.
* **Potentials** are int64 in units of ``unit_l``: ``Δ_0 · Δ_x`` for layer 0; ``Δ_l / k²`` for a
  layer reading average-pooled spikes (a pooled input is the *number* of spikes in its k x k
  window, 0..k², so every spike adds one integer weight: ACs); ``Δ_l`` otherwise.
  The synaptic current is ``I = Σ W_int · v_int`` (exact).
* **Threshold** ``θ_int = max(1, round(θ_l / unit_l))``.
* **Leak** in fixed point with F = 16 fractional bits: ``λ_fx = round(λ_l · 2^16)``,
  ``u <- ((u · λ_fx) >> 16) + I`` (arithmetic shift = floor).
* **Fire** iff ``u > θ_int`` (strict), soft reset ``u <- u - θ_int``; all in one step.
* **Output layer**: accumulates ``I`` (no leak, no threshold); the class is the argmax of the
  accumulated integers (lowest index on ties). ``acc · unit_L / T`` is the float logit.

How this differs from the float model: the input is rounded to 8 bits, θ to a multiple of the
unit, the leak to 16 fractional bits with floor rounding of the product; everything else is
exact (the float model's float32 sums round, the integer sums do not). So spikes may differ from
the float trace; the simulator reports how many, and the accuracy of both.

The PyTorch reference computes the integer convolutions with float64 ``conv2d``/``linear`` on
integer-valued tensors: exact because every partial sum stays far below 2^53 (checked by
:func:`integer_spec`, which also guards the int64 range of the potentials).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from snnsim.arch import LayerInfo
from snnsim.errors import SnnsimError
from snnsim.models import Model, Observer, PopulationEvent

FRAC_BITS = 16
INPUT_BITS = 8
INPUT_QMAX = 2 ** (INPUT_BITS - 1) - 1


@dataclass
class IntegerLayer:
    """Integer parameters of one synaptic layer."""

    info: LayerInfo
    weight: np.ndarray  # int64, the layer's weight shape
    scale: float  # Δ_l
    unit: float  # value of one potential unit
    theta: int | None  # θ_int (None for the output layer)
    leak_fx: int | None  # round(λ · 2^F) (None for the output layer)
    vmax: int  # largest |input value| the synapses can read


@dataclass
class IntegerSpec:
    """Integer semantics of a quantized model (see the module docstring)."""

    layers: list[IntegerLayer]
    input_scale: float  # Δ_x
    frac_bits: int = FRAC_BITS
    input_qmax: int = INPUT_QMAX

    def quantize_input_np(self, x: np.ndarray) -> np.ndarray:
        """``clamp(round(x / Δ_x), ±127)`` as int64 (computed in float64, half-to-even)."""
        q = np.rint(np.asarray(x, dtype=np.float64) / self.input_scale)
        return np.clip(q, -self.input_qmax, self.input_qmax).astype(np.int64)

    def quantize_input_torch(self, x: torch.Tensor) -> torch.Tensor:
        """Torch twin of :meth:`quantize_input_np`."""
        q = torch.round(x.to(torch.float64) / self.input_scale)
        return torch.clamp(q, -self.input_qmax, self.input_qmax).to(torch.int64)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary (thresholds, leaks, units)."""
        return {
            "input_scale": self.input_scale, "input_bits": INPUT_BITS, "frac_bits": self.frac_bits,
            "layers": [{"name": lay.info.name, "scale": lay.scale, "unit": lay.unit, "theta_int": lay.theta,
                        "leak_fx": lay.leak_fx} for lay in self.layers],
        }


def default_input_scale(model: Model, input_absmax: float | None = None) -> float:
    """Δ_x = A / 127 (A from the data set's normalisation, else the recorded input maximum)."""
    info = model.dataset_info or {}
    mean, std = info.get("mean"), info.get("std")
    if mean and std and len(mean) == len(std) and all(float(s) > 0 for s in std):
        bound = max(max(abs(0.0 - float(m)), abs(1.0 - float(m))) / float(s) for m, s in zip(mean, std, strict=True))
    elif input_absmax is not None and input_absmax > 0:
        bound = float(input_absmax)
    else:
        bound = 1.0
    return bound / INPUT_QMAX


def check_integer_chain(model: Model) -> None:
    """Refuse, in one line, a graph the integer semantics above do not cover yet: the integer
    datapath is written for chains (each layer reads the population the layer before it
    drives, one layer per population, no biases, LIF/IF with soft reset firing on ``>``, one
    threshold per population). A residual graph's currents of several layers would need one
    common potential unit per population, which is not implemented."""
    prev = "input"
    pops = {p.name: p for p in model.populations}
    for info in model.layer_infos:
        pop = pops[info.target]
        node = model.graph.nodes[info.target]
        why = None
        if info.kind == "identity" or len(pop.layers) != 1:
            why = f"population {pop.name!r} is driven by {len(pop.layers)} layers (a residual add)"
        elif info.bias:
            why = f"layer {info.name!r} has a bias"
        elif info.source != prev:
            why = f"layer {info.name!r} reads {info.source!r}, not the population before it"
        elif pop.spiking and (getattr(node, "reset", "subtract") != "subtract" or getattr(node, "fire", ">") != ">"
                              or getattr(node, "per_channel", False)):
            why = f"population {pop.name!r} is not a soft-reset, '>'-firing, one-threshold neuron"
        if why:
            raise SnnsimError(f"integer replay covers chains of bias-free layers (a VGG); model {model.name!r}: {why}",
                              "use --functional float for this model")
        prev = info.target


def integer_spec(model: Model, input_scale: float | None = None, input_absmax: float | None = None,
                 timesteps: int | None = None) -> IntegerSpec:
    """Integer parameters of a quantized model; refuses unquantized models, graphs that are not
    chains (:func:`check_integer_chain`) and overflow risks."""
    q = model.quantization
    if not q or "int_weights" not in q or "scales" not in q:
        raise SnnsimError("integer simulation needs a quantized model (model.quantization is empty)",
                          "quantize it first with `snnsim quantize --bits K`")
    check_integer_chain(model)
    scale_of = dict(q["scales"])
    names = [i.name for i in model.layer_infos]
    if set(scale_of) != set(names):
        raise SnnsimError(f"quantization has {len(scale_of)} scales for {model.num_layers} layers", "re-run `snnsim quantize`")
    scales = [float(scale_of[n]) for n in names]
    dx = float(input_scale) if input_scale else default_input_scale(model, input_absmax)
    steps = int(timesteps or model.timesteps)
    layers: list[IntegerLayer] = []
    for i, info in enumerate(model.layer_infos):
        key = f"{info.name}.weight"
        if key not in q["int_weights"]:
            raise SnnsimError(f"quantization record lacks {key!r}", "re-run `snnsim quantize`")
        w = torch.as_tensor(q["int_weights"][key]).cpu().numpy().astype(np.int64)
        if tuple(w.shape) != tuple(info.weight_shape()):
            raise SnnsimError(f"integer weights of layer {i} have shape {tuple(w.shape)}, expected {info.weight_shape()}",
                              "re-run `snnsim quantize`")
        kk = info.pool_kernel ** 2 if info.pool == "avg" else 1  # average pooling divides by k^2
        unit = scales[i] * (dx if i == 0 else 1.0) / kk
        vmax = INPUT_QMAX if i == 0 else info.pool_kernel ** 2 if info.pool in ("avg", "sum") else 1
        theta = leak_fx = None
        if info.spiking:
            theta = max(1, int(round(model.threshold(info.target).item() / unit)))
            leak_fx = int(round(model.leak(info.target).item() * (1 << FRAC_BITS)))
        # Overflow guard: |current| <= vmax * max_out sum|W|; potentials stay within
        # theta + T * that bound; times leak_fx must fit int64, sums must stay exact in float64.
        fan_abs = np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max() if w.size else 0
        cur_bound = int(vmax) * int(fan_abs)
        pot_bound = (theta or 0) + steps * cur_bound
        if cur_bound >= 2 ** 52 or pot_bound * (1 << (FRAC_BITS + 1)) >= 2 ** 63:
            raise SnnsimError(f"layer {info.name}: integer potentials could overflow int64 ({pot_bound:.3g} units)",
                              "use fewer weight bits or fewer timesteps")
        layers.append(IntegerLayer(info, w, scales[i], unit, theta, leak_fx, int(vmax)))
    return IntegerSpec(layers, dx)


def _sum_pool(h: torch.Tensor, k: int) -> torch.Tensor:
    return F.avg_pool2d(h, k, divisor_override=1)


def integer_forward(model: Model, x: torch.Tensor, spec: IntegerSpec, timesteps: int | None = None,
                    observer: Observer | None = None) -> torch.Tensor:
    """PyTorch integer reference of the quantized SNN: returns int64 accumulated output [B, classes].

    ``observer`` receives :class:`~snnsim.models.PopulationEvent` objects (the layer's target
    population) with int64 ``current`` and ``potential`` (before reset) and float spikes,
    exactly like ``GraphNet.forward_snn``.
    """
    steps = int(timesteps or model.timesteps)
    pops = {p.name: p for p in model.populations}
    x_int = spec.quantize_input_torch(x.detach().cpu())
    weights = [torch.from_numpy(lay.weight).to(torch.float64) for lay in spec.layers]
    pots: list[torch.Tensor | None] = [None] * len(spec.layers)
    acc: torch.Tensor | None = None
    for t in range(steps):
        h = x_int
        for i, lay in enumerate(spec.layers):
            info = lay.info
            v = h.to(torch.float64)
            if info.pool in ("avg", "sum"):
                v = _sum_pool(v, info.pool_kernel)
            elif info.pool == "max":
                v = F.max_pool2d(v, info.pool_kernel)
            if info.flatten:
                v = v.flatten(1)
            if info.kind == "conv":
                cur_f = F.conv2d(v, weights[i], stride=info.stride, padding=info.padding)
            else:
                cur_f = F.linear(v, weights[i])
            cur = torch.round(cur_f).to(torch.int64)
            if not info.spiking:
                acc = cur if acc is None else acc + cur
                if observer is not None:
                    pop = pops[info.target]
                    observer(PopulationEvent(pop.name, pop.kind, pop.index, t, cur, acc, None))
                continue
            assert lay.theta is not None and lay.leak_fx is not None
            u_prev = pots[i] if pots[i] is not None else torch.zeros_like(cur)
            u = torch.bitwise_right_shift(u_prev * lay.leak_fx, spec.frac_bits) + cur
            s = u > lay.theta
            if observer is not None:
                pop = pops[info.target]
                observer(PopulationEvent(pop.name, pop.kind, pop.index, t, cur, u, s.to(torch.float32)))
            pots[i] = u - lay.theta * s.to(torch.int64)
            h = s.to(torch.int64)
    assert acc is not None
    return acc


def float_logits(acc: np.ndarray | torch.Tensor, spec: IntegerSpec, timesteps: int) -> np.ndarray:
    """Float logits ``acc · unit_L / T`` of integer output accumulations."""
    return np.asarray(acc, dtype=np.float64) * spec.layers[-1].unit / timesteps


def theta_error(spec: IntegerSpec, model: Model) -> float:
    """Largest relative rounding error of the integer thresholds (a quick sanity figure)."""
    errs = [abs(lay.theta * lay.unit - model.threshold(lay.info.target).item()) / model.threshold(lay.info.target).item()
            for lay in spec.layers if lay.theta is not None]
    return max(errs) if errs else 0.0


__all__ = ["FRAC_BITS", "INPUT_BITS", "IntegerLayer", "IntegerSpec", "default_input_scale", "float_logits",
           "check_integer_chain", "integer_forward", "integer_spec", "theta_error"]
