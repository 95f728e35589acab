"""Temporal pruning: gradually reduce the number of timesteps, fine-tuning at every stage.

The paper's abstract: "temporal pruning is performed by gradually reducing the timesteps of
simulation while training" ([ABS], ``../shared/docs/paper.md`` §2.10). The T sequence, the
epochs per step and whether thresholds are re-set are unknown; this module follows the same
first author's IIR-SNN code (paper.md §2.10, §6.3):

* a strictly decreasing list of T values, e.g. ``5,4,3,2,1``;
* every stage starts from the previous stage's weights, thresholds and leaks (all carried over,
  thresholds and leaks stay trainable) and is fine-tuned at the new T with a fresh optimiser
  (each IIR-SNN stage is a fresh run initialised from the previous checkpoint);
* a stage whose T equals the starting model's T is not trained again (the model is already
  trained there): it only records the starting accuracy, with 0 epochs;
* threshold rescaling when entering each trained stage (``threshold_rescale``):

  - a number ``c``: multiply every threshold by ``c``;
  - ``'ratio'``: multiply by ``T_new / T_prev``. Reason: ignoring the leak, a neuron driven by a
    constant current ``I`` fires at least once in ``T`` steps iff ``T * I > theta``; scaling
    theta by ``T_new/T_prev`` keeps exactly the neurons that fired at ``T_prev`` firing at
    ``T_new``, which counters the "layerwise spike vanishing" that the same first author names
    as the failure mode of training at very low T (paper.md §2.10). This is the CLI default,
    chosen by measurement on digits (``benchmarks/compression_digits.md``): at T=2 it gives
    96.9% mean over 3 seeds vs 93.3% without rescaling (T=5: 98.3%; 3 epochs per step, constant
    lr), and T=1 trains where without it every layer falls silent (10%, chance). The library
    default stays 1.0 (no change) so that :func:`prune_temporal` does only what it is asked;
* every stage anneals its own learning rate (CLI default ``--lr-schedule cosine``: from the
  fine-tuning lr to 0 over the stage), as each IIR-SNN stage is a fresh run with its own decay
  (paper.md §2.10: lr/5 at 60/80/90 % of the run). A fresh, un-annealed Adam at every stage
  kept shaking the weights: on digits, T=1 went from 95.3 % (3 epochs/step, no decay) to
  97.2-98.3 % (5 epochs/step, cosine; ``benchmarks/compression_digits.md``);
* two controls for "without the gradual schedule" (paper.md §7.1 item 7), both given the same
  fine-tuning budget:

  - **direct cut** (:func:`direct_plan`): cut T from the start straight to the final value and
    fine-tune there for the *same total number of epochs* as the gradual schedule;
  - **from the ANN** (:func:`train_from_ann`): the paper lineage's own control, "training SNNs
    directly with 1 timestep results in convergence failure" (IIR-SNN, paper.md §2.10):
    convert the parent ANN at the final T (thresholds balanced with the parent's percentile,
    its scale times ``T_final / T_parent``, the same T-ratio rule as above) and train the SNN
    there for the parent's SNN epochs plus the gradual schedule's epochs.

  Measured on digits (``benchmarks/compression_digits.md`` §2, 3 seeds each). With the
  defaults (5 -> 1, 5 epochs per step, cosine, ``ratio``) both controls are as good as the
  gradual path: at T=1 the direct cut is 0.3-1.4 points ahead on the current code, and the ANN
  converted at T=1 is level. Once thresholds are rescaled at the cut, a small network recovers
  from one big cut as well as from four small ones. With thresholds carried over unchanged
  (``threshold_rescale=1``, IIR-SNN's practice; 10 epochs per step) the gradual path beats the
  direct cut at T=2 on every seed (+0.6 to +3.1 points), and T=1 is silent for both.

The bookkeeping (:func:`plan_schedule`, :func:`direct_plan`) is pure and tested on its own;
:func:`prune_temporal` runs a plan with :func:`snnsim.training.train_snn`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snnsim.compression.spatial import measure
from snnsim.errors import SnnsimError
from snnsim.models import Model


@dataclass(frozen=True)
class Stage:
    """One temporal-pruning stage: fine-tune for ``epochs`` epochs at ``timesteps``."""

    timesteps: int
    epochs: int


def plan_schedule(schedule: Sequence[int], model_timesteps: int, epochs_per_step: int) -> list[Stage]:
    """Validate a T schedule against the starting model and attach epochs to every stage.

    Rules: non-empty; every T a positive integer; strictly decreasing; the first T at or below
    the model's T; ``epochs_per_step >= 1``. A stage at exactly the model's T gets 0 epochs (the
    starting model is already trained at that T; the stage records its accuracy).
    """
    if model_timesteps < 1:
        raise SnnsimError(f"the model's timesteps must be >= 1, got {model_timesteps}")
    if epochs_per_step < 1:
        raise SnnsimError(f"epochs per step must be >= 1, got {epochs_per_step}")
    steps = list(schedule)
    if not steps:
        raise SnnsimError("the timestep schedule is empty", "pass e.g. --schedule 5,4,3,2,1")
    for t in steps:
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise SnnsimError(f"timestep schedule {steps} contains {t!r}; every T must be a positive integer")
    for a, b in zip(steps, steps[1:], strict=False):
        if b >= a:
            raise SnnsimError(f"timestep schedule {steps} is not strictly decreasing ({a} then {b})",
                              "list T values from high to low, e.g. 5,4,3,2,1")
    if steps[0] > model_timesteps:
        raise SnnsimError(f"timestep schedule starts at T={steps[0]}, above the model's T={model_timesteps}",
                          f"start at or below {model_timesteps}")
    return [Stage(t, 0 if t == model_timesteps else int(epochs_per_step)) for t in steps]


def direct_plan(stages: Sequence[Stage]) -> list[Stage]:
    """The direct-cut control: one stage at the final T with the gradual plan's total epochs.

    A leading 0-epoch stage at the model's T is kept as the shared starting row.
    """
    if not stages:
        raise SnnsimError("cannot build a direct plan from an empty schedule")
    final = stages[-1].timesteps
    head = [stages[0]] if stages[0].epochs == 0 else []
    if head and head[0].timesteps == final:  # the plan never leaves the model's T
        return head
    return [*head, Stage(final, total_epochs(stages))]


Rescale = float | str


def rescale_factor(rescale: Rescale, t_prev: int, t_new: int) -> float:
    """The threshold multiplier when going from ``t_prev`` to ``t_new`` timesteps."""
    if isinstance(rescale, str):
        if rescale != "ratio":
            raise SnnsimError(f"unknown threshold rescale {rescale!r}", "use a positive number or 'ratio'")
        return t_new / t_prev
    if not (float(rescale) > 0):
        raise SnnsimError(f"threshold rescale must be > 0, got {rescale}", "use a positive number or 'ratio'")
    return float(rescale)


def parse_rescale(text: str) -> Rescale:
    """``'ratio'`` or a positive number (CLI helper)."""
    if text.strip().lower() == "ratio":
        return "ratio"
    try:
        value = float(text)
    except ValueError:
        raise SnnsimError(f"threshold rescale {text!r} is neither a number nor 'ratio'") from None
    rescale_factor(value, 1, 1)
    return value


def total_epochs(stages: Iterable[Stage]) -> int:
    """Sum of fine-tuning epochs over a plan."""
    return sum(s.epochs for s in stages)


TrainFn = Callable[..., list[dict[str, Any]]]


def stage_row(schedule: str, timesteps: int, epochs: int, cumulative: int, cut: Any, after: Any,
              threshold_factor: float, model: Model, history: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``temporal.csv`` row: accuracy right after the cut (``cut``) and after fine-tuning."""
    return {
        "schedule": schedule,
        "timesteps": timesteps,
        "epochs": epochs,
        "cumulative_epochs": cumulative,
        "accuracy_cut": cut.accuracy,
        "accuracy": after.accuracy,
        "spikes_per_inference": after.total_spikes,
        "threshold_factor": threshold_factor,
        "threshold_mean": _threshold_mean(model),
        "train_accuracy_last": float(history[-1].get("train_acc", float("nan"))) if history else float("nan"),
        "checkpoint": "",
    }


