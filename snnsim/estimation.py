"""Estimation: model + hardware configs (+ trace) -> per-layer and summary tables.

``estimate(model, hw)`` is the one call behind ``snnsim estimate`` and ``snnsim compare``:

1. load the model (a checkpoint path or a :class:`~snnsim.models.Model`);
2. get a spike trace: the one given, or one recorded on the model's data set. Recorded traces
   are cached under ``traces/`` keyed by the model's fingerprint, data set, T and engine (not
   the sample count: a longer trace serves a shorter request), so a model is traced once and
   every later estimate/compare reuses it, a log line says so (:mod:`snnsim.trace_cache`);
3. replay it once through the simulator (:func:`snnsim.sim.replay.replay`) -> event counts;
4. cost the counts on every hardware config (:func:`snnsim.cost.cost_report`), with the
   non-spiking baseline (the same-spec ANN, or ``baseline=`` an explicit ANN checkpoint/spec,
   e.g. the *unpruned* ANN as in the paper) on each config's baseline hardware.

The result holds tidy DataFrames: ``layers`` (one row per model x hw x layer), ``summary``
(one row per model x hw), ``breakdown`` (energy by component) and ``accesses`` (memory
accesses by dataspace and level), and writes them as one set (:meth:`EstimateResult.write`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from snnsim.arch import ArchSpec, LayerInfo
from snnsim.captions import comparison_caption, format_ratio
from snnsim.errors import SnnsimError
from snnsim.models import Model
from snnsim.trace_cache import obtain_trace

DEFAULT_HW = "45nm"
#: Every file an estimate or compare run directory may hold (``--force`` replaces only these).
RESULT_FILES = ("layers.csv", "summary.csv", "breakdown.csv", "accesses.csv", "layers_ann.csv", "compare.csv",
                "plots")

#: Leading columns of summary.csv, in order (more follow).
SUMMARY_COLUMNS = (
    "model", "hw", "samples", "timesteps", "accuracy", "params", "spikes_per_inference",
    "energy_snn_pj", "energy_ann_pj", "energy_ann_over_snn", "latency_cycles", "latency_s",
)


@dataclass
class EstimateResult:
    """Tables of one estimate run (all figures per inference)."""

    layers: pd.DataFrame
    summary: pd.DataFrame
    breakdown: pd.DataFrame
    accesses: pd.DataFrame
    ann_layers: pd.DataFrame
    counts: dict[str, Any] = field(default_factory=dict)  # model label -> SimCounts
    traces: dict[str, Path] = field(default_factory=dict)  # model label -> trace dir
    log: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The CSV tables of this run by file name (see :data:`RESULT_FILES`)."""
        return {"layers.csv": self.layers, "summary.csv": self.summary, "breakdown.csv": self.breakdown,
                "accesses.csv": self.accesses, "layers_ann.csv": self.ann_layers}

    def write(self, out_dir: str | os.PathLike[str], extra: dict[str, pd.DataFrame] | None = None,
              plots: bool = False) -> list[Path]:
        """Write the tables (plus ``extra`` ones, plus PNG plots under ``plots/``) as one set.

        Everything is written into a temporary directory that then replaces ``out_dir`` in one
        atomic step (:func:`snnsim.io.atomic_dir`): a killed or failing run (a full disk, a
        plot that cannot be made) leaves the previous results, or nothing, never a mix.
        Returns the paths written, under ``out_dir``.
        """
        from snnsim.io import atomic_dir
        from snnsim.reports import make_plots

        out = Path(out_dir)
        tables = {**self.tables(), **(extra or {})}
        with atomic_dir(out) as tmp:
            for name, df in tables.items():
                df.to_csv(tmp / name, index=False)
            made = make_plots(tmp, tmp / "plots") if plots else []
        return [out / name for name in tables] + [out / p.relative_to(tmp) for p in made]

    def table(self) -> str:
        """A readable summary table, sorted by SNN energy."""
        return format_summary(self.summary)


