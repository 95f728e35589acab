"""``snnsim hw list`` and ``snnsim hw show``: the shipped hardware configs, and one config resolved.

``show`` prints a config after ``extends:`` is merged and its ANN baseline resolved: every per-op
energy and every timing number next to the config field it comes from and that field's recorded
source (the comment beside the value in the YAML, tagged [P]/[S]/[D]/[A]; "no recorded source"
or "not set" where there is none), so a reader can audit a number without opening the files.
"""

from __future__ import annotations

import math
import re
from typing import Any

import click


def first_sentence(text: str) -> str:
    """The first line, cut at the first sentence end ("et al. 2021" is not one)."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return re.split(r"(?<=[.!?])\s+(?=[A-Z(])", line, maxsplit=1)[0].rstrip(".") or "(no description)"


def _num(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Left-aligned columns (the last one unpadded)."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows]


@click.group("hw")
def hw() -> None:
    """List the shipped hardware configs, or show one resolved.

    A config is named by a shipped name (45nm, loihi, ...; with or without .yaml) or a path,
    as everywhere else (--hw, extends:, baseline.config).
    """


@hw.command("list", short_help="The shipped configs: name, description, file.")
@click.option("--names-only", is_flag=True, help="Print only the names, one per line (for scripts).")
def list_configs(names_only: bool) -> None:
    """The shipped hardware configs: name, what it is (first sentence of its description), file."""
    from snnsim.hw import load_hw, shipped_configs

    paths = shipped_configs()
    if names_only:
        for p in paths:
            click.echo(p.stem)
        return
    rows = [["NAME", "DESCRIPTION", "FILE"]]
    for p in paths:
        cfg = load_hw(p)
        rows.append([p.stem, first_sentence(cfg.description), str(p)])
    desc_w = max(len(r[1]) for r in rows)
    name_w = max(len(r[0]) for r in rows)
    for r in rows:
        click.echo(f"{r[0].ljust(name_w)}  {r[1].ljust(desc_w)}  {r[2]}")
    click.echo(f"\n{len(paths)} configs; use one with --hw NAME, see its numbers and sources with "
               "`snnsim hw show NAME`.")


@hw.command("show", short_help="One config resolved, every number with its source.")
@click.argument("config")
@click.option("--compute-only", is_flag=True,
              help="Show it as --compute-only loads it: only MAC and AC energies are charged.")
def show(config: str, compute_only: bool) -> None:
    """Print CONFIG (a shipped name or a YAML path) resolved: extends chain, the ANN baseline it is
    compared against, every per-op energy and timing number with its source, caveats, citations."""
    from snnsim.hw import load_hw

    cfg = load_hw(config, compute_only=compute_only)
    for line in describe(cfg):
        click.echo(line)


def describe(cfg: Any) -> list[str]:
    """The lines ``snnsim hw show`` prints for a loaded :class:`~snnsim.hw.HardwareConfig`."""
    from snnsim.hw import _show

    ann = cfg.ann
    out = [f"{cfg.label}  ({_show(cfg.path) if cfg.path is not None else 'built in Python'})"]
    if cfg.description:
        out.append(f"  {' '.join(cfg.description.split())}")
    chain = cfg.extends_chain
    out.append("extends:    " + (" -> ".join(p.name for p in chain) if len(chain) > 1 else "(nothing)"))
    t, nb = cfg.technology, cfg.numerics
    out.append(f"technology: {_num(t.node_nm)} nm" + (f", {_num(t.voltage_v)} V" if t.voltage_v else ""))
    out.append(f"numerics:   weights {nb.weight_bits} bit, potentials {nb.potential_bits} bit, "
               f"activations {nb.activation_bits} bit, spikes {nb.spike_bits} bit")
    out.append(f"flags:      aggregate: {_num(cfg.aggregate)}, compute_only: {_num(cfg.compute_only)}")

    on = "this config (inline baseline)" if ann.hw is cfg else \
        f"{ann.hw.name} ({_show(ann.hw.path) if ann.hw.path is not None else 'built in Python'})"
    clock = f"{_num(ann.clock_hz / 1e6)} MHz" if ann.clock_hz else "no clock (latency not computed)"
    out.append(f"baseline:   the ANN runs on {on}")
    out.append(f"  MAC {_num(ann.mac_pj)} pJ, reuse {ann.reuse}, {ann.pes} PEs x "
               f"{_num(ann.macs_per_cycle_per_pe)} MAC/cycle, utilization {_num(ann.utilization)}, {clock}")
    if ann.reason:
        out.append(f"  reason: {' '.join(ann.reason.split())}")

    cited: list[str] = []
    energy = [["COMPONENT", "ACTION", "PJ", "NOTE", "FIELD", "SOURCE"]]
    for r in cfg.energy_table():
        energy.append([r["component"], r["action"], _num(r["energy_pj"]), r["note"] or "-", r["field"], r["source"]])
        cited += [r["source"]]
    base_rows = _baseline_energy_rows(cfg)
    for field, value, source in base_rows:
        energy.append(["ann baseline", field.rsplit(".", 1)[-1], _num(value), "per MAC", field, source])
        cited.append(source)
    out.append("")
    out.append("energy per action (pJ; the SNN side, then the ANN baseline's per-MAC energies):")
    out += _table(energy)

    timing = [["FIELD", "VALUE", "UNIT", "SOURCE"]]
    for r in cfg.timing_table():
        timing.append([r["field"], _num(r["value"]), r["unit"] or "-", r["source"]])
        cited.append(r["source"])
    out.append("")
    out.append("latency, parallelism and static power:")
    out += _table(timing)

    if cfg.caveats:
        out.append("")
        out.append("caveats:")
        out += [f"  - {c}" for c in cfg.caveats]
    sources = {**ann.hw.sources, **cfg.sources}
    text = " ".join(cited)
    keys = list(dict.fromkeys(cfg.cited_sources(text) + ann.hw.cited_sources(text)))
    out.append("")
    if keys:
        out.append("sources cited above:")
        out += [f"  {k}: {sources[k]}" for k in keys]
    else:
        out.append("sources cited above: (none recorded)")
    return out


def _baseline_energy_rows(cfg: Any) -> list[tuple[str, float, str]]:
    """(field, pJ, source) of the ANN baseline's MAC and per-level energies per MAC."""
    ann = cfg.ann
    rows: list[tuple[str, float, str]] = [("baseline.mac_pj", ann.mac_pj, ann.mac_source or "no recorded source")]
    if ann.reuse == "ratios":
        own = cfg.baseline.pj_per_mac is not None
        for level, pj in ann.pj_per_mac.items():
            field = f"baseline.pj_per_mac.{level}"
            src = cfg.source_of(field) if own or ann.hw is cfg else f"{ann.hw.name}: {ann.hw.source_of(field)}"
            rows.append((field, pj, src))
    return rows
