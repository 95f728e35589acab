"""Numba kernels of the event-driven simulator: small, typed, pure functions on arrays.

Every kernel has a plain numpy/PyTorch counterpart in :mod:`snnsim.sim.reference` that the
tests compare it with. Conventions shared by all kernels:

* An input *source map* is the pre-pool map of a layer's input events, flattened in (C, H, W)
  order; a 1-D source (F,) is treated as (F, 1, 1). Spike maps are bit-packed with
  ``np.packbits`` (big-endian bit order: element ``j`` is bit ``7 - j % 8`` of byte ``j // 8``).
* ``pool_mode``: 0 = no pooling, 1 = average pooling folded into the layer, 2 = max pooling
  (an OR of the k x k spikes), 3 = sum pooling (average pooling without the 1/k^2). The *pooled sites* are the (C, H // k, W // k) positions the
  synapses read; a spike in a row/column that floor-pooling drops drives nothing.
* The *multiplicity* of a pooled site is the number of events it delivers: the number of
  spikes in its window for average and sum pooling (each spike drives the site's synapses once,
  with weights scaled by 1/k^2 for average pooling: these are ACs), 1 if any spike for max
  pooling, the bit itself without pooling.
* A fan-out map gives, per pooled site, the number of synapses an event there drives (conv:
  output positions whose kernel window covers it through a real tap, exact at borders, times
  the output channels of its group, C_out / groups; linear: the out features); the ``_nz``
  variant counts only nonzero weights.
* Conv geometry: ``k`` x ``k`` taps, ``stride``, ``padding``, ``dilation`` (tap ``ky`` reads
  input offset ``ky * dilation``) and ``groups`` (input channel ``c`` drives only the
  C_out / groups output channels of its group ``c // (C_in / groups)``). Every conv kernel
  takes ``groups`` and ``dilation`` as trailing arguments that default to 1; with both 1 the
  scatter and touched-neuron loops are the ones of before they existed (``scatter_conv``'s
  stride-1 fast path included) and every count and float is the same (the VGG path); grouped
  or dilated convs run :func:`scatter_grouped` and :func:`touched_dilated`.
* Conv output buffers inside the functional kernels are (H_out, W_out, C_out) so the innermost
  scatter loop is contiguous; everything returned is in (C, H, W) order. Conv weights are
  laid out (C_in, k, k, C_out / groups): input channel ``c``'s tap (ky, kx) holds the weights
  to its group's output channels, contiguous.
* One kernel serves float and int64 arrays: numba compiles it once per argument type. Float
  site values come as float32 (float32 sums) or as float32 values held in float64 (float64
  sums, each step's current rounded to float32 once: the functional replay's, see
  :func:`functional_layer`); neuron state is float32 for both. An
  optional argument passed as ``None`` (``frac_bits`` of a float layer, ``divisor``, ``b``,
  ``v_reset`` of a soft reset) removes its branch at compile time.
* Neurons (:func:`lif_step`): ``leak`` and ``theta`` are one value for the whole population or
  one per neuron (1-D arrays in the kernel's neuron order); ``v_reset`` None is the soft reset
  (subtract the threshold), a value the hard reset to it; ``fire_ge`` fires at ``u >= theta``
  instead of ``u > theta``. The defaults are soft reset, ``>``, and the float path is
  bit-for-bit the PyTorch model's LIF step (``snnsim.graph.torch_net``) in every variant.
  A CubaLIF population passes ``alpha`` (its synaptic decay, one value or one per neuron) and a
  synaptic-current buffer ``syn``: ``i <- alpha*i + cur`` first, then the LIF step on ``i``.
  Every other population passes ``alpha=None``, which removes that branch at compile time.

Everything is compiled with ``cache=True`` so the compile cost is paid once per machine.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

# Number of set bits of every byte value.
POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)

# Columns of the per-(sample, timestep) count arrays returned by the counting kernels.
COL_EVENTS = 0  # events delivered to the synapses (multiplicity-weighted)
COL_SYN = 1  # synaptic ops, all weights
COL_SYN_NZ = 2  # synaptic ops, nonzero weights only
COL_TOUCHED = 3  # output neurons receiving >= 1 synaptic op
COL_NB_EFF = 4  # NeuroBench effective ops: binarized input (nonzero pooled sites) x nonzero weights
COL_NB_BINARY = 5  # 1 if every value the layer reads is in {-1, 0, 1} (NeuroBench's AC test)
COL_SITES = 6  # nonzero pooled sites (the nonzeros of the tensor the synapses read)
N_COLS = 7


# ---------------------------------------------------------------------------- conv geometry
@njit(inline="always")
def _taps(y: int, padding: int, k: int, stride: int, n_out: int) -> tuple[int, int, int]:
    """The taps of input coordinate ``y`` along one conv axis without dilation, as
    ``(first, count, o_first)``.

    Tap ``first + i * stride`` (i < count) reaches output ``o_first - i``; these are exactly the
    ``ky`` in [0, k) with ``(y + padding - ky) / stride`` an integer in [0, n_out), in ascending
    order, computed once per row/event instead of per tap (without any division for stride 1).
    """
    a = y + padding
    last = min(k - 1, a)
    if stride == 1:  # the common case, without divisions
        first = max(0, a - n_out + 1)
        return first, max(0, last - first + 1), a - first
    first = max(0, a - stride * (n_out - 1))
    first += (a - first) % stride
    count = (last - first) // stride + 1 if last >= first else 0
    return first, count, (a - first) // stride


@njit(inline="always")
def _tap_steps(stride: int, dilation: int) -> tuple[int, int]:
    """``(tap step, output step)`` between consecutive taps of one input coordinate of a
    dilated conv: taps ``ky`` and ``ky + stride / g`` reach outputs ``dilation / g`` apart,
    ``g = gcd(stride, dilation)`` (``(stride, 1)`` without dilation). Computed once per call."""
    a, b = stride, dilation
    while b:
        a, b = b, a % b
    return stride // a, dilation // a


@njit(inline="always")
def _dilated_taps(y: int, padding: int, k: int, stride: int, n_out: int, dilation: int,
                  tstep: int) -> tuple[int, int, int]:
    """:func:`_taps` for any dilation: tap ``first + i * tstep`` (i < count) reaches output
    ``o_first - i * ostep`` (``tstep``, ``ostep`` from :func:`_tap_steps`); these are exactly
    the ``ky`` in [0, k) with ``(y + padding - ky * dilation) / stride`` an integer in
    [0, n_out), in ascending order. Dilation 1 gives :func:`_taps`' taps (slower)."""
    a = y + padding
    # ky * dilation in [a - stride * (n_out - 1), a] and congruent to a modulo stride
    last = min(k - 1, a // dilation)
    low = a - stride * (n_out - 1)
    first = 0 if low <= 0 else (low + dilation - 1) // dilation
    for _ in range(tstep):  # the congruent taps are tstep apart: the first is among tstep candidates
        if (a - first * dilation) % stride == 0:
            break
        first += 1
    if first > last or (a - first * dilation) % stride != 0:
        return first, 0, 0
    return first, (last - first) // tstep + 1, (a - first * dilation) // stride


@njit(cache=True)
def conv_fanout(col_count: np.ndarray, h_in: int, w_in: int, h_out: int, w_out: int,
                stride: int, padding: int, dilation: int = 1) -> np.ndarray:
    """Fan-out per input site of a conv: ``fan[c, y, x] = sum over valid taps of col_count``.

    ``col_count[c, ky, kx]`` is the number of output channels an event at input channel ``c``
    reaches through tap (ky, kx): C_out / groups (its group's) for all weights, the nonzero
    count among them for ``_nz``. A tap is valid when ``oy = (y + padding - ky * dilation) /
    stride`` is an integer in [0, h_out) (and the same for x). Returns int64 of shape
    (C, h_in, w_in), flattened. (Built once per layer plan, with :func:`_dilated_taps` for
    every dilation.)
    """
    c_in, k, _ = col_count.shape
    tstep, _ostep = _tap_steps(stride, dilation)
    fan = np.zeros(c_in * h_in * w_in, dtype=np.int64)
    for c in range(c_in):
        for y in range(h_in):
            ky0, nky, _oy0 = _dilated_taps(y, padding, k, stride, h_out, dilation, tstep)
            for x in range(w_in):
                kx0, nkx, _ox0 = _dilated_taps(x, padding, k, stride, w_out, dilation, tstep)
                total = 0
                for i in range(nky):
                    for j in range(nkx):
                        total += col_count[c, ky0 + i * tstep, kx0 + j * tstep]
                fan[(c * h_in + y) * w_in + x] = total
    return fan


# ---------------------------------------------------------------------------- site multiplicities
@njit(cache=True)
def site_tables(c: int, h: int, w: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Index tables that replace per-event integer divisions in the hot loops.

    ``site_of[j]`` (int32, C*H*W): the pooled site ``(ch, y // k, x // k)`` of source site ``j``,
    -1 where floor pooling drops its row/column. ``spat[s]`` (int32, C*(H//k)*(W//k)): the
    spatial position ``s % ((H//k)*(W//k))`` of pooled site ``s``. ``k = 1``: no pooling.
    """
    hp = h // k
    wp = w // k
    site_of = np.full(c * h * w, -1, dtype=np.int32)
    for ch in range(c):
        for y in range(hp * k):
            py = y // k
            for x in range(wp * k):
                site_of[(ch * h + y) * w + x] = (ch * hp + py) * wp + x // k
    hw_p = hp * wp
    spat = np.empty(c * hw_p, dtype=np.int32)
    for s in range(c * hw_p):
        spat[s] = s % hw_p
    return site_of, spat


@njit(inline="always")
def _collect_sites(bits: np.ndarray, n_src: int, site_of: np.ndarray, pool_mode: int,
                   mult: np.ndarray, touched) -> int:
    """One pass over the set bits of one packed source map (``n_src`` sites, through the
    ``site_of`` table of :func:`site_tables`): ``mult[s]`` becomes the multiplicity of every
    pooled site ``s``. ``mult`` must be all zero on entry. Unless ``touched`` is None, the
    sites with an event are also listed there, in order of first event; returns how many
    (0 without a list: :func:`site_values` scans every site anyway and was ~7% slower with it).
    """
    nt = 0
    for byte_i in range(bits.shape[0]):
        b = bits[byte_i]
        if b == 0:
            continue
        base = byte_i * 8
        for bit in range(8):
            if b & (128 >> bit):
                j = base + bit
                if j >= n_src:
                    break
                s = site_of[j]
                if s < 0:
                    continue
                if touched is None:
                    if pool_mode == 2:
                        mult[s] = 1
                    else:
                        mult[s] += 1
                    continue
                m = mult[s]
                if m == 0:
                    touched[nt] = s
                    nt += 1
                    mult[s] = 1
                elif pool_mode != 2:
                    mult[s] = m + 1
    return nt


@njit(cache=True, parallel=True)
def site_values(packed: np.ndarray, c: int, h: int, w: int, pool_mode: int, k: int, dtype,
                divisor=None) -> np.ndarray:
    """Values the synapses read per pooled site, packed maps ``[n, T, nbytes]`` -> ``dtype``
    [n, T, S]: the multiplicity, divided by ``divisor`` unless it is None.

    float32 with a float32 ``divisor`` gives the same numbers as
    ``multiplicities.astype(np.float32) / divisor`` (one float32 division, as numpy does it),
    built in parallel without an integer intermediate.
    """
    n, steps, _ = packed.shape
    s_count = c * (h // k) * (w // k)
    site_of, _spat = site_tables(c, h, w, k)
    out = np.empty((n, steps, s_count), dtype=dtype)
    for i in prange(n):
        if pool_mode == 0:  # no pooling: every multiplicity is a bit, unpacked directly
            for t in range(steps):
                bits = packed[i, t]
                row = out[i, t]
                for j in range(s_count):
                    row[j] = (bits[j >> 3] >> (7 - (j & 7))) & 1
                    if divisor is not None:
                        row[j] = row[j] / divisor
            continue
        mult = np.zeros(s_count, dtype=np.int32)
        for t in range(steps):
            _collect_sites(packed[i, t], c * h * w, site_of, pool_mode, mult, None)
            row = out[i, t]
            for s in range(s_count):  # a dense scan: faster here than a list of touched sites
                m = mult[s]
                mult[s] = 0
                row[s] = m
                if divisor is not None:
                    row[s] = row[s] / divisor
    return out


def sites_from_packed(packed: np.ndarray, c: int, h: int, w: int, pool_mode: int, k: int) -> np.ndarray:
    """Multiplicities of every pooled site for packed maps ``[n, T, nbytes]`` -> int32 [n, T, S]."""
    return site_values(packed, c, h, w, pool_mode, k, np.int32)


# ---------------------------------------------------------------------------- counting
@njit(cache=True)
def touched_conv(spatial: np.ndarray, hp: int, wp: int, h_out: int, w_out: int, k: int,
                 stride: int, padding: int, outmark: np.ndarray) -> int:
    """Number of conv output positions whose window holds at least one marked input position.

    ``spatial`` (bool, hp*wp) marks input positions carrying an event in any channel (of one
    group); ``outmark`` (bool, h_out*w_out) is scratch. This is the dilation of the event map by
    the kernel, exact at borders and for any stride (a dilated conv: :func:`touched_dilated`).
    """
    outmark[:] = False
    for y in range(hp):
        _ky0, nky, oy0 = _taps(y, padding, k, stride, h_out)
        for x in range(wp):
            if not spatial[y * wp + x]:
                continue
            _kx0, nkx, ox0 = _taps(x, padding, k, stride, w_out)
            for oy in range(oy0 - nky + 1, oy0 + 1):
                for ox in range(ox0 - nkx + 1, ox0 + 1):
                    outmark[oy * w_out + ox] = True
    count = 0
    for i in range(outmark.shape[0]):
        if outmark[i]:
            count += 1
    return count


@njit(cache=True)
def touched_dilated(spatial: np.ndarray, hp: int, wp: int, h_out: int, w_out: int, k: int,
                    stride: int, padding: int, dilation: int, outmark: np.ndarray) -> int:
    """:func:`touched_conv` of a dilated conv: the output positions with a marked input position
    on one of their real taps (input offset ``ky * dilation``)."""
    outmark[:] = False
    tstep, ostep = _tap_steps(stride, dilation)
    for y in range(hp):
        _ky0, nky, oy0 = _dilated_taps(y, padding, k, stride, h_out, dilation, tstep)
        for x in range(wp):
            if not spatial[y * wp + x]:
                continue
            _kx0, nkx, ox0 = _dilated_taps(x, padding, k, stride, w_out, dilation, tstep)
            for iy in range(nky):
                orow = (oy0 - iy * ostep) * w_out + ox0
                for ix in range(nkx):
                    outmark[orow - ix * ostep] = True
    count = 0
    for i in range(outmark.shape[0]):
        if outmark[i]:
            count += 1
    return count


@njit(inline="always")
def _touched(spatial: np.ndarray, hp: int, wp: int, h_out: int, w_out: int, k: int, stride: int,
             padding: int, dilation: int, outmark: np.ndarray) -> int:
    if dilation == 1:
        return touched_conv(spatial, hp, wp, h_out, w_out, k, stride, padding, outmark)
    return touched_dilated(spatial, hp, wp, h_out, w_out, k, stride, padding, dilation, outmark)


@njit(inline="always")
def _store_counts(row: np.ndarray, events: int, syn: int, syn_nz: int, nb_eff: int, binary: int,
                  sites: int, spatial: np.ndarray, hp: int, wp: int, is_conv: bool, h_out: int,
                  w_out: int, ksize: int, stride: int, padding: int, n_out: int,
                  outmark: np.ndarray, groups: int, dilation: int) -> None:
    """Write one (sample, timestep)'s counts into ``row[0:7]``; the touched neurons are the
    output positions reached from ``spatial`` times C_out for a conv (grouped: per group, the
    positions reached from its block ``spatial[g*hp*wp:(g+1)*hp*wp]`` times C_out / groups),
    every output for a linear layer (none without events)."""
    row[COL_EVENTS] = events
    row[COL_SYN] = syn
    row[COL_SYN_NZ] = syn_nz
    row[COL_NB_EFF] = nb_eff
    row[COL_NB_BINARY] = binary
    row[COL_SITES] = sites
    if events == 0:
        row[COL_TOUCHED] = 0
    elif is_conv and groups == 1:
        row[COL_TOUCHED] = n_out * _touched(spatial, hp, wp, h_out, w_out, ksize, stride, padding,
                                            dilation, outmark)
    elif is_conv:
        hw_p = hp * wp
        total = 0
        for g in range(groups):
            total += _touched(spatial[g * hw_p:(g + 1) * hw_p], hp, wp, h_out, w_out, ksize, stride,
                              padding, dilation, outmark)
        row[COL_TOUCHED] = (n_out // groups) * total
    else:
        row[COL_TOUCHED] = n_out


@njit(inline="always")
def _count_unpooled(bits: np.ndarray, n_src: int, spat: np.ndarray, fan: np.ndarray,
                    fan_nz: np.ndarray, spatial: np.ndarray) -> tuple[int, int, int]:
    """Events, synaptic ops and nonzero-weight ops of one unpooled packed map in a single pass
    over its bits; marks ``spatial`` (cleared here) at each event's position ``spat[j]``.

    Not folded into :func:`_collect_sites` (with ``mult = 1`` per event): that second pass
    over the events made counting unpooled layers 1.6x slower.
    """
    spatial[:] = False
    events = 0
    syn = 0
    syn_nz = 0
    for byte_i in range(bits.shape[0]):
        b = bits[byte_i]
        if b == 0:
            continue
        base = byte_i * 8
        for bit in range(8):
            if b & (128 >> bit):
                j = base + bit
                if j >= n_src:
                    break
                events += 1
                syn += fan[j]
                syn_nz += fan_nz[j]
                spatial[spat[j]] = True
    return events, syn, syn_nz


@njit(inline="always")
def _tally_pooled(touched: np.ndarray, nt: int, mult: np.ndarray, pool_mode: int, kk: int,
                  fan: np.ndarray, fan_nz: np.ndarray, spat: np.ndarray,
                  spatial: np.ndarray) -> tuple[int, int, int, int, int]:
    """Events, synaptic ops, nonzero-weight ops, NeuroBench effective ops and binary flag of
    the ``nt`` pooled sites listed by :func:`_collect_sites`; marks ``spatial`` (cleared here)
    and leaves ``mult`` all zero again. ``kk``: sites of an average-pooling window."""
    spatial[:] = False
    events = 0
    syn = 0
    syn_nz = 0
    nb_eff = 0
    binary = 1
    for q in range(nt):
        s = touched[q]
        m = mult[s]
        mult[s] = 0
        events += m
        syn += m * fan[s]
        syn_nz += m * fan_nz[s]
        nb_eff += fan_nz[s]
        if (pool_mode == 1 and m != kk) or (pool_mode == 3 and m > 1):  # a value outside {0, 1}
            binary = 0
        spatial[spat[s]] = True
    return events, syn, syn_nz, nb_eff, binary


@njit(cache=True, parallel=True)
def count_packed_layer(packed: np.ndarray, c: int, h: int, w: int, pool_mode: int, k: int,
                       fan: np.ndarray, fan_nz: np.ndarray, is_conv: bool, h_out: int,
                       w_out: int, ksize: int, stride: int, padding: int,
                       n_out: int, groups: int = 1, dilation: int = 1) -> np.ndarray:
    """Per-sample, per-timestep counts of one spiking-input layer -> int64 [n, T, 7].

    ``packed`` is [n, T, nbytes] (the trace layout); ``fan``/``fan_nz`` are pooled-site
    fan-out maps; ``n_out`` is C_out for a conv (touched = positions x C_out, per group for a
    grouped conv) or out_features for a linear layer (every output is touched once any event
    arrives). An unpooled map takes one pass over its bits; a pooled one a pass over its bits
    plus one over the pooled sites that received an event (not a scan of every pooled site).
    """
    n, steps, _ = packed.shape
    hp = h // k
    wp = w // k
    hw_p = hp * wp
    n_sites_p = c * hw_p
    kk = k * k
    site_of, spat = site_tables(c, h, w, k)  # once per call: no divisions per event below
    if groups > 1:  # an event marks the position in its own group's block: group * hw_p + position
        per_group = (c // groups) * hw_p
        for s in range(n_sites_p):
            spat[s] += (s // per_group) * hw_p
    out = np.zeros((n, steps, N_COLS), dtype=np.int64)
    for i in prange(n):
        mult = np.zeros(n_sites_p, dtype=np.int32)
        touched = np.zeros(n_sites_p, dtype=np.int32)
        spatial = np.zeros(groups * hw_p, dtype=np.bool_)
        outmark = np.zeros(max(h_out * w_out, 1), dtype=np.bool_)
        for t in range(steps):
            if pool_mode == 0:
                events, syn, syn_nz = _count_unpooled(packed[i, t], c * h * w, spat, fan, fan_nz,
                                                      spatial)
                nb_eff, binary, sites = syn_nz, 1, events
            else:
                sites = _collect_sites(packed[i, t], c * h * w, site_of, pool_mode, mult, touched)
                events, syn, syn_nz, nb_eff, binary = _tally_pooled(touched, sites, mult, pool_mode,
                                                                    kk, fan, fan_nz, spat, spatial)
            _store_counts(out[i, t], events, syn, syn_nz, nb_eff, binary, sites, spatial, hp, wp,
                          is_conv, h_out, w_out, ksize, stride, padding, n_out, outmark, groups,
                          dilation)
    return out


@njit(cache=True, parallel=True)
def count_analog_layer(x: np.ndarray, h: int, w: int, fan: np.ndarray, fan_nz: np.ndarray,
                       is_conv: bool, h_out: int, w_out: int, ksize: int, stride: int,
                       padding: int, n_out: int, groups: int = 1, dilation: int = 1) -> np.ndarray:
    """Per-sample counts of a layer reading the network input at one timestep -> int64 [n, 7]
    (an input fed at every timestep is counted once; frames and Poisson spikes step by step).

    ``x`` is [n, C*H*W] float32. Zero inputs are skipped (no MAC is needed for them); the
    NeuroBench binary flag is 1 only if every value is in {-1, 0, 1}.
    """
    n, n_sites = x.shape
    hw = h * w
    per_group = n_sites // groups  # sites of one group's input channels
    out = np.zeros((n, N_COLS), dtype=np.int64)
    for i in prange(n):
        spatial = np.zeros(groups * hw, dtype=np.bool_)
        outmark = np.zeros(max(h_out * w_out, 1), dtype=np.bool_)
        events = 0
        syn = 0
        syn_nz = 0
        binary = 1
        for g in range(groups):  # one pass over all sites without groups
            marks = spatial[g * hw:(g + 1) * hw]  # the positions reached by group g's channels
            for j in range(g * per_group, (g + 1) * per_group):
                v = x[i, j]
                if v == 0:
                    continue
                events += 1
                syn += fan[j]
                syn_nz += fan_nz[j]
                marks[j % hw] = True
                if v != 1 and v != -1:
                    binary = 0
        _store_counts(out[i], events, syn, syn_nz, syn_nz, binary, events, spatial, h, w,
                      is_conv, h_out, w_out, ksize, stride, padding, n_out, outmark, groups,
                      dilation)
    return out


@njit(cache=True, parallel=True)
def popcount_packed(a: np.ndarray, b=None) -> np.ndarray:
    """Number of set bits per (sample, timestep) of [n, T, nbytes] maps -> int64 [n, T]: of
    ``a``, or with ``b`` given of ``a ^ b`` (the number of differing bits)."""
    n, steps, nbytes = a.shape
    out = np.zeros((n, steps), dtype=np.int64)
    for i in prange(n):
        for t in range(steps):
            total = 0
            for j in range(nbytes):
                byte = a[i, t, j]
                if b is not None:
                    byte ^= b[i, t, j]
                total += POPCOUNT8[byte]
            out[i, t] = total
    return out


# ---------------------------------------------------------------------------- functional mode
@njit(inline="always")
def _axpy(dst: np.ndarray, src: np.ndarray, v) -> None:
    """``dst += v * src`` over ``src``'s length (contiguous views: LLVM vectorises it, ~5x)."""
    for i in range(src.shape[0]):
        dst[i] += v * src[i]


@njit(cache=True)
def scatter_conv(vals: np.ndarray, wt: np.ndarray, cur: np.ndarray, c_in: int, h_in: int,
                 w_in: int, c_out: int, h_out: int, w_out: int, k: int, stride: int,
                 padding: int, groups: int = 1, dilation: int = 1) -> int:
    """Event-driven conv: for every nonzero input site add ``v * W[:, c, ky, kx]`` to the outputs.

    ``vals`` [R, C_in*H*W] holds R rows of input values (R timesteps, or one), ``cur`` the R
    matching (H_out, W_out, C_out) accumulators [R, H_out*W_out*C_out] (not cleared here), ``wt``
    the weights as (C_in, k, k, C_out) flattened. Float32 in, float32 arithmetic; int64 in,
    exact integer arithmetic. Returns the number of synaptic ops performed. A grouped or
    dilated conv runs :func:`scatter_grouped` (``wt`` then (C_in, k, k, C_out / groups)).

    The rows are visited inside the input-channel loop, so channel ``c``'s weight slice is read
    from cache for every row: with R = T, a layer whose weights exceed the cache streams them
    once per sample instead of once per timestep. Within one row events are visited in (c, y, x)
    order and taps in (ky, kx) order, so every row's float sums are those of the plain loop,
    whatever R is.
    """
    if groups != 1 or dilation != 1:
        return scatter_grouped(vals, wt, cur, c_in, h_in, w_in, c_out, h_out, w_out, k, stride,
                               padding, groups, dilation)
    ops = 0
    rows = vals.shape[0]
    # Nested loops instead of decoding s = (c, y, x) with divisions, and the valid taps computed
    # once per row/event (no division or modulo per tap).
    for c in range(c_in):
        for r in range(rows):
            vrow = vals[r]
            crow = cur[r]
            for y in range(h_in):
                ky0, nky, oy0 = _taps(y, padding, k, stride, h_out)
                for x in range(w_in):
                    v = vrow[(c * h_in + y) * w_in + x]
                    if v == 0:
                        continue
                    kx0, nkx, ox0 = _taps(x, padding, k, stride, w_out)
                    if stride == 1:
                        # the hot case, written without the stride products: measured 15-30 % faster
                        # than the general loop below on VGG16 float replay (benchmarks/perf_results.md)
                        for ky in range(ky0, ky0 + nky):
                            oy = oy0 - (ky - ky0)
                            for kx in range(kx0, kx0 + nkx):
                                wbase = ((c * k + ky) * k + kx) * c_out
                                obase = (oy * w_out + ox0 - (kx - kx0)) * c_out
                                cv = crow[obase:obase + c_out]  # views let LLVM vectorise
                                wv = wt[wbase:wbase + c_out]
                                for co in range(c_out):
                                    cv[co] += v * wv[co]
                        ops += nky * nkx * c_out
                        continue
                    for iy in range(nky):
                        wrow = (c * k + ky0 + iy * stride) * k + kx0
                        orow = (oy0 - iy) * w_out + ox0
                        for ix in range(nkx):
                            wbase = (wrow + ix * stride) * c_out
                            obase = (orow - ix) * c_out
                            _axpy(crow[obase:obase + c_out], wt[wbase:wbase + c_out], v)
                    ops += nky * nkx * c_out
    return ops


@njit(cache=True)
def scatter_grouped(vals: np.ndarray, wt: np.ndarray, cur: np.ndarray, c_in: int, h_in: int,
                    w_in: int, c_out: int, h_out: int, w_out: int, k: int, stride: int,
                    padding: int, groups: int, dilation: int) -> int:
    """:func:`scatter_conv` of a grouped and / or dilated conv: an event at input channel ``c``
    adds ``v * W[g*C_out/groups:(g+1)*C_out/groups, c % (C_in/groups), ky, kx]`` into the
    output channels of its group ``g`` only, through the taps whose input offset
    ``ky * dilation`` is in bounds. ``wt`` is (C_in, k, k, C_out / groups) flattened. Events
    are visited in (c, y, x) order and taps in (ky, kx) order, as in :func:`scatter_conv`.
    """
    ops = 0
    rows = vals.shape[0]
    opg = c_out // groups  # output channels of one group
    cpg = c_in // groups
    tstep, ostep = _tap_steps(stride, dilation)
    for c in range(c_in):
        g0 = (c // cpg) * opg  # the first output channel of c's group
        for r in range(rows):
            vrow = vals[r]
            crow = cur[r]
            for y in range(h_in):
                ky0, nky, oy0 = _dilated_taps(y, padding, k, stride, h_out, dilation, tstep)
                for x in range(w_in):
                    v = vrow[(c * h_in + y) * w_in + x]
                    if v == 0:
                        continue
                    kx0, nkx, ox0 = _dilated_taps(x, padding, k, stride, w_out, dilation, tstep)
                    for iy in range(nky):
                        wrow = (c * k + ky0 + iy * tstep) * k + kx0
                        orow = (oy0 - iy * ostep) * w_out + ox0
                        for ix in range(nkx):
                            wbase = (wrow + ix * tstep) * opg
                            obase = (orow - ix * ostep) * c_out + g0
                            _axpy(crow[obase:obase + opg], wt[wbase:wbase + opg], v)
                    ops += nky * nkx * opg
    return ops


@njit(cache=True)
def scatter_linear(vals: np.ndarray, wt: np.ndarray, cur: np.ndarray, n_in: int,
                   n_out: int) -> int:
    """Event-driven linear layer: ``cur[r] += v * W[:, i]`` for every nonzero input ``vals[r, i]``.

    ``vals`` [R, in], ``cur`` [R, out]; ``wt`` is W transposed, (in, out) flattened. Weight row
    ``i`` is read once for all R rows (see :func:`scatter_conv`). Returns the synaptic ops.
    """
    ops = 0
    rows = vals.shape[0]
    for i in range(n_in):
        w = wt[i * n_out:(i + 1) * n_out]
        for r in range(rows):
            v = vals[r, i]
            if v == 0:
                continue
            _axpy(cur[r], w, v)
            ops += n_out
    return ops


def _at(x: np.ndarray | np.generic, j: int) -> np.generic:
    """``x[j]`` of a per-neuron array, ``x`` itself for one value per population (the pure
    Python form, for ``NUMBA_DISABLE_JIT``; jitted code uses the overload below)."""
    return x[j] if isinstance(x, np.ndarray) else x


@overload(_at, inline="always")
def _at_overload(x, j) -> Callable[..., object]:  # no parameter hints: numba matches them to the lambdas'
    """Resolved at compile time (``x``, ``j`` are numba types): an array is indexed, a scalar
    passes through (no cost)."""
    if isinstance(x, types.Array):
        return lambda x, j: x[j]
    return lambda x, j: x


def membrane_zeros(shape: int | tuple[int, ...], vals: np.ndarray) -> np.ndarray:
    """Zeros for the neuron state that runs on site values ``vals``: float32 for float sites
    (float32 sums, or float64 sums rounded to float32 once per step), int64 for integer sites.
    The pure Python form, for ``NUMBA_DISABLE_JIT``; jitted code uses the overload below."""
    return np.zeros(shape, dtype=np.float32 if vals.dtype.kind == "f" else np.int64)


@overload(membrane_zeros, inline="always")
def _membrane_zeros_overload(shape, vals) -> Callable[..., object]:
    """Resolved at compile time from ``vals``' dtype."""
    if isinstance(vals.dtype, types.Float):
        return lambda shape, vals: np.zeros(shape, dtype=np.float32)
    return lambda shape, vals: np.zeros(shape, dtype=np.int64)


@njit(cache=True)
def lif_step(u: np.ndarray, cur: np.ndarray, leak, theta, frac_bits, spikes: np.ndarray,
             v_reset=None, fire_ge: bool = False, syn=None, alpha=None) -> int:
    """One LIF step over all neurons; float32 when ``frac_bits`` is None, else int64.

    CubaLIF (``alpha`` not None, float32 only; ``syn`` the synaptic currents, updated in place):
    ``i <- alpha*i + cur`` (float32 mul then add, as torch), then the step below on ``i``
    instead of ``cur``; ``i`` is not reset. A neuron counts as changed if ``u`` or ``i`` did.

    ``leak``, ``theta``: one value, or one per neuron (arrays). float32: ``u <- leak*u + cur``
    (two float32 roundings, like torch's mul then add); fire iff ``float32(u / theta) - 1 > 0``
    (``>= 0`` with ``fire_ge``); hard reset ``u*(1 - s) + v_reset*s`` in float32: bit-for-bit
    the PyTorch model's arithmetic. int64: ``u <- ((u * leak) >> frac_bits) + cur`` with
    ``leak`` the fixed-point leak and ``>>`` an arithmetic shift (floor); fire iff ``u > theta``
    (``>=`` with ``fire_ge``); hard reset to ``v_reset``.
    Both: potentials before reset are left in ``cur`` (for inspection), ``u`` gets the soft
    reset ``u - theta*s`` (``v_reset`` None) or the hard reset. Returns the number of neurons
    whose potential changed over the step (NeuroBench's membrane-update rule).
    """
    changed = 0
    for j in range(u.shape[0]):
        old = u[j]
        th = _at(theta, j)
        syn_moved = False
        if alpha is not None:
            i_old = syn[j]
            i_new = _at(alpha, j) * i_old + cur[j]
            syn[j] = i_new
            cur[j] = i_new
            syn_moved = i_new != i_old
        if frac_bits is None:
            v = _at(leak, j) * old + cur[j]
            z = v / th - np.float32(1.0)
            s = z >= np.float32(0.0) if fire_ge else z > np.float32(0.0)
        else:
            v = ((old * _at(leak, j)) >> frac_bits) + cur[j]
            s = v >= th if fire_ge else v > th
        spikes[j] = s
        cur[j] = v
        if v_reset is None:
            new = v - th if s else v
        elif frac_bits is None:  # torch: u * (1 - s) + v_reset * s, each op rounded to float32
            sf = np.float32(1.0) if s else np.float32(0.0)
            new = v * (np.float32(1.0) - sf) + v_reset * sf
        else:
            new = v_reset if s else v
        if new != old or syn_moved:
            changed += 1
        u[j] = new
    return changed


@njit(inline="always")
def integrate_step(total: np.ndarray, cur: np.ndarray, first: bool) -> int:
    """One step of the output integrator: ``total += cur``; returns the neurons whose value
    changed (all of them at the first step: NeuroBench's membrane-update rule)."""
    changed = 0
    for j in range(total.shape[0]):
        new = total[j] + cur[j]
        if new != total[j] or first:
            changed += 1
        total[j] = new
    return changed


@njit(cache=True)
def pack_hwc(spikes: np.ndarray, is_conv: bool, c_out: int, h_out: int, w_out: int,
             out_bits: np.ndarray) -> None:
    """Pack internal-order spikes ((H, W, C) for conv) into (C, H, W)-order big-endian bits."""
    out_bits[:] = 0
    if not is_conv:
        for j in range(spikes.shape[0]):
            if spikes[j]:
                out_bits[j >> 3] |= np.uint8(128 >> (j & 7))
        return
    hw = h_out * w_out
    for pos in range(hw):  # nested loops: no division per neuron (3.6x faster than decoding j)
        base = pos * c_out
        for co in range(c_out):
            if spikes[base + co]:
                idx = co * hw + pos
                out_bits[idx >> 3] |= np.uint8(128 >> (idx & 7))


@njit(cache=True)
def to_chw(src: np.ndarray, dst: np.ndarray, is_conv: bool, c_out: int, h_out: int,
           w_out: int) -> None:
    """Copy an internal-order vector ((H, W, C) for conv) into (C, H, W) order."""
    hw = h_out * w_out
    for j in range(src.shape[0]):
        if is_conv:
            pos = j // c_out
            co = j - pos * c_out
            dst[co * hw + pos] = src[j]
        else:
            dst[j] = src[j]


@njit(cache=True, parallel=True)
def functional_layer(vals: np.ndarray, steps: int, wt: np.ndarray, is_conv: bool, c_in: int,
                     h_in: int, w_in: int, c_out: int, h_out: int, w_out: int, k: int,
                     stride: int, padding: int, spiking: bool, leak, theta, frac_bits,
                     keep_potentials: bool, all_steps: bool = False, groups: int = 1,
                     dilation: int = 1, v_reset=None, fire_ge: bool = False, alpha=None):
    """Run one layer of neurons over all timesteps, event by event, in ``vals``' dtype.

    ``vals`` [n, Tv, S] are the values the synapses read at each pooled site (Tv = 1 for the
    analog input, repeated every step): float (float32 ``leak``/``theta`` and
    ``frac_bits=None``), or int64 with the integer LIF parameters (see :func:`lif_step`). The
    currents are summed in ``vals``' dtype: float32 values held as float64 with float32
    weights make every product exact and each step's current the float32 rounding of a float64
    sum (what a trace records); float32 sums in event order otherwise. The neurons run in
    float32 either way (:func:`membrane_zeros`).
    ``all_steps``: scatter every timestep's events in one pass before the neuron updates (each
    weight slice read once per sample, for layers whose weights do not fit in cache) instead of
    one timestep at a time (a single current buffer, for layers with small weights and large
    maps). The currents are the same floats either way; only the memory traffic differs.
    ``groups``, ``dilation``: the conv's (:func:`scatter_conv`). ``leak``, ``theta``,
    ``v_reset``, ``fire_ge``, ``alpha``: the neurons' (:func:`lif_step`; per-neuron arrays in
    the internal (H_out, W_out, C_out) order of a conv; ``alpha`` None except for a CubaLIF).
    Returns ``(out_bits [n, T, ceil(N/8)] uint8, potentials [n, T, N] (empty unless
    ``keep_potentials``), changed [n, T] int64, acc [n, N] (the output layer's accumulated
    currents; [n, 0] for a spiking layer))``.
    """
    n = vals.shape[0]
    tv = vals.shape[1]
    n_neurons = c_out * h_out * w_out
    n_in = c_in * h_in * w_in
    nbytes = (n_neurons + 7) // 8
    out_bits = np.zeros((n, steps, nbytes), dtype=np.uint8)
    pot = membrane_zeros((n, steps if keep_potentials else 0, n_neurons if keep_potentials else 0), vals)
    changed = np.zeros((n, steps), dtype=np.int64)
    acc = membrane_zeros((n, 0 if spiking else n_neurons), vals)
    # a constant input (Tv = 1, the analog layer) is scattered once and its current reused at
    # every step (bit-identical: the same adds in the same order)
    rows = tv if all_steps else 1
    for i in prange(n):
        u = membrane_zeros(n_neurons, vals)
        cur = membrane_zeros(n_neurons, vals)
        spk = np.zeros(n_neurons, dtype=np.bool_)
        syn = membrane_zeros(n_neurons if alpha is not None else 0, vals)  # CubaLIF only
        total = membrane_zeros(n_neurons, vals)
        buf = np.zeros((rows, n_neurons), dtype=vals.dtype)  # the sums, in the sites' dtype
        for t in range(steps):
            src = t if tv > 1 else 0  # the input row of step t
            if t == 0 or (tv > 1 and not all_steps):  # its current is not in buf yet
                lo = 0 if all_steps else src
                buf[:] = 0
                if is_conv:
                    scatter_conv(vals[i, lo:lo + rows], wt, buf, c_in, h_in, w_in, c_out, h_out,
                                 w_out, k, stride, padding, groups, dilation)
                else:
                    scatter_linear(vals[i, lo:lo + rows], wt, buf, n_in, c_out)
            row = buf[src if all_steps else 0]
            for j in range(n_neurons):  # float64 sums are rounded to float32 here, once
                cur[j] = row[j]
            if spiking:
                changed[i, t] = lif_step(u, cur, leak, theta, frac_bits, spk, v_reset, fire_ge, syn, alpha)
                pack_hwc(spk, is_conv, c_out, h_out, w_out, out_bits[i, t])
                if keep_potentials:
                    to_chw(cur, pot[i, t], is_conv, c_out, h_out, w_out)
            else:
                changed[i, t] = integrate_step(total, cur, t == 0)
                if keep_potentials:
                    to_chw(total, pot[i, t], is_conv, c_out, h_out, w_out)
        if not spiking:
            to_chw(total, acc[i], is_conv, c_out, h_out, w_out)
    return out_bits, pot, changed, acc


@njit(cache=True, parallel=True)
def layer_currents(vals: np.ndarray, steps: int, wt: np.ndarray, is_conv: bool, c_in: int, h_in: int,
                   w_in: int, c_out: int, h_out: int, w_out: int, k: int, stride: int, padding: int,
                   bias=None, groups: int = 1, dilation: int = 1) -> np.ndarray:
    """One layer's synaptic current at every timestep, event by event: ``[n, T, N]`` in (C, H, W)
    order, float32 for float ``vals`` (summed in their dtype, float64 sums rounded once), int64
    for integer ones (see :func:`functional_layer` for ``vals``).

    The current of a step is the scatter of its events (:func:`scatter_conv` /
    :func:`scatter_linear`) plus ``bias`` (per output channel / feature; ``None``: no bias), added
    after the events as a conv with bias does. Populations driven by several layers (a residual
    ``Add``) or by a biased layer sum these currents and run :func:`population_steps`; a constant
    input (Tv = 1) is scattered once. ``groups``, ``dilation``: the conv's (:func:`scatter_conv`).
    """
    n = vals.shape[0]
    tv = vals.shape[1]
    n_neurons = c_out * h_out * w_out
    n_in = c_in * h_in * w_in
    out = membrane_zeros((n, steps, n_neurons), vals)
    for i in prange(n):
        buf = np.zeros((1, n_neurons), dtype=vals.dtype)
        for t in range(steps):
            if t == 0 or tv > 1:
                src = t if tv > 1 else 0
                buf[:] = 0
                if is_conv:
                    scatter_conv(vals[i, src:src + 1], wt, buf, c_in, h_in, w_in, c_out, h_out, w_out, k, stride,
                                 padding, groups, dilation)
                else:
                    scatter_linear(vals[i, src:src + 1], wt, buf, n_in, c_out)
                if bias is not None:
                    for j in range(n_neurons):  # internal order: (H, W, C) for conv, features for linear
                        buf[0, j] += bias[j % c_out]
            to_chw(buf[0], out[i, t], is_conv, c_out, h_out, w_out)
    return out


@njit(cache=True, parallel=True)
def population_steps(current: np.ndarray, spiking: bool, leak, theta, frac_bits, keep_potentials: bool,
                     v_reset=None, fire_ge: bool = False, alpha=None):
    """Run one population over all timesteps on its summed input ``current`` [n, T, N] ((C, H, W)
    order): :func:`lif_step` for a spiking population (``leak``, ``theta``, ``v_reset``,
    ``fire_ge``, ``alpha`` as there; per-neuron arrays in (C, H, W) order), accumulation for the
    output integrator.

    Returns what :func:`functional_layer` returns: ``(out_bits [n, T, ceil(N/8)], potentials
    [n, T, N] (empty unless ``keep_potentials``), changed [n, T], acc [n, N] ([n, 0] when
    spiking))``.
    """
    n, steps, n_neurons = current.shape
    dtype = current.dtype
    out_bits = np.zeros((n, steps, (n_neurons + 7) // 8), dtype=np.uint8)
    pot = np.zeros((n, steps if keep_potentials else 0, n_neurons if keep_potentials else 0), dtype=dtype)
    changed = np.zeros((n, steps), dtype=np.int64)
    acc = np.zeros((n, 0 if spiking else n_neurons), dtype=dtype)
    for i in prange(n):
        u = np.zeros(n_neurons, dtype=dtype)
        cur = np.zeros(n_neurons, dtype=dtype)
        spk = np.zeros(n_neurons, dtype=np.bool_)
        syn = np.zeros(n_neurons if alpha is not None else 0, dtype=dtype)  # CubaLIF only
        for t in range(steps):
            cur[:] = current[i, t]
            if spiking:
                changed[i, t] = lif_step(u, cur, leak, theta, frac_bits, spk, v_reset, fire_ge, syn, alpha)
                pack_hwc(spk, False, n_neurons, 1, 1, out_bits[i, t])
                if keep_potentials:
                    pot[i, t] = cur
            else:
                changed[i, t] = integrate_step(u, cur, t == 0)
                if keep_potentials:
                    pot[i, t] = u
        if not spiking:
            acc[i] = u
    return out_bits, pot, changed, acc


#: The kernels replay calls from Python: counting only, and functional (event engine, replay).
COUNTING_KERNELS = ("conv_fanout", "count_analog_layer", "count_packed_layer", "popcount_packed")
FUNCTIONAL_KERNELS = ("functional_layer", "site_values", "layer_currents", "population_steps")


def kernels_compiled(names: tuple[str, ...] = COUNTING_KERNELS + FUNCTIONAL_KERNELS) -> bool:
    """Whether numba's on-disk cache already holds the kernels ``names`` (entry points called
    from Python; the kernels they call are compiled into them).

    When it does not, the first kernel call of a process compiles them (about 30 s on 2 CPU
    cores); the CLI says so before it starts. numba writes the cache beside this file, or in
    the user's cache directory where that is read-only, and every later process loads it.
    Reads numba's cache index (a private API): on any surprise it answers False, which only
    costs a superfluous notice.
    """
    from numba.core.registry import CPUDispatcher

    try:
        for name in names:
            obj = globals()[name]
            cache_file = getattr(obj._cache, "_cache_file", None) if isinstance(obj, CPUDispatcher) else None
            if cache_file is None or not cache_file._load_index():
                return False
    except Exception:  # noqa: BLE001 - a private API; see the docstring
        return False
    return True
