"""replay(): per-layer counts of a whole network against the dense PyTorch reference."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sim_testutil import MIXED, inputs, spiking_model

from snnsim.arch import primary_layers
from snnsim.errors import SnnsimError, TraceError
from snnsim.recording import record_trace
from snnsim.sim import SimCounts, replay
from snnsim.sim import reference as R
from snnsim.sim.engine import event_forward
from snnsim.sim.neurobench import inbounds_connections
from snnsim.sim.replay import layer_plans, simulate_chunk
from snnsim.trace import load_trace, population_file

FIELDS = {"events": "input_events", "syn": "syn_ops", "syn_nz": "syn_ops_nz", "touched": "touched_neurons"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    model = spiking_model(MIXED, timesteps=4, prune=0.3)
    trace = record_trace(model, inputs(MIXED, 9, seed=2), tmp_path_factory.mktemp("r") / "trace", batch_size=4,
                         labels=np.arange(9) % 10, progress=False)
    return model, trace


def reference_counts(model, trace) -> dict[str, np.ndarray]:
    """[L, T] counts summed over samples, the dense way."""
    n_layers, steps = model.num_layers, trace.timesteps
    out = {f: np.zeros((n_layers, steps), dtype=np.int64) for f in FIELDS}
    for li, info in enumerate(model.layer_infos):
        w = model.synapses[li].weight
        if info.analog_input:
            ref = R.counts_ref(info, w, np.asarray(trace.analog_input()), analog=True)
            for f in FIELDS:
                out[f][li] = ref[f].sum()
        else:
            ref = R.counts_ref(info, w, R.unpack(np.asarray(trace.events(li)), info.source_shape))
            for f in FIELDS:
                out[f][li] = ref[f].sum(axis=0)
    return out


def test_every_layer_and_timestep_equals_the_dense_reference(setup) -> None:
    model, trace = setup
    counts = replay(trace, model, progress=False)
    assert isinstance(counts, SimCounts) and counts.samples == 9 and counts.timesteps == 4
    ref = reference_counts(model, trace)
    for f, name in FIELDS.items():
        np.testing.assert_array_equal(getattr(counts, name), ref[f], err_msg=name)
        assert getattr(counts, name).shape == (model.num_layers, 4)
    assert (counts.syn_ops_nz < counts.syn_ops).all()  # 30 % of the weights are pruned
    # spikes out of layer l are the recorded inputs of layer l + 1; the output layer emits none
    for li in range(model.num_layers - 1):
        np.testing.assert_array_equal(counts.spikes_out[li], R.unpack(np.asarray(trace.events(li + 1)), model.layer_infos[li + 1].source_shape)
                                      .reshape(9, 4, -1).sum(axis=(0, 2)))
    assert (counts.spikes_out[-1] == 0).all()
    np.testing.assert_array_equal(counts.dense_ops, [i.macs for i in model.layer_infos])
    np.testing.assert_array_equal(counts.dense_ops_inbounds, [inbounds_connections(i) for i in model.layer_infos])
    np.testing.assert_array_equal(counts.neurons, [i.neurons for i in model.layer_infos])
    assert list(counts.analog) == [True] + [False] * (model.num_layers - 1)
    # the analog layer is MAC, and every other layer AC, avg-pooled ones included (no pitfall)
    assert counts.mac_ops is not None and counts.ac_ops is not None
    np.testing.assert_array_equal(counts.mac_ops[0], counts.syn_ops[0])
    assert (counts.mac_ops[1:] == 0).all() and counts.ac_ops[1].sum() == counts.syn_ops[1].sum() > 0
    assert counts.correct is None and counts.functional is None


def test_chunking_does_not_change_counts(setup) -> None:
    model, trace = setup
    a = replay(trace, model, chunk_size=1, progress=False)
    b = replay(str(trace.path), model, chunk_size=100, progress=False)  # a path works too
    for name in SimCounts.PER_T_FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_all_spiking_and_silent_traces(setup, tmp_path: Path) -> None:
    model, trace = setup
    for fill, name in ((0xFF, "full"), (0x00, "empty")):
        dest = tmp_path / name
        shutil.copytree(trace.path, dest)
        for pop in model.populations:
            if not pop.spiking:
                continue
            arr = np.load(dest / population_file(pop.index), mmap_mode="r+")
            arr[:] = fill  # padding bits past the last site are ignored by the kernels
            arr.flush()
            del arr
        tr = load_trace(dest, verify=False)  # the files were rewritten on purpose: checksums differ
        counts = replay(tr, model, progress=False, check_model=False)
        for li, info in enumerate(model.layer_infos[1:], start=1):
            if fill:
                factor = info.pool_kernel ** 2 if info.pool == "avg" else 1  # every spike of a window drives
                assert (counts.syn_ops[li] == 9 * factor * inbounds_connections(info)).all(), info.name
                assert (counts.touched_neurons[li] == 9 * info.neurons).all()
            else:
                assert (counts.syn_ops[li] == 0).all() and (counts.touched_neurons[li] == 0).all()
                assert (counts.input_events[li] == 0).all()


def test_per_sample_views_and_table(setup) -> None:
    model, trace = setup
    counts = replay(trace, model, progress=False)
    tot = counts.totals()
    assert tot["syn_ops"] == pytest.approx(counts.syn_ops.sum() / 9)
    assert tot["dense_ops"] == sum(i.macs for i in model.layer_infos) * 4
    assert tot["mac_ops"] + tot["ac_ops"] == pytest.approx(tot["syn_ops"])
    df = counts.to_frame()
    assert len(df) == model.num_layers * 4
    assert df["syn_ops"].sum() == pytest.approx(tot["syn_ops"])
    np.testing.assert_allclose(counts.layer_totals("syn_ops"), counts.syn_ops.sum(axis=1) / 9)


def test_replay_refuses_another_model_and_bad_options(setup) -> None:
    model, trace = setup
    other = spiking_model(MIXED, seed=5, timesteps=4)
    with pytest.raises(TraceError) as e:
        replay(trace, other, progress=False)
    assert "was recorded from model" in str(e.value) and "\n" not in str(e.value)
    for kwargs in ({"counting": "syops"}, {"functional": "fixed"}, {"drive": "sideways"}, {"batch_size": 0}):
        with pytest.raises(SnnsimError):
            replay(trace, model, progress=False, **kwargs)
    with pytest.raises(SnnsimError) as e:
        replay(trace, model, functional="integer", progress=False)
    assert "snnsim quantize" in str(e.value)


def test_progress_bar_follows_the_policy(setup, capsys: pytest.CaptureFixture[str]) -> None:
    from snnsim import progress

    model, trace = setup
    try:
        progress.set_policy("always")  # --progress
        replay(trace, model, progress=True)
        assert "replay" in capsys.readouterr().err
        progress.set_policy("auto")  # stderr is not a terminal here: no bar
        replay(trace, model, progress=True)
        assert "replay" not in capsys.readouterr().err
    finally:
        progress.set_policy("auto")


def test_functional_replay_leaves_the_model_untouched(setup) -> None:
    model, trace = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    replay(trace, model, functional=True, progress=False)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


# ------------------------------------------------------------------------------------ a ResNet graph
def _resnet_x() -> torch.Tensor:
    return torch.rand((64, 1, 8, 8), generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.fixture(scope="module", params=["as-built", "bn-calibrated"])
def resnet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The digits ResNet, built as an ANN (seed 0), converted to an SNN (T = 4) and traced on 16 inputs.

    'as-built': fresh BatchNorm statistics fold into all-zero biases. 'bn-calibrated': the ANN's
    BatchNorm statistics are first updated on the inputs (no weight training), so every folded
    conv carries a nonzero bias: the biased-layer path of the simulator runs for real.
    """
    from sim_testutil import converted_resnet

    x = _resnet_x()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        snn = converted_resnet(x, calibrate_bn=request.param == "bn-calibrated")
    trace = record_trace(snn, x[:16], tmp_path_factory.mktemp("resnet") / "t", progress=False)
    return snn, x, trace, request.param


