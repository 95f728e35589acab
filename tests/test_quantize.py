"""Post-training weight quantization (paper.md §2.11, §7.2)."""

from __future__ import annotations

import pytest
import torch
from sim_testutil import leaks, set_thresholds, spiking_pops, thresholds

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
    set_thresholds(m, torch.linspace(0.3, 0.7, len(spiking_pops(m))))
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
    names = [li.name for li in m.layer_infos]
    assert names == ["conv1", "conv2", "conv3", "conv4", "fc1", "out"]
    assert isinstance(info["scales"], dict) and list(info["scales"]) == names
    # the VGG layers are bias-free: weight codes only
    assert set(info["int_weights"]) == {f"{n}.weight" for n in names}
    for name, syn, src in zip(names, q.synapses, m.synapses, strict=True):
        codes = info["int_weights"][f"{name}.weight"]
        assert codes.dtype == torch.int8 and codes.shape == syn.weight.shape
        assert int(codes.abs().max()) <= 15
        assert torch.equal(syn.weight.detach(), codes.float() * info["scales"][name])
        assert info["scales"][name] == pytest.approx(float(src.weight.detach().abs().max()) / 15, rel=1e-6)
    # thresholds and leaks untouched, input model untouched
    assert torch.equal(thresholds(q), thresholds(m)) and torch.equal(leaks(q), leaks(m))
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
    with pytest.raises(SnnsimError, match="layer conv2"):
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


# ----------------------------------------------------------------------------- a residual graph
def _resnet_snn():
    """digits-resnet's ANN converted to an SNN: BN folded into conv biases, an identity shortcut."""
    from snnsim.graph import build_graph
    from snnsim.training import convert_ann_to_snn

    ann = build_model(build_graph("digits-resnet"), kind="ann", seed=0)
    with torch.no_grad():  # non-trivial running statistics, so the folded biases are not all zero
        for name in ("stem_bn", "s1b1_conv1_bn", "s1b1_conv2_bn", "s2b1_conv1_bn", "s2b1_conv2_bn", "s2b1_down_bn"):
            ann[name].running_mean.uniform_(-0.5, 0.5)
            ann[name].bias.uniform_(-0.2, 0.2)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)
    snn = convert_ann_to_snn(ann, [(x, y)], 4)
    snn.dataset_info = {"name": "synthetic", "input_shape": [1, 8, 8], "num_classes": 10}
    return snn, x


@pytest.mark.parametrize("bits", [3, 8])
def test_quantize_resnet_weights_and_biases(bits: int) -> None:
    from snnsim.compression.quantize import BIAS_BITS

    m, x = _resnet_snn()
    q = quantize_model(m, bits)
    info = q.quantization
    convs = ["stem", "s1b1_conv1", "s1b1_conv2", "s2b1_conv1", "s2b1_conv2", "s2b1_down", "out"]
    # one scale per synapse node (the identity shortcut has none), keyed by name
    assert sorted(info["scales"]) == sorted(convs)
    assert set(info["int_weights"]) == {f"{n}.{p}" for n in convs for p in ("weight", "bias")}
    # the layers that drive one population share one scale: that of their largest |weight|
    peak_of = {}
    for pop in m.populations:
        names = [m.layer_infos[li].name for li in pop.layers if m.layer_infos[li].kind != "identity"]
        for n in names:
            peak_of[n] = max(float(m[k].weight.detach().abs().max()) for k in names)
    assert info["scales"]["s2b1_conv2"] == info["scales"]["s2b1_down"]
    for name in convs:
        scale = info["scales"][name]
        w, b = info["int_weights"][f"{name}.weight"], info["int_weights"][f"{name}.bias"]
        assert w.dtype == int_dtype(bits) and b.dtype == torch.int32
        owns_peak = float(m[name].weight.detach().abs().max()) == peak_of[name]
        assert (int(w.abs().max()) == qmax(bits)) if owns_peak else (int(w.abs().max()) <= qmax(bits))
        assert int(b.abs().max()) <= qmax(BIAS_BITS)
        # float == int * scale exactly, for weights and biases alike (one scale: the weight's)
        assert torch.equal(q[name].weight.detach(), w.float() * torch.tensor(scale, dtype=torch.float32))
        assert torch.equal(q[name].bias.detach(), b.float() * torch.tensor(scale, dtype=torch.float32))
        assert scale == pytest.approx(peak_of[name] / qmax(bits), rel=1e-6)
        # a bias code is round(b / scale), within half a step of the float bias
        assert torch.equal(b.long(), torch.round(m[name].bias.detach().double() / scale).long())
        assert float((q[name].bias - m[name].bias).detach().abs().max()) <= scale / 2 * (1 + 1e-6)
    assert any(int(info["int_weights"][f"{n}.bias"].abs().max()) > 0 for n in convs)
    assert torch.equal(thresholds(q), thresholds(m)) and m.quantization is None
    check_quantized(q)
    with torch.no_grad():
        assert q.forward_snn(x[:4]).shape == (4, 10)
    tampered = quantize_model(m, bits)
    with torch.no_grad():
        tampered["s2b1_down"].bias[0] += 1e-3
    with pytest.raises(SnnsimError, match="layer s2b1_down: float bias"):
        check_quantized(tampered)


def test_check_quantized_names_tampered_biases_in_plain_words() -> None:
    """The one-line error for a bias that is not int * scale says "biases" (not "biass")."""
    m, _ = _resnet_snn()
    q = quantize_model(m, 4)
    with torch.no_grad():
        q["stem"].bias[0] += 1e-3
    with pytest.raises(SnnsimError, match=r"^layer stem: float biases differ from int_weights \* scale"):
        check_quantized(q)


def test_quantized_resnet_checkpoint_round_trip(tmp_path) -> None:
    from snnsim.checkpoint import validate_checkpoint
    from snnsim.errors import CheckpointError

    m, x = _resnet_snn()
    q = quantize_model(m, 5)
    path = save_model(q, tmp_path / "resnet_5bit.pt")
    ckpt = read_checkpoint(path)
    assert ckpt["format_version"] == 2 and ckpt["arch"] is None
    graph = validate_checkpoint(ckpt)
    assert list(graph.nodes) == list(q.graph.nodes)
    assert ckpt["quantization"]["scales"] == q.quantization["scales"]
    back = load_model(path)
    check_quantized(back)
    for key, codes in q.quantization["int_weights"].items():
        assert torch.equal(back.quantization["int_weights"][key], codes)
        assert back.quantization["int_weights"][key].dtype == codes.dtype
    for key, value in q.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    with torch.no_grad():
        assert torch.equal(back.forward_snn(x[:4]), q.forward_snn(x[:4]))
    # a bias that is no longer int * scale is refused on validation (checksum re-made to get past it)
    from snnsim.checkpoint import state_checksum

    bad = read_checkpoint(path)
    bad["state_dict"]["stem.bias"] = bad["state_dict"]["stem.bias"] + 1e-3
    bad["checksum"]["state"] = state_checksum(bad["state_dict"], bad["quantization"])
    with pytest.raises(CheckpointError, match="stem.bias differs from quantization.int_weights"):
        validate_checkpoint(bad)


def test_check_quantized_refuses_a_record_without_bias_codes() -> None:
    """A record lacking a layer's bias codes is an inconsistent layer: a one-line SnnsimError
    naming it, not a KeyError."""
    m, _ = _resnet_snn()
    q = quantize_model(m, 4)
    del q.quantization["int_weights"]["s1b1_conv2.bias"]
    with pytest.raises(SnnsimError, match="s1b1_conv2"):
        check_quantized(q)
