"""``snnsim prune spatial|temporal``, ``snnsim quantize``, ``snnsim evaluate``.

Thin CLI over :mod:`snnsim.compression` and :mod:`snnsim.robustness`: each command loads a
checkpoint, rebuilds its data set from the checkpoint's ``dataset_info``, runs, prints its table,
writes the table as CSV under ``reports/<command>-<model stem>/`` (or ``--report-dir``), and
saves checkpoints that reload through :func:`snnsim.load_model`. Training hyper-parameters not
given on the command line are taken from the configs recorded in the input model's provenance
(what ``snnsim train`` used), so a retrained pruned network is trained like its parent.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from snnsim.commands.common import (
    BATCH_SIZE,
    EPOCHS,
    LEARNING_RATE,
    TIMESTEPS,
    FiniteFloat,
    apply_encoding,
    data_dir_option,
    device_option,
    encoding_option,
    parse_float_list,
    parse_int_list,
    progress_options,
    seed_option,
)
from snnsim.compression.spatial import ACTIVATION_MODES
from snnsim.errors import SnnsimError
from snnsim.limits import MAX_EPOCHS, MAX_NOISE_STD, MAX_SAMPLES, MAX_TIMESTEPS, MAX_WIDTH
from snnsim.training import LR_SCHEDULES, OPTIMIZERS

#: --retrain of `prune spatial`: the hybrid pipeline again (paper.md §2.9), or the SNN alone.
RETRAIN_MODES = ("hybrid", "snn")
# Used only when the input model's provenance records no training config.
FALLBACK_ANN = {"epochs": 20, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0, "lr_step": 0,
                "lr_gamma": 0.5, "batch_size": 64}
# Fine-tuning lr of `prune temporal` per data set when --lr is not given (else the model's SNN lr).
# digits: measured (benchmarks/compression_digits.md §2): Adam at 1e-4 (the digits SNN-training
# lr) left T=2 at 91 % without rescaling (10 epochs per step) and T=1 at 91 % with it (3 epochs
# per step, constant lr); 1e-3 reaches 96-98 %. CIFAR keeps the model's lr (IIR-SNN: 1e-4 per stage, paper.md §2.10).
TEMPORAL_LR: dict[str, float] = {"digits": 1e-3}
FALLBACK_SNN = {"epochs": 10, "lr": 1e-4, "optimizer": "adam", "weight_decay": 0.0, "lr_step": 0,
                "lr_gamma": 0.5, "batch_size": 64}


# ============================================================================ helpers
def report_dir_option(f: Any) -> Any:
    return click.option("--report-dir", type=click.Path(file_okay=False), default=None,
                        help="Where the CSV tables go [default: reports/<command>-<model stem>].")(f)


def batch_size_option(f: Any) -> Any:
    return click.option("--batch-size", type=BATCH_SIZE, default=None,
                        help="Mini-batch size [default: the model's training batch size, else 64].")(f)


def _command_line() -> str:
    return " ".join(["snnsim", *sys.argv[1:]])


def _load(path: str, want_snn: bool = False, encoding: str | None = None) -> Any:
    from snnsim.checkpoint import load_model

    model = apply_encoding(load_model(path), encoding)
    if want_snn and model.kind != "snn":
        raise SnnsimError(f"{path!r} is an ANN checkpoint; this command needs an SNN",
                          "pass the snn.pt written by `snnsim train --kind snn`")
    if not model.dataset_info.get("name"):
        raise SnnsimError(f"{path!r} records no data set", "retrain it with this snnsim (`snnsim train`)")
    return model


def _bundle(model: Any, data_dir: str, seed: int, augment: bool = True) -> Any:
    """The data set the model was trained on, rebuilt from its ``dataset_info``."""
    from snnsim.data import load_dataset, make_synthetic

    info = model.dataset_info
    name = str(info["name"])
    if name == "synthetic":
        bundle = make_synthetic(int(info.get("train_size", 512)), int(info.get("test_size", 256)),
                                tuple(info.get("input_shape") or model.input_shape),
                                int(info.get("num_classes") or model.num_classes),
                                int(info.get("seed", 0)), float(info.get("noise", 0.25)))
    else:
        bundle = load_dataset(name, data_dir=data_dir, seed=seed, augment=augment)
    if tuple(bundle.input_shape) != tuple(model.input_shape) or bundle.num_classes != model.num_classes:
        raise SnnsimError(f"data set {name!r} has input {list(bundle.input_shape)} / {bundle.num_classes} classes, "
                          f"the model expects {list(model.input_shape)} / {model.num_classes}",
                          "pass the model trained on this data set")
    return bundle


def _report_dir(report_dir: str | None, command: str, model_path: str) -> Path:
    return Path(report_dir) if report_dir else Path("reports") / f"{command}-{Path(model_path).stem}"


def _print_table(df: Any, title: str) -> None:
    click.echo(f"\n{title}")
    click.echo(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def _setup(seed: int, device: str) -> Any:
    from snnsim.device import resolve_device, seed_everything

    dev = resolve_device(device)
    seed_everything(seed)
    return dev


def _recorded_config(model: Any, stage: str, model_path: str | None = None) -> dict[str, Any]:
    """The training config recorded in ``model`` (stage 'snn') or in its parent ANN ('ann')."""
    prov = model.provenance or {}
    if stage == "snn":
        return dict(prov.get("config") or {})
    ann = _find_ann(model, model_path)
    return dict((ann.provenance or {}).get("config") or {}) if ann is not None else {}


def _train_config(recorded: dict[str, Any], fallback: dict[str, Any], device: str, seed: int,
                  **overrides: Any) -> Any:
    from snnsim.training import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    base = {**fallback, **{k: v for k, v in recorded.items() if k in fields}}
    base.update({k: v for k, v in overrides.items() if v is not None})
    base.update(device=device, seed=seed, progress=True)
    cfg = TrainConfig(**{k: v for k, v in base.items() if k in fields})
    cfg.validate()
    return cfg


def _weight_shapes(model: Any) -> list[tuple[int, ...]]:
    """Every layer's weight shape: equal lists mean the same network structure."""
    return [layer.weight_shape() for layer in model.layer_infos]


