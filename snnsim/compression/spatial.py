"""Structured spatial pruning by PCA of the average accumulated membrane potential.

The method (``../shared/docs/paper.md`` §2.8, §2.9; the paper's abstract fixes only that PCA is
applied "layer-wise" to "the average accumulated membrane potential of the neurons" and that the
pruning is structured):

1. run the trained SNN (eval mode: dropout off) on N training images at its training T0;
2. for every spiking layer record ``A_l = (1/T0) * sum_t u_l^t`` (shape ``[N, C, H, W]`` or
   ``[N, F]``) through the model's observer hook;
3. conv layers become a matrix ``[N*H*W, C]`` (every image position is one observation, channels
   are the features), FC layers ``[N, F]``;
4. PCA of the mean-centred matrix; the new width ``k_l`` is the smallest k whose cumulative
   explained-variance ratio reaches the threshold tau (``k_l >= 1``);
5. the narrower architecture (:meth:`~snnsim.arch.ArchSpec.with_widths` for a VGG spec,
   :func:`pruned_graph` for any graph: conv channels and hidden FC widths; input channels and
   classes stay fixed) is trained again from scratch (paper.md §2.9, §7.1 item 6: PCA gives
   counts, not a projection, so no weights are carried over).

On a residual graph every LIF / IF population is one PCA; populations joined by an identity
shortcut (a block's output and its input) must keep one width and get the largest k of their
group (:func:`group_widths`); a block's second conv and its 1x1 downsample follow the width of
the population they feed, batch norms follow by shape.

Choices where the paper is silent (each an option, the default named here):

* **Which tensor** (paper.md §2.8 step 3, [INF]): ``potential`` = u after integration and before
  the soft reset (default, the literal "accumulated membrane potential"), ``potential-after-reset``
  = u after the subtraction, ``current`` = the integrated input current ``W x_t`` with no reset
  (closest to the ANN pre-activation Garg et al.'s PCA was designed for).
* **tau** defaults to 0.999 (Garg et al. as recalled, [INF] in paper.md §6.4); not the paper's.
  Exception, tuned by measurement (``benchmarks/compression_digits.md`` §1c): **digits uses
  0.995**. On the 8x8 digits network (He-initialised, 99.17% at T=5) 0.999 keeps 1.47X fewer
  parameters only and 0.998 1.89X, while 0.995 gives 3.22X at -0.56 / -1.11 / -1.39 points
  after retraining (3 seeds); 0.994 (3.71X) costs 1.1-2.2 points. See :func:`default_variance`.
* **N** (unknown, paper.md §2.8 step 2): :func:`default_samples` takes
  ``max(2048, 2 x widest hidden FC)`` training images, or all of them if there are fewer. Conv
  layers then have N*H*W >> C observations (CIFAR conv13: 2048 x 4 = 8192 >= 16 x 512); FC
  layers see only N observations, so N must exceed the FC width or the spectrum is
  rank-limited (the reason for the 2 x FC term: 8192 images for the 4096-wide VGG classifier).
  Digits: all ~1400 training images. :func:`analyze_spatial` records a warning when a layer has
  fewer observations than features.
* **Depth** is not pruned (only widths), because the abstract speaks of "layer-wise significant
  dimensions" only.

PCA is computed exactly but streamed: a running mean and centred scatter matrix per layer are
merged batch by batch (Chan et al.'s parallel update, float64), so memory is ``O(C^2)`` per
layer instead of ``O(N*H*W*C)``; the eigenvalues of the scatter matrix are the squared singular
values of the centred data matrix, so the count equals an SVD of the full matrix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from snnsim.arch import ArchSpec
from snnsim.errors import SnnsimError
from snnsim.graph.graph import Graph
from snnsim.graph.layers import simulation_view
from snnsim.graph.schedule import fold_structure
from snnsim.models import Model, PopulationEvent
from snnsim.progress import progress_bar

ACTIVATION_MODES = ("potential", "potential-after-reset", "current")
DEFAULT_VARIANCE = 0.999
# Per-data-set tau where measurement on that data set chose another value (see module docstring).
VARIANCE_BY_DATASET: dict[str, float] = {"digits": 0.995}
MIN_DEFAULT_SAMPLES = 2048
_TOL = 1e-12  # slack on the cumulative-ratio comparison against tau (float round-off)


# --------------------------------------------------------------------------- PCA
class PCAAccumulator:
    """Streaming mean and centred scatter matrix of observations with ``n_features`` columns.

    ``update`` takes any number of ``[n, n_features]`` batches; the result is exactly that of the
    concatenated matrix (Chan, Golub & LeVeque's pairwise update, in float64).
    """

    def __init__(self, n_features: int, device: torch.device | str = "cpu") -> None:
        if n_features < 1:
            raise SnnsimError(f"PCA needs at least one feature, got {n_features}")
        self.n_features = int(n_features)
        self.count = 0
        self.mean = torch.zeros(n_features, dtype=torch.float64, device=device)
        self.scatter = torch.zeros(n_features, n_features, dtype=torch.float64, device=device)

    def update(self, x: torch.Tensor) -> None:
        """Add a batch of observations ``x`` of shape ``[n, n_features]``."""
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise SnnsimError(f"PCA batch has shape {tuple(x.shape)}, expected [n, {self.n_features}]")
        n_b = int(x.shape[0])
        if n_b == 0:
            return
        xb = x.detach().to(device=self.mean.device, dtype=torch.float64)
        mean_b = xb.mean(dim=0)
        xc = xb - mean_b
        scatter_b = xc.T @ xc
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean += delta * (n_b / n)
        self.scatter += scatter_b + torch.outer(delta, delta) * (n_a * n_b / n)
        self.count = n

    def eigenvalues(self) -> np.ndarray:
        """Variances along the principal axes (descending, >= 0), i.e. PCA's explained variances."""
        if self.count < 2:
            raise SnnsimError(f"PCA needs at least 2 observations, got {self.count}", "use more samples")
        cov = (self.scatter / (self.count - 1)).cpu().numpy()
        cov = 0.5 * (cov + cov.T)
        ev = np.linalg.eigvalsh(cov)[::-1]
        return np.clip(ev, 0.0, None)

    def curve(self) -> np.ndarray:
        """Cumulative explained-variance ratio, length ``n_features``; see :func:`cumulative_ratio`."""
        return cumulative_ratio(self.eigenvalues())


def cumulative_ratio(eigenvalues: np.ndarray) -> np.ndarray:
    """Cumulative explained-variance ratio of descending eigenvalues; last entry is exactly 1.

    A layer with zero total variance (constant activations, e.g. a dead layer) gets a curve of all
    ones, so its significant dimension count is 1 (the width can never drop to 0).
    """
    ev = np.asarray(eigenvalues, dtype=np.float64)
    total = float(ev.sum())
    if total <= 0.0 or not np.isfinite(total):
        return np.ones_like(ev)
    cum = np.cumsum(ev) / total
    cum[-1] = 1.0
    return np.minimum(cum, 1.0)


def dims_for_variance(curve: np.ndarray, variance: float) -> int:
    """Smallest k (>= 1) with ``curve[k-1] >= variance``."""
    _check_variance(variance)
    curve = np.asarray(curve, dtype=np.float64)
    if curve.size == 0:
        raise SnnsimError("explained-variance curve is empty")
    hits = np.nonzero(curve >= variance - _TOL)[0]
    return int(hits[0]) + 1 if hits.size else int(curve.size)


def explained_variance_curve(activations: np.ndarray) -> np.ndarray:
    """Cumulative explained-variance ratio of the mean-centred ``[n_obs, n_features]`` matrix.

    Entry ``k-1`` is the share of the total variance captured by the first k principal
    components; the last entry is 1.
    """
    x = _as_matrix(activations)
    acc = PCAAccumulator(x.shape[1])
    acc.update(torch.from_numpy(x))
    return acc.curve()


def significant_dims(activations: np.ndarray, variance: float = DEFAULT_VARIANCE) -> int:
    """Number of principal components needed to explain ``variance`` of the activations.

    ``activations`` is ``[n_obs, n_features]``; columns are mean-centred. Returns the smallest k
    (at least 1) whose cumulative explained-variance ratio is >= ``variance`` (in (0, 1]).
    """
    _check_variance(variance)
    return dims_for_variance(explained_variance_curve(activations), variance)


def default_variance(dataset: str | None) -> float:
    """tau for a data set: 0.995 for digits (measured), else 0.999 ([INF], paper.md §2.8)."""
    return VARIANCE_BY_DATASET.get(str(dataset or "").lower(), DEFAULT_VARIANCE)


def _as_matrix(activations: Any) -> np.ndarray:
    x = np.asarray(activations, dtype=np.float64)
    if x.ndim != 2:
        raise SnnsimError(f"activations must be a 2-D [n_obs, n_features] array, got shape {x.shape}")
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise SnnsimError(f"activations of shape {x.shape}: need >= 2 observations and >= 1 feature")
    if not np.isfinite(x).all():
        raise SnnsimError("activations contain NaN or Inf", "check the model and its inputs")
    return x


def _check_variance(variance: float) -> None:
    if not (isinstance(variance, (int, float)) and 0.0 < float(variance) <= 1.0):
        raise SnnsimError(f"variance threshold must be in (0, 1], got {variance!r}", "use e.g. 0.999")


# --------------------------------------------------------------------------- activations
def default_samples(train_size: int, model: Model | None = None) -> int:
    """N for the PCA: ``max(2048, 2 x widest hidden FC population)`` capped at the training-set size.

    See the module docstring for why (observations per feature in conv and FC layers).
    """
    want = MIN_DEFAULT_SAMPLES
    fc = [p.shape[0] for p in model.populations if p.spiking and len(p.shape) == 1] if model is not None else []
    if fc:
        want = max(want, 2 * max(fc))
    return max(1, min(int(train_size), want))


@dataclass
class SpatialAnalysis:
    """Result of the PCA step: per spiking layer, the width before/after and the curve."""

    layer_names: list[str]  # each population's first layer (what tables show)
    widths_before: list[int]
    widths_after: list[int]
    curves: list[np.ndarray]
    observations: list[int]
    samples: int
    variance: float
    mode: str
    timesteps: int
    warnings: list[str] = field(default_factory=list)
    populations: list[str] = field(default_factory=list)  # the LIF / IF populations, same order

    def dims_at(self, variance: float) -> list[int]:
        """Widths for another threshold, from the same curves (no new forward pass)."""
        return [dims_for_variance(c, variance) for c in self.curves]

    def table(self, variances: Iterable[float] = (0.9, 0.99, 0.999, 0.9999)) -> pd.DataFrame:
        """Per layer: width, observations, and k at several thresholds (for choosing tau)."""
        rows = []
        for i, name in enumerate(self.layer_names):
            row: dict[str, Any] = {"layer": name, "width": self.widths_before[i],
                                   "observations": self.observations[i], "k": self.widths_after[i]}
            for v in variances:
                row[f"k@{v:g}"] = dims_for_variance(self.curves[i], v)
            rows.append(row)
        return pd.DataFrame(rows)


def _to_observations(a: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B*H*W, C]; [B, F] -> [B, F]."""
    if a.ndim == 4:
        return a.permute(0, 2, 3, 1).reshape(-1, a.shape[1])
    return a.reshape(a.shape[0], -1)


def analyze_spatial(model: Model, loader: Iterable[Any], variance: float = DEFAULT_VARIANCE,
                    mode: str = "potential", device: torch.device | str = "cpu",
                    samples: int | None = None, timesteps: int | None = None,
                    progress: bool = True) -> SpatialAnalysis:
    """Run the SNN on up to ``samples`` images of ``loader`` and do the per-layer PCA.

    ``mode`` picks the tensor averaged over the timesteps (see the module docstring). The model
    is put in eval mode; every LIF / IF population gets one width, reported under the name of
    its first layer (``conv1``, ``fc1``, ``s1b1_conv2``, ...).
    """
    _check_variance(variance)
    if mode not in ACTIVATION_MODES:
        raise SnnsimError(f"unknown activation mode {mode!r}", f"choose one of {', '.join(ACTIVATION_MODES)}")
    if model.kind != "snn":
        raise SnnsimError("spatial pruning needs an SNN checkpoint, got an ANN", "pass the SNN trained by `snnsim train --kind snn`")
    steps = int(timesteps or model.timesteps)
    dev = torch.device(device)
    model = model.to(dev).eval()
    spiking = [p for p in model.populations if p.spiking]
    accs = [PCAAccumulator(p.shape[0], dev) for p in spiking]
    limit = samples if samples is not None else float("inf")
    seen = 0
    sums: dict[str, torch.Tensor] = {}

    def observer(ev: PopulationEvent) -> None:
        if ev.spikes is None:
            return
        if mode == "potential":
            val = ev.potential
        elif mode == "current":
            val = ev.current
        else:
            threshold = model.threshold(ev.node)
            val = ev.potential - (threshold[0] if threshold.numel() == 1 else
                                  threshold.view(-1, *([1] * (ev.spikes.dim() - 2)))) * ev.spikes
        sums[ev.node] = val.detach().double() if ev.t == 0 else sums[ev.node] + val.detach().double()

    total = None if samples is None else int(samples)
    bar = progress_bar(total=total, desc="PCA activations", unit="img", enabled=progress, leave=False)
    with torch.no_grad():
        for batch in loader:
            if seen >= limit:
                break
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            take = int(min(x.shape[0], limit - seen))
            x = x[:take].to(dev)
            sums.clear()
            model.forward_snn(x, steps, observer)
            for j, pop in enumerate(spiking):
                accs[j].update(_to_observations(sums[pop.name] / steps))
            seen += take
            bar.update(take)
    bar.close()
    if seen < 2:
        raise SnnsimError(f"PCA got only {seen} image(s)", "use --samples >= 2 and a non-empty training set")
    curves = [a.curve() for a in accs]
    names = [model.layer_infos[p.primary].name for p in spiking]
    warnings = [f"layer {name}: only {a.count} observations for {pop.shape[0]} features "
                f"(PCA rank-limited; use more --samples)"
                for name, pop, a in zip(names, spiking, accs, strict=True) if a.count <= pop.shape[0]]
    return SpatialAnalysis(
        layer_names=names,
        widths_before=[p.shape[0] for p in spiking],
        widths_after=[dims_for_variance(c, variance) for c in curves],
        curves=curves,
        observations=[a.count for a in accs],
        samples=seen,
        variance=float(variance),
        mode=mode,
        timesteps=steps,
        warnings=warnings,
        populations=[p.name for p in spiking],
    )


def width_groups(graph: Graph) -> list[list[str]]:
    """The LIF / IF populations of ``graph`` that must share one width, in schedule order: those
    joined by a residual identity shortcut (an ``Add`` of a population's own spikes), or summed
    by a SEW add, form one group; every other population is a group of its own."""
    layers, pops = simulation_view(fold_structure(graph))
    parent = {p.name: p.name for p in pops if p.spiking}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for info in layers:
        if info.kind == "identity" and info.source in parent and info.target in parent:
            parent[root(info.target)] = root(info.source)
        for part in info.parts[1:]:  # a SEW add sums its populations channel by channel
            if root(part) != root(info.parts[0]):
                parent[root(part)] = root(info.parts[0])
    groups: dict[str, list[str]] = {}
    for p in pops:
        if p.spiking:
            groups.setdefault(root(p.name), []).append(p.name)
    return list(groups.values())


def pruned_graph(graph: Graph, widths: dict[str, int], name: str | None = None) -> Graph:
    """``graph`` with new widths for its LIF / IF populations (``{population: width}``).

    Every synapse (conv / affine) driving a population gets that many output channels /
    features, so a residual block's second conv and its 1x1 downsample follow the width of the
    population they feed; batch norms and pools follow by shape inference. Populations joined by
    an identity shortcut must get one width (:func:`width_groups`): :func:`group_widths` chooses
    it. The input and the classes stay fixed."""
    import dataclasses

    from snnsim.graph.nodes import Affine, Conv2d

    layers, pops = simulation_view(fold_structure(graph))
    spiking = {p.name: p for p in pops if p.spiking}
    unknown = sorted(set(widths) - set(spiking))
    if unknown:
        raise SnnsimError(f"graph {graph.name!r} has no LIF / IF population {unknown[0]!r}")
    for group in width_groups(graph):
        got = {widths.get(p, spiking[p].shape[0]) for p in group}
        if len(got) > 1:
            raise SnnsimError(f"populations {', '.join(group)} are joined by a residual add and need one width, "
                              f"got {sorted(got)}", "give them the same width (group_widths)")
    nodes = dict(graph.nodes)
    for info in layers:
        if info.target not in widths or info.kind == "identity":
            continue
        w = int(widths[info.target])
        if not 1 <= w <= spiking[info.target].shape[0]:
            raise SnnsimError(f"population {info.target!r}: pruned width {w} must be in 1..{spiking[info.target].shape[0]}",
                              "spatial pruning can only narrow a layer")
        node = nodes[info.name]
        if isinstance(node, Conv2d):
            nodes[info.name] = dataclasses.replace(node, out_channels=w)
        elif isinstance(node, Affine):
            nodes[info.name] = dataclasses.replace(node, out_features=w)
    base = graph.name if graph.name.endswith("-pruned") else f"{graph.name}-pruned"
    return Graph(nodes, graph.edges, name=name or base)


def group_widths(graph: Graph, names: list[str], widths: list[int]) -> dict[str, int]:
    """Per-population widths from the PCA's per-population ``widths`` (``names`` are the
    populations in :func:`analyze_spatial`'s order): populations that share a width (a residual
    group, :func:`width_groups`) get the **largest** k of the group, so that no population of
    the group keeps fewer dimensions than its own PCA asks for."""
    if len(names) != len(widths):
        raise SnnsimError(f"group_widths got {len(names)} population names for {len(widths)} widths")
    k = dict(zip(names, (int(w) for w in widths), strict=True))
    groups = width_groups(graph)
    known = {p for group in groups for p in group}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SnnsimError(f"graph {graph.name!r} has no LIF / IF population {unknown[0]!r}",
                          "pass population names (SpatialAnalysis.populations), not layer names")
    missing = sorted(known - set(k))
    if missing:
        raise SnnsimError(f"group_widths needs a width for every population; {missing[0]!r} has none")
    out: dict[str, int] = {}
    for group in groups:
        width = max(k[p] for p in group)
        out.update({p: width for p in group})
    return out


def pruned_spec(spec: ArchSpec, widths: list[int]) -> ArchSpec:
    """The architecture with new conv/hidden-FC widths (input and classes fixed)."""
    if any(int(w) < 1 for w in widths):
        raise SnnsimError(f"pruned widths must all be >= 1, got {widths}")
    current = spec.widths()
    if any(int(w) > c for w, c in zip(widths, current, strict=False)):
        raise SnnsimError(f"pruned widths {widths} exceed the original widths {current}",
                          "spatial pruning can only narrow a layer")
    name = spec.name if spec.name.endswith("-pruned") else f"{spec.name}-pruned"
    return spec.with_widths([int(w) for w in widths], name=name)


# --------------------------------------------------------------------------- measurement
@dataclass
class Measurement:
    """Accuracy and spikes per inference (per layer, all timesteps) of a model on a data set."""

    accuracy: float
    spikes: np.ndarray  # [L]: mean spikes per inference emitted by each synaptic layer (0 for output)
    samples: int

    @property
    def total_spikes(self) -> float:
        return float(self.spikes.sum())


def measure(model: Model, loader: Iterable[Any], device: torch.device | str = "cpu",
            timesteps: int | None = None, desc: str = "measure", progress: bool = True) -> Measurement:
    """Accuracy and mean spikes per inference per layer on ``loader`` (eval mode, no noise).

    Spikes per inference of layer l = spikes emitted by all of its neurons over all T timesteps,
    averaged over the samples (the output layer emits none). An ANN gets zeros.
    """
    dev = torch.device(device)
    model = model.to(dev).eval()
    counts = torch.zeros(model.num_layers, dtype=torch.float64, device=dev)
    row = {p.name: p.primary for p in model.populations}

    def observer(ev: PopulationEvent) -> None:
        if ev.spikes is not None:
            counts[row[ev.node]] += ev.spikes.detach().sum().double()

    correct = 0
    seen = 0
    with torch.no_grad():
        for x, y in progress_bar(loader, desc=desc, unit="batch", enabled=progress, leave=False):
            x, y = x.to(dev), y.to(dev)
            if model.kind == "snn":
                logits = model.forward_snn(x, timesteps, observer)
            else:
                logits = model.forward_ann(x)
            correct += int((logits.argmax(dim=1) == y).sum())
            seen += int(x.shape[0])
    if seen == 0:
        raise SnnsimError("the evaluation data set is empty", "check --data-dir and the data set")
    return Measurement(correct / seen, (counts / seen).cpu().numpy(), seen)


def spatial_table(before: Model, after: Model, m_before: Measurement | None,
                  m_after: Measurement | None) -> pd.DataFrame:
    """Per-layer comparison table with a ``total`` row (accuracies only on the total row)."""
    rows: list[dict[str, Any]] = []
    for i, (a, b) in enumerate(zip(before.layer_infos, after.layer_infos, strict=True)):
        rows.append({
            "layer": a.name,
            "kind": a.kind,
            "channels_before": a.out_shape[0],
            "channels_after": b.out_shape[0],
            "params_before": a.params,
            "params_after": b.params,
            "compression": a.params / b.params if b.params else float("inf"),
            "macs_before": a.macs,
            "macs_after": b.macs,
            "spikes_before": float(m_before.spikes[i]) if m_before else float("nan"),
            "spikes_after": float(m_after.spikes[i]) if m_after else float("nan"),
            "accuracy_before": float("nan"),
            "accuracy_after": float("nan"),
        })
    pb, pa = before.param_count(), after.param_count()

    def channels(m: Model) -> int:
        return sum(p.shape[0] for p in m.populations if p.spiking)

    rows.append({
        "layer": "total", "kind": "",
        "channels_before": channels(before), "channels_after": channels(after),
        "params_before": pb, "params_after": pa, "compression": pb / pa if pa else float("inf"),
        "macs_before": before.mac_count(), "macs_after": after.mac_count(),
        "spikes_before": m_before.total_spikes if m_before else float("nan"),
        "spikes_after": m_after.total_spikes if m_after else float("nan"),
        "accuracy_before": m_before.accuracy if m_before else float("nan"),
        "accuracy_after": m_after.accuracy if m_after else float("nan"),
    })
    return pd.DataFrame(rows)
