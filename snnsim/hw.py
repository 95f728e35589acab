"""Hardware configs: a strict YAML schema, ``extends:`` inheritance, and the ANN baseline.

A hardware config says what every counted event costs on one chip: the compute ops (MAC for
analog inputs, AC for spikes), the neuron update, each memory level and which tensor lives
where (with its fetch policy), spike routing, static power, the parallelism and timing used
for latency, and the hardware the non-spiking ANN baseline runs on. :mod:`snnsim.cost` turns
a :class:`HardwareConfig` and the simulator's counts into energy and latency;
``docs/hardware-configs.md`` is the user-facing description of the format.

Everything a user can get wrong is refused at load time with a one-line
:class:`~snnsim.errors.ConfigError` naming the file and the field path (unknown fields, wrong
types, negative energies, NaN, numbers outside physical bounds, unknown memory levels,
``extends`` cycles, memory charged on an aggregate chip, ...). YAML is read with the YAML 1.2
core schema (``yes``, ``1:30`` and ``0_9`` are text, ``040`` is forty) and numbers are strict:
a boolean or a quoted string is never a number. Numbers carry their units in their names
(``_pj``, ``_ns``, ``_hz``, ``_bits``, ``_mw``, ``_s``).

Configs are found by :func:`resolve_hw_path`, the one resolver behind ``--hw``, ``extends:``
and ``baseline.config``: an existing file wins, else a shipped config by name.
"""

from __future__ import annotations

import difflib
import math
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from snnsim.errors import ConfigError
from snnsim.limits import MAX_EXTENDS_DEPTH
from snnsim.yaml12 import Note, StrictLoader, YamlRefused, check_graph, notes_of

SCHEMA_ID = "snnsim-hw/1"

# --------------------------------------------------------------------------- bounds
# Physically generous bounds on every number of a config (docs/hardware-configs.md,
# "Bounds"). Each keeps every cost finite for any realistic count (up to ~1e15 ops per
# inference, 10,000 timesteps): the largest product the cost model forms stays below ~1e60,
# far from float64's 1.8e308, and the smallest non-zero energy or time keeps every ratio finite.
#: Energy of one op, one access, one bit or one MAC-share, pJ (a 64-bit DRAM access is ~2,000).
MAX_ENERGY_PJ = 1e6
#: Smallest non-zero energy, pJ: below Landauer's kT ln 2 = 2.9e-9 pJ per bit at 300 K.
MIN_ENERGY_PJ = 1e-9
#: Static power of one chip, mW (1 kW).
MAX_POWER_MW = 1e6
#: Clock frequencies, Hz (1 kHz .. 1 THz).
MIN_CLOCK_HZ, MAX_CLOCK_HZ = 1e3, 1e12
#: Per-event and barrier times, ns (at most 1 s; a non-zero time is at least 1 fs).
MAX_TIME_NS, MIN_TIME_NS = 1e9, 1e-6
#: Fixed real-time tick, s (1 ns .. 1000 s).
MIN_TICK_S, MAX_TICK_S = 1e-9, 1e3
#: Barrier cycles per timestep.
MAX_SYNC_CYCLES = 1e9
#: Throughputs per cycle (ops per PE, neuron updates per core, MACs per PE).
MIN_RATE, MAX_RATE = 1e-6, 1e6
#: Cores per chip and PEs per core (TrueNorth has 4,096 cores, Eyeriss 168 PEs).
MAX_CORES = 1_000_000
#: Neurons and synapses one core holds.
MAX_NEURONS_PER_CORE = 1_000_000_000
MAX_SYNAPSES_PER_CORE = 1_000_000_000_000
#: PEs of the ANN baseline.
MAX_BASELINE_PES = 1_000_000_000
#: Memory word, packet width, bits; level bandwidth, bits per cycle; capacity, bytes (1 EiB).
MAX_WIDTH_BITS = 65_536
MIN_BANDWIDTH, MAX_BANDWIDTH = 1e-3, 1e9
MAX_CAPACITY_BYTES = 2**60
#: Network hops per spike.
MAX_HOPS = 1e6
#: Smallest share of busy baseline PEs.
MIN_UTILIZATION = 1e-6
#: Process node (nm) and supply voltage (V): informational, bounded to stay sane.
MAX_NODE_NM, MAX_VOLTAGE_V = 1e5, 1e3
#: Size of one config file (the shipped ones are < 10 KB).
MAX_CONFIG_BYTES = 1_048_576
#: Characters of a config name (shown in tables and file names).
MAX_NAME_CHARS = 100