def _pruned_arch(model: Any, model_path: str, widths: list[int]) -> tuple[Any, list[int], list[int]]:
    """The architecture to retrain with ``widths`` (one per LIF / IF population, in order):
    ``(arch, widths before, widths after)``. A VGG spec gets new widths (:func:`pruned_spec`);
    a graph is pruned as its ANN was built (batch norm included, from the ANN named in the
    model's provenance where it exists; :func:`pruned_graph`), residual groups sharing the
    largest width of the group."""
    from snnsim.compression.spatial import group_widths, pruned_graph, pruned_spec

    before = [p.shape[0] for p in model.populations if p.spiking]
    if model.spec is not None:
        spec = pruned_spec(model.spec, widths)
        return spec, model.spec.widths(), spec.widths()
    names = [p.name for p in model.populations if p.spiking]
    if len(widths) != len(names):
        raise SnnsimError(f"--widths has {len(widths)} entries, the model has {len(names)} LIF / IF populations",
                          f"give one width per population ({', '.join(names)})")
    ann = _find_ann(model, model_path)
    graph = ann.graph if ann is not None else model.graph
    if ann is None:
        click.echo("note: the model's ANN is not found; the pruned network is retrained from the SNN's graph "
                   "(batch norm folded into conv biases)", err=True)
    chosen = group_widths(graph, names, widths)
    pruned = pruned_graph(graph, chosen)
    return pruned, before, [chosen[n] for n in names]


def _find_ann(model: Any, model_path: str | None) -> Any:
    """The ANN the SNN was converted from, if its provenance names an existing ANN checkpoint.

    The ANN must have the SNN's architecture: a same-named ``ann.pt`` beside the model that
    belongs to another network (e.g. the unpruned parent) is not taken.
    """
    from snnsim.checkpoint import load_model

    prov = model.provenance or {}
    for key in ("ann", "parent"):
        ref = prov.get(key)
        if not isinstance(ref, str) or not ref.endswith(".pt"):
            continue
        candidates = [Path(ref)]
        if model_path is not None:
            candidates.append(Path(model_path).parent / Path(ref).name)
        for cand in candidates:
            if cand.is_file():
                try:
                    ann = load_model(cand)
                except SnnsimError:
                    continue
                if ann.kind == "ann" and _weight_shapes(ann) == _weight_shapes(model):
                    ann.provenance.setdefault("path", str(cand))
                    return ann
    return None