def format_summary(summary: pd.DataFrame) -> str:
    """Human-readable summary, under its :func:`comparison_caption`: energies in µJ, ratios to
    3 significant figures, latency in s/ms/µs/ns."""
    if summary.empty:
        return "(no results)"
    df = summary.sort_values("energy_snn_pj", kind="stable")
    view = pd.DataFrame({
        "model": df["model"],
        "hw": df["hw"],
        "ANN on": df["baseline_hw"],
        "T": df["timesteps"],
        "acc %": (df["accuracy"] * 100).map(lambda v: f"{v:.1f}" if pd.notna(v) else "-"),
        "params": df["params"].map(lambda v: f"{v:,}"),
        "spikes/inf": df["spikes_per_inference"].map(lambda v: f"{v:,.0f}"),
        "E_SNN µJ": (df["energy_snn_pj"] / 1e6).map(_fmt),
        "E_ANN µJ": (df["energy_ann_pj"] / 1e6).map(_fmt),
        "ANN/SNN": df["energy_ann_over_snn"].map(format_ratio),
        "compute-only": df["energy_compute_ann_over_snn"].map(format_ratio),
        "latency": df["latency_s"].map(_fmt_time),
        "ANN latency": df["latency_ann_s"].map(_fmt_time),
    })
    return "\n".join([*comparison_caption(df), view.to_string(index=False)])


def _fmt(v: float) -> str:
    if pd.isna(v):
        return "-"
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _fmt_time(v: float) -> str:
    if pd.isna(v):
        return "-"
    if v >= 1:
        return f"{v:.2f} s"
    if v >= 1e-3:
        return f"{v * 1e3:.2f} ms"
    if v >= 1e-6:
        return f"{v * 1e6:.2f} µs"
    return f"{v * 1e9:.1f} ns"


# ---------------------------------------------------------------------------- inputs
def resolve_model(model: str | os.PathLike[str] | Model) -> tuple[Model, str, Path | None]:
    """(model, label, path): load a checkpoint path, or take a model object as it is."""
    from snnsim.checkpoint import load_model

    if isinstance(model, Model):
        return model, model.name, None
    path = Path(model)
    net = load_model(path)
    return net, model_label(path), path


def model_label(path: Path) -> str:
    """A short, readable name for a checkpoint: its stem, or ``dir/stem`` for generic stems."""
    stem = path.stem
    if stem in {"snn", "ann", "model", "pruned", "best", "last"} and path.parent.name:
        return f"{path.parent.name}/{stem}"
    return stem


def baseline_layers(model: Model, baseline: str | os.PathLike[str] | Model | ArchSpec | None
                    ) -> tuple[list[LayerInfo], str]:
    """The layers of the non-spiking baseline and its label.

    ``None`` = the same network as the SNN (its layers: batch norm folded, as the SNN's). A
    checkpoint path / model / spec = that network (e.g. the unpruned ANN, the paper's comparison).
    """
    if baseline is None:
        return list(model.layer_infos), f"of the SNN's own network ({model.name}, {model.param_count():,} params)"
    if isinstance(baseline, ArchSpec):
        return baseline.layers(), baseline.name
    net, label, _ = resolve_model(baseline)
    if tuple(net.input_shape) != tuple(model.input_shape) or net.num_classes != model.num_classes:
        raise SnnsimError(f"baseline {label!r} has input {list(net.input_shape)} -> {net.num_classes} classes, "
                          f"the model {list(model.input_shape)} -> {model.num_classes}",
                          "pass the ANN trained on the same data set")
    return list(net.layer_infos), label




def _as_configs(hw: Any, compute_only: bool) -> list[Any]:
    from snnsim.hw import HardwareConfig, load_hw

    items = hw if isinstance(hw, list | tuple) else [hw]
    if not items:
        items = [DEFAULT_HW]
    out = []
    for item in items:
        if isinstance(item, HardwareConfig):
            out.append(item.as_compute_only() if compute_only else item)
        else:
            out.append(load_hw(item, compute_only=compute_only))
    return out


