"""Numba kernels against their independent dense numpy/PyTorch references (snnsim.sim.reference)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnsim.arch import LayerInfo
from snnsim.sim import kernels as K
from snnsim.sim import reference as R
from snnsim.sim.replay import (
    LayerPlan,
    _count_layer,
    _layer_current,
    input_rows,
    layer_values,
    plan_for,
)

FIELDS = {"events": K.COL_EVENTS, "syn": K.COL_SYN, "syn_nz": K.COL_SYN_NZ, "touched": K.COL_TOUCHED,
          "nb_eff": K.COL_NB_EFF, "nb_binary": K.COL_NB_BINARY, "sites": K.COL_SITES}


def conv_info(c_in: int, h: int, w: int, c_out: int, k: int, stride: int, pad: int, pool: str | None = None,
              pk: int = 1, groups: int = 1, dilation: int = 1) -> LayerInfo:
    """A conv LayerInfo reading a (c_in, h, w) source, optionally pooled by ``pk`` first."""
    hp, wp = (h // pk, w // pk) if pool else (h, w)
    h_out = (hp + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    w_out = (wp + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    return LayerInfo(index=1, name="conv", kind="conv", in_shape=(c_in, hp, wp), out_shape=(c_out, h_out, w_out),
                     source_shape=(c_in, h, w), kernel=k, stride=stride, padding=pad, pool=pool,  # type: ignore[arg-type]
                     pool_kernel=pk if pool else 1, groups=groups, dilation=dilation)


def linear_info(source: tuple[int, ...], out: int, pool: str | None = None, pk: int = 1) -> LayerInfo:
    if len(source) == 3:
        c, h, w = source
        n_in = c * (h // pk) * (w // pk) if pool else c * h * w
        in_shape: tuple[int, ...] = (n_in,)
    else:
        in_shape = source
    return LayerInfo(index=1, name="fc", kind="linear", in_shape=in_shape, out_shape=(out,), source_shape=source,
                     pool=pool, pool_kernel=pk if pool else 1, flatten=len(source) == 3)  # type: ignore[arg-type]


def random_weight(info: LayerInfo, rng: np.random.Generator, prune: float) -> np.ndarray:
    w = rng.standard_normal(info.weight_shape()).astype(np.float32)
    w[rng.random(w.shape) < prune] = 0.0
    return w


# (k, stride, pad) of the conv kernel tests: every tap pattern of the stride-1 and general paths
CONV_GEOMETRIES = [(3, 1, 1), (3, 1, 0), (1, 1, 0), (5, 1, 2), (3, 2, 1), (4, 2, 1), (3, 3, 2)]
# (c_in, c_out, groups, k, stride, pad, dilation) of grouped / dilated convs: grouped, depthwise,
# dilated with stride 1, 2 (gcd 2: every tap steps by 1) and 3, and stride 2 with dilation 3 (gcd 1)
GROUPED_GEOMETRIES = [(4, 6, 2, 3, 1, 1, 1), (3, 3, 3, 3, 1, 1, 1), (2, 4, 1, 3, 1, 2, 2), (4, 4, 4, 3, 2, 2, 2),
                      (2, 3, 1, 3, 2, 1, 3), (6, 4, 2, 2, 2, 1, 2), (4, 2, 2, 4, 1, 1, 2), (2, 2, 1, 3, 3, 2, 2)]


def grouped_conv(c_in: int, c_out: int, groups: int, k: int, stride: int, pad: int, dilation: int, h: int = 9,
                 w: int = 8, prune: float = 0.3) -> tuple[LayerInfo, np.ndarray, LayerPlan, np.random.Generator]:
    """A grouped / dilated conv with random pruned weights, its plan, and the rng."""
    rng = np.random.default_rng(c_in * 1000 + c_out * 100 + groups * 10 + k + stride + pad + dilation)
    info = conv_info(c_in, h, w, c_out, k, stride, pad, groups=groups, dilation=dilation)
    weight = random_weight(info, rng, prune=prune)
    return info, weight, plan_for(info, weight), rng


def random_conv(k: int, stride: int, pad: int, c_in: int, h: int, w: int, c_out: int,
                prune: float) -> tuple[LayerInfo, np.ndarray, LayerPlan, np.random.Generator]:
    """A conv layer with random pruned weights, its plan, and the rng (seeded by the geometry)."""
    rng = np.random.default_rng(k * 10 + stride + pad)
    info = conv_info(c_in, h, w, c_out, k, stride, pad)
    weight = random_weight(info, rng, prune=prune)
    return info, weight, plan_for(info, weight), rng


def check_counts(info: LayerInfo, weight: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """Kernel counts of packed ``spikes`` [n, T, *source] must equal the dense reference exactly."""
    plan = plan_for(info, weight)
    got = _count_layer(plan, R.pack(spikes), None, spikes.shape[1])
    ref = R.counts_ref(info, torch.from_numpy(weight), spikes.astype(np.float64))
    for name, col in FIELDS.items():
        np.testing.assert_array_equal(got[..., col], ref[name], err_msg=f"{name} of {info}")
    return got


# ------------------------------------------------------------------------------------ fan-out
@pytest.mark.parametrize("k,stride,pad", CONV_GEOMETRIES)
def test_conv_fanout_matches_gradient_reference(k: int, stride: int, pad: int) -> None:
    info, w, plan, _ = random_conv(k, stride, pad, 3, 9, 7, 5, prune=0.4)
    np.testing.assert_array_equal(plan.fan, R.fanout_ref(info))
    np.testing.assert_array_equal(plan.fan_nz, R.fanout_ref(info, torch.from_numpy(w)))
    # every in-bounds connection is counted once: total = all-ones input through all-ones weights
    assert plan.fan.sum() == R.counts_ref(info, torch.ones(info.weight_shape()),
                                          np.ones((1, 1, *info.source_shape)))["syn"].sum()


@pytest.mark.parametrize("geometry", GROUPED_GEOMETRIES, ids=str)
def test_grouped_dilated_fanout_matches_gradient_reference(geometry: tuple[int, ...]) -> None:
    """Each site drives its group's output channels through its real dilated taps only; the map
    sums to the closed form NeuroBench's Dense uses and to the graph node's connections."""
    from snnsim.graph.nodes import Conv2d
    from snnsim.sim.neurobench import inbounds_connections

    c_in, c_out, groups, k, stride, pad, dilation = geometry
    info, w, plan, _ = grouped_conv(*geometry)
    np.testing.assert_array_equal(plan.fan, R.fanout_ref(info))
    np.testing.assert_array_equal(plan.fan_nz, R.fanout_ref(info, torch.from_numpy(w)))
    assert plan.fan.max() <= k * k * c_out // groups  # no site reaches another group's channels
    node = Conv2d(out_channels=c_out, kernel_size=k, stride=stride, padding=pad, dilation=dilation, groups=groups)
    assert plan.fan.sum() == inbounds_connections(info) == node.connections(info.in_shape, info.out_shape)
    assert info.weight_shape() == node.weight_shape(info.in_shape) and info.macs == node.macs(info.in_shape, info.out_shape)
    # an ungrouped conv of the same shape drives all C_out channels: groups times as many synapses
    np.testing.assert_array_equal(R.fanout_ref(replace(info, groups=1)), groups * plan.fan)


# ------------------------------------------------------------------------------------ counting
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), pool=st.sampled_from([None, "avg", "max"]), k=st.sampled_from([1, 3, 5]),
       stride=st.sampled_from([1, 2]), pad=st.integers(0, 2), h=st.integers(3, 9), w=st.integers(3, 9),
       density=st.sampled_from([0.0, 0.05, 0.3, 0.9, 1.0]))
def test_conv_counts_equal_dense_reference(seed: int, pool: str | None, k: int, stride: int, pad: int, h: int, w: int,
                                           density: float) -> None:
    rng = np.random.default_rng(seed)
    pk = 2 if pool else 1
    if (h // pk + 2 * pad - k) < 0 or (w // pk + 2 * pad - k) < 0:
        return  # kernel larger than the padded input: not a layer anyone builds
    info = conv_info(int(rng.integers(1, 4)), h, w, int(rng.integers(1, 5)), k, stride, pad, pool, pk)
    weight = random_weight(info, rng, prune=0.3)
    spikes = rng.random((2, 3, *info.source_shape)) < density
    check_counts(info, weight, spikes)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), pool=st.sampled_from([None, "avg", "max", "sum"]), k=st.sampled_from([1, 2, 3]),
       stride=st.sampled_from([1, 2, 3]), pad=st.integers(0, 3), dilation=st.sampled_from([1, 2, 3]),
       groups=st.sampled_from([1, 2, 3]), depthwise=st.booleans(), h=st.integers(3, 10), w=st.integers(3, 10),
       density=st.sampled_from([0.0, 0.05, 0.3, 1.0]))
def test_grouped_dilated_conv_counts_equal_dense_reference(seed: int, pool: str | None, k: int, stride: int, pad: int,
                                                           dilation: int, groups: int, depthwise: bool, h: int, w: int,
                                                           density: float) -> None:
    """Events, synaptic ops (all and nonzero weights), touched neurons (per group) and the
    NeuroBench columns of a grouped / dilated conv equal F.conv2d(groups=, dilation=) sums."""
    rng = np.random.default_rng(seed)
    pk = 2 if pool else 1
    extent = dilation * (k - 1) + 1
    if h // pk + 2 * pad < extent or w // pk + 2 * pad < extent:
        return  # the dilated kernel does not fit the padded input
    c_in = groups * int(rng.integers(1, 3))
    c_out = c_in if depthwise and groups == c_in else groups * int(rng.integers(1, 3))
    info = conv_info(c_in, h, w, c_out, k, stride, pad, pool, pk, groups=groups, dilation=dilation)
    weight = random_weight(info, rng, prune=0.3)
    spikes = rng.random((2, 3, *info.source_shape)) < density
    check_counts(info, weight, spikes)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), pool=st.sampled_from([None, "avg", "max"]), flat=st.booleans(),
       density=st.sampled_from([0.0, 0.1, 0.5, 1.0]))
def test_linear_counts_equal_dense_reference(seed: int, pool: str | None, flat: bool, density: float) -> None:
    rng = np.random.default_rng(seed)
    # flat: odd height, so pooling drops a row; else a plain 1-D source
    info = linear_info((3, 5, 4), 7, pool, 2 if pool else 1) if flat else linear_info((13,), 6)
    weight = random_weight(info, rng, prune=0.5)
    spikes = rng.random((3, 2, *info.source_shape)) < density
    check_counts(info, weight, spikes)


@pytest.mark.parametrize("pool", [None, "avg", "max"])
def test_all_spiking_gives_dense_and_silence_gives_zero(pool: str | None) -> None:
    info = conv_info(4, 8, 8, 6, 3, 1, 1, pool, 2 if pool else 1)
    weight = random_weight(info, np.random.default_rng(0), prune=0.0)
    plan = plan_for(info, weight)
    dense_inbounds = plan.fan.sum()
    assert dense_inbounds < info.macs  # padding taps are not connections
    full = check_counts(info, weight, np.ones((1, 2, *info.source_shape), dtype=bool))
    factor = 4 if pool == "avg" else 1  # every one of the k^2 spikes of a window drives the synapses
    assert (full[..., K.COL_SYN] == factor * dense_inbounds).all()
    assert (full[..., K.COL_NB_EFF] == dense_inbounds).all()  # NeuroBench sees the pooled nonzeros once
    assert (full[..., K.COL_TOUCHED] == info.neurons).all()
    assert (full[..., K.COL_NB_BINARY] == 1).all()
    none = check_counts(info, weight, np.zeros((1, 2, *info.source_shape), dtype=bool))
    assert (none[..., [K.COL_EVENTS, K.COL_SYN, K.COL_SYN_NZ, K.COL_TOUCHED]] == 0).all()


def test_avg_pool_partial_window_is_not_binary_but_stays_counted_per_spike() -> None:
    info = conv_info(1, 4, 4, 2, 3, 1, 1, "avg", 2)
    weight = np.ones(info.weight_shape(), dtype=np.float32)
    spikes = np.zeros((1, 1, 1, 4, 4), dtype=bool)
    spikes[0, 0, 0, 0, 0] = spikes[0, 0, 0, 1, 1] = True  # two spikes in the top-left window
    got = check_counts(info, weight, spikes)
    fan_top_left = 2 * 4  # pooled 2x2 map, 3x3 kernel, pad 1: the corner reaches all 4 outputs x 2 channels
    assert got[0, 0, K.COL_EVENTS] == 2 and got[0, 0, K.COL_SYN] == 2 * fan_top_left
    assert got[0, 0, K.COL_NB_BINARY] == 0 and got[0, 0, K.COL_NB_EFF] == fan_top_left


@pytest.mark.parametrize("geometry", [(4, 6, 2, 3, 1, 1, 1), (3, 3, 3, 3, 2, 2, 2), (2, 4, 1, 3, 1, 2, 2)],
                         ids=["grouped", "depthwise-dilated-stride2", "dilated"])
def test_grouped_analog_layer_equals_dense_reference(geometry: tuple[int, ...]) -> None:
    c_in, c_out, groups, k, stride, pad, dilation = geometry
    info = replace(conv_info(c_in, 7, 6, c_out, k, stride, pad, groups=groups, dilation=dilation), analog_input=True)
    rng = np.random.default_rng(11)
    weight = random_weight(info, rng, prune=0.2)
    x = rng.standard_normal((3, *info.source_shape)).astype(np.float32)
    x[x < -0.3] = 0
    x[1, : c_in // groups] = 0  # the first group silent in sample 1: its channels are not touched
    got = _count_layer(plan_for(info, weight), None, input_rows(x, False), 2)
    ref = R.counts_ref(info, torch.from_numpy(weight), x, analog=True)
    for name, col in FIELDS.items():
        for t in range(2):
            np.testing.assert_array_equal(got[:, t, col], ref[name], err_msg=name)
    if groups > 1:
        assert got[1, 0, K.COL_TOUCHED] < got[0, 0, K.COL_TOUCHED]


def test_analog_layer_skips_zeros_and_flags_ternary_input() -> None:
    info = LayerInfo(index=0, name="conv1", kind="conv", in_shape=(2, 5, 5), out_shape=(3, 5, 5), source_shape=(2, 5, 5),
                     kernel=3, stride=1, padding=1, analog_input=True)
    rng = np.random.default_rng(3)
    weight = random_weight(info, rng, prune=0.2)
    x = rng.standard_normal((4, 2, 5, 5)).astype(np.float32)
    x[x < -0.5] = 0
    x[1] = rng.integers(-1, 2, (2, 5, 5))
    x[2] = 0
    plan = plan_for(info, weight)
    got = _count_layer(plan, None, input_rows(x, False), 3)
    ref = R.counts_ref(info, torch.from_numpy(weight), x, analog=True)
    for name, col in FIELDS.items():
        for t in range(3):
            np.testing.assert_array_equal(got[:, t, col], ref[name], err_msg=name)
    assert list(got[:, 0, K.COL_NB_BINARY]) == [0, 1, 1, 0]
    assert got[2, 0, K.COL_SYN] == 0 and got[0, 0, K.COL_SYN] < plan.fan.sum()


def test_sites_popcount_and_mismatch_match_numpy() -> None:
    rng = np.random.default_rng(5)
    spikes = rng.random((3, 2, 3, 7, 6)) < 0.4
    packed = R.pack(spikes)
    for pool, mode in (("avg", 1), ("max", 2)):
        info = conv_info(3, 7, 6, 2, 3, 1, 1, pool, 2)
        mult = K.sites_from_packed(packed, 3, 7, 6, mode, 2)
        ref = R.multiplicity_ref(info, torch.from_numpy(spikes.reshape(-1, 3, 7, 6).astype(np.float64)))
        np.testing.assert_array_equal(mult.reshape(-1), ref.numpy().reshape(-1).astype(np.int32))
        # the functional path's values: float32 mult / k^2 (avg) or mult (max), int64 mult
        div = np.float32(4.0) if mode == 1 else np.float32(1.0)
        want = ref.numpy().reshape(mult.shape).astype(np.float32) / div
        np.testing.assert_array_equal(K.site_values(packed, 3, 7, 6, mode, 2, np.float32, div), want)
        np.testing.assert_array_equal(K.site_values(packed, 3, 7, 6, mode, 2, np.int64), mult.astype(np.int64))
    np.testing.assert_array_equal(K.popcount_packed(packed), spikes.reshape(3, 2, -1).sum(axis=2))
    other = R.pack(rng.random(spikes.shape) < 0.4)
    diff = (np.unpackbits(packed, axis=2) != np.unpackbits(other, axis=2)).sum(axis=2)
    np.testing.assert_array_equal(K.popcount_packed(packed, other), diff)


# ------------------------------------------------------------------------------------ functional pieces
@pytest.mark.parametrize("k,stride,pad", CONV_GEOMETRIES)
def test_scatter_conv_equals_torch_conv(k: int, stride: int, pad: int) -> None:
    info, weight, plan, rng = random_conv(k, stride, pad, 3, 6, 6, 4, prune=0.2)
    c_out, h_out, w_out = info.out_shape
    vals = (rng.random(3 * 36) < 0.3).astype(np.float32) * np.float32(0.25) * rng.integers(1, 5, 3 * 36).astype(np.float32)
    cur = np.zeros(c_out * h_out * w_out, dtype=np.float32)
    ops = K.scatter_conv(vals[None], plan.transposed(weight), cur[None], 3, 6, 6, c_out, h_out, w_out, k, stride, pad)
    ref = R.scatter_ref(info, torch.from_numpy(vals.reshape(1, 3, 6, 6)), torch.from_numpy(weight))[0]
    np.testing.assert_allclose(cur.reshape(h_out, w_out, c_out).transpose(2, 0, 1), ref.numpy(), rtol=1e-5, atol=1e-5)
    assert ops == R.counts_ref(info, torch.from_numpy(weight), (vals != 0).reshape(1, 1, 3, 6, 6))["syn"].sum()
    # integers: exact
    wi = rng.integers(-7, 8, info.weight_shape()).astype(np.int64)
    vi = rng.integers(0, 5, 3 * 36).astype(np.int64)
    cur_i = np.zeros(c_out * h_out * w_out, dtype=np.int64)
    K.scatter_conv(vi[None], plan.transposed(wi), cur_i[None], 3, 6, 6, c_out, h_out, w_out, k, stride, pad)
    ref_i = R.scatter_ref(info, torch.from_numpy(vi.reshape(1, 3, 6, 6)).double(), torch.from_numpy(wi).double())[0]
    np.testing.assert_array_equal(cur_i.reshape(h_out, w_out, c_out).transpose(2, 0, 1), ref_i.numpy().astype(np.int64))


@pytest.mark.parametrize("geometry", GROUPED_GEOMETRIES, ids=str)
def test_grouped_dilated_scatter_conv_equals_torch_conv(geometry: tuple[int, ...]) -> None:
    """The scatter adds each event into its group's output channels only, through its dilated
    taps: float32 close to F.conv2d(groups=, dilation=), int64 exact, ops = the event fan-out."""
    c_in, c_out, groups, k, stride, pad, dilation = geometry
    info, weight, plan, rng = grouped_conv(*geometry, h=7, w=6, prune=0.2)
    _, h_out, w_out = info.out_shape
    n_in = c_in * 42
    vals = (rng.random((2, n_in)) < 0.4).astype(np.float32) * rng.integers(1, 5, (2, n_in)).astype(np.float32)
    cur = np.zeros((2, c_out * h_out * w_out), dtype=np.float32)
    ops = K.scatter_conv(vals, plan.transposed(weight), cur, c_in, 7, 6, c_out, h_out, w_out, k, stride, pad, groups,
                         dilation)
    ref = R.scatter_ref(info, torch.from_numpy(vals.reshape(2, c_in, 7, 6)), torch.from_numpy(weight))
    np.testing.assert_allclose(cur.reshape(2, h_out, w_out, c_out).transpose(0, 3, 1, 2), ref.numpy(), rtol=1e-5,
                               atol=1e-5)
    assert np.abs(ref.numpy()).max() > 0.5  # not vacuous
    assert ops == R.counts_ref(info, torch.from_numpy(weight), (vals != 0).reshape(1, 2, c_in, 7, 6))["syn"].sum()
    wi = rng.integers(-7, 8, info.weight_shape()).astype(np.int64)
    vi = rng.integers(0, 5, (2, n_in)).astype(np.int64)
    cur_i = np.zeros((2, c_out * h_out * w_out), dtype=np.int64)
    K.scatter_conv(vi, plan.transposed(wi), cur_i, c_in, 7, 6, c_out, h_out, w_out, k, stride, pad, groups, dilation)
    ref_i = R.scatter_ref(info, torch.from_numpy(vi.reshape(2, c_in, 7, 6)).double(), torch.from_numpy(wi).double())
    np.testing.assert_array_equal(cur_i.reshape(2, h_out, w_out, c_out).transpose(0, 3, 1, 2),
                                  ref_i.numpy().astype(np.int64))


def test_grouped_scatter_sums_in_event_then_tap_order() -> None:
    """Float32 sums of a grouped, dilated conv visit events in (c, y, x) order and taps in
    (ky, kx) order: bit for bit a plain Python loop in that order."""
    info, weight, plan, rng = grouped_conv(4, 6, 2, 3, 2, 2, 2, h=7, w=6, prune=0.0)
    c_out, h_out, w_out = info.out_shape
    vals = (rng.standard_normal((1, 4 * 42)) * (rng.random((1, 4 * 42)) < 0.5)).astype(np.float32)
    cur = np.zeros((1, c_out * h_out * w_out), dtype=np.float32)
    K.scatter_conv(vals, plan.transposed(weight), cur, 4, 7, 6, c_out, h_out, w_out, 3, 2, 2, 2, 2)
    want = np.zeros((c_out, h_out, w_out), dtype=np.float32)
    v = vals.reshape(4, 7, 6)
    for c in range(4):
        grp = c // 2
        for y in range(7):
            for x in range(6):
                if v[c, y, x] == 0:
                    continue
                for ky in range(3):
                    for kx in range(3):
                        oy, ry = divmod(y + 2 - 2 * ky, 2)
                        ox, rx = divmod(x + 2 - 2 * kx, 2)
                        if ry or rx or not (0 <= oy < h_out and 0 <= ox < w_out):
                            continue
                        for co in range(grp * 3, grp * 3 + 3):
                            want[co, oy, ox] = np.float32(want[co, oy, ox] + np.float32(v[c, y, x] * weight[co, c % 2, ky, kx]))
    np.testing.assert_array_equal(cur.reshape(h_out, w_out, c_out).transpose(2, 0, 1), want)


def test_scatter_linear_equals_torch_linear() -> None:
    rng = np.random.default_rng(1)
    info = linear_info((20,), 7)
    weight = random_weight(info, rng, prune=0.3)
    vals = (rng.random(20) < 0.5).astype(np.float32)
    cur = np.zeros(7, dtype=np.float32)
    assert K.scatter_linear(vals[None], plan_for(info, weight).transposed(weight), cur[None], 20, 7) == int((vals != 0).sum()) * 7
    np.testing.assert_allclose(cur, weight @ vals, rtol=1e-6, atol=1e-6)


def test_lif_steps_are_bitwise_the_torch_arithmetic() -> None:
    rng = np.random.default_rng(2)
    theta = np.float32(0.7)
    # include values exactly at, just below and just above the threshold
    cur = rng.standard_normal(4000).astype(np.float32)
    cur[:3] = [theta, np.nextafter(theta, np.float32(0)), np.nextafter(theta, np.float32(2))]
    u0 = rng.standard_normal(4000).astype(np.float32)
    leak = np.float32(0.9901)
    u = u0.copy()
    c = cur.copy()
    spikes = np.zeros(4000, dtype=np.bool_)
    changed = K.lif_step(u, c, leak, theta, None, spikes)
    v, s, new = R.lif_step_ref(torch.from_numpy(u0), torch.from_numpy(cur), torch.tensor(leak), torch.tensor(theta))
    np.testing.assert_array_equal(c, v.numpy())
    np.testing.assert_array_equal(spikes, s.numpy().astype(bool))
    np.testing.assert_array_equal(u, new.numpy())
    assert changed == int((new.numpy() != u0).sum())
    # integer step, negative potentials included (arithmetic shift = floor)
    ui0 = rng.integers(-10**6, 10**6, 4000).astype(np.int64)
    ci = rng.integers(-5000, 5000, 4000).astype(np.int64)
    ui, cc = ui0.copy(), ci.copy()
    spikes_i = np.zeros(4000, dtype=np.bool_)
    K.lif_step(ui, cc, np.int64(64887), np.int64(2000), np.int64(16), spikes_i)
    vi, si, newi = R.lif_step_int_ref(torch.from_numpy(ui0), torch.from_numpy(ci), 64887, 16, 2000)
    np.testing.assert_array_equal(cc, vi.numpy())
    np.testing.assert_array_equal(spikes_i, si.numpy())
    np.testing.assert_array_equal(ui, newi.numpy())
    assert int(torch.bitwise_right_shift(torch.tensor(-3), 1)) == -2  # floor, as documented


# (v_reset, fire, per-neuron threshold and leak) of the neuron-variant tests
NEURON_VARIANTS = {
    "soft": (None, ">", False), "hard-0": (0.0, ">", False), "hard-negative": (-0.25, ">", False),
    "hard-0.1": (0.1, ">", False), "fire-ge": (None, ">=", False), "per-neuron": (None, ">", True),
    "all": (0.1, ">=", True),
}


def _bits(a: np.ndarray) -> np.ndarray:
    """float32 values as their bit patterns: equal means bit for bit, the sign of zero included."""
    return np.ascontiguousarray(a, dtype=np.float32).view(np.int32)


@pytest.mark.parametrize("variant", list(NEURON_VARIANTS))
def test_lif_step_variants_are_bitwise_the_torch_arithmetic(variant: str) -> None:
    """Hard reset, '>=' firing and per-neuron thresholds / leaks: potentials, spikes and the reset
    potential are bit for bit torch_net's LIF step (reference.lif_step_ref), at the threshold too."""
    v_reset, fire, per_neuron = NEURON_VARIANTS[variant]
    rng = np.random.default_rng(sum(map(ord, variant)))
    n = 4000
    theta = (rng.random(n) * 0.9 + 0.1).astype(np.float32) if per_neuron else np.float32(0.7)
    leak = (rng.random(n) * 0.5 + 0.5).astype(np.float32) if per_neuron else np.float32(0.9901)
    th = np.broadcast_to(theta, (n,))
    u0 = rng.standard_normal(n).astype(np.float32)
    u0[:6] = 0.0
    u0[6] = -0.0
    cur = rng.standard_normal(n).astype(np.float32)
    # potentials exactly at, just below and just above the threshold (u0 = 0: v = cur), and -0.0
    cur[:3] = [th[0], np.nextafter(th[1], np.float32(0)), np.nextafter(th[2], np.float32(2))]
    cur[3], cur[4], cur[5], cur[6] = th[3] * np.float32(2), -0.0, 0.0, -0.0
    u, c = u0.copy(), cur.copy()
    spikes = np.zeros(n, dtype=np.bool_)
    vr = None if v_reset is None else np.float32(v_reset)
    changed = K.lif_step(u, c, leak, theta, None, spikes, vr, fire == ">=")
    v, s, new = R.lif_step_ref(torch.from_numpy(u0), torch.from_numpy(cur), torch.as_tensor(leak),
                               torch.as_tensor(theta), v_reset, fire)
    np.testing.assert_array_equal(_bits(c), _bits(v.numpy()))
    np.testing.assert_array_equal(spikes, s.numpy().astype(bool))
    np.testing.assert_array_equal(_bits(u), _bits(new.numpy()))
    assert changed == int((new.numpy() != u0).sum())
    assert spikes[0] == (fire == ">=") and not spikes[1] and spikes[2]  # u == theta fires only with '>='
    if v_reset is not None:
        assert (u[spikes] == np.float32(v_reset)).all() and spikes.sum() > 100
    # integer step: '>=' and the hard reset to an integer value
    ui0 = rng.integers(-10**6, 10**6, n).astype(np.int64)
    ci = rng.integers(-5000, 5000, n).astype(np.int64)
    ci[0] = 2000 - ((ui0[0] * 64887) >> 16)  # lands exactly on the threshold
    ui, cc = ui0.copy(), ci.copy()
    spikes_i = np.zeros(n, dtype=np.bool_)
    vri = None if v_reset is None else np.int64(round(v_reset * 100))
    K.lif_step(ui, cc, np.int64(64887), np.int64(2000), np.int64(16), spikes_i, vri, fire == ">=")
    vi, si, newi = R.lif_step_int_ref(torch.from_numpy(ui0), torch.from_numpy(ci), 64887, 16, 2000,
                                      None if vri is None else int(vri), fire)
    np.testing.assert_array_equal(cc, vi.numpy())
    np.testing.assert_array_equal(spikes_i, si.numpy())
    np.testing.assert_array_equal(ui, newi.numpy())
    assert cc[0] == 2000 and spikes_i[0] == (fire == ">=")


