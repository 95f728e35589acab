"""The trace cache: keyed without a sample count, a longer trace serves a shorter request as a
view, a shorter one is replaced, an unusable one is re-recorded with a log line saying why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sim_testutil import spiking_model

from snnsim.arch import ArchSpec
from snnsim.data import load_dataset
from snnsim.errors import TraceError
from snnsim.recording import record_trace
from snnsim.sim import SimCounts, replay
from snnsim.trace import META_FILE, load_trace, model_fingerprint, population_file
from snnsim.trace_cache import obtain_trace, trace_cache_dir

# 1x8x8 input, 10 classes: the shape of the default synthetic data set (256 test samples).
SPEC = ArchSpec("cache-net", (6, "A", 8), (16,), (1, 8, 8), 10)


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return spiking_model(SPEC, timesteps=3)


def _get(model, root: Path, n: int, engine: str = "event", **kw):  # type: ignore[no-untyped-def]
    logs: list[str] = []
    tr = obtain_trace(model, samples=n, trace_root=root, progress=False, log=logs.append, engine=engine, **kw)
    return tr, logs


def _same_counts(a: SimCounts, b: SimCounts) -> None:
    for name in SimCounts.PER_T_FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_cache_dir_is_readable_and_holds_no_sample_count(model, tmp_path: Path) -> None:
    fp = model_fingerprint(model)[:12]
    assert trace_cache_dir(model, "synthetic", root=tmp_path) == tmp_path / f"cache-net-synthetic-T3-{fp}"
    assert trace_cache_dir(model, "synthetic", root=tmp_path, engine="event").name == f"cache-net-synthetic-T3-{fp}-event"
    assert trace_cache_dir(model, "digits", root=tmp_path, split="train").name == f"cache-net-digits-train-T3-{fp}"
    assert trace_cache_dir(model, "../x/y", root=tmp_path).parent == tmp_path  # one path component, always


def test_a_longer_cached_trace_serves_a_shorter_request(model, tmp_path: Path) -> None:
    long, logs = _get(model, tmp_path, 40)
    assert long.samples == 40 and "recording trace of 40" in logs[-1]
    view, logs = _get(model, tmp_path, 24)
    assert logs == [f"reusing trace {str(long.path)!r}: 24 of its 40 samples (recorded earlier for this exact model)"]
    assert view.path == long.path and view.samples == 24 and view.total_samples == 40
    assert [p.name for p in tmp_path.iterdir()] == [long.path.name]  # nothing recorded again
    # the view is exactly a trace recorded on those 24 samples (the event engine runs each sample alone)
    bundle = load_dataset("synthetic")
    fresh = record_trace(model, bundle, tmp_path.parent / "fresh24", samples=24, progress=False, engine="event")
    _same_counts(replay(view, model, progress=False), replay(fresh, model, progress=False))
    np.testing.assert_array_equal(view.labels, fresh.labels)
    np.testing.assert_array_equal(view.predictions, fresh.predictions)
    np.testing.assert_array_equal(np.asarray(view.logits()), np.asarray(fresh.logits()))
    np.testing.assert_array_equal(np.asarray(view.spike_counts()), np.asarray(fresh.spike_counts()))
    assert view.sample_ids == fresh.sample_ids and view.meta["input"] == fresh.meta["input"]
    same, logs = _get(model, tmp_path, 40)
    assert same.samples == 40 and "40 of its 40 samples" in logs[0]


def test_a_shorter_cached_trace_is_replaced_by_a_longer_one(model, tmp_path: Path) -> None:
    short, _ = _get(model, tmp_path, 12, engine="torch")
    longer, logs = _get(model, tmp_path, 30, engine="torch")
    assert logs[0] == (f"cached trace {str(short.path)!r} holds 12 samples, fewer than the 30 asked; "
                       "recording 30 to replace it")
    assert longer.path == short.path and load_trace(longer.path).samples == 30
    assert [p.name for p in tmp_path.iterdir()] == [short.path.name]  # replaced in place, no temporaries left
    view, logs = _get(model, tmp_path, 12, engine="torch")
    assert view.samples == 12 and "12 of its 30 samples" in logs[0]


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 + 1] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_meta(key: str | tuple, value):  # type: ignore[no-untyped-def]
    path = (key,) if isinstance(key, str) else key

    def edit(d: Path) -> None:
        meta = json.loads((d / META_FILE).read_text())
        node = meta
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        (d / META_FILE).write_text(json.dumps(meta))
    return edit


def test_an_unusable_cached_trace_is_recorded_again(model, tmp_path: Path) -> None:
    ref, _ = _get(model, tmp_path, 16)
    reference = replay(ref, model, progress=False)
    other_fp = model_fingerprint(spiking_model(SPEC, seed=3, timesteps=3))
    # v2's layer_02.npy (layer 2's input events) is v3's population_01.npy (conv2_lif's spikes)
    assert population_file(1) == "population_01.npy" and model.layer_infos[2].source == model.populations[1].name
    cases = {
        "flipped spike byte": (lambda d: _flip(d / population_file(1)), "population_01.npy is corrupt"),
        "edited labels": (_edit_meta("labels", [0] * 16), "meta.json was modified or is corrupt"),
        "copied fingerprint": (_edit_meta("model_fingerprint", other_fp), "meta.json was modified or is corrupt"),
        "format v1": (_edit_meta("format_version", 1), "format v1"),
        "format v2 (keyed by layer)": (_edit_meta("format_version", 2), "format v2"),
        "population file renamed": (_edit_meta(("populations", 1, "file"), "layer_02.npy"), "populations[1].file"),
        "truncated logits": (lambda d: (d / "logits.npy").write_bytes((d / "logits.npy").read_bytes()[:-5]), "truncated"),
        "deleted population": (lambda d: (d / population_file(0)).unlink(), "missing population_00.npy"),
        "deep meta": (lambda d: (d / META_FILE).write_text("[" * 50_000 + "]" * 50_000), "nests 50000 levels deep"),
        "meta is a list": (lambda d: (d / META_FILE).write_text("[1, 2]"), "not an snnsim trace"),
    }
    for name, (corrupt, why) in cases.items():
        corrupt(ref.path)
        with pytest.raises(TraceError):
            load_trace(ref.path)
        tr, logs = _get(model, tmp_path, 16)
        assert logs[0].startswith(f"cached trace {str(ref.path)!r} is unusable (") and why in logs[0], (name, logs)
        assert logs[0].endswith("; recording it again") and "recording trace of 16" in logs[1], name
        assert "\n" not in logs[0]
        _same_counts(replay(load_trace(tr.path), model, progress=False), reference)  # the new one is valid


def test_a_cached_trace_of_another_data_draw_or_engine_is_not_reused(model, tmp_path: Path) -> None:
    first, _ = _get(model, tmp_path, 10, seed=0)
    again, logs = _get(model, tmp_path, 10, seed=1)  # synthetic data depends on the seed
    assert again.path == first.path
    assert "another draw of the data set" in logs[0] and "recording trace" in logs[1]
    assert again.dataset["meta"]["seed"] == 1
    torch_tr, logs = _get(model, tmp_path, 10, engine="torch", seed=1)
    assert torch_tr.path != again.path and "recording trace" in logs[0]  # the engine is part of the key


def test_an_explicit_trace_serves_its_first_samples_and_is_checked(model, tmp_path: Path) -> None:
    tr, _ = _get(model, tmp_path, 8)
    explicit, logs = _get(model, tmp_path, 4, trace=tr.path)
    assert explicit.samples == 4 and logs == [f"using trace {str(tr.path)!r}: its first 4 of 8 samples, T=3"]
    assert (explicit.spike_counts() == tr.spike_counts()[:4]).all()
    whole, logs = _get(model, tmp_path, 8, trace=tr.path)
    assert whole.samples == 8 and logs == [f"using trace {str(tr.path)!r} (8 samples, T=3)"]
    with pytest.raises(TraceError, match="asked for 9 samples but trace"):
        _get(model, tmp_path, 9, trace=tr.path)
    _flip(tr.path / "spikes.npy")
    with pytest.raises(TraceError, match="spikes.npy is corrupt"):
        _get(model, tmp_path, 4, trace=tr.path)  # refused, never re-recorded behind the user's back


def test_snnsim_trace_without_out_writes_to_the_cache(model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       run_cli) -> None:
    from snnsim.checkpoint import save_model

    save_model(model, tmp_path / "m.pt")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("trace", "--model", "m.pt", "--samples", 20, "--engine", "event")
    assert code == 0, err
    cache = trace_cache_dir(model, "synthetic", root="traces", engine="event")
    assert (tmp_path / cache).is_dir() and "20 samples" in out
    view, logs = _get(model, Path("traces"), 15)
    assert view.samples == 15 and "15 of its 20 samples" in logs[0]