# ---------------------------------------------------------------------------- estimate
def estimate(model: str | os.PathLike[str] | Model, hw: Any = DEFAULT_HW, trace: str | os.PathLike[str] | None = None,
             dataset: str | None = None, samples: int | None = None, *, counting: str = "snnsim",
             baseline: str | os.PathLike[str] | Model | ArchSpec | None = None,
             first_layer: str = "auto", skip_zero_weights: bool = False, compute_only: bool = False,
             functional: bool | str = False, data_dir: str | os.PathLike[str] = "data",
             trace_root: str | os.PathLike[str] = "traces", device: str = "auto", seed: int = 0,
             progress: bool = True, log: Callable[[str], None] | None = None,
             engine: str = "torch", connections: str = "inbounds", encoding: str | None = None) -> EstimateResult:
    """Estimate energy and latency of ``model`` on each hardware config in ``hw``.

    ``hw``: a config path, a shipped config name (``45nm``, ``loihi``...), a loaded
    :class:`~snnsim.hw.HardwareConfig`, or a list of those. See the module docstring for the
    trace and baseline rules. ``connections`` (:data:`snnsim.cost.CONNECTIONS_CHOICES`): which
    connections both the SNN and the ANN count (docs/counting.md). ``encoding`` (None: each
    model's own) gives every model that input encoding. Returns an :class:`EstimateResult`.
    """
    return estimate_many([model], hw, traces=[trace] if trace is not None else None, dataset=dataset,
                         samples=samples, counting=counting, baseline=baseline, first_layer=first_layer,
                         skip_zero_weights=skip_zero_weights, compute_only=compute_only, functional=functional,
                         data_dir=data_dir, trace_root=trace_root, device=device, seed=seed,
                         progress=progress, log=log, engine=engine, connections=connections, encoding=encoding)


