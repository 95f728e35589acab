"""Training: ANN, ANN->SNN conversion by threshold balancing, SNN surrogate-gradient BPTT.

The hybrid pipeline of the paper's lineage (paper.md §2.1, §2.5, §2.6):

1. :func:`train_ann` trains the ANN (ReLU, same layers as the SNN) with SGD by default;
2. :func:`convert_ann_to_snn` copies the weights into the SNN (batch norm folded into the
   convolution in front of it) and sets every population's threshold by
   :func:`balance_thresholds`;
3. :func:`train_snn` fine-tunes weights, thresholds and leaks end to end by backpropagation
   through time with the piecewise-linear surrogate gradient (``snnsim.models.LinearSpike``),
   Adam by default.

:func:`hybrid_train` chains the three and is what ``snnsim train --kind snn`` and the
compression commands (retraining pruned architectures) call.

Reproducibility and ``--resume``: at the start of every epoch the torch RNG is reseeded from
``(seed, stage, epoch, rank)`` and the training sampler's shuffle depends only on
``(seed, epoch)``; the checkpoint written after each epoch holds the weights plus the
optimizer and scheduler states. A run resumed after epoch ``k`` therefore produces the same
weights, bit for bit, as an uninterrupted run on the same device.

Distributed training: when a ``torch.distributed`` process group is initialised (``torchrun``;
see :func:`init_distributed`), the model is wrapped in ``DistributedDataParallel`` (gloo on
CPU, nccl on GPU), the loaders shard the data, and only rank 0 prints or writes files.
Thresholds and leaks are ``nn.Parameter`` s of the model, so DDP all-reduces their gradients
like any weight; during ANN training they are frozen (the ANN does not use them, and DDP would
otherwise wait for gradients that never come).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from snnsim.arch import ArchSpec
from snnsim.checkpoint import read_checkpoint, save_model
from snnsim.device import resolve_device
from snnsim.errors import SnnsimError
from snnsim.graph.graph import Graph
from snnsim.graph.schedule import fold_batchnorm
from snnsim.models import DEFAULT_LEAK, Model, build_model, graph_of
from snnsim.progress import progress_bar, progress_line

DEFAULT_PERCENTILE = 99.9
_STAGE_ID = {"ann": 1, "snn": 2}
_CONVERSION_EPOCH = 2**31 - 1  # RNG stream of the conversion batch, apart from every epoch


OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("step", "cosine")


@dataclass
class TrainConfig:
    """Hyper-parameters of one training stage (ANN or SNN); choices in OPTIMIZERS, LR_SCHEDULES.

    ``lr_step``/``lr_gamma``: StepLR, multiply the LR by ``lr_gamma`` every ``lr_step`` epochs
    (0 = constant LR). ``lr_schedule='cosine'`` instead anneals the LR from ``lr`` towards 0
    over the stage's epochs (per epoch, ``CosineAnnealingLR``), so that every stage ends
    settled however short it is (used per temporal-pruning stage). ``weight_decay`` applies to
    synaptic weights only, never to thresholds and leaks (decaying a threshold toward 0 has no regularising meaning; it only adds spikes).
    ``progress`` shows tqdm bars and the per-epoch line (rank 0 only).
    """

    epochs: int
    lr: float
    optimizer: str = "adam"  # 'sgd' | 'adam'
    weight_decay: float = 0.0
    momentum: float = 0.9
    lr_step: int = 0
    lr_gamma: float = 0.5
    lr_schedule: str = "step"  # 'step' (StepLR via lr_step, 0 = constant) | 'cosine'
    batch_size: int = 64
    device: str = "auto"
    seed: int = 0
    progress: bool = True

    def validate(self) -> None:
        """One-line errors for impossible settings."""
        if self.epochs < 0:
            raise SnnsimError(f"epochs must be >= 0, got {self.epochs}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise SnnsimError(f"learning rate must be a positive number, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise SnnsimError(f"unknown optimizer {self.optimizer!r}", "use sgd or adam")
        if self.weight_decay < 0:
            raise SnnsimError(f"weight decay must be >= 0, got {self.weight_decay}")
        if self.lr_step < 0 or not (0 < self.lr_gamma <= 1):
            raise SnnsimError(f"lr schedule needs lr_step >= 0 and 0 < lr_gamma <= 1, got {self.lr_step}, {self.lr_gamma}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise SnnsimError(f"unknown lr schedule {self.lr_schedule!r}", "use step or cosine")
        if self.batch_size < 1:
            raise SnnsimError(f"batch size must be >= 1, got {self.batch_size}")


# ============================================================================ distributed
def dist_active() -> bool:
    """True inside an initialised ``torch.distributed`` process group."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    return torch.distributed.get_rank() if dist_active() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if dist_active() else 1


