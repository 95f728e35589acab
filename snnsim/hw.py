"""Hardware configs: a strict YAML schema, ``extends:`` inheritance, and the ANN baseline.

A hardware config says what every counted event costs on one chip: the compute ops (MAC for
analog inputs, AC for spikes), the neuron update, each memory level and which tensor lives
where (with its fetch policy), spike routing, static power, the parallelism and timing used
for latency, and the hardware the non-spiking ANN baseline runs on. :mod:`snnsim.cost` turns
a :class:`HardwareConfig` and the simulator's counts into energy and latency;
``docs/hardware-configs.md`` is the user-facing description of the format.

Everything a user can get wrong is refused at load time with a one-line
:class:`~snnsim.errors.ConfigError` naming the file and the field path (unknown fields, wrong
types, negative energies, NaN, zero clocks, unknown memory levels, ``extends`` cycles, memory
charged on an aggregate chip, ...). Numbers carry their units in their names (``_pj``,
``_ns``, ``_hz``, ``_bits``, ``_mw``, ``_s``).
"""

from __future__ import annotations

import math
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from snnsim.errors import ConfigError

SCHEMA_ID = "snnsim-hw/1"

NonNeg = Annotated[float, Field(ge=0)]
Pos = Annotated[float, Field(gt=0)]
PosInt = Annotated[int, Field(ge=1)]
Bits = Annotated[int, Field(ge=1, le=64)]

LatencyMode = Literal["timestep_serial", "layer_pipelined", "tick_parallel"]
ReuseMode = Literal["no_reuse", "ideal_reuse", "ratios"]


class _Problem(ValueError):
    """A cross-field problem found by a validator, with the field path it concerns."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(what)
        self.where = where
        self.what = what


class _Strict(BaseModel):
    """Base of every section: unknown keys and NaN/inf are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=False)


# --------------------------------------------------------------------------- sections
class Technology(_Strict):
    """Process node and supply voltage the numbers were published at (informational)."""

    node_nm: Pos
    voltage_v: Pos | None = None


class Numerics(_Strict):
    """Bit widths of the values moved through memory (and of the ANN baseline's activations)."""

    weight_bits: Bits
    potential_bits: Bits
    activation_bits: Bits
    spike_bits: Bits = 1


class Compute(_Strict):
    """Energy per arithmetic op, pJ.

    ``ac_pj``: one accumulate (a spike adds a weight into a potential). ``mac_pj``: one
    multiply-accumulate (an analog input, i.e. the first layer under direct encoding); ``null``
    when the chip has no MAC datapath, in which case MACs are charged at the ANN baseline's MAC
    energy (the analog layer runs on the baseline accelerator). ``leak_pj``/``compare_pj`` are
    charged per neuron update of a spiking layer, ``reset_pj`` per spike (soft reset).
    """

    ac_pj: NonNeg | None
    mac_pj: NonNeg | None
    leak_pj: NonNeg = 0.0
    compare_pj: NonNeg = 0.0
    reset_pj: NonNeg = 0.0


class Neuron(_Strict):
    """Neuron-update policy and its fixed energy per update."""

    update_policy: Literal["clock_driven", "event_driven"] = "clock_driven"
    update_pj: NonNeg = 0.0  # per update of a neuron that received input (or every update)
    update_inactive_pj: NonNeg | None = None  # clock-driven update of an idle neuron; None = update_pj
    leak: Literal["none", "shift", "mul"] = "none"