# ============================================================================ prune
@click.group()
def prune() -> None:
    """Spatial (PCA of averaged membrane potentials) and temporal (fewer timesteps) pruning."""


@prune.command("spatial")
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="Trained SNN checkpoint (snn.pt).")
@click.option("--variance", type=FiniteFloat(0.0, 1.0, low_open=True), default=None,
              help="Explained-variance threshold tau per layer [default: 0.999 (Garg et al. as recalled, [INF]); 0.995 for digits, measured].")
@click.option("--samples", type=click.IntRange(2, MAX_SAMPLES), default=None,
              help="Training images for the PCA [default: max(2048, 2 x widest FC), capped at the training set].")
@click.option("--activation", type=click.Choice(ACTIVATION_MODES),
              default="potential", show_default=True,
              help="Tensor averaged over T: u before reset, u after reset, or the input current W x.")
@click.option("--widths", default=None, help="Skip the PCA and use these widths (convs then hidden FCs), e.g. 16,16,32,32,64 [default: widths from the PCA].")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to save the pruned, retrained SNN.")
@click.option("--retrain", type=click.Choice(RETRAIN_MODES), default="hybrid", show_default=True,
              help="hybrid: ANN from scratch -> convert -> SNN (paper.md §2.9); snn: SNN from scratch.")