def is_main_process() -> bool:
    """Only rank 0 prints and writes files."""
    return rank() == 0


def init_distributed(device: str = "auto") -> torch.device:
    """Join the process group if launched by ``torchrun`` (``WORLD_SIZE`` > 1); return the device.

    Backend: nccl when the resolved device is CUDA (each rank takes GPU ``LOCAL_RANK``), gloo
    on CPU. Outside torchrun this only resolves the device.
    """
    dev = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or dist_active():
        if dev.type == "cuda" and dist_active():
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return dev
    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    torch.distributed.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return dev


def cleanup_distributed() -> None:
    """Leave the process group (safe to call when none is active)."""
    if dist_active():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def _all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    if not dist_active():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return t.tolist()


def _barrier() -> None:
    if dist_active():
        torch.distributed.barrier()


# ============================================================================ helpers
def _unwrap(model: nn.Module) -> Model:
    inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    if not isinstance(inner, Model):
        raise TypeError(f"expected an snnsim model (GraphNet), got {type(inner).__name__}")
    return inner


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _epoch_seed(seed: int, stage: str, epoch: int, rank_: int) -> int:
    """Seed of the torch RNG (dropout masks, augmentation) for one epoch of one rank."""
    return int(np.random.SeedSequence([int(seed) % 2**32, _STAGE_ID[stage], epoch, rank_]).generate_state(1)[0])


def _set_epoch(loader: DataLoader, epoch: int) -> None:
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)  # type: ignore[union-attr]


def _make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """The per-epoch LR scheduler of ``cfg`` (None for a constant LR)."""
    if cfg.lr_schedule == "cosine" and cfg.epochs > 0:
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.lr_step > 0:
        return torch.optim.lr_scheduler.StepLR(opt, cfg.lr_step, cfg.lr_gamma)
    return None