class MemoryLevel(_Strict):
    """One storage level. Energy per access is given per word (``read_pj``/``write_pj`` for a
    word of ``width_bits``) or per bit (``energy_per_bit_pj``); a value of b bits costs the word
    energy scaled by b / width_bits (values packed in words, as Timeloop counts scalar
    accesses). ``charged: false`` means the energy is already inside the per-op numbers: the
    accesses are counted and reported but cost nothing."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")]
    kind: Literal["rf", "sram", "dram"]
    width_bits: PosInt | None = None
    read_pj: NonNeg | None = None
    write_pj: NonNeg | None = None
    energy_per_bit_pj: NonNeg | None = None
    capacity_bytes: PosInt | None = None  # informational
    bandwidth_bits_per_cycle: Pos | None = None  # clocked latency: cycles >= bits moved / this
    charged: bool = True

    def read_energy(self, bits: int) -> float:
        """pJ to read one value of ``bits`` bits from this level."""
        if self.energy_per_bit_pj is not None:
            return self.energy_per_bit_pj * bits
        if self.read_pj is None or self.width_bits is None:
            return 0.0
        return self.read_pj * bits / self.width_bits

    def write_energy(self, bits: int) -> float:
        """pJ to write one value of ``bits`` bits to this level."""
        if self.energy_per_bit_pj is not None:
            return self.energy_per_bit_pj * bits
        if self.write_pj is None or self.width_bits is None:
            return 0.0
        return self.write_pj * bits / self.width_bits


def _as_list(value: Any) -> Any:
    """Accept a single placement mapping where a list of placements is expected."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return value


class WeightPlacement(_Strict):
    """Weights live in ``level``; read once per synaptic op, per timestep, or once per inference."""

    level: str
    fetch: Literal["per_synop", "per_timestep", "once"] = "per_synop"
    bits: Bits | None = None  # default numerics.weight_bits


class PotentialPlacement(_Strict):
    """Membrane potentials live in ``level``: read-modify-write per synaptic op (plus one per
    neuron update), or once per neuron update (accumulated in a local register)."""

    level: str
    access: Literal["per_synop", "per_update"] = "per_synop"
    bits: Bits | None = None  # default numerics.potential_bits


class SpikePlacement(_Strict):
    """Spikes (and the analog input values of the first layer) live in ``level``: every input
    event is read once, every output spike written once."""

    level: str
    bits: Bits | None = None  # default numerics.spike_bits (activation_bits for analog input)


class Dataspaces(_Strict):
    """Where each tensor lives; a list = a hierarchy, each placement charged independently."""

    weights: list[WeightPlacement] = Field(default_factory=list)
    potentials: list[PotentialPlacement] = Field(default_factory=list)
    spikes: list[SpikePlacement] = Field(default_factory=list)

    _wrap = field_validator("weights", "potentials", "spikes", mode="before")(_as_list)


class Memory(_Strict):
    """Storage levels and the placement of weights, potentials and spikes."""

    levels: list[MemoryLevel] = Field(default_factory=list)
    dataspaces: Dataspaces = Field(default_factory=Dataspaces)

    def level(self, name: str) -> MemoryLevel:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(name)

    @property
    def level_names(self) -> list[str]:
        return [lv.name for lv in self.levels]

    @model_validator(mode="after")
    def _check(self) -> Memory:
        seen: set[str] = set()
        for i, lv in enumerate(self.levels):
            where = f"memory.levels[{i}]"
            if lv.name in seen:
                raise _Problem(f"{where}.name", f"duplicate level name {lv.name!r}; give every level a unique name")
            seen.add(lv.name)
            per_word = lv.read_pj is not None or lv.write_pj is not None
            if per_word and lv.energy_per_bit_pj is not None:
                raise _Problem(where, "give either read_pj/write_pj with width_bits or energy_per_bit_pj, not both")
            if per_word and (lv.read_pj is None or lv.write_pj is None or lv.width_bits is None):
                raise _Problem(where, "read_pj, write_pj and width_bits go together; set all three")
            if lv.charged and not per_word and lv.energy_per_bit_pj is None:
                raise _Problem(where, f"level {lv.name!r} has no energy; set read_pj/write_pj/width_bits "
                               "or energy_per_bit_pj, or charged: false if its cost is inside the per-op numbers")
        for space in ("weights", "potentials", "spikes"):
            for i, pl in enumerate(getattr(self.dataspaces, space)):
                if pl.level not in seen:
                    raise _Problem(f"memory.dataspaces.{space}[{i}].level",
                                   f"unknown level {pl.level!r}; defined levels: {', '.join(sorted(seen)) or '(none)'}")
        return self


class Routing(_Strict):
    """Spike transport: per spike emitted, ``spike_pj + hops_per_spike * hop_pj``."""

    spike_pj: NonNeg = 0.0
    hop_pj: NonNeg = 0.0
    hops_per_spike: NonNeg = 0.0
    packet_bits: PosInt | None = None  # informational


