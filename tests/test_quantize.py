"""Post-training weight quantization (paper.md §2.11, §7.2)."""

from __future__ import annotations

import pytest
import torch

from snnsim.arch import make_arch
from snnsim.checkpoint import load_model, read_checkpoint, save_model
from snnsim.compression.quantize import (
    SCHEME,
    check_quantized,
    dequantize,
    int_dtype,
    qmax,
    quantize_model,
    quantize_tensor,
)
from snnsim.compression.spatial import measure
from snnsim.errors import SnnsimError
from snnsim.models import build_model


def _model(seed: int = 0):
    spec = make_arch("digits").with_widths([8, 8, 12, 12, 16], name="tiny")
    m = build_model(spec, "snn", timesteps=3, seed=seed)
    with torch.no_grad():
        m.thresholds.copy_(torch.linspace(0.3, 0.7, m.thresholds.numel()))
    m.dataset_info = {"name": "synthetic", "input_shape": [1, 8, 8], "num_classes": 10}
    return m


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8, 12, 16, 24])
def test_round_trip_error_and_range(bits: int) -> None:
    w = torch.randn(64, 32, 3, 3) * 0.1
    codes, scale = quantize_tensor(w, bits)
    q = 2 ** (bits - 1) - 1
    assert codes.dtype == int_dtype(bits)
    assert int(codes.abs().max()) <= q
    assert int(codes.abs().max()) == q  # the largest weight uses the top code
    err = (w.double() - dequantize(codes, scale).double()).abs()
    # Δ/2 bound, plus float32 rounding of the product int*Δ
    bound = scale / 2 + 2 * torch.finfo(torch.float32).eps * float(w.abs().max())
    assert float(err.max()) <= bound
    assert scale == float(torch.tensor(scale, dtype=torch.float32))  # Δ is a float32 value


def test_scale_formula_and_zero_layer() -> None:
    w = torch.tensor([-0.7, 0.1, 0.4, 0.0])
    codes, scale = quantize_tensor(w, 3)  # qmax = 3
    assert scale == pytest.approx(0.7 / 3, rel=1e-7)
    assert codes.tolist() == [-3, 0, 2, 0]  # 0.1/Δ = 0.43 -> 0, 0.4/Δ = 1.71 -> 2
    z, s = quantize_tensor(torch.zeros(5), 4)
    assert s == 1.0 and z.abs().sum() == 0


@pytest.mark.parametrize("bits", [1, 0, 25, 31, 33])
def test_bad_bits_rejected(bits: int) -> None:
    with pytest.raises(SnnsimError):
        quantize_model(_model(), bits)
    with pytest.raises(SnnsimError):
        qmax(32)


def test_quantized_model_layout_and_reload(tmp_path) -> None:
    m = _model()
    q = quantize_model(m, 5)
    info = q.quantization
    assert info["bits"] == 5 and info["scheme"] == SCHEME == "uniform-symmetric-per-layer"
    assert len(info["scales"]) == m.num_layers
    assert set(info["int_weights"]) == {f"synapses.{i}.weight" for i in range(m.num_layers)}
    for i, syn in enumerate(q.synapses):
        codes = info["int_weights"][f"synapses.{i}.weight"]
        assert codes.dtype == torch.int8 and codes.shape == syn.weight.shape
        assert int(codes.abs().max()) <= 15
        assert torch.equal(syn.weight.detach(), codes.float() * info["scales"][i])
        assert info["scales"][i] == pytest.approx(float(m.synapses[i].weight.detach().abs().max()) / 15, rel=1e-6)
    # thresholds and leaks untouched, input model untouched
    assert torch.equal(q.thresholds, m.thresholds) and torch.equal(q.leaks, m.leaks)
    assert m.quantization is None
    assert not torch.equal(q.synapses[0].weight, m.synapses[0].weight)
    check_quantized(q)
    path = save_model(q, tmp_path / "snn_5bit.pt")
    back = load_model(path)
    check_quantized(back)
    assert back.quantization["bits"] == 5 and back.quantization["scheme"] == SCHEME
    assert back.quantization["scales"] == info["scales"]
    for k, v in info["int_weights"].items():
        assert torch.equal(back.quantization["int_weights"][k], v)
        assert back.quantization["int_weights"][k].dtype == torch.int8
    assert torch.equal(back.synapses[2].weight, q.synapses[2].weight)
    assert read_checkpoint(path)["quantization"]["bits"] == 5


def test_check_quantized_detects_tampering() -> None:
    q = quantize_model(_model(), 4)
    with torch.no_grad():
        q.synapses[1].weight[0, 0, 0, 0] += 1e-3
    with pytest.raises(SnnsimError, match="layer 1"):
        check_quantized(q)


def test_float_reference_is_identity_and_high_bits_match_float() -> None:
    m = _model()
    ident = quantize_model(m, 32)
    assert ident.quantization is None
    for a, b in zip(ident.state_dict().values(), m.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 8, 8, generator=g)
    with torch.no_grad():
        y = m.eval()(x).argmax(1)  # labels = the float model's own predictions (eval: no dropout)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    assert measure(ident, loader, progress=False).accuracy == 1.0
    q16 = quantize_model(m, 16)
    assert measure(q16, loader, progress=False).accuracy >= 0.95
    q24 = quantize_model(m, 24)
    assert int_dtype(24) == torch.int32
    assert float((q24.synapses[0].weight - m.synapses[0].weight).detach().abs().max()) < 1e-6
    q2 = quantize_model(m, 2)
    assert all(set(v.unique().tolist()) <= {-1, 0, 1} for v in q2.quantization["int_weights"].values())
