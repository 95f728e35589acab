"""Small models and traces shared by the trace/simulator tests (kept tiny: 2 CPU cores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from snnsim.arch import ArchSpec
from snnsim.models import Model, build_model

# conv -> avg pool -> conv -> max pool -> conv -> (flatten) fc -> out: every folding case.
MIXED = ArchSpec("mixed", (8, "A", 12, "M", 16), (24,), (2, 8, 8), 10)
# avg pool folded straight into the first linear layer (flatten + avg).
AVG_FC = ArchSpec("avgfc", (6, 8, "A"), (16,), (1, 6, 6), 5)


def spiking_pops(model: Model) -> list[str]:
    """Names of the model's LIF / IF populations, in order."""
    return [p.name for p in model.populations if p.spiking]


def thresholds(model: Model) -> torch.Tensor:
    """Every spiking population's threshold, concatenated (the old ``model.thresholds``)."""
    return torch.cat([model.threshold(p).detach().reshape(-1) for p in spiking_pops(model)])


def leaks(model: Model) -> torch.Tensor:
    """Every spiking population's leak, concatenated (the old ``model.leaks``)."""
    return torch.cat([model.leak(p).detach().reshape(-1) for p in spiking_pops(model)])


def set_thresholds(model: Model, values: float | list[float] | torch.Tensor) -> None:
    """Set each spiking population's (scalar) threshold: one value for all, or one per population."""
    pops = spiking_pops(model)
    vals = [float(values)] * len(pops) if isinstance(values, (int, float)) else [float(v) for v in values]
    with torch.no_grad():
        for p, v in zip(pops, vals, strict=True):
            model.threshold(p).fill_(v)


def set_leaks(model: Model, values: float | list[float] | torch.Tensor) -> None:
    """Set each LIF population's leak: one value for all, or one per population."""
    pops = spiking_pops(model)
    vals = [float(values)] * len(pops) if isinstance(values, (int, float)) else [float(v) for v in values]
    with torch.no_grad():
        for p, v in zip(pops, vals, strict=True):
            model.leak(p).fill_(v)


def spiking_model(spec: ArchSpec = MIXED, seed: int = 0, timesteps: int = 4, threshold: float = 0.3,
                  prune: float = 0.0) -> Model:
    """An untrained SNN with thresholds low enough to spike; ``prune`` zeroes that share of weights."""
    model = build_model(spec, seed=seed, timesteps=timesteps)
    g = torch.Generator().manual_seed(seed + 1)
    n_pops = len(spiking_pops(model))
    set_thresholds(model, threshold)
    set_leaks(model, torch.linspace(0.8, 1.0, n_pops))
    synapses = [s for s in model.synapses if s is not None]
    with torch.no_grad():
        # the output layer starts at std 0.01 (hidden layers are He-initialised): too quiet
        synapses[-1].weight.mul_(30.0)
        if prune > 0:
            for syn in synapses:
                syn.weight[torch.rand(syn.weight.shape, generator=g) < prune] = 0.0
    channels = model.input_shape[0]
    model.dataset_info = {"name": "synthetic", "mean": [0.5] * channels, "std": [0.5] * channels,
                          "input_shape": list(model.input_shape), "num_classes": model.num_classes}
    model.eval()
    return model


