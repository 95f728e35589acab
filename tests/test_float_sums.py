"""Synaptic currents rounded from float64 sums (docs/counting.md, "Float arithmetic").

A trace records every conv and affine output as the float32 rounding of its float64 sum, and the
float replay computes the same numbers event by event, so a neuron within one float32 rounding
of its threshold fires in both or in neither, whatever order each side sums in.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sim_testutil import converted_resnet

from snnsim.graph.nodes import Affine, Conv2d
from snnsim.recording import record_trace
from snnsim.sim import replay
from snnsim.trace import META_FILE, load_trace, meta_digest
from snnsim.trace_cache import obtain_trace


def _conv64_numpy(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: int,
                  dilation: int, groups: int) -> np.ndarray:
    """A float64 convolution written with numpy, tap by tap (its own summation order)."""
    n, c_in, h, wd = x.shape
    c_out, cpg, k, _ = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    h_out = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    w_out = (wd + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    out = np.zeros((n, c_out, h_out, w_out))
    opg = c_out // groups
    for g in range(groups):
        wg = w[g * opg:(g + 1) * opg].astype(np.float64)
        for ky in range(k):
            for kx in range(k):
                y0, x0 = ky * dilation, kx * dilation
                patch = xp[:, g * cpg:(g + 1) * cpg, y0:y0 + stride * h_out:stride, x0:x0 + stride * w_out:stride]
                out[:, g * opg:(g + 1) * opg] += np.einsum("nchw,oc->nohw", patch, wg[:, :, ky, kx])
    if b is not None:
        out += b.astype(np.float64)[None, :, None, None]
    return out


def test_exact_synapses_are_the_float32_rounding_of_an_independent_float64_sum() -> None:
    """Every conv and affine output of the model's exact forward equals numpy's float64 sum
    rounded once to float32, bit for bit (analog inputs: the products are exact too)."""
    torch.manual_seed(3)
    x = torch.randn(40, 1, 8, 8)
    model = converted_resnet(x)
    seen = 0
    for name, node in model.graph.nodes.items():
        if not isinstance(node, Conv2d | Affine):
            continue
        m = model[name]
        if isinstance(node, Conv2d):
            inp = torch.randn(6, m.in_channels, 8, 8)
            got = model._synapse_exact(name, inp)
            ref = _conv64_numpy(inp.numpy(), m.weight.detach().numpy(), None if m.bias is None else m.bias.detach().numpy(),
                                m.stride[0], m.padding[0], m.dilation[0], m.groups)
        else:
            inp = torch.randn(6, m.in_features)
            got = model._synapse_exact(name, inp)
            ref = inp.numpy().astype(np.float64) @ m.weight.detach().numpy().astype(np.float64).T
            if m.bias is not None:
                ref = ref + m.bias.detach().numpy().astype(np.float64)
        assert got.dtype == torch.float32
        np.testing.assert_array_equal(got.detach().numpy(), ref.astype(np.float32))
        seen += 1
    assert seen >= 5  # every conv (downsample included) and the affine of the digits ResNet


def test_the_trace_is_the_same_at_every_batch_size_and_the_float_replay_finds_no_mismatch(tmp_path: Path) -> None:
    torch.manual_seed(4)
    x = torch.randn(48, 1, 8, 8)
    model = converted_resnet(x, timesteps=4)
    a = record_trace(model, x, tmp_path / "a", progress=False)
    b = record_trace(model, x, tmp_path / "b", batch_size=1, progress=False)
    assert a.synaptic_sums == "float64" and a.meta["synaptic_sums"] == "float64"
    total = 0
    for pop in model.populations:
        if pop.spiking:
            np.testing.assert_array_equal(np.asarray(a.spikes(pop.name)), np.asarray(b.spikes(pop.name)))
            total += int(np.unpackbits(np.asarray(a.spikes(pop.name))).sum())
    assert total > 1000  # not vacuous: the network spikes
    np.testing.assert_array_equal(np.asarray(a.logits()), np.asarray(b.logits()))
    res = replay(a, model, functional="float", progress=False).functional
    assert res.spike_mismatches.sum() == 0 and res.max_logit_error == 0.0 and res.note == ""
    # the event engine sums in float32 and says so; the replay of its trace explains any flip
    ev = record_trace(model, x, tmp_path / "e", engine="event", progress=False)
    assert ev.synaptic_sums == "float32"
    # PyTorch's own float32 convolutions, on request (another tool's spikes): the plain forward pass's logits
    f32 = record_trace(model, x, tmp_path / "f", exact_currents=False, progress=False)
    assert f32.synaptic_sums == "float32"
    with torch.no_grad():
        np.testing.assert_array_equal(np.asarray(f32.logits()), model.forward_snn(x, 4).numpy())


def _set_meta(path: Path, **fields: object) -> None:
    meta = json.loads((path / META_FILE).read_text())
    for key, value in fields.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    meta["meta_sha256"] = meta_digest(meta)
    (path / META_FILE).write_text(json.dumps(meta))


def test_a_torch_trace_of_an_earlier_snnsim_loads_and_the_cache_records_it_again(tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Traces written before ``synaptic_sums`` existed load as float32 sums; the cache does not
    reuse such a torch trace, and a float replay of one says why it may differ."""
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(5)
    x = torch.randn(32, 1, 8, 8)
    model = converted_resnet(x, timesteps=3)
    logs: list[str] = []
    first = obtain_trace(model, dataset="digits", samples=16, progress=False, log=logs.append)
    _set_meta(first.path, synaptic_sums=None)
    old = load_trace(first.path)
    assert old.synaptic_sums == "float32"
    again = obtain_trace(model, dataset="digits", samples=16, progress=False, log=logs.append)
    assert again.synaptic_sums == "float64"
    assert any("float32 sums (recorded by an earlier snnsim)" in line for line in logs), logs
    assert replay(again, model, functional="float", progress=False).functional.spike_mismatches.sum() == 0
