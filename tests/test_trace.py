"""Trace recording, lazy loading, validation and model fingerprints."""

from __future__ import annotations

import errno
import json
import math
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from sim_testutil import AVG_FC, MIXED, inputs, observed, quantize, spiking_model
from torch.utils.data import TensorDataset

from snnsim.arch import make_arch
from snnsim.errors import SnnsimError, TraceError
from snnsim.sim import replay
from snnsim.trace import (
    INPUT_FILE,
    LOGITS_FILE,
    META_FILE,
    SPIKES_FILE,
    TRACE_VERSION,
    check_trace_matches,
    layer_file,
    load_trace,
    meta_digest,
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
        load_trace(nan)  # the edit is caught by the checksum first
    assert "input.npy is corrupt" in one_line(e) and "CRC-32" in str(e.value)
    with pytest.raises(TraceError) as e:
        load_trace(nan, verify=False)  # a trace edited on purpose: the NaN scan still runs
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


# ---------------------------------------------------------------------------- integrity (format v2)
def test_meta_records_size_and_crc32_of_every_file_and_its_own_sha256(recorded) -> None:
    model, _, _, trace = recorded
    names = {INPUT_FILE, LOGITS_FILE, SPIKES_FILE} | {layer_file(i) for i in range(1, model.num_layers)}
    assert set(trace.meta["files"]) == names and trace.meta["format_version"] == TRACE_VERSION == 2
    for name, entry in trace.meta["files"].items():
        data = (trace.path / name).read_bytes()
        assert entry == {"bytes": len(data), "crc32": f"{zlib.crc32(data):08x}"}, name
    on_disk = json.loads((trace.path / META_FILE).read_text())
    assert on_disk["meta_sha256"] == meta_digest(on_disk) and len(on_disk["meta_sha256"]) == 64
    assert meta_digest({**on_disk, "labels": [1] * 11}) != on_disk["meta_sha256"]


def test_corruption_of_data_or_meta_is_refused(recorded, tmp_path: Path) -> None:
    model, _, _, trace = recorded
    flipped = _copy_trace(trace, tmp_path / "flip")
    f = flipped / layer_file(2)
    data = bytearray(f.read_bytes())
    data[-3] ^= 0x10  # one bit of one spike: before checksums this changed the counts silently
    f.write_bytes(bytes(data))
    with pytest.raises(TraceError) as e:
        load_trace(flipped)
    assert f"{layer_file(2)} is corrupt" in one_line(e) and "re-record it" in str(e.value)
    assert not np.array_equal(replay(load_trace(flipped, verify=False), model, progress=False).syn_ops,
                              replay(trace, model, progress=False).syn_ops)  # the flip mattered

    other = spiking_model(MIXED, seed=1, timesteps=3)
    for edit, value in (("labels", [9] + trace.meta["labels"][1:]), ("model_fingerprint", model_fingerprint(other)),
                        ("predictions", [0] * 11)):
        bad = _copy_trace(trace, tmp_path / edit)
        meta = json.loads((bad / META_FILE).read_text())
        meta[edit] = value
        (bad / META_FILE).write_text(json.dumps(meta))
        with pytest.raises(TraceError) as e:
            load_trace(bad)
        assert "meta.json was modified or is corrupt" in one_line(e), edit


def test_traces_of_format_v1_are_refused_with_rerecord(recorded, tmp_path: Path) -> None:
    _, _, _, trace = recorded
    old = _copy_trace(trace, tmp_path / "v1")
    meta = json.loads((old / META_FILE).read_text())
    for key in ("files", "meta_sha256"):
        meta.pop(key)
    meta.update(format_version=1, files={"logits": LOGITS_FILE, "spikes": SPIKES_FILE})
    (old / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(TraceError) as e:
        load_trace(old)
    assert "format v1" in one_line(e) and "without checksums" in str(e.value) and "re-record it" in str(e.value)


def test_schema_errors_name_the_field(recorded, tmp_path: Path) -> None:
    _, _, _, trace = recorded
    cases = [("samples", None, "field samples"), ("timesteps", "3", "field timesteps"),
             ("labels", [0] * 10, "field labels: 10 entries for 11 samples"),
             ("predictions", [10] + trace.meta["predictions"][1:], "field predictions[0]: 10 is not one of the model's 10 classes"),
             ("sample_ids", [[0]] * 11, "field sample_ids[0]"), ("samples", 10**9, "field samples")]
    for i, (key, value, needle) in enumerate(cases):
        bad = _copy_trace(trace, tmp_path / f"c{i}")
        meta = json.loads((bad / META_FILE).read_text())
        meta[key] = value
        (bad / META_FILE).write_text(json.dumps(meta))
        with pytest.raises(TraceError) as e:
            load_trace(bad)
        assert needle in one_line(e), (key, str(e.value))
    deep = _copy_trace(trace, tmp_path / "deep")
    (deep / META_FILE).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(TraceError) as e:
        load_trace(deep)
    assert "nests 100000 levels deep" in one_line(e)


def test_head_is_a_view_of_the_first_samples(recorded) -> None:
    model, x, labels, trace = recorded
    view = trace.head(4)
    assert view.samples == 4 and view.total_samples == 11 and trace.total_samples == 11
    assert view.path == trace.path and view.meta["samples"] == 4 and trace.meta["samples"] == 11
    np.testing.assert_array_equal(np.asarray(view.analog_input()), x[:4].numpy())
    assert isinstance(view.events(1), np.memmap)  # a slice of the file's map, nothing copied
    for li in range(1, model.num_layers):
        np.testing.assert_array_equal(np.asarray(view.events(li)), np.asarray(trace.events(li))[:4])
    np.testing.assert_array_equal(np.asarray(view.logits()), np.asarray(trace.logits())[:4])
    np.testing.assert_array_equal(np.asarray(view.spike_counts()), np.asarray(trace.spike_counts())[:4])
    np.testing.assert_array_equal(view.labels, labels[:4])
    np.testing.assert_array_equal(view.predictions, trace.predictions[:4])
    assert view.sample_ids == [0, 1, 2, 3] and view.unpack(2).shape[0] == 4
    assert [(c.start, c.stop) for c in view.iter_chunks(3)] == [(0, 3), (3, 4)]
    assert view.meta["input"]["shape"][0] == 4
    assert view.meta["input"]["absmax"] == pytest.approx(float(np.abs(x[:4].numpy()).max()))
    assert "first 4 of 11 samples" in view.describe()
    assert trace.head(11) is trace
    for bad in (0, 12, -1, True, 2.0):
        with pytest.raises(TraceError):
            trace.head(bad)  # type: ignore[arg-type]
    counts = replay(view, model, progress=False)
    assert counts.samples == 4


def test_record_refuses_labels_outside_the_models_classes(tmp_path: Path) -> None:
    model = spiking_model(MIXED)
    with pytest.raises(TraceError) as e:
        record_trace(model, inputs(MIXED, 3), tmp_path / "t", labels=[1, 10, 2], progress=False)
    assert "label 10 of sample 1 is not one of the model's 10 classes" in one_line(e)
    assert not (tmp_path / "t").exists()


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir()) if parent.exists() else []


def test_full_disk_is_a_one_line_error_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = spiking_model(MIXED, timesteps=3)
    x = inputs(MIXED, 5)
    keep = record_trace(model, x, tmp_path / "kept", progress=False)  # an existing trace survives a failed rewrite
    before = {p.name: p.read_bytes() for p in keep.path.iterdir()}

    def full(fd: int, offset: int, size: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    parent = tmp_path / "disk"
    parent.mkdir()
    for dest in (parent / "new", keep.path):
        with pytest.raises(TraceError) as e:
            record_trace(model, x, dest, progress=False)
        msg = one_line(e)
        assert f"no space left on device writing trace to {str(dest)!r} (needs " in msg
        assert " MB); free space or pass --out elsewhere" in msg
    assert _leftovers(parent) == []  # no destination, no temporary directory
    assert _leftovers(tmp_path) == ["disk", "kept"]
    assert {p.name: p.read_bytes() for p in keep.path.iterdir()} == before
    load_trace(keep.path)


def test_cli_trace_on_a_full_disk_exits_2_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        run_cli) -> None:
    from sim_testutil import digits_model

    from snnsim.checkpoint import save_model

    model, _, _, _ = digits_model(tmp_path)
    save_model(model, tmp_path / "m.pt")

    def full(fd: int, offset: int, size: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    code, _, err = run_cli("trace", "--model", tmp_path / "m.pt", "--samples", 8, "--out", tmp_path / "out" / "tr")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no space left on device" in lines[0] and "pass --out elsewhere" in lines[0]
    assert _leftovers(tmp_path / "out") == []


def test_without_fallocate_the_space_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = spiking_model(MIXED, timesteps=3)
    x = inputs(MIXED, 5)
    ref = record_trace(model, x, tmp_path / "ref", progress=False)

    def unsupported(fd: int, offset: int, size: int) -> None:
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    for name, patch in (("nofalloc", None), ("unsupported", unsupported)):
        with monkeypatch.context() as m:
            if patch is None:
                m.delattr(os, "posix_fallocate")
            else:
                m.setattr(os, "posix_fallocate", patch)
            tr = record_trace(model, x, tmp_path / name, progress=False)
        load_trace(tr.path)  # every checksum holds
        for f in ref.meta["files"]:
            assert (tr.path / f).read_bytes() == (ref.path / f).read_bytes(), (name, f)


def test_parallel_checksums_find_the_same_corruption(recorded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import snnsim.trace as trace_mod

    _, _, _, trace = recorded
    monkeypatch.setattr(trace_mod, "_PARALLEL_BYTES", 0)  # large traces are checksummed in threads
    load_trace(trace.path)
    bad = _copy_trace(trace, tmp_path / "bad")
    f = bad / SPIKES_FILE
    data = bytearray(f.read_bytes())
    data[-1] ^= 0x80
    f.write_bytes(bytes(data))
    with pytest.raises(TraceError, match=f"{SPIKES_FILE} is corrupt"):
        load_trace(bad)