def _zero_or_at_least(floor: float, unit: str) -> AfterValidator:
    """A validator: 0, or at least ``floor`` (a tiny non-zero value would make a ratio infinite)."""

    def check(value: float) -> float:
        if 0 < value < floor:
            raise PydanticCustomError(
                "zero_or_at_least", "must be 0 or >= {floor} {unit}, got {got}; use 0 or a real value",
                {"floor": f"{floor:g}", "unit": unit, "got": f"{value:g}"})
        return value

    return AfterValidator(check)


def _one_line(value: str) -> str:
    if not value.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise PydanticCustomError("one_line", "must be one line of text without control characters; "
                                  "write a short name such as my-chip", {})
    return value


Energy = Annotated[float, Field(ge=0, le=MAX_ENERGY_PJ), _zero_or_at_least(MIN_ENERGY_PJ, "pJ")]
TimeNs = Annotated[float, Field(ge=0, le=MAX_TIME_NS), _zero_or_at_least(MIN_TIME_NS, "ns")]
PowerMw = Annotated[float, Field(ge=0, le=MAX_POWER_MW)]
ClockHz = Annotated[float, Field(ge=MIN_CLOCK_HZ, le=MAX_CLOCK_HZ)]
TickS = Annotated[float, Field(ge=MIN_TICK_S, le=MAX_TICK_S)]
Rate = Annotated[float, Field(ge=MIN_RATE, le=MAX_RATE)]
Bits = Annotated[int, Field(ge=1, le=64)]
WidthBits = Annotated[int, Field(ge=1, le=MAX_WIDTH_BITS)]
Cores = Annotated[int, Field(ge=1, le=MAX_CORES)]
Fraction = Annotated[float, Field(gt=0, le=1)]
Name = Annotated[str, Field(max_length=MAX_NAME_CHARS), AfterValidator(_one_line)]

LatencyMode = Literal["timestep_serial", "layer_pipelined", "tick_parallel"]
ReuseMode = Literal["no_reuse", "ideal_reuse", "ratios"]


class _Problem(ValueError):
    """A cross-field problem found by a validator, with the field path it concerns."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(what)
        self.where = where
        self.what = what


class _Strict(BaseModel):
    """Base of every section: unknown keys, NaN/inf and type coercion are errors.

    ``strict``: a bool or a string is never a number (an int is still a float), a number is
    never a bool or a string.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=False, strict=True)


# --------------------------------------------------------------------------- sections
class Technology(_Strict):
    """Process node and supply voltage the numbers were published at (informational)."""

    node_nm: Annotated[float, Field(gt=0, le=MAX_NODE_NM)]
    voltage_v: Annotated[float, Field(gt=0, le=MAX_VOLTAGE_V)] | None = None


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

    ac_pj: Energy | None
    mac_pj: Energy | None
    leak_pj: Energy = 0.0
    compare_pj: Energy = 0.0
    reset_pj: Energy = 0.0


class Neuron(_Strict):
    """Neuron-update policy and its fixed energy per update."""

    update_policy: Literal["clock_driven", "event_driven"] = "clock_driven"
    update_pj: Energy = 0.0  # per update of a neuron that received input (or every update)
    update_inactive_pj: Energy | None = None  # clock-driven update of an idle neuron; None = update_pj
    leak: Literal["none", "shift", "mul"] = "none"