class Parallelism(_Strict):
    """Compute resources: cores x PEs per core; for mapped modes (layers on their own cores),
    the neurons and synapses one core holds."""

    cores: PosInt = 1
    neurons_per_core: PosInt | None = None
    synapses_per_core: PosInt | None = None  # mapped modes: a layer also needs synapses / this cores
    pes_per_core: PosInt = 1
    synops_per_cycle_per_pe: Pos = 1.0
    neuron_updates_per_cycle_per_core: Pos = 1.0


class Latency(_Strict):
    """How time is counted: a clock (cycles), per-event times (asynchronous chips) or a fixed
    tick (real-time chips), composed by ``mode`` over layers and timesteps."""

    mode: LatencyMode = "timestep_serial"
    clock_hz: Pos | None = None
    tick_s: Pos | None = None
    synop_ns: NonNeg | None = None
    mac_ns: NonNeg | None = None
    neuron_update_ns: NonNeg | None = None
    neuron_update_inactive_ns: NonNeg | None = None
    spike_ns: NonNeg = 0.0
    sync_cycles: NonNeg = 0.0
    sync_ns: NonNeg = 0.0
    pipeline_start_fraction: Annotated[float, Field(gt=0, le=1)] = 0.75
    layer_delay_ticks: bool = False

    @property
    def clocked(self) -> bool:
        return self.clock_hz is not None

    @property
    def event_timed(self) -> bool:
        """Per-event times are given (an asynchronous chip)."""
        return self.synop_ns is not None

    @model_validator(mode="after")
    def _check(self) -> Latency:
        if self.clock_hz is None and self.tick_s is None and self.synop_ns is None:
            raise _Problem("latency", "no time base; set clock_hz (clocked), synop_ns and neuron_update_ns "
                           "(asynchronous), or tick_s (fixed real-time tick)")
        if self.synop_ns is not None and self.neuron_update_ns is None and self.clock_hz is None:
            raise _Problem("latency.neuron_update_ns", "asynchronous timing needs neuron_update_ns too; set it")
        if self.tick_s is not None and self.mode != "tick_parallel":
            raise _Problem("latency.tick_s", f"a fixed tick needs mode: tick_parallel, not {self.mode}; "
                           "remove tick_s or change the mode")
        if self.sync_cycles > 0 and self.clock_hz is None:
            raise _Problem("latency.sync_cycles", "needs clock_hz; use sync_ns on unclocked chips")
        return self


class Static(_Strict):
    """Static (leakage) power per chip, charged over the inference latency."""

    power_mw: NonNeg = 0.0


class Baseline(_Strict):
    """How the non-spiking ANN runs: on this config (inline) or on another (``config:``).

    Unset fields default from the hardware it runs on: ``mac_pj`` from ``compute.mac_pj``,
    ``pes`` from cores x pes_per_core, ``clock_hz`` from ``latency.clock_hz``, the levels of
    weights/inputs/outputs from the first weight/spike placements.
    """

    config: str | None = None
    reason: str | None = None
    mac_pj: NonNeg | None = None
    reuse: ReuseMode | None = None
    weights: str | None = None
    inputs: str | None = None
    outputs: str | None = None
    pj_per_mac: dict[str, NonNeg] | None = None
    pes: PosInt | None = None
    macs_per_cycle_per_pe: Pos | None = None
    utilization: Annotated[float, Field(gt=0, le=1)] | None = None
    clock_hz: Pos | None = None


