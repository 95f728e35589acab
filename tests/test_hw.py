"""Hardware-config schema: shipped configs, extends, compute-only, and one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from snnsim.errors import ConfigError, SnnsimError
from snnsim.hw import (
    HardwareConfig,
    config_from_dict,
    load_hw,
    resolve_hw_path,
    shipped_configs,
    shipped_dir,
)

SHIPPED = {"45nm", "45nm-int8", "eyeriss-like", "loihi", "truenorth", "spinnaker2"}

MINIMAL = """\
name: mini
technology: {node_nm: 45}
numerics: {weight_bits: 8, potential_bits: 16, activation_bits: 8}
compute: {mac_pj: 1.0, ac_pj: 0.5}
memory:
  levels:
    - {name: sram, kind: sram, width_bits: 32, read_pj: 4.0, write_pj: 4.0}
  dataspaces:
    weights: {level: sram, fetch: per_synop}
latency: {mode: timestep_serial, clock_hz: 1.0e+9}
baseline: {reuse: no_reuse}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _mutate(tmp_path: Path, edit) -> Path:  # noqa: ANN001 - a callable editing the dict
    data = yaml.safe_load(MINIMAL)
    edit(data)
    return _write(tmp_path, "bad.yaml", yaml.safe_dump(data, sort_keys=False))