def _threshold_mean(model: Model) -> float:
    """Mean threshold over every neuron parameter (NaN for a net without spiking populations)."""
    values = [model.threshold(p.name).detach().reshape(-1) for p in model.populations if p.spiking]
    return float(torch.cat(values).mean()) if values else float("nan")


def prune_temporal(model: Model, stages: Sequence[Stage], train_loader: Any, test_loader: Any,
                   cfg: Any, out_dir: str | Path | None = None, label: str = "gradual",
                   threshold_rescale: Rescale = 1.0, file_pattern: str = "snn_T{t}.pt",
                   device: torch.device | str = "cpu", train_fn: TrainFn | None = None,
                   progress: bool = True) -> tuple[Model, list[dict[str, Any]]]:
    """Run a temporal-pruning plan; return the final model and one table row per stage.

    ``cfg`` is a :class:`snnsim.training.TrainConfig`; its ``epochs`` is replaced by each stage's.
    Each stage: set ``model.timesteps``, optionally rescale thresholds, measure the accuracy right
    after the cut (``accuracy_cut``), fine-tune with ``train_fn`` (default
    :func:`snnsim.training.train_snn`), measure accuracy and spikes per inference on
    ``test_loader``, and save ``out_dir/file_pattern`` (the input model is not modified).
    """
    if not stages:
        raise SnnsimError("temporal pruning needs at least one stage")
    rescale_factor(threshold_rescale, 1, 1)  # validate before any work
    if train_fn is None:
        from snnsim.training import train_snn as train_fn  # noqa: N813 (lazy: training is heavy)
    from snnsim.checkpoint import save_model

    model = copy.deepcopy(model)
    model.provenance = dict(model.provenance)
    parent_t = int(model.timesteps)
    rows: list[dict[str, Any]] = []
    cumulative = 0
    for k, stage in enumerate(stages):
        t = int(stage.timesteps)
        factor = rescale_factor(threshold_rescale, int(model.timesteps), t) if stage.epochs > 0 else 1.0
        model.timesteps = t
        if factor != 1.0:
            with torch.no_grad():
                for pop in model.populations:
                    if pop.spiking:
                        model.threshold(pop.name).mul_(factor)
        cut = measure(model, test_loader, device, t, desc=f"{label} T={t} cut", progress=progress)
        history: list[dict[str, Any]] = []
        if stage.epochs > 0:
            stage_cfg = dataclasses.replace(cfg, epochs=int(stage.epochs), seed=int(cfg.seed) + k)
            history = train_fn(model, train_loader, test_loader, stage_cfg, timesteps=t)
            model.timesteps = t
        cumulative += stage.epochs
        after = measure(model, test_loader, device, t, desc=f"{label} T={t}", progress=progress)
        row = stage_row(label, t, int(stage.epochs), cumulative, cut, after, factor, model, history)
        model.provenance.update({
            "temporal": {"schedule": label, "stage": k, "timesteps": t, "from_timesteps": parent_t,
                         "epochs": int(stage.epochs), "cumulative_epochs": cumulative,
                         "threshold_rescale": threshold_rescale, "threshold_factor": factor},
            "accuracy": after.accuracy,
        })
        if out_dir is not None:
            path = Path(out_dir) / file_pattern.format(t=t)
            save_model(model, path)
            row["checkpoint"] = str(path)
        rows.append(row)
    return model, rows


