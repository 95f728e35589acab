"""`snnsim import --torch` (snnsim.interop.torch_import): a user's snnTorch / SpikingJelly module
as an snnsim SNN, traced by running the user's own module, and its counts against NeuroBench 2.3.

Every network here is written to a .py file with a factory in tmp_path, with seeded weights, the
way a user hands snnsim their model. Skipped per framework when it is not installed.
"""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from snnsim.errors import SnnsimError
from snnsim.models import PopulationEvent

Run = Callable[..., tuple[int, str, str]]
T = 4

SNNTORCH_NETS = '''
import torch
import snntorch as snn
from torch import nn


def cnn():
    """conv - Leaky - max-pool - linear - Leaky(output=True): NeuroBench's snnTorch layout."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), snn.Leaky(beta=0.9, init_hidden=True),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10),
        snn.Leaky(beta=0.8, init_hidden=True, output=True))


class Residual(nn.Module):
    """conv-BN-Leaky, a block conv-BN-Leaky-conv-BN + identity -> Leaky, max-pool, linear,
    Leaky(output=True); explicit-state calls (spk, mem = lif(x)) and a view."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1, self.l1 = nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), snn.Leaky(beta=0.9)
        self.c2, self.b2, self.l2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), snn.Leaky(beta=0.9)
        self.c3, self.b3 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.l3 = snn.Leaky(beta=0.9, reset_mechanism="zero")
        self.fc, self.lout = nn.Linear(8 * 4 * 4, 10), snn.Leaky(beta=0.7, output=True)

    def forward(self, x, mem=None):
        s1, _ = self.l1(self.b1(self.c1(x)), mem)
        s2, _ = self.l2(self.b2(self.c2(s1)))
        h = self.b3(self.c3(s2))
        h += s1
        s3, _ = self.l3(h)
        s = torch.nn.functional.max_pool2d(s3, 2)
        return self.lout(self.fc(s.view(s.size(0), -1)))


def residual():
    torch.manual_seed(1)
    net = Residual()
    for bn in (net.b1, net.b2, net.b3):  # eval statistics that are not the identity
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.1, 0.1)
    return net


def zero_reset():
    """A chain of zero-reset Leaky neurons (snnsim's value reset exactly), threshold 1."""
    torch.manual_seed(2)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), snn.Leaky(beta=0.85, init_hidden=True, reset_mechanism="zero"),
        nn.AvgPool2d(2), nn.Conv2d(6, 6, 3, padding=1), snn.Leaky(beta=0.6, init_hidden=True, reset_mechanism="zero"),
        nn.Flatten(), nn.Linear(6 * 4 * 4, 10))
    with torch.no_grad():
        net[3].weight.mul_(4.0)
    return net
'''

SYNAPTIC_NETS = '''
import torch
import snntorch as snn
from torch import nn


class SynapticCNN(nn.Module):
    """conv - Synaptic - avgpool - conv - Synaptic - flatten - linear, per-step call with explicit
    state (spk, syn, mem = lif(x)); beta = 1 with the subtract reset: snnsim's CubaLIF exactly."""

    def __init__(self, beta=1.0, reset="subtract"):
        super().__init__()
        torch.manual_seed(4)
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.lif1 = snn.Synaptic(alpha=0.7, beta=beta, threshold=1.0, reset_mechanism=reset)
        self.pool = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.lif2 = snn.Synaptic(alpha=0.5, beta=beta, threshold=0.8, reset_mechanism=reset)
        self.fc = nn.Linear(6 * 4 * 4, 10)
        with torch.no_grad():
            self.conv2.weight.mul_(3.0)

    def forward(self, x):
        spk1, syn1, mem1 = self.lif1(self.conv1(x))
        spk2, syn2, mem2 = self.lif2(self.conv2(self.pool(spk1)))
        return self.fc(spk2.flatten(1))


def synaptic_cnn():
    return SynapticCNN()


def synaptic_leaky():
    return SynapticCNN(beta=0.8)


def synaptic_zero():
    return SynapticCNN(beta=1.0, reset="zero")
'''

