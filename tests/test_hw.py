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
    assert "latency.clock_hz: must be > 0, got 0" in msg


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