class MemoryLevel(_Strict):
    """One storage level. Energy per access is given per word (``read_pj``/``write_pj`` for a
    word of ``width_bits``) or per bit (``energy_per_bit_pj``); a value of b bits costs the word
    energy scaled by b / width_bits (values packed in words, as Timeloop counts scalar
    accesses). ``charged: false`` means the energy is already inside the per-op numbers: the
    accesses are counted and reported but cost nothing."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")]
    kind: Literal["rf", "sram", "dram"]
    width_bits: WidthBits | None = None
    read_pj: Energy | None = None
    write_pj: Energy | None = None
    energy_per_bit_pj: Energy | None = None
    capacity_bytes: Annotated[int, Field(ge=1, le=MAX_CAPACITY_BYTES)] | None = None  # informational
    # clocked latency: cycles >= bits moved / this
    bandwidth_bits_per_cycle: Annotated[float, Field(ge=MIN_BANDWIDTH, le=MAX_BANDWIDTH)] | None = None
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

    spike_pj: Energy = 0.0
    hop_pj: Energy = 0.0
    hops_per_spike: Annotated[float, Field(ge=0, le=MAX_HOPS)] = 0.0
    packet_bits: WidthBits | None = None  # informational


class Parallelism(_Strict):
    """Compute resources: cores x PEs per core; for mapped modes (layers on their own cores),
    the neurons and synapses one core holds."""

    cores: Cores = 1
    neurons_per_core: Annotated[int, Field(ge=1, le=MAX_NEURONS_PER_CORE)] | None = None
    # mapped modes: a layer also needs synapses / this cores
    synapses_per_core: Annotated[int, Field(ge=1, le=MAX_SYNAPSES_PER_CORE)] | None = None
    pes_per_core: Cores = 1
    synops_per_cycle_per_pe: Rate = 1.0
    neuron_updates_per_cycle_per_core: Rate = 1.0


class Latency(_Strict):
    """How time is counted: a clock (cycles), per-event times (asynchronous chips) or a fixed
    tick (real-time chips), composed by ``mode`` over layers and timesteps."""

    mode: LatencyMode = "timestep_serial"
    clock_hz: ClockHz | None = None
    tick_s: TickS | None = None
    synop_ns: TimeNs | None = None
    mac_ns: TimeNs | None = None
    neuron_update_ns: TimeNs | None = None
    neuron_update_inactive_ns: TimeNs | None = None
    spike_ns: TimeNs = 0.0
    sync_cycles: Annotated[float, Field(ge=0, le=MAX_SYNC_CYCLES)] = 0.0
    sync_ns: TimeNs = 0.0
    pipeline_start_fraction: Fraction = 0.75
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

    power_mw: PowerMw = 0.0


class Baseline(_Strict):
    """How the non-spiking ANN runs: on this config (inline) or on another (``config:``).

    Unset fields default from the hardware it runs on: ``mac_pj`` from ``compute.mac_pj``,
    ``pes`` from cores x pes_per_core, ``clock_hz`` from ``latency.clock_hz``, the levels of
    weights/inputs/outputs from the first weight/spike placements.
    """

    config: str | None = None
    reason: str | None = None
    mac_pj: Energy | None = None
    reuse: ReuseMode | None = None
    weights: str | None = None
    inputs: str | None = None
    outputs: str | None = None
    pj_per_mac: dict[str, Energy] | None = None
    pes: Annotated[int, Field(ge=1, le=MAX_BASELINE_PES)] | None = None
    macs_per_cycle_per_pe: Rate | None = None
    utilization: Annotated[float, Field(ge=MIN_UTILIZATION, le=1)] | None = None
    clock_hz: ClockHz | None = None


class HardwareConfig(_Strict):
    """A validated hardware config (see ``docs/hardware-configs.md``)."""

    schema_id: Literal["snnsim-hw/1"] = Field(SCHEMA_ID, alias="schema")
    name: Name
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

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True, strict=True)

    _path: Path | None = PrivateAttr(default=None)
    _ann: AnnBaseline | None = PrivateAttr(default=None)
    _chain: tuple[Path, ...] = PrivateAttr(default=())
    _notes: dict[str, Any] | None = PrivateAttr(default=None)

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

    @property
    def extends_chain(self) -> tuple[Path, ...]:
        """The files this config was merged from, itself first, then what it extends, and so on."""
        return self._chain

    def as_compute_only(self) -> HardwareConfig:
        """A copy that charges compute ops only (the paper's E = MACs*E_MAC + ACs*E_AC)."""
        new = self.model_copy(update={"compute_only": True})
        self._carry_to(new)
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
        self._carry_to(new)
        new._ann = self.ann
        return new

    def _carry_to(self, new: HardwareConfig) -> None:
        """Copy where the config came from (file, extends chain, source comments) onto ``new``."""
        new._path = self._path
        new._chain = self._chain
        new._notes = self._notes

    # ----------------------------------------------------------------- sources
    def source_of(self, field: str) -> str:
        """Where the value of ``field`` (e.g. ``compute.ac_pj``, ``memory.levels[0].read_pj``)
        comes from: the comment beside it in the YAML (with the file, if inherited), or an
        explicit "no recorded source" / "not set" when there is none."""
        if self._notes is None:
            return "no recorded source (config built in Python)"
        node: Any = self._notes
        for part in _field_parts(field):
            in_list = isinstance(part, int) and isinstance(node, list) and part < len(node)
            if in_list or (isinstance(part, str) and isinstance(node, dict) and part in node):
                node = node[part]
            else:
                return "not set in the config (schema default)"
        if not isinstance(node, Note):
            return "no recorded source"
        where = "" if node.file == self._path else f" (in {node.file.name})"
        if node.text:
            return node.text + where
        return "no recorded source (no comment beside the value)" + where

    def cited_sources(self, text: str) -> list[str]:
        """Keys of ``sources:`` that ``text`` (a source comment) cites."""
        return [k for k in self.sources if re.search(rf"(?<![\w-]){re.escape(k)}(?![\w-])", text)]

    def energy_table(self) -> list[dict[str, Any]]:
        """Every per-action energy of this config as rows (component, action, energy_pj, note,
        field, source): an Accelergy-style energy reference table for auditing a run, each
        number with the config field it comes from and that field's recorded source."""
        c, n, r = self.compute, self.neuron, self.routing
        rows: list[dict[str, Any]] = []

        def add(component: str, action: str, pj: float | None, note: str, field: str,
                source: str | None = None) -> None:
            rows.append({"config": self.name, "component": component, "action": action,
                         "energy_pj": float("nan") if pj is None else float(pj), "note": note,
                         "field": field, "source": self.source_of(field) if source is None else source})

        add("compute", "ac", c.ac_pj, f"{self.numerics.potential_bits}-bit accumulate", "compute.ac_pj")
        if c.mac_pj is not None:
            add("compute", "mac", c.mac_pj, "", "compute.mac_pj")
        else:
            ann = self.ann
            add("compute", "mac", ann.mac_pj, "no MAC datapath: charged at the ANN baseline's MAC",
                f"baseline MAC ({ann.source})", ann.mac_source or "no recorded source")
        if n.leak != "none":
            add("compute", "leak", c.leak_pj, f"per neuron update ({n.leak})", "compute.leak_pj")
        else:
            add("compute", "leak", 0.0, "per neuron update (none)", "neuron.leak")
        add("compute", "compare", c.compare_pj, "per neuron update (threshold)", "compute.compare_pj")
        add("compute", "reset", c.reset_pj, "per spike (soft reset)", "compute.reset_pj")
        add("neuron", "update", n.update_pj, n.update_policy, "neuron.update_pj")
        if n.update_inactive_pj is None:
            add("neuron", "update_inactive", n.update_pj, "clock-driven update of an idle neuron (= update_pj)",
                "neuron.update_pj")
        else:
            add("neuron", "update_inactive", n.update_inactive_pj, "clock-driven update of an idle neuron",
                "neuron.update_inactive_pj")
        for i, lv in enumerate(self.memory.levels):
            note = "" if lv.charged else "not charged (inside per-op energies)"
            unit = f"per {lv.width_bits}-bit word" if lv.width_bits else "per bit"
            where = f"memory.levels[{i}]"
            if lv.energy_per_bit_pj is not None:
                add(f"memory:{lv.name}", "access", lv.energy_per_bit_pj, f"per bit; {note}".strip("; "),
                    f"{where}.energy_per_bit_pj")
            else:
                add(f"memory:{lv.name}", "read", lv.read_pj, f"{unit}; {note}".strip("; "), f"{where}.read_pj")
                add(f"memory:{lv.name}", "write", lv.write_pj, f"{unit}; {note}".strip("; "), f"{where}.write_pj")
        add("routing", "spike", r.spike_pj, "per spike emitted", "routing.spike_pj")
        add("routing", "hop", r.hop_pj, f"x {r.hops_per_spike} hops per spike", "routing.hop_pj")
        add("static", "power_mw", self.static.power_mw, "mW per chip, x latency", "static.power_mw")
        if self.compute_only:
            for row in rows:
                if row["component"] != "compute" or row["action"] not in ("ac", "mac"):
                    row["note"] = (row["note"] + "; off (compute-only)").strip("; ")
        return rows

    def timing_table(self) -> list[dict[str, Any]]:
        """Every latency, parallelism and static-power number that is set, as rows (field, value,
        unit, source), for auditing how latency is counted."""
        rows: list[dict[str, Any]] = []
        for section in ("latency", "parallelism", "static"):
            model = getattr(self, section)
            for name in type(model).model_fields:
                value = getattr(model, name)
                if value is None:
                    continue
                field = f"{section}.{name}"
                rows.append({"field": field, "value": value, "unit": _unit_of(name),
                             "source": self.source_of(field)})
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
    mac_source: str = ""  # where mac_pj comes from (a source comment), for energy tables

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


# --------------------------------------------------------------------------- resolving
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
    return sorted(d.glob("*.yaml"), key=lambda q: q.stem) if d.is_dir() else []


def shipped_names() -> list[str]:
    """Names of the shipped configs (what ``--hw NAME`` and ``extends: NAME`` accept)."""
    return [p.stem for p in shipped_configs()]


_YAML_SUFFIXES = (".yaml", ".yml")


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long, ...
        return False


def _is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except (OSError, ValueError):
        return False


def _shipped_by_name(p: Path) -> Path | None:
    """The shipped config ``p`` names: a bare name (``45nm``), a file name (``45nm.yaml``,
    ``45nm.yml``), or a relative path ending in a shipped file name (``hwconfigs/45nm.yaml``)."""
    name = p.name
    suffix = Path(name).suffix.lower()
    stem = name[: -len(suffix)] if suffix in _YAML_SUFFIXES else name
    if len(p.parts) > 1 and (p.is_absolute() or suffix not in _YAML_SUFFIXES):
        return None  # an absolute path, or a folder/name without .yaml: a path, not a name
    cand = shipped_dir() / f"{stem}.yaml"
    return cand if stem and stem in shipped_names() and _is_file(cand) else None


def resolve_hw_path(spec: str | Path, relative_to: str | Path | None = None, *, referrer: str = "") -> Path:
    """The one resolver of hardware configs, for ``--hw``, ``extends:`` and ``baseline.config``.

    An existing file wins (``relative_to`` is the folder a relative path starts from: the
    working directory for ``--hw``, the referring file's folder for ``extends``/``baseline.config``);
    otherwise a shipped config by name, with or without ``.yaml``/``.yml``, or a relative path
    whose last part is a shipped file name; otherwise a one-line :class:`ConfigError` listing
    the shipped names (with a "did you mean" when one is close). ``referrer`` prefixes the
    error (e.g. ``"a.yaml: extends: "``). Returns an absolute path.
    """
    prefix = referrer or "hardware config "
    text = str(spec)
    shown = _short(text)
    if not text.strip():
        raise ConfigError(f"{prefix}is empty", "give a YAML path or a shipped name (" + ", ".join(shipped_names()) + ")")
    p = Path(text).expanduser() if text.startswith("~") else Path(text)
    base = Path(relative_to) if relative_to is not None else Path.cwd()
    cand = p if p.is_absolute() else base / p
    if _is_file(cand):
        return _absolute(cand)
    shipped = _shipped_by_name(p)
    if shipped is not None:
        return _absolute(shipped)
    names = shipped_names()
    if _is_dir(cand):
        raise ConfigError(f"{prefix}{shown} is a folder, not a config file",
                          f"give a YAML file or a shipped name ({', '.join(names)})")
    stem = p.name[: -len(p.suffix)] if p.suffix.lower() in _YAML_SUFFIXES else p.name
    close = difflib.get_close_matches(stem, names, n=1, cutoff=0.6) or \
        difflib.get_close_matches(stem.lower(), [n.lower() for n in names], n=1, cutoff=0.6)
    looked = "" if p.is_absolute() else \
        (" relative to this file" if relative_to is not None else " relative to the working directory")
    if len(p.parts) > 1:  # a path: it names a file, not a shipped config
        hint = f"for the shipped config write {close[0]}; " if close and close[0] == stem else ""
        problem = f"{prefix}file {shown} not found (no such file at {_short(_show(cand))}{looked})"
    else:
        hint = f"did you mean {close[0]}? " if close else ""
        problem = (f"{prefix}file {shown} not found (no such file{looked}, and no shipped config is named "
                   f"{_short(stem)})")
    raise ConfigError(problem, f"{hint}give a YAML path or a shipped name ({', '.join(names)})")


def _absolute(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return p.absolute()


# --------------------------------------------------------------------------- loading
def load_hw(path: str | Path, compute_only: bool = False, *, _stack: tuple[Path, ...] = ()) -> HardwareConfig:
    """Load, merge (``extends:``) and validate a hardware config; resolve its ANN baseline.

    ``path`` may be a file or the name of a shipped config (:func:`resolve_hw_path`).
    ``compute_only=True`` charges only compute ops (MAC x mac_pj + AC x ac_pj): memory, neuron,
    routing and static terms are counted but cost nothing, for the SNN and for the ANN
    baseline alike. Any problem raises a one-line :class:`ConfigError` naming the file and the
    field.
    """
    p = resolve_hw_path(path)
    if p in _stack:
        chain = " -> ".join(q.name for q in (*_stack, p))
        raise ConfigError(f"{_show(_stack[-1])}: baseline.config: cycle of baseline configs ({chain})",
                          "point the last one at an inline baseline")
    if len(_stack) > MAX_EXTENDS_DEPTH:
        raise ConfigError(f"{_show(_stack[-1])}: baseline.config: chain of more than {MAX_EXTENDS_DEPTH} "
                          f"baseline configs ({_stack[0].name} -> ... -> {p.name})",
                          "end the chain sooner at a config with an inline baseline")
    raw, chain, notes = _load_raw(p, ())
    if compute_only:
        raw["compute_only"] = True
    cfg = _validate(raw, p, chain)
    cfg._path = p
    cfg._chain = (p, *chain)
    cfg._notes = notes
    cfg._ann = _resolve_baseline(cfg, [*_stack, p])
    return cfg


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> HardwareConfig:
    """Validate an in-memory config mapping (no ``extends``), with one-line errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config must be a mapping of sections, got {_kind(data)}",
                          "see docs/hardware-configs.md")
    if "extends" in data and data["extends"]:
        raise ConfigError(f"{source}: extends: only supported for files", "load it with load_hw(path)")
    cfg = _validate(dict(data), Path(source), ())
    return cfg


def _show(p: Path) -> str:
    """Path as users know it: relative to the working directory when possible."""
    try:
        return str(p.relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(p)


def _kind(value: Any) -> str:
    """A value's YAML kind, for error messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _read_yaml(p: Path, referrer: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read one config file with the YAML 1.2 loader: its mapping, and its source-comment tree."""
    if not _is_file(p):
        raise ConfigError(f"{referrer}file {_show(p)!r} not found", "check the path (relative paths are "
                          "resolved from the directory of the file that names them)")
    where = _show(p)
    try:
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{where}: {size:,} bytes is too large for a hardware config",
                              f"a config is a few KB; the limit is {MAX_CONFIG_BYTES:,} bytes")
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
                          "save the file as UTF-8 YAML") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}", "check the file") from None
    loader: StrictLoader | None = None
    try:
        loader = StrictLoader(text)
        node = loader.get_single_node()
        if node is not None:
            check_graph(node)
            data = loader.construct_document(node)
    except YamlRefused as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: YAML{at}: {exc.problem}", exc.fix) from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(f"{where}: invalid YAML: character #x{exc.character:04x} at offset {exc.position} is not "
                          "allowed (binary data?)", "a config is plain UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        problem = f"{context}, {problem}" if isinstance(context, str) and context else problem
        raise ConfigError(f"{where}: invalid YAML{at}: {problem}", "fix the syntax") from None
    except (RecursionError, MemoryError, ValueError, TypeError, OverflowError):  # backstop; all bounded above
        raise ConfigError(f"{where}: YAML too large or too deeply nested to read",
                          "write a plain config (see docs/hardware-configs.md)") from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise ConfigError(f"{where}: the file is empty (or holds only comments)",
                          "write a hardware config (see docs/hardware-configs.md)")
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: top level must be a mapping of sections, got {_kind(data)}",
                          "see docs/hardware-configs.md")
    notes = notes_of(node, text.splitlines(), p)
    return data, notes if isinstance(notes, dict) else {}