def from_ann_epochs(parent_snn_epochs: int, stages: Sequence[Stage]) -> int:
    """The from-ANN control's SNN epochs: the parent SNN's training plus the gradual fine-tuning."""
    return max(int(parent_snn_epochs), 0) + total_epochs(stages)


def from_ann_scale(parent_conversion: dict[str, Any], final_t: int) -> float:
    """Conversion threshold scale at ``final_t``: the parent's scale times ``final_t / T_parent``."""
    try:
        scale = float(parent_conversion["scale"])
        parent_t = int(parent_conversion["timesteps"])
    except (KeyError, TypeError, ValueError):
        raise SnnsimError("the model's provenance has no conversion record (scale, timesteps)",
                          "the from-ANN control needs a model made by `snnsim train` or `snnsim prune spatial`") from None
    if not (scale > 0 and parent_t >= 1):
        raise SnnsimError(f"recorded conversion scale {scale} / timesteps {parent_t} are not usable")
    return scale * final_t / parent_t


def train_from_ann(ann: Model, final_t: int, parent_conversion: dict[str, Any], epochs: int,
                   train_loader: Any, test_loader: Any, cfg: Any, out_path: str | Path | None = None,
                   device: torch.device | str = "cpu", train_fn: TrainFn | None = None,
                   progress: bool = True) -> tuple[Model, dict[str, Any]]:
    """The from-ANN control: convert ``ann`` at ``final_t`` and train the SNN there directly.

    Conversion uses the parent's percentile, leak and sample count with
    :func:`from_ann_scale`; training uses ``cfg`` with ``epochs`` (see :func:`from_ann_epochs`).
    Returns the model and a ``temporal.csv`` row (``accuracy_cut`` = right after conversion).
    """
    from snnsim.training import convert_ann_to_snn

    if train_fn is None:
        from snnsim.training import train_snn as train_fn  # noqa: N813 (lazy: training is heavy)
    from snnsim.checkpoint import save_model

    scale = from_ann_scale(parent_conversion, final_t)
    torch.manual_seed(int(cfg.seed))
    # the parent's recorded settings; convert_ann_to_snn's own defaults for any it lacks
    recorded = {arg: cast(parent_conversion[key]) for key, arg, cast in
                (("percentile", "percentile", float), ("leak", "leak", float), ("samples", "max_samples", int))
                if key in parent_conversion}
    snn = convert_ann_to_snn(ann, train_loader, final_t, scale=scale, **recorded)
    cut = measure(snn, test_loader, device, final_t, desc=f"from-ann T={final_t} converted", progress=progress)
    history = train_fn(snn, train_loader, test_loader, dataclasses.replace(cfg, epochs=int(epochs)),
                       timesteps=final_t) if epochs > 0 else []
    after = measure(snn, test_loader, device, final_t, desc=f"from-ann T={final_t}", progress=progress)
    snn.provenance.update({"temporal": {"schedule": "from-ann", "timesteps": final_t, "epochs": int(epochs),
                                        "conversion_scale": scale},
                           "accuracy": after.accuracy})
    row = stage_row("from-ann", int(final_t), int(epochs), int(epochs), cut, after, scale, snn, history)
    if out_path is not None:
        save_model(snn, out_path)
        row["checkpoint"] = str(out_path)
    return snn, row