SPIKINGJELLY_NETS = '''
import torch
from torch import nn
from spikingjelly.activation_based import functional, layer, neuron


def _chain():
    torch.manual_seed(0)
    net = nn.Sequential(
        layer.Conv2d(1, 8, 3, padding=1, bias=False), layer.BatchNorm2d(8), neuron.LIFNode(tau=2.0),
        layer.MaxPool2d(2), layer.Conv2d(8, 8, 3, padding=1), neuron.IFNode(v_reset=None),
        layer.Flatten(), layer.Linear(8 * 4 * 4, 10))
    net[1].running_mean.uniform_(-0.2, 0.2)
    net[1].running_var.uniform_(0.5, 1.5)
    with torch.no_grad():
        net[0].weight.mul_(2.0)
    return net


def single():
    """Single-step mode: snnsim calls it once per timestep with [N, C, H, W]."""
    return _chain()


class Multi(nn.Module):
    """Multi-step mode: called once with [T, N, C, H, W]; returns the mean over T."""

    def __init__(self):
        super().__init__()
        self.net = _chain()
        functional.set_step_mode(self.net, "m")

    def forward(self, x_seq):
        return self.net(x_seq).mean(0)


def multi():
    return Multi()


class Sew(nn.Module):
    """A SEW connection (ADD): two populations' spikes summed, then pooled and read by the classifier."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.c1, self.n1 = layer.Conv2d(1, 8, 3, padding=1), neuron.IFNode()
        self.c2, self.n2 = layer.Conv2d(8, 8, 3, padding=1), neuron.IFNode()
        self.pool, self.fc = layer.AvgPool2d(2), layer.Linear(8 * 4 * 4, 10)
        with torch.no_grad():
            self.c1.weight.mul_(3.0)
            self.c2.weight.mul_(3.0)

    def forward(self, x):
        a = self.n1(self.c1(x))
        s = a + self.n2(self.c2(a))
        return self.fc(self.pool(s).flatten(1))


def sew():
    return Sew()


def container():
    """SeqToANNContainer wrappers, a hard reset to -0.5 without decay_input, an LIF output layer."""
    torch.manual_seed(3)
    net = nn.Sequential(
        layer.SeqToANNContainer(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)),
        neuron.LIFNode(tau=3.0, decay_input=False, v_reset=-0.5),
        layer.SeqToANNContainer(nn.MaxPool2d(2), nn.Flatten()), layer.Linear(8 * 4 * 4, 10), neuron.LIFNode(tau=2.0))
    functional.set_step_mode(net, "m")
    return net
'''