def _load_raw(p: Path, stack: tuple[Path, ...]) -> tuple[dict[str, Any], tuple[Path, ...], dict[str, Any]]:
    """Read ``p`` and everything it extends, deep-merged (child wins). Returns the merged
    mapping, the chain of parent files (for error messages) and the merged source comments."""
    referrer = f"{_show(stack[-1])}: extends: " if stack else ""
    data, notes = _read_yaml(p, referrer)
    _absolutise_baseline(data, p)
    parent = data.get("extends")
    if parent is None:
        return data, (), notes
    if not isinstance(parent, str) or not parent.strip():
        raise ConfigError(f"{_show(p)}: extends: must be a file path or a shipped config name, got {_short(parent)}",
                          "write e.g. extends: 45nm")
    pp = resolve_hw_path(parent, p.parent, referrer=f"{_show(p)}: extends: ")
    if pp == p or pp in stack:
        chain = " -> ".join(q.name for q in (*stack, p, pp))
        raise ConfigError(f"{_show(p)}: extends: cycle ({chain})", "remove the extends that closes the loop")
    if len(stack) + 1 > MAX_EXTENDS_DEPTH:
        raise ConfigError(f"{_show(p)}: extends: chain longer than {MAX_EXTENDS_DEPTH} files "
                          f"({(stack or (p,))[0].name} -> ... -> {p.name} -> {pp.name})",
                          "merge some of the files so the chain is shorter")
    base, chain, base_notes = _load_raw(pp, (*stack, p))
    return _deep_merge(base, data), (pp, *chain), _deep_merge(base_notes, notes, data)