def _error(path: Path | str, **kw) -> str:  # noqa: ANN003
    with pytest.raises(ConfigError) as info:
        load_hw(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert isinstance(info.value, SnnsimError) and info.value.exit_code == 2
    return msg


# ----------------------------------------------------------------------------- shipped
def test_shipped_configs_are_found_and_all_load() -> None:
    paths = shipped_configs()
    assert {p.stem for p in paths} >= SHIPPED
    assert shipped_dir() == Path(__file__).resolve().parent.parent / "hwconfigs"
    for p in paths:
        for compute_only in (False, True):
            hw = load_hw(p, compute_only=compute_only)
            assert hw.compute_only is compute_only
            assert hw.path == p.resolve()
            ann = hw.ann
            assert ann.mac_pj > 0
            assert ann.compute_only is compute_only
            assert hw.energy_table(), p


def test_every_number_in_shipped_configs_has_a_source_comment() -> None:
    number_line = re.compile(r"^\s*(-\s*)?[A-Za-z_]+:\s*[-+]?(\d|\.\d)")
    for p in shipped_configs():
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if number_line.match(line) and not line.lstrip().startswith(("name:", "extends:", "schema:")):
                assert "#" in line, f"{p.name}:{i} has a number without a source comment: {line.strip()}"


def test_spiking_configs_name_their_baseline_with_a_reason() -> None:
    for name in SHIPPED:
        hw = load_hw(name)
        assert hw.ann.reason, name
    assert load_hw("45nm").ann.source == "45nm"
    assert load_hw("45nm").ann.mac_pj == 4.6
    for chip in ("loihi", "truenorth", "spinnaker2"):
        hw = load_hw(chip)
        assert hw.ann.source == "eyeriss-like"
        assert hw.ann.mac_pj == pytest.approx(0.208)
        assert hw.compute.mac_pj is None  # no MAC datapath on neuromorphic chips


def test_paper_constants_and_flags() -> None:
    hw = load_hw("45nm")
    assert (hw.compute.mac_pj, hw.compute.ac_pj) == (4.6, 0.9)
    assert not hw.aggregate
    tn = load_hw("truenorth")
    assert tn.aggregate and tn.compute.ac_pj == 26.0 and tn.latency.tick_s == 1e-3
    assert all(not lv.charged for lv in tn.memory.levels)
    lo = load_hw("loihi")
    assert lo.latency.clock_hz is None and lo.latency.synop_ns == 3.5 and lo.latency.mode == "tick_parallel"
    assert any("min" in c for c in lo.caveats)
    sp = load_hw("spinnaker2")
    assert any("PROTOTYPE" in c for c in sp.caveats)


def test_int8_extends_45nm() -> None:
    base, int8 = load_hw("45nm"), load_hw("45nm-int8")
    assert int8.compute.ac_pj == 0.1 and int8.compute.mac_pj == 0.3
    assert int8.numerics.weight_bits == 8 and int8.numerics.potential_bits == 32
    assert int8.memory == base.memory  # inherited
    assert int8.technology == base.technology
    assert int8.neuron.leak == "shift" and int8.neuron.update_policy == base.neuron.update_policy
    assert int8.ann.mac_pj == 0.3  # the inline baseline follows the child's MAC


def test_resolve_by_name_and_unknown_name() -> None:
    assert resolve_hw_path("loihi").name == "loihi.yaml"
    msg = _error("no-such-chip")
    assert "no-such-chip" in msg and "45nm" in msg
    msg = _error("dir/missing.yaml")
    assert "missing.yaml" in msg


# ----------------------------------------------------------------------------- extends
def test_extends_overrides_and_replaces_lists(tmp_path: Path) -> None:
    _write(tmp_path, "base.yaml", MINIMAL)
    child = _write(tmp_path, "child.yaml", """\
extends: base.yaml
name: child
compute: {ac_pj: 0.25}
memory:
  levels:
    - {name: dram, kind: dram, energy_per_bit_pj: 8.0}
  dataspaces:
    weights: [{level: dram, fetch: once}]
""")
    hw = load_hw(child)
    assert hw.name == "child"
    assert hw.compute.ac_pj == 0.25 and hw.compute.mac_pj == 1.0  # merged key by key
    assert hw.memory.level_names == ["dram"]  # lists are replaced, not appended
    assert hw.memory.dataspaces.weights[0].fetch == "once"
    assert hw.latency.clock_hz == 1e9
    assert hw.extends == "base.yaml"


def test_extends_in_subfolder_keeps_baseline_path(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    _write(tmp_path, "ann.yaml", MINIMAL.replace("name: mini", "name: ann-hw"))
    _write(tmp_path, "parent.yaml", MINIMAL.replace("baseline: {reuse: no_reuse}", "baseline: {config: ann.yaml}"))
    child = _write(sub, "child.yaml", "extends: ../parent.yaml\nname: child\n")
    assert load_hw(child).ann.source == "ann-hw"


def test_child_baseline_config_replaces_inherited_section(tmp_path: Path) -> None:
    _write(tmp_path, "other.yaml", MINIMAL.replace("name: mini", "name: other"))
    _write(tmp_path, "base.yaml", MINIMAL.replace("baseline: {reuse: no_reuse}",
                                                  "baseline: {reuse: ideal_reuse, mac_pj: 9.0}"))
    child = _write(tmp_path, "child.yaml", "extends: base.yaml\nname: c\nbaseline: {config: other.yaml}\n")
    ann = load_hw(child).ann
    assert ann.source == "other" and ann.mac_pj == 1.0 and ann.reuse == "no_reuse"


def test_baseline_config_overrides(tmp_path: Path) -> None:
    _write(tmp_path, "other.yaml", MINIMAL.replace("name: mini", "name: other"))
    p = _write(tmp_path, "x.yaml", MINIMAL.replace("baseline: {reuse: no_reuse}",
                                                   "baseline: {config: other.yaml, reuse: ideal_reuse, pes: 7}"))
    ann = load_hw(p).ann
    assert (ann.source, ann.reuse, ann.pes) == ("other", "ideal_reuse", 7)


# ----------------------------------------------------------------------------- bad input
def test_unknown_field(tmp_path: Path) -> None:
    p = _mutate(tmp_path, lambda d: d["compute"].update(ac_pJ=0.5))
    msg = _error(p)
    assert "bad.yaml" in msg and "compute.ac_pJ" in msg and "unknown field" in msg and "ac_pj" in msg


def test_unknown_top_level_section(tmp_path: Path) -> None:
    msg = _error(_mutate(tmp_path, lambda d: d.update(memroy={})))
    assert "memroy" in msg and "unknown field" in msg


def test_negative_energy(tmp_path: Path) -> None:
    msg = _error(_mutate(tmp_path, lambda d: d["compute"].update(ac_pj=-1)))
    assert "bad.yaml: compute.ac_pj: must be >= 0, got -1" in msg


def test_negative_memory_energy_names_the_list_index(tmp_path: Path) -> None:
    msg = _error(_mutate(tmp_path, lambda d: d["memory"]["levels"][0].update(read_pj=-2.0)))
    assert "memory.levels[0].read_pj" in msg and ">= 0" in msg


def test_missing_section(tmp_path: Path) -> None:
    msg = _error(_mutate(tmp_path, lambda d: d.pop("compute")))
    assert "bad.yaml: compute: required section is missing" in msg


def test_missing_field(tmp_path: Path) -> None:
    msg = _error(_mutate(tmp_path, lambda d: d["compute"].pop("mac_pj")))
    assert "compute.mac_pj: required field is missing" in msg


def test_wrong_type(tmp_path: Path) -> None:
    msg = _error(_mutate(tmp_path, lambda d: d["compute"].update(ac_pj="cheap")))
    assert "compute.ac_pj: must be a number, got 'cheap'" in msg
    msg = _error(_mutate(tmp_path, lambda d: d["numerics"].update(weight_bits=2.5)))
    assert "numerics.weight_bits: must be a whole number" in msg
    msg = _error(_mutate(tmp_path, lambda d: d.update(compute=[1, 2])))
    assert "compute: must be a mapping" in msg


def test_nan_and_inf(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, "nan.yaml", MINIMAL.replace("ac_pj: 0.5", "ac_pj: .nan")))
    assert "compute.ac_pj: must be a finite number, got nan" in msg
    msg = _error(_write(tmp_path, "inf.yaml", MINIMAL.replace("clock_hz: 1.0e+9", "clock_hz: .inf")))
    assert "latency.clock_hz" in msg and "finite" in msg


def test_zero_clock(tmp_path: Path) -> None:
    msg = _error(_mutate(tmp_path, lambda d: d["latency"].update(clock_hz=0)))
    assert "latency.clock_hz: must be >= 1000, got 0" in msg  # clocks are bounded to 1 kHz .. 1 THz


def test_bad_literal(tmp_path: Path) -> None:
    msg = _error(_mutate(tmp_path, lambda d: d["latency"].update(mode="fast")))
    assert "latency.mode: must be one of" in msg and "'fast'" in msg


def test_extends_cycle(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "extends: b.yaml\nname: a\n")
    _write(tmp_path, "b.yaml", "extends: a.yaml\nname: b\n")
    msg = _error(tmp_path / "a.yaml")
    assert "extends: cycle" in msg and "a.yaml -> b.yaml -> a.yaml" in msg
    _write(tmp_path, "self.yaml", "extends: self.yaml\nname: s\n")
    assert "cycle" in _error(tmp_path / "self.yaml")


def test_extends_missing_file(tmp_path: Path) -> None:
    p = _write(tmp_path, "child.yaml", "extends: nowhere.yaml\nname: c\n")
    msg = _error(p)
    assert "child.yaml: extends: file 'nowhere.yaml' not found" in msg


def test_aggregate_with_charged_memory(tmp_path: Path) -> None:
    msg = _error(_mutate(tmp_path, lambda d: d.update(aggregate=True)))
    assert "memory.levels[0].charged" in msg and "aggregate" in msg
    msg = _error(_write(tmp_path, "agg.yaml", MINIMAL.replace("{name: sram, kind: sram,", "{name: sram, kind: sram, charged: false,")
                        + "aggregate: true\nstatic: {power_mw: 5}\n"))
    assert "static.power_mw" in msg and "aggregate" in msg


def test_cross_field_problems(tmp_path: Path) -> None:
    msg = _error(_mutate(tmp_path, lambda d: d["memory"]["dataspaces"].update(potentials={"level": "l2"})))
    assert "memory.dataspaces.potentials[0].level: unknown level 'l2'" in msg and "sram" in msg
    msg = _error(_mutate(tmp_path, lambda d: d["compute"].update(leak_pj=1.0)))
    assert "compute.leak_pj" in msg and "neuron.leak" in msg
    msg = _error(_mutate(tmp_path, lambda d: d.update(latency={"mode": "timestep_serial"})))
    assert "latency: no time base" in msg
    msg = _error(_mutate(tmp_path, lambda d: d["latency"].update(mode="tick_parallel")))
    assert "parallelism.neurons_per_core" in msg
    msg = _error(_mutate(tmp_path, lambda d: d["latency"].update(tick_s=1e-3)))
    assert "latency.tick_s" in msg and "tick_parallel" in msg
    msg = _error(_mutate(tmp_path, lambda d: d["memory"]["levels"].append(dict(d["memory"]["levels"][0]))))
    assert "memory.levels[1].name: duplicate level name 'sram'" in msg
    msg = _error(_mutate(tmp_path, lambda d: d["memory"]["levels"][0].pop("write_pj")))
    assert "memory.levels[0]" in msg and "write_pj" in msg


def test_baseline_problems(tmp_path: Path) -> None:
    msg = _error(_mutate(tmp_path, lambda d: d.update(baseline={"reuse": "ratios"})))
    assert "baseline.pj_per_mac" in msg
    msg = _error(_mutate(tmp_path, lambda d: d.update(baseline={"reuse": "ratios", "pj_per_mac": {"l9": 1.0}})))
    assert "baseline.pj_per_mac.l9: unknown level" in msg
    msg = _error(_mutate(tmp_path, lambda d: d.update(baseline={"weights": "nope"})))
    assert "baseline.weights: unknown level 'nope'" in msg
    msg = _error(_mutate(tmp_path, lambda d: d.update(baseline={"config": "gone.yaml"})))
    assert "baseline.config: file 'gone.yaml' not found" in msg or "gone.yaml" in msg
    msg = _error(_mutate(tmp_path, lambda d: d["compute"].update(mac_pj=None)))
    assert "baseline" in msg and "mac_pj" in msg


def test_baseline_cycle(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", MINIMAL.replace("name: mini", "name: a").replace("baseline: {reuse: no_reuse}",
                                                                                  "baseline: {config: b.yaml}"))
    _write(tmp_path, "b.yaml", MINIMAL.replace("name: mini", "name: b").replace("baseline: {reuse: no_reuse}",
                                                                                  "baseline: {config: a.yaml}"))
    msg = _error(tmp_path / "a.yaml")
    assert "baseline.config: cycle" in msg


