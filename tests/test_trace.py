"""Trace recording, lazy loading, validation and model fingerprints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sim_testutil import AVG_FC, MIXED, inputs, observed, quantize, spiking_model
from torch.utils.data import TensorDataset

from snnsim.arch import make_arch
from snnsim.errors import SnnsimError, TraceError
from snnsim.trace import (
    INPUT_FILE,
    META_FILE,
    check_trace_matches,
    layer_file,
    load_trace,
    model_fingerprint,
    packed_bytes,
    record_trace,
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory):
    model = spiking_model(MIXED, timesteps=3)
    x = inputs(MIXED, 11)
    labels = np.arange(11) % 10
    trace = record_trace(model, x, tmp_path_factory.mktemp("t") / "trace", batch_size=4, labels=labels, progress=False)
    return model, x, labels, trace


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


def test_trace_holds_exactly_the_models_events(recorded) -> None:
    model, x, labels, trace = recorded
    logits, seen = observed(model, x, 3)
    assert trace.samples == 11 and trace.timesteps == 3 and len(trace.layers) == model.num_layers
    np.testing.assert_array_equal(np.asarray(trace.analog_input()), x.numpy())  # stored once, float32
    assert trace.meta["input"]["repeated_every_timestep"] is True
    for li in range(1, model.num_layers):
        got = trace.unpack(li)
        for t in range(3):
            np.testing.assert_array_equal(got[:, t], seen[(li, t)]["inputs"].numpy() != 0)
    np.testing.assert_array_equal(np.asarray(trace.logits()), logits.numpy())
    np.testing.assert_array_equal(trace.predictions, logits.argmax(1).numpy())
    np.testing.assert_array_equal(trace.labels, labels)
    spikes = np.stack([sum(seen[(li, t)]["inputs"].reshape(11, -1).sum(1).numpy() for t in range(3))
                       for li in range(1, model.num_layers)], axis=1)
    np.testing.assert_array_equal(np.asarray(trace.spike_counts()), spikes)
    assert trace.sample_ids == list(range(11))
    assert trace.fingerprint == model_fingerprint(model)
    check_trace_matches(trace, model)
    assert trace.dataset["name"] == "synthetic"


def test_iter_chunks_covers_every_sample_lazily(recorded) -> None:
    _, _, _, trace = recorded
    chunks = list(trace.iter_chunks(4))
    assert [(c.start, c.stop) for c in chunks] == [(0, 4), (4, 8), (8, 11)]
    assert isinstance(trace.events(1), np.memmap)
    np.testing.assert_array_equal(np.concatenate([c.events[2] for c in chunks]), np.asarray(trace.events(2)))
    assert chunks[0].events[0] is None and chunks[-1].analog.shape[0] == 3


def test_size_per_sample_is_bit_packed(recorded) -> None:
    model, _, _, trace = recorded
    expected = 4 * math.prod(MIXED.input_shape) + 3 * sum((i.source_size + 7) // 8 for i in model.layer_infos[1:])
    assert trace.bytes_per_sample() == expected
    on_disk = sum((trace.path / layer_file(i)).stat().st_size for i in range(1, model.num_layers))
    assert on_disk < 11 * expected  # headers aside, the layer files are the packed bits
    # VGG16 at T=5: ~280k spiking sources per timestep -> ~35 KB/step, + 12 KB of analog input
    vgg = make_arch("vgg16").layers()
    per_step = sum(packed_bytes(i) for i in vgg[1:])
    assert sum(i.source_size for i in vgg[1:]) == 284_672 and per_step == 35_584
    assert 5 * per_step + 4 * 3 * 32 * 32 == 190_208  # 186 KiB per sample


def test_dataset_input_and_avg_into_linear(tmp_path: Path) -> None:
    model = spiking_model(AVG_FC, timesteps=2)
    x = inputs(AVG_FC, 5, seed=3)
    ds = TensorDataset(x, torch.tensor([1, 2, 3, 4, 0]))
    trace = record_trace(model, ds, tmp_path / "tr", samples=4, batch_size=3, progress=False)
    assert trace.samples == 4 and list(trace.labels) == [1, 2, 3, 4]
    assert trace.layers[2].pool == "avg" and trace.layers[2].kind == "linear"
    _, seen = observed(model, x[:4], 2)
    np.testing.assert_array_equal(trace.unpack(2)[:, 1], seen[(2, 1)]["inputs"].numpy() != 0)


def test_recording_refuses_bad_inputs(tmp_path: Path) -> None:
    model = spiking_model(MIXED)
    with pytest.raises(TraceError) as e:
        record_trace(model, torch.zeros(2, 3, 8, 8), tmp_path / "a", progress=False)
    assert "does not match" in one_line(e)
    bad = inputs(MIXED, 2)
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(TraceError) as e:
        record_trace(model, bad, tmp_path / "b", progress=False)
    assert "NaN" in one_line(e)
    with pytest.raises(TraceError) as e:
        record_trace(model, inputs(MIXED, 2), tmp_path / "c", samples=5, progress=False)
    assert "5 samples" in one_line(e)
    ann = spiking_model(MIXED)
    ann.kind = "ann"
    with pytest.raises(TraceError):
        record_trace(ann, inputs(MIXED, 2), tmp_path / "d", progress=False)
    assert not (tmp_path / "b").exists()  # nothing half-written is left behind


def test_fingerprint_covers_weights_thresholds_leaks_quantization() -> None:
    base = spiking_model(MIXED)
    fp = model_fingerprint(base)
    assert fp == model_fingerprint(spiking_model(MIXED))  # deterministic
    for edit in ("weight", "threshold", "leak"):
        m = spiking_model(MIXED)
        with torch.no_grad():
            if edit == "weight":
                m.synapses[1].weight[0, 0, 0, 0] += 1e-6
            elif edit == "threshold":
                m.thresholds[2] += 1e-6
            else:
                m.leaks[0] -= 1e-6
        assert model_fingerprint(m) != fp, edit
    assert model_fingerprint(quantize(base, 8)) != fp
    renamed = spiking_model(MIXED)
    renamed.spec = MIXED.__class__(**{**MIXED.to_dict(), "name": "other", "features": tuple(MIXED.features),
                                      "classifier": tuple(MIXED.classifier), "input_shape": tuple(MIXED.input_shape)})
    assert model_fingerprint(renamed) == fp  # a name is not the model


def test_trace_from_another_model_is_refused(recorded) -> None:
    _, _, _, trace = recorded
    other = spiking_model(MIXED, seed=1, timesteps=3)
    with pytest.raises(TraceError) as e:
        check_trace_matches(trace, other)
    msg = one_line(e)
    assert f"was recorded from model {trace.fingerprint[:12]}, not {model_fingerprint(other)[:12]}" in msg
    assert "re-record it with `snnsim trace --model" in msg


def _copy_trace(trace, dest: Path) -> Path:
    import shutil

    shutil.copytree(trace.path, dest)
    return dest


def test_load_validation_errors_are_one_line(recorded, tmp_path: Path) -> None:
    _, _, _, trace = recorded
    with pytest.raises(TraceError) as e:
        load_trace(tmp_path / "nope")
    assert "does not exist" in one_line(e)
    (tmp_path / "file").write_text("x")
    with pytest.raises(TraceError) as e:
        load_trace(tmp_path / "file")
    assert "is a file" in one_line(e)

    no_meta = _copy_trace(trace, tmp_path / "nometa")
    (no_meta / META_FILE).unlink()
    with pytest.raises(TraceError) as e:
        load_trace(no_meta)
    assert "no meta.json" in one_line(e)

    wrong = _copy_trace(trace, tmp_path / "wrong")
    meta = json.loads((wrong / META_FILE).read_text())
    (wrong / META_FILE).write_text(json.dumps({**meta, "format": "something-else"}))
    with pytest.raises(TraceError) as e:
        load_trace(wrong)
    assert "not an snnsim trace" in one_line(e)
    (wrong / META_FILE).write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(TraceError) as e:
        load_trace(wrong)
    assert "upgrade snnsim" in one_line(e)
    (wrong / META_FILE).write_text("{not json")
    with pytest.raises(TraceError):
        load_trace(wrong)

    short = _copy_trace(trace, tmp_path / "short")
    f = short / layer_file(2)
    f.write_bytes(f.read_bytes()[:-7])
    with pytest.raises(TraceError) as e:
        load_trace(short)
    assert "truncated" in one_line(e) and layer_file(2) in str(e.value)

    missing = _copy_trace(trace, tmp_path / "missing")
    (missing / layer_file(3)).unlink()
    with pytest.raises(TraceError) as e:
        load_trace(missing)
    assert "missing" in one_line(e)

    nan = _copy_trace(trace, tmp_path / "nan")
    arr = np.load(nan / INPUT_FILE, mmap_mode="r+")
    arr[6, 1, 2, 3] = np.nan
    arr.flush()
    del arr
    with pytest.raises(TraceError) as e:
        load_trace(nan)
    assert "sample 6" in one_line(e) and "NaN" in str(e.value)
    assert isinstance(e.value, SnnsimError)


def test_dataset_bundle_with_sample_count(tmp_path: Path) -> None:
    from snnsim.data import load_dataset

    bundle = load_dataset("synthetic", synthetic_size=(16, 9), synthetic_shape=MIXED.input_shape)
    model = spiking_model(MIXED, timesteps=2)
    trace = record_trace(model, bundle, tmp_path / "bundle", samples=7, batch_size=4, progress=False)
    assert trace.samples == 7 and trace.dataset["name"] == "synthetic" and trace.dataset["split"] == "test"
    assert list(trace.labels) == [int(bundle.test[i][1]) for i in range(7)]
    np.testing.assert_array_equal(np.asarray(trace.analog_input()[3]), bundle.test[3][0].numpy())
