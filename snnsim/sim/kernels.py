"""Numba kernels of the event-driven simulator: small, typed, pure functions on arrays.

Every kernel has a plain numpy/PyTorch counterpart in :mod:`snnsim.sim.reference` that the
tests compare it with. Conventions shared by all kernels:

* An input *source map* is the pre-pool map of a layer's input events, flattened in (C, H, W)
  order; a 1-D source (F,) is treated as (F, 1, 1). Spike maps are bit-packed with
  ``np.packbits`` (big-endian bit order: element ``j`` is bit ``7 - j % 8`` of byte ``j // 8``).
* ``pool_mode``: 0 = no pooling, 1 = average pooling folded into the layer, 2 = max pooling
  (an OR of the k x k spikes). The *pooled sites* are the (C, H // k, W // k) positions the
  synapses read; a spike in a row/column that floor-pooling drops drives nothing.
* The *multiplicity* of a pooled site is the number of events it delivers: the number of
  spikes in its window for average pooling (each spike drives the site's synapses once, with
  weights scaled by 1/k^2: these are ACs), 1 if any spike for max pooling, the bit itself
  without pooling.
* A fan-out map gives, per pooled site, the number of synapses an event there drives (conv:
  output positions whose kernel window covers it, exact at borders, times the output channels;
  linear: the out features); the ``_nz`` variant counts only nonzero weights.
* Conv output buffers inside the functional kernels are (H_out, W_out, C_out) so the innermost
  scatter loop is contiguous; everything returned is in (C, H, W) order.

Everything is compiled with ``cache=True`` so the compile cost is paid once per machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

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


# ---------------------------------------------------------------------------- fan-out maps
@njit(cache=True)
def conv_fanout(col_count: np.ndarray, h_in: int, w_in: int, h_out: int, w_out: int,
                stride: int, padding: int) -> np.ndarray:
    """Fan-out per input site of a conv: ``fan[c, y, x] = sum over valid taps of col_count``.

    ``col_count[c, ky, kx]`` is the number of output channels an event at input channel ``c``
    reaches through tap (ky, kx): C_out for all weights, the nonzero count for ``_nz``. A tap
    is valid when ``oy = (y + padding - ky) / stride`` is an integer in [0, h_out) (and the
    same for x). Returns int64 of shape (C, h_in, w_in), flattened.
    """
    c_in, k, _ = col_count.shape
    fan = np.zeros(c_in * h_in * w_in, dtype=np.int64)
    for c in range(c_in):
        for y in range(h_in):
            for x in range(w_in):
                total = 0
                for ky in range(k):
                    ny = y + padding - ky
                    if ny < 0 or ny % stride != 0 or ny // stride >= h_out:
                        continue
                    for kx in range(k):
                        nx = x + padding - kx
                        if nx < 0 or nx % stride != 0 or nx // stride >= w_out:
                            continue
                        total += col_count[c, ky, kx]
                fan[(c * h_in + y) * w_in + x] = total
    return fan


# ---------------------------------------------------------------------------- site multiplicities
@njit(cache=True)
def sites_from_bits(bits: np.ndarray, c: int, h: int, w: int, pool_mode: int, k: int,
                    mult: np.ndarray) -> None:
    """Fill ``mult`` (int32, C*(H//k)*(W//k)) with the multiplicity of every pooled site.

    ``bits`` is one packed source map (C*H*W bits). See the module docstring for pooling.
    """
    hp = h // k
    wp = w // k
    hw = h * w
    mult[:] = 0
    n_sites = c * hw
    for byte_i in range(bits.shape[0]):
        b = bits[byte_i]
        if b == 0:
            continue
        base = byte_i * 8
        for bit in range(8):
            if b & (128 >> bit):
                j = base + bit
                if j >= n_sites:
                    break
                ch = j // hw
                r = j - ch * hw
                y = r // w
                x = r - y * w
                py = y // k
                px = x // k
                if py >= hp or px >= wp:
                    continue
                s = (ch * hp + py) * wp + px
                if pool_mode == 2:
                    mult[s] = 1
                else:
                    mult[s] += 1


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


@njit(cache=True)
def sites_from_bits_table(bits: np.ndarray, n_sites: int, site_of: np.ndarray, pool_mode: int,
                          mult: np.ndarray) -> None:
    """:func:`sites_from_bits` through a precomputed ``site_of`` table (no divisions)."""
    mult[:] = 0
    for byte_i in range(bits.shape[0]):
        b = bits[byte_i]
        if b == 0:
            continue
        base = byte_i * 8
        for bit in range(8):
            if b & (128 >> bit):
                j = base + bit
                if j >= n_sites:
                    break
                s = site_of[j]
                if s < 0:
                    continue
                if pool_mode == 2:
                    mult[s] = 1
                else:
                    mult[s] += 1


@njit(cache=True, parallel=True)
def sites_from_packed(packed: np.ndarray, c: int, h: int, w: int, pool_mode: int,
                      k: int) -> np.ndarray:
    """Multiplicities of every pooled site for packed maps ``[n, T, nbytes]`` -> int32 [n, T, S]."""
    n, steps, _ = packed.shape
    s_count = c * (h // k) * (w // k)
    site_of, _spat = site_tables(c, h, w, k)
    out = np.zeros((n, steps, s_count), dtype=np.int32)
    for i in prange(n):
        for t in range(steps):
            sites_from_bits_table(packed[i, t], c * h * w, site_of, pool_mode, out[i, t])
    return out


@njit(cache=True, parallel=True)
def site_values_f32(packed: np.ndarray, c: int, h: int, w: int, pool_mode: int, k: int,
                    divisor: np.float32) -> np.ndarray:
    """float32 values the synapses read, ``multiplicity / divisor`` per pooled site -> [n, T, S].

    The same numbers as ``sites_from_packed(...).astype(np.float32) / divisor`` (one float32
    division, as numpy does it), produced in parallel without the int32 intermediate.
    """
    n, steps, _ = packed.shape
    s_count = c * (h // k) * (w // k)
    site_of, _spat = site_tables(c, h, w, k)
    out = np.empty((n, steps, s_count), dtype=np.float32)
    for i in prange(n):
        mult = np.zeros(s_count, dtype=np.int32)
        for t in range(steps):
            sites_from_bits_table(packed[i, t], c * h * w, site_of, pool_mode, mult)
            row = out[i, t]
            for s in range(s_count):
                row[s] = np.float32(mult[s]) / divisor
    return out


@njit(cache=True, parallel=True)
def site_values_i64(packed: np.ndarray, c: int, h: int, w: int, pool_mode: int, k: int) -> np.ndarray:
    """int64 multiplicities per pooled site -> [n, T, S] (``sites_from_packed`` as int64)."""
    n, steps, _ = packed.shape
    s_count = c * (h // k) * (w // k)
    site_of, _spat = site_tables(c, h, w, k)
    out = np.empty((n, steps, s_count), dtype=np.int64)
    for i in prange(n):
        mult = np.zeros(s_count, dtype=np.int32)
        for t in range(steps):
            sites_from_bits_table(packed[i, t], c * h * w, site_of, pool_mode, mult)
            row = out[i, t]
            for s in range(s_count):
                row[s] = mult[s]
    return out


# ---------------------------------------------------------------------------- counting
@njit(cache=True)
def touched_conv(spatial: np.ndarray, hp: int, wp: int, h_out: int, w_out: int, k: int,
                 stride: int, padding: int, outmark: np.ndarray) -> int:
    """Number of conv output positions whose window holds at least one marked input position.

    ``spatial`` (bool, hp*wp) marks input positions carrying an event in any channel;
    ``outmark`` (bool, h_out*w_out) is scratch. This is the dilation of the event map by the
    kernel, exact at borders and for any stride.
    """
    outmark[:] = False
    for y in range(hp):
        for x in range(wp):
            if not spatial[y * wp + x]:
                continue
            if stride == 1:  # the valid taps are ranges: no division per tap
                for oy in range(max(0, y + padding - k + 1), min(h_out - 1, y + padding) + 1):
                    for ox in range(max(0, x + padding - k + 1), min(w_out - 1, x + padding) + 1):
                        outmark[oy * w_out + ox] = True
                continue
            for ky in range(k):
                ny = y + padding - ky
                if ny < 0 or ny % stride != 0:
                    continue
                oy = ny // stride
                if oy >= h_out:
                    continue
                for kx in range(k):
                    nx = x + padding - kx
                    if nx < 0 or nx % stride != 0:
                        continue
                    ox = nx // stride
                    if ox >= w_out:
                        continue
                    outmark[oy * w_out + ox] = True
    count = 0
    for i in range(outmark.shape[0]):
        if outmark[i]:
            count += 1
    return count


@njit(cache=True)
def count_sites(mult: np.ndarray, pool_mode: int, k: int, hw_p: int, fan: np.ndarray,
                fan_nz: np.ndarray, spatial: np.ndarray, out: np.ndarray) -> None:
    """Counts of one (sample, timestep) from pooled-site multiplicities into ``out[0:7]``.

    Also marks ``spatial`` (bool, hp*wp; cleared here) where any channel has an event.
    """
    spatial[:] = False
    events = 0
    syn = 0
    syn_nz = 0
    nb_eff = 0
    sites = 0
    binary = 1
    kk = k * k
    for s in range(mult.shape[0]):
        m = mult[s]
        if m == 0:
            continue
        sites += 1
        events += m
        syn += m * fan[s]
        syn_nz += m * fan_nz[s]
        nb_eff += fan_nz[s]
        if pool_mode == 1 and m != kk:
            binary = 0
        spatial[s % hw_p] = True
    out[COL_EVENTS] = events
    out[COL_SYN] = syn
    out[COL_SYN_NZ] = syn_nz
    out[COL_NB_EFF] = nb_eff
    out[COL_NB_BINARY] = binary
    out[COL_SITES] = sites


@njit(cache=True)
def count_bits_direct(bits: np.ndarray, n_sites: int, hw: int, fan: np.ndarray,
                      fan_nz: np.ndarray, spatial: np.ndarray, out: np.ndarray) -> None:
    """Counts of one unpooled packed map in a single pass over its bits (``out[0:7]``)."""
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
                if j >= n_sites:
                    break
                events += 1
                syn += fan[j]
                syn_nz += fan_nz[j]
                spatial[j % hw] = True
    out[COL_EVENTS] = events
    out[COL_SYN] = syn
    out[COL_SYN_NZ] = syn_nz
    out[COL_NB_EFF] = syn_nz
    out[COL_NB_BINARY] = 1
    out[COL_SITES] = events


@njit(cache=True)
def count_bits_table(bits: np.ndarray, n_sites: int, spat: np.ndarray, fan: np.ndarray,
                     fan_nz: np.ndarray, spatial: np.ndarray, out: np.ndarray) -> None:
    """:func:`count_bits_direct` with the spatial position read from ``spat`` (no divisions)."""
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
                if j >= n_sites:
                    break
                events += 1
                syn += fan[j]
                syn_nz += fan_nz[j]
                spatial[spat[j]] = True
    out[COL_EVENTS] = events
    out[COL_SYN] = syn
    out[COL_SYN_NZ] = syn_nz
    out[COL_NB_EFF] = syn_nz
    out[COL_NB_BINARY] = 1
    out[COL_SITES] = events


@njit(cache=True)
def count_pooled_table(bits: np.ndarray, n_sites: int, site_of: np.ndarray, spat: np.ndarray,
                       pool_mode: int, kk: int, fan: np.ndarray, fan_nz: np.ndarray,
                       mult: np.ndarray, touched: np.ndarray, spatial: np.ndarray,
                       out: np.ndarray) -> None:
    """Counts of one pooled packed map (``out[0:7]``) in one pass over its bits plus one over the
    pooled sites that received an event (listed in ``touched``), instead of a scan of every
    pooled site. ``mult`` must be all zero on entry and is left all zero.
    """
    spatial[:] = False
    nt = 0
    for byte_i in range(bits.shape[0]):
        b = bits[byte_i]
        if b == 0:
            continue
        base = byte_i * 8
        for bit in range(8):
            if b & (128 >> bit):
                j = base + bit
                if j >= n_sites:
                    break
                s = site_of[j]
                if s < 0:
                    continue
                m = mult[s]
                if m == 0:
                    touched[nt] = s
                    nt += 1
                    mult[s] = 1
                elif pool_mode != 2:
                    mult[s] = m + 1
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
        if pool_mode == 1 and m != kk:
            binary = 0
        spatial[spat[s]] = True
    out[COL_EVENTS] = events
    out[COL_SYN] = syn
    out[COL_SYN_NZ] = syn_nz
    out[COL_NB_EFF] = nb_eff
    out[COL_NB_BINARY] = binary
    out[COL_SITES] = nt


@njit(cache=True, parallel=True)
def count_packed_layer(packed: np.ndarray, c: int, h: int, w: int, pool_mode: int, k: int,
                       fan: np.ndarray, fan_nz: np.ndarray, is_conv: bool, h_out: int,
                       w_out: int, ksize: int, stride: int, padding: int,
                       n_out: int) -> np.ndarray:
    """Per-sample, per-timestep counts of one spiking-input layer -> int64 [n, T, 7].

    ``packed`` is [n, T, nbytes] (the trace layout); ``fan``/``fan_nz`` are pooled-site
    fan-out maps; ``n_out`` is C_out for a conv (touched = positions x C_out) or out_features
    for a linear layer (every output is touched once any event arrives).
    """
    n, steps, _ = packed.shape
    hp = h // k
    wp = w // k
    hw_p = hp * wp
    n_sites_p = c * hw_p
    site_of, spat = site_tables(c, h, w, k)  # once per call: no divisions per event below
    out = np.zeros((n, steps, N_COLS), dtype=np.int64)
    for i in prange(n):
        mult = np.zeros(n_sites_p, dtype=np.int32)
        touched = np.zeros(n_sites_p, dtype=np.int32)
        spatial = np.zeros(hw_p, dtype=np.bool_)
        outmark = np.zeros(max(h_out * w_out, 1), dtype=np.bool_)
        for t in range(steps):
            row = out[i, t]
            if pool_mode == 0:
                count_bits_table(packed[i, t], c * h * w, spat, fan, fan_nz, spatial, row)
            else:
                count_pooled_table(packed[i, t], c * h * w, site_of, spat, pool_mode, k * k, fan, fan_nz,
                                   mult, touched, spatial, row)
            if row[COL_EVENTS] == 0:
                row[COL_TOUCHED] = 0
            elif is_conv:
                row[COL_TOUCHED] = n_out * touched_conv(spatial, hp, wp, h_out, w_out, ksize,
                                                        stride, padding, outmark)
            else:
                row[COL_TOUCHED] = n_out
    return out


@njit(cache=True, parallel=True)
def count_analog_layer(x: np.ndarray, h: int, w: int, fan: np.ndarray, fan_nz: np.ndarray,
                       is_conv: bool, h_out: int, w_out: int, ksize: int, stride: int,
                       padding: int, n_out: int) -> np.ndarray:
    """Per-sample counts of the analog (direct-input) layer -> int64 [n, 7] (same every step).

    ``x`` is [n, C*H*W] float32. Zero inputs are skipped (no MAC is needed for them); the
    NeuroBench binary flag is 1 only if every value is in {-1, 0, 1}.
    """
    n, n_sites = x.shape
    hw = h * w
    out = np.zeros((n, N_COLS), dtype=np.int64)
    for i in prange(n):
        spatial = np.zeros(hw, dtype=np.bool_)
        outmark = np.zeros(max(h_out * w_out, 1), dtype=np.bool_)
        events = 0
        syn = 0
        syn_nz = 0
        binary = 1
        for j in range(n_sites):
            v = x[i, j]
            if v == 0:
                continue
            events += 1
            syn += fan[j]
            syn_nz += fan_nz[j]
            spatial[j % hw] = True
            if v != 1 and v != -1:
                binary = 0
        out[i, COL_EVENTS] = events
        out[i, COL_SYN] = syn
        out[i, COL_SYN_NZ] = syn_nz
        out[i, COL_NB_EFF] = syn_nz
        out[i, COL_NB_BINARY] = binary
        out[i, COL_SITES] = events
        if events == 0:
            out[i, COL_TOUCHED] = 0
        elif is_conv:
            out[i, COL_TOUCHED] = n_out * touched_conv(spatial, h, w, h_out, w_out, ksize, stride,
                                                       padding, outmark)
        else:
            out[i, COL_TOUCHED] = n_out
    return out


@njit(cache=True, parallel=True)
def popcount_packed(packed: np.ndarray) -> np.ndarray:
    """Number of set bits per (sample, timestep) of [n, T, nbytes] -> int64 [n, T]."""
    n, steps, nbytes = packed.shape
    out = np.zeros((n, steps), dtype=np.int64)
    for i in prange(n):
        for t in range(steps):
            total = 0
            for b in range(nbytes):
                total += POPCOUNT8[packed[i, t, b]]
            out[i, t] = total
    return out


@njit(cache=True, parallel=True)
def mismatch_packed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Number of differing bits per (sample, timestep) of two [n, T, nbytes] maps -> int64 [n, T]."""
    n, steps, nbytes = a.shape
    out = np.zeros((n, steps), dtype=np.int64)
    for i in prange(n):
        for t in range(steps):
            total = 0
            for j in range(nbytes):
                total += POPCOUNT8[a[i, t, j] ^ b[i, t, j]]
            out[i, t] = total
    return out


# ---------------------------------------------------------------------------- functional mode
@njit(cache=True)
def scatter_conv(vals: np.ndarray, wt: np.ndarray, cur: np.ndarray, c_in: int, h_in: int,
                 w_in: int, c_out: int, h_out: int, w_out: int, k: int, stride: int,
                 padding: int) -> int:
    """Event-driven conv: for every nonzero input site add ``v * W[:, c, ky, kx]`` to the outputs.

    ``vals`` (C_in*H*W), ``wt`` the weights as (C_in, k, k, C_out) flattened, ``cur`` the
    (H_out, W_out, C_out) accumulator (not cleared here). Float32 in, float32 arithmetic; int64
    in, exact integer arithmetic. Returns the number of synaptic ops performed.
    """
    ops = 0
    # Nested loops instead of decoding s = (c, y, x) with divisions; for stride 1 the valid taps
    # are a range computed once per row/event (no division or modulo per tap). Events are still
    # visited in s order and taps in (ky, kx) order: the float sums are unchanged.
    for c in range(c_in):
        for y in range(h_in):
            ky_lo = max(0, y + padding - h_out + 1)
            ky_hi = min(k - 1, y + padding)
            for x in range(w_in):
                v = vals[(c * h_in + y) * w_in + x]
                if v == 0:
                    continue
                if stride == 1:
                    kx_lo = max(0, x + padding - w_out + 1)
                    kx_hi = min(k - 1, x + padding)
                    for ky in range(ky_lo, ky_hi + 1):
                        oy = y + padding - ky
                        for kx in range(kx_lo, kx_hi + 1):
                            ox = x + padding - kx
                            wbase = ((c * k + ky) * k + kx) * c_out
                            obase = (oy * w_out + ox) * c_out
                            cv = cur[obase:obase + c_out]  # views let LLVM vectorise (5x)
                            wv = wt[wbase:wbase + c_out]
                            for co in range(c_out):
                                cv[co] += v * wv[co]
                            ops += c_out
                    continue
                for ky in range(k):
                    ny = y + padding - ky
                    if ny < 0 or ny % stride != 0:
                        continue
                    oy = ny // stride
                    if oy >= h_out:
                        continue
                    for kx in range(k):
                        nx = x + padding - kx
                        if nx < 0 or nx % stride != 0:
                            continue
                        ox = nx // stride
                        if ox >= w_out:
                            continue
                        wbase = ((c * k + ky) * k + kx) * c_out
                        obase = (oy * w_out + ox) * c_out
                        cv = cur[obase:obase + c_out]
                        wv = wt[wbase:wbase + c_out]
                        for co in range(c_out):
                            cv[co] += v * wv[co]
                        ops += c_out
    return ops


@njit(cache=True)
def scatter_linear(vals: np.ndarray, wt: np.ndarray, cur: np.ndarray, n_in: int,
                   n_out: int) -> int:
    """Event-driven linear layer: ``cur += v * W[:, i]`` for every nonzero input ``i``.

    ``wt`` is W transposed, (in, out) flattened. Returns the number of synaptic ops.
    """
    ops = 0
    for i in range(n_in):
        v = vals[i]
        if v == 0:
            continue
        wv = wt[i * n_out:(i + 1) * n_out]
        for o in range(n_out):
            cur[o] += v * wv[o]
        ops += n_out
    return ops


@njit(cache=True)
def lif_step_f32(u: np.ndarray, cur: np.ndarray, leak: np.float32, theta: np.float32,
                 spikes: np.ndarray) -> int:
    """One float32 LIF step, bit-for-bit the PyTorch model's arithmetic.

    ``u <- leak*u + cur`` (two float32 roundings, like torch's mul then add);
    fire iff ``float32(u / theta) - 1 > 0``; potentials before reset are left in ``cur``
    (for inspection), ``u`` gets the soft reset ``u - theta*s``. Returns the number of
    neurons whose potential changed over the step (NeuroBench's membrane-update rule).
    """
    one = np.float32(1.0)
    zero = np.float32(0.0)
    changed = 0
    for j in range(u.shape[0]):
        old = u[j]
        v = leak * old + cur[j]
        z = v / theta - one
        s = z > zero
        spikes[j] = s
        cur[j] = v
        new = v - theta if s else v
        if new != old:
            changed += 1
        u[j] = new
    return changed


@njit(cache=True)
def lif_step_i64(u: np.ndarray, cur: np.ndarray, leak_fx: np.int64, frac_bits: np.int64,
                 theta: np.int64, spikes: np.ndarray) -> int:
    """One integer LIF step: ``u <- ((u * leak_fx) >> F) + cur``; fire iff ``u > theta``;
    soft reset ``u - theta``. ``>>`` is an arithmetic shift (floor). Potentials before reset are
    left in ``cur``. Returns the number of neurons whose potential changed.
    """
    changed = 0
    for j in range(u.shape[0]):
        old = u[j]
        v = ((old * leak_fx) >> frac_bits) + cur[j]
        s = v > theta
        spikes[j] = s
        cur[j] = v
        new = v - theta if s else v
        if new != old:
            changed += 1
        u[j] = new
    return changed


@njit(cache=True)
def pack_hwc(spikes: np.ndarray, is_conv: bool, c_out: int, h_out: int, w_out: int,
             out_bits: np.ndarray) -> None:
    """Pack internal-order spikes ((H, W, C) for conv) into (C, H, W)-order big-endian bits."""
    out_bits[:] = 0
    hw = h_out * w_out
    for j in range(spikes.shape[0]):
        if not spikes[j]:
            continue
        if is_conv:
            pos = j // c_out
            co = j - pos * c_out
            idx = co * hw + pos
        else:
            idx = j
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
def functional_layer_f32(vals: np.ndarray, steps: int, wt: np.ndarray, is_conv: bool,
                         c_in: int, h_in: int, w_in: int, c_out: int, h_out: int, w_out: int,
                         k: int, stride: int, padding: int, spiking: bool, leak: np.float32,
                         theta: np.float32, keep_potentials: bool):
    """Run one layer of float32 neurons over all timesteps, event by event.

    ``vals`` [n, Tv, S] float32 are the values the synapses read at each pooled site (Tv = 1
    for the analog input, repeated every step). Returns ``(out_bits [n, T, ceil(N/8)] uint8,
    potentials [n, T, N] float32 (empty unless ``keep_potentials``), changed [n, T] int64,
    acc [n, N] float32 (the output layer's accumulated currents; zeros when spiking))``.
    """
    n = vals.shape[0]
    tv = vals.shape[1]
    n_neurons = c_out * h_out * w_out
    nbytes = (n_neurons + 7) // 8
    out_bits = np.zeros((n, steps, nbytes), dtype=np.uint8)
    pot = np.zeros((n, steps if keep_potentials else 0, n_neurons if keep_potentials else 0),
                   dtype=np.float32)
    changed = np.zeros((n, steps), dtype=np.int64)
    acc = np.zeros((n, n_neurons), dtype=np.float32)
    for i in prange(n):
        u = np.zeros(n_neurons, dtype=np.float32)
        cur = np.zeros(n_neurons, dtype=np.float32)
        spk = np.zeros(n_neurons, dtype=np.bool_)
        total = np.zeros(n_neurons, dtype=np.float32)
        # constant input (Tv = 1, the analog layer): the current is the same at every step, so
        # it is scattered once and copied (bit-identical: the same adds in the same order)
        once = np.zeros(n_neurons if tv == 1 and steps > 1 else 0, dtype=np.float32)
        for t in range(steps):
            if tv == 1 and t > 0:
                cur[:] = once
            else:
                cur[:] = 0
                row = vals[i, t if tv > 1 else 0]
                if is_conv:
                    scatter_conv(row, wt, cur, c_in, h_in, w_in, c_out, h_out, w_out, k, stride,
                                 padding)
                else:
                    scatter_linear(row, wt, cur, c_in * h_in * w_in, c_out)
                if tv == 1 and steps > 1:
                    once[:] = cur
            if spiking:
                changed[i, t] = lif_step_f32(u, cur, leak, theta, spk)
                pack_hwc(spk, is_conv, c_out, h_out, w_out, out_bits[i, t])
                if keep_potentials:
                    to_chw(cur, pot[i, t], is_conv, c_out, h_out, w_out)
            else:
                nchg = 0
                for j in range(n_neurons):
                    new = total[j] + cur[j]
                    if new != total[j] or t == 0:
                        nchg += 1
                    total[j] = new
                changed[i, t] = nchg
                if keep_potentials:
                    to_chw(total, pot[i, t], is_conv, c_out, h_out, w_out)
        if not spiking:
            to_chw(total, acc[i], is_conv, c_out, h_out, w_out)
    return out_bits, pot, changed, acc


@njit(cache=True, parallel=True)
def functional_layer_i64(vals: np.ndarray, steps: int, wt: np.ndarray, is_conv: bool,
                         c_in: int, h_in: int, w_in: int, c_out: int, h_out: int, w_out: int,
                         k: int, stride: int, padding: int, spiking: bool, leak_fx: np.int64,
                         frac_bits: np.int64, theta: np.int64, keep_potentials: bool):
    """Integer twin of :func:`functional_layer_f32` (int64 values, weights and potentials)."""
    n = vals.shape[0]
    tv = vals.shape[1]
    n_neurons = c_out * h_out * w_out
    nbytes = (n_neurons + 7) // 8
    out_bits = np.zeros((n, steps, nbytes), dtype=np.uint8)
    pot = np.zeros((n, steps if keep_potentials else 0, n_neurons if keep_potentials else 0),
                   dtype=np.int64)
    changed = np.zeros((n, steps), dtype=np.int64)
    acc = np.zeros((n, n_neurons), dtype=np.int64)
    for i in prange(n):
        u = np.zeros(n_neurons, dtype=np.int64)
        cur = np.zeros(n_neurons, dtype=np.int64)
        spk = np.zeros(n_neurons, dtype=np.bool_)
        total = np.zeros(n_neurons, dtype=np.int64)
        # constant input (Tv = 1, the analog layer): the current is the same at every step, so
        # it is scattered once and copied (bit-identical: the same adds in the same order)
        once = np.zeros(n_neurons if tv == 1 and steps > 1 else 0, dtype=np.int64)
        for t in range(steps):
            if tv == 1 and t > 0:
                cur[:] = once
            else:
                cur[:] = 0
                row = vals[i, t if tv > 1 else 0]
                if is_conv:
                    scatter_conv(row, wt, cur, c_in, h_in, w_in, c_out, h_out, w_out, k, stride,
                                 padding)
                else:
                    scatter_linear(row, wt, cur, c_in * h_in * w_in, c_out)
                if tv == 1 and steps > 1:
                    once[:] = cur
            if spiking:
                changed[i, t] = lif_step_i64(u, cur, leak_fx, frac_bits, theta, spk)
                pack_hwc(spk, is_conv, c_out, h_out, w_out, out_bits[i, t])
                if keep_potentials:
                    to_chw(cur, pot[i, t], is_conv, c_out, h_out, w_out)
            else:
                nchg = 0
                for j in range(n_neurons):
                    new = total[j] + cur[j]
                    if new != total[j] or t == 0:
                        nchg += 1
                    total[j] = new
                changed[i, t] = nchg
                if keep_potentials:
                    to_chw(total, pot[i, t], is_conv, c_out, h_out, w_out)
        if not spiking:
            to_chw(total, acc[i], is_conv, c_out, h_out, w_out)
    return out_bits, pot, changed, acc