def test_yaml_syntax_duplicates_and_top_level(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, "syntax.yaml", "name: [unclosed\n"))
    assert "syntax.yaml: invalid YAML at line" in msg
    msg = _error(_write(tmp_path, "dup.yaml", MINIMAL + "name: again\n"))
    assert "duplicate key 'name'" in msg
    msg = _error(_write(tmp_path, "list.yaml", "- 1\n- 2\n"))
    assert "top level must be a mapping" in msg


def test_scientific_notation_without_dot(tmp_path: Path) -> None:
    hw = load_hw(_write(tmp_path, "sci.yaml", MINIMAL.replace("clock_hz: 1.0e+9", "clock_hz: 1e9")))
    assert hw.latency.clock_hz == 1e9


def test_compute_only_copy_and_config_from_dict() -> None:
    hw = config_from_dict(yaml.safe_load(MINIMAL), source="inline")
    assert isinstance(hw, HardwareConfig) and not hw.compute_only
    co = hw.as_compute_only()
    assert co.compute_only and co.label == "mini (compute-only)" and co.ann.compute_only
    with pytest.raises(ConfigError, match="inline: compute.ac_pj: must be >= 0"):
        config_from_dict({**yaml.safe_load(MINIMAL), "compute": {"mac_pj": 1, "ac_pj": -3}}, source="inline")


