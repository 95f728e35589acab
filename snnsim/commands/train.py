"""``snnsim train`` (ANN, or hybrid ANN -> SNN) and ``snnsim info`` (what a checkpoint holds).

Defaults depend on the data set (``TRAIN_DEFAULTS``); every one can be overridden on the
command line, and the values used are printed and recorded in the checkpoints' provenance.

* CIFAR: the same authors' DCT-SNN code / the secondary summary of the paper (paper.md §2.6):
  ANN by SGD lr 0.1, momentum 0.9, wd 1e-4, lr/10 every 100 epochs, 300 epochs; SNN by Adam
  lr 1e-4, wd 5e-4, halved every 5 epochs, 24 epochs. (The hybrid ICLR'20 code trains VGG16
  without batch norm at lr 0.01; pass ``--lr 0.01`` if the ANN loss diverges.)
* digits: chosen here, by measurement, to reach >= 95 % SNN test accuracy in well under 5
  minutes on 2 (shared) CPU cores: ANN SGD lr 0.1, wd 5e-4, lr/10 every 10 epochs, 24 epochs,
  batch 32 (learning starts in epoch 1-2 with He-initialised hidden FC layers; with the
  lineage's N(0, 0.01) FC init and no biases the first 3-5 epochs sat at chance);
  SNN with the lineage's Adam lr 1e-4, wd 5e-4, for 5 epochs (conversion at T = 5 already keeps
  the ANN's accuracy; lr 1e-3 was measured to drift down by ~1 %, 1e-4 to hold or gain).
* synthetic: 8 ANN + 2 SNN epochs, enough to learn the default 512-sample set (measured
  ANN 86 %, SNN 93 % in ~30 s); tests pass their own, smaller, epoch counts.

Threshold balancing defaults to the 99.9th percentile (DCT-SNN, [SEC]) times 0.5: at T = 5
the lineage's percentile (designed for 100-2500 steps) gives thresholds too high to spike
within five steps; DIET-SNN scales by 0.2-0.3 at T = 5, the hybrid code by 0.6-0.8 above 100
steps, and 0.5 on digits at T = 5 converts with no accuracy loss before any SNN training.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from snnsim.commands.common import (
    BATCH_SIZE,
    EPOCHS,
    FACTOR,
    LEARNING_RATE,
    SAMPLES,
    TIMESTEPS,
    WEIGHT_DECAY,
    FiniteFloat,
    data_dir_option,
    device_option,
    progress_options,
    seed_option,
)
from snnsim.data import DATASET_NAMES
from snnsim.graph.builders import network_names
from snnsim.graph.nodes import ENCODINGS
from snnsim.limits import MAX_INPUT_SIDE, MAX_WIDTH
from snnsim.models import MODEL_KINDS

_CIFAR = {"ann_epochs": 300, "ann_lr": 0.1, "ann_wd": 1e-4, "ann_step": 100, "ann_gamma": 0.1, "ann_batch": 64,
          "snn_epochs": 24, "snn_lr": 1e-4, "snn_wd": 5e-4, "snn_step": 5, "snn_gamma": 0.5, "snn_batch": 32}
TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "cifar10": _CIFAR,
    "cifar100": _CIFAR,
    "digits": {"ann_epochs": 24, "ann_lr": 0.1, "ann_wd": 5e-4, "ann_step": 10, "ann_gamma": 0.1, "ann_batch": 32,
               "snn_epochs": 5, "snn_lr": 1e-4, "snn_wd": 5e-4, "snn_step": 5, "snn_gamma": 0.5, "snn_batch": 32},
    "synthetic": {"ann_epochs": 8, "ann_lr": 0.1, "ann_wd": 5e-4, "ann_step": 0, "ann_gamma": 0.1, "ann_batch": 32,
                  "snn_epochs": 2, "snn_lr": 1e-3, "snn_wd": 5e-4, "snn_step": 0, "snn_gamma": 0.5, "snn_batch": 32},
}
RUN_FILES = ("ann.pt", "snn.pt", "ann_last.pt", "snn_last.pt")


def _opt(value: Any, key: str, dataset: str) -> Any:
    return TRAIN_DEFAULTS[dataset][key] if value is None else value


@click.command("train")
@click.option("--arch", type=click.Choice(network_names()), default=None,
              help="Architecture [default: digits for digits/synthetic, vgg16 for CIFAR; taken from --ann if given].")
@click.option("--dataset", type=click.Choice(DATASET_NAMES), default="digits",
              show_default=True, help="Data set to train on (CIFAR needs --data-dir, or --download).")
@click.option("--kind", type=click.Choice(MODEL_KINDS), default="snn", show_default=True,
              help="ann: train the ANN only. snn: ANN, conversion, then SNN (hybrid).")
@click.option("--timesteps", "-T", type=TIMESTEPS, default=5, show_default=True, help="SNN timesteps.")
@click.option("--encoding", type=click.Choice(ENCODINGS), default="direct", show_default=True,
              help="SNN input encoding: direct (the image at every timestep) or poisson (signed Poisson spikes; "
                   "needs more timesteps). The ANN reads the image either way.")
@click.option("--ann-epochs", type=EPOCHS, default=None, help="ANN epochs [default: per data set, see TRAIN_DEFAULTS].")
@click.option("--snn-epochs", type=EPOCHS, default=None, help="SNN epochs [default: per data set].")
@click.option("--lr", type=LEARNING_RATE, default=None, help="ANN learning rate (SGD) [default: per data set].")
@click.option("--snn-lr", type=LEARNING_RATE, default=None, help="SNN learning rate (Adam) [default: per data set].")
@click.option("--weight-decay", type=WEIGHT_DECAY, default=None, help="ANN weight decay [default: per data set].")
@click.option("--snn-weight-decay", type=WEIGHT_DECAY, default=None, help="SNN weight decay [default: per data set].")
@click.option("--lr-step", type=EPOCHS, default=None, help="ANN: multiply the LR by --lr-gamma every N epochs (0 = off) [default: per data set].")
@click.option("--lr-gamma", type=FACTOR, default=None, help="ANN LR decay factor [default: per data set].")
@click.option("--snn-lr-step", type=EPOCHS, default=None, help="SNN: decay the LR every N epochs (0 = off) [default: per data set].")
@click.option("--snn-lr-gamma", type=FACTOR, default=None, help="SNN LR decay factor [default: per data set].")
@click.option("--batch-size", type=BATCH_SIZE, default=None, help="ANN batch size (per process) [default: per data set].")
@click.option("--snn-batch-size", type=BATCH_SIZE, default=None, help="SNN batch size (per process) [default: per data set].")
@click.option("--percentile", type=FiniteFloat(0.0, 100.0, low_open=True), default=99.9, show_default=True,
              help="Threshold balancing: percentile of each layer's input current.")
@click.option("--threshold-scale", type=FiniteFloat(0.0, 100.0, low_open=True), default=0.5, show_default=True,
              help="Threshold = percentile statistic x this scale.")
@click.option("--leak", type=FiniteFloat(0.0, 1.0), default=0.9901, show_default=True, help="Initial membrane leak (trained).")
@click.option("--balance-samples", type=SAMPLES, default=512, show_default=True,
              help="Training images used for threshold balancing.")
@click.option("--ann", "ann_path", type=click.Path(dir_okay=False), default=None,
              help="Start the SNN from this trained ANN checkpoint, skipping ANN training [default: train the ANN].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Run directory [default: runs/<arch>-<dataset>-<kind>-T<T>].")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option("--download", is_flag=True, help="Download CIFAR into --data-dir if missing (needs internet).")
@click.option("--workers", type=click.IntRange(0, 64), default=None,
              help="DataLoader worker processes [default: 0 for digits/synthetic, up to 4 for CIFAR].")
@click.option("--synthetic-size", type=str, default="512,256", show_default=True,
              help="Synthetic data set: train,test sample counts.")
@progress_options
@seed_option
@device_option
@data_dir_option
def train(arch: str | None, dataset: str, kind: str, timesteps: int, encoding: str, ann_epochs: int | None,
          snn_epochs: int | None, lr: float | None, snn_lr: float | None, weight_decay: float | None,
          snn_weight_decay: float | None, lr_step: int | None, lr_gamma: float | None,
          snn_lr_step: int | None, snn_lr_gamma: float | None, batch_size: int | None,
          snn_batch_size: int | None, percentile: float, threshold_scale: float, leak: float,
          balance_samples: int, ann_path: str | None, out_dir: str | None, resume: bool, download: bool,
          workers: int | None, synthetic_size: str, seed: int, device: str, data_dir: str) -> None:
    """Train an ANN, or an SNN by the hybrid method: ANN -> threshold balancing -> BPTT.

    Writes ann.pt (and snn.pt) plus per-epoch ann_last.pt / snn_last.pt (with optimizer
    state, for --resume) and history.json into --out. Under torchrun the run uses
    DistributedDataParallel (gloo on CPU, nccl on GPU); only rank 0 writes.
    """
    from snnsim import progress
    from snnsim.checkpoint import load_model
    from snnsim.commands.common import parse_int_list
    from snnsim.data import load_dataset
    from snnsim.device import seed_everything
    from snnsim.errors import SnnsimError
    from snnsim.graph.builders import build_network
    from snnsim.io import write_text
    from snnsim.models import describe_arch
    from snnsim.training import (
        TrainConfig,
        cleanup_distributed,
        hybrid_train,
        init_distributed,
        is_main_process,
    )

    t0 = time.perf_counter()
    if workers is None:
        # In-memory tensors need no workers; CIFAR decodes and augments PIL images per item.
        workers = min(4, max((os.cpu_count() or 1) - 1, 0)) if dataset.startswith("cifar") else 0
    if ann_path is not None and kind == "ann":
        raise SnnsimError("--ann starts an SNN from a trained ANN; it cannot be used with --kind ann",
                          "drop --ann, or use --kind snn")
    sizes = parse_int_list(synthetic_size, "--synthetic-size")
    if len(sizes) != 2 or min(sizes) < 1:
        raise SnnsimError(f"--synthetic-size must be two positive integers 'train,test', got {synthetic_size!r}")

    start_ann = None
    if ann_path is not None:
        start_ann = load_model(ann_path)
        if start_ann.kind != "ann":
            raise SnnsimError(f"--ann {ann_path!r} is a {start_ann.kind.upper()} checkpoint, not an ANN",
                              "pass the ann.pt of a run")
        if arch is not None and arch != start_ann.name:
            raise SnnsimError(f"--arch {arch} contradicts --ann {ann_path!r} (architecture {start_ann.name!r})",
                              "drop --arch when starting from an ANN")
        start_ann.provenance.setdefault("path", str(ann_path))

    bundle = load_dataset(dataset, data_dir=data_dir, download=download, seed=seed,
                          synthetic_size=(sizes[0], sizes[1]))
    if start_ann is not None:
        spec = start_ann.spec if start_ann.spec is not None else start_ann.graph
        in_shape, classes = tuple(start_ann.input_shape), start_ann.num_classes
    else:
        arch = arch or ("vgg16" if dataset.startswith("cifar") else "digits")
        spec = build_network(arch, input_shape=tuple(bundle.input_shape), num_classes=bundle.num_classes)
        in_shape, classes = tuple(bundle.input_shape), bundle.num_classes
    if in_shape != tuple(bundle.input_shape) or classes != bundle.num_classes:
        raise SnnsimError(f"--ann model expects input {list(in_shape)} with {classes} classes, "
                          f"but --dataset {dataset} has {list(bundle.input_shape)} and {bundle.num_classes}",
                          "use the data set the ANN was trained on")

    coded = "" if encoding == "direct" or kind == "ann" else f"-{encoding}"
    out = Path(out_dir or f"runs/{spec.name}-{dataset}-{kind}-T{timesteps}{coded}")
    existing = [f for f in RUN_FILES if (out / f).exists()]
    if existing and not resume:
        raise SnnsimError(f"--out {str(out)!r} already holds a run ({', '.join(existing)})",
                          "pass --resume to continue it, or choose another --out")

    dev = init_distributed(device)
    main = is_main_process()
    show = not progress.quiet()
    seed_everything(seed)
    ann_cfg = TrainConfig(epochs=_opt(ann_epochs, "ann_epochs", dataset), lr=_opt(lr, "ann_lr", dataset),
                          optimizer="sgd", weight_decay=_opt(weight_decay, "ann_wd", dataset),
                          lr_step=_opt(lr_step, "ann_step", dataset), lr_gamma=_opt(lr_gamma, "ann_gamma", dataset),
                          batch_size=_opt(batch_size, "ann_batch", dataset), device=str(dev.type), seed=seed,
                          progress=show)
    snn_cfg = TrainConfig(epochs=_opt(snn_epochs, "snn_epochs", dataset), lr=_opt(snn_lr, "snn_lr", dataset),
                          optimizer="adam", weight_decay=_opt(snn_weight_decay, "snn_wd", dataset),
                          lr_step=_opt(snn_lr_step, "snn_step", dataset),
                          lr_gamma=_opt(snn_lr_gamma, "snn_gamma", dataset),
                          batch_size=_opt(snn_batch_size, "snn_batch", dataset), device=str(dev.type), seed=seed,
                          progress=show)
    ann_cfg.validate()
    snn_cfg.validate()
    command = _command_line(click.get_current_context())
    if main and show:
        click.echo(f"snnsim train: {describe_arch(spec)}  data {dataset} (train {len(bundle.train)}, test {len(bundle.test)})  "
                   f"kind {kind}  T={timesteps}  encoding {encoding}  device {dev}  out {out}", err=True)
        click.echo(f"  ANN: sgd lr {ann_cfg.lr} wd {ann_cfg.weight_decay} step {ann_cfg.lr_step}x{ann_cfg.lr_gamma} "
                   f"epochs {ann_cfg.epochs} batch {ann_cfg.batch_size}"
                   + ("" if kind == "ann" else f" | SNN: adam lr {snn_cfg.lr} wd {snn_cfg.weight_decay} "
                      f"step {snn_cfg.lr_step}x{snn_cfg.lr_gamma} epochs {snn_cfg.epochs} batch {snn_cfg.batch_size} "
                      f"| thresholds p{percentile} x{threshold_scale}, leak {leak}"), err=True)
    try:
        if kind == "ann":
            summary, history = _train_ann_only(spec, bundle, ann_cfg, timesteps, leak, out, resume, workers,
                                               command)
        else:
            ann, snn, history = hybrid_train(spec, bundle, ann_cfg, snn_cfg, timesteps, percentile=percentile,
                                             scale=threshold_scale, leak=leak, out_dir=out, resume=resume,
                                             ann=start_ann, num_workers=workers, max_samples=balance_samples,
                                             command=command, encoding=encoding)
            summary = {"ann_test_acc": history["ann_test_acc"],
                       "conversion_test_acc": history.get("conversion_test_acc"),
                       "snn_test_acc": history["snn_test_acc"]}
        wall = time.perf_counter() - t0
        summary.update({"arch": spec.name, "dataset": dataset, "kind": kind, "timesteps": timesteps, "encoding": encoding,
                        "seed": seed, "wall_s": wall, "command": command, "out": str(out)})
        if main:
            history = {**history, "summary": summary}
            write_text(json.dumps(history, indent=2, default=float) + "\n", out / "history.json")
            parts = [f"ANN test {summary['ann_test_acc']:.2%}"]
            if kind == "snn":
                conv = summary.get("conversion_test_acc")
                if conv is not None:
                    parts.append(f"converted {conv:.2%}")
                parts.append(f"SNN (T={timesteps}) test {summary['snn_test_acc']:.2%}")
            click.echo(f"done: {spec.name} on {dataset}: {', '.join(parts)}; wall time {wall:.1f}s; "
                       f"saved {out / ('snn.pt' if kind == 'snn' else 'ann.pt')}")
    finally:
        cleanup_distributed()


def _command_line(ctx: click.Context) -> str:
    """The effective command (every option with the value used), for provenance.

    Rebuilt from the parsed parameters rather than ``sys.argv`` so it is right when the CLI is
    called in-process, and so that defaults in force are recorded too.
    """
    import shlex

    parts = ["snnsim", ctx.info_name or "train"]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name is None:
            continue
        value = ctx.params.get(param.name)
        flag = max(param.opts, key=len)
        if param.is_flag:
            if value:
                parts.append(flag)
        elif value is not None:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


def _train_ann_only(spec: Any, bundle: Any, cfg: Any, timesteps: int, leak: float, out: Path, resume: bool,
                    workers: int, command: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--kind ann``: train and save ann.pt (with provenance)."""
    from dataclasses import asdict

    from snnsim.checkpoint import save_model
    from snnsim.data import make_loaders
    from snnsim.models import build_model
    from snnsim.training import dist_active, evaluate, is_main_process, train_ann

    ann = build_model(spec, kind="ann", timesteps=timesteps, leak=leak, seed=cfg.seed)
    ann.dataset_info = bundle.info()
    ann.provenance = {"command": command, "seed": cfg.seed, "stage": "ann", "config": asdict(cfg)}
    tr, te = make_loaders(bundle, cfg.batch_size, cfg.seed, workers, dist_active())
    hist = train_ann(ann, tr, te, cfg, out / "ann_last.pt", resume)
    acc = evaluate(ann, te)
    ann.provenance.update({"accuracy": acc, "history": hist, "path": str(out / "ann.pt")})
    if is_main_process():
        save_model(ann, out / "ann.pt")
    return {"ann_test_acc": acc}, {"ann": hist}


