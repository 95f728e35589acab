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
from sim_testutil import AVG_FC, MIXED, inputs, observed, quantize, spiking_model, spiking_pops
from torch.utils.data import TensorDataset

from snnsim.arch import make_arch
from snnsim.errors import SnnsimError, TraceError
from snnsim.graph import Graph, simulation_view, vgg_graph
from snnsim.recording import record_trace
from snnsim.sim import replay
from snnsim.trace import (
    INPUT_FILE,
    LOGITS_FILE,
    META_FILE,
    SPIKES_FILE,
    TRACE_VERSION,
    check_trace_matches,
    load_trace,
    meta_digest,
    model_fingerprint,
    packed_bytes,
    population_file,
)


def spiking_files(model) -> set[str]:  # type: ignore[no-untyped-def]
    """The per-population spike files a trace of ``model`` holds (one per LIF / IF population)."""
    return {population_file(p.index) for p in model.populations if p.spiking}


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
    logits, seen = observed(model, x, 3, exact_currents=True)  # what a trace records
    assert trace.samples == 11 and trace.timesteps == 3 and len(trace.layers) == model.num_layers
    assert trace.layers == model.layer_infos and trace.populations == model.populations
    assert trace.graph.to_dict() == model.graph.to_dict() and trace.spec == MIXED
    assert trace.input_shape == tuple(MIXED.input_shape)
    np.testing.assert_array_equal(np.asarray(trace.analog_input()), x.numpy())  # stored once, float32
    assert trace.meta["input"]["repeated_every_timestep"] is True
    for li in range(1, model.num_layers):
        got = trace.unpack(li)
        for t in range(3):
            np.testing.assert_array_equal(got[:, t], seen[(li, t)]["inputs"].numpy() != 0)
    # keyed by population: population k's file holds exactly its spikes (a chain's population k is layer k's)
    pops = spiking_pops(model)
    assert [p.name for p in trace.populations if p.spiking] == pops
    for pop in trace.populations:
        if not pop.spiking:
            with pytest.raises(TraceError):
                trace.spikes(pop.name)  # the output integrator has no spikes (and no file)
            continue
        bits = np.unpackbits(np.asarray(trace.spikes(pop.name)), axis=2, count=pop.neurons).astype(bool)
        for t in range(3):
            np.testing.assert_array_equal(bits[:, t], seen[(pop.index, t)]["spikes"].reshape(11, -1).numpy() != 0)
    np.testing.assert_array_equal(np.asarray(trace.logits()), logits.numpy())
    np.testing.assert_array_equal(trace.predictions, logits.argmax(1).numpy())
    np.testing.assert_array_equal(trace.labels, labels)
    spikes = np.stack([sum(seen[(li, t)]["inputs"].reshape(11, -1).sum(1).numpy() for t in range(3))
                       for li in range(1, model.num_layers)], axis=1)
    assert trace.spike_counts().shape == (11, len(pops))  # one column per spiking population
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
    with pytest.raises(ValueError, match="analog input"):
        trace.events(0)  # layer 0 reads the analog input: no events
    source = trace.layers[2].source
    assert source == "conv2_lif" and set(chunks[0].populations) == {p.name for p in trace.populations if p.spiking}
    np.testing.assert_array_equal(np.concatenate([c.populations[source] for c in chunks]), np.asarray(trace.spikes(source)))
    np.testing.assert_array_equal(np.asarray(trace.events(2)), np.asarray(trace.spikes(source)))