def inputs(spec: ArchSpec | Model, n: int, seed: int = 0, zeros: float = 0.1) -> torch.Tensor:
    """Normalised-looking inputs in [-1, 1] with some exact zeros (skipped MACs)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *spec.input_shape), generator=g) * 2 - 1
    x[torch.rand(x.shape, generator=g) < zeros] = 0.0
    return x


def quantize(model: Model, bits: int) -> Model:
    """Per-layer symmetric quantization of bias-free weights, the layout `snnsim quantize`
    writes (tests' own copy)."""
    import copy

    q = copy.deepcopy(model)
    qmax = 2 ** (bits - 1) - 1
    scales, ints = {}, {}
    with torch.no_grad():
        for info, syn in zip(q.layer_infos, q.synapses, strict=True):
            w = syn.weight.detach().to(torch.float64)
            scale = float(torch.tensor(float(w.abs().max()) / qmax, dtype=torch.float32))
            codes = torch.clamp(torch.round(w / scale), -qmax, qmax).to(torch.int32)
            syn.weight.copy_(codes.to(torch.float32) * torch.tensor(scale, dtype=torch.float32))
            scales[info.name] = scale
            ints[f"{info.name}.weight"] = codes
    q.quantization = {"bits": bits, "scheme": "uniform-symmetric-per-layer", "scales": scales, "int_weights": ints}
    return q


def observed(model: Model, x: torch.Tensor, timesteps: int, exact_currents: bool = False
             ) -> tuple[torch.Tensor, dict[tuple[int, int], dict]]:
    """Run a chain model with an observer; return logits and {(layer, t): inputs/potential/spikes}
    (population k of a chain is driven by layer k; ``inputs`` of layer k are the spikes of
    population k - 1, or the input for layer 0). ``exact_currents``: as traces record."""
    seen: dict[tuple[int, int], dict] = {}

    def obs(ev) -> None:
        seen[(ev.index, ev.t)] = {"potential": ev.potential.detach().clone(),
                                  "spikes": None if ev.spikes is None else ev.spikes.detach().clone(),
                                  "current": ev.current.detach().clone()}

    with torch.no_grad():
        logits = model.forward_snn(x, timesteps, obs, exact_currents)
    for (k, t), entry in seen.items():
        entry["inputs"] = x if k == 0 else seen[(k - 1, t)]["spikes"]
    return logits, seen


def digits_model(tmp: Path) -> tuple[Model, torch.Tensor, np.ndarray, str]:
    """A trained digits SNN: the shipped/trained example checkpoint if one exists, else a small
    SNN trained here for a few hundred BPTT steps on scikit-learn's 8x8 digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x_all = torch.tensor((d.images / 16.0 - 0.5) / 0.5, dtype=torch.float32).unsqueeze(1)
    y_all = torch.tensor(d.target, dtype=torch.int64)
    perm = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(0))
    x_all, y_all = x_all[perm], y_all[perm]
    x_test, y_test = x_all[:200], y_all[:200].numpy()
    root = Path(__file__).resolve().parents[1]
    for cand in sorted((root / "snnsim" / "examples").glob("*.pt")):
        try:
            from snnsim.checkpoint import load_model

            m = load_model(cand)
        except Exception:
            continue
        if m.kind == "snn" and tuple(m.input_shape) == (1, 8, 8) and (m.dataset_info or {}).get("name") == "digits":
            return m, x_test, y_test, f"checkpoint {cand.name}"
    spec = ArchSpec("digits-small", (16, "A", 32, "A"), (64,), (1, 8, 8), 10, dropout_conv=0.0, dropout_fc=0.0)
    model = build_model(spec, seed=0, timesteps=4)
    model.dataset_info = {"name": "digits", "mean": [0.5], "std": [0.5], "input_shape": [1, 8, 8], "num_classes": 10}
    set_thresholds(model, 0.5)
    x_train, y_train = x_all[200:], y_all[200:]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(40):
        idx = torch.randint(0, len(y_train), (32,), generator=g)
        loss = torch.nn.functional.cross_entropy(model.forward_snn(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.clamp_leaks()
    model.eval()
    return model, x_test, y_test, "trained in-test (40 BPTT steps)"


def converted_resnet(x: torch.Tensor, calibrate_bn: bool = True, timesteps: int = 4, seed: int = 0,
                     arch: str = "digits-resnet") -> Model:
    """The digits ResNet (or ``arch``, e.g. ``digits-sew``) built as an ANN (``seed``), its
    BatchNorm statistics first updated on ``x`` when ``calibrate_bn`` (no weight training; so the
    folded convs carry nonzero biases), converted to an SNN at ``timesteps`` with thresholds
    balanced on ``x``; eval mode."""
    from snnsim.graph import build_graph
    from snnsim.training import convert_ann_to_snn

    ann = build_model(build_graph(arch), kind="ann", seed=seed)
    if calibrate_bn:
        ann.train()
        with torch.no_grad():
            for _ in range(5):
                ann.forward_ann(x)
    ann.eval()
    snn = convert_ann_to_snn(ann, [(x, torch.zeros(len(x), dtype=torch.long))], timesteps=timesteps)
    return snn.eval()