@click.option("--ann-epochs", type=EPOCHS, default=None, help="ANN epochs [default: the parent's].")
@click.option("--snn-epochs", type=EPOCHS, default=None, help="SNN epochs [default: the parent's].")
@click.option("--ann-lr", type=LEARNING_RATE, default=None, help="ANN learning rate [default: the parent's].")
@click.option("--snn-lr", type=LEARNING_RATE, default=None, help="SNN learning rate [default: the parent's].")
@batch_size_option
@click.option("--dry-run", is_flag=True, help="Only run the PCA and print the widths; no retraining.")
@click.option("--resume", is_flag=True, help="Continue an interrupted retraining (files in <out stem>_retrain/).")
@report_dir_option
@encoding_option
@progress_options
@data_dir_option
@device_option
@seed_option
def prune_spatial(model_path: str, variance: float | None, samples: int | None, activation: str,
                  widths: str | None, out: str, retrain: str, ann_epochs: int | None,
                  snn_epochs: int | None, ann_lr: float | None, snn_lr: float | None,
                  batch_size: int | None, dry_run: bool, resume: bool, report_dir: str | None,
                  encoding: str | None, data_dir: str, device: str, seed: int) -> None:
    """PCA of each layer's averaged membrane potential -> narrower SNN, retrained and saved.

    Writes spatial.csv (per layer: channels, parameters, MACs and test-set spikes per inference
    before/after, plus a total row with the accuracies), pca.csv (k at several thresholds) and
    pca_curves.csv (the cumulative explained-variance curve of every layer).
    """
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader, Subset

    from snnsim.checkpoint import save_model
    from snnsim.compression.spatial import (
        analyze_spatial,
        default_samples,
        default_variance,
        measure,
        spatial_table,
    )
    from snnsim.graph.schedule import fold_structure
    from snnsim.io import write_csv
    from snnsim.models import build_model, describe_arch, graph_of

    if variance is not None and not (0.0 < variance <= 1.0):
        raise SnnsimError(f"--variance must be in (0, 1], got {variance}", "use e.g. 0.999")
    dev = _setup(seed, device)
    model = _load(model_path, want_snn=True, encoding=encoding)
    if variance is None:
        variance = default_variance(model.dataset_info.get("name"))
    rdir = _report_dir(report_dir, "prune-spatial", model_path)
    snn_rec = _recorded_config(model, "snn")
    bs = batch_size or int(snn_rec.get("batch_size") or 64)
    pca_bundle = _bundle(model, data_dir, seed, augment=False)

    # ------------------------------------------------------------------ PCA (or given widths)
    analysis = None
    if widths is not None:
        new_widths = parse_int_list(widths, "--widths", 1, MAX_WIDTH)
    else:
        n_train = len(pca_bundle.train)  # type: ignore[arg-type]
        n = min(samples or default_samples(n_train, model), n_train)
        order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))[:n].tolist()
        loader = DataLoader(Subset(pca_bundle.train, order), batch_size=max(bs, 128), shuffle=False)
        click.echo(f"PCA of the {activation} averaged over T={model.timesteps} on {n} training images, tau={variance}")
        analysis = analyze_spatial(model, loader, variance, activation, dev, n)
        for w in analysis.warnings:
            click.echo(f"warning: {w}", err=True)
        new_widths = analysis.widths_after
        pca_df = analysis.table()
        _print_table(pca_df, "Significant dimensions per layer (k = at --variance)")
        write_csv(pca_df, rdir / "pca.csv")
        curves = pd.DataFrame([{"layer": name, "k": j + 1, "cumulative_variance": float(v)}
                               for name, c in zip(analysis.layer_names, analysis.curves, strict=True)
                               for j, v in enumerate(c)])
        write_csv(curves, rdir / "pca_curves.csv")
    spec, widths_before, widths_after = _pruned_arch(model, model_path, new_widths)
    params_after = fold_structure(graph_of(spec)).weight_count()  # the weights its SNN will have, nothing built
    click.echo(f"\nwidths {widths_before} -> {widths_after}; parameters "
               f"{model.param_count():,} -> {params_after:,} "
               f"({model.param_count() / params_after:.2f}X)")
    if dry_run:
        click.echo(f"dry run: nothing retrained or saved; tables in {rdir}")
        return

    # ------------------------------------------------------------------ retrain
    from snnsim.data import make_loaders
    from snnsim.training import hybrid_train, train_snn

    bundle = _bundle(model, data_dir, seed, augment=True)
    _, test_loader = make_loaders(bundle, bs, seed)
    before = measure(model, test_loader, dev, desc="unpruned on test")
    snn_cfg = _train_config(snn_rec, FALLBACK_SNN, device, seed, epochs=snn_epochs, lr=snn_lr, batch_size=batch_size)
    conv = dict((model.provenance or {}).get("conversion") or {})
    neuron_leaks = [model.leak(p.name).detach().reshape(-1) for p in model.populations if p.spiking]
    leak = float(conv.get("leak", float(torch.cat(neuron_leaks).mean()) if neuron_leaks else 1.0))
    work = Path(out).with_name(f"{Path(out).stem}_retrain")
    if retrain == "hybrid":
        ann_cfg = _train_config(_recorded_config(model, "ann", model_path), FALLBACK_ANN, device, seed,
                                epochs=ann_epochs, lr=ann_lr, batch_size=batch_size)
        click.echo(f"retraining {describe_arch(spec)} (hybrid: ANN {ann_cfg.epochs} epochs -> convert -> "
                   f"SNN {snn_cfg.epochs} epochs at T={model.timesteps}); work files in {work}")
        ann, pruned, _ = hybrid_train(spec, bundle, ann_cfg, snn_cfg, model.timesteps,
                                      percentile=float(conv.get("percentile", 99.9)),
                                      scale=float(conv.get("scale", 1.0)), leak=leak, out_dir=work,
                                      resume=resume, command=_command_line(), encoding=model.encoding)
        pruned.provenance["ann"] = str(work / "ann.pt")
    else:
        click.echo(f"retraining {describe_arch(spec)} (SNN from scratch, {snn_cfg.epochs} epochs at T={model.timesteps})")
        pruned = build_model(spec, "snn", model.timesteps, leak=leak, seed=seed)
        pruned.set_encoding(model.encoding)
        pruned.dataset_info = bundle.info()
        pruned.provenance = {"command": _command_line(), "seed": seed, "stage": "snn",
                             "config": dataclasses.asdict(snn_cfg)}
        train_loader, _ = make_loaders(bundle, snn_cfg.batch_size, seed)
        train_snn(pruned, train_loader, test_loader, snn_cfg, model.timesteps,
                  checkpoint=work / "snn_last.pt", resume=resume)
    after = measure(pruned, test_loader, dev, desc="pruned on test")
    pruned.provenance.update({
        "command": _command_line(), "seed": seed, "accuracy": after.accuracy,
        "source_model": str(model_path),
        "spatial": {"variance": variance if analysis else None, "activation": activation,
                    "samples": analysis.samples if analysis else None, "retrain": retrain,
                    "widths_before": widths_before, "widths_after": widths_after,
                    "given_widths": widths is not None},
    })
    pruned.provenance.pop("path", None)
    save_model(pruned, out)
    table = spatial_table(model, pruned, before, after)
    _print_table(table, "Spatial pruning (spikes per inference on the test set, all timesteps)")
    write_csv(table, rdir / "spatial.csv")
    click.echo(f"\naccuracy {before.accuracy:.2%} -> {after.accuracy:.2%}; spikes/inference "
               f"{before.total_spikes:,.0f} -> {after.total_spikes:,.0f}; saved {out}; tables in {rdir}")