@pytest.mark.parametrize("variant", ["hard-0.1", "fire-ge", "per-neuron", "all"])
def test_population_steps_run_every_neuron_variant_like_the_reference(variant: str) -> None:
    v_reset, fire, per_neuron = NEURON_VARIANTS[variant]
    rng = np.random.default_rng(7)
    n, steps, neurons = 3, 6, 45
    theta = (rng.random(neurons) * 0.9 + 0.2).astype(np.float32) if per_neuron else np.float32(0.7)
    leak = (rng.random(neurons) * 0.3 + 0.7).astype(np.float32) if per_neuron else np.float32(0.9)
    cur = _near_threshold_current(rng, np.float32(np.broadcast_to(theta, (neurons,))[0]), n, steps, neurons)
    vr = None if v_reset is None else np.float32(v_reset)
    bits, pot, changed, _ = K.population_steps(cur, True, leak, theta, None, True, vr, fire == ">=")
    s_ref, pot_ref, chg_ref, _ = R.population_steps_ref(cur, leak, theta, True, v_reset=v_reset, fire=fire)
    np.testing.assert_array_equal(bits, R.pack(s_ref))
    np.testing.assert_array_equal(_bits(pot), _bits(pot_ref))
    np.testing.assert_array_equal(changed, chg_ref)
    assert 0 < s_ref.sum() < s_ref.size
    # not the soft-reset, '>'-firing run with one threshold: the variant changes what happens
    plain = K.population_steps(cur, True, np.float32(0.9), np.float32(0.7), None, True)
    assert not (np.array_equal(plain[0], bits) and np.array_equal(plain[1], pot))