# ============================================================================ info
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def describe_checkpoint(path: str) -> str:
    """The text ``snnsim info`` prints for the checkpoint at ``path``."""
    import torch

    from snnsim.checkpoint import model_from_checkpoint, read_checkpoint
    from snnsim.models import describe_arch

    ckpt = read_checkpoint(path)
    model = model_from_checkpoint(ckpt, source=repr(path))
    lines = [f"checkpoint    {path}",
             f"format        {ckpt['format']} v{ckpt['format_version']}"
             + (" (converted from v1 on load)" if model.provenance.get("converted_from_format") == 1 else ""),
             f"arch          {describe_arch(model.spec if model.spec is not None else model.graph)}",
             f"kind          {model.kind}",
             f"timesteps     {model.timesteps}" + ("  (unused by an ANN)" if model.kind == "ann" else "")]
    ds = model.dataset_info
    if ds:
        lines.append(f"dataset       {ds.get('name', '?')}  input {ds.get('input_shape')}  classes {ds.get('num_classes')}  "
                     f"normalise mean {_fmt(ds.get('mean'))} std {_fmt(ds.get('std'))}")
        rest = {k: v for k, v in ds.items() if k not in ("name", "mean", "std", "input_shape", "num_classes")}
        if rest:
            lines.append(f"              {_fmt(rest)}")
    else:
        lines.append("dataset       (not recorded)")
    q = model.quantization
    if q:
        lines.append(f"quantization  {q.get('bits')}-bit {q.get('scheme')}  scales {_fmt([float(s) for s in q['scales'].values()])}")
    else:
        lines.append("quantization  none (float32 weights)")
    if model.kind == "snn":
        neurons = model.neuron_table()
        lines.append(f"thresholds    {_fmt([row['threshold'] for row in neurons])}")
        lines.append(f"leaks         {_fmt([row['leak'] for row in neurons])}")
    prov = dict(model.provenance)
    hist = prov.pop("history", None)
    config = prov.pop("config", None)
    conversion = prov.pop("conversion", None)
    lines.append("provenance")
    w = max([12, *(len(k) + 2 for k in prov)])
    for k in sorted(prov):
        v = prov[k]
        lines.append(f"  {k:{w}s}{v:.4%}" if k == "accuracy" and isinstance(v, float) else f"  {k:{w}s}{_fmt(v)}")
    if config:
        lines.append(f"  {'config':{w}s}{_fmt(config)}")
    if conversion:
        lines.append(f"  {'conversion':{w}s}{_fmt(conversion)}")
    if hist:
        last = hist[-1]
        lines.append(f"  {'history':{w}s}{len(hist)} epochs; last: loss {last.get('loss', float('nan')):.4f}, "
                     f"test {last.get('test_acc', float('nan')):.2%}")
    extra = ckpt.get("extra")
    if isinstance(extra, dict):
        lines.append(f"resumable     stage {extra.get('stage')} after epoch {extra.get('epoch')}"
                     f" (optimizer state {'present' if extra.get('optimizer') else 'absent'})")
    with torch.no_grad():
        rows = model.layer_table()
    lines.append("layers")
    nw = max(7, *(len(r["layer"]) for r in rows))
    header = f"  {'#':>2} {'layer':{nw}s} {'kind':8s} {'pool':4s} {'in':>12s} {'out':>12s} {'k':>2s} {'params':>12s} {'MACs':>14s} {'weight shape':>18s}"
    lines.append(header)
    for i, (row, syn) in enumerate(zip(rows, model.synapses, strict=True)):
        shape = "x".join(str(s) for s in syn.weight.shape) if syn is not None else "-"
        lines.append(f"  {i:>2} {row['layer']:{nw}s} {row['kind']:8s} {row['pool_in']:4s} {row['in_shape']:>12s} "
                     f"{row['out_shape']:>12s} {row['kernel']!s:>2s} {row['params']:>12,} {row['macs']:>14,} {shape:>18s}")
    synapses = [s for s in model.synapses if s is not None]
    weights = sum(int(s.weight.numel()) for s in synapses)
    biases = sum(int(s.bias.numel()) for s in synapses if s.bias is not None)
    neuron = sum(int(p.numel()) for p in model.neuron_parameters()) if model.kind == "snn" else 0
    nonzero = sum(int(torch.count_nonzero(s.weight)) for s in synapses)
    lines.append(f"total params  {weights:,} weights " + (f"+ {biases:,} biases" if biases else "(no biases)")
                 + (f" + {neuron} neuron parameters (thresholds, leaks)" if neuron else ""))
    lines.append(f"nonzero       {nonzero:,} weights ({nonzero / max(weights, 1):.2%})")
    lines.append(f"total MACs    {model.mac_count():,} per inference (one timestep, dense)")
    lines.append("graph")
    lines.extend("  " + row for row in model.graph.describe().splitlines())
    return "\n".join(lines)