@prune.command("temporal")
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="Trained SNN checkpoint (e.g. the spatially pruned one).")
@click.option("--schedule", default="5,4,3,2,1", show_default=True,
              help="Strictly decreasing T values; the first at or below the model's T.")
@click.option("--epochs-per-step", type=click.IntRange(1, MAX_EPOCHS), default=5, show_default=True,
              help="Fine-tuning epochs at every new T.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory for snn_T{t}.pt per stage (direct_T{t}.pt / from_ann_T{t}.pt for the controls).")
@click.option("--direct", "mode", flag_value="direct", help="Run only the direct cut to the final T (same total epochs).")
@click.option("--compare-direct", "mode", flag_value="both",
              help="Run the gradual schedule and both controls: the direct cut, and (when the parent ANN is found) "
                   "conversion of the ANN at the final T trained there directly.")
@click.option("--gradual", "mode", flag_value="gradual", default=True, help="Run only the gradual schedule (default).")
@click.option("--threshold-rescale", default="ratio", show_default=True,
              help="When entering each stage multiply all thresholds by T_new/T_prev ('ratio', measured best on digits) or by a number (1 = off).")
@click.option("--lr", type=LEARNING_RATE, default=None,
              help="Fine-tuning learning rate [default: 1e-3 on digits (measured), else the model's SNN lr, else 1e-4].")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=None, help="[default: the model's].")
@click.option("--lr-step", type=EPOCHS, default=None, help="StepLR period in epochs within a stage (0 = off) [default: the model's].")
@click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES), default="cosine", show_default=True,
              help="Per stage: 'step' (StepLR via --lr-step) or 'cosine' (anneal to 0 within every stage).")
