"""Plots of snnsim's CSV tables: one picture per decision (which compression, chip, timesteps).

Every function takes the table(s) as pandas DataFrames (read from the CSVs the commands write)
and an output path, writes one PNG atomically (:func:`snnsim.io.atomic_path`) at ~150 dpi, and
returns the path. Columns are read defensively: a table missing what a plot needs raises
:class:`~snnsim.errors.SnnsimError` (one line: which columns), so callers can skip that plot.

Tables and the plots made from them:

* ``layers.csv`` (per-layer cost rows, :data:`snnsim.cost.ROW_COLUMNS` + ``model``, ``hw``):
  :func:`plot_energy_breakdown` (stacked bars by energy component), :func:`plot_spike_rates`;
* ``summary.csv`` / ``compare.csv`` (one row per model x hardware config):
  :func:`plot_snn_vs_ann`, :func:`plot_accuracy_vs_energy` (Pareto front);
* ``temporal.csv`` (``snnsim prune temporal``): :func:`plot_temporal`;
* ``quantize.csv`` (``snnsim quantize``): :func:`plot_quantization`;
* ``spatial.csv`` (``snnsim prune spatial``): :func:`plot_spatial`;
* ``pca_curves.csv`` (``snnsim prune spatial``): :func:`plot_pca_curves`;
* ``noise.csv`` (``snnsim evaluate``): :func:`plot_noise`.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot, no global state,
no display needed); the Agg canvas renders them.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogFormatter

from snnsim.errors import SnnsimError
from snnsim.io import atomic_path

DPI = 150

#: Energy components of a per-layer row: (column, legend label, colour). Same colours everywhere.
COMPONENTS: tuple[tuple[str, str, str], ...] = (
    ("energy_compute_pj", "compute (AC/MAC)", "#1f77b4"),
    ("energy_memory_pj", "memory", "#ff7f0e"),
    ("energy_neuron_pj", "neuron update", "#2ca02c"),
    ("energy_routing_pj", "spike routing", "#9467bd"),
    ("energy_static_pj", "static / leakage", "#7f7f7f"),
)
SNN_COLOR = "#1f77b4"
ANN_COLOR = "#d62728"
#: Colours for series (models, schedules, layers), cycled.
SERIES_COLORS: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: Columns that mark a row as the SNN or its ANN baseline, if a per-layer table holds both.
_NET_COLUMNS = ("net", "network", "model_kind", "role")


# ============================================================================ helpers
def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str],
          rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> Path:
    """Lay out (within ``rect``), write ``fig`` as PNG atomically to ``path``; return the path."""
    fig.tight_layout(rect=rect)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def caption_of(rows: pd.DataFrame | None) -> list[str]:
    """The comparison caption (baseline model and hardware, counting rules, first-layer
    convention, ratio direction) of summary/compare rows; [] for other tables."""
    from snnsim.captions import comparison_caption

    if rows is None or not {"baseline_model", "baseline_hw", "counting", "first_layer"} <= set(rows.columns):
        return []
    return comparison_caption(rows)


def _titled(fig: Figure, title: str, caption: Sequence[str]) -> None:
    """Title the figure with the caption lines under it (wrapped to the figure's width)."""
    width = max(40, int(fig.get_figwidth() * 15))  # about 15 characters per inch at 9 pt
    lines = [textwrap.fill(line, width) for line in caption]
    text = "\n".join([t for t in (title, *lines) if t])
    fig.suptitle(text, fontsize=9 if lines else 12)
    # tight_layout (matplotlib >= 3.8) already keeps the suptitle clear of the axes; a taller
    # figure keeps the plot area its size.
    fig.set_figheight(fig.get_figheight() + 0.15 * text.count("\n"))


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if df is None or len(df) == 0:
        raise SnnsimError(f"{what}: the table is empty", "re-run the command that writes it")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SnnsimError(f"{what}: the table lacks column(s) {', '.join(missing)}",
                          "re-run the command that writes it with this snnsim")


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


def energy_unit(max_pj: float) -> tuple[float, str]:
    """(divisor, unit) that puts an energy given in pJ in a readable range."""
    for div, unit in ((1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ")):
        if math.isfinite(max_pj) and max_pj >= div:
            return div, unit
    return 1.0, "pJ"


def _fmt_energy(pj: float) -> str:
    div, unit = energy_unit(abs(pj))
    return f"{pj / div:.3g} {unit}"


def _percent(values: pd.Series | np.ndarray) -> tuple[np.ndarray, bool]:
    """Accuracies as percent (fractions in [0, 1] are scaled); also whether they were scaled."""
    arr = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    finite = arr[np.isfinite(arr)]
    if finite.size and finite.max() <= 1.0 + 1e-9:
        return arr * 100.0, True
    return arr, False


def _ordered_unique(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _label(df: pd.DataFrame, column: str, default: str) -> pd.Series:
    """A string label column (``default`` where absent or empty)."""
    if column in df.columns:
        return df[column].fillna(default).astype(str).replace("", default)
    return pd.Series([default] * len(df), index=df.index)


def snn_rows(layers: pd.DataFrame) -> pd.DataFrame:
    """The SNN rows of a per-layer table (drops ANN-baseline rows if a column marks them)."""
    for col in _NET_COLUMNS:
        if col in layers.columns:
            vals = layers[col].astype(str).str.lower()
            if vals.isin(["ann", "ann_baseline", "baseline"]).any():
                return layers[~vals.isin(["ann", "ann_baseline", "baseline"])]
    return layers


def _layer_order(df: pd.DataFrame) -> list[str]:
    if "index" in df.columns:
        idx = _num(df["index"])
        if idx.notna().all():
            return _ordered_unique(df.assign(_i=idx).sort_values("_i", kind="stable")["layer"].astype(str))
    return _ordered_unique(df["layer"].astype(str))


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols, math.ceil(math.sqrt(n)) if n > 3 else max_cols)
    return math.ceil(n / cols), cols


def _tick_labels(ax: Axes, labels: Sequence[str], positions: Sequence[float]) -> None:
    ax.set_xticks(list(positions))
    long = len(labels) > 6 or max((len(s) for s in labels), default=0) > 12
    ax.set_xticklabels(list(labels), rotation=35 if long else 0, ha="right" if long else "center")


def _readable_log(axis: Any) -> None:
    """Plain-number labels on a log axis, with 2x/5x minor labels when it spans few decades."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


# ============================================================================ 1. energy breakdown
def plot_energy_breakdown(layers: pd.DataFrame, path: str | os.PathLike[str],
                          title: str | None = None, caption: Sequence[str] = ()) -> Path:
    """Stacked bars per layer by energy component, one panel per (model, hardware config).

    ``layers``: rows of ``layers.csv`` (``layer`` and the ``energy_*_pj`` columns; ``model``,
    ``hw`` optional). Energies are per inference; each panel picks its own unit (pJ..mJ).
    """
    _require(layers, ["layer"], "energy breakdown")
    present = [c for c in COMPONENTS if c[0] in layers.columns]
    if not present:
        raise SnnsimError("energy breakdown: the table has no energy_*_pj component columns",
                          "pass a layers.csv written by snnsim estimate")
    df = snn_rows(layers).copy()
    df["_model"] = _label(df, "model", "")
    df["_hw"] = _label(df, "hw", "")
    groups = list(df.groupby(["_model", "_hw"], sort=False))
    rows, cols = _grid(len(groups))
    n_layers = max(len(_layer_order(g)) for _, g in groups)
    fig = _figure(max(5.0, min(6.5, 2.2 + 0.45 * n_layers)) * cols, 3.9 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax, ((model, hw), g) in zip(axes.flat, groups, strict=False):
        order = _layer_order(g)
        g = g.groupby(g["layer"].astype(str), sort=False)[[c for c, _, _ in present]].sum()
        g = g.reindex(order).apply(_num).fillna(0.0)
        totals = g.sum(axis=1).to_numpy()
        div, unit = energy_unit(float(totals.max()) if len(totals) else 0.0)
        x = np.arange(len(order))
        bottom = np.zeros(len(order))
        for col, lab, color in present:
            vals = g[col].to_numpy() / div
            ax.bar(x, vals, 0.7, bottom=bottom, color=color, label=lab, edgecolor="white", linewidth=0.4)
            bottom += vals
        if bottom.size and float(bottom.max()) > 0:
            ax.set_ylim(0, float(bottom.max()) * 1.15)  # headroom for the total labels
        for xi, tot in zip(x, bottom, strict=True):
            ax.annotate(f"{tot:.3g}", (xi, tot), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7)
        _tick_labels(ax, order, x)
        ax.set_ylabel(f"energy per inference ({unit})")
        ax.set_xlabel("layer")
        name = " on ".join(v for v in (model, hw) if v)
        ax.set_title(f"{name + ': ' if name else ''}total {_fmt_energy(float(totals.sum()))}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    _titled(fig, title or "SNN energy per layer and component (per inference)", caption)
    ncol = len(present) if cols > 1 else min(3, len(present))
    legend_rows = math.ceil(len(present) / ncol)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig_h = fig.get_figheight()
    return _save(fig, path, rect=(0, min(0.3, (0.1 + 0.2 * legend_rows) / fig_h), 1, 1))


# ============================================================================ 2. spike rates
def plot_spike_rates(layers: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Spike rate (spikes per neuron per timestep) per layer, one bar series per model.

    The spike rate does not depend on the hardware config, so each (model, layer) is taken once.
    The output layer accumulates only (no spikes) and shows as an empty slot.
    """
    _require(layers, ["layer", "spike_rate"], "spike rates")
    df = snn_rows(layers).copy()
    df["_model"] = _label(df, "model", "model")
    df["spike_rate"] = _num(df["spike_rate"])
    order = _layer_order(df)
    models = _ordered_unique(df["_model"])
    width = 0.8 / len(models)
    fig = _figure(max(6.0, min(14.0, 2.5 + 0.5 * len(order) * max(1, len(models) ** 0.5))), 4.2)
    ax = fig.add_subplot()
    x = np.arange(len(order))
    for k, model in enumerate(models):
        g = df[df["_model"] == model].drop_duplicates("layer")
        rate = g.set_index(g["layer"].astype(str))["spike_rate"].reindex(order).to_numpy(dtype=float)
        ax.bar(x + (k - (len(models) - 1) / 2) * width, np.nan_to_num(rate), width * 0.95,
               color=SERIES_COLORS[k % len(SERIES_COLORS)], label=model)
    _tick_labels(ax, order, x)
    ax.set_xlabel("layer")
    ax.set_ylabel("spike rate (spikes / neuron / timestep)")
    ax.set_title("Spiking activity per layer")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if len(models) > 1:
        ax.legend(fontsize=8, title="model", title_fontsize=8)
    return _save(fig, path)


# ============================================================================ 3. SNN vs ANN
def plot_snn_vs_ann(summary: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """SNN vs ANN-baseline energy per hardware config (grouped bars, log y, ratio annotated).

    ``summary``: rows of ``summary.csv`` / ``compare.csv`` with ``hw``, ``energy_snn_pj``,
    ``energy_ann_pj`` (``model``, ``energy_ann_over_snn`` optional). One panel per model; the title
    states the baseline and the counting rules (:func:`caption_of`).
    """
    _require(summary, ["hw", "energy_snn_pj", "energy_ann_pj"], "SNN vs ANN energy")
    df = summary.copy()
    df["_model"] = _label(df, "model", "model")
    df["_hw"] = _label(df, "hw", "hw")
    for c in ("energy_snn_pj", "energy_ann_pj"):
        df[c] = _num(df[c])
    df = df.drop_duplicates(["_model", "_hw"])
    positive = df[["energy_snn_pj", "energy_ann_pj"]].to_numpy(dtype=float)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    if positive.size == 0:
        raise SnnsimError("SNN vs ANN energy: no positive energies in the table", "re-run snnsim estimate")
    div, unit = energy_unit(float(np.median(positive)))
    models = _ordered_unique(df["_model"])
    n_hw = max(len(_ordered_unique(df.loc[df["_model"] == m, "_hw"])) for m in models)
    rows, cols = _grid(len(models), 2)
    fig = _figure(max(5.5, 1.8 + 1.1 * n_hw) * cols, 4.3 * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for ax in axes.flat[len(models):]:
        ax.set_visible(False)
    for ax, model in zip(axes.flat, models, strict=False):
        g = df[df["_model"] == model]
        hws = list(g["_hw"])
        x = np.arange(len(hws))
        snn = g["energy_snn_pj"].to_numpy(dtype=float) / div
        ann = g["energy_ann_pj"].to_numpy(dtype=float) / div
        ax.bar(x - 0.2, np.where(snn > 0, snn, np.nan), 0.38, color=SNN_COLOR, label="SNN")
        ax.bar(x + 0.2, np.where(ann > 0, ann, np.nan), 0.38, color=ANN_COLOR, label="ANN baseline")
        ax.set_yscale("log")
        _readable_log(ax.yaxis)
        ratio = (_num(g["energy_ann_over_snn"]).to_numpy(dtype=float) if "energy_ann_over_snn" in g.columns
                 else np.full(len(g), np.nan))
        ratio = np.where(np.isfinite(ratio), ratio, ann / np.where(snn > 0, snn, np.nan))
        top = np.nanmax(np.vstack([snn, ann]), axis=0)
        for xi, r, t in zip(x, ratio, top, strict=True):
            if np.isfinite(r) and np.isfinite(t):
                ax.annotate(f"ANN/SNN\n{r:.3g}×", (xi, t), xytext=(0, 3), textcoords="offset points",
                            ha="center", va="bottom", fontsize=7.5, fontweight="bold",
                            color="black" if r >= 1 else ANN_COLOR)  # red: the SNN costs more
        _tick_labels(ax, hws, x)
        ax.set_xlabel("hardware config")
        ax.set_ylabel(f"energy per inference ({unit}, log)")
        ax.set_title(f"{model}: SNN vs ANN energy", fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.25)
        ax.set_axisbelow(True)
        ax.legend(fontsize=8, loc="upper left")
        ax.yaxis.set_tick_params(labelleft=True)
    axes.flat[0].set_ylim(positive.min() / div / 3, positive.max() / div * 15)
    _titled(fig, "SNN vs ANN energy per inference", caption_of(summary))
    return _save(fig, path)


# ============================================================================ 4. temporal
def plot_temporal(temporal: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Accuracy (and spikes per inference) vs timesteps, per schedule (gradual vs direct).

    ``temporal``: rows of ``temporal.csv`` (``timesteps``, ``accuracy``; ``schedule``,
    ``accuracy_cut``, ``spikes_per_inference`` optional). Dashed: accuracy right after the cut,
    before fine-tuning.
    """
    _require(temporal, ["timesteps", "accuracy"], "temporal pruning")
    df = temporal.copy()
    df["_schedule"] = _label(df, "schedule", "gradual")
    df["timesteps"] = _num(df["timesteps"])
    has_spikes = "spikes_per_inference" in df.columns and _num(df["spikes_per_inference"]).notna().any()
    fig = _figure(10.0 if has_spikes else 6.0, 4.2)
    axes = fig.subplots(1, 2 if has_spikes else 1, squeeze=False)[0]
    ax = axes[0]
    acc, _ = _percent(df["accuracy"])
    cut = _percent(df["accuracy_cut"])[0] if "accuracy_cut" in df.columns else None
    labelled: dict[float, list[str]] = {}  # value labels placed at each T: side by side, not overlaid
    for k, sched in enumerate(_ordered_unique(df["_schedule"])):
        m = (df["_schedule"] == sched).to_numpy()
        t = df.loc[m, "timesteps"].to_numpy(dtype=float)
        color = SERIES_COLORS[k % len(SERIES_COLORS)]
        marker = _MARKERS[k % len(_MARKERS)]
        ax.plot(t, acc[m], marker=marker, color=color, label=f"{sched}: fine-tuned", linewidth=1.8)
        for ti, ai in zip(t, acc[m], strict=True):
            text = f"{ai:.1f}"
            if not np.isfinite(ai) or text in labelled.setdefault(float(ti), []):
                continue  # e.g. the shared starting row of every schedule
            ax.annotate(text, (ti, ai), xytext=(20 * len(labelled[float(ti)]), 6), textcoords="offset points",
                        ha="center", fontsize=7, color=color)
            labelled[float(ti)].append(text)
        if cut is not None and np.isfinite(cut[m]).any():
            ax.plot(t, cut[m], marker=marker, color=color, linestyle="--", alpha=0.45, markerfacecolor="none",
                    label=f"{sched}: right after cut")
        if has_spikes:
            sp = _num(df.loc[m, "spikes_per_inference"]).to_numpy(dtype=float)
            axes[1].plot(t, sp, marker=marker, color=color, label=sched, linewidth=1.8)
    ts = sorted({int(v) for v in df["timesteps"].dropna()})
    for a in axes:
        a.set_xticks(ts)
        a.set_xlabel("timesteps T")
        a.grid(alpha=0.3)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Temporal pruning: accuracy vs timesteps")
    ax.margins(y=0.12)
    ax.legend(fontsize=8)
    if has_spikes:
        axes[1].set_ylabel("spikes per inference")
        axes[1].set_title("Spikes per inference vs timesteps")
        axes[1].set_ylim(bottom=0)
        axes[1].legend(fontsize=8)
    return _save(fig, path)


# ============================================================================ 5. quantization
def plot_quantization(quant: pd.DataFrame, path: str | os.PathLike[str], float_bits: int = 32) -> Path:
    """Accuracy vs weight bits, with the float model as a dashed reference line.

    ``quant``: rows of ``quantize.csv`` (``bits``, ``accuracy``; ``scheme``, ``series``
    optional). The row with ``bits == float_bits`` (or scheme ``float32``) is the reference.
    """
    _require(quant, ["bits", "accuracy"], "quantization")
    df = quant.copy()
    df["bits"] = _num(df["bits"])
    df["_acc"] = _percent(df["accuracy"])[0]
    df["_series"] = _label(df, "series", "")
    is_float = np.array(df["bits"] >= float_bits, dtype=bool)
    if "scheme" in df.columns:
        is_float = is_float | np.array(df["scheme"].astype(str).str.startswith("float"), dtype=bool)
    fig = _figure(6.5, 4.2)
    ax = fig.add_subplot()
    series = _ordered_unique(df["_series"])
    for k, s in enumerate(series):
        color = SERIES_COLORS[k % len(SERIES_COLORS)]
        m = (df["_series"] == s).to_numpy()
        q = df[m & ~is_float].sort_values("bits")
        name = s or "quantized"
        ax.plot(q["bits"], q["_acc"], marker="o", color=color, linewidth=1.8, label=f"{name}: k-bit weights")
        for b, a in zip(q["bits"], q["_acc"], strict=True):
            if np.isfinite(a):
                ax.annotate(f"{a:.1f}", (b, a), xytext=(4, -11), textcoords="offset points",
                            ha="left", fontsize=7, color=color)
        ref = df[m & is_float]["_acc"]
        if len(ref) and np.isfinite(ref.iloc[0]):
            ax.axhline(ref.iloc[0], color=color, linestyle="--", alpha=0.7,
                       label=f"{(s + ': ') if s else ''}float32 ({ref.iloc[0]:.1f}%)")
    bits = sorted({int(b) for b in df.loc[~is_float, "bits"].dropna()})
    if bits:
        ax.set_xticks(bits)
    ax.set_xlabel("weight bits k")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Post-training weight quantization: accuracy vs bits")
    ax.margins(x=0.08, y=0.12)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


# ============================================================================ 6. Pareto
def pareto_front(energy: Sequence[float], accuracy: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats (lower-or-equal energy and higher accuracy).

    Returned in increasing energy; points with a non-finite coordinate are never on the front.
    """
    e = np.asarray(energy, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    ok = np.flatnonzero(np.isfinite(e) & np.isfinite(a))
    order = ok[np.lexsort((-a[ok], e[ok]))]  # energy ascending, then accuracy descending
    front: list[int] = []
    best = -np.inf
    for i in order:
        if a[i] > best:
            front.append(int(i))
            best = a[i]
    return front


def plot_accuracy_vs_energy(rows: pd.DataFrame, path: str | os.PathLike[str],
                            energy_column: str = "energy_snn_pj") -> Path:
    """Accuracy vs energy per inference (log x) for every model x config, Pareto front marked.

    ``rows``: ``summary.csv`` / ``compare.csv`` rows with ``accuracy`` and ``energy_column``
    (``model``, ``hw`` label the points; colour = hardware config, marker = model).
    """
    _require(rows, ["accuracy", energy_column], "accuracy vs energy")
    df = rows.copy()
    df["_model"] = _label(df, "model", "model")
    df["_hw"] = _label(df, "hw", "hw")
    df["_e"] = _num(df[energy_column])
    df["_acc"] = _percent(df["accuracy"])[0]
    df = df[np.isfinite(df["_e"]) & (df["_e"] > 0) & np.isfinite(df["_acc"])].reset_index(drop=True)
    if df.empty:
        raise SnnsimError("accuracy vs energy: no row has both an accuracy and a positive energy",
                          "run snnsim estimate/compare with accuracy measurement")
    div, unit = energy_unit(float(df["_e"].median()))
    e = df["_e"].to_numpy(dtype=float) / div
    acc = df["_acc"].to_numpy(dtype=float)
    hws = _ordered_unique(df["_hw"])
    models = _ordered_unique(df["_model"])
    fig = _figure(7.5, 5.0)
    ax = fig.add_subplot()
    front = pareto_front(e, acc)
    ax.step(e[front], acc[front], where="post", color="0.3", linewidth=1.2, linestyle="--",
            label="Pareto front", zorder=1)
    for i in range(len(df)):
        hw_k = hws.index(df.at[i, "_hw"])
        m_k = models.index(df.at[i, "_model"])
        on = i in front
        ax.scatter(e[i], acc[i], s=70 if on else 40, marker=_MARKERS[m_k % len(_MARKERS)],
                   color=SERIES_COLORS[hw_k % len(SERIES_COLORS)], edgecolor="black" if on else "none",
                   linewidth=1.2, zorder=3)
        # Label the Pareto points only (or every point when few): colour = hw, marker = model
        # already identify the rest, and labels on every point overlap into a smear.
        if on or len(df) <= 8:
            ax.annotate(f"{df.at[i, '_model']} @ {df.at[i, '_hw']}", (e[i], acc[i]), xytext=(6, 4 if i % 2 else -10),
                        textcoords="offset points", fontsize=7, fontweight="bold" if on else "normal")
    ax.set_xscale("log")
    _readable_log(ax.xaxis)
    ax.set_xlabel(f"SNN energy per inference ({unit}, log)" if energy_column == "energy_snn_pj"
                  else f"{energy_column} ({unit}, log)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy vs energy (outlined: Pareto-optimal)")
    ax.margins(x=0.25, y=0.12)
    ax.grid(which="both", alpha=0.25)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.3", linestyle="--", label="Pareto front")]
    handles += [Line2D([], [], marker="o", linestyle="", color=SERIES_COLORS[k % len(SERIES_COLORS)],
                       label=f"hw: {h}") for k, h in enumerate(hws)]
    if len(models) > 1:
        handles += [Line2D([], [], marker=_MARKERS[k % len(_MARKERS)], linestyle="", color="0.4",
                           label=f"model: {m}") for k, m in enumerate(models)]
    ax.legend(handles=handles, fontsize=7.5, loc="best")
    _titled(fig, "", caption_of(rows))
    return _save(fig, path)


# ============================================================================ 7. spatial
def plot_spatial(spatial: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Channels (output width) per layer before and after spatial pruning.

    ``spatial``: rows of ``spatial.csv`` (``layer``, ``channels_before``, ``channels_after``;
    ``params_*``, ``compression``, ``accuracy_*`` optional, taken from the ``total`` row).
    """
    _require(spatial, ["layer", "channels_before", "channels_after"], "spatial pruning")
    df = spatial.copy()
    total = df[df["layer"].astype(str) == "total"]
    per = df[df["layer"].astype(str) != "total"]
    if per.empty:
        raise SnnsimError("spatial pruning: the table has no per-layer rows", "re-run snnsim prune spatial")
    names = list(per["layer"].astype(str))
    before = _num(per["channels_before"]).to_numpy(dtype=float)
    after = _num(per["channels_after"]).to_numpy(dtype=float)
    x = np.arange(len(names))
    fig = _figure(max(6.0, 1.5 + 0.9 * len(names)), 4.6)
    ax = fig.add_subplot()
    ax.bar(x - 0.2, before, 0.38, color="#9ecae1", label="before pruning")
    ax.bar(x + 0.2, after, 0.38, color=SNN_COLOR, label="after pruning")
    for xi, b, a in zip(x, before, after, strict=True):
        ax.annotate(f"{b:.0f}", (xi - 0.2, b), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
        ax.annotate(f"{a:.0f}", (xi + 0.2, a), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
    if np.nanmax(before) / max(np.nanmin(after[after > 0]) if np.any(after > 0) else 1.0, 1.0) > 50:
        ax.set_yscale("log")
        _readable_log(ax.yaxis)
        ax.set_ylabel("channels / neurons per layer (log)")
    else:
        ax.set_ylabel("channels / neurons per layer")
    _tick_labels(ax, names, x)
    ax.set_xlabel("layer")
    ax.margins(y=0.12)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8)
    src = total if len(total) else per
    pb = _num(src["params_before"]).sum() if "params_before" in src.columns else np.nan
    pa = _num(src["params_after"]).sum() if "params_after" in src.columns else np.nan
    title = "Spatial pruning: width per layer"
    if np.isfinite(pb) and np.isfinite(pa) and pa > 0:
        title += f"\nparams {pb:,.0f} → {pa:,.0f} ({pb / pa:.2f}× compression)"
    if len(total) and {"accuracy_before", "accuracy_after"} <= set(total.columns):
        ab, aa = _percent(pd.concat([total["accuracy_before"], total["accuracy_after"]]))[0][[0, 1]]
        if np.isfinite(ab) and np.isfinite(aa):
            title += f", accuracy {ab:.1f}% → {aa:.1f}%"
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


# ============================================================================ PCA curves
def plot_pca_curves(curves: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Unexplained variance (1 - cumulative explained variance) vs components kept, per layer.

    ``curves``: rows of ``pca_curves.csv`` (``layer``, ``k``, ``cumulative_variance``). Both axes
    are log; dotted lines mark the thresholds tau = 0.9, 0.99, 0.999, 0.9999.
    """
    _require(curves, ["layer", "k", "cumulative_variance"], "PCA curves")
    df = curves.copy()
    df["k"] = _num(df["k"])
    floor = 1e-6
    df["_u"] = (1.0 - _num(df["cumulative_variance"])).clip(lower=floor)
    fig = _figure(7.0, 4.6)
    ax = fig.add_subplot()
    names = _ordered_unique(df["layer"].astype(str))
    for k, layer in enumerate(names):
        g = df[df["layer"].astype(str) == layer].sort_values("k")
        ax.plot(g["k"], g["_u"], color=SERIES_COLORS[k % len(SERIES_COLORS)], label=layer, linewidth=1.6)
    for tau in (0.9, 0.99, 0.999, 0.9999):
        ax.axhline(1 - tau, color="0.5", linestyle=":", linewidth=0.9)
        ax.annotate(f"τ = {tau:g}", (0.0, 1 - tau), xycoords=("axes fraction", "data"), xytext=(4, 2),
                    textcoords="offset points", ha="left", fontsize=7, color="0.35")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(floor * 0.7, 2.0)
    _readable_log(ax.xaxis)
    ax.set_xlabel("principal components kept k (log)")
    ax.set_ylabel("unexplained variance 1 − τ (log)")
    ax.set_title("PCA of averaged membrane potentials: variance left vs k")
    ax.grid(which="major", alpha=0.3)
    ax.legend(fontsize=8, title="layer", title_fontsize=8, loc="lower left", ncol=max(1, math.ceil(len(names) / 6)))
    return _save(fig, path)


# ============================================================================ noise
def plot_noise(noise: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Accuracy vs Gaussian input-noise std, SNN vs ANN (error bars where repeats > 1).

    ``noise``: rows of ``noise.csv`` (``noise_std``, ``snn_accuracy``; ``ann_accuracy``,
    ``snn_ci95``/``ann_ci95`` or ``snn_std``/``ann_std``, ``repeats`` optional). The error bars
    are the 95% intervals of the mean over the draws when the ``*_ci95`` columns are present
    (the legend says so), else +- one sd over the draws.
    """
    _require(noise, ["noise_std", "snn_accuracy"], "noise robustness")
    df = noise.copy().assign(noise_std=lambda d: _num(d["noise_std"])).sort_values("noise_std")
    fig = _figure(6.5, 4.2)
    ax = fig.add_subplot()
    x = df["noise_std"].to_numpy(dtype=float)
    use_ci = any(c in df.columns for c in ("snn_ci95", "ann_ci95"))
    for name, col, color, marker in (("SNN", "snn_accuracy", SNN_COLOR, "o"), ("ANN", "ann_accuracy", ANN_COLOR, "s")):
        if col not in df.columns:
            continue
        acc, scaled = _percent(df[col])
        if not np.isfinite(acc).any():
            continue
        err = None
        err_col = f"{name.lower()}_{'ci95' if use_ci else 'std'}"
        if err_col in df.columns:
            err = _num(df[err_col]).to_numpy(dtype=float) * (100.0 if scaled else 1.0)
            err = np.where(np.isfinite(err), err, 0.0)
        ax.errorbar(x, acc, yerr=err, marker=marker, color=color, label=name, linewidth=1.8, capsize=3)
    legend_title = None
    if use_ci:
        k = _num(df["repeats"]).dropna().unique() if "repeats" in df.columns else np.array([])
        draws = f"{int(k[0])} draws" if len(k) == 1 else "the draws"
        legend_title = f"mean and 95% interval over {draws}"
    ax.set_xlabel("Gaussian noise std (normalised input units)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Robustness to input noise: SNN vs ANN")
    ax.margins(y=0.1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=legend_title, title_fontsize=8)
    return _save(fig, path)


__all__ = [
    "COMPONENTS",
    "DPI",
    "energy_unit",
    "pareto_front",
    "plot_accuracy_vs_energy",
    "plot_energy_breakdown",
    "plot_noise",
    "plot_pca_curves",
    "plot_quantization",
    "plot_snn_vs_ann",
    "plot_spatial",
    "plot_spike_rates",
    "plot_temporal",
    "snn_rows",
]
