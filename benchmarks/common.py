"""Shared helpers of the benchmark scripts: a VGG- or ResNet-sized SNN with realistic spike rates,
CIFAR-shaped synthetic inputs, machine description and timing utilities.

Nothing here is part of the ``snnsim`` package; the scripts in this directory import it
(``python benchmarks/<script>.py`` puts this directory on ``sys.path``).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnsim.graph import build_network
from snnsim.graph.schedule import foldable_batchnorms
from snnsim.models import Model, PopulationEvent, build_model
from snnsim.training import folded_snn

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


# ---------------------------------------------------------------------------- inputs
def cifar_like_inputs(n: int, seed: int = 0, shape: tuple[int, int, int] = (3, 32, 32)) -> torch.Tensor:
    """``n`` normalised CIFAR-shaped images with image-like statistics.

    Each image is low-frequency structure (4x4 and 8x8 noise, bilinearly upsampled) plus fine
    pixel noise, squashed to [0, 1] and then normalised with the CIFAR-10 mean/std, so the first
    conv sees spatially correlated analog input (almost no exact zeros: every input is a MAC).
    """
    g = torch.Generator().manual_seed(int(seed))
    c, h, w = shape
    out = torch.empty((n, c, h, w), dtype=torch.float32)
    step = 256
    for a in range(0, n, step):
        b = min(a + step, n)
        coarse = torch.nn.functional.interpolate(torch.randn((b - a, c, 4, 4), generator=g), size=(h, w),
                                                 mode="bilinear", align_corners=False)
        mid = torch.nn.functional.interpolate(torch.randn((b - a, c, 8, 8), generator=g), size=(h, w),
                                              mode="bilinear", align_corners=False)
        fine = torch.randn((b - a, c, h, w), generator=g)
        img = torch.sigmoid(1.2 * coarse + 0.6 * mid + 0.3 * fine)
        mean = torch.tensor(CIFAR_MEAN[:c] if c <= 3 else (0.5,) * c).view(1, c, 1, 1)
        std = torch.tensor(CIFAR_STD[:c] if c <= 3 else (0.25,) * c).view(1, c, 1, 1)
        out[a:b] = (img - mean) / std
    return out


# ---------------------------------------------------------------------------- model
def _lif_rate(cur: torch.Tensor, leak: float, theta: float) -> float:
    """Spike rate of the model's LIF (soft reset) driven by currents [T, ...] at threshold theta."""
    u = torch.zeros_like(cur[0])
    spikes = 0.0
    for t in range(cur.shape[0]):
        u = leak * u + cur[t]
        s = (u / theta - 1.0 > 0).to(u.dtype)
        spikes += float(s.sum())
        u = u - theta * s
    return spikes / cur.numel()


def calibrate_thresholds(model: Model, x: torch.Tensor, timesteps: int,
                         target: float | list[float] = 0.1, log: Callable[[str], None] | None = None) -> list[float]:
    """Set each LIF population's threshold, in schedule order, so its spike rate on ``x`` is ``target``.

    Population ``l``'s input currents do not depend on its own threshold, so they are captured in
    one forward pass (earlier populations already calibrated) and the threshold is found by
    bisection on a torch simulation of its LIF. Returns the achieved rates.
    """
    spiking = [p.name for p in model.populations if p.spiking]
    targets = [target] * len(spiking) if isinstance(target, float) else list(target)
    rates = []
    model.eval()
    for pop, goal in zip(spiking, targets, strict=True):
        cur: list[torch.Tensor] = []

        def obs(ev: PopulationEvent, pop: str = pop, cur: list[torch.Tensor] = cur) -> None:
            if ev.node == pop:
                cur.append(ev.current.detach().clone())

        with torch.no_grad():
            model.forward_snn(x, timesteps, obs)
        c = torch.stack(cur)  # [T, B, ...]
        leak = float(model.leak(pop).detach().mean())
        lo, hi = 1e-6, float(c.abs().max()) * timesteps + 1e-3
        for _ in range(40):
            mid = (lo * hi) ** 0.5
            if _lif_rate(c, leak, mid) > goal:
                lo = mid
            else:
                hi = mid
        theta = (lo * hi) ** 0.5
        with torch.no_grad():
            model.threshold(pop).fill_(theta)
        rates.append(_lif_rate(c, leak, theta))
        if log:
            log(f"  population {pop}: theta {theta:.4g} -> rate {rates[-1]:.3f}")
    return rates