@batch_size_option
@report_dir_option
@encoding_option
@progress_options
@data_dir_option
@device_option
@seed_option
def prune_temporal(model_path: str, schedule: str, epochs_per_step: int, out: str, mode: str,
                   threshold_rescale: str, lr: float | None, optimizer: str | None,
                   lr_step: int | None, lr_schedule: str, batch_size: int | None, report_dir: str | None,
                   encoding: str | None, data_dir: str, device: str, seed: int) -> None:
    """Gradually reduce the timesteps, fine-tuning at each T from the previous stage's state.

    Writes temporal.csv (schedule, T, epochs, accuracy right after the cut and after
    fine-tuning, spikes per inference, mean threshold, checkpoint) to the report dir and to --out.
    """
    import pandas as pd

    from snnsim.compression.temporal import (
        direct_plan,
        from_ann_epochs,
        parse_rescale,
        plan_schedule,
        train_from_ann,
    )
    from snnsim.compression.temporal import prune_temporal as run_plan
    from snnsim.data import make_loaders
    from snnsim.io import write_csv

    dev = _setup(seed, device)
    model = _load(model_path, want_snn=True, encoding=encoding)
    stages = plan_schedule(parse_int_list(schedule, "--schedule", 1, MAX_TIMESTEPS), model.timesteps, epochs_per_step)
    rescale = parse_rescale(threshold_rescale)
    if lr is None:
        lr = TEMPORAL_LR.get(str((model.dataset_info or {}).get("name", "")))
    snn_rec = _recorded_config(model, "snn")
    cfg = _train_config(snn_rec, FALLBACK_SNN, device, seed, epochs=epochs_per_step,
                        lr=lr, optimizer=optimizer, lr_step=lr_step, lr_schedule=lr_schedule,
                        batch_size=batch_size)
    bundle = _bundle(model, data_dir, seed, augment=True)
    train_loader, test_loader = make_loaders(bundle, cfg.batch_size, seed)
    model.provenance["source_model"] = str(model_path)
    rows: list[dict[str, Any]] = []
    runs = {"gradual": ["gradual"], "direct": ["direct"], "both": ["gradual", "direct"]}[mode]
    for label in runs:
        plan = stages if label == "gradual" else direct_plan(stages)
        click.echo(f"\n{label}: " + " -> ".join(f"T={s.timesteps} ({s.epochs} ep)" for s in plan)
                   + f", lr {cfg.lr:g}, {cfg.optimizer}")
        _, stage_rows = run_plan(model, plan, train_loader, test_loader, cfg, out_dir=out, label=label,
                                 threshold_rescale=rescale,
                                 file_pattern="snn_T{t}.pt" if label == "gradual" else "direct_T{t}.pt",
                                 device=dev)
        rows.extend(stage_rows)
    final_t = stages[-1].timesteps
    if mode == "both":
        ann = _find_ann(model, model_path)
        conversion = (model.provenance or {}).get("conversion")
        if ann is None or not isinstance(conversion, dict):
            click.echo("\nfrom-ann control skipped: the model's provenance names no readable parent ANN "
                       "or conversion record (models from `snnsim train` / `prune spatial` have both)")
        else:
            epochs = from_ann_epochs(int(snn_rec.get("epochs", 0)), stages)
            click.echo(f"\nfrom-ann: convert {ann.provenance.get('path', 'the parent ANN')} at T={final_t} "
                       f"and train {epochs} epochs there")
            ann.set_encoding(model.encoding)  # the control converts to the same encoding
            _, row = train_from_ann(ann.to(dev), final_t, conversion, epochs, train_loader, test_loader, cfg,
                                    out_path=Path(out) / f"from_ann_T{final_t}.pt", device=dev)
            rows.append(row)
    table = pd.DataFrame(rows)
    rdir = _report_dir(report_dir, "prune-temporal", model_path)
    _print_table(table.drop(columns=["checkpoint"]), "Temporal pruning (test set)")
    write_csv(table, rdir / "temporal.csv")
    write_csv(table, Path(out) / "temporal.csv")
    if mode == "both":
        fin = table[table["timesteps"] == final_t].groupby("schedule")["accuracy"].last()
        others = [f"{name} {fin[name]:.2%} ({(fin['gradual'] - fin[name]) * 100:+.2f} points)"
                  for name in ("direct", "from-ann") if name in fin.index]
        click.echo(f"\nat T={final_t}: gradual {fin['gradual']:.2%} vs " + ", ".join(others))
    click.echo(f"checkpoints in {out}; table in {rdir / 'temporal.csv'}")


# ============================================================================ quantize
@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False), help="Model checkpoint.")
@click.option("--bits", default="8,7,6,5,4,3,2", show_default=True,
              help="Weight bit widths, 2..24 (the float model, 32, is always the reference row).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for <kind>_{k}bit.pt.")
@batch_size_option
@report_dir_option
@progress_options
@data_dir_option
@device_option
@seed_option
def quantize(model_path: str, bits: str, out: str, batch_size: int | None, report_dir: str | None,
             data_dir: str, device: str, seed: int) -> None:
    """Post-training uniform symmetric per-layer k-bit weight quantization (thresholds stay float).

    Writes quantize.csv: bits, accuracy, accuracy drop vs float, spikes per inference, checkpoint.
    """
    import pandas as pd

    from snnsim.checkpoint import save_model
    from snnsim.compression.quantize import (
        FLOAT_BITS,
        SCHEME,
        check_bits,
        check_quantized,
        quantize_model,
    )
    from snnsim.compression.spatial import measure
    from snnsim.data import make_loaders
    from snnsim.io import write_csv
    from snnsim.progress import progress_bar

    dev = _setup(seed, device)
    widths = parse_int_list(bits, "--bits")
    for k in widths:
        check_bits(k)
    ks = [k for k in dict.fromkeys(widths) if k != FLOAT_BITS]
    model = _load(model_path)
    if model.quantization:
        click.echo(f"note: {model_path} is already {model.quantization.get('bits')}-bit; quantizing its weights again", err=True)
    bundle = _bundle(model, data_dir, seed, augment=False)
    _, test_loader = make_loaders(bundle, batch_size or 256, seed)
    ref = measure(model, test_loader, dev, desc="float")
    rows = [{"bits": FLOAT_BITS, "scheme": "float32", "accuracy": ref.accuracy, "accuracy_drop": 0.0,
             "spikes_per_inference": ref.total_spikes, "checkpoint": str(model_path)}]
    for k in progress_bar(ks, desc="bit widths", unit="k"):
        q = quantize_model(model, k)
        check_quantized(q)
        m = measure(q, test_loader, dev, desc=f"{k}-bit")
        q.provenance = {**model.provenance, "command": _command_line(), "seed": seed, "accuracy": m.accuracy,
                        "source_model": str(model_path)}
        q.provenance.pop("path", None)
        path = save_model(q, Path(out) / f"{model.kind}_{k}bit.pt")
        rows.append({"bits": k, "scheme": SCHEME, "accuracy": m.accuracy, "accuracy_drop": ref.accuracy - m.accuracy,
                     "spikes_per_inference": m.total_spikes, "checkpoint": str(path)})
    table = pd.DataFrame(rows)
    rdir = _report_dir(report_dir, "quantize", model_path)
    _print_table(table.drop(columns=["checkpoint"]), "Post-training weight quantization (test set; drop in accuracy units)")
    write_csv(table, rdir / "quantize.csv")
    click.echo(f"checkpoints in {out}; table in {rdir / 'quantize.csv'}")