def estimate_many(models: Sequence[str | os.PathLike[str] | Model], hw: Any = DEFAULT_HW,
                  traces: Sequence[str | os.PathLike[str] | None] | None = None, dataset: str | None = None,
                  samples: int | None = None, *, counting: str = "snnsim",
                  baseline: str | os.PathLike[str] | Model | ArchSpec | None = None,
                  first_layer: str = "auto", skip_zero_weights: bool = False,
                  compute_only: bool = False, functional: bool | str = False,
                  data_dir: str | os.PathLike[str] = "data", trace_root: str | os.PathLike[str] = "traces",
                  device: str = "auto", seed: int = 0, progress: bool = True,
                  log: Callable[[str], None] | None = None, engine: str = "torch",
                  connections: str = "inbounds", encoding: str | None = None) -> EstimateResult:
    """Every model on every config: each model is traced (by ``engine``) and replayed once, then
    costed per config."""
    from snnsim.arch import show_value
    from snnsim.cost import CONNECTIONS_CHOICES, FIRST_LAYER_CHOICES, cost_report, layer_connections
    from snnsim.sim.replay import replay

    if first_layer not in FIRST_LAYER_CHOICES:
        raise SnnsimError(f"unknown first-layer convention {first_layer!r}", f"choose one of {', '.join(FIRST_LAYER_CHOICES)}")
    if connections not in CONNECTIONS_CHOICES:
        raise SnnsimError(f"unknown connection-counting convention {show_value(connections)}",
                          f"choose one of {', '.join(CONNECTIONS_CHOICES)}")
    messages: list[str] = []

    def say(msg: str) -> None:
        messages.append(msg)
        if log is not None:
            log(msg)

    configs = _as_configs(list(hw) if isinstance(hw, list | tuple) else hw, compute_only)
    say_compiling(say, functional=bool(functional) or engine == "event")
    if traces is not None and len(traces) != len(models):
        raise SnnsimError(f"got {len(traces)} traces for {len(models)} models", "pass one --trace per --model, or none")
    layer_frames, summary_rows, breakdown_rows, access_frames, ann_frames = [], [], [], [], []
    all_counts: dict[str, Any] = {}
    trace_dirs: dict[str, Path] = {}
    labels_seen: set[str] = set()
    for mi, model_arg in enumerate(models):
        net, label, _ = resolve_model(model_arg)
        if encoding is not None:
            net.set_encoding(encoding)
        if net.kind != "snn":
            raise SnnsimError(f"model {label!r} is an ANN", "estimate an SNN (the ANN is the baseline: pass it as --baseline)")
        while label in labels_seen:
            label = f"{label}#{mi}"
        labels_seen.add(label)
        tr = obtain_trace(net, traces[mi] if traces is not None else None, dataset, samples, data_dir,
                          trace_root, device, seed, progress, say, engine)
        trace_dirs[label] = Path(tr.path)
        counts = replay(tr, net, counting=counting, functional=functional, progress=progress)
        all_counts[label] = counts
        ann_layer_infos, baseline_label = baseline_layers(net, baseline)
        accuracy = _trace_accuracy(tr)
        func = getattr(counts, "functional", None)
        spikes_per_inf = float(counts.per_sample("spikes_out").sum())
        bits = (net.quantization or {}).get("bits")
        for base_cfg in configs:
            # A k-bit quantized model stores k-bit weights: memory traffic scales with the width.
            cfg = (base_cfg.with_numerics(weight_bits=int(bits))
                   if bits and int(bits) < base_cfg.numerics.weight_bits else base_cfg)
            rep = cost_report(counts, cfg, first_layer=first_layer, skip_zero_weights=skip_zero_weights,
                              ann_layers=ann_layer_infos, connections=connections)
            lay = rep.snn.layers.copy()
            lay.insert(0, "hw", rep.snn.hw_name)
            lay.insert(0, "model", label)
            layer_frames.append(lay)
            ann = rep.ann.layers.copy()
            ann.insert(0, "hw", rep.ann.hw_name)
            ann.insert(0, "model", baseline_label)
            ann.insert(0, "snn_model", label)
            ann_frames.append(ann)
            acc = rep.snn.accesses.copy()
            acc.insert(0, "network", "snn")
            acc.insert(0, "hw", rep.snn.hw_name)
            acc.insert(0, "model", label)
            access_frames.append(acc)
            for network, res in (("snn", rep.snn), ("ann", rep.ann)):
                for comp, e in res.breakdown.items():
                    breakdown_rows.append({"model": label, "hw": rep.snn.hw_name, "network": network,
                                           "component": comp, "energy_pj": float(e)})
            row: dict[str, Any] = {
                "model": label, "hw": rep.snn.hw_name, "samples": int(counts.samples),
                "timesteps": int(counts.timesteps), "accuracy": accuracy,
                "params": int(net.param_count()), "spikes_per_inference": spikes_per_inf,
            }
            summ = dict(rep.summary)
            summ.pop("hw", None)
            summ.pop("timesteps", None)
            row.update(summ)
            row.update({
                "baseline_model": baseline_label,
                "ann_params": int(sum(layer.params for layer in ann_layer_infos)),
                # the ANN's MACs by the run's connection convention (rep.summary["connections"]), and both
                "ann_macs": int(rep.ann.totals["mac"]),
                "ann_macs_inbounds": int(sum(layer_connections(la, "inbounds") for la in ann_layer_infos)),
                "ann_macs_conventional": int(sum(layer_connections(la, "conventional") for la in ann_layer_infos)),
                "ac_per_inference": float(rep.snn.layers["ac"].sum()),
                "mac_per_inference": float(rep.snn.layers["mac"].sum()),
                "counting": counting,
                "weight_bits": (net.quantization or {}).get("bits", 32),
                "functional_accuracy": (func.accuracy if func is not None else float("nan")),
                "trace": str(tr.path),
            })
            for comp, e in rep.snn.breakdown.items():
                row[f"snn_{comp}_pj"] = float(e)
            summary_rows.append(row)
    summary = pd.DataFrame(summary_rows)
    ordered = [c for c in SUMMARY_COLUMNS if c in summary.columns]
    summary = summary[ordered + [c for c in summary.columns if c not in ordered]]
    return EstimateResult(
        layers=pd.concat(layer_frames, ignore_index=True),
        summary=summary,
        breakdown=pd.DataFrame(breakdown_rows, columns=["model", "hw", "network", "component", "energy_pj"]),
        accesses=pd.concat(access_frames, ignore_index=True) if access_frames else pd.DataFrame(),
        ann_layers=pd.concat(ann_frames, ignore_index=True),
        counts=all_counts,
        traces=trace_dirs,
        log=messages,
    )


def say_compiling(say: Callable[[str], None], functional: bool = False) -> None:
    """Tell the user, before a silent wait, that numba is compiling the kernels (first run)."""
    from snnsim.sim import kernels

    needed = kernels.COUNTING_KERNELS + (kernels.FUNCTIONAL_KERNELS if functional else ())
    if not kernels.kernels_compiled(needed):
        say("compiling the simulator's numba kernels (first run only, about 30 s on 2 CPU cores; "
            "later runs load them from numba's cache)")


def _trace_accuracy(tr: Any) -> float:
    labels = tr.labels
    if labels is None:
        return float("nan")
    preds = tr.predictions
    import numpy as np

    return float(np.mean(np.asarray(preds) == np.asarray(labels))) if len(labels) else float("nan")