def test_size_per_sample_is_bit_packed(recorded) -> None:
    model, _, _, trace = recorded
    spiking = [p for p in model.populations if p.spiking]
    expected = 4 * math.prod(MIXED.input_shape) + 3 * sum((p.neurons + 7) // 8 for p in spiking)
    # a chain's spiking populations are exactly its layers' (pre-pool) event sources
    assert expected == 4 * math.prod(MIXED.input_shape) + 3 * sum((i.source_size + 7) // 8 for i in model.layer_infos[1:])
    assert trace.bytes_per_sample() == expected
    assert {p.name for p in trace.path.iterdir() if p.name.startswith("population_")} == spiking_files(model)
    for p in spiking:
        assert trace.spikes(p.name).shape == (11, 3, packed_bytes(p))
    on_disk = sum((trace.path / population_file(p.index)).stat().st_size for p in spiking)
    assert on_disk < 11 * expected  # headers aside, the population files are the packed bits
    # VGG16 at T=5: ~280k spiking neurons per timestep -> ~35 KB/step, + 12 KB of analog input
    _, vgg = simulation_view(vgg_graph(make_arch("vgg16")))
    per_step = sum(packed_bytes(p) for p in vgg if p.spiking)
    assert sum(p.neurons for p in vgg if p.spiking) == 284_672 and per_step == 35_584
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
    assert trace.layers[2].source == "conv2_lif" and trace.layers[2].source_shape == (8, 6, 6)


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
    pops = spiking_pops(base)
    for edit in ("weight", "threshold", "leak"):
        m = spiking_model(MIXED)
        with torch.no_grad():
            if edit == "weight":
                m.synapses[1].weight[0, 0, 0, 0] += 1e-6
            elif edit == "threshold":
                m.threshold(pops[2])[0] += 1e-6
            else:
                m.leak(pops[0])[0] -= 1e-6
        assert model_fingerprint(m) != fp, edit
    assert model_fingerprint(quantize(base, 8)) != fp

    def regraphed(**node_edit):  # type: ignore[no-untyped-def]
        """The base model (same state dict) on a graph with one node's fields edited, or renamed."""
        d = base.graph.to_dict()
        name = node_edit.pop("graph_name", d["name"])
        nodes = {k: ({**v, **node_edit} if k == "conv2_lif" else v) for k, v in d["nodes"].items()}
        m = spiking_model(MIXED)
        m.graph = Graph.from_dict({**d, "name": name, "nodes": nodes}, "graph")
        return m

    assert model_fingerprint(regraphed(graph_name="other")) == fp  # a name is not the model
    assert model_fingerprint(regraphed(dropout=0.5)) == fp  # nor is dropout (off in an SNN's inference)
    assert model_fingerprint(regraphed(reset="value")) != fp  # the graph's structure is
    assert model_fingerprint(regraphed(fire=">=")) != fp


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
    f = short / population_file(2)
    f.write_bytes(f.read_bytes()[:-7])
    with pytest.raises(TraceError) as e:
        load_trace(short)
    assert "truncated" in one_line(e) and population_file(2) in str(e.value)

    missing = _copy_trace(trace, tmp_path / "missing")
    (missing / population_file(3)).unlink()
    with pytest.raises(TraceError) as e:
        load_trace(missing)
    assert "missing" in one_line(e) and population_file(3) in str(e.value)

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


# ---------------------------------------------------------------------------- integrity (format v3)
def test_meta_records_size_and_crc32_of_every_file_and_its_own_sha256(recorded) -> None:
    model, _, _, trace = recorded
    names = {INPUT_FILE, LOGITS_FILE, SPIKES_FILE} | spiking_files(model)
    assert set(trace.meta["files"]) == names and trace.meta["format_version"] == TRACE_VERSION == 3
    assert names | {META_FILE} == {p.name for p in trace.path.iterdir()}  # no per-layer files any more
    assert [e["file"] for e in trace.meta["populations"]] == [
        population_file(p.index) if p.spiking else None for p in model.populations]
    for name, entry in trace.meta["files"].items():
        data = (trace.path / name).read_bytes()
        assert entry == {"bytes": len(data), "crc32": f"{zlib.crc32(data):08x}"}, name
    on_disk = json.loads((trace.path / META_FILE).read_text())
    assert on_disk["meta_sha256"] == meta_digest(on_disk) and len(on_disk["meta_sha256"]) == 64
    assert meta_digest({**on_disk, "labels": [1] * 11}) != on_disk["meta_sha256"]


def test_corruption_of_data_or_meta_is_refused(recorded, tmp_path: Path) -> None:
    model, _, _, trace = recorded
    flipped = _copy_trace(trace, tmp_path / "flip")
    f = flipped / population_file(2)
    data = bytearray(f.read_bytes())
    data[-3] ^= 0x10  # one bit of one spike: before checksums this changed the counts silently
    f.write_bytes(bytes(data))
    with pytest.raises(TraceError) as e:
        load_trace(flipped)
    assert f"{population_file(2)} is corrupt" in one_line(e) and "re-record it" in str(e.value)
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


# ---------------------------------------------------------------------------- format v3: keyed by population
def test_traces_of_format_v2_are_refused_with_rerecord(recorded, tmp_path: Path) -> None:
    """A v2 trace (per-layer ``layer_XX.npy`` files, meta without ``populations`` or ``model.graph``)."""
    model, _, _, trace = recorded
    old = _copy_trace(trace, tmp_path / "v2")
    meta = json.loads((old / META_FILE).read_text())
    files = dict(meta["files"])
    for pop in model.populations:  # v2: layer k's file held its input events (a chain's population k-1)
        if pop.spiking:
            new = f"layer_{pop.index + 1:02d}.npy"
            (old / population_file(pop.index)).rename(old / new)
            files[new] = files.pop(population_file(pop.index))
    layers = []
    for entry, info in zip(meta["layers"], model.layer_infos, strict=True):
        entry = {k: v for k, v in entry.items() if k not in ("source", "target", "bias")}
        if not info.analog_input:
            nbytes = (info.source_size + 7) // 8
            entry.update(file=f"layer_{info.index:02d}.npy", packed_bytes=nbytes, shape=[11, 3, nbytes])
        layers.append(entry)
    meta.pop("populations")
    meta["model"].pop("graph")
    meta.update(format_version=2, layers=layers, files=files)
    meta["meta_sha256"] = meta_digest(meta)  # a well-formed v2 meta, not a corrupt v3 one
    (old / META_FILE).write_text(json.dumps(meta))
    for verify in (True, False):
        with pytest.raises(TraceError) as e:
            load_trace(old, verify=verify)
        msg = one_line(e)
        assert "format v2" in msg and "re-record" in msg, msg
        assert "is corrupt" not in msg and "field" not in msg  # refused for its version, before any schema check


def test_arch_that_is_not_the_graphs_is_refused(recorded, tmp_path: Path) -> None:
    """``model.arch`` (the VGG spec behind ``Trace.spec``) must describe ``model.graph`` (as a
    checkpoint's must): a meta whose arch was widened, even with its checksum redone, would make
    ``Trace.spec`` and ``Trace.layers`` disagree."""
    _, _, _, trace = recorded
    bad = _copy_trace(trace, tmp_path / "arch")
    meta = json.loads((bad / META_FILE).read_text())
    meta["model"]["arch"]["features"][0] = 9
    meta["meta_sha256"] = meta_digest(meta)
    (bad / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(TraceError) as e:
        load_trace(bad)
    assert "model.arch" in one_line(e) and "re-record" in str(e.value)


def test_population_meta_must_match_the_graph(recorded, tmp_path: Path) -> None:
    _, _, _, trace = recorded
    cases = [
        (lambda m: m["populations"][1].update(file="population_07.npy"), "field populations[1].file"),
        (lambda m: m["populations"][0].update(shape=[8, 4, 4]), "field populations[0].shape"),
        (lambda m: m["populations"][2].update(layers=[1, 2]), "field populations[2].layers"),
        (lambda m: m["populations"][3].update(kind="IF"), "field populations[3].kind"),
        (lambda m: m["populations"][4].update(file="population_04.npy"), "field populations[4].file"),
        (lambda m: m["populations"].pop(), "field populations: 4 entries, model.graph has 5"),
        (lambda m: m["layers"][3].update(source="conv2_lif"), "field layers[3].source"),
        (lambda m: m["model"]["graph"]["nodes"]["conv2"].update(out_channels=13), "does not match model.graph"),
        (lambda m: m["model"]["graph"]["nodes"]["conv2_lif"].update(kind="Integrator"), "model.graph"),
        (lambda m: m["model"]["graph"]["edges"].pop(0), "field model.graph"),
        (lambda m: m["model"].update(graph={"nodes": {}}), "field model.graph"),
    ]
    for i, (edit, needle) in enumerate(cases):
        bad = _copy_trace(trace, tmp_path / f"p{i}")
        meta = json.loads((bad / META_FILE).read_text())
        meta["model"]["arch"] = None  # as a graph model's trace: only model.graph says what is derived
        edit(meta)
        meta["meta_sha256"] = meta_digest(meta)  # consistent checksum: the cross-field rules must catch it
        (bad / META_FILE).write_text(json.dumps(meta))
        with pytest.raises(TraceError) as e:
            load_trace(bad)
        assert needle in one_line(e) and "re-record" in str(e.value), (i, str(e.value))


@pytest.fixture(scope="module")
def resnet_snn():  # type: ignore[no-untyped-def]
    """The digits ResNet, converted from an (untrained) ANN: BatchNorm folded into biased convs."""
    from snnsim.graph import build_graph
    from snnsim.models import build_model
    from snnsim.training import convert_ann_to_snn

    ann = build_model(build_graph("digits-resnet"), kind="ann", seed=0)
    g = torch.Generator().manual_seed(5)
    x = torch.rand((8, 1, 8, 8), generator=g) * 2 - 1
    y = torch.randint(0, 10, (8,), generator=g)
    ann.eval()
    snn = convert_ann_to_snn(ann, [(x, y)], 3)
    snn.eval()
    return snn, x, y


def test_resnet_trace_stores_each_population_once(resnet_snn, tmp_path: Path) -> None:
    snn, x, y = resnet_snn
    assert snn.spec is None and not any(n.kind == "BatchNorm2d" for n in snn.graph.nodes.values())
    layers, pops = snn.layer_infos, snn.populations
    assert any(info.kind == "identity" for info in layers) and any(info.bias for info in layers)
    traces = {eng: record_trace(snn, x, tmp_path / eng, labels=y, batch_size=5, progress=False, engine=eng)
              for eng in ("torch", "event")}
    spiking = [p for p in pops if p.spiking]
    readers = {p.name: [info.index for info in layers if info.source == p.name] for p in spiking}
    shared = {name: idx for name, idx in readers.items() if len(idx) > 1}
    # the block entries: stem_lif feeds s1b1's first conv and its identity shortcut, s1b1_lif2 feeds
    # s2b1's first conv and its 1x1 downsample
    assert shared == {"stem_lif": [1, 3], "s1b1_lif2": [4, 6]}, readers
    for engine, tr in traces.items():
        tr = load_trace(tr.path)  # every checksum holds
        assert tr.spec is None and tr.graph.to_dict() == snn.graph.to_dict() and tr.meta["model"]["arch"] is None
        assert tr.layers == layers and tr.populations == pops
        names = {p.name for p in tr.path.iterdir()}
        assert {n for n in names if n.endswith(".npy")} == {INPUT_FILE, LOGITS_FILE, SPIKES_FILE} | spiking_files(snn)
        assert not any(n.startswith("layer_") for n in names)
        assert len(spiking_files(snn)) == len(spiking) < sum(not info.analog_input for info in layers)
        # stored once: per-sample bytes are the populations', fewer than one copy per reading layer
        per_pop = sum(packed_bytes(p) for p in spiking)
        per_layer = sum((info.source_size + 7) // 8 for info in layers if not info.analog_input)
        assert tr.bytes_per_sample() == 4 * 64 + 3 * per_pop and per_pop < per_layer
        for name, (a, b) in shared.items():
            assert tr.events(a) is tr.events(b) is tr.spikes(name), (engine, name)  # one memory map
            chunk = next(tr.iter_chunks(8))
            assert chunk.events[a] is chunk.events[b] is chunk.populations[name]
        with pytest.raises(ValueError):
            tr.events(0)  # the stem conv reads the analog input
        counts = np.asarray(tr.spike_counts())
        assert counts.shape == (8, len(spiking))
        for k, p in enumerate(spiking):  # spikes.npy is the popcount of each population's file
            bits = np.unpackbits(np.asarray(tr.spikes(p.name)), axis=2, count=p.neurons)
            np.testing.assert_array_equal(bits.sum(axis=(1, 2)), counts[:, k], err_msg=f"{engine} {p.name}")
        assert (counts.sum(axis=0) > 0).all(), (engine, counts.sum(axis=0))  # every population spikes
        sim = replay(tr, snn, functional=True, progress=False)
        assert int(sim.functional.spike_mismatches.sum()) == 0, engine
        for k, p in enumerate(spiking):  # replay's spikes_out sits on each population's first layer
            assert int(sim.spikes_out[p.primary].sum()) == int(counts[:, k].sum()), (engine, p.name)
    # the torch engine and the event engine compute the same spikes (the same bits, not only counts)
    t_tr, e_tr = traces["torch"], traces["event"]
    np.testing.assert_array_equal(np.asarray(t_tr.spike_counts()), np.asarray(e_tr.spike_counts()))
    for p in spiking:
        np.testing.assert_array_equal(np.asarray(t_tr.spikes(p.name)), np.asarray(e_tr.spikes(p.name)), err_msg=p.name)
    np.testing.assert_array_equal(t_tr.predictions, e_tr.predictions)
    np.testing.assert_allclose(np.asarray(t_tr.logits()), np.asarray(e_tr.logits()), rtol=1e-5, atol=1e-5)
    assert t_tr.fingerprint == e_tr.fingerprint == model_fingerprint(snn)
    assert t_tr.meta["engine"] == "torch" and e_tr.meta["engine"] == "event"