def _per_step_spikes(trace, population: str) -> np.ndarray:
    """Recorded spikes of a population per timestep, summed over samples -> [T]."""
    bits = np.unpackbits(np.asarray(trace.spikes(population)), axis=2, count=trace.population(population).neurons)
    return bits.sum(axis=(0, 2)).astype(np.int64)


def test_resnet_has_residual_populations_and_biases(resnet) -> None:
    """What the other ResNet tests rely on: identity shortcuts, populations driven by two
    layers, biased layers (nonzero once BN is calibrated), and spikes in every population."""
    model, _, trace, variant = resnet
    infos = model.layer_infos
    assert any(i.kind == "identity" for i in infos)
    assert any(len(p.layers) > 1 for p in model.populations)
    assert all(i.bias for i in infos if i.kind != "identity")
    biases = [float(s.bias.detach().abs().max()) for s in model.synapses if s is not None]
    assert (max(biases) > 0) == (variant == "bn-calibrated")
    assert list(trace.layers) == list(infos) and list(trace.populations) == list(model.populations)
    assert (np.asarray(trace.spike_counts()).sum(axis=0) > 0).all()  # every spiking population spikes


def test_resnet_float_replay_is_spike_for_spike(resnet) -> None:
    model, x, trace, _ = resnet
    counts = replay(trace, model, functional="float", progress=False)
    f = counts.functional
    assert f is not None and f.mode == "float" and f.drive == "recorded"
    assert int(f.spike_mismatches.sum()) == 0, f.summary()
    assert f.recorded_spikes.sum() == np.asarray(trace.spike_counts()).sum() > 0
    np.testing.assert_array_equal(f.predictions, trace.predictions)
    assert f.agree_recorded == 16 and f.max_logit_error < 1e-5
    # chained (the simulator's own spikes drive the next populations): the same network
    chained = replay(trace, model, functional="float", drive="chained", progress=False).functional
    assert chained is not None and int(chained.spike_mismatches.sum()) == 0
    np.testing.assert_array_equal(chained.predictions, trace.predictions)
    # every population's potentials (on its first layer's row) against the PyTorch forward pass
    seen: dict[tuple[str, int], np.ndarray] = {}

    def obs(ev) -> None:
        seen[(ev.node, ev.t)] = ev.potential.detach().reshape(16, -1).numpy().copy()

    with torch.no_grad():
        model.forward_snn(x[:16], 4, obs)
    res = simulate_chunk(layer_plans(model), next(trace.iter_chunks(16)), 4, "float", "recorded", model,
                         keep_potentials=True)
    assert res.potentials is not None
    for pop in model.populations:
        for t in range(4):
            np.testing.assert_allclose(res.potentials[pop.primary][:, t], seen[(pop.name, t)], rtol=1e-5, atol=1e-5,
                                       err_msg=f"{pop.name} t={t}")
        for li in pop.layers:
            if li != pop.primary:
                assert res.potentials[li].size == 0


