"""Plain numpy/PyTorch references of the numba kernels, for tests and cross-checks.

They compute the same quantities the dense way, sharing no code with the kernels:

* fan-out maps as the gradient of ``sum(conv(x))`` w.r.t. ``x`` (each input's synapse count);
* pooled multiplicities by sum pooling (average pooling) or max pooling of the unpacked spikes;
* per-layer counts by convolving the multiplicity map with an all-ones kernel (synaptic ops per
  output, summed = syn_ops), with the nonzero-weight mask (syn_ops_nz), and thresholding the
  all-ones result (touched neurons); every conv is ``F.conv2d`` with the layer's stride,
  padding, ``dilation`` and ``groups``, so a grouped output channel sees its group's events only;
* functional steps with torch ops in the model's own arithmetic (every LIF / IF variant: soft or
  hard reset, ``>`` or ``>=``, one threshold or one per neuron; a CubaLIF's synaptic current
  in front of it, :func:`cuba_step_ref`);
* a layer's currents (:func:`layer_currents_ref`) as a float64 ``conv2d`` / ``linear`` with its
  bias, and a population's run over all timesteps (:func:`population_steps_ref`) as a loop of
  the reference LIF step.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from snnsim.arch import LayerInfo


def unpack(packed: np.ndarray, source_shape: tuple[int, ...]) -> np.ndarray:
    """Packed [n, T, nbytes] -> float64 [n, T, *source_shape] of 0/1."""
    size = int(np.prod(source_shape))
    bits = np.unpackbits(np.asarray(packed), axis=2, count=size).astype(np.float64)
    return bits.reshape(*packed.shape[:2], *source_shape)


def pack(bits: np.ndarray) -> np.ndarray:
    """Bool/0-1 [n, T, *shape] -> packed [n, T, nbytes] (the trace layout)."""
    b = np.asarray(bits).reshape(bits.shape[0], bits.shape[1], -1) != 0
    return np.packbits(b, axis=2)


def fanout_ref(info: LayerInfo, weight: torch.Tensor | None = None) -> np.ndarray:
    """Synapses driven per pooled input site (flattened (C, H, W)); nonzero weights only if
    ``weight`` is given, else all weights."""
    shape = info.in_shape
    x = torch.zeros((1, *shape), dtype=torch.float64, requires_grad=True)
    if info.kind == "conv":
        w = torch.ones(info.weight_shape(), dtype=torch.float64) if weight is None else (weight != 0).to(torch.float64)
        out = F.conv2d(x, w, stride=info.stride, padding=info.padding, dilation=info.dilation, groups=info.groups)
    else:
        w = torch.ones(info.weight_shape(), dtype=torch.float64) if weight is None else (weight != 0).to(torch.float64)
        out = F.linear(x.reshape(1, -1), w)
    out.sum().backward()
    assert x.grad is not None
    return x.grad.reshape(-1).numpy().round().astype(np.int64)


def multiplicity_ref(info: LayerInfo, events: torch.Tensor) -> torch.Tensor:
    """Pooled multiplicities [B, *in_shape] of source events [B, *source_shape] (float64)."""
    m = events.to(torch.float64)
    if info.pool in ("avg", "sum"):
        m = F.avg_pool2d(m, info.pool_kernel, divisor_override=1)
    elif info.pool == "max":
        m = F.max_pool2d(m, info.pool_kernel)
    return m.reshape(m.shape[0], *info.in_shape)


def _apply(info: LayerInfo, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    if info.kind == "conv":
        return F.conv2d(m, w, stride=info.stride, padding=info.padding, dilation=info.dilation, groups=info.groups)
    return F.linear(m.reshape(m.shape[0], -1), w)


def counts_ref(info: LayerInfo, weight: torch.Tensor, events: np.ndarray, analog: bool = False) -> dict[str, np.ndarray]:
    """Reference counts of one layer per (sample, timestep).

    ``events``: [n, T, *source_shape] spikes, or for the analog layer (``analog=True``) the
    input values [n, *source_shape] (same every timestep; results are then [n]).
    Returns dict of int64 arrays: events, syn, syn_nz, touched, nb_eff, nb_binary, sites.
    """
    ev = torch.as_tensor(np.array(events, dtype=np.float64))
    lead = ev.shape[:1] if analog else ev.shape[:2]
    flat = ev.reshape(-1, *info.source_shape)
    if analog:
        m = (flat != 0).to(torch.float64).reshape(flat.shape[0], *info.in_shape)
        binary = ((flat == 0) | (flat == 1) | (flat == -1)).reshape(flat.shape[0], -1).all(dim=1)
    else:
        m = multiplicity_ref(info, flat)
        one = info.pool_kernel ** 2 if info.pool == "avg" else 1  # the multiplicity of the value 1
        binary = ((m == 0) | (m == one)).reshape(m.shape[0], -1).all(dim=1)
    ones = torch.ones(info.weight_shape(), dtype=torch.float64)
    nzw = (weight.detach().to(torch.float64) != 0).to(torch.float64)
    per_out = _apply(info, m, ones)
    out = {
        "events": m.reshape(m.shape[0], -1).sum(dim=1),
        "syn": per_out.reshape(m.shape[0], -1).sum(dim=1),
        "syn_nz": _apply(info, m, nzw).reshape(m.shape[0], -1).sum(dim=1),
        "touched": (per_out > 0).reshape(m.shape[0], -1).sum(dim=1).to(torch.float64),
        "nb_eff": _apply(info, (m != 0).to(torch.float64), nzw).reshape(m.shape[0], -1).sum(dim=1),
        "nb_binary": binary.to(torch.float64),
        "sites": (m != 0).reshape(m.shape[0], -1).sum(dim=1).to(torch.float64),
    }
    return {k: v.round().to(torch.int64).reshape(*lead).numpy() for k, v in out.items()}


def lif_step_ref(u: torch.Tensor, cur: torch.Tensor, leak: torch.Tensor, theta: torch.Tensor,
                 v_reset: float | None = None, fire: str = ">") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The model's float LIF step in torch, written as ``GraphNet.forward_snn`` writes it:
    (potential before reset, spikes, new potential). ``leak`` / ``theta`` broadcast (one value
    or one per neuron); ``fire`` '>' or '>='; ``v_reset`` None: soft reset ``u - theta*s``,
    else the hard reset ``u*(1 - s) + v_reset*s``."""
    v = leak * u + cur
    z = v / theta - 1.0
    s = (z >= 0 if fire == ">=" else z > 0).to(v.dtype)
    if v_reset is None:
        return v, s, v - theta * s
    return v, s, v * (1.0 - s) + float(v_reset) * s


