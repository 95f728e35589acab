"""replay(): per-layer counts of a whole network against the dense PyTorch reference."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sim_testutil import MIXED, inputs, spiking_model

from snnsim.errors import SnnsimError, TraceError
from snnsim.sim import SimCounts, replay
from snnsim.sim import reference as R
from snnsim.sim.neurobench import inbounds_connections
from snnsim.trace import layer_file, load_trace, record_trace

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
        if li == 0:
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
        for li in range(1, model.num_layers):
            arr = np.load(dest / layer_file(li), mmap_mode="r+")
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