def test_resnet_population_figures_sit_on_each_populations_first_layer(resnet) -> None:
    model, _, trace, _ = resnet
    infos = model.layer_infos
    primary = primary_layers(infos)
    assert primary.count(True) == len(model.populations) < len(infos)  # some population has two layers
    assert [li for li, p in enumerate(primary) if p] == sorted(p.primary for p in model.populations)
    counts = replay(trace, model, functional="float", progress=False)
    f = counts.functional
    assert f is not None
    for pop in model.populations:
        row = pop.primary
        assert infos[row].target == pop.name
        assert counts.neurons[row] == pop.neurons
        np.testing.assert_array_equal(f.membrane_updates[row, 0], 16 * pop.neurons)
        if pop.spiking:
            want = _per_step_spikes(trace, pop.name)
            np.testing.assert_array_equal(counts.spikes_out[row], want, err_msg=pop.name)
            np.testing.assert_array_equal(f.recorded_spikes[row], want, err_msg=pop.name)
        else:
            assert (counts.spikes_out[row] == 0).all()
        for li in pop.layers:
            if li == row:
                continue
            # the other layers driving the population carry synaptic figures only
            assert counts.neurons[li] == 0 and (counts.spikes_out[li] == 0).all(), infos[li].name
            assert (f.membrane_updates[li] == 0).all() and (f.recorded_spikes[li] == 0).all()
            assert (f.spike_mismatches[li] == 0).all()
            assert counts.syn_ops[li].sum() > 0
    # each population is counted once
    assert counts.neurons.sum() == sum(p.neurons for p in model.populations)
    assert counts.spikes_out.sum() == np.asarray(trace.spike_counts()).sum()