def test_energy_table_lists_every_charged_action() -> None:
    rows = load_hw("eyeriss-like").energy_table()
    comps = {(r["component"], r["action"]) for r in rows}
    assert ("compute", "mac") in comps and ("memory:dram", "read") in comps and ("memory:psum_spad", "write") in comps
    mac = next(r for r in rows if r["action"] == "mac")
    assert mac["energy_pj"] == pytest.approx(0.208)
    loihi_mac = next(r for r in load_hw("loihi").energy_table() if r["action"] == "mac")
    assert loihi_mac["energy_pj"] == pytest.approx(0.208) and "baseline" in loihi_mac["note"]


def test_wheel_ships_every_hardware_config() -> None:
    """pyproject's data-files puts every shipped config where shipped_dir() looks in a wheel install."""
    import sys
    from pathlib import Path

    from snnsim.hw import shipped_configs, shipped_dir

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = Path(__file__).resolve().parent.parent
    data_files = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    globs = data_files["share/snnsim/hwconfigs"]
    packaged = {p.name for g in globs for p in root.glob(g)}
    assert packaged == {p.name for p in shipped_configs()} and len(packaged) >= 6
    assert (Path(sys.prefix) / "share/snnsim/hwconfigs").parts[-3:] == ("share", "snnsim", "hwconfigs")
    assert shipped_dir().is_dir()


