"""Seeded fuzz of hardware-config loading and costing: YAML mutated from the shipped configs.

Every case is a small set of files written to a temporary folder, mutated from one shipped
config with a seeded generator (``SEED``): a value replaced by a boolean, a numeric or
YAML-1.1-looking string, a huge/tiny/non-finite/negative/zero number, a 5,000-digit integer,
a list, a mapping or null; a key deleted, an unknown key added, a duplicate or non-text key;
deep nesting, alias bombs, recursive aliases, unsafe tags; ``extends:`` to a missing file,
to itself, in a cycle or in a long chain; binary garbage, invalid UTF-8, empty files,
truncated files, a non-mapping top level, several documents.

For every case: either ``load_hw`` raises a :class:`ConfigError` whose message is one line,
not a Python exception dump, and (where the mutation must be refused) says why; or the
config loads, and costing two fixed count sets (a replayed trace of a small SNN, and VGG16
counts at R = 1) gives finite, non-negative figures. A sample of ``CLI_SAMPLE`` cases also
goes through ``snnsim hw show`` (exit 2 and one stderr line, or exit 0).

Case counts: ``CASE_COUNTS`` (by kind) and ``N_CASES`` (583 with this seed: 360 value replacements,
48 deleted keys, 24 unknown keys, 42 duplicate or non-text keys, 48 extends/baseline cases, 18
nesting/alias cases, 24 broken copies (truncated, invalid UTF-8, two documents, BOM) and 19
non-config files; 422 of them must be refused; the test
``test_enough_cases`` requires >= ``MIN_CASES``).
"""

from __future__ import annotations

import copy
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from snnsim.errors import ConfigError
from snnsim.hw import load_hw, shipped_configs

SEED = 20_240_611
MIN_CASES = 500
CLI_SAMPLE = 20


@dataclass(frozen=True)
class Case:
    """Files to write (name -> bytes), the one to load, and what must happen."""

    id: str
    kind: str
    files: dict[str, bytes]
    entry: str
    must_refuse: bool
    because: str | None = None  # a phrase the refusal must contain


# ----------------------------------------------------------------------------- generation
SHIPPED: dict[str, str] = {p.stem: p.read_text(encoding="utf-8") for p in shipped_configs()}

# value kind -> (raw YAML snippets, refused when the original value is a number / text / bool)
VALUE_KINDS: dict[str, tuple[list[str], bool, bool, bool]] = {
    "bool": (["true", "false", "True", "FALSE"], True, True, False),
    "numeric_string": (['"0.9"', "'1'", '"2.0e+8"'], True, False, True),
    "yaml11_string": (["1:30", "0_9", "yes", "off", "On", "0b101", "1_000"], True, False, True),
    "octal_looking": (["040", "010"], False, True, True),
    "huge_float": (["1.0e+308", "1e308", "1.7976931348623157e308"], True, True, True),
    "huge_int": (["9" * 5000, "1" * 4301], True, True, True),
    "tiny_float": (["5e-324", "1e-320"], False, True, True),
    "nan": ([".nan", ".NaN", ".NAN"], True, True, True),
    "inf": ([".inf", "-.inf", "+.Inf"], True, True, True),
    "negative": (["-1", "-0.5", "-1e9"], True, True, True),
    "zero": (["0", "0.0"], False, True, True),
    "at_bound": (["1.0e+6", "1000", "1.0e+12"], False, True, True),
    "list": (["[1, 2]", "[]", "[a, [b]]"], True, True, True),
    "mapping": (["{a: 1}", "{}"], True, True, True),
    "null": (["null", "~", ""], False, False, True),
    "text": (["fast", "'45nm'"], True, False, True),
    "hex_octal": (["0x1F", "0o17"], False, True, True),
    "deep_flow": (["[" * 40 + "]" * 40, "{a: " * 40 + "1" + "}" * 40], True, True, True),
    "unsafe_tag": (["!!python/object/apply:os.system ['true']", "!!python/name:os.system ''",
                    "!!binary aGVsbG8=", "!!timestamp 2001-12-14", "!!set {a, b}", "!custom x"], True, True, True),
    "recursive_alias": (["&rec [*rec]", "&rec {a: *rec}"], True, True, True),
}
#: Refused whatever the field: no field takes these (a null leaf's field may take almost anything else).
ALWAYS_REFUSED = {"huge_int", "deep_flow", "unsafe_tag", "recursive_alias", "nan", "inf", "huge_float", "negative"}
REFUSAL_PHRASE = {"huge_int": "digits", "deep_flow": "nested deeper", "unsafe_tag": "is not allowed",
                  "recursive_alias": "refers to the mapping or list"}