class HardwareConfig(_Strict):
    """A validated hardware config (see ``docs/hardware-configs.md``)."""

    schema_id: Literal["snnsim-hw/1"] = Field(SCHEMA_ID, alias="schema")
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    extends: str | None = None
    sources: dict[str, str] = Field(default_factory=dict)
    caveats: list[str] = Field(default_factory=list)
    technology: Technology
    aggregate: bool = False
    compute_only: bool = False
    numerics: Numerics
    compute: Compute
    neuron: Neuron = Field(default_factory=Neuron)
    memory: Memory = Field(default_factory=Memory)
    routing: Routing = Field(default_factory=Routing)
    parallelism: Parallelism = Field(default_factory=Parallelism)
    latency: Latency
    static: Static = Field(default_factory=Static)
    baseline: Baseline

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)

    _path: Path | None = PrivateAttr(default=None)
    _ann: AnnBaseline | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> HardwareConfig:
        if self.aggregate:
            for i, lv in enumerate(self.memory.levels):
                if lv.charged:
                    raise _Problem(f"memory.levels[{i}].charged",
                                   f"aggregate: true means the per-op energies already include memory, so level "
                                   f"{lv.name!r} must not be charged; set charged: false or aggregate: false")
            if self.static.power_mw > 0:
                raise _Problem("static.power_mw", "aggregate: true means the per-op energies already include "
                               "static power; set it to 0 or aggregate: false")
        if self.compute.leak_pj > 0 and self.neuron.leak == "none":
            raise _Problem("compute.leak_pj", "is set but neuron.leak is 'none'; set neuron.leak to shift or mul, "
                           "or leak_pj to 0")
        if self.latency.mode in ("tick_parallel", "layer_pipelined") and self.parallelism.neurons_per_core is None:
            raise _Problem("parallelism.neurons_per_core", f"latency mode {self.latency.mode} maps layers onto "
                           "cores and needs neurons_per_core; set it")
        b = self.baseline
        if b.reuse == "ratios" and not b.pj_per_mac and b.config is None:
            raise _Problem("baseline.pj_per_mac", "reuse: ratios needs pj_per_mac (energy per MAC per level)")
        return self

    # ----------------------------------------------------------------- accessors
    @property
    def path(self) -> Path | None:
        """The file this config was loaded from (None if built in Python)."""
        return self._path

    @property
    def label(self) -> str:
        """Name plus a mode marker, for report columns."""
        return f"{self.name} (compute-only)" if self.compute_only else self.name

    @property
    def ann(self) -> AnnBaseline:
        """The resolved ANN baseline (loaded on first use for configs built in Python)."""
        if self._ann is None:
            self._ann = _resolve_baseline(self, [])
        return self._ann

    def as_compute_only(self) -> HardwareConfig:
        """A copy that charges compute ops only (the paper's E = MACs*E_MAC + ACs*E_AC)."""
        new = self.model_copy(update={"compute_only": True})
        new._path = self._path
        new._ann = None
        return new

    def with_numerics(self, **bits: int) -> HardwareConfig:
        """A validated copy with other bit widths for the SNN, e.g. ``with_numerics(weight_bits=4)``
        for a 4-bit quantized model (memory energy scales with the value width). The ANN
        baseline keeps the original widths (a quantized SNN is compared with the same ANN)."""
        data = self.model_dump(by_alias=True)
        data["numerics"].update(bits)
        try:
            new = HardwareConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_format_errors(exc, f"{self.name} (with_numerics)")) from None
        new._path = self._path
        new._ann = self.ann
        return new

    def energy_table(self) -> list[dict[str, Any]]:
        """Every per-action energy of this config as rows (component, action, energy_pj, note):
        an Accelergy-style energy reference table, for auditing a run."""
        c, n, r = self.compute, self.neuron, self.routing
        rows: list[dict[str, Any]] = []

        def add(component: str, action: str, pj: float | None, note: str = "") -> None:
            rows.append({"config": self.name, "component": component, "action": action,
                         "energy_pj": float("nan") if pj is None else float(pj), "note": note})

        add("compute", "ac", c.ac_pj, f"{self.numerics.potential_bits}-bit accumulate")
        add("compute", "mac", c.mac_pj if c.mac_pj is not None else self.ann.mac_pj,
            "" if c.mac_pj is not None else "no MAC datapath: charged at the ANN baseline's MAC")
        add("compute", "leak", c.leak_pj if n.leak != "none" else 0.0, f"per neuron update ({n.leak})")
        add("compute", "compare", c.compare_pj, "per neuron update (threshold)")
        add("compute", "reset", c.reset_pj, "per spike (soft reset)")
        add("neuron", "update", n.update_pj, n.update_policy)
        add("neuron", "update_inactive", n.update_pj if n.update_inactive_pj is None else n.update_inactive_pj,
            "clock-driven update of an idle neuron")
        for lv in self.memory.levels:
            note = "" if lv.charged else "not charged (inside per-op energies)"
            unit = f"per {lv.width_bits}-bit word" if lv.width_bits else "per bit"
            if lv.energy_per_bit_pj is not None:
                add(f"memory:{lv.name}", "access", lv.energy_per_bit_pj, f"per bit; {note}".strip("; "))
            else:
                add(f"memory:{lv.name}", "read", lv.read_pj, f"{unit}; {note}".strip("; "))
                add(f"memory:{lv.name}", "write", lv.write_pj, f"{unit}; {note}".strip("; "))
        add("routing", "spike", r.spike_pj, "per spike emitted")
        add("routing", "hop", r.hop_pj, f"x {r.hops_per_spike} hops per spike")
        add("static", "power_mw", self.static.power_mw, "mW per chip, x latency")
        if self.compute_only:
            for row in rows:
                if row["component"] != "compute" or row["action"] not in ("ac", "mac"):
                    row["note"] = (row["note"] + "; off (compute-only)").strip("; ")
        return rows