# ----------------------------------------------------------------------------- resolving names
def test_shipped_names_resolve_from_any_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # outside the repo: no hwconfigs/ here
    want = (shipped_dir() / "45nm.yaml").resolve()
    for spec in ("45nm", "45nm.yaml", "45nm.yml", "hwconfigs/45nm.yaml", "../somewhere/45nm.yaml"):
        assert resolve_hw_path(spec) == want, spec
        assert load_hw(spec).name == "45nm", spec
    assert load_hw("45nm-int8.yaml").name == "45nm-int8"


def test_an_existing_file_wins_over_a_shipped_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "45nm.yaml", MINIMAL.replace("name: mini", "name: local"))
    assert load_hw("45nm.yaml").name == "local"  # the file in the working directory
    assert load_hw("45nm").name == "45nm"  # no file called '45nm' here: the shipped config
    sub = tmp_path / "sub"
    sub.mkdir()
    _write(sub, "child.yaml", "extends: ../45nm.yaml\nname: c\n")
    assert load_hw(sub / "child.yaml").compute.ac_pj == 0.5  # relative to the file: the local one


def test_extends_and_baseline_config_find_shipped_configs(tmp_path: Path) -> None:
    for spec in ("45nm", "45nm.yaml"):
        child = _write(tmp_path, "mine.yaml", f"extends: {spec}\nname: mine\ncompute: {{ac_pj: 0.5}}\n")
        hw = load_hw(child)
        assert (hw.name, hw.compute.ac_pj, hw.compute.mac_pj) == ("mine", 0.5, 4.6)
        assert [p.name for p in hw.extends_chain] == ["mine.yaml", "45nm.yaml"]
    p = _write(tmp_path, "b.yaml", MINIMAL.replace("baseline: {reuse: no_reuse}", "baseline: {config: eyeriss-like}"))
    assert load_hw(p).ann.source == "eyeriss-like"


def test_unknown_names_suggest_the_close_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    msg = _error("45nn")
    assert "did you mean 45nm?" in msg and "loihi" in msg and "truenorth" in msg
    assert "did you mean loihi?" in _error("Loihi.yaml")
    child = _write(tmp_path, "c.yaml", "extends: eyeris-like\nname: c\n")
    msg = _error(child)
    assert msg.startswith("c.yaml: extends: file 'eyeris-like' not found") and "did you mean eyeriss-like?" in msg
    msg = _error(_write(tmp_path, "d.yaml", MINIMAL.replace("baseline: {reuse: no_reuse}",
                                                            "baseline: {config: truenort}")))
    assert "baseline.config" in msg and "did you mean truenorth?" in msg
    assert "is a folder" in _error(str(tmp_path))
    assert "is empty" in _error("  ")


# ----------------------------------------------------------------------------- YAML 1.2, strict types
def test_yaml_1_1_forms_stay_text_and_leading_zeros_are_decimal(tmp_path: Path) -> None:
    text = (MINIMAL.replace("name: mini", "name: yes").replace("weight_bits: 8", "weight_bits: 040")
            + "description: 1:30\ncaveats: [0_9, off, on, no]\n")
    hw = load_hw(_write(tmp_path, "y12.yaml", text))
    assert hw.name == "yes" and hw.description == "1:30" and hw.caveats == ["0_9", "off", "on", "no"]
    assert hw.numerics.weight_bits == 40  # YAML 1.1 would read 040 as octal 32
    hw = load_hw(_write(tmp_path, "hex.yaml", MINIMAL.replace("weight_bits: 8", "weight_bits: 0o10")
                        .replace("ac_pj: 0.5", "ac_pj: 1")))
    assert hw.numerics.weight_bits == 8 and hw.compute.ac_pj == 1.0 and isinstance(hw.compute.ac_pj, float)