def _absolutise_baseline(data: dict[str, Any], p: Path) -> None:
    """Resolve ``baseline.config`` against the file that names it (a path there, else a shipped
    name), so it survives being inherited by a config in another folder."""
    b = data.get("baseline")
    if isinstance(b, dict) and isinstance(b.get("config"), str) and b["config"].strip():
        b["config"] = str(resolve_hw_path(b["config"], p.parent, referrer=f"{_show(p)}: baseline.config: "))


def _deep_merge(base: dict[str, Any], child: dict[str, Any], shape: dict[str, Any] | None = None) -> dict[str, Any]:
    """Child overrides base; nested mappings merge key by key; lists and scalars are replaced.

    ``shape`` is the child's data when merging the source-comment trees (which mirror it)."""
    shape = child if shape is None else shape
    out = dict(base)
    for k, v in child.items():
        d = shape.get(k) if isinstance(shape, dict) else None
        if k == "baseline" and isinstance(d, dict) and d.get("config"):
            out[k] = v  # pointing the baseline at another config replaces the inherited section
        elif isinstance(v, dict) and isinstance(out.get(k), dict) and isinstance(d, dict):
            out[k] = _deep_merge(out[k], v, d)
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


def _field_parts(field: str) -> list[str | int]:
    """``memory.levels[0].read_pj`` -> ['memory', 'levels', 0, 'read_pj']."""
    return [int(tok[1:-1]) if tok.startswith("[") else tok for tok in re.findall(r"\[\d+\]|[^.\[\]]+", field)]


