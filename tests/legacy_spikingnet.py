"""snnsim's VGG-chain model before the network graph (issue 13), kept as a test oracle.

``GraphNet(vgg_graph(spec))`` must be bit-identical to this ``SpikingNet`` (forward, backward,
dropout, initialisation under a seed), and version-1 checkpoints hold its state dict
(``synapses.<i>.weight``, ``thresholds``, ``leaks``). Nothing in ``snnsim`` imports it.

The ANN and the SNN built from one :class:`~snnsim.arch.ArchSpec`.

Both share the same synaptic layers (``net.synapses``: bias-free ``Conv2d``/``Linear``, one per
:class:`~snnsim.arch.LayerInfo`), so hybrid conversion copies weights one to one.

SNN neuron (paper.md §2.2, the DIET-SNN / IIR-SNN form, chosen because the paper's temporal
pruning goes down to a few timesteps where the delayed ordering of the older code cannot work):

* direct input: the analog (normalised) image drives the first conv at every timestep;
* integrate ``u <- leak * u + W x_t`` (no bias), fire ``s = [u > theta]`` (strict), soft reset
  ``u <- u - theta * s``, all in the same timestep;
* threshold ``theta`` and leak ``leak`` are per-layer scalars, trainable; leak is clamped to
  [0, 1] after every optimiser step (:meth:`SpikingNet.clamp_leaks`), initialised to 0.9901
  (DCT-SNN, the same authors);
* surrogate gradient ``ds/du = gamma * max(0, 1 - |u/theta - 1|) / theta`` with gamma = 0.3
  (the piecewise-linear ``LinearSpike`` of all the group's code);
* pooling (average, or max = OR of spikes) acts on spike maps between layers;
* dropout: one mask per sample, held for all timesteps;
* the output layer has no threshold: it accumulates ``W x_t`` and the logits are the mean over
  timesteps (DCT-SNN; argmax-identical to the sum, and keeps logit scale fixed when T changes).

ANN: the same layers with ReLU, the same pooling and dropout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnsim.arch import ArchSpec, LayerInfo
from snnsim.graph.torch_net import DEFAULT_LEAK, MODEL_KINDS, LinearSpike

spike_fn = LinearSpike.apply


@dataclass
class LayerEvent:
    """What an observer sees for one synaptic layer at one timestep.

    ``inputs`` are the recorded input events *before* the folded pooling (analog image for the
    first layer, spikes of the previous spiking layer otherwise); ``current`` is ``W x_t``;
    ``potential`` the membrane potential after integration and before reset (the accumulated
    potential for the output layer); ``spikes`` the output spikes (None for the output layer).
    """

    layer: LayerInfo
    t: int
    inputs: torch.Tensor
    current: torch.Tensor
    potential: torch.Tensor
    spikes: torch.Tensor | None


Observer = Callable[[LayerEvent], None]


class SpikingNet(nn.Module):
    """A VGG-style network that runs as an ANN (``kind='ann'``) or an SNN (``kind='snn'``)."""

    def __init__(self, spec: ArchSpec, kind: str = "snn", timesteps: int = 5,
                 leak: float = DEFAULT_LEAK) -> None:
        super().__init__()
        if kind not in MODEL_KINDS:
            raise ValueError(f"kind must be 'ann' or 'snn', got {kind!r}")
        self.spec = spec
        self.kind = kind
        self.timesteps = int(timesteps)
        self.layer_infos: list[LayerInfo] = spec.layers()
        mods: list[nn.Module] = []
        for info in self.layer_infos:
            if info.kind == "conv":
                mods.append(nn.Conv2d(info.in_shape[0], info.out_shape[0], info.kernel,
                                      stride=info.stride, padding=info.padding, bias=False))
            else:
                mods.append(nn.Linear(info.in_features, info.out_features, bias=False))
        self.synapses = nn.ModuleList(mods)
        n_spiking = sum(1 for i in self.layer_infos if i.spiking)
        self.thresholds = nn.Parameter(torch.ones(n_spiking))
        self.leaks = nn.Parameter(torch.full((n_spiking,), float(leak)))
        # Metadata carried through checkpoints (see snnsim.checkpoint).
        self.dataset_info: dict[str, Any] = {}
        self.provenance: dict[str, Any] = {}
        self.quantization: dict[str, Any] | None = None
        self._init_weights()

    # ------------------------------------------------------------------ helpers
    def _init_weights(self) -> None:
        """Kaiming (He) init for every layer that feeds a ReLU/spiking layer; N(0, 0.01) for the output.

        There is no batch norm here, so hidden FC layers at N(0, 0.01) (the torchvision VGG init,
        made for BN nets) shrink the signal about 10X per layer: the narrow retrained nets of
        spatial pruning sat at chance for 4-5 of their 24 ANN epochs and ended under-trained.
        """
        last = len(self.synapses) - 1
        for i, m in enumerate(self.synapses):
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif i < last:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.normal_(m.weight, 0.0, 0.01)

    @property
    def num_layers(self) -> int:
        return len(self.layer_infos)

    def spiking_index(self, layer_index: int) -> int:
        """Index into ``thresholds``/``leaks`` for a spiking synaptic layer."""
        if not self.layer_infos[layer_index].spiking:
            raise IndexError(f"layer {layer_index} ({self.layer_infos[layer_index].name}) does not spike")
        return layer_index  # every layer but the last spikes, in order

    def clamp_leaks(self) -> None:
        """Keep leaks in [0, 1] and thresholds positive (call after each optimiser step)."""
        with torch.no_grad():
            self.leaks.clamp_(0.0, 1.0)
            self.thresholds.clamp_(min=1e-3)

    def _pool_and_flatten(self, info: LayerInfo, h: torch.Tensor) -> torch.Tensor:
        if info.pool == "avg":
            h = F.avg_pool2d(h, info.pool_kernel)
        elif info.pool == "max":
            h = F.max_pool2d(h, info.pool_kernel)
        if info.flatten:
            h = h.flatten(1)
        return h

    def _dropout_p(self, info: LayerInfo) -> float:
        return self.spec.dropout_conv if info.kind == "conv" else self.spec.dropout_fc

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, timesteps: int | None = None,
                observer: Observer | None = None) -> torch.Tensor:
        """Logits for a batch ``x`` of shape (B, C, H, W) (normalised images)."""
        if self.kind == "ann":
            return self.forward_ann(x)
        return self.forward_snn(x, timesteps, observer)

    def forward_ann(self, x: torch.Tensor, activations: list[torch.Tensor] | None = None) -> torch.Tensor:
        """ANN pass; if ``activations`` is a list, each hidden layer's ReLU output is appended."""
        h = x
        for info, syn in zip(self.layer_infos, self.synapses, strict=True):
            h = syn(self._pool_and_flatten(info, h))
            if info.spiking:
                h = F.relu(h)
                if activations is not None:
                    activations.append(h)
                if self.training:
                    h = F.dropout(h, self._dropout_p(info), training=True)
        return h

    def forward_snn(self, x: torch.Tensor, timesteps: int | None = None,
                    observer: Observer | None = None) -> torch.Tensor:
        """SNN pass over ``timesteps`` (default ``self.timesteps``); see the module docstring."""
        steps = int(timesteps or self.timesteps)
        potentials: list[torch.Tensor | float] = [0.0] * self.num_layers
        masks: list[torch.Tensor | None] = [None] * self.num_layers
        out_acc: torch.Tensor | float = 0.0
        for t in range(steps):
            h = x
            for i, (info, syn) in enumerate(zip(self.layer_infos, self.synapses, strict=True)):
                inputs = h
                cur = syn(self._pool_and_flatten(info, h))
                if not info.spiking:
                    out_acc = out_acc + cur
                    if observer is not None:
                        observer(LayerEvent(info, t, inputs, cur, out_acc, None))
                    continue
                theta = self.thresholds[i]
                u = self.leaks[i] * potentials[i] + cur
                s = spike_fn(u / theta - 1.0)
                if observer is not None:
                    observer(LayerEvent(info, t, inputs, cur, u, s))
                potentials[i] = u - theta * s
                if self.training and self._dropout_p(info) > 0:
                    if masks[i] is None:
                        p = self._dropout_p(info)
                        masks[i] = torch.bernoulli(torch.full_like(s, 1.0 - p)) / (1.0 - p)
                    h = s * masks[i]
                else:
                    h = s
        assert isinstance(out_acc, torch.Tensor)
        return out_acc / steps