def realistic_vgg(name: str = "vgg16", timesteps: int = 5, seed: int = 0, calib_samples: int = 16,
                  target: float | list[float] = 0.1, log: Callable[[str], None] | None = None) -> Model:
    """A VGG (or ResNet: ``resnet19``, ``resnet20``) SNN with random (Kaiming) weights and
    thresholds tuned for ``target`` spike rates.

    Linear layers get Kaiming-normal weights too (the model's default std 0.01 is too quiet to
    spike). A ResNet's batch norms (at their initial statistics) are folded into its convs, as
    conversion does. Leaks are the model default (0.9901). ``dataset_info`` names the synthetic set.
    """
    arch = build_network(name)
    model = build_model(arch, kind="snn", timesteps=timesteps, seed=seed)
    if foldable_batchnorms(model.graph):  # a ResNet's batch norms, at their initial statistics
        model = folded_snn(model.graph, model.state_dict(), timesteps)
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(seed + 1)
        for syn in model.synapses:
            if isinstance(syn, torch.nn.Linear):
                torch.nn.init.kaiming_normal_(syn.weight, nonlinearity="relu")
    shape = tuple(model.input_shape)
    c = shape[0]
    model.dataset_info = {"name": "synthetic", "mean": list(CIFAR_MEAN[:c]), "std": list(CIFAR_STD[:c]),
                          "input_shape": list(shape), "num_classes": model.num_classes}
    model.provenance = {"command": "benchmarks/common.py realistic_vgg", "seed": seed,
                        "note": f"random weights, thresholds calibrated to ~{target} spike rate"}
    x = cifar_like_inputs(calib_samples, seed=10_000 + seed, shape=shape)  # type: ignore[arg-type]
    calibrate_thresholds(model, x, timesteps, target, log)
    model.eval()
    return model


def cached_vgg(path: Path, name: str = "vgg16", timesteps: int = 5, seed: int = 0,
               log: Callable[[str], None] | None = None) -> Model:
    """:func:`realistic_vgg`, saved as an snnsim checkpoint at ``path`` and reused when present."""
    from snnsim.checkpoint import load_model, save_model

    if path.is_file():
        model = load_model(path)
        if model.name == name and model.timesteps == timesteps:
            model.eval()
            return model
    model = realistic_vgg(name, timesteps, seed, log=log)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, path)
    return model


# ---------------------------------------------------------------------------- machine/timing
def machine_description() -> dict[str, Any]:
    """nproc, CPU model, RAM, load average, library versions."""
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = "?"
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal"):
                    ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                    break
    except OSError:
        pass
    import numba

    return {"nproc": os.cpu_count(), "cpu": cpu, "ram": ram, "load": load_average(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "numpy": np.__version__,
            "numba": numba.__version__, "numba_threads": numba.get_num_threads(), "python": platform.python_version()}


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def describe_machine() -> str:
    d = machine_description()
    return (f"machine: {d['nproc']} CPUs ({d['cpu']}), {d['ram']} RAM, load average {d['load']}; "
            f"python {d['python']}, torch {d['torch']} ({d['torch_threads']} threads), numpy {d['numpy']}, "
            f"numba {d['numba']} ({d['numba_threads']} threads)")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def fmt_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A plain fixed-width text table (no pandas needed)."""
    if not rows:
        return "(empty)"
    cols = columns or list(rows[0].keys())
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, sep, *body])


def peak_rss_mib() -> float:
    """This process's peak resident set size (MiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
