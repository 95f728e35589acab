"""Functional replay: float32 spike-for-spike against PyTorch, integer bit-exact against the
PyTorch integer reference, on a random network and on a trained digits SNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sim_testutil import MIXED, digits_model, inputs, observed, quantize, spiking_model

from snnsim.recording import record_trace
from snnsim.sim import replay
from snnsim.sim.integer import integer_forward, integer_spec, theta_error
from snnsim.sim.replay import layer_plans, simulate_chunk


@pytest.fixture(scope="module")
def float_setup(tmp_path_factory: pytest.TempPathFactory):
    model = spiking_model(MIXED, timesteps=5, prune=0.2)
    x = inputs(MIXED, 10, seed=4)
    trace = record_trace(model, x, tmp_path_factory.mktemp("f") / "trace", labels=np.arange(10) % 10, progress=False)
    return model, x, trace


def test_float_potentials_and_spikes_match_pytorch(float_setup) -> None:
    model, x, trace = float_setup
    _, seen = observed(model, x, 5)
    chunk = next(trace.iter_chunks(10))
    res = simulate_chunk(layer_plans(model), chunk, 5, "float", "recorded", model, keep_potentials=True)
    assert res.potentials is not None and res.out_bits is not None
    for li in range(model.num_layers):
        for t in range(5):
            torch_u = seen[(li, t)]["potential"].reshape(10, -1).numpy()
            np.testing.assert_allclose(res.potentials[li][:, t], torch_u, rtol=1e-5, atol=1e-5)
    assert res.mismatches is not None and int(res.mismatches.sum()) == 0
    counts = replay(trace, model, functional=True, progress=False)
    f = counts.functional
    assert f is not None and f.mode == "float" and f.drive == "recorded"
    assert int(f.spike_mismatches.sum()) == 0 and f.recorded_spikes.sum() > 0
    assert f.agree_recorded == 10 and f.max_logit_error < 1e-5
    np.testing.assert_array_equal(f.predictions, trace.predictions)
    assert counts.correct == int((trace.predictions == trace.labels).sum())
    # NeuroBench membrane-update rule: all neurons at t=0, the changed ones after
    np.testing.assert_array_equal(f.membrane_updates[:, 0], [10 * i.neurons for i in model.layer_infos])
    assert (f.membrane_updates[:, 1:] <= f.membrane_updates[:, :1]).all()


def test_chained_float_equals_recorded_drive_when_nothing_flips(float_setup) -> None:
    model, _, trace = float_setup
    a = replay(trace, model, functional="float", drive="chained", progress=False)
    b = replay(trace, model, functional="float", drive="recorded", progress=False)
    np.testing.assert_array_equal(a.syn_ops, b.syn_ops)
    np.testing.assert_array_equal(a.functional.predictions, b.functional.predictions)


@pytest.mark.parametrize("bits", [8, 4])
def test_integer_mode_is_bit_exact_against_the_torch_integer_reference(tmp_path, bits: int) -> None:
    model = quantize(spiking_model(MIXED, timesteps=4, threshold=0.4), bits)
    x = inputs(MIXED, 9, seed=7)
    trace = record_trace(model, x, tmp_path / "q", labels=np.arange(9) % 10, progress=False)
    spec = integer_spec(model, timesteps=4)
    assert theta_error(spec, model) < 0.5
    ref_u: dict = {}

    def obs(ev) -> None:
        ref_u[(ev.index, ev.t)] = ev.potential.clone()  # a chain: population k is driven by layer k

    acc = integer_forward(model, x, spec, 4, obs)
    chunk = next(trace.iter_chunks(9))
    res = simulate_chunk(layer_plans(model), chunk, 4, "integer", "chained", model, spec, keep_potentials=True)
    assert res.potentials is not None
    for li in range(model.num_layers):
        for t in range(4):
            np.testing.assert_array_equal(res.potentials[li][:, t], ref_u[(li, t)].reshape(9, -1).numpy(),
                                          err_msg=f"layer {li} t {t}")
    np.testing.assert_array_equal(res.acc, acc.numpy())
    counts = replay(trace, model, functional="integer", progress=False, chunk_size=4)
    f = counts.functional
    assert f is not None and f.mode == "integer" and f.drive == "chained" and f.integer is not None
    np.testing.assert_array_equal(f.predictions, acc.numpy().argmax(axis=1))
    assert f.integer["layers"][0]["theta_int"] >= 1
    # chained counts come from the integer network's own spikes
    assert counts.syn_ops[1:].sum() > 0


def test_trained_digits_model_float_and_integer(tmp_path) -> None:
    model, x, y, source = digits_model(tmp_path)
    trace = record_trace(model, x, tmp_path / "digits", labels=y, progress=False)
    with torch.no_grad():
        torch_acc = float((model.forward_snn(x).argmax(1).numpy() == y).mean())
    counts = replay(trace, model, functional="float", progress=False)
    f = counts.functional
    assert f is not None
    if source.startswith("trained in-test"):
        assert int(f.spike_mismatches.sum()) == 0, f.summary()  # spike for spike
    else:  # a shipped checkpoint: float32 summation order may flip a potential within 1 ulp of θ
        assert f.spike_mismatches.sum() <= 1e-5 * f.recorded_spikes.sum(), f.summary()
    assert f.accuracy == pytest.approx(torch_acc)
    assert f.agree_recorded == len(y)
    q = quantize(model, 8)
    qtrace = record_trace(q, x, tmp_path / "digits-q", labels=y, progress=False)
    qcounts = replay(qtrace, q, functional="integer", progress=False)
    qf = qcounts.functional
    assert qf is not None
    spec = integer_spec(q, timesteps=model.timesteps)
    acc = integer_forward(q, x, spec, model.timesteps)
    np.testing.assert_array_equal(qf.predictions, acc.numpy().argmax(1))
    with torch.no_grad():
        q_float_acc = float((q.forward_snn(x).argmax(1).numpy() == y).mean())
    print(f"\ndigits ({source}): float torch {torch_acc:.3f} = simulator {f.accuracy:.3f}; "
          f"8-bit float-weights {q_float_acc:.3f}, integer hardware {qf.accuracy:.3f}; {qf.summary()}")
    assert qf.accuracy is not None and qf.accuracy > 0.5 * q_float_acc  # integer rounding must not wreck it


# ----------------------------------------------------------------------------- residual integer replay
@pytest.fixture(scope="module")
def resnet_x() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(12, 1, 8, 8) * 2 - 0.5


@pytest.mark.parametrize("bits", [8, 4])
def test_integer_residual_replay_is_bit_exact(tmp_path, resnet_x: torch.Tensor, bits: int) -> None:
    """Biased convs (folded BN), an identity shortcut and a strided 1x1 downsample: every
    population's integer potential equals the PyTorch integer reference at every step."""
    from sim_testutil import converted_resnet

    from snnsim.compression.quantize import quantize_model

    model = quantize_model(converted_resnet(resnet_x), bits)
    assert any(i.kind == "identity" for i in model.layer_infos) and any(i.bias for i in model.layer_infos)
    spec = integer_spec(model, timesteps=4)
    ident = [lay for lay in spec.layers if lay.info.kind == "identity"]
    assert ident and all(lay.identity_code == round(1 / spec.populations[lay.info.target].unit) for lay in ident)
    ref: dict = {}

    def obs(ev) -> None:
        ref[(ev.node, ev.t)] = ev.potential.clone()

    acc = integer_forward(model, resnet_x, spec, 4, obs)
    trace = record_trace(model, resnet_x, tmp_path / "r", labels=np.arange(12) % 10, progress=False)
    res = simulate_chunk(layer_plans(model), next(trace.iter_chunks(12)), 4, "integer", "chained", model, spec,
                         keep_potentials=True)
    assert res.potentials is not None
    for pop in model.populations:
        for t in range(4):
            np.testing.assert_array_equal(res.potentials[pop.primary][:, t], ref[(pop.name, t)]
                                          .reshape(12, -1).numpy(), err_msg=f"{pop.name} t {t}")
    np.testing.assert_array_equal(res.acc, acc.numpy())
    f = replay(trace, model, functional="integer", progress=False, chunk_size=5, input_scale=spec.input_scale).functional
    assert f is not None and f.integer is not None
    np.testing.assert_array_equal(f.predictions, acc.numpy().argmax(axis=1))
    assert {p["name"] for p in f.integer["populations"]} == {p.name for p in model.populations}