_UNITS = (("_pj", "pJ"), ("_ns", "ns"), ("_hz", "Hz"), ("_mw", "mW"), ("_s", "s"), ("_bits", "bits"),
          ("_bytes", "bytes"))


def _unit_of(name: str) -> str:
    return next((u for suffix, u in _UNITS if name.endswith(suffix)), "")


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
    """One validation error as "path: problem; fix"."""
    loc = tuple(err.get("loc", ()))
    typ = err.get("type", "")
    ctx = err.get("ctx") or {}
    got = err.get("input")
    path = _loc_str(loc)
    if typ == "value_error" and isinstance(ctx.get("error"), _Problem):
        prob: _Problem = ctx["error"]
        return f"{prob.where}: {prob.what}"
    if typ in ("zero_or_at_least", "one_line"):
        return f"{path}: {err.get('msg', 'invalid value')}"
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
        bound = f"{bound:g}" if isinstance(bound, int | float) else bound
        return f"{path}: must be {op} {bound}, got {_short(got)}; fix the value (bounds: docs/hardware-configs.md)"
    if typ == "finite_number":
        return f"{path}: must be a finite number, got {_short(got)}; give a real value"
    if typ == "literal_error":
        return f"{path}: must be one of {ctx.get('expected', '?')}, got {_short(got)}; use one of those"
    if typ in ("float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"):
        what = "a number" if typ.startswith("float") else "a whole number"
        return f"{path}: must be {what}, got {_short(got)}; {_number_fix(got)}"
    if typ in ("bool_parsing", "bool_type"):
        return f"{path}: must be true or false, got {_short(got)}; write true or false"
    if typ in ("model_type", "model_attributes_type", "dict_type"):
        return f"{path}: must be a mapping of fields, got {_short(got)}; write key: value pairs"
    if typ == "list_type":
        return f"{path}: must be a list, got {_short(got)}; write [a, b] or one '- item' per line"
    if typ in ("string_type",):
        return f"{path}: must be text, got {_short(got)}; quote it if it is meant as text"
    if typ == "string_too_long":
        return f"{path}: is longer than {ctx.get('max_length', '?')} characters; shorten it"
    if typ == "string_too_short":
        return f"{path}: must not be empty; give a value"
    if typ == "string_pattern_mismatch":
        return (f"{path}: {_short(got)} is not a valid name; use letters, digits, _ and -, "
                "starting with a letter")
    msg = str(err.get("msg", "invalid value"))
    return f"{path}: {msg}, got {_short(got)}; see docs/hardware-configs.md"