@dataclass(frozen=True)
class AnnBaseline:
    """The resolved ANN baseline: the hardware it runs on and how it is costed."""

    hw: HardwareConfig
    mac_pj: float
    reuse: ReuseMode
    weights: str | None
    inputs: str | None
    outputs: str | None
    pj_per_mac: dict[str, float]
    pes: int
    macs_per_cycle_per_pe: float
    utilization: float
    clock_hz: float | None
    compute_only: bool
    reason: str
    source: str

    @property
    def numerics(self) -> Numerics:
        return self.hw.numerics

    @property
    def compare_pj(self) -> float:
        """Energy of one activation (ReLU = a compare) on the baseline hardware."""
        return self.hw.compute.compare_pj

    @property
    def static_mw(self) -> float:
        return self.hw.static.power_mw


# --------------------------------------------------------------------------- loading
def shipped_dir() -> Path:
    """The folder holding the shipped configs.

    The repo's ``hwconfigs/`` next to the package (editable install, checkout), else the copy a
    wheel installs under ``<prefix>/share/snnsim/hwconfigs`` (pyproject ``data-files``).
    """
    import sys

    import snnsim

    pkg = Path(snnsim.__file__).resolve().parent
    for cand in (pkg.parent / "hwconfigs", pkg / "hwconfigs", Path(sys.prefix) / "share" / "snnsim" / "hwconfigs"):
        if cand.is_dir():
            return cand
    return pkg.parent / "hwconfigs"


def shipped_configs() -> list[Path]:
    """Paths of the shipped hardware configs, sorted by name."""
    d = shipped_dir()
    return sorted(d.glob("*.yaml")) if d.is_dir() else []


def resolve_hw_path(spec: str | Path) -> Path:
    """A config path, or the name of a shipped config (``45nm``, ``loihi``, ...)."""
    p = Path(spec)
    if p.is_file():
        return p
    if not p.suffix and len(p.parts) == 1:
        cand = shipped_dir() / f"{p.name}.yaml"
        if cand.is_file():
            return cand
        names = ", ".join(q.stem for q in shipped_configs())
        raise ConfigError(f"hardware config {str(spec)!r} not found", f"give a YAML path or a shipped name ({names})")
    raise ConfigError(f"hardware config file {str(spec)!r} not found", "check the path")


def load_hw(path: str | Path, compute_only: bool = False, *, _stack: tuple[Path, ...] = ()) -> HardwareConfig:
    """Load, merge (``extends:``) and validate a hardware config; resolve its ANN baseline.

    ``path`` may be a file or the name of a shipped config. ``compute_only=True`` charges only
    compute ops (MAC x mac_pj + AC x ac_pj): memory, neuron, routing and static terms are
    counted but cost nothing, for the SNN and for the ANN baseline alike. Any problem raises a
    one-line :class:`ConfigError` naming the file and the field.
    """
    p = resolve_hw_path(path).resolve()
    if p in _stack:
        chain = " -> ".join(q.name for q in (*_stack, p))
        raise ConfigError(f"{_show(_stack[-1])}: baseline.config: cycle of baseline configs ({chain})",
                          "point the last one at an inline baseline")
    raw, chain = _load_raw(p, ())
    if compute_only:
        raw["compute_only"] = True
    cfg = _validate(raw, p, chain)
    cfg._path = p
    cfg._ann = _resolve_baseline(cfg, [*_stack, p])
    return cfg


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> HardwareConfig:
    """Validate an in-memory config mapping (no ``extends``), with one-line errors."""
    if "extends" in data and data["extends"]:
        raise ConfigError(f"{source}: extends: only supported for files", "load it with load_hw(path)")
    cfg = _validate(dict(data), Path(source), ())
    return cfg