@pytest.mark.parametrize(("edit", "expect"), [
    (("ac_pj: 0.5", "ac_pj: true"), "compute.ac_pj: must be a number, got true"),
    (("ac_pj: 0.5", 'ac_pj: "0.9"'), "compute.ac_pj: must be a number, got '0.9'; write the number without quotes"),
    (("ac_pj: 0.5", "ac_pj: 1:30"), "compute.ac_pj: must be a number, got '1:30'"),
    (("weight_bits: 8", "weight_bits: true"), "numerics.weight_bits: must be a whole number, got true"),
    (("weight_bits: 8", "weight_bits: 0_9"), "numerics.weight_bits: must be a whole number, got '0_9'"),
    (("weight_bits: 8", "weight_bits: 8.0"), "numerics.weight_bits: must be a whole number"),
    (("name: mini", "name: 45"), "name: must be text, got 45"),
    (("kind: sram, width_bits", "kind: sram, charged: yes, width_bits"), "charged: must be true or false, got 'yes'"),
    (("kind: sram, width_bits", "kind: sram, charged: 1, width_bits"), "charged: must be true or false, got 1"),
    (("clock_hz: 1.0e+9", "clock_hz: !!float 1:30"), "'1:30' is not a number"),
    (("name: mini", "name: !!binary aGk="), "the tag 'tag:yaml.org,2002:binary' is not allowed"),
    (("name: mini", "name: !!python/object/apply:os.system [echo]"), "is not allowed"),
    (("ac_pj: 0.5", "ac_pj: " + "9" * 5000), "an integer of 5000 digits is out of range"),
])
def test_strict_types_and_tags(tmp_path: Path, edit: tuple[str, str], expect: str) -> None:
    msg = _error(_write(tmp_path, "t.yaml", MINIMAL.replace(*edit)))
    assert expect in msg and "t.yaml" in msg, msg


def test_keys_depth_and_alias_bombs(tmp_path: Path) -> None:
    assert "keys must be text, found a list as a key" in _error(_write(tmp_path, "k.yaml", MINIMAL + "? [a, b]\n: 1\n"))
    assert "keys must be text" in _error(_write(tmp_path, "i.yaml", MINIMAL + "1: 2\n"))
    assert "keys must be text" in _error(_write(tmp_path, "b.yaml", MINIMAL + "true: 2\n"))
    deep = "x: " + "[" * 50_000 + "]" * 50_000 + "\n"
    assert "nested deeper than 32 levels" in _error(_write(tmp_path, "deep.yaml", deep))
    block = "x:\n" + "".join("  " * i + "y:\n" for i in range(1, 40))
    assert "nested deeper than 32 levels" in _error(_write(tmp_path, "block.yaml", block))
    lol = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i, (name, prev) in enumerate(zip("bcdefghi", "abcdefgh", strict=True)):
        lol += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        assert i < 8
    assert "aliases expand it to more than 100,000 values" in _error(_write(tmp_path, "lol.yaml", lol + MINIMAL))
    assert "refers to the mapping or list that contains it" in _error(_write(tmp_path, "r.yaml", "a: &a [*a]\n"))
    # a small, legitimate alias still works (an anchor reused once)
    ok = MINIMAL.replace("compute: {mac_pj: 1.0, ac_pj: 0.5}", "compute: &c {mac_pj: 1.0, ac_pj: 0.5}")
    assert load_hw(_write(tmp_path, "ok.yaml", ok)).compute.ac_pj == 0.5


def test_files_that_are_not_yaml_configs(tmp_path: Path) -> None:
    assert "not UTF-8" in _error(_write_bytes(tmp_path, "u.yaml", b"name: \xff\xfe\n"))
    assert "is not allowed (binary data?)" in _error(_write_bytes(tmp_path, "z.yaml", b"\x00\x01\x02\x7f"))
    assert "the file is empty" in _error(_write(tmp_path, "e.yaml", "# only a comment\n"))
    assert "got text" in _error(_write(tmp_path, "s.yaml", "hello\n"))
    assert "expected a single document" in _error(_write(tmp_path, "m.yaml", "a: 1\n---\nb: 2\n"))
    assert "too large" in _error(_write(tmp_path, "big.yaml", "# " + "x" * 1_100_000 + "\n"))


