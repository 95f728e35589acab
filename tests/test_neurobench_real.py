"""The neurobench profile against the real NeuroBench 2.3.0 package.

Install it without touching torch: ``pip install -e '.[dev,bench]'`` (snnsim pins torch==2.14.1,
so pip keeps it; neurobench pulls snntorch, tonic, torchaudio). Skipped when neurobench is absent.
"""

from __future__ import annotations

import pytest
import torch
from sim_testutil import MIXED, inputs, spiking_model
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from snnsim.recording import record_trace
from snnsim.sim import replay

neurobench = pytest.importorskip("neurobench")
from neurobench.benchmarks import Benchmark  # noqa: E402
from neurobench.metrics.workload import SynapticOperations  # noqa: E402
from neurobench.models import TorchModel  # noqa: E402


class _SnnForward(nn.Module):
    """NeuroBench's TorchModel calls ``net(batch)``; our SNN runs all timesteps in forward_snn,
    calling each nn.Conv2d/nn.Linear once per timestep, so NeuroBench's pre-hooks see every step."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_snn(x)


def _neurobench(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> dict:
    bench = Benchmark(TorchModel(_SnnForward(model)), DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False),
                      [], [], [[], [SynapticOperations]])
    return bench.run(quiet=True)["SynapticOperations"]


@pytest.mark.parametrize("batch_size", [4, 13])
def test_profile_equals_neurobench_synaptic_operations(tmp_path, batch_size: int) -> None:
    model = spiking_model(MIXED, timesteps=4, prune=0.3)
    x = inputs(MIXED, 13, seed=11)
    x[:4] = torch.randint(-1, 2, (4, *MIXED.input_shape)).float()  # ternary first batch: batch-dependent split
    y = torch.arange(13) % 10
    theirs = _neurobench(model, x, y, batch_size)
    assert theirs["Dense"] > 0  # NeuroBench swallows metric errors and reports 0: refuse that
    trace = record_trace(model, x, tmp_path / "nb", labels=y.numpy(), progress=False)
    ours = replay(trace, model, counting="neurobench", batch_size=batch_size, progress=False).neurobench
    assert ours is not None
    # NeuroBench accumulates in float32; at these sizes every partial sum is an exact integer
    assert ours.effective_macs == pytest.approx(float(theirs["Effective_MACs"]), rel=1e-7)
    assert ours.effective_acs == pytest.approx(float(theirs["Effective_ACs"]), rel=1e-7)
    assert ours.dense == pytest.approx(float(theirs["Dense"]), rel=1e-7)


@pytest.mark.parametrize("batch_size", [5])  # a short last batch; ~8 s per run on 2 cores
def test_resnet_profile_equals_neurobench_synaptic_operations(tmp_path, batch_size: int) -> None:
    """A residual graph (identity shortcuts, strided and 1x1 convs with folded-BN biases, an
    avg-pooled fc): NeuroBench hooks only its Conv2d / Linear modules, the profile agrees."""
    from snnsim.graph import build_graph
    from snnsim.models import build_model
    from snnsim.training import convert_ann_to_snn

    x = torch.rand((64, 1, 8, 8), generator=torch.Generator().manual_seed(0)) * 2 - 1
    ann = build_model(build_graph("digits-resnet"), kind="ann", seed=0)
    ann.train()
    with torch.no_grad():  # calibrate the BatchNorm statistics: the folded convs get biases
        for _ in range(5):
            ann.forward_ann(x)
    ann.eval()
    model = convert_ann_to_snn(ann, [(x, torch.zeros(len(x), dtype=torch.long))], timesteps=4)
    model.eval()
    assert any(i.kind == "identity" for i in model.layer_infos)
    xs, y = x[:12], torch.arange(12) % 10
    theirs = _neurobench(model, xs, y, batch_size)
    assert theirs["Dense"] > 0
    trace = record_trace(model, xs, tmp_path / "nb", labels=y.numpy(), progress=False)
    ours = replay(trace, model, counting="neurobench", batch_size=batch_size, progress=False).neurobench
    assert ours is not None
    assert ours.effective_macs == pytest.approx(float(theirs["Effective_MACs"]), rel=1e-7)
    assert ours.effective_acs == pytest.approx(float(theirs["Effective_ACs"]), rel=1e-7)
    assert ours.dense == pytest.approx(float(theirs["Dense"]), rel=1e-7)