def _show(p: Path) -> str:
    """Path as users know it: relative to the working directory when possible."""
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads ``1e9`` as a float (YAML 1.2)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark)
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def _read_yaml(p: Path, referrer: str) -> dict[str, Any]:
    if not p.is_file():
        raise ConfigError(f"{referrer}file {_show(p)!r} not found", "check the path (relative paths are "
                          "resolved from the directory of the file that names them)")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{_show(p)}: cannot read: {exc}", "check the file") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{_show(p)}: invalid YAML{where}: {problem}", "fix the syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{_show(p)}: top level must be a mapping of sections, got {type(data).__name__}",
                          "see docs/hardware-configs.md")
    return data


def _load_raw(p: Path, stack: tuple[Path, ...]) -> tuple[dict[str, Any], tuple[Path, ...]]:
    """Read ``p`` and everything it extends, deep-merged (child wins). Returns the merged
    mapping and the chain of parent files (for error messages)."""
    referrer = f"{_show(stack[-1])}: extends: " if stack else ""
    data = _read_yaml(p, referrer)
    _absolutise_baseline(data, p)
    parent = data.get("extends")
    if parent is None:
        return data, ()
    if not isinstance(parent, str) or not parent.strip():
        raise ConfigError(f"{_show(p)}: extends: must be a file path, got {parent!r}", "write extends: other.yaml")
    pp = (p.parent / parent).resolve()
    if pp == p or pp in stack:
        chain = " -> ".join(q.name for q in (*stack, p, pp))
        raise ConfigError(f"{_show(p)}: extends: cycle ({chain})", "remove the extends that closes the loop")
    if not pp.is_file():
        raise ConfigError(f"{_show(p)}: extends: file {parent!r} not found (looked at {_show(pp)})",
                          "fix the path; it is relative to this file")
    base, chain = _load_raw(pp, (*stack, p))
    return _deep_merge(base, data), (pp, *chain)


def _absolutise_baseline(data: dict[str, Any], p: Path) -> None:
    """Make ``baseline.config`` absolute, so it survives being inherited from another folder."""
    b = data.get("baseline")
    if isinstance(b, dict) and isinstance(b.get("config"), str) and b["config"].strip():
        b["config"] = str((p.parent / b["config"]).resolve())