PER_KIND_PER_CONFIG = 3

_RAW = "ZZRAW{}ZZ"


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (path, value) in the document, containers included."""
    out: list[tuple[tuple[Any, ...], Any]] = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for k, v in items:
        out.append(((*prefix, k), v))
        out += _paths(v, (*prefix, k))
    return out


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        data = data[k]
    return data


def _emit(data: Any, raws: list[str]) -> str:
    """Dump ``data``; every ``ZZRAW<i>ZZ`` string becomes the raw YAML text ``raws[i]``."""
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000)
    for i, raw in enumerate(raws):
        text = text.replace(_RAW.format(i), raw)
    return text


def _leaf_class(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "text"


def _generate() -> list[Case]:
    rng = random.Random(SEED)
    cases: list[Case] = []

    def add(kind: str, files: dict[str, str | bytes], must: bool, because: str | None = None,
            entry: str = "case.yaml", base: str = "") -> None:
        enc = {k: (v.encode("utf-8") if isinstance(v, str) else v) for k, v in files.items()}
        cases.append(Case(f"{len(cases):03d}-{base}-{kind}", kind, enc, entry, must, because))

    for name, text in SHIPPED.items():
        data = yaml.safe_load(text)
        paths = _paths(data)
        leaves = [(p, v) for p, v in paths if not isinstance(v, dict | list)]
        mappings = [()] + [p for p, v in paths if isinstance(v, dict)]
        keyed = [p for p, _ in paths if isinstance(p[-1], str)]

        # a value replaced by each kind, at seeded leaves
        for kind, (snippets, bad_num, bad_text, bad_bool) in VALUE_KINDS.items():
            for path, orig in rng.sample(leaves, min(PER_KIND_PER_CONFIG, len(leaves))):
                d = copy.deepcopy(data)
                _get(d, path[:-1])[path[-1]] = _RAW.format(0)
                cls = _leaf_class(orig)
                must = {"number": bad_num, "text": bad_text, "bool": bad_bool, "null": kind in ALWAYS_REFUSED}[cls]
                add(kind, {"case.yaml": _emit(d, [rng.choice(snippets)])}, must, REFUSAL_PHRASE.get(kind), base=name)

        # a key deleted (anything may happen: many fields are optional)
        for path in rng.sample(keyed, 8):
            d = copy.deepcopy(data)
            del _get(d, path[:-1])[path[-1]]
            add("delete_key", {"case.yaml": _emit(d, [])}, False, base=name)

        # an unknown key added to a mapping
        for path in rng.sample(mappings, 4):
            d = copy.deepcopy(data)
            _get(d, path)["zz_unknown_field"] = 1
            add("unknown_key", {"case.yaml": _emit(d, [])}, True, base=name)

        # a duplicate key, and non-text keys
        for path in rng.sample(mappings, 3):
            d = copy.deepcopy(data)
            target = _get(d, path)
            if not target:
                continue
            target[_RAW.format(0)] = "dup"
            add("duplicate_key", {"case.yaml": _emit(d, [rng.choice(list(target)[:-1])])}, True,
                "duplicate key", base=name)
        for raw in ("[a, b]", "{a: 1}", "1", "true"):
            d = copy.deepcopy(data)
            _get(d, rng.choice(mappings))[_RAW.format(0)] = 1
            add("complex_key", {"case.yaml": _emit(d, [raw])}, True, "keys must be text", base=name)

        # deep block nesting, an alias bomb, a harmless alias
        deep = "zz_deep:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 40))
        add("deep_block", {"case.yaml": text + deep}, True, "nested deeper", base=name)
        bomb = 'zz0: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        prev = "a"
        for i, anchor in enumerate("bcdefghi", 1):
            bomb += f"zz{i}: &{anchor} [" + ",".join([f"*{prev}"] * 9) + "]\n"
            prev = anchor
        add("alias_bomb", {"case.yaml": bomb + text}, True, "aliases expand", base=name)
        d = copy.deepcopy(data)
        d["name"], d["description"] = _RAW.format(0), _RAW.format(1)
        add("harmless_alias", {"case.yaml": _emit(d, [f"&nm {name}", "*nm"])}, False, base=name)

        # extends: missing, itself, a cycle, a long chain, a short chain, a shipped name
        add("extends_missing", {"case.yaml": "extends: zz-nowhere.yaml\nname: c\n"}, True, "not found", base=name)
        add("extends_self", {"case.yaml": "extends: case.yaml\n" + text.replace("extends:", "zz_was:")}, True,
            "cycle", base=name)
        add("extends_cycle", {"case.yaml": "extends: other.yaml\nname: a\n", "other.yaml": "extends: case.yaml\nname: b\n"},
            True, "cycle", base=name)
        chain = {"c0.yaml": text}
        for i in range(1, 21):
            chain[f"c{i}.yaml"] = f"extends: c{i - 1}.yaml\nname: c{i}\n"
        add("extends_long_chain", chain, True, "chain longer", entry="c20.yaml", base=name)
        add("extends_short_chain", {k: v for k, v in chain.items() if int(k[1:-5]) <= 4}, False, entry="c4.yaml", base=name)
        add("extends_shipped", {"case.yaml": f"extends: {rng.choice([name, name + '.yaml'])}\nname: mine\n"}, False,
            base=name)
        add("extends_not_text", {"case.yaml": f"extends: {rng.choice(['1', 'true', '[a]', '{a: 1}'])}\nname: c\n"},
            True, base=name)
        d = copy.deepcopy(data)
        d["baseline"] = {"config": rng.choice(["zz-gone.yaml", "zz-gone", "../zz/gone.yaml"])}
        add("baseline_config_missing", {"case.yaml": _emit(d, [])}, True, "not found", base=name)

        # broken files
        cut = rng.randrange(10, len(text) - 40)
        add("truncated", {"case.yaml": text[:cut]}, False, base=name)
        raw = bytearray(text.encode("utf-8"))
        raw.insert(rng.randrange(len(raw)), 0xFF)
        add("invalid_utf8", {"case.yaml": bytes(raw)}, True, "not UTF-8", base=name)
        add("second_document", {"case.yaml": text + "\n---\nname: two\n"}, True, "single document", base=name)
        add("bom", {"case.yaml": "\ufeff" + text}, False, base=name)

    # files that are not configs at all
    for i in range(10):
        add("binary_garbage", {"case.yaml": rng.randbytes(rng.randrange(1, 400))}, True, base=f"g{i}")
    for body, why in (("", "empty"), ("# nothing\n", "empty"), ("- a\n- b\n", "top level must be a mapping"),
                      ("42\n", "top level must be a mapping"), ("hello\n", "top level must be a mapping"),
                      ("~\n", "top level must be a mapping"), ("[1, 2]\n", "top level must be a mapping"),
                      ("!!python/object/apply:os.system ['true']\n", "is not allowed"),
                      ("# " + "x" * 1_100_000 + "\n", "too large")):
        add("not_a_config", {"case.yaml": body}, True, why, base="x")
    return cases


CASES = _generate()
N_CASES = len(CASES)
CASE_COUNTS: dict[str, int] = {}
for _c in CASES:
    CASE_COUNTS[_c.kind] = CASE_COUNTS.get(_c.kind, 0) + 1


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def count_sets(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """Two fixed count sets: a replayed trace of a small SNN (4 samples, T = 4) and VGG16
    counts at R = 1 spike per neuron (T = 5), built once for the module."""
    from sim_testutil import MIXED, inputs, spiking_model

    from snnsim.arch import make_arch
    from snnsim.recording import record_trace
    from snnsim.sim import SimCounts, replay

    model = spiking_model(MIXED, timesteps=4)
    tr = record_trace(model, inputs(MIXED, 4, seed=3), tmp_path_factory.mktemp("fuzz") / "trace", batch_size=4,
                      labels=np.arange(4) % 10, progress=False)
    small = replay(tr, model, progress=False)

    layers = make_arch("vgg16").layers()
    steps, n = 5, len(layers)
    dense = np.array([li.macs for li in layers], dtype=np.float64)
    neurons = np.array([li.neurons for li in layers], dtype=np.float64)
    syn = np.zeros((n, steps))
    syn[0], syn[1:] = dense[0], (dense[1:] / steps)[:, None]
    spikes = np.zeros((n, steps))
    spikes[:-1] = (neurons[:-1] / steps)[:, None]
    vgg = SimCounts(layers=layers, samples=1, timesteps=steps, input_events=syn / 9, syn_ops=syn, syn_ops_nz=syn,
                    touched_neurons=np.tile(neurons[:, None], (1, steps)) / 2, spikes_out=spikes,
                    dense_ops=dense, dense_ops_inbounds=dense, neurons=neurons,
                    analog=np.array([li.analog_input for li in layers]))
    return [small, vgg]


@pytest.fixture(scope="module")
def case_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-hw")


def _write(case: Case, root: Path) -> Path:
    folder = root / case.id
    folder.mkdir(exist_ok=True)
    for name, data in case.files.items():
        (folder / name).write_bytes(data)
    return folder / case.entry


_DUMP = re.compile(r"Traceback|File \"|<class |\b(Recursion|Type|Value|Key|Index|Attribute|Overflow|Memory|"
                   r"Unicode\w*|Reader|Scanner|Parser|Composer|Constructor)Error\b|object at 0x|invalid literal for")


def _check_message(msg: str, case: Case) -> None:
    assert "\n" not in msg and "\r" not in msg, f"{case.id}: not one line: {msg!r}"
    assert not _DUMP.search(msg), f"{case.id}: a raw exception: {msg}"
    assert "; " in msg, f"{case.id}: no fix in: {msg}"
    assert len(msg) < 2_000, f"{case.id}: {len(msg)} characters"
    if case.because is not None:
        assert case.because in msg, f"{case.id}: expected {case.because!r} in: {msg}"


def _check_finite(rep: Any, case: Case) -> None:
    for res in (rep.snn, rep.ann):
        for comp, value in res.breakdown.items():
            assert math.isfinite(value) and value >= 0, f"{case.id}: {res.kind} {comp} = {value}"
        energies = res.layers.filter(like="energy_").to_numpy(dtype=np.float64)
        assert np.isfinite(energies).all() and (energies >= 0).all(), case.id
        assert math.isfinite(res.energy_pj) and res.energy_pj >= 0, case.id
    s = rep.summary
    for key in ("energy_snn_pj", "energy_ann_pj", "latency_s", "edp_pj_s"):
        assert math.isfinite(s[key]) and s[key] >= 0, f"{case.id}: {key} = {s[key]}"
    for key in ("energy_ann_over_snn", "energy_compute_ann_over_snn", "latency_snn_over_ann", "edp_ann_over_snn", "latency_ann_s"):
        assert math.isnan(s[key]) or (math.isfinite(s[key]) and s[key] >= 0), f"{case.id}: {key} = {s[key]}"


def _outcome(case: Case, root: Path, counts: list[Any]) -> str | None:
    """Load (and cost) one case; the error message, or None when it loaded and costed finitely."""
    from snnsim.cost import cost_report

    path = _write(case, root)
    try:
        hw = load_hw(path)
    except ConfigError as exc:
        _check_message(str(exc), case)
        return str(exc)
    assert not case.must_refuse, f"{case.id}: accepted, but must be refused"
    with np.errstate(over="raise", invalid="raise"):  # an overflow anywhere is a failure, not a warning
        for i, c in enumerate(counts):
            try:
                rep = cost_report(c, hw, first_layer="mac_once" if i else "mac_per_timestep")
            except ConfigError as exc:  # the one config that loads but cannot cost an SNN
                assert "compute.ac_pj: null and cannot run spiking layers" in str(exc), f"{case.id}: {exc}"
                _check_message(str(exc), Case(case.id, case.kind, {}, "", False))
                return str(exc)
            _check_finite(rep, case)
    return None


# ----------------------------------------------------------------------------- tests
def test_enough_cases() -> None:
    assert N_CASES >= MIN_CASES, CASE_COUNTS
    assert sum(CASE_COUNTS.values()) == N_CASES
    assert sum(c.must_refuse for c in CASES) > N_CASES // 2  # most mutations must be refused
    assert len({c.id for c in CASES}) == N_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fuzz_case(case: Case, case_root: Path, count_sets: list[Any]) -> None:
    _outcome(case, case_root, count_sets)


_SAMPLE = sorted(random.Random(SEED + 1).sample(range(N_CASES), CLI_SAMPLE))


@pytest.mark.parametrize("index", _SAMPLE, ids=[CASES[i].id for i in _SAMPLE])
def test_fuzz_case_through_cli(index: int, tmp_path: Path, count_sets: list[Any],
                               capsys: pytest.CaptureFixture[str]) -> None:
    """``snnsim hw show CASE``: exit 2 with one stderr line exactly when load_hw refuses it."""
    from snnsim.cli import main

    case = CASES[index]
    refused = _outcome(case, tmp_path, count_sets)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["hw", "show", str(tmp_path / case.id / case.entry)])
    out, err = capsys.readouterr()
    if refused is None:
        assert exc.value.code in (0, None), err
        assert out and err == ""
    else:
        assert exc.value.code == 2
        assert err.startswith("snnsim: error: ") and err.count("\n") == 1, err
        assert out == ""
