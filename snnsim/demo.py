"""``snnsim demo``: the whole pipeline, offline, on scikit-learn's bundled digits.

The demo runs the *same commands a user would type*, in-process, in order, and then reads the
tables they wrote, so every figure in ``summary.md`` is exactly what those commands printed:

1. ``train``: ANN, threshold balancing, hybrid SNN at T=5;
2. ``prune spatial``: PCA of the average accumulated membrane potential, narrower VGG, retrain
   (digits default tau = 0.995, see ``benchmarks/compression_digits.md``);
3. ``prune temporal``: T = 5 -> 4 -> 3 -> 2 -> 1 gradually, plus both controls (direct cut,
   and the ANN converted and trained at T=1);
4. ``quantize``: post-training k-bit weights of the T=2 model (the issue's T <= 2 target);
5. ``evaluate``: Gaussian-noise robustness, SNN vs ANN, same noise draws;
6. ``compare``: unpruned, pruned, temporally pruned and 5-bit models on every shipped
   hardware config, against the *unpruned* ANN (the paper's comparison), memory included and
   compute-only;
7. ``report``: plots; then ``summary.md`` with the headline figures.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from snnsim.captions import comparison_caption, format_ratio
from snnsim.errors import SnnsimError
from snnsim.io import write_text

FINAL_T = 2
QUANT_BITS = 5


@dataclass(frozen=True)
class DemoPlan:
    """Epochs and sizes of one demo run (``fast`` = a smoke run)."""

    ann_epochs: int | None
    snn_epochs: int | None
    retrain_ann_epochs: int | None
    retrain_snn_epochs: int | None
    epochs_per_step: int
    schedule: str
    samples: int
    bits: str
    noise: str
    noise_repeats: int
    poisson_schedule: str  # the Poisson pipeline's temporal schedule (from T=10)

    @classmethod
    def make(cls, fast: bool) -> DemoPlan:
        if fast:
            return cls(ann_epochs=3, snn_epochs=1, retrain_ann_epochs=3, retrain_snn_epochs=1, epochs_per_step=1,
                       schedule="5,2", samples=64, bits="8,5,3", noise="0,0.2,0.4,0.8", noise_repeats=2,
                       poisson_schedule="10,2")
        return cls(ann_epochs=None, snn_epochs=None, retrain_ann_epochs=None, retrain_snn_epochs=None,
                   epochs_per_step=5, schedule="5,4,3,2,1", samples=360, bits="8,7,6,5,4,3,2", noise="0,0.2,0.4,0.8",
                   noise_repeats=NOISE_REPEATS, poisson_schedule="10,6,4,3,2")


def _run(args: list[str], say: Callable[[str], None]) -> None:
    """Run one snnsim command in-process (user errors propagate as SnnsimError)."""
    from snnsim.cli import cli

    say("$ snnsim " + " ".join(args))
    cli.main(args=args, prog_name="snnsim", standalone_mode=False)


#: What a demo run writes into its --out (``force`` removes exactly these, nothing else).
DEMO_ENTRIES = ("models", "spatial", "temporal", "quantize", "noise", "compare", "first_layer", "plots", "poisson",
                "summary.md")


def claim_demo_dir(root: Path, force: bool) -> None:
    """Refuse an --out that holds an earlier demo (unless ``force``: then its entries are
    removed, and only those) or anything else."""
    from snnsim.io import output_dir

    output_dir(root, "--out")
    held = sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []
    if not held:
        return
    foreign = [n for n in held if n not in DEMO_ENTRIES]
    if foreign:
        raise SnnsimError(f"demo output {str(root)!r} holds other files ({', '.join(foreign[:3])})",
                          "choose a new or empty directory with --out")
    if not force:
        raise SnnsimError(f"demo output {str(root)!r} already holds a demo run ({', '.join(held)})",
                          "pass --force to run it again from scratch, or choose another --out")
    for name in held:
        path = root / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


#: ``--encoding`` of the demo: one pipeline, or both side by side (the Poisson one in ``poisson/``).
DEMO_ENCODINGS = ("direct", "poisson", "both")
#: Starting T of each encoding's pipeline. Poisson: a rate code resolves |x| in steps of 1/T,
#: so it starts at T=10 (measured on digits, benchmarks/RESULTS.md: 98.6 % at T=5, 98.9 % at T=10,
#: 98.6 % at T=20 -- digits' pixels are mostly 0 or 1, i.e. -1 or +1 normalised, which a rate code
#: carries exactly); direct input starts at T=5.
START_T = {"direct": 5, "poisson": 10}
#: Noise draws per sigma of the demo's robustness table (--fast: 2).
NOISE_REPEATS = 5


def _pipeline(root: Path, plan: DemoPlan, encoding: str, common: list[str], step: Callable[[str, list[str]], None],
              install_examples: bool) -> dict[str, Path]:
    """Train, prune (spatial, temporal), quantize, evaluate and compare one encoding's models
    into ``root``; returns the models compared, by label."""
    start_t = START_T[encoding]
    models = root / "models"
    models.mkdir(parents=True, exist_ok=True)
    coded = [] if encoding == "direct" else ["--encoding", encoding]
    base = models / "base"
    train_args = ["train", "--arch", "digits", "--dataset", "digits", "--kind", "snn", "--timesteps", str(start_t),
                  "--out", str(base), *coded, *common]
    if plan.ann_epochs is not None:
        train_args += ["--ann-epochs", str(plan.ann_epochs), "--snn-epochs", str(plan.snn_epochs)]
    step(f"train (ANN + hybrid SNN, T={start_t}{', ' + encoding if coded else ''})", train_args)
    ann, snn = base / "ann.pt", base / "snn.pt"

    pruned = models / "pruned.pt"
    spatial_args = ["prune", "spatial", "--model", str(snn), "--out", str(pruned), "--report-dir", str(root / "spatial"), *common]
    if plan.retrain_ann_epochs is not None:
        spatial_args += ["--ann-epochs", str(plan.retrain_ann_epochs), "--snn-epochs", str(plan.retrain_snn_epochs)]
    step("prune spatial (PCA + retrain)", spatial_args)

    temporal_dir = models / "temporal"
    schedule = plan.schedule if encoding == "direct" else plan.poisson_schedule
    controls = ["--compare-direct"] if encoding == "direct" else []
    step("prune temporal (gradual + two controls)" if controls else "prune temporal (gradual)",
         ["prune", "temporal", "--model", str(pruned), "--schedule", schedule, "--epochs-per-step",
          str(plan.epochs_per_step), *controls, "--out", str(temporal_dir), "--report-dir",
          str(root / "temporal"), *common])
    final = temporal_dir / f"snn_T{FINAL_T}.pt"

    quant_dir = models / "quant"
    step("quantize", ["quantize", "--model", str(final), "--bits", plan.bits, "--out", str(quant_dir),
                      "--report-dir", str(root / "quantize"), *common])
    quantized = quant_dir / f"snn_{QUANT_BITS}bit.pt"

    step("evaluate (noise)", ["evaluate", "--model", str(final), "--baseline", str(ann), "--noise-std", plan.noise,
                              "--repeats", str(plan.noise_repeats), "--report-dir", str(root / "noise"), *common])

    named = {f"unpruned_T{start_t}": snn, f"pruned_T{start_t}": pruned, f"pruned_T{FINAL_T}": final,
             f"pruned_T{FINAL_T}_{QUANT_BITS}bit": quantized}
    for label, path in list(named.items()):
        if not path.is_file():
            raise SnnsimError(f"demo step did not produce {str(path)!r}", "see the output above for the failing step")
        link = models / f"{label}.pt"
        if link.resolve() != path.resolve():
            shutil.copyfile(path, link)
        named[label] = link
    compare_args = ["compare", "--all-hw", "--baseline", str(ann), "--samples", str(plan.samples),
                    "--out", str(root / "compare"), "--force", *common]
    for path in named.values():
        compare_args += ["--model", str(path)]
    step("compare (4 models x every shipped config)", compare_args)
    if encoding == "poisson":  # the paper's three first-layer conventions, compute only, on 45nm
        for rule in FIRST_LAYER_TABLE:
            args = ["compare", "--hw", "45nm", "--compute-only", "--first-layer", rule, "--baseline", str(ann),
                    "--samples", str(plan.samples), "--out", str(root / "first_layer" / rule), "--force", *common]
            for path in named.values():
                args += ["--model", str(path)]
            step(f"compare (45nm compute only, first layer {rule})", args)

    step("report (plots)", ["report", str(root), "--out", str(root / "plots")])
    if install_examples:
        install_example_models(named)
    return named


#: The first-layer conventions the Poisson pipeline's compute-only table compares.
FIRST_LAYER_TABLE = ("ac_with_input_rate", "mac_per_timestep", "mac_once")


def run_demo(out: str | os.PathLike[str] = "reports/demo", fast: bool = False, seed: int = 0, device: str = "auto",
             data_dir: str = "data", say: Callable[[str], None] = print, install_examples: bool = False,
             force: bool = False, encoding: str = "direct") -> Path:
    """Run the pipeline into ``out`` and return the path of ``summary.md`` (an ``out`` holding
    an earlier demo is refused unless ``force``, see :func:`claim_demo_dir`). ``encoding``
    (:data:`DEMO_ENCODINGS`): the direct pipeline, the Poisson one, or both (Poisson in
    ``out/poisson``, and ``summary.md`` compares them)."""
    if encoding not in DEMO_ENCODINGS:
        raise SnnsimError(f"unknown demo encoding {encoding!r}", f"choose one of {', '.join(DEMO_ENCODINGS)}")
    plan = DemoPlan.make(fast)
    root = Path(out)
    claim_demo_dir(root, force)
    common = ["--seed", str(seed), "--device", device, "--data-dir", data_dir]
    runs = ["direct", "poisson"] if encoding == "both" else [encoding]
    summaries: dict[str, Path] = {}
    for enc in runs:
        where = root / "poisson" if encoding == "both" and enc == "poisson" else root
        times: dict[str, float] = {}

        def step(name: str, args: list[str], times: dict[str, float] = times) -> None:
            t0 = time.perf_counter()
            _run(args, say)
            times[name] = time.perf_counter() - t0

        named = _pipeline(where, plan, enc, common, step, install_examples and enc == "direct")
        summaries[enc] = write_summary(where, named, times, fast, enc)
    if encoding == "both":
        summaries["direct"] = append_comparison(root, root / "poisson")
    summary = summaries[runs[0]]
    say(f"demo done: {summary}")
    return summary


def install_example_models(named: dict[str, Path]) -> list[Path]:
    """Copy the demo's final model into the package (``snnsim/examples``) for default use."""
    import snnsim

    ex = Path(snnsim.__file__).resolve().parent / "examples"
    ex.mkdir(exist_ok=True)
    out = []
    for label, src in named.items():
        if label != f"pruned_T{FINAL_T}":  # ship only the final float model (a few hundred KB)
            continue
        dest = ex / f"digits_{label}.pt"
        shutil.copyfile(src, dest)
        out.append(dest)
    return out