# ============================================================================ evaluate
@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False), help="SNN (or ANN) checkpoint.")
@click.option("--noise-std", default="0,0.05,0.1,0.2", show_default=True,
              help="Gaussian noise std values, in normalised input units (mean 0.5/std 0.5: 0.1 = 0.05 pixel).")
@click.option("--baseline", type=click.Path(dir_okay=False), default=None,
              help="ANN to compare with [default: the ANN named in the model's provenance, if present].")
@click.option("--repeats", type=click.IntRange(1, 10_000), default=1, show_default=True, help="Noise draws to average.")
@click.option("--clip/--no-clip", default=False, show_default=True, help="Clamp noisy inputs to the valid pixel range.")
@click.option("--timesteps", type=TIMESTEPS, default=None, help="Override the SNN's T [default: the model's own].")
@batch_size_option
@report_dir_option
@encoding_option
@progress_options
@data_dir_option
@device_option
@seed_option
def evaluate(model_path: str, noise_std: str, baseline: str | None, repeats: int, clip: bool,
             timesteps: int | None, batch_size: int | None, report_dir: str | None, encoding: str | None,
             data_dir: str, device: str, seed: int) -> None:
    """Test accuracy under additive Gaussian input noise, SNN vs its ANN, same noise draws.

    Writes noise.csv: noise_std, snn_accuracy, ann_accuracy, difference (snn - ann); with
    --repeats K > 1 also *_std and *_ci95 (half-width of the 95% Student-t interval of the mean
    over the K draws; the difference's is paired). A Poisson SNN clips the noisy input to
    [-1, 1] inside its encoder (|x| is a spike probability).
    """
    from snnsim.data import make_loaders
    from snnsim.io import write_csv
    from snnsim.robustness import check_stds, noise_table

    dev = _setup(seed, device)
    stds = check_stds(parse_float_list(noise_std, "--noise-std", 0.0, MAX_NOISE_STD))
    model = _load(model_path, encoding=encoding)
    if baseline is not None:
        ann = _load(baseline)
        if ann.kind != "ann":
            raise SnnsimError(f"--baseline {baseline!r} is an SNN", "pass the ANN checkpoint (ann.pt)")
    else:
        ann = _find_ann(model, model_path) if model.kind == "snn" else None
        if ann is None:
            click.echo("note: no ANN baseline given or named in the model's provenance; SNN only", err=True)
        else:
            click.echo(f"baseline ANN: {ann.provenance.get('path', '(from provenance)')}")
    if ann is not None and tuple(ann.input_shape) != tuple(model.input_shape):
        raise SnnsimError("the baseline ANN and the model expect different inputs", "pass the ANN of the same data set")
    bundle = _bundle(model, data_dir, seed, augment=False)
    _, test_loader = make_loaders(bundle, batch_size or 256, seed)
    table = noise_table(model, ann, test_loader, stds, repeats, seed, dev, clip, timesteps)
    rdir = _report_dir(report_dir, "evaluate", model_path)
    _print_table(table, f"Accuracy under Gaussian noise on normalised inputs ({'clipped' if clip else 'no clipping'}, "
                        f"{repeats} draw(s), same draws for both models)")
    write_csv(table, rdir / "noise.csv")
    click.echo(f"table in {rdir / 'noise.csv'}")
