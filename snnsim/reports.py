"""Run directories: find the tables snnsim commands wrote, merge them, and plot them.

``make_plots`` is behind ``snnsim report`` and every command's ``--plots``. It looks for the CSV
tables the commands write anywhere under a run directory (:data:`TABLE_FILES`), merges tables
of one kind (saying what it merged, and relabelling a model that appears in several runs rather
than dropping it), makes every plot of :mod:`snnsim.plots` it has the tables for, and writes
them to ``RUN_DIR/plots/`` (or ``out_dir``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snnsim.errors import SnnsimError

#: Table file name -> what writes it. Searched recursively under the run directory.
TABLE_FILES: dict[str, str] = {
    "layers.csv": "snnsim estimate (per-layer cost rows)",
    "summary.csv": "snnsim estimate (one row per model x hardware config)",
    "compare.csv": "snnsim compare",
    "spatial.csv": "snnsim prune spatial",
    "pca_curves.csv": "snnsim prune spatial",
    "temporal.csv": "snnsim prune temporal",
    "quantize.csv": "snnsim quantize",
    "noise.csv": "snnsim evaluate",
}
#: Tables describing one experiment each: several of them give several plots (one per file).
_PER_EXPERIMENT = ("spatial.csv", "pca_curves.csv", "temporal.csv", "quantize.csv", "noise.csv")
#: Facets above which the energy breakdown is split into one figure per model.
MAX_FACETS = 9


def find_tables(run_dir: str | Path, note: Callable[[str], None] | None = None) -> dict[str, list[Path]]:
    """Every known table under ``run_dir`` (recursive), by file name; byte-identical copies once,
    each one skipped named to ``note``, as is each table that cannot be read.

    (``snnsim prune temporal`` writes the same temporal.csv to two places, for example.)
    """
    say = note or (lambda _msg: None)
    root = Path(run_dir)
    found: dict[str, list[Path]] = {}
    for name in TABLE_FILES:
        seen: dict[str, Path] = {}
        for path in sorted(root.rglob(name)):
            if not path.is_file():
                continue
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError as exc:
                say(f"skipped table {path}: cannot read it ({exc.strerror or type(exc).__name__})")
                continue
            if digest in seen:
                say(f"used {seen[digest]} once: {path} is a byte-identical copy")
                continue
            seen[digest] = path
            found.setdefault(name, []).append(path)
    return found


def _source(path: Path, root: Path) -> str:
    """The table's directory relative to the run directory ('.' for the root itself)."""
    try:
        rel = path.parent.relative_to(root)
    except ValueError:
        rel = Path(path.parent.name)
    return rel.as_posix() or "."


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return slug or "run"


def _read(path: Path, warn: Callable[[str], None]) -> Any:
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        warn(f"skipped table {path}: cannot read it as CSV ({type(exc).__name__})")
        return None
    if df.empty:
        warn(f"skipped table {path}: no rows")
        return None
    return df


def _combined(paths: list[Path], root: Path, warn: Callable[[str], None]) -> Any:
    """Concatenate tables of one kind, naming the model after its directory where unnamed."""
    import pandas as pd

    frames = []
    for path in paths:
        df = _read(path, warn)
        if df is None:
            continue
        src = _source(path, root)
        if "model" not in df.columns:
            df["model"] = path.parent.name if src != "." else root.resolve().name
        df["model"] = df["model"].fillna(path.parent.name).astype(str)
        df["source"] = src
        frames.append(df)
    return pd.concat(frames, ignore_index=True, sort=False) if frames else None


def merge_runs(rows: Any, say: Callable[[str], None]) -> Any:
    """Merge model x hardware rows from several tables, dropping nothing silently.

    A run's compare.csv repeats its summary.csv row for row: a row repeated within one run
    directory is kept once. A (model, hw) pair found in several run directories is kept from
    every one of them, the model relabelled ``model [run dir]``; ``say`` gets one line naming
    what was merged and relabelled.
    """
    if "hw" not in rows.columns or "source" not in rows.columns:
        return rows
    n_in = len(rows)
    rows = rows.drop_duplicates(subset=["source", "model", "hw"], keep="first").reset_index(drop=True)
    repeated = n_in - len(rows)
    sources = rows.groupby(["model", "hw"], sort=False)["source"].transform("nunique")
    shared = sources > 1
    if shared.any():
        names = sorted(set(rows.loc[shared, "model"]))
        rows.loc[shared, "model"] = rows.loc[shared, "model"] + " [" + rows.loc[shared, "source"] + "]"
        say(f"merged model x hardware rows of {rows['source'].nunique()} run directories; "
            f"{', '.join(names)} appear in several, labelled by run directory")
    if repeated:
        say(f"kept {len(rows)} model x hardware rows once each ({repeated} repeated within a run: "
            "summary.csv and compare.csv hold the same rows)")
    return rows