def cuba_step_ref(u: torch.Tensor, i: torch.Tensor, cur: torch.Tensor, leak: torch.Tensor, alpha: torch.Tensor,
                  theta: torch.Tensor, v_reset: float | None = None, fire: str = ">"
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The model's float CubaLIF step: the synaptic current ``i <- alpha*i + cur`` first, then
    :func:`lif_step_ref` on it. Returns (potential before reset, spikes, new potential, new
    synaptic current); ``i`` is not reset."""
    i_new = alpha * i + cur
    v, s, new = lif_step_ref(u, i_new, leak, theta, v_reset, fire)
    return v, s, new, i_new


def lif_step_int_ref(u: torch.Tensor, cur: torch.Tensor, leak_fx: int, frac_bits: int, theta: int,
                     v_reset: int | None = None, fire: str = ">") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The integer LIF step in torch int64: (potential before reset, spikes, new potential);
    ``fire`` and ``v_reset`` as in :func:`lif_step_ref` (the hard reset sets ``v_reset``)."""
    v = torch.bitwise_right_shift(u * leak_fx, frac_bits) + cur
    s = v >= theta if fire == ">=" else v > theta
    if v_reset is None:
        return v, s, v - theta * s.to(torch.int64)
    return v, s, torch.where(s, torch.full_like(v, int(v_reset)), v)


def scatter_ref(info: LayerInfo, vals: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Dense reference of the scatter kernels: the layer's current for pooled values [B, *in_shape]."""
    return _apply(info, vals, weight.to(vals.dtype))


def layer_currents_ref(info: LayerInfo, weight: torch.Tensor | np.ndarray | None,
                       bias: torch.Tensor | np.ndarray | None, values: np.ndarray | torch.Tensor,
                       steps: int | None = None) -> np.ndarray:
    """Dense reference of :func:`snnsim.sim.kernels.layer_currents` (and of an identity edge's
    current): float64 [n, T, neurons] in (C, H, W) order.

    ``values`` [n, Tv, S] are the values the synapses read per pooled site (what
    :func:`snnsim.sim.replay.layer_values` returns; Tv = 1 for the analog input, repeated over the
    ``steps`` timesteps, default Tv). A conv / linear layer is ``F.conv2d`` / ``F.linear`` in
    float64 with ``bias`` (None: no bias); an identity edge passes the values through.
    """
    v = torch.as_tensor(np.asarray(values)).to(torch.float64)
    n, tv = v.shape[:2]
    steps = tv if steps is None else int(steps)
    if tv not in (1, steps):
        raise ValueError(f"values have {tv} timesteps, expected 1 or {steps}")
    flat = v.reshape(n * tv, *info.in_shape)
    if info.kind == "identity":
        cur = flat
    else:
        assert weight is not None
        w = torch.as_tensor(np.asarray(weight)).to(torch.float64)
        b = None if bias is None else torch.as_tensor(np.asarray(bias)).to(torch.float64)
        if info.kind == "conv":
            cur = F.conv2d(flat, w, b, stride=info.stride, padding=info.padding, dilation=info.dilation,
                           groups=info.groups)
        else:
            cur = F.linear(flat.reshape(n * tv, -1), w, b)
    out = cur.reshape(n, tv, -1)
    if tv != steps:
        out = out.expand(n, steps, out.shape[2])
    return out.contiguous().numpy()


def population_steps_ref(current: np.ndarray | torch.Tensor, leak, theta, spiking: bool, frac_bits: int | None = None,
                         v_reset: float | None = None, fire: str = ">", alpha=None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reference of :func:`snnsim.sim.kernels.population_steps`: one population over all
    timesteps of its summed current [n, T, N], step by step with :func:`lif_step_ref` (float,
    ``frac_bits`` None: ``leak``/``theta`` in the current's dtype, one value or one per neuron)
    or :func:`lif_step_int_ref` (int64: ``leak`` the fixed-point leak), or accumulated for the
    output integrator; ``v_reset`` / ``fire`` as there. ``alpha`` (float only): a CubaLIF
    population's synaptic decay, stepped by :func:`cuba_step_ref` (a neuron has changed when its
    potential or its synaptic current did).

    Returns ``(spikes bool [n, T, N] (all False for the integrator), potentials [n, T, N]
    (before reset; the running sum for the integrator), changed int64 [n, T] (neurons whose
    potential changed over the step; every neuron at t = 0 for the integrator), acc [n, N]
    (the integrator's sum; [n, 0] for a spiking population))``.
    """
    cur = torch.as_tensor(np.asarray(current))
    n, steps, neurons = cur.shape
    u = torch.zeros((n, neurons), dtype=cur.dtype)
    spikes = torch.zeros((n, steps, neurons), dtype=torch.bool)
    pots = torch.zeros((n, steps, neurons), dtype=cur.dtype)
    changed = torch.zeros((n, steps), dtype=torch.int64)
    syn = torch.zeros((n, neurons), dtype=cur.dtype)
    for t in range(steps):
        if not spiking:
            new = u + cur[:, t]
            changed[:, t] = neurons if t == 0 else (new != u).sum(dim=1)
            u = new
            pots[:, t] = u
            continue
        moved = torch.zeros((n, neurons), dtype=torch.bool)
        if frac_bits is None and alpha is not None:
            v, s, new, syn_new = cuba_step_ref(u, syn, cur[:, t], torch.tensor(leak, dtype=cur.dtype),
                                               torch.tensor(alpha, dtype=cur.dtype),
                                               torch.tensor(theta, dtype=cur.dtype), v_reset, fire)
            moved, syn = syn_new != syn, syn_new
        elif frac_bits is None:
            v, s, new = lif_step_ref(u, cur[:, t], torch.tensor(leak, dtype=cur.dtype), torch.tensor(theta, dtype=cur.dtype),
                                     v_reset, fire)
        else:
            v, s, new = lif_step_int_ref(u, cur[:, t], int(leak), int(frac_bits), int(theta),
                                         None if v_reset is None else int(v_reset), fire)
        spikes[:, t] = s != 0
        pots[:, t] = v
        changed[:, t] = ((new != u) | moved).sum(dim=1)
        u = new
    acc = u if not spiking else torch.zeros((n, 0), dtype=cur.dtype)
    return spikes.numpy(), pots.numpy(), changed.numpy(), acc.numpy()