@click.command("info")
@click.argument("model_path", type=click.Path(dir_okay=True), required=False)
@click.option("--arch", type=click.Choice(network_names()), default=None,
              help="Print the graph of a named architecture instead of a checkpoint's "
                   "[default: none, MODEL_PATH is read].")
@click.option("--input-shape", default=None,
              help="With --arch: the input as C,H,W [default: the architecture's own, e.g. 3,32,32].")
@click.option("--classes", type=click.IntRange(1, MAX_WIDTH), default=None,
              help="With --arch: output classes [default: 10].")
def info(model_path: str | None, arch: str | None, input_shape: str | None, classes: int | None) -> None:
    """Print everything the checkpoint MODEL_PATH holds (parameter counts, layer shapes, the
    network graph), or with --arch the graph of a named architecture (nodes, shapes, params, MACs)."""
    from snnsim.commands.common import parse_int_list
    from snnsim.errors import SnnsimError

    if (model_path is None) == (arch is None):
        raise SnnsimError("snnsim info takes a checkpoint or --arch NAME (one of them)",
                          "e.g. snnsim info runs/digits/snn.pt, or snnsim info --arch resnet19")
    if arch is None:
        click.echo(describe_checkpoint(str(model_path)))
        return
    from snnsim.graph import build_graph

    shape = None
    if input_shape is not None:
        dims = parse_int_list(input_shape, "--input-shape", 1, MAX_INPUT_SIDE)
        if len(dims) != 3:
            raise SnnsimError(f"--input-shape must be C,H,W, got {input_shape!r}")
        shape = (dims[0], dims[1], dims[2])
    click.echo(build_graph(arch, shape, classes).describe())