# ------------------------------------------------------------------------------------ general path: currents + population
def kernel_currents(plan: LayerPlan, vals: np.ndarray, steps: int, wt: np.ndarray | None = None,
                    bias: np.ndarray | None = None) -> np.ndarray:
    """K.layer_currents on a plan's geometry (weights and bias default to the plan's)."""
    wt = plan.transposed(plan.weight) if wt is None else wt
    return K.layer_currents(vals, steps, wt, plan.is_conv, plan.cp, plan.hp, plan.wp, plan.c_out, plan.h_out,
                            plan.w_out, plan.ksize, plan.stride, plan.padding, bias, plan.groups, plan.dilation)


def site_vals(info: LayerInfo, rng: np.random.Generator, n: int, tv: int, dtype=np.float32) -> np.ndarray:
    """Values a layer reads [n, tv, S]: avg-pooled spike values (0, 1/4, .. 1) or graded analog
    values with exact zeros (tv = 1), or small ints for int64."""
    size = int(np.prod(info.in_shape))
    if dtype == np.int64:
        return rng.integers(-3, 4, (n, tv, size)).astype(np.int64)
    if tv == 1:
        x = rng.standard_normal((n, 1, size)).astype(np.float32)
        x[rng.random(x.shape) < 0.2] = 0.0
        return x
    return (rng.integers(0, 5, (n, tv, size)) * (rng.random((n, tv, size)) < 0.4)).astype(np.float32) / np.float32(4)