def test_resnet_identity_shortcut_counts_its_source_spikes(resnet) -> None:
    model, _, trace, _ = resnet
    counts = replay(trace, model, progress=False)
    identities = [li for li, i in enumerate(model.layer_infos) if i.kind == "identity"]
    assert identities
    for li in identities:
        info = model.layer_infos[li]
        want = _per_step_spikes(trace, info.source)  # each spike adds once into one neuron
        assert want.sum() > 0
        for name in ("syn_ops", "syn_ops_nz", "input_events", "touched_neurons"):
            np.testing.assert_array_equal(getattr(counts, name)[li], want, err_msg=f"{info.name} {name}")
        assert counts.dense_ops[li] == info.neurons == counts.dense_ops_inbounds[li]
        assert counts.mac_ops is not None and counts.ac_ops is not None
        assert (counts.mac_ops[li] == 0).all()
        np.testing.assert_array_equal(counts.ac_ops[li], counts.syn_ops[li])  # an add, not a multiply
    # every other layer (strided conv, 1x1 downsample, avg-pooled fc) against the dense reference
    for li, info in enumerate(model.layer_infos):
        if info.kind == "identity":
            continue
        w = model.synapses[li].weight
        if info.analog_input:
            ref = R.counts_ref(info, w, np.asarray(trace.analog_input()), analog=True)
            ref = {k: np.repeat(v.sum(), 4) for k, v in ref.items()}
        else:
            ref = {k: v.sum(axis=0) for k, v in R.counts_ref(info, w, R.unpack(np.asarray(trace.events(li)),
                                                                            info.source_shape)).items()}
        for f, name in FIELDS.items():
            np.testing.assert_array_equal(getattr(counts, name)[li], ref[f], err_msg=f"{info.name} {name}")


def test_resnet_event_engine_gives_the_torch_spikes(resnet) -> None:
    """The event engine computes each current as float32 sums in event order (bias after the
    events, shortcut added after the conv), PyTorch in its convolution's order: only a neuron
    whose potential lies within float32 rounding of its threshold could fire in one and not the
    other. On this model no potential comes closer than ~1e-5 (relative) to its threshold,
    orders of magnitude above the rounding of these short sums (~1e-7), so the spikes must be
    identical (and chained flips would cascade, so a bound would hide a real bug)."""
    model, x, trace, _ = resnet
    margin = np.inf

    def obs(ev) -> None:
        nonlocal margin
        if ev.spikes is not None:
            rel = (ev.potential / model.threshold(ev.node).detach() - 1).abs().min().item()
            margin = min(margin, rel)

    with torch.no_grad():
        model.forward_snn(x[:16], 4, obs)
    assert margin > 1e-6  # the premise of exact agreement (see the docstring)
    spikes, logits = event_forward(model, x[:16].numpy(), 4)
    assert list(spikes) == [p.name for p in model.populations if p.spiking]
    mismatches = {name: int(np.unpackbits(bits ^ np.asarray(trace.spikes(name))).sum()) for name, bits in spikes.items()}
    assert sum(mismatches.values()) == 0, mismatches
    np.testing.assert_allclose(logits, trace.logits(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(logits.argmax(axis=1), trace.predictions)