def _deep_merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child overrides base; nested mappings merge key by key; lists and scalars are replaced."""
    out = dict(base)
    for k, v in child.items():
        if k == "baseline" and isinstance(v, dict) and v.get("config"):
            out[k] = v  # pointing the baseline at another config replaces the inherited section
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _validate(raw: dict[str, Any], p: Path, chain: tuple[Path, ...]) -> HardwareConfig:
    where = _show(p)
    if chain:
        where += f" (extends {', '.join(q.name for q in chain)})"
    try:
        return HardwareConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, where)) from None


# --------------------------------------------------------------------------- error text
def _loc_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _format_errors(exc: ValidationError, where: str) -> str:
    errs = exc.errors(include_url=False)
    # A misspelt key shows up as "unknown field" plus "missing": report the spelling first.
    errs.sort(key=lambda e: e.get("type") != "extra_forbidden")
    first = errs[0]
    text = f"{where}: {_format_one(first)}"
    if len(errs) > 1:
        text += f" (and {len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})"
    return " ".join(text.split())


def _format_one(err: dict[str, Any]) -> str:
    loc = tuple(err.get("loc", ()))
    typ = err.get("type", "")
    ctx = err.get("ctx") or {}
    got = err.get("input")
    path = _loc_str(loc)
    if typ == "value_error" and isinstance(ctx.get("error"), _Problem):
        prob: _Problem = ctx["error"]
        return f"{prob.where}: {prob.what}"
    if typ == "extra_forbidden":
        allowed = _allowed_fields(loc[:-1])
        hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        return f"{path}: unknown field; remove it or fix the spelling{hint}"
    if typ == "missing":
        what = "section" if _is_section(loc) else "field"
        return f"{path}: required {what} is missing; add it (see docs/hardware-configs.md)"
    if typ in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[typ]
        bound = next(iter(ctx.values())) if ctx else "?"
        bound = f"{bound:g}" if isinstance(bound, (int, float)) else bound
        return f"{path}: must be {op} {bound}, got {_short(got)}; fix the value"
    if typ == "finite_number":
        return f"{path}: must be a finite number, got {_short(got)}; give a real value"
    if typ == "literal_error":
        return f"{path}: must be one of {ctx.get('expected', '?')}, got {_short(got)}"
    if typ in ("float_parsing", "float_type"):
        return f"{path}: must be a number, got {_short(got)}"
    if typ in ("int_parsing", "int_type", "int_from_float"):
        return f"{path}: must be a whole number, got {_short(got)}"
    if typ in ("bool_parsing", "bool_type"):
        return f"{path}: must be true or false, got {_short(got)}"
    if typ in ("model_type", "model_attributes_type", "dict_type"):
        return f"{path}: must be a mapping of fields, got {_short(got)}"
    if typ == "list_type":
        return f"{path}: must be a list, got {_short(got)}"
    if typ in ("string_type",):
        return f"{path}: must be text, got {_short(got)}"
    if typ == "string_pattern_mismatch":
        return f"{path}: {_short(got)} is not a valid name (letters, digits, _ and -, starting with a letter)"
    msg = str(err.get("msg", "invalid value"))
    return f"{path}: {msg}, got {_short(got)}"


def _short(value: Any) -> str:
    text = repr(value)
    if isinstance(value, float) and math.isnan(value):
        text = "nan"
    if isinstance(value, dict):
        text = "a mapping"
    return text if len(text) <= 60 else text[:57] + "..."


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation (through Optional / list / dict / Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is Annotated:
        return _submodel(get_args(annotation)[0])
    if get_origin(annotation) in (list, Union) or isinstance(annotation, types.UnionType):
        for arg in get_args(annotation):
            found = _submodel(arg)
            if found is not None:
                return found
    return None


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = HardwareConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = _field_by_name(model, str(part))
        if field is None:
            return None
        model = _submodel(field.annotation)
    return model


def _field_by_name(model: type[BaseModel], name: str) -> Any:
    for fname, f in model.model_fields.items():
        if fname == name or f.alias == name:
            return f
    return None


def _allowed_fields(loc: tuple[Any, ...]) -> list[str]:
    model = _model_at(loc)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _is_section(loc: tuple[Any, ...]) -> bool:
    if not loc:
        return False
    parent = _model_at(loc[:-1])
    if parent is None:
        return False
    f = _field_by_name(parent, str(loc[-1]))
    return f is not None and _submodel(f.annotation) is not None


# --------------------------------------------------------------------------- baseline
_BASELINE_OVERRIDES = ("mac_pj", "reuse", "weights", "inputs", "outputs", "pj_per_mac", "pes",
                       "macs_per_cycle_per_pe", "utilization", "clock_hz")


def _resolve_baseline(cfg: HardwareConfig, stack: list[Path]) -> AnnBaseline:
    """Follow ``baseline.config`` (cycles refused) and fill unset fields from the hardware."""
    spec = cfg.baseline
    where = _show(cfg.path) if cfg.path is not None else cfg.name
    if spec.config:
        target = Path(spec.config)
        if cfg.path is not None and not target.is_absolute():
            target = cfg.path.parent / target
        target = target.resolve()
        if not target.is_file():
            raise ConfigError(f"{where}: baseline.config: file {spec.config!r} not found",
                              "fix the path; it is relative to the file that names it")
        if target in stack or (cfg.path is not None and target == cfg.path.resolve()):
            chain = " -> ".join(q.name for q in (*stack, target))
            raise ConfigError(f"{where}: baseline.config: cycle of baseline configs ({chain})",
                              "end the chain at a config with an inline baseline")
        other = load_hw(target, compute_only=cfg.compute_only, _stack=tuple(stack))
        base = other.ann
        overrides = {k: getattr(spec, k) for k in _BASELINE_OVERRIDES if k in spec.model_fields_set
                     and getattr(spec, k) is not None}
        ann = AnnBaseline(
            hw=base.hw,
            mac_pj=overrides.get("mac_pj", base.mac_pj),
            reuse=overrides.get("reuse", base.reuse),
            weights=overrides.get("weights", base.weights),
            inputs=overrides.get("inputs", base.inputs),
            outputs=overrides.get("outputs", base.outputs),
            pj_per_mac=dict(overrides.get("pj_per_mac", base.pj_per_mac)),
            pes=overrides.get("pes", base.pes),
            macs_per_cycle_per_pe=overrides.get("macs_per_cycle_per_pe", base.macs_per_cycle_per_pe),
            utilization=overrides.get("utilization", base.utilization),
            clock_hz=overrides.get("clock_hz", base.clock_hz),
            compute_only=cfg.compute_only,
            reason=spec.reason or base.reason,
            source=base.source,
        )
    else:
        hw = cfg
        ds = hw.memory.dataspaces
        mac = spec.mac_pj if spec.mac_pj is not None else hw.compute.mac_pj
        if mac is None:
            raise ConfigError(f"{where}: baseline: the ANN needs a MAC energy but compute.mac_pj is null",
                              "set baseline.mac_pj, or baseline.config to a config with a MAC (e.g. eyeriss-like.yaml)")
        ann = AnnBaseline(
            hw=hw,
            mac_pj=mac,
            reuse=spec.reuse or "no_reuse",
            weights=spec.weights or (ds.weights[0].level if ds.weights else None),
            inputs=spec.inputs or (ds.spikes[0].level if ds.spikes else None),
            outputs=spec.outputs or (ds.spikes[0].level if ds.spikes else None),
            pj_per_mac=dict(spec.pj_per_mac or {}),
            pes=spec.pes or hw.parallelism.cores * hw.parallelism.pes_per_core,
            macs_per_cycle_per_pe=spec.macs_per_cycle_per_pe or hw.parallelism.synops_per_cycle_per_pe,
            utilization=spec.utilization or 1.0,
            clock_hz=spec.clock_hz or hw.latency.clock_hz,
            compute_only=cfg.compute_only,
            reason=spec.reason or "",
            source=hw.name,
        )
    levels = ann.hw.memory.level_names
    for key in ("weights", "inputs", "outputs"):
        lv = getattr(ann, key)
        if lv is not None and lv not in levels:
            raise ConfigError(f"{where}: baseline.{key}: unknown level {lv!r} on {ann.hw.name}",
                              f"use one of: {', '.join(levels) or '(no levels defined)'}")
    if ann.reuse == "ratios":
        if not ann.pj_per_mac:
            raise ConfigError(f"{where}: baseline.pj_per_mac: reuse: ratios needs the energy per MAC of each level",
                              "add pj_per_mac: {level: pJ, ...} or choose reuse: no_reuse | ideal_reuse")
        for lv in ann.pj_per_mac:
            if lv not in levels:
                raise ConfigError(f"{where}: baseline.pj_per_mac.{lv}: unknown level on {ann.hw.name}",
                                  f"use one of: {', '.join(levels) or '(no levels defined)'}")
    return ann


__all__ = [
    "AnnBaseline",
    "Baseline",
    "Compute",
    "Dataspaces",
    "HardwareConfig",
    "Latency",
    "Memory",
    "MemoryLevel",
    "Neuron",
    "Numerics",
    "Parallelism",
    "PotentialPlacement",
    "Routing",
    "SCHEMA_ID",
    "SpikePlacement",
    "Static",
    "Technology",
    "WeightPlacement",
    "config_from_dict",
    "load_hw",
    "resolve_hw_path",
    "shipped_configs",
    "shipped_dir",
]