def _write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_extends_chain_length_is_bounded(tmp_path: Path) -> None:
    from snnsim.limits import MAX_EXTENDS_DEPTH

    _write(tmp_path, "c0.yaml", MINIMAL)
    for i in range(1, 3000):
        _write(tmp_path, f"c{i}.yaml", f"extends: c{i - 1}.yaml\nname: c{i}\n")
    assert load_hw(tmp_path / f"c{MAX_EXTENDS_DEPTH}.yaml").name == f"c{MAX_EXTENDS_DEPTH}"  # 16 links: fine
    msg = _error(tmp_path / f"c{MAX_EXTENDS_DEPTH + 1}.yaml")
    assert f"extends: chain longer than {MAX_EXTENDS_DEPTH} files" in msg
    assert "chain longer than" in _error(tmp_path / "c2999.yaml")  # was a RecursionError


def test_baseline_config_chain_length_is_bounded(tmp_path: Path) -> None:
    _write(tmp_path, "b0.yaml", MINIMAL)
    for i in range(1, 40):
        _write(tmp_path, f"b{i}.yaml", MINIMAL.replace("baseline: {reuse: no_reuse}", f"baseline: {{config: b{i - 1}.yaml}}"))
    assert load_hw(tmp_path / "b10.yaml").ann.source == "mini"
    assert "chain of more than 16 baseline configs" in _error(tmp_path / "b39.yaml")


# ----------------------------------------------------------------------------- bounds
@pytest.mark.parametrize(("edit", "expect"), [
    (("ac_pj: 0.5", "ac_pj: 1.0e+308"), "compute.ac_pj: must be <= 1e+06, got 1e+308"),
    (("ac_pj: 0.5", "ac_pj: 5e-324"), "compute.ac_pj: must be 0 or >= 1e-09 pJ"),
    (("clock_hz: 1.0e+9", "clock_hz: 5e-324"), "latency.clock_hz: must be >= 1000"),
    (("clock_hz: 1.0e+9", "clock_hz: 1e13"), "latency.clock_hz: must be <= 1e+12"),
    (("read_pj: 4.0", "read_pj: 1e7"), "memory.levels[0].read_pj: must be <= 1e+06"),
    (("baseline: {reuse: no_reuse}", "baseline: {reuse: no_reuse, utilization: 5e-324}"), "baseline.utilization"),
    (("latency: {mode: timestep_serial, clock_hz: 1.0e+9}",
      "latency: {mode: timestep_serial, clock_hz: 1.0e+9, sync_ns: 1e-300}"), "latency.sync_ns: must be 0 or >= 1e-06 ns"),
])
def test_numbers_outside_physical_bounds(tmp_path: Path, edit: tuple[str, str], expect: str) -> None:
    assert expect in _error(_write(tmp_path, "b.yaml", MINIMAL.replace(*edit)))


def test_static_power_bound_and_ann_without_clock(tmp_path: Path) -> None:
    assert "static.power_mw: must be <= 1e+06" in _error(_write(tmp_path, "s.yaml", MINIMAL + "static: {power_mw: 1e300}\n"))
    unclocked = MINIMAL.replace("latency: {mode: timestep_serial, clock_hz: 1.0e+9}",
                                "latency: {mode: timestep_serial, synop_ns: 1, neuron_update_ns: 1}")
    assert load_hw(_write(tmp_path, "u.yaml", unclocked)).ann.clock_hz is None  # no static: latency n/a
    msg = _error(_write(tmp_path, "us.yaml", unclocked + "static: {power_mw: 5}\n"))
    assert "baseline.clock_hz" in msg and "no clock" in msg


def test_name_must_be_one_line(tmp_path: Path) -> None:
    assert "name: must be one line" in _error(_write(tmp_path, "n.yaml", MINIMAL.replace("name: mini", 'name: "a\\nb"')))
    assert "name: is longer than 100" in _error(_write(tmp_path, "l.yaml", MINIMAL.replace("name: mini", "name: " + "x" * 101)))