# ---------------------------------------------------------------------------- summary.md
def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def _pct(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "-"
    if f != f:
        return "-"
    return f"{100 * f:.1f}%" if f <= 1.0 else f"{f:.1f}%"


def _uj(pj: float) -> str:
    return f"{pj / 1e6:.3g} µJ"


def _cell(value: Any) -> str:
    """A table cell: floats to 4 significant digits, checkpoint paths to their file name."""
    if isinstance(value, float):
        if value != value:
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    if isinstance(value, str) and value.endswith(".pt"):
        return Path(value).name
    return str(value)


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_cell(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def write_summary(root: Path, named: dict[str, Path], times: dict[str, float], fast: bool,
                  encoding: str = "direct") -> Path:
    """Headline figures from the tables the commands wrote."""
    spatial = _read(root / "spatial" / "spatial.csv")
    temporal = _read(root / "temporal" / "temporal.csv")
    quant = _read(root / "quantize" / "quantize.csv")
    noise = _read(root / "noise" / "noise.csv")
    compare = _read(root / "compare" / "compare.csv")
    coded = "" if encoding == "direct" else f" ({encoding} input encoding)"
    parts = [f"# snnsim demo: spatio-temporal pruning and quantization on digits{coded}", ""]
    parts.append("Offline, on scikit-learn's bundled 8x8 handwritten digits (real data; CIFAR needs a download). "
                 "Every figure below is read from the CSV tables the individual commands wrote "
                 f"(`{root}/*/*.csv`); the plots are in `{root}/plots/`."
                 + (" **Fast smoke run (`--fast`): few epochs, figures are not representative.**" if fast else ""))
    parts.append("")
    parts.append("## Pipeline stages")
    parts.append(_md_table(pd.DataFrame([{"step": k, "wall time": f"{v:.1f} s"} for k, v in times.items()])))
    parts.append("")
    sections = (("Spatial pruning (PCA of the average accumulated membrane potential)", spatial),
                ("Temporal pruning (gradual vs the direct cut and the ANN trained at the final T)", temporal),
                ("Post-training weight quantization", quant),
                ("Gaussian-noise robustness (same draws for SNN and ANN)", noise))
    for title, table in sections:
        if table is not None:
            parts.extend([f"## {title}", _md_table(table.fillna("")), ""])
    if compare is not None:
        parts.append("## Energy and latency per hardware config (baseline: the unpruned ANN)")
        view = compare[["model", "hw", "accuracy", "timesteps", "params", "spikes_per_inference",
                        "energy_snn_pj", "energy_ann_pj", "energy_ann_over_snn", "energy_compute_ann_over_snn", "latency_s"]].copy()
        view["accuracy"] = view["accuracy"].map(_pct)
        view["spikes_per_inference"] = view["spikes_per_inference"].map(lambda v: f"{v:,.0f}")
        view["energy_snn_pj"] = view["energy_snn_pj"].map(_uj)
        view["energy_ann_pj"] = view["energy_ann_pj"].map(_uj)
        view["energy_ann_over_snn"] = view["energy_ann_over_snn"].map(format_ratio)
        view["energy_compute_ann_over_snn"] = view["energy_compute_ann_over_snn"].map(format_ratio)
        view["latency_s"] = view["latency_s"].map(lambda v: f"{v * 1e6:,.1f} µs")
        view = view.rename(columns={"energy_snn_pj": "E_SNN", "energy_ann_pj": "E_ANN (unpruned)",
                                    "energy_ann_over_snn": "ANN/SNN (with memory)", "energy_compute_ann_over_snn": "ANN/SNN (compute only)",
                                    "latency_s": "latency", "timesteps": "T"})
        parts.extend(f"- {line}" for line in comparison_caption(compare))
        parts.append("")
        parts.append(_md_table(view))
        parts.append("")
        parts.extend(_headlines(compare, spatial))
    rules = first_layer_table(root)
    if rules is not None:
        parts.extend(["", "## First-layer conventions (45nm, compute only, ANN/SNN energy vs the unpruned ANN)", "",
                      "How the first layer, driven by the input spikes, is charged (paper.md sec. 2.13): "
                      "ac_with_input_rate = recorded input spikes x fan-out as ACs; mac_per_timestep / mac_once = "
                      "every connection a MAC, at each timestep / once.", "", _md_table(rules)])
    text = "\n".join(parts) + "\n"
    return write_text(text, root / "summary.md")


def first_layer_table(root: Path) -> pd.DataFrame | None:
    """Compute-only ANN/SNN energy ratios per model and first-layer convention (the Poisson
    pipeline's ``first_layer/<rule>/compare.csv``), or None where there are none."""
    cols: dict[str, pd.Series] = {}
    for rule in FIRST_LAYER_TABLE:
        table = _read(root / "first_layer" / rule / "compare.csv")
        if table is not None:
            cols[rule] = table.set_index("model")["energy_ann_over_snn"]
    if not cols:
        return None
    out = pd.DataFrame(cols)
    out.index.name = "model"
    return out.reset_index().map(lambda v: format_ratio(v) if isinstance(v, float) else v)


def append_comparison(root: Path, poisson_root: Path) -> Path:
    """Add a "direct vs Poisson" section to ``root/summary.md``: accuracy, spikes and the
    compute-only 45nm ratio of each pipeline's models, and the noise tables side by side."""
    parts = [(root / "summary.md").read_text(encoding="utf-8").rstrip(), "", "## Direct vs Poisson input encoding", "",
             f"The Poisson pipeline's own summary: `{poisson_root / 'summary.md'}`. Both are compared with their own "
             "unpruned ANN (the same digits VGG, trained with the same seed).", ""]
    rows = []
    for enc, where in (("direct", root), ("poisson", poisson_root)):
        compare = _read(where / "compare" / "compare.csv")
        if compare is None:
            continue
        hw = "45nm" if (compare["hw"] == "45nm").any() else compare["hw"].iloc[0]
        for _, r in compare[compare["hw"] == hw].iterrows():
            rows.append({"encoding": enc, "model": r["model"], "T": int(r["timesteps"]), "accuracy": _pct(r["accuracy"]),
                         "spikes": f"{r['spikes_per_inference']:,.0f}", f"{r['hw']} ANN/SNN (compute only)":
                         format_ratio(r["energy_compute_ann_over_snn"]), "first layer": r.get("first_layer", "")})
    if rows:
        parts.extend([_md_table(pd.DataFrame(rows)), ""])
    noise = {enc: _read(where / "noise" / "noise.csv") for enc, where in (("direct", root), ("poisson", poisson_root))}
    if all(v is not None for v in noise.values()):
        table = pd.DataFrame({"noise_std": noise["direct"]["noise_std"]})
        for enc, df in noise.items():
            ci = df["difference_ci95"] if "difference_ci95" in df.columns else None
            table[f"{enc} SNN"] = df["snn_accuracy"].map(_pct)
            table[f"{enc} ANN"] = df["ann_accuracy"].map(_pct)
            table[f"{enc} SNN - ANN (points)"] = [
                f"{100 * d:+.2f}" + ("" if ci is None else f" ± {100 * c:.2f}") for d, c in
                zip(df["difference"], ci if ci is not None else [0.0] * len(df), strict=True)]
        parts.extend(["Gaussian noise on the normalised input, final T=2 models, mean over the draws and the 95% "
                      "interval of the paired difference (same draws for SNN and ANN):", "", _md_table(table), ""])
    return write_text("\n".join(parts) + "\n", root / "summary.md")


def _headlines(compare: pd.DataFrame, spatial: pd.DataFrame | None) -> list[str]:
    out = ["## Headline figures", ""]
    first = compare["model"].iloc[0]
    models = list(dict.fromkeys(compare.sort_values("params", ascending=False)["model"]))
    base_label = next((m for m in models if m.startswith("unpruned")), models[0] if models else first)
    final_label = next((m for m in models if m.endswith("bit")), models[-1])
    rows = compare.set_index(["model", "hw"])
    base = compare[compare["model"] == base_label].iloc[0]
    fin = compare[compare["model"] == final_label].iloc[0]
    out.append(f"- Model size: {int(base['params']):,} -> {int(fin['params']):,} weights "
               f"({base['params'] / max(1, fin['params']):.1f}X compression by spatial pruning).")
    out.append(f"- Timesteps: {int(base['timesteps'])} -> {int(fin['timesteps'])} "
               f"({base['timesteps'] / max(1, fin['timesteps']):.1f}X lower latency in timesteps).")
    out.append(f"- Spikes per inference: {base['spikes_per_inference']:,.0f} -> {fin['spikes_per_inference']:,.0f}.")
    out.append(f"- Accuracy: {_pct(base['accuracy'])} (unpruned SNN, T={int(base['timesteps'])}) -> "
               f"{_pct(fin['accuracy'])} ({final_label}).")
    for hw in dict.fromkeys(compare["hw"]):
        if (final_label, hw) in rows.index:
            r = rows.loc[(final_label, hw)]
            out.append(f"- {hw}: {final_label} uses {_uj(r['energy_snn_pj'])} vs {_uj(r['energy_ann_pj'])} for the unpruned ANN: "
                       f"{format_ratio(r['energy_ann_over_snn'])} with memory, {format_ratio(r['energy_compute_ann_over_snn'])} compute-only.")
    out.append("")
    out.append("These are this run's measurements on digits, not the paper's CIFAR figures (the paper reports "
               "10-14X compression and 8-14X lower compute energy on CIFAR VGGs [abstract]).")
    return out