def build_legacy(spec: ArchSpec, kind: str = "snn", timesteps: int = 5, leak: float = DEFAULT_LEAK,
                 seed: int | None = None) -> SpikingNet:
    """A freshly initialised legacy SpikingNet; ``seed`` makes the initial weights reproducible."""
    if seed is not None:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return SpikingNet(spec, kind=kind, timesteps=timesteps, leak=leak)
    return SpikingNet(spec, kind=kind, timesteps=timesteps, leak=leak)


def state_from_spikingnet(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights, thresholds and leaks of a legacy :class:`SpikingNet`, named for
    ``GraphNet(vgg_graph(model.spec))`` (load with ``load_state_dict(..., strict=True)``)."""
    from snnsim.errors import SnnsimError
    from snnsim.graph.torch_net import convert_spikingnet_state

    if not isinstance(model, SpikingNet):
        raise SnnsimError(f"state_from_spikingnet needs a SpikingNet, got a {type(model).__name__}",
                          "build it with build_legacy")
    return convert_spikingnet_state(model.state_dict(), [i.name for i in model.layer_infos],
                                    [i.spiking for i in model.layer_infos])


def v1_checkpoint(spec: ArchSpec, thresholds: list[float] | torch.Tensor, leaks: list[float] | torch.Tensor,
                  bits: int | None, dataset: dict[str, Any], provenance: dict[str, Any], seed: int = 0,
                  timesteps: int = 3) -> tuple[dict[str, Any], SpikingNet]:
    """A version-1 checkpoint dict as snnsim wrote it before the graph, and its legacy model:
    the SpikingNet's state (``synapses.<i>.weight``, ``thresholds``, ``leaks``), list scales
    and ``synapses.<i>.weight`` codes when ``bits`` is given, the v1 checksum."""
    from snnsim.checkpoint import state_checksum
    from snnsim.compression.quantize import dequantize, quantize_tensor

    legacy = build_legacy(spec, timesteps=timesteps, seed=seed)
    with torch.no_grad():
        legacy.thresholds.copy_(torch.as_tensor(thresholds, dtype=torch.float32))
        legacy.leaks.copy_(torch.as_tensor(leaks, dtype=torch.float32))
    quant = None
    if bits is not None:
        scales, codes = [], {}
        with torch.no_grad():
            for i, syn in enumerate(legacy.synapses):
                c, scale = quantize_tensor(syn.weight, bits)
                syn.weight.copy_(dequantize(c, scale))
                scales.append(scale)
                codes[f"synapses.{i}.weight"] = c
        quant = {"bits": bits, "scheme": "uniform-symmetric-per-layer", "scales": scales, "int_weights": codes}
    state = {k: v.detach().clone() for k, v in legacy.state_dict().items()}
    ckpt = {"format": "snnsim-model", "format_version": 1, "arch": spec.to_dict(), "kind": "snn",
            "timesteps": timesteps, "state_dict": state, "quantization": quant, "dataset": dataset,
            "provenance": provenance, "checksum": {"algorithm": "sha256", "state": state_checksum(state, quant)}}
    return ckpt, legacy.eval()
