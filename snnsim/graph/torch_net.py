"""The PyTorch backend of the network graph: :class:`GraphNet` runs a graph's schedule.

``GraphNet(graph, kind)`` is an ``nn.ModuleDict`` keyed by node name, so its state dict holds
``<node>.<param>`` (the graph's convention): ``<conv>.weight`` (``.bias``), ``<affine>.weight``
(``.bias``), ``<bn>.weight/.bias/.running_mean/.running_var`` (an ``nn.BatchNorm2d``),
``<scale>.scale``, ``<lif>.threshold`` and ``<lif>.leak`` (shape ``(1,)``, or ``(C,)`` with
``per_channel``; an ``IF`` has no leak; a ``CubaLIF`` also has ``<node>.alpha``, same shape). Nodes without values (pools, flatten, add, the
integrator) have no module.

It runs the one schedule of :func:`snnsim.graph.schedule.lower`, as an ANN (neurons are ReLU,
the integrator the identity) or as the SNN of :mod:`snnsim.models` generalised to graphs:

* the Input node's encoding at every timestep (``direct``: the sample; ``poisson``: its signed
  Poisson spikes, :mod:`snnsim.graph.encoding`), or a given sequence step by step; every node
  but a population computes per timestep;
* LIF: ``u <- leak * u + I``, ``s = spike(u / theta - 1)`` with the ``LinearSpike`` surrogate
  (``fire='>'``: strict; ``'>='``: ``z >= 0``, same surrogate); reset ``'subtract'``:
  ``u <- u - theta * s``, ``'value'``: ``u <- u * (1 - s) + v_reset * s``; IF: leak 1;
* CubaLIF: a second state, the synaptic current: ``i <- alpha * i + I``, then the LIF step on
  ``i`` (``u <- leak * u + i``, fire and reset as LIF; ``i`` is not reset); in the ANN a ReLU;
* the Integrator accumulates its input (and passes the accumulated value on); the logits are
  its value over T (the mean current); a graph whose output is not an Integrator's returns
  the mean of its output over T;
* dropout (training only, populations with ``dropout > 0``): one mask per sample, drawn at the
  first timestep right after the population fires, held for every timestep;
* ``exact_currents`` (what a trace records): every conv and affine output is the float32
  rounding of its sum computed in float64 (inputs, weights and bias widened exactly, so each
  product is exact and only the sum rounds, at 2^-53), instead of float32 sums in the order of
  the convolution algorithm. Those orders change with the batch size, the CPU and the library
  (oneDNN sums a batch of 64 differently from a batch of 1, bias included), and a neuron within
  one float32 rounding of its threshold fires in one order and not in another. Rounded from
  float64, the currents are the same on every machine and batch size, and the simulator's float
  replay computes the same numbers event by event (``docs/counting.md``, "Float arithmetic").
  Everything else (pools, adds, batch norm, the neurons) stays float32.

On a VGG graph (:func:`snnsim.graph.vgg_graph`) it is bit-identical to
snnsim's earlier VGG-chain ``SpikingNet`` (kept in the tests as the oracle), forward and backward,
dropout included: the arithmetic is written the same way, in the same order, with the random
draws at the same moments. :func:`convert_spikingnet_state` maps a version-1 checkpoint's state
(``synapses.<i>.weight``, ``thresholds``, ``leaks``) onto such a graph.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnsim.arch import ArchSpec, LayerInfo, PopulationInfo
from snnsim.errors import SnnsimError
from snnsim.graph.encoding import signed_poisson
from snnsim.graph.graph import Graph
from snnsim.graph.nodes import (
    IF,
    LIF,
    Add,
    Affine,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    CubaLIF,
    Flatten,
    GraphError,
    Integrator,
    MaxPool2d,
    Node,
    Scale,
    SumPool2d,
)
from snnsim.graph.schedule import Schedule, fold_structure, foldable_batchnorms, lower

#: Surrogate slope of the piecewise-linear ``LinearSpike`` of all the lineage's code.
SURROGATE_GAMMA = 0.3
#: Initial leak of every LIF population (DCT-SNN, the paper's authors).
DEFAULT_LEAK = 0.9901
#: Initial synaptic decay ``alpha`` of a CubaLIF population (snnTorch's tutorials' Synaptic).
DEFAULT_ALPHA = 0.9
#: A checkpoint holds the ANN (ReLU) or the SNN (spiking) view of one graph.
MODEL_KINDS = ("ann", "snn")


class LinearSpike(torch.autograd.Function):
    """Heaviside spike ``z > 0`` (``z = u / theta - 1``) with the piecewise-linear surrogate
    gradient ``gamma * max(0, 1 - |z|)`` of the lineage's code."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(z)
        return (z > 0).to(z.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> torch.Tensor:
        (z,) = ctx.saved_tensors
        return grad_out * SURROGATE_GAMMA * torch.clamp(1.0 - z.abs(), min=0.0)


class LinearSpikeGE(torch.autograd.Function):
    """``LinearSpike`` firing at ``z >= 0`` (``fire='>='``, SpikingJelly's rule), same surrogate."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(z)
        return (z >= 0).to(z.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> torch.Tensor:
        (z,) = ctx.saved_tensors
        return grad_out * SURROGATE_GAMMA * torch.clamp(1.0 - z.abs(), min=0.0)


_SPIKE: dict[str, Callable[..., torch.Tensor]] = {">": LinearSpike.apply, ">=": LinearSpikeGE.apply}


@dataclass(frozen=True)
class PopulationEvent:
    """What an observer sees for one population at one timestep: its input ``current``, the
    ``potential`` after integration and before reset (the accumulated value for an
    Integrator) and its ``spikes`` (before dropout; None for an Integrator)."""

    node: str
    kind: str
    index: int  # the population's index in the schedule
    t: int
    current: torch.Tensor
    potential: torch.Tensor
    spikes: torch.Tensor | None


Observer = Callable[[PopulationEvent], None]


class NeuronParams(nn.Module):
    """A spiking population's trainable values: ``threshold``, ``leak`` (LIF, CubaLIF) and
    ``alpha`` (CubaLIF: the synaptic decay)."""

    def __init__(self, size: int, leak: float | None, alpha: float | None = None) -> None:
        super().__init__()
        self.threshold = nn.Parameter(torch.ones(size))
        if leak is not None:
            self.leak = nn.Parameter(torch.full((size,), float(leak)))
        if alpha is not None:
            self.alpha = nn.Parameter(torch.full((size,), float(alpha)))


class ScaleParams(nn.Module):
    """A Scale node's factor (per channel, or one value)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(size))


def _broadcast(value: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A population's (1,) or (C,) parameter, shaped to act on a (B, *shape) tensor.

    A single value is indexed (a 0-dim tensor, as ``SpikingNet.thresholds[i]``), so that the
    autograd graph, and with it the order gradients are summed in, is SpikingNet's."""
    if value.numel() == 1:
        return value[0]
    return value.view(value.shape[0], *([1] * (len(shape) - 1)))


class GraphNet(nn.ModuleDict):
    """A graph run by PyTorch as an ANN (``kind='ann'``) or an SNN (``kind='snn'``).

    An ``nn.ModuleDict`` keyed by node name (``net['conv1']``), so the state dict has the
    graph's ``<node>.<param>`` names; see the module docstring for the semantics.
    """

    def __init__(self, graph: Graph, kind: str = "snn", timesteps: int = 5, leak: float = DEFAULT_LEAK) -> None:
        super().__init__()
        if not isinstance(graph, Graph):
            raise GraphError(f"GraphNet needs a Graph, got a {type(graph).__name__}",
                             "build one with snnsim.graph (vgg_graph, build_graph, ...)")
        if kind not in MODEL_KINDS:
            raise SnnsimError(f"GraphNet kind must be 'ann' or 'snn', got {kind!r}")
        if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
            raise SnnsimError(f"GraphNet timesteps must be a whole number >= 1, got {timesteps!r}")
        self.graph = graph
        self.kind = kind
        self.timesteps = timesteps
        self.schedule: Schedule = lower(graph)
        #: the VGG spec it was built from (spatial pruning edits its widths), else None
        self.spec: ArchSpec | None = None
        # Metadata carried through checkpoints (see snnsim.checkpoint).
        self.dataset_info: dict[str, Any] = {}
        self.provenance: dict[str, Any] = {}
        self.quantization: dict[str, Any] | None = None
        self._view: tuple[tuple[LayerInfo, ...], tuple[PopulationInfo, ...]] | None = None
        for step in self.schedule.steps:
            if hasattr(self, step.name):  # any node: its name keys values, state and observers
                raise GraphError(f"graph {graph.name!r}: node name {step.name!r} clashes with a GraphNet attribute",
                                 "rename the node")
            module = self._make_module(step.name, step.node, graph.info[step.name].in_shapes[0], leak)
            if module is None:
                continue
            self[step.name] = module
        self._init_weights()

    def __bool__(self) -> bool:  # a ModuleDict is falsy when empty; a network never is
        return True

    @staticmethod
    def _make_module(name: str, node: Node, in_shape: tuple[int, ...], leak: float) -> nn.Module | None:
        if isinstance(node, Conv2d):
            return nn.Conv2d(in_shape[0], node.out_channels, node.kernel_size, stride=node.stride,
                             padding=node.padding, dilation=node.dilation, groups=node.groups, bias=node.bias)
        if isinstance(node, Affine):
            return nn.Linear(in_shape[0], node.out_features, bias=node.bias)
        if isinstance(node, BatchNorm2d):
            return nn.BatchNorm2d(in_shape[0], eps=node.eps)
        if isinstance(node, Scale):
            return ScaleParams(in_shape[0] if node.per_channel else 1)
        if isinstance(node, CubaLIF):
            return NeuronParams(in_shape[0] if node.per_channel else 1, leak, DEFAULT_ALPHA)
        if isinstance(node, LIF | IF):
            return NeuronParams(in_shape[0] if node.per_channel else 1, leak if isinstance(node, LIF) else None)
        return None

    # ------------------------------------------------------------------ init
    def _init_weights(self) -> None:
        """SpikingNet's rule: Kaiming fan_out for convs, Kaiming fan_in for affines that feed a
        hidden population, N(0, 0.01) for an affine feeding the Integrator; biases 0; BN 1 / 0.

        Modules are built and initialised in schedule order, so a VGG graph built under the same
        seed as a SpikingNet gets the SpikingNet's weights."""
        succs = self.graph.successors
        for step in self.schedule.steps:
            if step.name not in self:
                continue
            m = self[step.name]
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                if any(isinstance(self.graph.nodes[s], Integrator) for s in succs[step.name]):
                    nn.init.normal_(m.weight, 0.0, 0.01)
                else:
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
            if isinstance(m, nn.Conv2d | nn.Linear | nn.BatchNorm2d) and m.bias is not None:
                nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------ the simulator's view
    def _simulation_view(self) -> tuple[tuple[LayerInfo, ...], tuple[PopulationInfo, ...]]:
        if self._view is None:
            from snnsim.graph.layers import simulation_view

            # an ANN's BatchNorm2d is folded for inference, so its layers are the SNN's
            self._view = simulation_view(fold_structure(self.graph))
        return self._view

    @property
    def layer_infos(self) -> tuple[LayerInfo, ...]:
        """The synapse layers as the simulator, the trace and the cost model see them
        (:func:`snnsim.graph.layers.simulation_view`)."""
        return self._simulation_view()[0]

    @property
    def populations(self) -> tuple[PopulationInfo, ...]:
        """The neuron populations (LIF / IF / CubaLIF / the output Integrator), in schedule order."""
        return self._simulation_view()[1]

    @property
    def num_layers(self) -> int:
        return len(self.layer_infos)

    def check_simulable(self) -> None:
        """Refuse, in one line, an SNN the event simulator cannot replay as it runs: one with a
        BatchNorm2d still in its graph (the simulator's layers have it folded into the conv;
        an ANN is folded on conversion), or with nodes :func:`simulation_view` does not support."""
        foldable = foldable_batchnorms(self.graph)
        if foldable:
            bn = foldable[0][1]
            raise GraphError(f"model {self.name!r} runs BatchNorm2d {bn!r} unfolded; the simulator needs it folded",
                             "convert the ANN with snnsim.training.convert_ann_to_snn, or fold it with "
                             "snnsim.graph.fold_batchnorm")
        self._simulation_view()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The input shape (no batch dimension)."""
        return self.schedule.input_shape

    @property
    def num_classes(self) -> int:
        """Outputs of the network (the logits' size)."""
        return math.prod(self.graph.info[self.graph.output].in_shapes[0])

    def param_count(self) -> int:
        """Weights and biases of every synapse (what spatial pruning shrinks)."""
        return sum(i.params for i in self.layer_infos)

    def mac_count(self) -> int:
        """Dense MACs of one inference, conventional formula (``LayerInfo.macs``)."""
        return sum(i.macs for i in self.layer_infos)

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def synapses(self) -> list[nn.Module | None]:
        """Each layer's module (``nn.Conv2d`` / ``nn.Linear``; None for an identity edge), in
        layer order. On an ANN with BatchNorm2d these are the unfolded convolutions."""
        return [self[i.name] if i.kind != "identity" else None for i in self.layer_infos]

    def synapse_parameters(self) -> list[nn.Parameter]:
        """Weights, biases and BN affine values: what weight decay applies to."""
        return [p for m in self.values() if not isinstance(m, NeuronParams) for p in m.parameters()]

    def neuron_parameters(self) -> list[nn.Parameter]:
        """Thresholds, leaks and synaptic decays of every spiking population, in schedule order."""
        return [p for m in self.values() if isinstance(m, NeuronParams) for p in m.parameters()]

    def threshold(self, population: str) -> torch.Tensor:
        """The threshold of a spiking population: shape (1,) or (C,) (``per_channel``)."""
        return self[population].threshold

    def leak(self, population: str) -> torch.Tensor:
        """The leak of a population: its parameter for a LIF / CubaLIF, ones for an IF."""
        m = self[population]
        return m.leak if hasattr(m, "leak") else torch.ones_like(m.threshold)

    def alpha(self, population: str) -> torch.Tensor | None:
        """The synaptic decay of a CubaLIF population (shape as its leak); None for a LIF / IF."""
        return getattr(self[population], "alpha", None)

    def neuron_table(self) -> list[dict[str, Any]]:
        """Per LIF / IF population: name, kind, threshold and leak (means for per-channel ones)."""
        rows = []
        for pop in self.populations:
            if pop.spiking:
                rows.append({"population": pop.name, "kind": pop.kind,
                             "threshold": float(self.threshold(pop.name).detach().float().mean()),
                             "leak": float(self.leak(pop.name).detach().float().mean())})
        return rows

    def layer_table(self) -> list[dict[str, Any]]:
        """Per-layer description rows (used by ``snnsim info`` and reports)."""
        rows = []
        for info in self.layer_infos:
            spiking = info.target in self
            rows.append({
                "layer": info.name,
                "kind": info.kind,
                "pool_in": info.pool or "",
                "in_shape": "x".join(map(str, info.in_shape)),
                "out_shape": "x".join(map(str, info.out_shape)),
                "kernel": info.kernel if info.kind == "conv" else "",
                "params": info.params,
                "macs": info.macs,
                "threshold": float(self.threshold(info.target).detach().float().mean()) if spiking else float("nan"),
                "leak": float(self.leak(info.target).detach().float().mean()) if spiking else float("nan"),
            })
        return rows

    def clamp_leaks(self) -> None:
        """Keep leaks and synaptic decays in [0, 1] and thresholds positive (call after each
        optimiser step)."""
        with torch.no_grad():
            for m in self.values():
                if isinstance(m, NeuronParams):
                    m.threshold.clamp_(min=1e-3)
                    if hasattr(m, "leak"):
                        m.leak.clamp_(0.0, 1.0)
                    if hasattr(m, "alpha"):
                        m.alpha.clamp_(0.0, 1.0)

    # ------------------------------------------------------------------ ops
    def _check_input(self, x: torch.Tensor, per_step_ok: bool = False) -> bool:
        """Check a batch's shape: [B, *input shape], or with ``per_step_ok`` also [B, T, *input
        shape] (a sequence, one input per timestep); returns whether it is a sequence."""
        want = self.schedule.input_shape
        if isinstance(x, torch.Tensor) and x.dim() == len(want) + 1 and tuple(x.shape[1:]) == want:
            return False
        if per_step_ok and isinstance(x, torch.Tensor) and x.dim() == len(want) + 2 and tuple(x.shape[2:]) == want:
            return True
        got = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        seq = f" or [B, T, {', '.join(map(str, want))}]" if per_step_ok else ""
        raise SnnsimError(f"graph {self.graph.name!r}: input has shape {got}, expected [B, "
                          f"{', '.join(map(str, want))}]{seq}", "pass a batch of inputs of the graph's input shape")

    @property
    def encoding(self) -> str:
        """The Input node's encoding (:data:`snnsim.graph.nodes.ENCODINGS`)."""
        return str(getattr(self.graph.nodes[self.graph.input], "encoding", "direct"))

    def set_encoding(self, encoding: str) -> None:
        """Give the Input node ``encoding`` (``--encoding``): the graph is rebuilt with it; weights,
        thresholds and the schedule's order are unchanged, the fingerprint is the new graph's."""
        import dataclasses

        from snnsim.graph.encoding import check_encoding

        check_encoding(encoding)
        if encoding == self.encoding:
            return
        nodes = dict(self.graph.nodes)
        nodes[self.graph.input] = dataclasses.replace(nodes[self.graph.input], encoding=encoding)
        self.graph = Graph(nodes, self.graph.edges, self.graph.name)
        self.schedule = lower(self.graph)
        self._view = None

    def _synapse_exact(self, name: str, h: torch.Tensor) -> torch.Tensor:
        """A conv's or affine's output as the float32 rounding of its float64 sum (see the
        module docstring, ``exact_currents``)."""
        m = self[name]
        w = m.weight.double()
        b = None if m.bias is None else m.bias.double()
        if isinstance(m, nn.Conv2d):
            y = F.conv2d(h.double(), w, b, m.stride, m.padding, m.dilation, m.groups)
        else:
            y = F.linear(h.double(), w, b)
        return y.float()

    def _op(self, name: str, node: Node, args: list[torch.Tensor], exact: bool = False) -> torch.Tensor:
        """A node that is not a population, the same in the ANN and at every SNN timestep
        (``exact``: synapses as :meth:`_synapse_exact`)."""
        h = args[0]
        if exact and isinstance(node, Conv2d | Affine):
            return self._synapse_exact(name, h)
        if isinstance(node, Conv2d | Affine | BatchNorm2d):
            return self[name](h)
        if isinstance(node, AvgPool2d):
            return F.avg_pool2d(h, node.kernel_size, node.stride, node.padding)
        if isinstance(node, SumPool2d):  # the average times the window (padding taps counted as 0)
            return F.avg_pool2d(h, node.kernel_size, node.stride, node.padding, divisor_override=1)
        if isinstance(node, MaxPool2d):
            return F.max_pool2d(h, node.kernel_size, node.stride, node.padding)
        if isinstance(node, Flatten):
            n = h.dim() - 1
            start = node.start_dim + n if node.start_dim < 0 else node.start_dim
            end = node.end_dim + n if node.end_dim < 0 else node.end_dim
            return h.flatten(start + 1, end + 1)
        if isinstance(node, Add):
            for other in args[1:]:
                h = h + other
            return h
        if isinstance(node, Scale):
            return h * _broadcast(self[name].scale, tuple(h.shape[1:]))
        raise GraphError(f"graph node {name!r}: the PyTorch backend cannot run a {node.kind}")

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, timesteps: int | None = None,
                observer: Observer | None = None) -> torch.Tensor:
        """Logits for a batch ``x`` of shape (B, *input shape), by ``self.kind``."""
        if self.kind == "ann":
            return self.forward_ann(x)
        return self.forward_snn(x, timesteps, observer)

    def forward_ann(self, x: torch.Tensor, activations: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """ANN pass; if ``activations`` is a dict, each spiking population's ReLU output is
        stored under its node name (before dropout)."""
        self._check_input(x)
        sched = self.schedule
        values: dict[str, torch.Tensor] = {sched.input: x}
        for k, (name, node, inputs, _shape) in enumerate(sched.steps):
            args = [values[i] for i in inputs]
            if isinstance(node, LIF | IF | CubaLIF):
                h = F.relu(args[0])
                if activations is not None:
                    activations[name] = h
                if self.training and node.dropout > 0:
                    h = F.dropout(h, node.dropout, training=True)
            elif isinstance(node, Integrator):
                h = args[0]
            else:
                h = self._op(name, node, args)
            values[name] = h
            for gone in sched.release[k]:
                del values[gone]
        return values[sched.output_source]

    def forward_snn(self, x: torch.Tensor, timesteps: int | None = None,
                    observer: Observer | None = None, exact_currents: bool = False) -> torch.Tensor:
        """SNN pass over ``timesteps`` (default ``self.timesteps``); see the module docstring
        (``exact_currents``: synaptic currents rounded from float64 sums, as traces record).

        ``x`` is [B, *input shape] (encoded by the Input node at every step: as is, or as
        signed Poisson spikes drawn from torch's global generator), or a sequence [B, T', *input
        shape] with T' >= timesteps whose step t is fed as is (a user's frames, or the recorded
        Poisson spikes of a trace)."""
        per_step = self._check_input(x, per_step_ok=True)
        steps = self.timesteps if timesteps is None else timesteps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise SnnsimError(f"timesteps must be a whole number >= 1, got {steps!r}")
        if per_step and x.shape[1] < steps:
            raise SnnsimError(f"the input sequence has {x.shape[1]} timesteps, fewer than the {steps} asked",
                              f"pass at most {x.shape[1]} timesteps")
        poisson = self.encoding == "poisson" and not per_step
        sched = self.schedule
        pop_index = {p.name: p.index for p in sched.populations}
        state: dict[str, torch.Tensor | float] = {p.name: 0.0 for p in sched.populations}
        syn: dict[str, torch.Tensor | float] = {}  # a CubaLIF population's synaptic current
        masks: dict[str, torch.Tensor] = {}
        src = sched.output_source
        src_integrates = isinstance(self.graph.nodes[src], Integrator)
        out_sum: torch.Tensor | float = 0.0
        for t in range(steps):
            if per_step:
                x_t = x[:, t]
            elif poisson:
                x_t = signed_poisson(x, torch.rand_like(x))
            else:
                x_t = x
            values: dict[str, torch.Tensor] = {sched.input: x_t}
            for k, (name, node, inputs, shape) in enumerate(sched.steps):
                args = [values[i] for i in inputs]
                if isinstance(node, LIF | IF | CubaLIF):
                    cur = args[0]
                    params = self[name]
                    theta = _broadcast(params.threshold, shape)
                    if isinstance(node, CubaLIF):
                        i_syn = _broadcast(params.alpha, shape) * syn.get(name, 0.0) + cur
                        syn[name] = i_syn
                        u = _broadcast(params.leak, shape) * state[name] + i_syn
                    elif isinstance(node, LIF):
                        u = _broadcast(params.leak, shape) * state[name] + cur
                    else:
                        u = state[name] + cur
                    s = _SPIKE[node.fire](u / theta - 1.0)
                    if observer is not None:
                        observer(PopulationEvent(name, node.kind, pop_index[name], t, cur, u, s))
                    if node.reset == "subtract":
                        state[name] = u - theta * s
                    else:
                        state[name] = u * (1.0 - s) + node.v_reset * s
                    if self.training and node.dropout > 0:
                        if name not in masks:
                            p = node.dropout
                            masks[name] = torch.bernoulli(torch.full_like(s, 1.0 - p)) / (1.0 - p)
                        h = s * masks[name]
                    else:
                        h = s
                elif isinstance(node, Integrator):
                    cur = args[0]
                    h = state[name] + cur
                    state[name] = h
                    if observer is not None:
                        observer(PopulationEvent(name, node.kind, pop_index[name], t, cur, h, None))
                else:
                    h = self._op(name, node, args, exact_currents)
                values[name] = h
                for gone in sched.release[k]:
                    del values[gone]
            if not src_integrates:
                out_sum = out_sum + values[src]
        final = state[src] if src_integrates else out_sum
        assert isinstance(final, torch.Tensor)
        return final / steps


# ----------------------------------------------------------------------------- SpikingNet
def convert_spikingnet_state(state: Mapping[str, torch.Tensor], layer_names: list[str],
                             spiking: list[bool]) -> dict[str, torch.Tensor]:
    """A ``SpikingNet`` state dict (``synapses.<i>.weight``, ``thresholds``, ``leaks``) as the
    state of its VGG graph: ``<layer>.weight``, ``<layer>_lif.threshold`` / ``.leak`` (shape (1,)).

    ``layer_names`` and ``spiking`` are the spec's layers (``ArchSpec.layers()``) in order; this
    is what converting a version-1 checkpoint needs."""
    n_spiking = sum(spiking)
    for key in ("thresholds", "leaks"):
        if key not in state or not isinstance(state[key], torch.Tensor) or tuple(state[key].shape) != (n_spiking,):
            raise SnnsimError(f"SpikingNet state: {key!r} must be a tensor of shape [{n_spiking}]",
                              "pass the state_dict of a SpikingNet built from this spec")
    out: dict[str, torch.Tensor] = {}
    for i, (name, spikes) in enumerate(zip(layer_names, spiking, strict=True)):
        key = f"synapses.{i}.weight"
        if key not in state or not isinstance(state[key], torch.Tensor):
            raise SnnsimError(f"SpikingNet state has no tensor {key!r} for layer {name!r}",
                              "pass the state_dict of a SpikingNet built from this spec")
        out[f"{name}.weight"] = state[key].detach().clone()
        if spikes:
            out[f"{name}_lif.threshold"] = state["thresholds"][i:i + 1].detach().clone()
            out[f"{name}_lif.leak"] = state["leaks"][i:i + 1].detach().clone()
    return out