def _number_fix(got: Any) -> str:
    """How to write a number, given what was written instead."""
    if isinstance(got, bool):
        return "true/false is not a number; write the number"
    if isinstance(got, str):
        try:
            float(got)
        except ValueError:
            return "write a number such as 0.9 or 2.0e+8"
        return "write the number without quotes"
    return "write a number such as 0.9 or 2.0e+8" if not isinstance(got, float) else "write a whole number"


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list) and len(value) > 8:
        return f"a list of {len(value)} items"
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = "a very long number"
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
        target = resolve_hw_path(spec.config, cfg.path.parent if cfg.path is not None else None,
                                 referrer=f"{where}: baseline.config: ")
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
            mac_source=(cfg.source_of("baseline.mac_pj") if "mac_pj" in overrides else base.mac_source),
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
            mac_source=f"{hw.name}: " + hw.source_of("baseline.mac_pj" if spec.mac_pj is not None
                                                     else "compute.mac_pj"),
        )
    levels = ann.hw.memory.level_names
    for key in ("weights", "inputs", "outputs"):
        lv = getattr(ann, key)
        if lv is not None and lv not in levels:
            raise ConfigError(f"{where}: baseline.{key}: unknown level {lv!r} on {ann.hw.name}",
                              f"use one of: {', '.join(levels) or '(no levels defined)'}")
    if not ann.compute_only and ann.static_mw > 0 and ann.clock_hz is None:
        raise ConfigError(f"{where}: baseline.clock_hz: the ANN runs on {ann.hw.name}, which has static power "
                          "but no clock, so the ANN's latency and static energy are unknown",
                          "set baseline.clock_hz to the clock of the hardware the ANN runs on")
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
    "shipped_names",
]