def _make_optimizer(model: Model, cfg: TrainConfig) -> torch.optim.Optimizer:
    neuron = [p for p in model.neuron_parameters() if p.requires_grad]
    weights = [p for p in model.synapse_parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [{"params": weights, "weight_decay": cfg.weight_decay}]
    if neuron:
        groups.append({"params": neuron, "weight_decay": 0.0})
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.Adam(groups, lr=cfg.lr)


def _bar(iterable: Any, desc: str, total: int | None, enabled: bool) -> Iterator[Any]:
    return progress_bar(iterable, desc=desc, total=total, leave=False, enabled=enabled, dynamic_ncols=True)


def _log(msg: str, enabled: bool) -> None:
    progress_line(msg, enabled=enabled)


# ============================================================================ evaluation
@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device | str | None = None,
             timesteps: int | None = None, noise_std: float = 0.0, noise_seed: int = 0) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` (ANN or SNN) on ``loader``.

    ``noise_std`` adds N(0, noise_std^2) to the *normalised* input; the draws come from a CPU
    generator seeded with ``noise_seed`` in loader order, so an ANN and an SNN evaluated on the
    same loader see identical noise. Under a process group with a sharded test loader the
    correct/total counts are summed over ranks (exact accuracy, every rank gets it).
    """
    net = _unwrap(model)
    dev = torch.device(device) if device is not None else _model_device(net)
    was_training = net.training
    net.eval()
    gen = torch.Generator().manual_seed(int(noise_seed)) if noise_std > 0 else None
    correct = total = 0
    try:
        for x, y in loader:
            if gen is not None:
                x = x + noise_std * torch.randn(x.shape, generator=gen, dtype=x.dtype)
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            logits = net(x, timesteps)
            correct += int((logits.argmax(1) == y).sum())
            total += int(y.numel())
    finally:
        net.train(was_training)
    from snnsim.data import ShardSampler

    if dist_active() and isinstance(getattr(loader, "sampler", None), ShardSampler):
        correct, total = (int(v) for v in _all_reduce_sum([correct, total], dev))
    if total == 0:
        raise SnnsimError("evaluation set is empty", "check the data set")
    return correct / total


# ============================================================================ training loop
def _fit(model: Model, stage: str, train_loader: DataLoader, test_loader: DataLoader,
         cfg: TrainConfig, checkpoint: str | os.PathLike[str] | None, resume: bool) -> list[dict[str, Any]]:
    """The shared epoch loop of :func:`train_ann` and :func:`train_snn`."""
    cfg.validate()
    net = _unwrap(model)
    dev = resolve_device(cfg.device)
    if dist_active() and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    net.to(dev)
    main = is_main_process()
    show = cfg.progress and main
    # The ANN never uses thresholds/leaks: freeze them (not decayed, not waited for by DDP).
    neuron_params = net.neuron_parameters()
    neuron_flags = [p.requires_grad for p in neuron_params]
    if stage == "ann":
        for p in neuron_params:
            p.requires_grad_(False)
    try:
        opt = _make_optimizer(net, cfg)
        sched = _make_scheduler(opt, cfg)
        history: list[dict[str, Any]] = []
        start = 0
        if resume and checkpoint is not None and Path(checkpoint).exists():
            start, history = _restore(net, opt, sched, stage, checkpoint, dev)
            _log(f"[{stage}] resumed from {checkpoint} after epoch {start}", show)
        runner: nn.Module = net
        if dist_active():
            runner = nn.parallel.DistributedDataParallel(
                net, device_ids=[dev.index] if dev.type == "cuda" else None)
        for epoch in range(start, cfg.epochs):
            t0 = time.perf_counter()
            torch.manual_seed(_epoch_seed(cfg.seed, stage, epoch, rank()))
            _set_epoch(train_loader, epoch)
            net.train()
            loss_sum = 0.0
            correct = seen = 0
            bar = _bar(train_loader, f"{stage} {epoch + 1}/{cfg.epochs}", len(train_loader), show)
            for x, y in bar:
                x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                logits = runner(x)
                loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if stage == "snn":
                    net.clamp_leaks()
                n = int(y.numel())
                loss_sum += float(loss.detach()) * n
                correct += int((logits.detach().argmax(1) == y).sum())
                seen += n
                if show:
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}")  # type: ignore[attr-defined]
            loss_sum, correct, seen = _all_reduce_sum([loss_sum, correct, seen], dev)
            train_loss = loss_sum / max(seen, 1)
            if not math.isfinite(train_loss):
                raise SnnsimError(f"{stage} training diverged in epoch {epoch + 1} (loss {train_loss})",
                                  "lower the learning rate (--lr / --snn-lr) or the threshold scale")
            lr_now = opt.param_groups[0]["lr"]
            if sched is not None:
                sched.step()
            test_acc = evaluate(net, test_loader, dev)
            row = {"stage": stage, "epoch": epoch + 1, "loss": train_loss,
                   "train_acc": correct / max(seen, 1), "test_acc": test_acc, "lr": lr_now,
                   "time_s": time.perf_counter() - t0}
            history.append(row)
            _log(f"[{stage}] epoch {epoch + 1:3d}/{cfg.epochs}  loss {train_loss:.4f}  "
                 f"train {row['train_acc']:.2%}  test {test_acc:.2%}  lr {lr_now:.2e}  "
                 f"{row['time_s']:.1f}s", cfg.progress and main)
            net.provenance["accuracy"] = test_acc
            if checkpoint is not None and main:
                extra = {"stage": stage, "epoch": epoch + 1, "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict() if sched is not None else None,
                         "history": history, "config": asdict(cfg)}
                save_model(net, checkpoint, extra=extra)
            _barrier()
    finally:
        for p, flag in zip(neuron_params, neuron_flags, strict=True):
            p.requires_grad_(flag)
    return history


def _restore(net: Model, opt: torch.optim.Optimizer, sched: Any, stage: str,
             checkpoint: str | os.PathLike[str], dev: torch.device) -> tuple[int, list[dict[str, Any]]]:
    """Load weights, optimizer, scheduler and history from a per-epoch checkpoint."""
    ckpt = read_checkpoint(checkpoint)
    extra = ckpt.get("extra") or {}
    if extra.get("stage") != stage or "optimizer" not in extra:
        raise SnnsimError(f"{str(checkpoint)!r} is not a resumable {stage} training checkpoint",
                          "drop --resume or choose another --out")
    if ckpt["graph"] != net.graph.to_dict():
        raise SnnsimError(f"{str(checkpoint)!r} was written for architecture {ckpt['graph'].get('name')!r}, "
                          f"not {net.name!r}", "use the same --arch, or a new --out without --resume")
    net.load_state_dict(ckpt["state_dict"])
    net.timesteps = int(ckpt["timesteps"])
    net.provenance = dict(ckpt.get("provenance") or net.provenance)
    try:
        opt.load_state_dict(extra["optimizer"])
        if sched is not None and extra.get("scheduler") is not None:
            sched.load_state_dict(extra["scheduler"])
    except (ValueError, KeyError) as exc:
        raise SnnsimError(f"cannot resume from {str(checkpoint)!r}: optimizer state does not match ({exc})",
                          "resume with the same options, or start a new --out") from None
    net.to(dev)
    return int(extra["epoch"]), list(extra.get("history") or [])


def train_ann(model: Model, train_loader: DataLoader, test_loader: DataLoader, cfg: TrainConfig,
              checkpoint: str | os.PathLike[str] | None = None, resume: bool = False) -> list[dict[str, Any]]:
    """Train ``model`` as an ANN (ReLU); returns the per-epoch history.

    ``checkpoint``: a path rewritten (atomically, rank 0) after every epoch with the weights
    and the optimizer/scheduler state; with ``resume=True`` and that file present, training
    continues after its last epoch.
    """
    net = _unwrap(model)
    if net.kind != "ann":
        raise SnnsimError(f"train_ann needs an ANN model, got kind {net.kind!r}", "use train_snn")
    return _fit(net, "ann", train_loader, test_loader, cfg, checkpoint, resume)


def train_snn(model: Model, train_loader: DataLoader, test_loader: DataLoader, cfg: TrainConfig,
              timesteps: int | None = None, checkpoint: str | os.PathLike[str] | None = None,
              resume: bool = False) -> list[dict[str, Any]]:
    """Train an SNN by surrogate-gradient BPTT over ``timesteps`` (default ``model.timesteps``).

    Weights, per-layer thresholds and leaks are all trained (DIET-SNN / IIR-SNN style, paper.md
    §2.2); leaks are clamped to [0, 1] and thresholds kept positive after every step
    (``model.clamp_leaks``). Loss: cross-entropy on the output layer's potential averaged over
    the timesteps. Checkpoint/resume as in :func:`train_ann`.
    """
    net = _unwrap(model)
    if net.kind != "snn":
        raise SnnsimError(f"train_snn needs an SNN model, got kind {net.kind!r}", "convert it with convert_ann_to_snn")
    if timesteps is not None:
        if timesteps < 1:
            raise SnnsimError(f"timesteps must be >= 1, got {timesteps}")
        net.timesteps = int(timesteps)
    return _fit(net, "snn", train_loader, test_loader, cfg, checkpoint, resume)


# ============================================================================ conversion
class _StopForward(Exception):
    """Raised by the balancing observer to skip the layers after the one being balanced."""


def _percentile(values: torch.Tensor, percentile: float) -> float:
    """The ``percentile``-th percentile of all elements (nearest-rank; works above 16M elements)."""
    flat = values.detach().reshape(-1).float()
    k = min(flat.numel(), max(1, math.ceil(percentile / 100.0 * flat.numel() - 1e-9)))
    return float(flat.kthvalue(k).values)


def _collect_batch(loader: DataLoader, max_samples: int) -> torch.Tensor:
    xs: list[torch.Tensor] = []
    n = 0
    for x, _ in loader:
        xs.append(x)
        n += x.shape[0]
        if n >= max_samples:
            break
    if not xs:
        raise SnnsimError("threshold balancing got an empty data loader", "check the training set")
    return torch.cat(xs)[:max_samples]


@torch.no_grad()
def balance_thresholds(model: Model, loader: DataLoader, timesteps: int,
                       percentile: float = DEFAULT_PERCENTILE, scale: float = 1.0,
                       max_samples: int = 512, device: torch.device | str | None = None) -> list[float]:
    """Set every LIF / IF population's threshold from its input current; return the thresholds.

    Follows the lineage (paper.md §2.5): population by population in schedule order,
    **sequentially** (population ``l`` is balanced with the populations before it already
    carrying their new thresholds), on one batch of up to
    ``max_samples`` (512, as in the lineage) training images run through the SNN for
    ``timesteps`` steps in eval mode. The statistic is the ``percentile``-th percentile of the
    layer's pre-activation input current ``W_l x_l^t`` over all elements of the batch at each
    timestep, and the running max of that over ``t`` (the lineage's running max);
    threshold = statistic x ``scale`` (every channel of a per-channel population gets it). The
    input current of a population fed by an ``Add`` is the sum it integrates.

    Default percentile 99.9: the same authors' DCT-SNN code and the secondary summary of the
    paper ([SEC]); the max (hybrid ICLR'20) is outlier-driven and gives too few spikes at small
    T, and 90-99.7 (IIR, DIET) are alternatives exposed through ``percentile``. Under a process
    group rank 0's thresholds are broadcast, so every rank gets the same network.
    """
    net = _unwrap(model)
    if net.kind != "snn":
        raise SnnsimError("balance_thresholds needs an SNN model (kind 'snn')")
    cuba = [p.name for p in net.populations if p.kind == "CubaLIF"]
    if cuba:  # its membrane integrates a filtered current, not the input current balancing measures
        raise SnnsimError(f"threshold balancing sets LIF / IF thresholds from their input current; population "
                          f"{cuba[0]!r} is a CubaLIF, whose synaptic current is not that current",
                          "train it by BPTT from its own thresholds (snnsim.training.train_snn), or import it trained")
    if not (0 < percentile <= 100):
        raise SnnsimError(f"threshold percentile must be in (0, 100], got {percentile}")
    if not (scale > 0 and math.isfinite(scale)):
        raise SnnsimError(f"threshold scale must be a positive number, got {scale}")
    if timesteps < 1:
        raise SnnsimError(f"timesteps must be >= 1, got {timesteps}")
    dev = torch.device(device) if device is not None else _model_device(net)
    net.to(dev)
    was_training = net.training
    net.eval()
    x = _collect_batch(loader, max_samples).to(dev)
    spiking = [p.name for p in net.populations if p.spiking]
    try:
        for pop in spiking:
            stats: list[float] = []

            def observe(ev: Any, pop: str = pop, stats: list[float] = stats) -> None:
                if ev.node == pop:
                    stats.append(_percentile(ev.current, percentile))
                    if ev.t == timesteps - 1:
                        raise _StopForward

            with contextlib.suppress(_StopForward):
                net.forward_snn(x, timesteps, observe)
            value = max(stats) * scale
            if not math.isfinite(value) or value <= 1e-3:
                # No positive input current at that percentile: the layer is silent. Keep a tiny
                # threshold so training can still move it (clamp_leaks' lower bound).
                value = 1e-3
            threshold = net.threshold(pop)
            th = torch.tensor(value, dtype=threshold.dtype, device=dev)
            if dist_active():
                torch.distributed.broadcast(th, src=0)
            threshold.fill_(th)
    finally:
        net.train(was_training)
    return [float(net.threshold(p).detach().float().mean()) for p in spiking]


def folded_snn(graph: Graph, state: dict[str, torch.Tensor], timesteps: int, leak: float = DEFAULT_LEAK) -> Model:
    """A new SNN of ``graph`` with its batch norms folded (:func:`snnsim.graph.fold_batchnorm`,
    running statistics) and the weights, biases of ``state``; thresholds start at 1 and leaks
    at ``leak`` (the state's neuron values are not taken)."""
    folded, folded_state = fold_batchnorm(graph, state)
    snn = build_model(folded, kind="snn", timesteps=timesteps, leak=leak)
    with torch.no_grad():
        own = snn.state_dict()
        for key, value in folded_state.items():
            if key in own and not key.endswith((".threshold", ".leak")):
                own[key].copy_(value)
    return snn


def convert_ann_to_snn(ann: Model, loader: DataLoader, timesteps: int,
                       percentile: float = DEFAULT_PERCENTILE, scale: float = 1.0,
                       leak: float = DEFAULT_LEAK, max_samples: int = 512) -> Model:
    """A new SNN with ``ann``'s weights and thresholds from :func:`balance_thresholds`.

    Every BatchNorm2d directly behind a convolution is folded into it first (running
    statistics: :func:`snnsim.graph.fold_batchnorm`), so the SNN's graph has convolutions with
    biases where the ANN had conv + BN. The SNN runs on the ANN's device, starts with leak
    ``leak`` in every population (0.9901 as in
    DCT-SNN; pass 1.0 for a pure integrate-and-fire conversion) and inherits the data set
    info; its provenance records the conversion settings.
    """
    src = _unwrap(ann)
    if src.kind != "ann":
        raise SnnsimError(f"convert_ann_to_snn needs an ANN, got kind {src.kind!r}")
    if not (0.0 <= leak <= 1.0):
        raise SnnsimError(f"leak must be in [0, 1], got {leak}")
    snn = folded_snn(src.graph, {k: v.detach().cpu() for k, v in src.state_dict().items()}, timesteps, leak)
    snn.spec = src.spec
    snn.to(_model_device(src))
    snn.dataset_info = dict(src.dataset_info)
    thresholds = balance_thresholds(snn, loader, timesteps, percentile, scale, max_samples)
    snn.provenance = {
        "seed": src.provenance.get("seed"),
        "parent": src.provenance.get("path", "ann"),
        "conversion": {"percentile": percentile, "scale": scale, "timesteps": timesteps,
                       "leak": leak, "samples": max_samples, "thresholds": thresholds},
    }
    return snn


# ============================================================================ hybrid pipeline
def hybrid_train(spec: ArchSpec | Graph, bundle: Any, ann_cfg: TrainConfig, snn_cfg: TrainConfig, timesteps: int,
                 *, percentile: float = DEFAULT_PERCENTILE, scale: float = 1.0, leak: float = DEFAULT_LEAK,
                 out_dir: str | os.PathLike[str] | None = None, resume: bool = False,
                 ann: Model | None = None, num_workers: int = 0, max_samples: int = 512,
                 command: str | None = None, encoding: str | None = None) -> tuple[Model, Model, dict[str, Any]]:
    """Train the ANN, convert it, train the SNN; return ``(ann, snn, history)``.

    ``encoding`` (:data:`snnsim.graph.nodes.ENCODINGS`; None: the graph's or the given ANN's):
    the SNN's input encoding. The ANN always reads the analog image; its graph records the
    encoding of the SNN it is the twin of. Thresholds are balanced on the encoded input.

    ``ann``: start from this trained ANN (its ANN stage is skipped). ``out_dir``: where
    ``ann.pt``/``snn.pt`` (final models) and ``ann_last.pt``/``snn_last.pt`` (rewritten after
    every epoch, with optimizer state) go; rank 0 only. ``resume=True`` continues from those
    files: a finished ``ann.pt`` skips the ANN stage, an ``snn_last.pt`` skips the conversion.
    The final models are the last epoch's (not the best on the test set, which would select on
    test data). ``history``: ``{'ann': [...], 'snn': [...], 'conversion': {...},
    'ann_test_acc', 'conversion_test_acc', 'snn_test_acc', 'wall_s'}``.
    Under ``torchrun`` (process group initialised) the loaders are sharded automatically.
    """
    from snnsim.checkpoint import load_model
    from snnsim.data import make_loaders

    t_start = time.perf_counter()
    graph = graph_of(spec)
    in_shape, classes = graph.info[graph.input].out_shape, graph.info[graph.output].in_shapes[0]
    if tuple(in_shape) != tuple(bundle.input_shape) or tuple(classes) != (bundle.num_classes,):
        raise SnnsimError(f"architecture {graph.name!r} expects input {list(in_shape)} and "
                          f"{classes[0] if len(classes) == 1 else list(classes)} classes, but data set {bundle.name!r} has "
                          f"{list(bundle.input_shape)} and {bundle.num_classes}",
                          "build the spec with make_arch(name, input_shape=..., num_classes=...)")
    if timesteps < 1:
        raise SnnsimError(f"timesteps must be >= 1, got {timesteps}")
    out = Path(out_dir) if out_dir is not None else None
    distributed = dist_active()
    main = is_main_process()
    command = command or ""
    history: dict[str, Any] = {"ann": [], "snn": []}

    # ------------------------------------------------------------------ ANN
    if ann is None and resume and out is not None and (out / "ann.pt").exists():
        ann = load_model(out / "ann.pt")
        history["ann"] = list(ann.provenance.get("history") or [])
        _log(f"[ann] resumed: using finished {out / 'ann.pt'}", ann_cfg.progress and main)
    if ann is None:
        ann = build_model(spec, kind="ann", timesteps=timesteps, leak=leak, seed=ann_cfg.seed)
        if encoding is not None:
            ann.set_encoding(encoding)
        ann.dataset_info = bundle.info()
        ann.provenance = {"command": command, "seed": ann_cfg.seed, "stage": "ann", "config": asdict(ann_cfg)}
        tr, te = make_loaders(bundle, ann_cfg.batch_size, ann_cfg.seed, num_workers, distributed)
        history["ann"] = train_ann(ann, tr, te, ann_cfg, None if out is None else out / "ann_last.pt", resume)
        ann.provenance["history"] = history["ann"]
        ann.provenance["accuracy"] = evaluate(ann, te)
        if out is not None:
            ann.provenance["path"] = str(out / "ann.pt")
            if main:
                save_model(ann, out / "ann.pt")
        _barrier()
    else:
        ann = _unwrap(ann)
        if ann.kind != "ann":
            raise SnnsimError(f"the starting model is kind {ann.kind!r}, not an ANN", "pass an ANN checkpoint (ann.pt)")
        if not ann.dataset_info:
            ann.dataset_info = bundle.info()
    dev = resolve_device(snn_cfg.device)
    if distributed and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if encoding is not None:
        ann.set_encoding(encoding)
    ann.to(dev)
    tr, te = make_loaders(bundle, snn_cfg.batch_size, snn_cfg.seed, num_workers, distributed)
    history["ann_test_acc"] = evaluate(ann, te, dev)

    # ------------------------------------------------------------------ conversion + SNN
    snn_last = None if out is None else out / "snn_last.pt"
    if resume and snn_last is not None and snn_last.exists():
        snn = load_model(snn_last)
        if encoding is not None and snn.encoding != encoding:
            raise SnnsimError(f"{str(snn_last)!r} was trained with {snn.encoding} encoding, not {encoding}",
                              f"resume with --encoding {snn.encoding}, or start a new --out")
        if snn.timesteps != timesteps:
            raise SnnsimError(f"{str(snn_last)!r} was trained at T={snn.timesteps}, not T={timesteps}",
                              f"resume with --timesteps {snn.timesteps}, or start a new --out")
        snn.to(dev)
        history["conversion"] = dict(snn.provenance.get("conversion") or {})
        history["conversion_test_acc"] = history["conversion"].get("test_acc")
        _log(f"[snn] resuming from {snn_last}; conversion skipped", snn_cfg.progress and main)
    else:
        torch.manual_seed(_epoch_seed(snn_cfg.seed, "snn", _CONVERSION_EPOCH, 0))
        _set_epoch(tr, 0)
        snn = convert_ann_to_snn(ann, tr, timesteps, percentile, scale, leak, max_samples)
        conv_acc = evaluate(snn, te, dev)
        snn.provenance["conversion"]["test_acc"] = conv_acc
        history["conversion"] = dict(snn.provenance["conversion"])
        history["conversion_test_acc"] = conv_acc
        th = ", ".join(f"{t:.3g}" for t in history["conversion"]["thresholds"])
        _log(f"[convert] T={timesteps} percentile {percentile} x{scale}: thresholds [{th}]  "
             f"test {conv_acc:.2%} before SNN training", snn_cfg.progress and main)
    snn.provenance.update({"command": command, "seed": snn_cfg.seed, "stage": "snn",
                           "config": asdict(snn_cfg),
                           "parent": ann.provenance.get("path") or (str(out / "ann.pt") if out is not None else "ann")})
    history["snn"] = train_snn(snn, tr, te, snn_cfg, timesteps, snn_last, resume)
    history["snn_test_acc"] = evaluate(snn, te, dev)
    snn.provenance["accuracy"] = history["snn_test_acc"]
    snn.provenance["history"] = history["snn"]
    snn.provenance.pop("path", None)
    if out is not None:
        snn.provenance["path"] = str(out / "snn.pt")
        if main:
            save_model(snn, out / "snn.pt")
    _barrier()
    history["wall_s"] = time.perf_counter() - t_start
    return ann, snn, history