CURRENT_CASES = {
    "conv-stride2-bias": (lambda: replace(conv_info(3, 9, 8, 5, 3, 2, 1), bias=True), True),
    "conv-stride1": (lambda: conv_info(2, 6, 6, 4, 3, 1, 1), False),
    "conv1x1-stride2-bias": (lambda: replace(conv_info(4, 8, 8, 6, 1, 2, 0), bias=True), True),
    "linear-bias": (lambda: replace(linear_info((20,), 7), bias=True), True),
    "conv-grouped-dilated-bias": (lambda: replace(conv_info(4, 8, 7, 6, 3, 1, 2, groups=2, dilation=2), bias=True), True),
    "conv-depthwise-stride2": (lambda: conv_info(3, 7, 7, 3, 3, 2, 1, groups=3), False),
    "linear-pooled-flat-bias": (lambda: replace(linear_info((3, 4, 4), 5, "avg", 2), bias=True), True),
}


@pytest.mark.parametrize("case", list(CURRENT_CASES))
@pytest.mark.parametrize("tv", [1, 3], ids=["constant-input", "per-step"])
def test_layer_currents_equal_torch_with_the_bias_after_the_events(case: str, tv: int) -> None:
    make, has_bias = CURRENT_CASES[case]
    info = make()
    rng = np.random.default_rng(sum(map(ord, case)) + tv)
    weight = random_weight(info, rng, prune=0.2)
    bias = (rng.standard_normal(info.out_features) * 0.5).astype(np.float32) if has_bias else None
    plan = plan_for(info, weight, bias)
    steps = 3
    vals = site_vals(info, rng, 4, tv)
    got = kernel_currents(plan, vals, steps, bias=plan.bias)
    assert got.dtype == np.float32 and got.shape == (4, steps, info.neurons)
    ref = R.layer_currents_ref(info, weight, bias, vals, steps)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)  # (C, H, W) order: a layout slip fails here
    assert np.abs(ref).max() > 0.1  # not vacuous
    if tv == 1:  # a constant input is scattered once: every step has the same current
        for t in range(1, steps):
            np.testing.assert_array_equal(got[:, t], got[:, 0])
    # the bias is added after the events, in float32: bit for bit the bias-free current plus the bias
    no_bias = kernel_currents(plan, vals, steps)
    np.testing.assert_allclose(no_bias, R.layer_currents_ref(info, weight, None, vals, steps), rtol=1e-5, atol=1e-5)
    if bias is not None:
        per_neuron = np.repeat(bias, info.neurons // info.out_features)  # (C, H, W): bias[c] over H*W
        np.testing.assert_array_equal(got, no_bias + per_neuron[None, None, :])
        assert not np.array_equal(got, no_bias)
    # float64 sums (the replay's, replay.FLOAT_SUMS): the float32 rounding of the dense float64
    # reference, bit for bit, although the two sum in different orders
    got64 = kernel_currents(plan, vals.astype(np.float64), steps, bias=plan.bias)
    assert got64.dtype == np.float32
    np.testing.assert_array_equal(got64, ref.astype(np.float32))
    # integers: exact (int64 values, weights and bias)
    wi = rng.integers(-7, 8, info.weight_shape()).astype(np.int64)
    bi = rng.integers(-50, 51, info.out_features).astype(np.int64) if has_bias else None
    vi = site_vals(info, rng, 4, tv, np.int64)
    got_i = kernel_currents(plan, vi, steps, wt=plan.transposed(wi), bias=bi)
    assert got_i.dtype == np.int64
    np.testing.assert_array_equal(got_i, R.layer_currents_ref(info, wi, bi, vi, steps).round().astype(np.int64))


def test_identity_current_is_the_source_values() -> None:
    """A residual shortcut: each event adds its value to the neuron at its own position."""
    shape = (3, 4, 5)
    info = LayerInfo(index=3, name="add.src", kind="identity", in_shape=shape, out_shape=shape, source_shape=shape,
                     source="src", target="dst")
    plan = plan_for(info, None)
    rng = np.random.default_rng(8)
    spikes = rng.random((2, 3, *shape)) < 0.3
    vals = layer_values(plan, R.pack(spikes), None, "float", None)
    got = _layer_current(plan, vals, 3)
    assert got.dtype == np.float32 and got.shape == (2, 3, 60)
    ref = R.layer_currents_ref(info, None, None, vals, 3)
    np.testing.assert_array_equal(got, ref.astype(np.float32))
    np.testing.assert_array_equal(ref, spikes.reshape(2, 3, -1).astype(np.float64))
    # the analog input through an identity: the same values at every step
    x = rng.standard_normal((2, 1, 60)).astype(np.float32)
    np.testing.assert_array_equal(_layer_current(plan, x, 3), R.layer_currents_ref(info, None, None, x, 3).astype(np.float32))


def _near_threshold_current(rng: np.random.Generator, theta: np.float32, n: int, steps: int, neurons: int) -> np.ndarray:
    cur = (rng.standard_normal((n, steps, neurons)) * 0.6).astype(np.float32)
    cur[0, 0, :3] = [theta, np.nextafter(theta, np.float32(0)), np.nextafter(theta, np.float32(2))]
    cur[1, :, 0] = 0.0  # a neuron that never changes after t = 0
    return cur


@pytest.mark.parametrize("spiking", [True, False], ids=["lif", "integrator"])
def test_population_steps_equal_the_reference_lif_loop(spiking: bool) -> None:
    rng = np.random.default_rng(4)
    theta, leak = np.float32(0.7), np.float32(0.9)
    n, steps, neurons = 3, 5, 37  # not a multiple of 8: the packed padding bits stay zero
    cur = _near_threshold_current(rng, theta, n, steps, neurons)
    bits, pot, changed, acc = K.population_steps(cur, spiking, leak, theta, None, True)
    s_ref, pot_ref, chg_ref, acc_ref = R.population_steps_ref(cur, leak, theta, spiking)
    np.testing.assert_array_equal(bits, R.pack(s_ref))
    np.testing.assert_array_equal(pot, pot_ref)  # float32, bit for bit
    np.testing.assert_array_equal(changed, chg_ref)
    np.testing.assert_array_equal(acc, acc_ref)
    if spiking:
        assert 0 < s_ref.sum() < s_ref.size and acc.shape == (n, 0)
        assert s_ref[0, 0, 2] and not s_ref[0, 0, 0] and not s_ref[0, 0, 1]  # fire iff u > theta
        assert changed[1, 1:].min() < neurons  # a silent neuron at rest does not count as updated
    else:
        assert not bits.any() and acc.shape == (n, neurons)
        np.testing.assert_array_equal(acc, pot[:, -1])  # the running sum after the last step
        assert (changed[:, 0] == neurons).all() and (changed[1, 1:] < neurons).all()
    # without potentials: the same spikes, nothing kept
    bits2, pot2, changed2, acc2 = K.population_steps(cur, spiking, leak, theta, None, False)
    assert pot2.size == 0
    np.testing.assert_array_equal(bits2, bits)
    np.testing.assert_array_equal(changed2, changed)
    np.testing.assert_array_equal(acc2, acc)
    # int64: the fixed-point LIF step (floor shift) and exact accumulation
    ci = rng.integers(-3000, 3000, (n, steps, neurons)).astype(np.int64)
    bits_i, pot_i, changed_i, acc_i = K.population_steps(ci, spiking, np.int64(58982), np.int64(2000), np.int64(16), True)
    s_i, pot_ri, chg_ri, acc_ri = R.population_steps_ref(ci, 58982, 2000, spiking, frac_bits=16)
    np.testing.assert_array_equal(bits_i, R.pack(s_i))
    np.testing.assert_array_equal(pot_i, pot_ri)
    np.testing.assert_array_equal(changed_i, chg_ri)
    np.testing.assert_array_equal(acc_i, acc_ri)


@pytest.mark.parametrize("variant", ["all", "hard-negative"])
def test_fused_layer_runs_neuron_variants_like_the_general_path(variant: str) -> None:
    """Per-channel thresholds and leaks laid out per neuron in each kernel's order ((H, W, C)
    inside functional_layer's conv, (C, H, W) in population_steps) give the same spikes and
    potentials bit for bit, with the hard reset and '>=' firing."""
    v_reset, fire, per_neuron = NEURON_VARIANTS[variant]
    info, weight, plan, rng = grouped_conv(4, 6, 2, 3, 1, 2, 2, h=6, w=6, prune=0.2)
    c_out, h_out, w_out = info.out_shape
    vals = site_vals(info, rng, 3, 4) * np.float32(4)
    theta_c = (rng.random(c_out) + 0.5).astype(np.float32) if per_neuron else np.float32(1.5)
    leak_c = (rng.random(c_out) * 0.3 + 0.7).astype(np.float32) if per_neuron else np.float32(0.95)

    def layout(values, chw: bool):  # type: ignore[no-untyped-def]
        if not per_neuron:
            return values
        return np.repeat(values, h_out * w_out) if chw else np.tile(values, h_out * w_out)

    vr = None if v_reset is None else np.float32(v_reset)
    fused = K.functional_layer(vals, 4, plan.transposed(weight), True, plan.cp, plan.hp, plan.wp, c_out, h_out,
                               w_out, 3, 1, 2, True, layout(leak_c, False), layout(theta_c, False), None, True, False,
                               2, 2, vr, fire == ">=")
    general = K.population_steps(kernel_currents(plan, vals, 4), True, layout(leak_c, True), layout(theta_c, True),
                                 None, True, vr, fire == ">=")
    for a, b in zip(fused, general, strict=True):
        np.testing.assert_array_equal(a, b)
    assert 0 < K.popcount_packed(fused[0]).sum() < fused[1].size


@pytest.mark.parametrize("spiking", [True, False], ids=["lif", "integrator"])
@pytest.mark.parametrize("geometry", [(3, 1, 1), (3, 2, 1), (3, 1, 2, 2, 2), (3, 2, 2, 4, 2)],
                         ids=["stride1", "stride2", "grouped-dilated", "depthwise-dilated-stride2"])
def test_general_path_equals_the_fused_layer_on_a_bias_free_layer(spiking: bool, geometry: tuple[int, ...]) -> None:
    """layer_currents + population_steps give functional_layer's spikes, potentials and
    accumulations bit for bit (the same float32 sums): a population's path does not change results."""
    k, stride, pad, *gd = geometry
    if gd:  # (groups, dilation) on 4 input channels
        info, weight, plan, rng = grouped_conv(4, 4, gd[0], k, stride, pad, gd[1], h=6, w=6, prune=0.2)
    else:
        info, weight, plan, rng = random_conv(k, stride, pad, 3, 6, 6, 4, prune=0.2)
    info = replace(info, spiking=spiking)
    vals = site_vals(info, rng, 3, 4) * np.float32(4)  # multiplicities 0..4: currents reach the threshold
    wt = plan.transposed(weight)
    theta, leak = np.float32(1.5), np.float32(0.95)
    for sums in (np.float32, np.float64):  # the event engine's float32 sums, the replay's float64 ones
        v = vals.astype(sums)
        fused = K.functional_layer(v, 4, wt, True, plan.cp, plan.hp, plan.wp, plan.c_out, plan.h_out, plan.w_out,
                                   plan.ksize, plan.stride, plan.padding, spiking, leak, theta, None, True, False,
                                   plan.groups, plan.dilation)
        general = K.population_steps(kernel_currents(plan, v, 4), spiking, leak, theta, None, True)
        for a, b in zip(fused, general, strict=True):
            np.testing.assert_array_equal(a, b)
        assert fused[1].dtype == np.float32 and fused[3].dtype == np.float32  # the neurons run in float32
        if spiking:
            assert 0 < K.popcount_packed(fused[0]).sum() < fused[1].size
        else:
            assert np.abs(fused[3]).max() > 0
