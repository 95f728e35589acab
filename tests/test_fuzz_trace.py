"""Seeded fuzzing of trace loading: hundreds of corrupted or crafted traces made from one small
real trace. Every case must either be refused by ``load_trace`` with a one-line TraceError, or
(for a genuinely harmless change, e.g. meta.json re-indented) replay to exactly the original
counts. Never a traceback, never a silently different number."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sim_testutil import MIXED, inputs, spiking_model

from snnsim.errors import TraceError
from snnsim.graph import build_graph
from snnsim.limits import MAX_SAMPLES, MAX_TIMESTEPS
from snnsim.recording import record_trace
from snnsim.sim import SimCounts, replay
from snnsim.trace import META_FILE, load_trace, model_fingerprint, population_file

SEED = 20_241
V2_CASES = 1338  # what build_cases made from a format v2 trace of the same model: never fewer
DIGEST_MSG = "meta.json was modified or is corrupt"
WRONG_VALUES: list[Any] = [None, "x", [], {}, True, 1.5, -1, 10**30, [[["deep"]]]]


@dataclass
class Case:
    name: str
    mutate: Callable[[Path], None]
    expect: str = "error"  # 'error' | 'harmless'
    needle: str | tuple[str, ...] | None = None  # the error must contain it (a tuple: one of them; or, for a
    # field_case, be the meta checksum error)
    field_case: bool = False  # a meta field edit: the message names the field, or is the checksum error


@dataclass
class Setup:
    model: Any
    a: Any  # the trace every case starts from
    b: Any  # a trace of another model on the same inputs (for swaps)
    ref: SimCounts
    meta: dict[str, Any]
    tmp: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    tmp = tmp_path_factory.mktemp("fuzz")
    model = spiking_model(MIXED, timesteps=3)
    x = inputs(MIXED, 6, seed=4)
    labels = np.arange(6) % 10
    a = record_trace(model, x, tmp / "a", labels=labels, progress=False)
    b = record_trace(spiking_model(MIXED, seed=7, timesteps=3), x, tmp / "b", labels=labels, progress=False)
    ref = replay(a, model, progress=False)
    return Setup(model, a, b, ref, json.loads((a.path / META_FILE).read_text()), tmp)


# ---------------------------------------------------------------------------- mutations
def _flip(name: str, pos: int, xor: int) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        data = bytearray((d / name).read_bytes())
        data[pos] ^= xor
        (d / name).write_bytes(bytes(data))
    return mutate


def _truncate(name: str, keep: int) -> Callable[[Path], None]:
    return lambda d: (d / name).write_bytes((d / name).read_bytes()[:keep])


def _append(name: str, extra: bytes) -> Callable[[Path], None]:
    return lambda d: (d / name).write_bytes((d / name).read_bytes() + extra)


def _delete(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).unlink()


def _copy_from(src: Path, name: str) -> Callable[[Path], None]:
    return lambda d: shutil.copyfile(src / name, d / name)


def _write_meta(text: str | bytes) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        if isinstance(text, bytes):
            (d / META_FILE).write_bytes(text)
        else:
            (d / META_FILE).write_text(text, encoding="utf-8")
    return mutate


def _edit_meta(fn: Callable[[dict[str, Any]], None], **dump: Any) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        meta = json.loads((d / META_FILE).read_text())
        fn(meta)
        (d / META_FILE).write_text(json.dumps(meta, **dump))
    return mutate


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def fn(meta: dict[str, Any]) -> None:
        node = meta
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return fn


def _drop(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def fn(meta: dict[str, Any]) -> None:
        node = meta
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return fn


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every field of the meta (dict keys at every level; the first and last item of lists)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list) and node:
        for i in sorted({0, len(node) - 1}):
            out.append((*prefix, i))
            out += _paths(node[i], (*prefix, i))
    return out


def _get(meta: dict[str, Any], path: tuple[Any, ...]) -> Any:
    for key in path:
        meta = meta[key]
    return meta


def _field_name(path: tuple[Any, ...]) -> str:
    """How the error names a field: ``populations[2].name``; the architecture and the graph are
    named as a whole, model.arch and model.graph."""
    if path[:2] in (("model", "arch"), ("model", "graph")):
        return ".".join(path[:2])
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else ("." if text else "") + key
    return text


def build_cases(s: Setup) -> list[Case]:
    rng = np.random.default_rng(SEED)
    cases: list[Case] = []
    names = sorted(s.meta["files"])
    for name in names:  # byte flips at seeded positions: header and data
        size = (s.a.path / name).stat().st_size
        header = 128 if size > 128 else size // 2
        for pos in [*rng.choice(header, 2, replace=False), *(header + rng.choice(size - header, 4, replace=False))]:
            cases.append(Case(f"flip {name}@{pos}", _flip(name, int(pos), int(rng.integers(1, 256)))))
        cut = int(rng.integers(1, size - 1))
        cases += [Case(f"truncate {name} to {cut}", _truncate(name, cut), needle=name),
                  Case(f"empty {name}", _truncate(name, 0), needle=name),
                  Case(f"append to {name}", _append(name, b"\0" * int(rng.integers(1, 64))), needle=name),
                  Case(f"delete {name}", _delete(name), needle=f"missing {name}"),
                  Case(f"{name} is a directory", lambda d, n=name: ((d / n).unlink(), (d / n).mkdir()), needle=name)]
        same = (s.a.path / name).read_bytes() == (s.b.path / name).read_bytes()
        cases.append(Case(f"swap {name} from trace b", _copy_from(s.b.path, name),
                          expect="harmless" if same else "error"))
    meta_size = (s.a.path / META_FILE).stat().st_size
    for pos in rng.choice(meta_size, 12, replace=False):
        cases.append(Case(f"flip meta.json@{pos}", _flip(META_FILE, int(pos), int(rng.integers(1, 256)))))
    cases += [
        Case("swap meta.json from trace b", _copy_from(s.b.path, META_FILE), needle="is corrupt"),
        Case("delete meta.json", _delete(META_FILE), needle="no meta.json"),
        Case("truncate meta.json", _truncate(META_FILE, meta_size // 2), needle="not valid JSON"),
        Case("empty meta.json", _write_meta(""), needle="not valid JSON"),
        Case("meta.json is a directory", lambda d: ((d / META_FILE).unlink(), (d / META_FILE).mkdir()), needle="not a file"),
        Case("meta is a list", _write_meta("[1, 2, 3]"), needle="holds a JSON list"),
        Case("meta is a string", _write_meta('"snnsim-trace"'), needle="holds a JSON str"),
        Case("meta is a number", _write_meta("3"), needle="holds a JSON int"),
        Case("meta is null", _write_meta("null"), needle="holds a JSON NoneType"),
        Case("100k-deep lists", _write_meta("[" * 100_000 + "]" * 100_000), needle="nests 100000 levels deep"),
        Case("100k-deep objects", _write_meta('{"a":' * 100_000 + "1" + "}" * 100_000), needle="levels deep"),
        Case("deep provenance", _edit_meta(_set(("model", "provenance"), {"x": json.loads("[" * 40 + "]" * 40)})),
             needle="levels deep"),
        Case("brackets inside strings are not nesting", _edit_meta(_set(("created",), "[" * 200))),
        Case("invalid UTF-8", lambda d: (d / META_FILE).write_bytes(b"\xff" + (d / META_FILE).read_bytes()[1:]),
             needle="not valid UTF-8"),
        Case("UTF-16 meta", lambda d: (d / META_FILE).write_bytes((d / META_FILE).read_text().encode("utf-16")),
             needle="not valid UTF-8"),
        Case("NaN in meta", lambda d: (d / META_FILE).write_text(
            (d / META_FILE).read_text().replace('"absmax": ', '"absmax": NaN, "x": ', 1)), needle="NaN is not a JSON number"),
        Case("Infinity in meta", _write_meta('{"format": "snnsim-trace", "samples": Infinity}'), needle="Infinity"),
        Case("trailing garbage", lambda d: (d / META_FILE).write_text((d / META_FILE).read_text() + "}"), needle="not valid JSON"),
        Case("format v1", _edit_meta(_set(("format_version",), 1)), needle="format v1"),
        Case("format v2", _edit_meta(_set(("format_version",), 2)), needle="format v2"),
        Case("format v4", _edit_meta(_set(("format_version",), 4)), needle="upgrade snnsim"),
        Case("other format", _edit_meta(_set(("format",), "numpy")), needle="not an snnsim trace"),
        Case("unknown top-level field", _edit_meta(_set(("extra",), 1)), needle="unknown field extra"),
        Case("unknown layer field", _edit_meta(_set(("layers", 1, "extra"), 1)), needle="layers[1].extra"),
        Case("unknown population field", _edit_meta(_set(("populations", 2, "extra"), 1)), needle="populations[2].extra"),
        Case("unknown model field", _edit_meta(_set(("model", "extra"), 1)), needle="model.extra"),
        # harmless: the same content, written differently
        Case("meta re-indented", _edit_meta(lambda m: None, indent=4), expect="harmless"),
        Case("meta compact", _edit_meta(lambda m: None, separators=(",", ":")), expect="harmless"),
        Case("meta keys reordered", _edit_meta(lambda m: None, sort_keys=True), expect="harmless"),
        Case("meta non-ASCII escaped differently", _edit_meta(lambda m: None, ensure_ascii=False), expect="harmless"),
        Case("meta with a trailing newline", lambda d: (d / META_FILE).write_text((d / META_FILE).read_text() + "\n"),
             expect="harmless"),
    ]
    # every field of meta.json: removed, and replaced by values of the wrong type or range
    for path in _paths(s.meta):
        original = _get(s.meta, path)
        if isinstance(path[-1], str):
            cases.append(Case(f"drop {path}", _edit_meta(_drop(path)), field_case=True, needle=_field_name(path)))
        for value in WRONG_VALUES:
            if type(value) is type(original) and value == original:
                continue
            cases.append(Case(f"{path} = {value!r}", _edit_meta(_set(path, value)), field_case=True,
                              needle=_field_name(path)))
    n, classes = s.meta["samples"], MIXED.num_classes
    other_fp = model_fingerprint(spiking_model(MIXED, seed=7, timesteps=3))
    crafted: list[tuple[str, tuple[Any, ...], Any, str | None]] = [
        ("samples 0", ("samples",), 0, "samples"), ("samples too many", ("samples",), MAX_SAMPLES + 1, "samples"),
        ("samples + 1", ("samples",), n + 1, None), ("timesteps 0", ("timesteps",), 0, "timesteps"),
        ("timesteps too many", ("timesteps",), MAX_TIMESTEPS + 1, "timesteps"), ("timesteps - 1", ("timesteps",), 2, None),
        ("label = classes", ("labels", 2), classes, "labels[2]"), ("label 99", ("labels", 0), 99, "labels[0]"),
        ("prediction = classes", ("predictions", 5), classes, "predictions[5]"),
        ("negative label", ("labels", 1), -3, "labels[1]"),
        ("labels short", ("labels",), s.meta["labels"][:-1], "labels"),
        ("labels long", ("labels",), [*s.meta["labels"], 0], "labels"),
        ("predictions short", ("predictions",), s.meta["predictions"][1:], "predictions"),
        ("sample_ids long", ("sample_ids",), [*s.meta["sample_ids"], 99], "sample_ids"),
        ("sample_ids short", ("sample_ids",), [], "sample_ids"),
        ("labels edited", ("labels", 0), (s.meta["labels"][0] + 1) % classes, DIGEST_MSG),
        ("labels dropped", ("labels",), None, DIGEST_MSG),
        ("predictions edited", ("predictions", 3), (s.meta["predictions"][3] + 1) % classes, DIGEST_MSG),
        ("fingerprint of another model", ("model_fingerprint",), other_fp, DIGEST_MSG),
        ("fingerprint not hex", ("model_fingerprint",), "z" * 64, "model_fingerprint"),
        ("engine changed", ("engine",), "event", DIGEST_MSG), ("created changed", ("created",), "2001-01-01", DIGEST_MSG),
        ("dataset renamed", ("dataset", "name"), "cifar10", DIGEST_MSG),
        ("checksum of a file edited", ("files", population_file(2), "crc32"), "0" * 8, DIGEST_MSG),
        ("size of a population file edited", ("files", population_file(0), "bytes"), 7, DIGEST_MSG),
        ("size of a file edited", ("files", "input.npy", "bytes"), 3, DIGEST_MSG),
        ("meta checksum edited", ("meta_sha256",), "0" * 64, DIGEST_MSG),
        ("layer shape edited", ("layers", 2, "source_shape"), [8, 4, 4], "layers[2].source_shape"),
        ("arch widened", ("model", "arch", "features", 0), 9, "model.arch"),  # not the graph's arch
        ("arch classes", ("model", "arch", "num_classes"), 11, None),
        ("arch null", ("model", "arch"), None, DIGEST_MSG),  # as a graph model's: only the checksum tells
        # populations: every entry must be what model.graph derives
        ("population file renamed", ("populations", 1, "file"), "population_09.npy", "populations[1].file"),
        ("population file of v2", ("populations", 1, "file"), "layer_02.npy", "populations[1].file"),
        ("integrator given a file", ("populations", 4, "file"), population_file(4), "populations[4].file"),
        ("spiking population without file", ("populations", 0, "file"), None, "populations[0].file"),
        ("population shape edited", ("populations", 0, "shape"), [8, 4, 4], "populations[0].shape"),
        ("population layers edited", ("populations", 2, "layers"), [1, 2], "populations[2].layers"),
        ("population kind edited", ("populations", 3, "kind"), "IF", "populations[3].kind"),
        ("population renamed", ("populations", 1, "name"), "conv9_lif", "populations[1].name"),
        ("population index edited", ("populations", 1, "index"), 2, "populations[1].index"),
        ("packed_bytes edited", ("populations", 0, "packed_bytes"), 63, "populations[0].packed_bytes"),
        ("array_shape edited", ("populations", 0, "array_shape"), [n, 2, 64], "populations[0].array_shape"),
        ("populations one short", ("populations",), s.meta["populations"][:-1], "field populations"),
        ("populations one extra", ("populations",), [*s.meta["populations"], s.meta["populations"][-1]],
         "field populations"),
        ("populations swapped", ("populations",), [s.meta["populations"][1], s.meta["populations"][0],
                                                   *s.meta["populations"][2:]], "field populations[0]"),
        ("layer source edited", ("layers", 3, "source"), "conv2_lif", "layers[3].source"),
        ("layer target edited", ("layers", 3, "target"), "out_integrator", "layers[3].target"),
        ("layer bias edited", ("layers", 1, "bias"), True, "layers[1].bias"),
        ("layer made identity", ("layers", 2, "kind"), "identity", "layers[2].kind"),
        # model.graph: validated by Graph.from_dict, then layers / populations derived from it
        ("graph widened", ("model", "graph", "nodes", "conv1", "out_channels"), 9, "model.graph"),
        ("graph node of unknown kind", ("model", "graph", "nodes", "conv1_lif", "kind"), "GELU", "model.graph"),
        ("graph LIF made IF", ("model", "graph", "nodes", "conv2_lif", "kind"), "IF", "model.graph"),
        ("graph LIF reset invalid", ("model", "graph", "nodes", "conv2_lif", "reset"), "zero", "model.graph"),
        # a VGG trace's graph must stay the graph of its arch (as a checkpoint's must)
        ("graph LIF reset mode, arch kept", ("model", "graph", "nodes", "conv2_lif", "reset"), "value", "model.arch"),
        ("graph conv biased, arch kept", ("model", "graph", "nodes", "conv2", "bias"), True,
         ("layers[1].bias", "model.arch")),
        ("graph edge dropped", ("model", "graph", "edges"), s.meta["model"]["graph"]["edges"][:-1], "model.graph"),
        ("graph edge reversed", ("model", "graph", "edges", 0), list(reversed(s.meta["model"]["graph"]["edges"][0])),
         "model.graph"),
        ("graph without nodes", ("model", "graph", "nodes"), {}, "model.graph"),
        ("graph of another network", ("model", "graph"), build_graph("digits-resnet", MIXED.input_shape, classes).to_dict(),
         "model.graph"),
        ("input shape edited", ("input", "shape"), [n, 2, 8, 9], "input.shape"),
        ("bytes_per_sample edited", ("bytes_per_sample",), s.meta["bytes_per_sample"] + 1, "bytes_per_sample"),
        ("files lacks one", ("files",), {k: v for k, v in s.meta["files"].items() if k != "spikes.npy"}, "lacks the field files.spikes.npy"),
    ]
    for name, path, value, needle in crafted:
        cases.append(Case(name, _edit_meta(_set(path, value)), needle=needle))
    # the graph of a graph model's trace (model.arch null): layers and populations derive from it alone
    graph_only: list[tuple[str, tuple[Any, ...], Any, str]] = [
        ("graph LIF reset mode", ("model", "graph", "nodes", "conv2_lif", "reset"), "value", DIGEST_MSG),
        ("graph conv biased", ("model", "graph", "nodes", "conv2", "bias"), True, "layers[1].bias"),
        ("graph pool made max", ("model", "graph", "nodes", "pool1", "kind"), "MaxPool2d", "layers[1].pool"),
        ("graph widened", ("model", "graph", "nodes", "conv3", "out_channels"), 17, "layers[2].out_shape"),
        ("graph LIF made IF", ("model", "graph", "nodes", "fc1_lif", "kind"), "IF", "populations[3].kind"),
        ("graph renamed", ("model", "graph", "name"), "other", DIGEST_MSG),
        ("graph dropout edited", ("model", "graph", "nodes", "conv1_lif", "dropout"), 0.5, DIGEST_MSG),
    ]
    for name, path, value, needle in graph_only:
        edit = _set(path, value)

        def both(meta: dict[str, Any], edit: Callable[[dict[str, Any]], None] = edit) -> None:
            meta["model"]["arch"] = None
            edit(meta)
        cases.append(Case(f"{name}, arch null", _edit_meta(both), needle=needle))
    return cases


def _needles(needle: str | tuple[str, ...]) -> tuple[str, ...]:
    return (needle,) if isinstance(needle, str) else needle


# ---------------------------------------------------------------------------- running
def run_case(s: Setup, i: int, case: Case) -> tuple[str, str]:
    """Apply one case to a fresh copy of trace a; return (outcome, message)."""
    d = s.tmp / f"case{i:04d}"
    shutil.copytree(s.a.path, d)
    case.mutate(d)
    try:
        tr = load_trace(d)
    except TraceError as exc:
        return "error", str(exc)
    counts = replay(tr, s.model, progress=False)
    for name in SimCounts.PER_T_FIELDS:
        if not np.array_equal(getattr(counts, name), getattr(s.ref, name)):
            return "wrong", f"{name} differs"
    for what in ("labels", "predictions", "sample_ids"):
        if not np.array_equal(np.asarray(getattr(tr, what)), np.asarray(getattr(s.a, what))):
            return "wrong", f"{what} differ"
    if not np.array_equal(np.asarray(tr.logits()), np.asarray(s.a.logits())):
        return "wrong", "logits differ"
    return "harmless", ""


def test_at_least_100_cases(setup: Setup) -> None:
    cases = build_cases(setup)
    assert len(cases) >= 100 and len(cases) >= V2_CASES
    # the v3 fields are fuzzed: every population entry's fields, the graph's nodes and edges, each file
    assert sum(c.name.startswith(("drop ('populations'", "('populations'")) for c in cases) >= 200
    assert sum(c.name.startswith(("drop ('model', 'graph'", "('model', 'graph'")) for c in cases) >= 1000
    for p in setup.model.populations:
        if p.spiking:
            assert f"delete {population_file(p.index)}" in {c.name for c in cases}
    assert len({c.name for c in cases}) == len(cases)  # distinct cases
    assert sum(c.expect == "harmless" for c in cases) >= 5


def test_every_case_is_refused_in_one_line_or_harmless(setup: Setup) -> None:
    cases = build_cases(setup)
    problems: list[str] = []
    outcomes = {"error": 0, "harmless": 0}
    for i, case in enumerate(cases):
        outcome, msg = run_case(setup, i, case)
        if outcome == "wrong":
            problems.append(f"{case.name}: loaded but {msg}")
            continue
        outcomes[outcome] += 1
        if outcome != case.expect:
            problems.append(f"{case.name}: expected {case.expect}, got {outcome} ({msg})")
        elif outcome == "error":
            if "\n" in msg or not msg.strip():
                problems.append(f"{case.name}: message is not one line: {msg!r}")
            elif case.field_case:
                if case.needle not in msg and DIGEST_MSG not in msg and "format" not in msg:
                    problems.append(f"{case.name}: message does not name {case.needle!r}: {msg}")
            elif case.needle is not None and not any(n in msg for n in _needles(case.needle)):
                problems.append(f"{case.name}: message lacks {case.needle!r}: {msg}")
        shutil.rmtree(setup.tmp / f"case{i:04d}", ignore_errors=True)
    assert not problems, f"{len(problems)} of {len(cases)} cases failed:\n" + "\n".join(problems[:40])
    assert outcomes["error"] >= 100 and outcomes["harmless"] >= 5, outcomes


def test_field_errors_name_the_field_not_only_the_checksum(setup: Setup) -> None:
    """Wrong types are caught by the schema (naming the field), not merely by the checksum."""
    for path, value in ((("samples",), None), (("timesteps",), "3"), (("layers",), [1]), (("predictions",), True),
                        (("labels",), "x"), (("sample_ids", 0), [0]), (("model", "arch"), []),
                        (("input", "absmax"), "big"), (("files", "input.npy"), 1), (("populations",), [1]),
                        (("populations", 0, "file"), 3), (("populations", 1, "layers"), "1"), (("model", "graph"), []),
                        (("layers", 0, "source"), None), (("files", population_file(1)), [])):
        outcome, msg = run_case(setup, 9000, Case(str(path), _edit_meta(_set(path, value))))
        shutil.rmtree(setup.tmp / "case9000")
        assert outcome == "error" and _field_name(path) in msg and DIGEST_MSG not in msg, (path, msg)


def test_a_trace_directory_that_is_a_file(setup: Setup) -> None:
    f = setup.tmp / "a-file"
    f.write_bytes((setup.a.path / META_FILE).read_bytes())
    with pytest.raises(TraceError, match="is a file, not a trace directory"):
        load_trace(f)


def test_corrupt_traces_through_the_cli_exit_2_with_one_line(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    from snnsim.checkpoint import save_model
    from snnsim.cli import main

    ckpt = setup.tmp / "model.pt"
    save_model(setup.model, ckpt)
    cli_cases = [
        Case("flipped spike", _flip(population_file(2), 140, 0x04), needle=f"{population_file(2)} is corrupt"),
        Case("deleted population", _delete(population_file(0)), needle=f"missing {population_file(0)}"),
        Case("edited labels", _edit_meta(_set(("labels", 0), 7)), needle=DIGEST_MSG),
        Case("format v1", _edit_meta(_set(("format_version",), 1)), needle="re-record it"),
        Case("format v2", _edit_meta(_set(("format_version",), 2)), needle="re-record it"),
        Case("population edited", _edit_meta(_set(("populations", 1, "shape"), [1])), needle="populations[1].shape"),
        Case("deep meta", _write_meta("[" * 100_000 + "]" * 100_000), needle="levels deep"),
        Case("meta is a list", _write_meta("[]"), needle="not an snnsim trace"),
        Case("samples null", _edit_meta(_set(("samples",), None)), needle="field samples"),
        Case("truncated input", _truncate("input.npy", 100), needle="input.npy"),
    ]
    for i, case in enumerate(cli_cases):
        d = setup.tmp / f"cli{i}"
        shutil.copytree(setup.a.path, d)
        case.mutate(d)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(["estimate", "--model", str(ckpt), "--trace", str(d), "--out", str(setup.tmp / f"rep{i}")])
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2, case.name
        assert len(err) == 1 and err[0].startswith("snnsim: error: "), (case.name, err)
        assert case.needle is not None and case.needle in err[0], (case.name, err)
        assert "Traceback" not in err[0]
