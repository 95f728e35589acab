"""Post-training k-bit weight quantization (``../shared/docs/paper.md`` §2.11).

The paper's abstract says only "post-training weight quantization" and (v1) "performance remains
reasonably stable up to 5-bit quantization"; the scheme is unknown. Chosen here ([INF] default of
paper.md §2.11):

* **uniform, symmetric, per layer**: ``Δ_l = max|W_l| / (2^(k-1) - 1)``,
  ``q_l = clamp(round(W_l / Δ_l), -(2^(k-1)-1), 2^(k-1)-1)``, ``W_q = Δ_l * q_l``, one scale per
  synapse node (conv / affine). The layers that drive one population (a residual block's conv and
  its 1x1 downsample) share one scale, that of the largest |weight| among them, so that their
  currents add in one integer unit (:func:`population_scales`); a VGG has one layer per
  population, so its scales are per layer. The range is symmetric (the code ``-2^(k-1)`` is unused) so that zero is exact and the
  integer simulator needs no zero point. An asymmetric scheme is *not* offered: SNN weights are
  centred on zero, and a zero point would break the ``float = int * scale`` layout the integer
  simulator relies on.
* **biases** (folded batch norm, affine biases) are quantized with their layer's ``Δ_l``, as
  :data:`BIAS_BITS`-bit codes: a bias is added to the membrane potential once per timestep like
  an accumulated current, so it lives at the accumulator's precision in the same unit as the
  weights (an integer datapath adds its code directly), not at the weights' k bits.
* thresholds and leaks stay float32 (spikes are binary anyway; membrane potentials are the
  simulator's business).
* ``k`` from 2 to 24 bits. The limit 24 keeps every integer exactly representable in float32, so
  the float weights are *exactly* ``int * scale``. ``k = 32`` is the float reference (the model
  unchanged, ``quantization = None``).
* ``round`` is round-half-to-even (``torch.round``).
* A layer whose weights are all zero gets ``Δ = 1`` and all-zero integers.

The quantized model records (see ``docs/ARCHITECTURE.md``)::

    model.quantization = {'bits': k, 'scheme': 'uniform-symmetric-per-layer',
                          'scales': {<synapse node>: Δ_l},
                          'int_weights': {'<node>.weight': int8/int16/int32 tensor,
                                          '<node>.bias': int32 tensor (BIAS_BITS)}}

and its state-dict weights and biases are ``int_weights.float() * scale`` (float32). Each ``Δ_l`` is a
float32 value stored as a Python float, so ``int * Δ`` rounds identically in float32 and float64.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from snnsim.errors import SnnsimError
from snnsim.models import Model

SCHEME = "uniform-symmetric-per-layer"
MIN_BITS = 2
MAX_INT_BITS = 24
FLOAT_BITS = 32
#: Bias codes: the accumulator's precision (24 bits keeps every code exact in float32).
BIAS_BITS = 24


def qmax(bits: int) -> int:
    """Largest integer code of a symmetric k-bit quantizer: 2^(k-1) - 1."""
    check_bits(bits, allow_float=False)
    return 2 ** (bits - 1) - 1


def int_dtype(bits: int) -> torch.dtype:
    """Smallest signed integer dtype holding k-bit codes."""
    if bits <= 8:
        return torch.int8
    if bits <= 16:
        return torch.int16
    return torch.int32


def check_bits(bits: int, allow_float: bool = True) -> None:
    """Refuse bit widths outside 2..24 (and 32 = float when ``allow_float``)."""
    ok = isinstance(bits, int) and (MIN_BITS <= bits <= MAX_INT_BITS or (allow_float and bits == FLOAT_BITS))
    if not ok:
        extra = f" or {FLOAT_BITS} (float)" if allow_float else ""
        raise SnnsimError(f"bit width {bits!r} is not supported",
                          f"use an integer from {MIN_BITS} to {MAX_INT_BITS}{extra}")


def quantize_tensor(w: torch.Tensor, bits: int, scale: float | None = None) -> tuple[torch.Tensor, float]:
    """Symmetric uniform k-bit quantization of one tensor: ``(int codes, scale Δ)``.

    ``Δ = max|w| / (2^(k-1)-1)`` rounded to float32; codes are ``round(w/Δ)`` clamped to
    ``±(2^(k-1)-1)``. ``codes.float() * Δ`` is the quantized tensor; ``|w - codes*Δ| <= Δ/2``
    (up to float32 rounding of the product). A given ``scale`` is used as it is (a bias gets
    its layer's weight scale).
    """
    q = qmax(bits)
    wd = w.detach().to(torch.float64)
    if not torch.isfinite(wd).all():
        raise SnnsimError("weights contain NaN or Inf", "retrain, or restore an earlier checkpoint")
    if scale is None:
        scale = scale_for(float(wd.abs().max()) if wd.numel() else 0.0, bits)
    codes = torch.clamp(torch.round(wd / scale), -q, q).to(int_dtype(bits))
    return codes, scale


def scale_for(peak: float, bits: int) -> float:
    """Δ = ``peak / (2^(k-1)-1)`` rounded to float32; 1.0 for an all-zero tensor (or one whose
    Δ underflows float32: denormal weights are treated as zero)."""
    scale = float(torch.tensor(peak / qmax(bits), dtype=torch.float32)) if peak > 0 else 1.0
    return scale if scale != 0.0 else 1.0


def population_scales(model: Model, bits: int) -> dict[str, float]:
    """One Δ per synapse node: the layers that drive one population share the scale of their
    largest |weight| (``max_l max|W_l| / qmax``), so that their currents add in one integer unit
    (:mod:`snnsim.sim.integer`). A population driven by one layer (every VGG layer) gets exactly
    its per-layer scale."""
    infos = list(model.layer_infos)
    synapses = list(model.synapses)
    scales: dict[str, float] = {}
    for pop in model.populations:
        mine = [li for li in pop.layers if synapses[li] is not None]
        for li in mine:
            if not torch.isfinite(synapses[li].weight.detach()).all():  # type: ignore[union-attr]
                raise SnnsimError("weights contain NaN or Inf", "retrain, or restore an earlier checkpoint")
        peak = max((float(synapses[li].weight.detach().abs().max()) for li in mine  # type: ignore[union-attr]
                    if synapses[li].weight.numel()), default=0.0)  # type: ignore[union-attr]
        for li in mine:
            scales[infos[li].name] = scale_for(peak, bits)
    return scales


def dequantize(codes: torch.Tensor, scale: float) -> torch.Tensor:
    """Float32 weights of integer codes: ``codes.float() * scale`` (the layout's definition)."""
    return codes.to(torch.float32) * torch.tensor(scale, dtype=torch.float32)


def quantize_model(model: Model, bits: int) -> Model:
    """A quantized copy of ``model`` (weights and biases; see the module docstring).

    ``bits == 32`` returns an unquantized copy (``quantization = None``), the float reference.
    The input model is not modified.
    """
    check_bits(bits)
    out = copy.deepcopy(model)
    if bits == FLOAT_BITS:
        out.quantization = None
        return out
    scales = population_scales(out, bits)
    int_weights: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for info, syn in zip(out.layer_infos, out.synapses, strict=True):
            if syn is None:  # an identity edge has no weight
                continue
            codes, scale = quantize_tensor(syn.weight, bits, scales[info.name])
            syn.weight.copy_(dequantize(codes, scale).to(syn.weight.device))
            scales[info.name] = scale
            int_weights[f"{info.name}.weight"] = codes.cpu()
            if syn.bias is not None:
                bias_codes, _ = quantize_tensor(syn.bias, BIAS_BITS, scale)
                syn.bias.copy_(dequantize(bias_codes, scale).to(syn.bias.device))
                int_weights[f"{info.name}.bias"] = bias_codes.cpu()
    out.quantization = {"bits": int(bits), "scheme": SCHEME, "scales": scales, "int_weights": int_weights}
    return out


def check_quantized(model: Model) -> None:
    """Verify that a quantized model's float weights are exactly ``int_weights * scale``.

    Raises :class:`SnnsimError` naming the first inconsistent layer. Models without quantization
    pass.
    """
    qinfo: dict[str, Any] | None = model.quantization
    if not qinfo:
        return
    bits = int(qinfo["bits"])
    scales = dict(qinfo["scales"])
    weighted = [(info, syn) for info, syn in zip(model.layer_infos, model.synapses, strict=True) if syn is not None]
    if set(scales) != {info.name for info, _ in weighted}:
        raise SnnsimError(f"quantization has scales for {len(scales)} nodes, the model has {len(weighted)} synapses",
                          "re-run `snnsim quantize`")
    want = [f"{info.name}.{param}" for info, syn in weighted
            for param, tensor in (("weight", syn.weight), ("bias", syn.bias)) if tensor is not None]
    missing = [key for key in want if key not in qinfo["int_weights"]]
    if missing:
        raise SnnsimError(f"quantization record lacks the integer codes {missing[0]!r}", "re-run `snnsim quantize`")
    plural = {"weight": "weights", "bias": "biases"}
    for info, syn in weighted:
        for param, tensor, width in (("weight", syn.weight, bits), ("bias", syn.bias, BIAS_BITS)):
            if tensor is None:
                continue
            codes = qinfo["int_weights"][f"{info.name}.{param}"]
            if codes.numel() and int(codes.abs().max()) > qmax(width):
                raise SnnsimError(f"layer {info.name}: integer {plural[param]} exceed the {width}-bit range",
                                  "re-run `snnsim quantize`")
            if not torch.equal(dequantize(codes, scales[info.name]), tensor.detach().cpu().float()):
                raise SnnsimError(f"layer {info.name}: float {plural[param]} differ from int_weights * scale",
                                  "re-run `snnsim quantize`")
