"""Integer semantics of a quantized SNN, and its PyTorch integer reference.

A quantized model (``model.quantization = {'bits', 'scales', 'int_weights'}``, float weights
exactly ``int * Δ_l``, biases ``code * Δ_l``) runs on integer hardware as follows (the numba
simulator in :mod:`snnsim.sim.kernels` and :func:`integer_forward` below implement exactly
this, bit for bit), population by population in schedule order:

* **Input** (direct encoding): ``x_int = clamp(round(x / Δ_x), -127, 127)``, 8 bits, with
  ``Δ_x = A / 127`` and ``A`` the largest |input| the data set can produce: from
  ``model.dataset_info`` mean/std as ``max_c max(|0 - m_c|, |1 - m_c|) / s_c`` (pixels in
  [0, 1]); without mean/std, the trace's recorded input maximum. ``round`` is half-to-even.
* **Units.** A synapse layer's current ``Σ W_int · v_int`` is exact, in its *natural unit*
  ``n_l``: ``Δ_l · Δ_x`` for a layer reading the analog input; ``Δ_l / k²`` for a layer reading
  average-pooled spikes (a pooled input is the *number* of spikes in its k x k window, 0..k²,
  so every spike adds one integer weight: ACs); ``Δ_l`` otherwise. A population's potential is
  int64 in one unit ``u_P``, the smallest natural unit of the layers that drive it; each layer's
  current enters multiplied by the integer ``r_l = n_l / u_P`` (a layer whose ratio is not an
  integer is refused: ``snnsim quantize`` gives every synapse layer of one population the same
  scale, so the ratios are 1, or k² across pooled and unpooled inputs). A VGG chain has one
  layer per population: ``u_P = n_l``, ``r_l = 1``.
* **Biases** enter in ``u_P``: ``code_l · Δ_l / u_P``, exact when that factor is an integer
  (a layer reading spikes), else rounded half-to-even once (a layer reading the analog input:
  the factor is ``1 / Δ_x``), like the threshold.
* **Residual identity shortcuts** add each source spike (the value 1.0 in the float model) as
  the integer ``c_id = round(1 / u_P)`` (rounded once, like the threshold).
* **Threshold** ``θ_int = max(1, round(θ_P / u_P))``.
* **Leak** in fixed point with F = 16 fractional bits: ``λ_fx = round(λ_P · 2^16)``,
  ``u <- ((u · λ_fx) >> 16) + I`` (arithmetic shift = floor).
* **Fire** iff ``u > θ_int`` (strict), soft reset ``u <- u - θ_int``; all in one step.
* **Output population**: accumulates ``I`` (no leak, no threshold); the class is the argmax of
  the accumulated integers (lowest index on ties). ``acc · u_out / T`` is the float logit.

How this differs from the float model: the input is rounded to 8 bits, θ to a multiple of the
unit, the leak to 16 fractional bits with floor rounding of the product, and (where stated
above) a bias or a shortcut to a whole number of units; everything else is exact (the float
model's float32 sums round, the integer sums do not). So spikes may differ from the float
trace; the simulator reports how many, and the accuracy of both.

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
_RATIO_TOL = 1e-9  # relative slack when asking whether a unit ratio is a whole number


@dataclass
class IntegerLayer:
    """Integer parameters of one layer (a synapse edge or an identity shortcut)."""

    info: LayerInfo
    weight: np.ndarray  # int64 codes x ratio, the layer's weight shape (empty for an identity edge)
    scale: float  # Δ_l (1.0 for an identity edge)
    unit: float  # natural unit of its current (see the module docstring)
    ratio: int  # unit / its population's unit
    vmax: int  # largest |input value| the synapses read
    bias: np.ndarray | None  # int64 [C_out] in the population's unit, or None
    bias_exact: bool  # False where the bias was rounded into the population's unit
    identity_code: int  # c_id of an identity shortcut (0 for a synapse)


@dataclass
class IntegerPopulation:
    """Integer parameters of one population: its potential unit and neuron constants."""

    name: str
    unit: float  # u_P
    theta: int | None  # None for the output integrator
    leak_fx: int | None


@dataclass
class IntegerSpec:
    """Integer semantics of a quantized model (see the module docstring)."""

    layers: list[IntegerLayer]
    populations: dict[str, IntegerPopulation]
    input_scale: float  # Δ_x
    output: str  # the output integrator's population
    frac_bits: int = FRAC_BITS
    input_qmax: int = INPUT_QMAX

    @property
    def output_unit(self) -> float:
        """Value of one unit of the output integrator (the logit scale)."""
        return self.populations[self.output].unit

    def quantize_input_np(self, x: np.ndarray) -> np.ndarray:
        """``clamp(round(x / Δ_x), ±127)`` as int64 (computed in float64, half-to-even)."""
        q = np.rint(np.asarray(x, dtype=np.float64) / self.input_scale)
        return np.clip(q, -self.input_qmax, self.input_qmax).astype(np.int64)

    def quantize_input_torch(self, x: torch.Tensor) -> torch.Tensor:
        """Torch twin of :meth:`quantize_input_np`."""
        q = torch.round(x.to(torch.float64) / self.input_scale)
        return torch.clamp(q, -self.input_qmax, self.input_qmax).to(torch.int64)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary (units, ratios, thresholds, leaks, rounded biases and shortcuts)."""
        return {
            "input_scale": self.input_scale, "input_bits": INPUT_BITS, "frac_bits": self.frac_bits,
            "layers": [{"name": lay.info.name, "population": lay.info.target, "scale": lay.scale, "unit": lay.unit,
                        "ratio": lay.ratio, "theta_int": self.populations[lay.info.target].theta,
                        "leak_fx": self.populations[lay.info.target].leak_fx,
                        "bias_exact": lay.bias_exact if lay.bias is not None else None,
                        "identity_code": lay.identity_code or None} for lay in self.layers],
            "populations": [{"name": p.name, "unit": p.unit, "theta_int": p.theta, "leak_fx": p.leak_fx}
                            for p in self.populations.values()],
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


def check_integer_neurons(model: Model) -> None:
    """Refuse, in one line, neurons the integer datapath above does not model: it runs LIF/IF
    with soft reset, firing on ``>``, one threshold per population (no CubaLIF: its synaptic
    current is a second state the integer datapath has no unit for)."""
    for pop in model.populations:
        node = model.graph.nodes[pop.name]
        if pop.kind == "CubaLIF":
            raise SnnsimError(f"integer replay has no synaptic-current state; population {pop.name!r} of model "
                              f"{model.name!r} is a CubaLIF", "use --functional float for this model")
        if pop.spiking and (getattr(node, "reset", "subtract") != "subtract" or getattr(node, "fire", ">") != ">"
                            or getattr(node, "per_channel", False)):
            raise SnnsimError(f"integer replay runs soft-reset, '>'-firing neurons with one threshold per population; "
                              f"population {pop.name!r} of model {model.name!r} is not one",
                              "use --functional float for this model")


def _whole(ratio: float) -> int | None:
    """``ratio`` as a whole number if it is one (within float rounding of the units), else None."""
    r = round(ratio)
    return int(r) if r >= 1 and abs(ratio - r) <= _RATIO_TOL * ratio else None


def integer_spec(model: Model, input_scale: float | None = None, input_absmax: float | None = None,
                 timesteps: int | None = None) -> IntegerSpec:
    """Integer parameters of a quantized model (module docstring); refuses unquantized models,
    neurons the datapath does not model, layers of one population whose units are not whole
    multiples of each other, and overflow risks."""
    q = model.quantization
    if not q or "int_weights" not in q or "scales" not in q:
        raise SnnsimError("integer simulation needs a quantized model (model.quantization is empty)",
                          "quantize it first with `snnsim quantize --bits K`")
    check_integer_neurons(model)
    normed = next((i for i in model.layer_infos if i.norm), None)
    if normed is not None:
        raise SnnsimError(f"population {normed.target!r} normalises its input with the unfolded BatchNorm2d "
                          f"{normed.norm!r}; integer replay has no per-channel multiply", "use --functional float for this model")
    scale_of = dict(q["scales"])
    synapse_names = {i.name for i in model.layer_infos if i.kind != "identity"}
    if set(scale_of) != synapse_names:
        raise SnnsimError(f"quantization has {len(scale_of)} scales for {len(synapse_names)} synapse layers",
                          "re-run `snnsim quantize`")
    dx = float(input_scale) if input_scale else default_input_scale(model, input_absmax)
    steps = int(timesteps or model.timesteps)
    infos = list(model.layer_infos)

    def natural_unit(info: LayerInfo) -> float:
        if info.kind == "identity":
            if info.analog_input:
                raise SnnsimError(f"layer {info.name!r} adds the analog input to a population; integer replay adds "
                                  "spikes only", "use --functional float for this model")
            return 1.0
        kk = info.pool_kernel ** 2 if info.pool == "avg" else 1  # average pooling divides by k^2
        return float(scale_of[info.name]) * (dx if info.analog_input else 1.0) / kk

    units = [natural_unit(info) for info in infos]
    pops: dict[str, IntegerPopulation] = {}
    for pop in model.populations:
        synapse_units = [units[li] for li in pop.layers if infos[li].kind != "identity"]
        if not synapse_units:
            raise SnnsimError(f"population {pop.name!r} is driven by identity shortcuts only", "use --functional float")
        unit = min(synapse_units)
        theta = leak_fx = None
        if pop.spiking:
            theta = max(1, int(round(model.threshold(pop.name).item() / unit)))
            leak_fx = int(round(model.leak(pop.name).item() * (1 << FRAC_BITS)))
        pops[pop.name] = IntegerPopulation(pop.name, unit, theta, leak_fx)
    output = next(p.name for p in model.populations if not p.spiking)

    layers: list[IntegerLayer] = []
    for info, syn_unit in zip(infos, units, strict=True):
        pop = pops[info.target]
        if info.kind == "identity":
            code = max(1, int(round(1.0 / pop.unit)))
            layers.append(IntegerLayer(info, np.zeros(0, dtype=np.int64), 1.0, 1.0, 1, 1, None, True, code))
            continue
        ratio = _whole(syn_unit / pop.unit)
        if ratio is None:
            raise SnnsimError(f"layer {info.name!r} drives population {info.target!r} in units {syn_unit:.6g}, not a "
                              f"whole multiple of the population's {pop.unit:.6g}: integer replay needs one potential "
                              "unit per population", "re-quantize with `snnsim quantize` (one scale per population)")
        key = f"{info.name}.weight"
        if key not in q["int_weights"]:
            raise SnnsimError(f"quantization record lacks {key!r}", "re-run `snnsim quantize`")
        codes = torch.as_tensor(q["int_weights"][key]).cpu().numpy().astype(np.int64)
        if tuple(codes.shape) != tuple(info.weight_shape()):
            raise SnnsimError(f"integer weights of layer {info.name!r} have shape {tuple(codes.shape)}, expected "
                              f"{info.weight_shape()}", "re-run `snnsim quantize`")
        bias = None
        exact = True
        if info.bias:
            bkey = f"{info.name}.bias"
            if bkey not in q["int_weights"]:
                raise SnnsimError(f"quantization record lacks {bkey!r}", "re-run `snnsim quantize`")
            bcodes = torch.as_tensor(q["int_weights"][bkey]).cpu().numpy().astype(np.int64)
            factor = float(scale_of[info.name]) / pop.unit
            whole = _whole(factor)
            exact = whole is not None
            bias = bcodes * whole if whole is not None else np.rint(bcodes * factor).astype(np.int64)
        vmax = INPUT_QMAX if info.analog_input else len(info.sources) * (
            info.pool_kernel ** 2 if info.pool in ("avg", "sum") else 1)
        layers.append(IntegerLayer(info, codes * ratio, float(scale_of[info.name]), syn_unit, ratio, int(vmax), bias,
                                   exact, 0))
    _check_overflow(model, layers, pops, steps)
    return IntegerSpec(layers, pops, dx, output)


def _check_overflow(model: Model, layers: list[IntegerLayer], pops: dict[str, IntegerPopulation], steps: int) -> None:
    """|current| <= Σ over a population's layers of vmax * max_out Σ|W| (+ |bias|, + c_id); the
    potentials stay within θ + T * that bound, which times λ_fx must fit int64, and every sum
    must stay exact in the float64 reference."""
    for pop in model.populations:
        bound = 0
        for li in pop.layers:
            lay = layers[li]
            if lay.info.kind == "identity":
                bound += lay.identity_code
                continue
            w = lay.weight
            fan_abs = int(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0
            bound += lay.vmax * fan_abs + (int(np.abs(lay.bias).max()) if lay.bias is not None and lay.bias.size else 0)
        ip = pops[pop.name]
        pot_bound = (ip.theta or 0) + steps * bound
        if bound >= 2 ** 52 or pot_bound * (1 << (FRAC_BITS + 1)) >= 2 ** 63:
            raise SnnsimError(f"population {pop.name!r}: integer potentials could overflow int64 ({pot_bound:.3g} units)",
                              "use fewer weight bits or fewer timesteps")


def _layer_current_torch(lay: IntegerLayer, v: torch.Tensor) -> torch.Tensor:
    """The exact integer current (int64) of one layer on its source values ``v`` (int64)."""
    info = lay.info
    if info.kind == "identity":
        return v.to(torch.int64) * lay.identity_code
    x = v.to(torch.float64)
    if info.pool in ("avg", "sum"):
        x = F.avg_pool2d(x, info.pool_kernel, divisor_override=1)
    elif info.pool == "max":
        x = F.max_pool2d(x, info.pool_kernel)
    if info.flatten:
        x = x.flatten(1)
    w = torch.from_numpy(lay.weight).to(torch.float64)
    if info.kind == "conv":
        cur = F.conv2d(x, w, stride=info.stride, padding=info.padding, dilation=info.dilation,
                       groups=info.groups)
    else:
        cur = F.linear(x, w)
    out = torch.round(cur).to(torch.int64)
    if lay.bias is not None:
        b = torch.from_numpy(lay.bias)
        out = out + (b.view(1, -1, 1, 1) if out.dim() == 4 else b.view(1, -1))
    return out


def integer_forward(model: Model, x: torch.Tensor, spec: IntegerSpec, timesteps: int | None = None,
                    observer: Observer | None = None) -> torch.Tensor:
    """PyTorch integer reference of the quantized SNN: returns int64 accumulated output [B, classes].
    ``x`` is [B, *input shape] (fed at every step) or [B, T, *input shape] (one per step, e.g. a
    Poisson model's spikes with ``spec`` built for an input scale of 1).

    Populations run in schedule order at every timestep; each sums the exact integer currents
    of its layers (module docstring). ``observer`` receives
    :class:`~snnsim.models.PopulationEvent` objects with int64 ``current`` and ``potential``
    (before reset) and float spikes, exactly like ``GraphNet.forward_snn``.
    """
    steps = int(timesteps or model.timesteps)
    per_step = x.dim() == len(model.input_shape) + 2  # one input per timestep [B, T, *input shape]
    x_int = spec.quantize_input_torch(x.detach().cpu())
    pots: dict[str, torch.Tensor] = {}
    acc: torch.Tensor | None = None
    for t in range(steps):
        spikes: dict[str, torch.Tensor] = {}
        for pop in model.populations:
            cur: torch.Tensor | None = None
            for li in pop.layers:
                lay = spec.layers[li]
                if lay.info.analog_input:
                    v = x_int[:, t] if per_step else x_int
                else:  # a SEW add: the sum of its populations' spikes
                    v = sum(spikes[p] for p in lay.info.sources)
                c = _layer_current_torch(lay, v)
                cur = c if cur is None else cur + c
            assert cur is not None
            ip = spec.populations[pop.name]
            if not pop.spiking:
                acc = cur if acc is None else acc + cur
                if observer is not None:
                    observer(PopulationEvent(pop.name, pop.kind, pop.index, t, cur, acc, None))
                continue
            assert ip.theta is not None and ip.leak_fx is not None
            u_prev = pots.get(pop.name, torch.zeros_like(cur))
            u = torch.bitwise_right_shift(u_prev * ip.leak_fx, spec.frac_bits) + cur
            s = u > ip.theta
            if observer is not None:
                observer(PopulationEvent(pop.name, pop.kind, pop.index, t, cur, u, s.to(torch.float32)))
            pots[pop.name] = u - ip.theta * s.to(torch.int64)
            spikes[pop.name] = s.to(torch.int64)
    assert acc is not None
    return acc


def float_logits(acc: np.ndarray | torch.Tensor, spec: IntegerSpec, timesteps: int) -> np.ndarray:
    """Float logits ``acc · u_out / T`` of integer output accumulations."""
    return np.asarray(acc, dtype=np.float64) * spec.output_unit / timesteps


def theta_error(spec: IntegerSpec, model: Model) -> float:
    """Largest relative rounding error of the integer thresholds (a quick sanity figure)."""
    errs = [abs(p.theta * p.unit - model.threshold(p.name).item()) / model.threshold(p.name).item()
            for p in spec.populations.values() if p.theta is not None]
    return max(errs) if errs else 0.0


__all__ = ["FRAC_BITS", "INPUT_BITS", "IntegerLayer", "IntegerPopulation", "IntegerSpec", "check_integer_neurons",
           "default_input_scale", "float_logits", "integer_forward", "integer_spec", "theta_error"]