def make_plots(run_dir: str | Path, out_dir: str | Path | None = None,
               log: Callable[[str], None] | None = None,
               warn: Callable[[str], None] | None = None) -> list[Path]:
    """Make every plot the tables under ``run_dir`` allow; write them to ``out_dir``.

    ``out_dir`` defaults to ``run_dir/plots``. ``log`` gets one line per plot written, ``warn``
    one line per table or plot skipped (and why). Returns the paths written. Raises
    :class:`SnnsimError` if ``run_dir`` is missing, holds no known table, or no plot could be
    made from its tables.
    """
    import pandas as pd

    from snnsim import plots

    root = Path(run_dir)
    say = log or (lambda _msg: None)
    note = warn or (lambda _msg: None)
    if not root.exists():
        raise SnnsimError(f"run directory {str(root)!r} does not exist",
                          "pass the directory the snnsim commands wrote their tables to")
    if not root.is_dir():
        raise SnnsimError(f"{str(root)!r} is not a directory", "pass the run directory, not a file")
    tables = find_tables(root, say)
    if not tables:
        raise SnnsimError(f"no snnsim tables ({', '.join(TABLE_FILES)}) under {str(root)!r}",
                          "run snnsim estimate/compare/prune/quantize/evaluate with their tables there first")
    out = Path(out_dir) if out_dir is not None else root / "plots"
    written: list[Path] = []
    reasons: list[str] = []

    def attempt(what: str, fn: Callable[..., Path], *args: Any, **kwargs: Any) -> None:
        try:
            path = fn(*args, **kwargs)
        except SnnsimError as exc:  # the plot functions name themselves in their messages
            reasons.append(str(exc))
            note(f"skipped {exc}")
            return
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            reasons.append(f"{what}: {type(exc).__name__}: {exc}")
            note(f"skipped {reasons[-1]}")
            return
        written.append(path)
        say(f"wrote {path}")

    # --------------------------------------------------------------- per-layer cost rows
    parts = [df for df in (_combined(tables.get(n, []), root, note) for n in ("compare.csv", "summary.csv"))
             if df is not None]
    caption = plots.caption_of(pd.concat(parts, ignore_index=True, sort=False)) if parts else []
    layers = _combined(tables.get("layers.csv", []), root, note)
    if layers is not None:
        combos = layers[["model", "hw"]].drop_duplicates() if "hw" in layers.columns else layers[["model"]].drop_duplicates()
        if len(combos) <= MAX_FACETS:
            attempt("energy breakdown", plots.plot_energy_breakdown, layers, out / "energy_breakdown.png",
                    caption=caption)
        else:
            for model, g in layers.groupby("model", sort=False):
                attempt(f"energy breakdown of {model}", plots.plot_energy_breakdown, g,
                        out / f"energy_breakdown_{_slug(str(model))}.png", caption=caption)
        attempt("spike rates", plots.plot_spike_rates, layers, out / "spike_rates.png")

    # --------------------------------------------------------------- model x hardware rows
    if parts:
        rows = merge_runs(pd.concat(parts, ignore_index=True, sort=False), say)
        attempt("SNN vs ANN energy", plots.plot_snn_vs_ann, rows, out / "snn_vs_ann.png")
        attempt("accuracy vs energy", plots.plot_accuracy_vs_energy, rows, out / "accuracy_vs_energy.png")

    # --------------------------------------------------------------- compression experiments
    makers: dict[str, tuple[str, Callable[..., Path]]] = {
        "spatial.csv": ("spatial pruning", plots.plot_spatial),
        "pca_curves.csv": ("PCA curves", plots.plot_pca_curves),
        "temporal.csv": ("temporal pruning", plots.plot_temporal),
        "quantize.csv": ("quantization", plots.plot_quantization),
        "noise.csv": ("noise robustness", plots.plot_noise),
    }
    for name in _PER_EXPERIMENT:
        what, fn = makers[name]
        stem = Path(name).stem
        readable = [(p, df) for p in tables.get(name, []) if (df := _read(p, note)) is not None]
        for path, df in readable:
            src = _source(path, root)
            single = len(readable) == 1
            target = out / (f"{stem}.png" if single else f"{stem}_{_slug(src)}.png")
            attempt(what if single else f"{what} ({src})", fn, df, target)

    if not written:
        first = reasons[0] if reasons else ("every table was unreadable; re-run the commands that "
                                            "write them with this snnsim")
        raise SnnsimError(f"no plot could be made from the tables under {str(root)!r}: {first}")
    return written