def test_quantize_gives_one_scale_per_population(resnet_x: torch.Tensor) -> None:
    from sim_testutil import converted_resnet

    from snnsim.compression.quantize import population_scales, quantize_model, scale_for

    model = converted_resnet(resnet_x)
    scales = population_scales(model, 5)
    for pop in model.populations:
        names = [model.layer_infos[li].name for li in pop.layers if model.layer_infos[li].kind != "identity"]
        peak = max(float(model[n].weight.abs().max()) for n in names)
        assert {scales[n] for n in names} == {scale_for(peak, 5)}
    down = next(p for p in model.populations if len([li for li in p.layers if model.layer_infos[li].kind == "conv"]) == 2)
    assert len(down.layers) == 2  # conv2 and the 1x1 downsample share one scale
    # a VGG population has one layer: its scale is its own layer's, as before
    vgg = spiking_model(MIXED)
    for info in vgg.layer_infos:
        assert population_scales(vgg, 6)[info.name] == scale_for(float(vgg[info.name].weight.abs().max()), 6)
    q = quantize_model(model, 5)
    assert q.quantization is not None and q.quantization["scales"] == scales


def test_integer_refuses_layers_of_one_population_in_different_units(resnet_x: torch.Tensor) -> None:
    """A residual model quantized per layer (before one scale per population): refused, fix named."""
    from sim_testutil import converted_resnet

    from snnsim.compression.quantize import quantize_model
    from snnsim.errors import SnnsimError

    q = quantize_model(converted_resnet(resnet_x), 8)
    assert q.quantization is not None
    down = next(i for i in q.layer_infos if i.name.endswith("down"))
    q.quantization["scales"][down.name] *= 0.7  # no longer a whole multiple of its population's unit
    with pytest.raises(SnnsimError, match="one potential unit per population.*re-quantize with `snnsim quantize`"):
        integer_spec(q, timesteps=4)