# ----------------------------------------------------------------------------- sources
def test_energy_table_names_field_and_source_of_every_number() -> None:
    rows = load_hw("45nm-int8").energy_table()
    by = {(r["component"], r["action"]): r for r in rows}
    assert by[("compute", "ac")]["field"] == "compute.ac_pj"
    assert "int32 add" in by[("compute", "ac")]["source"] and "[S]" in by[("compute", "ac")]["source"]
    # inherited from 45nm.yaml: the comment there, and which file it is in
    assert by[("memory:sram", "read")]["source"].endswith("[S] (in 45nm.yaml)")
    assert by[("routing", "hop")]["source"] == "not set in the config (schema default)"
    loihi = {(r["component"], r["action"]): r for r in load_hw("loihi").energy_table()}
    assert loihi[("compute", "mac")]["source"].startswith("eyeriss-like: 8 b x 8 b multiply")
    for p in shipped_configs():  # every number a shipped config writes has a recorded source
        hw = load_hw(p)
        for r in hw.energy_table() + hw.timing_table():
            assert "no recorded source" not in r["source"], (p.name, r)


def test_source_of_without_a_comment_says_so(tmp_path: Path) -> None:
    hw = load_hw(_write(tmp_path, "m.yaml", MINIMAL.replace("ac_pj: 0.5}", "ac_pj: 0.5}  # my own guess [A]")))
    assert hw.source_of("compute.ac_pj") == "my own guess [A]"
    assert hw.source_of("compute.mac_pj") == "my own guess [A]"  # same line: the same comment
    assert hw.source_of("latency.clock_hz") == "no recorded source (no comment beside the value)"
    assert hw.source_of("static.power_mw") == "not set in the config (schema default)"
    assert hw.as_compute_only().source_of("compute.ac_pj") == "my own guess [A]"
    assert hw.with_numerics(weight_bits=4).source_of("compute.ac_pj") == "my own guess [A]"
    assert config_from_dict(yaml.safe_load(MINIMAL)).source_of("compute.ac_pj").startswith("no recorded source")


# ----------------------------------------------------------------------------- CLI: snnsim hw
def test_cli_hw_list(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("hw", "list")
    assert code == 0 and err == ""
    for p in shipped_configs():
        line = next(ln for ln in out.splitlines() if ln.startswith(p.stem + " "))
        assert line.rstrip().endswith(str(p))
    assert "Intel Loihi 1, 14 nm" in out
    code, out, _ = run_cli("hw", "list", "--names-only")
    assert code == 0 and out.split() == [p.stem for p in shipped_configs()]


def test_cli_hw_show(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("hw", "show", "45nm-int8.yaml")
    assert code == 0 and err == ""
    assert "extends:    45nm-int8.yaml -> 45nm.yaml" in out
    assert "the ANN runs on this config (inline baseline)" in out and "MAC 0.3 pJ" in out
    ac = next(ln for ln in out.splitlines() if "compute.ac_pj" in ln)
    assert "0.1" in ac and "int32 add" in ac
    assert "latency.clock_hz" in out and "static.power_mw" in out
    assert "horowitz2014: M. Horowitz" in out  # the citation behind the cited key
    code, out, _ = run_cli("hw", "show", "loihi")
    assert code == 0 and "the ANN runs on eyeriss-like" in out and "reason: Loihi's per-op energies" in out
    assert "latency.synop_ns" in out and "davies2018" in out and "baseline.pj_per_mac.dram" in out
    code, out, _ = run_cli("hw", "show", "45nm", "--compute-only")
    assert code == 0 and "off (compute-only)" in out


def test_cli_hw_errors_are_one_line(run_cli, tmp_path: Path) -> None:  # noqa: ANN001
    code, out, err = run_cli("hw", "show", "45nn")
    assert code == 2 and out == "" and err.count("\n") == 1 and "did you mean 45nm?" in err
    bad = _write(tmp_path, "bad.yaml", MINIMAL.replace("ac_pj: 0.5", "ac_pj: yes"))
    code, _, err = run_cli("hw", "show", bad)
    assert code == 2 and err.count("\n") == 1 and "compute.ac_pj: must be a number, got 'yes'" in err
    code, _, err = run_cli("hw", "show")
    assert code == 2 and "CONFIG" in err