def write_module(tmp_path: Path, source: str, name: str = "net.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def load_factory(path: Path, factory: str) -> nn.Module:
    """The user's module as the user builds it (a fresh import of their file)."""
    spec = importlib.util.spec_from_file_location(f"test_user_{path.stem}_{factory}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, factory)().eval()


def inputs(n: int = 12, seed: int = 3) -> torch.Tensor:
    return torch.rand((n, 1, 8, 8), generator=torch.Generator().manual_seed(seed)) * 2


def save_inputs(tmp_path: Path, x: torch.Tensor) -> Path:
    path = tmp_path / "x.npz"
    np.savez(path, inputs=x.numpy(), labels=np.arange(len(x)) % 10)
    return path


def hooked_spikes(net: nn.Module, x: torch.Tensor, steps: int, modules: dict[str, str], reset: Callable[[], None],
                  multi: bool = False, batch_size: int = 64) -> dict[str, np.ndarray]:
    """The oracle: each named neuron module's spikes [N, T, neurons] from the user's own module,
    run batch by batch with the state reset in between."""
    got: dict[str, list[torch.Tensor]] = {}
    handles = []
    for pop, qual in modules.items():
        def hook(_m: nn.Module, _i: Any, out: Any, pop: str = pop) -> None:
            got.setdefault(pop, []).append((out[0] if isinstance(out, tuple) else out).detach())
        handles.append(net.get_submodule(qual).register_forward_hook(hook))
    out: dict[str, list[np.ndarray]] = {pop: [] for pop in modules}
    for a in range(0, len(x), batch_size):
        xb = x[a:a + batch_size]
        got.clear()
        reset()
        with torch.no_grad():
            seq = xb.dim() == 5  # one input per timestep [b, T, C, H, W]
            if multi:
                net(xb.transpose(0, 1).contiguous() if seq else xb.unsqueeze(0).repeat(steps, 1, 1, 1, 1))
            else:
                for t in range(steps):
                    net(xb[:, t] if seq else xb)
        for pop, seq in got.items():
            s = seq[0] if multi else torch.stack(seq, dim=0)  # [T, b, ...]
            out[pop].append(s.reshape(steps, len(xb), -1).transpose(0, 1).numpy().astype(bool))
    for h in handles:
        h.remove()
    return {pop: np.concatenate(v, axis=0) for pop, v in out.items()}


def trace_spikes(trace: Any, pop: str) -> np.ndarray:
    info = next(p for p in trace.populations if p.name == pop)
    return np.unpackbits(np.asarray(trace.spikes(pop)), axis=-1, count=info.neurons).astype(bool)


def snnsim_spikes(model: Any, x: torch.Tensor, steps: int) -> dict[str, np.ndarray]:
    """snnsim's own neuron model (GraphNet.forward_snn) on the imported graph."""
    got: dict[str, list[np.ndarray]] = {}

    def observe(ev: PopulationEvent) -> None:
        if ev.spikes is not None:
            got.setdefault(ev.node, []).append(ev.spikes.reshape(len(x), -1).numpy() != 0)

    with torch.no_grad():
        model.forward_snn(x, steps, observe)
    return {k: np.stack(v, axis=1) for k, v in got.items()}


# ============================================================================== NeuroBench parity
def _neurobench(net: nn.Module, x: torch.Tensor, steps: int, batch_size: int) -> dict[str, float]:
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import SNNTorchModel
    from torch.utils.data import DataLoader, TensorDataset

    data = x.unsqueeze(1).repeat(1, steps, 1, 1, 1)  # NeuroBench's layout [batch, T, ...]
    loader = DataLoader(TensorDataset(data, torch.arange(len(x)) % 10), batch_size=batch_size, shuffle=False)
    return Benchmark(SNNTorchModel(net), loader, [], [], [[], [SynapticOperations]]).run(quiet=True)["SynapticOperations"]


@pytest.mark.parametrize("factory", ["cnn", "residual"])
def test_snntorch_counts_equal_neurobench_on_the_users_model(factory: str, run_cli: Run, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Done-means: NeuroBench 2.3's SynapticOperations on the user's snnTorch module, and
    `snnsim import --torch` + `snnsim estimate --counting neurobench --inputs` on the same inputs.

    The estimate's trace, replayed by the NeuroBench profile, equals NeuroBench exactly. The
    estimate's per-layer mac / ac columns add one thing NeuroBench leaves out by definition: a
    bias add per neuron per timestep on every layer with a bias (BN-folded convs have one); and
    NeuroBench's Dense has no row for the residual identity add (it hooks Conv2d / Linear only)."""
    pytest.importorskip("snntorch")
    pytest.importorskip("neurobench")
    from snnsim.sim import replay
    from snnsim.trace import load_trace

    monkeypatch.chdir(tmp_path)  # the trace cache (traces/) lives here
    path = write_module(tmp_path, SNNTORCH_NETS)
    x = inputs()
    theirs = _neurobench(load_factory(path, factory), x, T, batch_size=4)
    assert theirs["Dense"] > 0 and theirs["Effective_ACs"] > 0  # NeuroBench reports 0 when a metric fails

    code, out, err = run_cli("import", "--torch", f"{path}:{factory}", "--input-shape", "1,8,8", "--timesteps", T,
                             "--out", tmp_path / "m.pt")
    assert code == 0, err
    assert "snntorch, single-step" in out
    code, out, err = run_cli("estimate", "--model", tmp_path / "m.pt", "--counting", "neurobench", "--inputs",
                             save_inputs(tmp_path, x), "--out", tmp_path / "rep", "--quiet")
    assert code == 0, err
    layers = pd.read_csv(tmp_path / "rep" / "layers.csv")
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv")
    from snnsim.checkpoint import load_model

    model = load_model(tmp_path / "m.pt")
    infos = {i.name: i for i in model.layer_infos}
    if factory == "residual":
        assert [i.kind for i in model.layer_infos].count("identity") == 1

    # layer by layer: the estimate's ops = NeuroBench's effective ops + the bias adds
    bias = np.array([infos[r.layer].neurons * T if infos[r.layer].bias else 0 for r in layers.itertuples()])
    mac = layers["mac"].to_numpy() - np.where(layers["mac"] > 0, bias, 0)
    ac = layers["ac"].to_numpy() - np.where(layers["mac"] > 0, 0, bias)
    assert mac.min() >= 0 and ac.min() >= 0
    assert mac.sum() == pytest.approx(theirs["Effective_MACs"], rel=1e-9)
    assert ac.sum() == pytest.approx(theirs["Effective_ACs"], rel=1e-9)
    dense = sum(r.dense_ops * T for r in layers.itertuples() if infos[r.layer].kind != "identity")
    assert dense == pytest.approx(theirs["Dense"], rel=1e-9)
    assert float(summary["mac_per_inference"].iloc[0]) == pytest.approx(layers["mac"].sum())

    # the trace the estimate recorded (from the user's module), under the NeuroBench profile
    trace = load_trace(summary["trace"].iloc[0])
    ours = replay(trace, model, counting="neurobench", batch_size=4, progress=False).neurobench
    assert ours is not None
    assert ours.effective_macs == pytest.approx(theirs["Effective_MACs"], rel=1e-9)
    assert ours.effective_acs == pytest.approx(theirs["Effective_ACs"], rel=1e-9)
    assert ours.dense == pytest.approx(theirs["Dense"], rel=1e-9)


# ============================================================================== mapping and spikes
def test_residual_mapping_folds_bn_and_keeps_the_shortcut(tmp_path: Path) -> None:
    pytest.importorskip("snntorch")
    from snnsim.interop.torch_import import import_torch

    path = write_module(tmp_path, SNNTORCH_NETS)
    result = import_torch(f"{path}:residual", (1, 8, 8), T)
    model, net = result.model, load_factory(path, "residual")
    g = model.graph
    assert not any(n.kind == "BatchNorm2d" for n in g.nodes.values())  # folded into c1, c2, c3
    assert list(g.predecessors["add"]) == ["c3", "l1"]  # h = bn3(conv3(s2)); h += s1
    assert g.nodes["lout"].kind == "Integrator"  # the returned Leaky(output=True): the output layer
    assert (g.nodes["l1"].reset, g.nodes["l3"].reset, g.nodes["l1"].fire) == ("subtract", "value", ">")
    assert result.populations == {"l1": ("l1", 0), "l2": ("l2", 0), "l3": ("l3", 0)}
    state = model.state_dict()
    k = net.b1.weight / torch.sqrt(net.b1.running_var + net.b1.eps)
    assert torch.allclose(state["c1.weight"], net.c1.weight * k.view(-1, 1, 1, 1), atol=1e-6)
    assert torch.allclose(state["c1.bias"], net.b1.bias - net.b1.running_mean * k, atol=1e-6)
    assert float(state["l1.leak"]) == pytest.approx(0.9) and float(state["l1.threshold"]) == 1.0
    assert any("subtract reset" in w for w in result.warnings)
    src = model.provenance["imported_from"]
    assert src["format"] == "torch" and src["framework"] == "snntorch" and src["factory"] == "residual"
    assert src["file_sha256"] and src["weights"] is None


def test_trace_records_the_users_own_spikes(run_cli: Run, tmp_path: Path) -> None:
    """`snnsim trace` runs the user's module: its populations hold exactly the spikes forward hooks
    see in a direct run (snnTorch's subtract reset included), and the logits are the module's
    mean output; `--engine event` uses snnsim's own neuron instead."""
    pytest.importorskip("snntorch")
    import snntorch.utils

    from snnsim.checkpoint import load_model
    from snnsim.trace import load_trace

    path = write_module(tmp_path, SNNTORCH_NETS)
    x = inputs(10, seed=5)
    assert run_cli("import", "--torch", f"{path}:residual", "--input-shape", "1,8,8", "--timesteps", T,
                   "--out", tmp_path / "m.pt")[0] == 0
    code, out, err = run_cli("trace", "--model", tmp_path / "m.pt", "--inputs", save_inputs(tmp_path, x), "--out",
                             tmp_path / "tr", "--batch-size", 4)
    assert code == 0, err
    trace = load_trace(tmp_path / "tr")
    net = load_factory(path, "residual")
    want = hooked_spikes(net, x, T, {"l1": "l1", "l2": "l2", "l3": "l3", "lout": "lout"},
                         lambda: snntorch.utils.reset(net), batch_size=4)
    for pop in ("l1", "l2", "l3"):
        assert np.array_equal(trace_spikes(trace, pop), want[pop]), pop
    assert want["l1"].any() and want["l3"].any()
    rates = want["lout"].mean(axis=1)  # the module's output: Leaky(output=True) spikes, mean over T
    assert np.allclose(np.asarray(trace.logits()), rates)
    model = load_model(tmp_path / "m.pt")
    ours = snnsim_spikes(model, x, T)
    assert not np.array_equal(ours["l1"], want["l1"])  # snnsim's subtract reset is not snnTorch's


@pytest.mark.parametrize("factory", ["zero_reset"])
def test_exact_mappings_give_the_frameworks_spikes(factory: str, tmp_path: Path) -> None:
    """snnTorch's zero reset is snnsim's value reset: snnsim's own neuron gives the same spikes."""
    pytest.importorskip("snntorch")
    import snntorch.utils

    from snnsim.interop.torch_import import import_torch

    path = write_module(tmp_path, SNNTORCH_NETS)
    model = import_torch(f"{path}:{factory}", (1, 8, 8), T).model
    net = load_factory(path, factory)
    x = inputs(8, seed=7)
    want = hooked_spikes(net, x, T, {"leaky_1": "1", "leaky_4": "4"}, lambda: snntorch.utils.reset(net))
    ours = snnsim_spikes(model, x, T)
    assert model.graph.nodes["out_integrator"].kind == "Integrator"  # a Linear output gets the integrator
    for pop in want:
        assert want[pop].any()
        assert np.array_equal(ours[pop], want[pop]), pop


def test_synaptic_maps_to_cubalif_and_its_spikes_are_the_users(tmp_path: Path) -> None:
    """snnTorch's Synaptic (beta = 1, subtract reset) is snnsim's CubaLIF exactly: the spikes the
    trace records by running the user's module (SourceRunner) equal snnsim's own PyTorch forward
    and the hooked module's; alpha, beta and the threshold are carried over."""
    pytest.importorskip("snntorch")
    import snntorch.utils

    from snnsim.interop.torch_import import SourceRunner, import_torch

    path = write_module(tmp_path, SYNAPTIC_NETS)
    result = import_torch(f"{path}:synaptic_cnn", (1, 8, 8), T)
    model = result.model
    assert not result.warnings or not any("Synaptic" in w for w in result.warnings)
    nodes = {p.name: model.graph.nodes[p.name] for p in model.populations if p.spiking}
    assert set(nodes) == {"lif1", "lif2"} and all(n.kind == "CubaLIF" and n.reset == "subtract" for n in nodes.values())
    assert torch.allclose(model.alpha("lif1"), torch.tensor([0.7])) and torch.allclose(model.alpha("lif2"), torch.tensor([0.5]))
    assert torch.equal(model.leak("lif1"), torch.ones(1)) and torch.allclose(model.threshold("lif2"), torch.tensor([0.8]))
    x = inputs(10, seed=5)
    bits, _ = SourceRunner(model).run(x, T)
    ours = snnsim_spikes(model, x, T)
    net = load_factory(path, "synaptic_cnn")
    want = hooked_spikes(net, x, T, {"lif1": "lif1", "lif2": "lif2"}, lambda: snntorch.utils.reset(net))
    for pop in ("lif1", "lif2"):
        recorded = np.unpackbits(bits[pop], axis=-1, count=ours[pop].shape[2]).astype(bool)
        assert 0 < want[pop].mean() < 1, pop
        assert np.array_equal(recorded, want[pop]) and np.array_equal(ours[pop], want[pop]), pop


@pytest.mark.parametrize(("factory", "word"), [("synaptic_leaky", "subtract reset"), ("synaptic_zero", "zero reset")])
def test_synaptic_resets_snnsim_cannot_say_are_warned(factory: str, word: str, tmp_path: Path) -> None:
    """beta < 1 with the subtract reset, and the zero reset: a warning naming the difference,
    and snnsim's own neuron indeed differs from the module's spikes."""
    pytest.importorskip("snntorch")
    import snntorch.utils

    from snnsim.interop.torch_import import import_torch

    path = write_module(tmp_path, SYNAPTIC_NETS)
    result = import_torch(f"{path}:{factory}", (1, 8, 8), T)
    assert any(word in w and "lif1" in w for w in result.warnings), result.warnings
    net = load_factory(path, factory)
    x = inputs(10, seed=5)
    want = hooked_spikes(net, x, T, {"lif1": "lif1"}, lambda: snntorch.utils.reset(net))
    assert want["lif1"].any() and not np.array_equal(snnsim_spikes(result.model, x, T)["lif1"], want["lif1"])


def test_functional_replay_reports_the_neuron_model_difference(run_cli: Run, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The trace has snnTorch's spikes; functional replay runs snnsim's neuron on the recorded
    input spikes, and the difference (snnTorch subtracts the threshold after the leak) is its
    spike-mismatch count."""
    pytest.importorskip("snntorch")
    monkeypatch.chdir(tmp_path)
    path = write_module(tmp_path, SNNTORCH_NETS.replace("beta=0.9, init_hidden=True)", "beta=0.5, init_hidden=True)"))
    assert run_cli("import", "--torch", f"{path}:cnn", "--input-shape", "1,8,8", "--timesteps", T,
                   "--out", tmp_path / "m.pt")[0] == 0
    code, out, err = run_cli("estimate", "--model", tmp_path / "m.pt", "--inputs", save_inputs(tmp_path, inputs()),
                             "--functional", "float", "--out", tmp_path / "rep", "--quiet")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if "spike mismatches" in ln)
    mismatches = int(line.split("spike mismatches ")[1].split(" ")[0])
    assert mismatches > 0


@pytest.mark.parametrize("framework,factory", [("snntorch", "residual"), ("spikingjelly", "multi")])
def test_per_timestep_inputs_run_through_the_users_module(framework: str, factory: str, run_cli: Run,
                                                          tmp_path: Path) -> None:
    """`--inputs` frames [N, T, C, H, W]: the trace holds them and the spikes the user's own
    module gives when fed frame by frame (per-step snnTorch, multi-step SpikingJelly)."""
    pytest.importorskip(framework)
    from snnsim.trace import load_trace

    if framework == "snntorch":
        import snntorch.utils

        path, reset = write_module(tmp_path, SNNTORCH_NETS), snntorch.utils.reset
    else:
        from spikingjelly.activation_based import functional

        path, reset = write_module(tmp_path, SPIKINGJELLY_NETS, "sj.py"), functional.reset_net
    frames = (torch.rand((9, T, 1, 8, 8), generator=torch.Generator().manual_seed(4)) < 0.6).float()
    np.savez(tmp_path / "f.npz", inputs=frames.numpy(), labels=np.arange(9) % 10)
    assert run_cli("import", "--torch", f"{path}:{factory}", "--input-shape", "1,8,8", "--timesteps", T,
                   "--out", tmp_path / "m.pt")[0] == 0
    code, out, err = run_cli("trace", "--model", tmp_path / "m.pt", "--inputs", tmp_path / "f.npz", "--out",
                             tmp_path / "tr", "--batch-size", 4)
    assert code == 0, err
    trace = load_trace(tmp_path / "tr")
    assert trace.input_spikes and trace.meta["input"]["shape"] == [9, T, 1, 8, 8]
    np.testing.assert_array_equal(np.asarray(trace.analog_input()), frames.numpy().astype(np.int8))
    from snnsim.checkpoint import load_model

    model = load_model(tmp_path / "m.pt")
    where = {p: w["module"] for p, w in model.provenance["imported_from"]["populations"].items()}
    net = load_factory(path, factory)
    want = hooked_spikes(net, frames, T, where, lambda: reset(net), multi=framework == "spikingjelly", batch_size=4)
    assert any(want[pop].any() for pop in where)
    for pop in where:
        assert np.array_equal(trace_spikes(trace, pop), want[pop]), pop


# ============================================================================== SpikingJelly
@pytest.mark.parametrize("factory", ["single", "multi", "container", "sew"])
def test_spikingjelly_imports_traces_and_estimates(factory: str, run_cli: Run, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Single- and multi-step SpikingJelly CNNs: import, trace (the module's own spikes, by
    hooks), estimate; LIFNode (tau=2, decay_input) and IFNode map exactly, so snnsim's own
    neuron gives the same spikes."""
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional

    from snnsim.checkpoint import load_model
    from snnsim.trace import load_trace

    monkeypatch.chdir(tmp_path)
    path = write_module(tmp_path, SPIKINGJELLY_NETS, "sj.py")
    x = inputs(10, seed=2)
    code, out, err = run_cli("import", "--torch", f"{path}:{factory}", "--input-shape", "1,8,8", "--timesteps", T,
                             "--out", tmp_path / "m.pt")
    assert code == 0, err
    multi = factory not in ("single", "sew")
    assert f"spikingjelly, {'multi' if multi else 'single'}-step" in out
    model = load_model(tmp_path / "m.pt")
    code, out, err = run_cli("trace", "--model", tmp_path / "m.pt", "--inputs", save_inputs(tmp_path, x),
                             "--out", tmp_path / "tr")
    assert code == 0, err
    trace = load_trace(tmp_path / "tr")
    net = load_factory(path, factory)
    where = {p: w["module"] for p, w in model.provenance["imported_from"]["populations"].items()}
    want = hooked_spikes(net, x, T, where, lambda: functional.reset_net(net), multi=multi)
    ours = snnsim_spikes(model, x, T)
    for pop in where:
        assert want[pop].any(), pop
        assert np.array_equal(trace_spikes(trace, pop), want[pop]), pop
        assert np.array_equal(ours[pop], want[pop]), pop
    fires = {model.graph.nodes[p].fire for p in where}
    assert fires == {">="}
    functional.reset_net(net)
    with torch.no_grad():  # the logits are the module's own output, averaged over T
        if multi:
            y = net(x.unsqueeze(0).repeat(T, 1, 1, 1, 1))
            y = y.mean(0) if y.dim() == 3 else y
        else:
            y = sum(net(x) for _ in range(T)) / T
    assert np.allclose(trace.logits(), y.numpy(), atol=1e-6)
    code, out, err = run_cli("estimate", "--model", tmp_path / "m.pt", "--trace", tmp_path / "tr", "--inputs",
                             tmp_path / "x.npz", "--out", tmp_path / "rep", "--quiet")
    assert code == 0, err
    assert (tmp_path / "rep" / "summary.csv").is_file()


def test_spikingjelly_neuron_values() -> None:
    """LIFNode: leak 1 - 1/tau, the threshold in units of tau (decay_input) above v_reset."""
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import neuron

    from snnsim.interop.torch_import import module_to_model

    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 6), neuron.LIFNode(tau=4.0, v_threshold=1.5, v_reset=0.5),
                        nn.Linear(6, 6), neuron.LIFNode(tau=4.0, decay_input=False, v_reset=None),
                        nn.Linear(6, 6), neuron.IFNode(v_threshold=2.0, v_reset=-1.0), nn.Linear(6, 3)).eval()
    model = module_to_model(net, (4,), 3, Path("net.py"), "make").model
    s = model.state_dict()
    assert float(s["lifnode_2.leak"]) == pytest.approx(0.75)
    assert float(s["lifnode_2.threshold"]) == pytest.approx(4.0 * (1.5 - 0.5))
    assert float(s["lifnode_4.threshold"]) == pytest.approx(1.0)
    assert float(s["ifnode_6.threshold"]) == pytest.approx(3.0)
    nodes = model.graph.nodes
    assert (nodes["lifnode_2"].reset, nodes["lifnode_4"].reset, nodes["ifnode_6"].reset) == ("value", "subtract", "value")
    assert {nodes[p].v_reset for p in ("lifnode_2", "ifnode_6")} == {0.0}


# ============================================================================== weights and sources
def test_weights_file_is_loaded_and_trace_checks_the_source(run_cli: Run, tmp_path: Path) -> None:
    pytest.importorskip("snntorch")
    from snnsim.checkpoint import load_model

    path = write_module(tmp_path, SNNTORCH_NETS)
    trained = load_factory(path, "cnn")
    with torch.no_grad():
        trained[0].weight.mul_(-3.0)
    torch.save(trained.state_dict(), tmp_path / "w.pt")
    code, out, err = run_cli("import", "--torch", f"{path}:cnn", "--weights", tmp_path / "w.pt", "--input-shape",
                             "1,8,8", "--timesteps", T, "--out", tmp_path / "m.pt")
    assert code == 0, err
    model = load_model(tmp_path / "m.pt")
    assert torch.equal(model.state_dict()["conv2d_0.weight"], trained[0].weight)
    assert model.provenance["imported_from"]["weights_sha256"]
    x = save_inputs(tmp_path, inputs(4))
    path.write_text(path.read_text() + "\n# edited\n")  # the source changed after the import
    code, out, err = run_cli("trace", "--model", tmp_path / "m.pt", "--inputs", x, "--out", tmp_path / "tr")
    assert code == 2 and "changed since it was imported" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tr").exists()
    code, out, err = run_cli("trace", "--model", tmp_path / "m.pt", "--inputs", x, "--out", tmp_path / "tr2",
                             "--engine", "event")  # snnsim's own neurons need no source
    assert code == 0 and (tmp_path / "tr2").is_dir(), err


def test_trace_refuses_a_factory_that_draws_new_weights(run_cli: Run, tmp_path: Path) -> None:
    pytest.importorskip("snntorch")
    path = write_module(tmp_path, SNNTORCH_NETS.replace("    torch.manual_seed(0)\n", ""))  # cnn(): unseeded
    assert run_cli("import", "--torch", f"{path}:cnn", "--input-shape", "1,8,8", "--timesteps", T,
                   "--out", tmp_path / "m.pt")[0] == 0
    code, out, err = run_cli("trace", "--model", tmp_path / "m.pt", "--inputs", save_inputs(tmp_path, inputs(4)),
                             "--out", tmp_path / "tr")
    assert code == 2 and "builds other weights than at the import" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tr").exists()


BAD_NETS = '''
import torch
import snntorch as snn
from torch import nn


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.lif = nn.Linear(64, 10), snn.Leaky(beta=0.9, init_hidden=True, output=True)

    def forward(self, x):
        x = x.flatten(1)
        if x.sum() > 0:
            x = x * 2
        return self.lif(self.fc(x))


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.lif = nn.Linear(128, 10), snn.Leaky(beta=0.9, init_hidden=True, output=True)

    def forward(self, x):
        x = x.flatten(1)
        return self.lif(self.fc(torch.cat([x, x], dim=1)))


class Looped(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.lif = nn.Linear(64, 10), snn.Leaky(beta=0.9)

    def forward(self, x):
        mem = None
        spk, mem = self.lif(self.fc(x.flatten(1)), mem)
        spk, mem = self.lif(self.fc(x.flatten(1)), mem)
        return spk, mem


def branchy():
    return Branchy()


def concat():
    return Concat()


def looped():
    return Looped()


def alpha_neuron():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10), snn.Alpha(alpha=0.8, beta=0.7, init_hidden=True,
                                                                    output=True))


def relu():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10),
                         snn.Leaky(beta=0.9, init_hidden=True, output=True))


def plain():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
'''


@pytest.mark.parametrize(("factory", "extra", "words"), [
    ("branchy", (), ["cannot be traced", "line LINE", "`if x.sum() > 0:`", "control flow"]),
    ("concat", (), ["torch.cat", "is not an operation snnsim maps"]),
    ("looped", (), ["earlier call", "loops over timesteps"]),
    ("alpha_neuron", (), ["Alpha", "Leaky and Synaptic"]),
    ("relu", (), ["ReLU", "does not map"]),
    ("plain", (), ["no spiking neuron"]),
    ("cnn", ("--input-shape", "3,8,8"), ["does not run on input shape", "--input-shape"]),
    ("cnn", ("--input-shape", "1,8"), ["does not run on input shape [2] + [1, 8]"]),
    ("cnn", ("--input-shape", "4,1,8,8"), ["one sample's shape"]),
    ("cnn", ("--weights", "WRONG"), ["does not fit the module", "'4.weight' has shape [10, 3]"]),
    ("cnn", ("--weights", "PICKLE"), ["weights_only=True"]),
    ("nofactory", (), ["defines no function 'nofactory'"]),
])
def test_bad_input_is_one_line_exit_2_nothing_written(factory: str, extra: tuple[str, ...], words: list[str],
                                                      run_cli: Run, tmp_path: Path) -> None:
    pytest.importorskip("snntorch")
    path = write_module(tmp_path, SNNTORCH_NETS + BAD_NETS)
    args = list(extra)
    if "WRONG" in args:  # the module's state with one weight of another shape
        state = load_factory(path, "cnn").state_dict()
        state["4.weight"] = torch.zeros(10, 3)
        torch.save(state, tmp_path / "w.pt")
        args[args.index("WRONG")] = str(tmp_path / "w.pt")
    if "PICKLE" in args:  # an object that needs arbitrary unpickling
        torch.save({"model": nn.Linear(2, 2)}, tmp_path / "w.pt")
        args[args.index("PICKLE")] = str(tmp_path / "w.pt")
    if "--input-shape" not in args:
        args += ["--input-shape", "1,8,8"]
    out_file = tmp_path / "m.pt"
    code, out, err = run_cli("import", "--torch", f"{path}:{factory}", "--timesteps", T, "--out", out_file, *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnsim: error:"), err
    line_no = 1 + path.read_text().splitlines().index("        if x.sum() > 0:")
    for w in words:
        assert w.replace("LINE", str(line_no)) in lines[0], (w, lines[0])
    assert not out_file.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("m.pt")]


def test_cli_refuses_mixed_sources(run_cli: Run, tmp_path: Path) -> None:
    for args, word in ((["--timesteps", 4], "give a NIR file or --torch"),
                       (["x.nir", "--torch", "n.py:f", "--timesteps", 4], "both given"),
                       (["x.nir", "--input-shape", "1,8,8"], "--torch imports only"),
                       (["--torch", "n.py:f", "--dt", "1e-3", "--timesteps", 4], "NIR files only"),
                       (["--torch", "n.py:f", "--timesteps", 4], "needs --input-shape"),
                       (["--torch", "n.py", "--timesteps", 4, "--input-shape", "1,8,8"], "FILE.py:FACTORY")):
        code, out, err = run_cli("import", *args, "--out", tmp_path / "m.pt")
        assert code == 2 and word in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not (tmp_path / "m.pt").exists()


def test_explicit_state_argument_with_default_traces(tmp_path: Path) -> None:
    """forward(x, mem=None) calling lif(cur, mem): traced with mem=None, the neuron keeps its state."""
    pytest.importorskip("snntorch")
    from snnsim.interop.torch_import import import_torch

    path = write_module(tmp_path, SNNTORCH_NETS)
    model = import_torch(f"{path}:residual", (1, 8, 8), T).model
    assert "l1" in {p.name for p in model.populations if p.spiking}
    with pytest.raises(SnnsimError, match="does not exist"):
        import_torch(f"{path}:cnn", (1, 8, 8), T, weights=str(tmp_path / "missing.pt"))
