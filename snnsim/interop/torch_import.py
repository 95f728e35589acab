"""A user's PyTorch module (snnTorch, SpikingJelly, any ``nn.Module`` built from their neurons)
as an snnsim SNN, and the user's own module as the source of its spikes.

* :func:`import_torch` (``snnsim import --torch net.py:factory``) loads the user's file, calls
  ``factory()``, loads ``--weights`` (``torch.load(weights_only=True)``, ``strict=True``), traces
  the module's ``forward`` with :class:`SnnTracer` (a ``torch.fx`` tracer that keeps the frameworks'
  neurons and SpikingJelly's layers whole, as leaves; plain ``symbolic_trace`` fails inside both
  frameworks' neurons), runs the traced graph once on a probe input to learn every value's shape,
  and maps it node by node to an snnsim graph; batch norm is then folded (eval statistics).
* :class:`SourceRunner` runs the user's module for :func:`snnsim.recording.record_trace`: forward
  hooks on its neuron modules record the framework's own spikes, so the trace (and every count
  made from it) is exactly the user's model, reset, threshold and surrogate semantics included.

Calling convention (the one NeuroBench's ``SNNTorchModel`` uses for snnTorch): the module's
``forward`` takes one input and is called **once per timestep** with the input ``[N, C, H, W]``
(snnTorch; SpikingJelly in single-step mode), its neurons keeping their state between calls; a
SpikingJelly network in multi-step mode is called **once** with ``[T, N, C, H, W]``. Neuron state
is cleared before every batch (snnTorch: ``net.reset()`` where the module has one, else
``snntorch.utils.reset`` and every neuron's ``reset_mem``; SpikingJelly: ``functional.reset_net``).

Mapping (``docs/interop.md`` has the table): ``nn.Conv2d`` -> ``Conv2d``, ``nn.Linear`` ->
``Affine``, ``nn.BatchNorm2d`` -> ``BatchNorm2d`` (folded into the conv in front of it),
``nn.AvgPool2d`` / ``nn.MaxPool2d`` (and ``F.avg_pool2d`` / ``F.max_pool2d``; ``divisor_override=1``
is a ``SumPool2d``), ``nn.AdaptiveAvgPool2d`` / ``AdaptiveMaxPool2d`` where the output divides the
input (a fixed pool), ``nn.Flatten`` / ``torch.flatten`` / ``view`` / ``reshape`` (a merge of
per-sample dims: ``Flatten``; a change of the batch/time dims only: nothing), ``+`` / ``+=`` /
``torch.add`` -> ``Add``; ``Dropout`` and ``Identity`` vanish (eval). SpikingJelly's layer
wrappers (``layer.Conv2d``, ...) are their ``torch.nn`` base classes, and ``SeqToANNContainer`` /
``MultiStepContainer`` / ``StepModeContainer`` are their children in order. Anything else is
refused in one line naming it.

Neurons (fx: one snnsim population per *call*, so a module called twice is two populations):

* snnTorch ``Leaky(beta, threshold, reset_mechanism)``: ``mem <- beta*mem + I - theta*s_prev``
  (``'subtract'``) or ``mem <- beta*(1 - s_prev)*mem + I`` (``'zero'``), fire ``mem > theta``.
  -> ``LIF(leak = clamp(beta, 0, 1), threshold)``, fire ``'>'``; ``'zero'`` -> ``reset='value'``,
  ``v_reset = 0``: exact. ``'subtract'`` -> ``reset='subtract'``: snnsim subtracts before the
  leak (``u <- leak*(u - theta*s) + I``), snnTorch after it, so snnsim's own neuron differs by
  ``(1 - beta)*theta`` per spike (a warning; the trace has snnTorch's spikes). ``reset_delay=False``
  is approximated the same way. Refused: ``'none'``, ``inhibition``, ``state_quant``, graded spikes
  and the snnTorch neurons other than ``Leaky`` and ``Synaptic``.
* snnTorch ``Synaptic(alpha, beta, threshold, reset_mechanism)``: ``syn <- alpha*syn + I``, then
  ``mem <- beta*mem + syn - theta*s_prev`` (``'subtract'``) or ``mem <- (1 - s_prev)*(beta*mem + syn)``
  (``'zero'``: the whole step after a spike is zeroed, its input too; ``syn`` is never reset), fire
  ``mem > theta``. -> ``CubaLIF(alpha = clamp(alpha, 0, 1), leak = clamp(beta, 0, 1), threshold)``,
  fire ``'>'``. ``'subtract'`` -> ``reset='subtract'``: exact where ``beta = 1``, else the
  ``(1 - beta)*theta`` per spike of ``Leaky`` (a warning). ``'zero'`` -> ``reset='value'``,
  ``v_reset = 0``: snnsim's membrane restarts from 0 *and* integrates the step's current, snnTorch's
  stays 0 for that step (a warning; the trace has snnTorch's spikes). It is called with its own
  state only (``spk, syn, mem = lif(x)``, or ``init_hidden``), as ``Leaky``.
* SpikingJelly ``LIFNode(tau, decay_input, v_threshold, v_reset)``:
  ``H = V + (X - (V - V_r))/tau`` (``decay_input``) or ``H = V - (V - V_r)/tau + X``, fire
  ``H >= theta``, then ``V = V_r`` (hard) or ``V = H - theta`` (``v_reset=None``: soft, decay
  towards 0); ``V`` starts at ``V_r``. ``IFNode``: ``H = V + X``. Exactly snnsim's LIF / IF on
  ``u = g (V - V_r)`` (``g = tau`` with ``decay_input``, else 1): ``leak = 1 - 1/tau``,
  ``threshold = g (theta - V_r)``, ``reset='value'`` with ``v_reset = 0`` (hard) or ``'subtract'``
  (soft), fire ``'>='``. The weights stay the user's; the threshold carries the units. Other
  SpikingJelly neurons (PLIF, ...) are refused.

Output rule: the graph's output is what ``forward`` returns, its first element when it returns a
tuple (NeuroBench's ``spk, _ = net(x)``: an snnTorch ``Leaky(output=True)`` returns ``(spk, mem)``).
If that is a neuron's spikes, that population is the output (logits: spike counts over T); if it
is non-spiking (a ``Linear`` / ``Conv2d`` output, or a multi-step network's ``.mean(0)`` / ``.sum(0)``
of it), the output ``Integrator`` is put behind it (logits: its mean over T, the mean of the
module's outputs). A membrane potential as the output is refused.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import math
import operator
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from snnsim.errors import SnnsimError, TraceError, quote
from snnsim.graph.builders import GraphBuilder
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
    Shape,
    SumPool2d,
)
from snnsim.interop.nir_io import channel_values, safe_name
from snnsim.io import existing_file, file_sha256
from snnsim.models import Model

#: ``provenance['imported_from']['format']`` of a model imported by :func:`import_torch`.
SOURCE_FORMAT = "torch"
#: Neuron frameworks snnsim maps.
FRAMEWORKS = ("snntorch", "spikingjelly")
#: Batch size and (multi-step) timesteps of the shape probe; the batch is at least 2, so a
#: leading size of 1 is never the batch.
PROBE_BATCH, PROBE_STEPS = 2, 3
_MAPPED = ("snnsim maps Conv2d, Linear, BatchNorm2d, average / max / adaptive pools, flatten / view / reshape, add, "
           "Dropout / Identity and the frameworks' LIF / IF neurons (docs/interop.md)")
_SJ = "spikingjelly.activation_based"


def _prod(shape: tuple[int, ...]) -> int:
    return int(math.prod(shape))


# ============================================================================== the user's file
def parse_source(spec: str) -> tuple[Path, str]:
    """``'path/to/file.py:factory'`` as (file, factory name); one-line errors for a bad spec."""
    path, sep, factory = str(spec).rpartition(":")
    if not sep or not path or not factory.isidentifier():
        raise SnnsimError(f"--torch {spec!r} is not FILE.py:FACTORY", "name the file and the function that builds "
                          "the module, e.g. --torch net.py:make_net")
    p = existing_file(path, "--torch file", suffixes=(".py",), suffix_fix="pass the Python file that defines the factory")
    return p.resolve(), factory


def _user_line(exc: BaseException, path: Path) -> tuple[int, str] | None:
    """(line number, source text) of the innermost frame of ``exc`` in the user's file."""
    import linecache

    tb, hit = exc.__traceback__, None
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == path:
            hit = (tb.tb_lineno, linecache.getline(str(path), tb.tb_lineno).strip())
        tb = tb.tb_next
    return hit


def _user_frame(exc: BaseException, path: Path) -> str:
    """' (file.py line N)' for the innermost frame of ``exc`` in the user's file, else ''."""
    hit = _user_line(exc, path)
    return "" if hit is None else f" ({path.name} line {hit[0]})"


@contextmanager
def _importable_from(folder: Path) -> Iterator[None]:
    """The user's folder on ``sys.path`` while their file runs, so its own imports resolve."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with suppress(ValueError):
            sys.path.remove(str(folder))


def load_factory_module(path: Path, factory: str) -> nn.Module:
    """Run the user's file and call ``factory()``; the ``nn.Module`` it returns, in eval mode."""
    digest = file_sha256(path)[:16]
    name = f"snnsim_user_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SnnsimError(f"--torch file {str(path)!r} cannot be loaded as a Python module", "pass a .py file")
    module = importlib.util.module_from_spec(spec)
    shown = f"{path.name}:{factory}"
    with _importable_from(path.parent):
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:
            sys.modules.pop(name, None)
            raise SnnsimError(f"--torch file {str(path)!r} failed to run{_user_frame(exc, path)}: "
                              f"{type(exc).__name__}: {quote(exc, 100)}", "fix the file (it must import cleanly)") from None
        make = getattr(module, factory, None)
        if not callable(make):
            raise SnnsimError(f"--torch file {str(path)!r} defines no function {factory!r}",
                              "name the function that returns the module")
        try:
            net = make()
        except (Exception, SystemExit) as exc:
            raise SnnsimError(f"{shown}() failed{_user_frame(exc, path)}: {type(exc).__name__}: {quote(exc, 100)}",
                              "fix the factory; it is called with no arguments") from None
    if not isinstance(net, nn.Module):
        raise SnnsimError(f"{shown}() returned a {type(net).__name__}, not a torch.nn.Module",
                          "return the network module")
    return net.cpu().eval()


def load_weights(net: nn.Module, path: Path) -> None:
    """Load a state dict into ``net``: ``torch.load(weights_only=True)`` (no arbitrary objects are
    unpickled) and ``load_state_dict(strict=True)``; a mismatch is one line naming the first
    missing or unexpected key, or the first shape that differs."""
    shown = repr(str(existing_file(path, "weights file", "check the --weights path")))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for objects weights_only refuses, RuntimeError for a non-torch file
        raise SnnsimError(f"weights file {shown} cannot be read with torch.load(weights_only=True) "
                          f"({type(exc).__name__}: {quote(exc, 100)})",
                          "save the weights with torch.save(module.state_dict(), path)") from None
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise SnnsimError(f"weights file {shown} holds a {type(state).__name__}, not a state dict",
                          "save the weights with torch.save(module.state_dict(), path)")
    own = net.state_dict()
    fix = "pass the state_dict saved from this module (the same factory and sizes)"
    missing = [k for k in own if k not in state]
    if missing:
        raise SnnsimError(f"weights file {shown} does not fit the module: it has no {missing[0]!r}"
                          f" ({len(missing)} key{'s' if len(missing) > 1 else ''} missing)", fix)
    unexpected = [k for k in state if k not in own]
    if unexpected:
        raise SnnsimError(f"weights file {shown} does not fit the module: unexpected key {unexpected[0]!r}"
                          f" ({len(unexpected)} in all)", fix)
    for key, want in own.items():
        got = state[key]
        if not isinstance(got, torch.Tensor):
            raise SnnsimError(f"weights file {shown}: {key!r} is a {type(got).__name__}, not a tensor", fix)
        if tuple(got.shape) != tuple(want.shape):
            raise SnnsimError(f"weights file {shown} does not fit the module: {key!r} has shape {list(got.shape)}, "
                              f"the module's is {list(want.shape)}", fix)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # e.g. a dtype torch cannot copy: still one line
        raise SnnsimError(f"weights file {shown} does not load into the module ({quote(exc, 100)})", fix) from None


# ============================================================================== frameworks
@dataclass(frozen=True)
class _Kinds:
    """The neuron and layer classes of the frameworks the user's module uses (None: not used)."""

    snntorch: Any = None  # the snntorch package
    sj_neuron: Any = None  # spikingjelly.activation_based.neuron
    sj_layer: Any = None  # spikingjelly.activation_based.layer
    sj_functional: Any = None

    @classmethod
    def of(cls, net: nn.Module) -> _Kinds:
        """Import the frameworks whose classes occur in ``net`` (they are already installed)."""
        roots = {type(m).__module__.split(".")[0] for m in net.modules()}
        snt = importlib.import_module("snntorch") if "snntorch" in roots else None
        if snt is not None:
            importlib.import_module("snntorch.utils")  # utils.reset, which `import snntorch` does not load
        sj = {}
        if "spikingjelly" in roots:
            for part in ("neuron", "layer", "functional"):
                sj[part] = importlib.import_module(f"{_SJ}.{part}")
        return cls(snt, sj.get("neuron"), sj.get("layer"), sj.get("functional"))

    def is_snntorch_neuron(self, m: nn.Module) -> bool:
        return self.snntorch is not None and isinstance(m, self.snntorch.SpikingNeuron)

    def is_sj_neuron(self, m: nn.Module) -> bool:
        return self.sj_neuron is not None and type(m).__module__.startswith(f"{_SJ}.neuron")

    def is_sj_layer(self, m: nn.Module) -> bool:
        return self.sj_layer is not None and type(m).__module__.startswith(f"{_SJ}.layer")

    def is_neuron(self, m: nn.Module) -> bool:
        return self.is_snntorch_neuron(m) or self.is_sj_neuron(m)

    def framework(self, net: nn.Module, shown: str) -> str:
        found = sorted({"snntorch" if self.is_snntorch_neuron(m) else "spikingjelly"
                        for m in net.modules() if self.is_neuron(m)})
        if not found:
            raise SnnsimError(f"{shown} has no spiking neuron module (snnTorch Leaky / Synaptic, SpikingJelly LIFNode / IFNode)",
                              "build it with snnTorch or SpikingJelly neurons (snnsim costs spiking networks)")
        if len(found) > 1:
            raise SnnsimError(f"{shown} mixes snnTorch and SpikingJelly neurons", "use one framework's neurons")
        return found[0]


class SnnTracer(fx.Tracer):
    """``torch.fx`` tracer that keeps the frameworks' neurons (snnTorch ``SpikingNeuron``,
    SpikingJelly's neuron modules) and SpikingJelly's layer wrappers and containers whole, besides
    torch.nn's own leaves: their ``forward`` has data-dependent control flow (state
    initialisation, step modes) that symbolic tracing cannot follow."""

    def __init__(self, kinds: _Kinds) -> None:
        super().__init__()
        self.kinds = kinds
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if self.kinds.is_neuron(m) or self.kinds.is_sj_layer(m):
            return True
        return super().is_leaf_module(m, module_qualified_name)


# ============================================================================== tracing
def _trace_error_line(exc: BaseException, path: Path) -> str:
    """The user's source line that stopped the tracer, as ' at file.py line N: `code`'."""
    hit = _user_line(exc, path)
    return "" if hit is None else f" at {path.name} line {hit[0]}: `{hit[1][:80]}`"


def trace_module(net: nn.Module, kinds: _Kinds, path: Path, shown: str) -> fx.GraphModule:
    """``net``'s forward as an fx graph (:class:`SnnTracer`); forward arguments after the input
    that have defaults are traced with their defaults; a module that cannot be traced is one
    line naming the operation (the user's source line) that stopped the tracer."""
    try:
        params = list(inspect.signature(net.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p.name for p in positional if p.default is p.empty]
    if len(required) > 1:
        raise SnnsimError(f"{shown}: forward({', '.join(required)}) needs {len(required)} inputs; snnsim calls it with "
                          "the input alone, once per timestep (or once with [T, N, ...] in SpikingJelly's multi-step mode)",
                          "keep the neuron state in the neurons (snnTorch: init_hidden=True or lif(x) without mem)")
    concrete = {p.name: p.default for p in positional[1:] if p.default is not p.empty}
    tracer = SnnTracer(kinds)
    try:
        graph = tracer.trace(net, concrete_args=concrete or None)
    except Exception as exc:  # TraceError (control flow on a traced value), TypeError, ...
        raise SnnsimError(f"{shown} cannot be traced by torch.fx{_trace_error_line(exc, path)} "
                          f"({type(exc).__name__}: {quote(exc, 110)})",
                          "remove Python control flow that depends on tensor values from forward (torch.fx "
                          "traces it once with symbolic values)") from None
    return fx.GraphModule(tracer.root, graph, type(net).__name__)


class _ProbeError(Exception):
    def __init__(self, node: fx.Node, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.node, self.exc = node, exc


class _Probe(fx.Interpreter):
    """Runs the traced graph once, keeping every node's result's shape (tensors) or value."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.shapes: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except Exception as exc:
            raise _ProbeError(n, exc) from exc
        self.shapes[n] = _shape_tree(result)
        return result


def _shape_tree(value: Any) -> Any:
    """A result's shape: a tensor's size tuple, a tuple of those for a tuple, else None."""
    if isinstance(value, torch.Tensor):
        return tuple(int(v) for v in value.shape)
    if isinstance(value, tuple | list):
        return tuple(_shape_tree(v) for v in value)
    return None


def _source_line(n: fx.Node, path: Path) -> str:
    """' (file.py line N)' from an fx node's recorded stack trace, if it passes the user's file."""
    found = re.findall(r'File "([^"]+)", line (\d+)', n.stack_trace or "")
    for file, line in reversed(found):
        try:
            if Path(file).resolve() == path:
                return f" ({path.name} line {line})"
        except OSError:
            continue
    return ""


# ============================================================================== mapping
@dataclass
class _Value:
    """What an fx node computes, in snnsim's terms.

    ``tensor``: the value of snnsim node ``node`` (per-sample ``shape``; ``lead`` = the probe's
    batch / time dims; ``spikes``: binary, a neuron's output maybe flattened); ``tuple``: a
    neuron's ``(spk, mem)``; ``mem``: a membrane potential (``neuron`` = the module's name);
    ``readout``: a multi-step output averaged (or summed) over time; ``const``: anything that is
    not a tensor (sizes, None)."""

    kind: str
    node: str = ""
    shape: Shape = ()
    lead: tuple[int, ...] = ()
    spikes: bool = False
    items: tuple[_Value, ...] = ()
    neuron: str = ""


_CONST = _Value("const")
_ADD_FUNCS = (operator.add, operator.iadd, torch.add)
_ADD_METHODS = ("add", "add_", "__add__", "__iadd__")
_RESHAPE_FUNCS = (torch.flatten, torch.reshape)
_RESHAPE_METHODS = ("flatten", "view", "reshape")
_SAME_METHODS = ("contiguous", "clone", "detach", "float")
_SHAPE_METHODS = ("size", "dim")
_READOUT_METHODS = ("mean", "sum")
_READOUT_FUNCS = (torch.mean, torch.sum)


def _op_name(n: fx.Node) -> str:
    """An fx node's operation as the user wrote it: ``torch.cat``, ``operator.mul``, ``Tensor.relu``."""
    if n.op == "call_method":
        return f"Tensor.{n.target}"
    fn = n.target
    mod = (getattr(fn, "__module__", None) or "").replace("_operator", "operator")
    name = getattr(fn, "__name__", str(fn))
    if mod.startswith("torch._C._nn"):  # F.avg_pool2d and friends are C functions
        mod = "torch.nn.functional"
    return f"{mod}.{name}" if mod else name


class _Mapper:
    """Walks the traced graph and builds the snnsim graph (see the module docstring)."""

    def __init__(self, gm: fx.GraphModule, probe: _Probe, kinds: _Kinds, framework: str, multi: bool,
                 input_shape: Shape, name: str, path: Path, shown: str) -> None:
        self.gm, self.probe, self.kinds, self.framework = gm, probe, kinds, framework
        self.multi = multi
        self.lead: tuple[int, ...] = (PROBE_STEPS, PROBE_BATCH) if multi else (PROBE_BATCH,)
        self.path, self.shown = path, shown
        self.builder = GraphBuilder(name, input_shape)
        self.shapes: dict[str, Shape] = {"input": tuple(input_shape)}
        self.state: dict[str, torch.Tensor] = {}
        self.labels: dict[str, str] = {}  # snnsim node -> the user's module / op, for messages
        self.used: set[str] = {"input", "output"}
        self.values: dict[fx.Node, _Value] = {}
        self.calls: Counter[str] = Counter()
        #: population -> (module qualified name, index of the call within one forward)
        self.populations: dict[str, tuple[str, int]] = {}
        self.approximate: dict[str, list[str]] = {}  # reason -> populations whose snnsim neuron approximates
        self.warnings: list[str] = []
        self.output: _Value | None = None

    # ------------------------------------------------------------------ helpers
    def where(self, n: fx.Node) -> str:
        return f"{self.shown}{_source_line(n, self.path)}"

    def fail(self, n: fx.Node, problem: str, fix: str = _MAPPED) -> SnnsimError:
        return SnnsimError(f"{self.where(n)}: {problem}", fix)

    def add(self, base: str, node: Node, inputs: list[str], label: str) -> str:
        """Add an snnsim node named after ``base`` (unique, valid) reading ``inputs``."""
        name = safe_name(base, self.used)
        try:
            shape = node.out_shape(name, [self.shapes[i] for i in inputs])
        except GraphError as exc:
            raise SnnsimError(f"{self.shown}: {label}: {exc}") from None
        self.builder.add(name, node, *inputs)
        self.shapes[name] = shape
        self.labels[name] = label
        return name

    def tensor_arg(self, n: fx.Node, arg: Any) -> _Value:
        value = self.values.get(arg) if isinstance(arg, fx.Node) else None
        if value is None or value.kind == "const":
            raise self.fail(n, f"{_op_name(n) if n.op != 'call_module' else n.target} reads a constant or a "
                               "non-tensor value where snnsim needs the network's data")
        if value.kind == "tuple":
            raise self.fail(n, "reads a neuron's (spk, mem) tuple as one value", "take its spikes: spk, mem = lif(x)")
        if value.kind == "mem":
            raise self.fail(n, f"uses the membrane potential of {value.neuron!r} as data; snnsim's synapses read spikes",
                            "feed the spikes (the first output of the neuron) to the next layer")
        if value.kind == "readout":
            raise self.fail(n, "uses the time average of the output inside the network",
                            "average over time only for the returned output")
        return value

    def full_shape(self, n: fx.Node) -> tuple[int, ...]:
        shape = self.probe.shapes.get(n)
        if not isinstance(shape, tuple) or not all(isinstance(v, int) for v in shape):
            raise self.fail(n, "does not return one tensor")
        return shape

    def checked(self, n: fx.Node, value: _Value, what: str) -> _Value:
        """``value`` after checking the probe agrees: batch/time dims kept, per-sample shape equal."""
        full = self.full_shape(n)
        k = len(value.lead)
        if full[:k] != value.lead or full[k:] != value.shape:
            raise self.fail(n, f"{what} gives shape {list(full)} on the probe, where snnsim's mapping expects "
                               f"{list(value.lead)} + {list(value.shape)} (batch/time dims, then one sample's)",
                            "keep batch (and time) as the leading dims; in multi-step mode use SpikingJelly's layer "
                            "wrappers (layer.Conv2d, layer.Flatten, ...)")
        return value

    # ------------------------------------------------------------------ walk
    def run(self) -> None:
        placeholders = 0
        for n in self.gm.graph.nodes:
            if n.op == "placeholder":
                placeholders += 1
                self.values[n] = _Value("tensor", "input", self.shapes["input"], self.lead) if placeholders == 1 else _CONST
            elif n.op == "get_attr":
                self.values[n] = _CONST
            elif n.op == "call_module":
                self.values[n] = self.call_module(n)
            elif n.op in ("call_function", "call_method"):
                self.values[n] = self.call_function(n)
            elif n.op == "output":
                self.output = self.output_value(n)

    def inputs_of(self, n: fx.Node) -> list[_Value]:
        found: list[_Value] = []
        fx.node.map_arg((n.args, n.kwargs), lambda a: found.append(self.values.get(a, _CONST)) or a)
        return found

    # ------------------------------------------------------------------ functions and methods
    def call_function(self, n: fx.Node) -> _Value:
        target = n.target
        if n.op == "call_function" and getattr(target, "__name__", "") == "_assert_is_none":
            return _CONST  # fx's guard for a forward argument traced at its default None
        values = self.inputs_of(n)
        if not any(v.kind != "const" for v in values):
            return _CONST  # sizes and other plain values (x.size(0), shape arithmetic)
        method = n.target if n.op == "call_method" else None
        if target is operator.getitem:
            return self.getitem(n)
        if method in _SHAPE_METHODS or (target is getattr and len(n.args) > 1 and n.args[1] in ("shape", "ndim")):
            return _CONST
        if method in _SAME_METHODS or (target is F.dropout and not _arg(n, 2, "training", True)):
            return self.tensor_arg(n, n.args[0])
        if target in _ADD_FUNCS or method in _ADD_METHODS:
            return self.add_op(n)
        if target in _RESHAPE_FUNCS or method in _RESHAPE_METHODS:
            return self.reshape(n)
        if target in _READOUT_FUNCS or method in _READOUT_METHODS:
            return self.readout(n)
        pool = self.functional_pool(n)
        if pool is not None:
            value = self.module_value(n, pool, n.name, _op_name(n), self.tensor_arg(n, n.args[0]), n.name)
            return self.checked(n, value, _op_name(n))
        raise self.fail(n, f"{_op_name(n)} is not an operation snnsim maps")

    def getitem(self, n: fx.Node) -> _Value:
        value = self.values.get(n.args[0]) if isinstance(n.args[0], fx.Node) else None
        if value is not None and value.kind == "tuple" and isinstance(n.args[1], int) and \
                -len(value.items) <= n.args[1] < len(value.items):
            return value.items[n.args[1]]
        raise self.fail(n, "indexes a tensor (x[...]); snnsim feeds the module one timestep per call (or [T, N, ...] "
                           "at once in SpikingJelly's multi-step mode)", "index nothing in forward")

    def add_op(self, n: fx.Node) -> _Value:
        if n.kwargs.get("alpha", 1) != 1 or len(n.args) != 2:
            raise self.fail(n, f"{_op_name(n)} with a scale (alpha) is not a plain sum")
        a, b = (self.values.get(x) if isinstance(x, fx.Node) else None for x in n.args)
        if a is None or b is None or a.kind == "const" or b.kind == "const":
            raise self.fail(n, f"{_op_name(n)} adds a constant; snnsim's Add sums two network values",
                            "fold the constant into a bias")
        a, b = self.tensor_arg(n, n.args[0]), self.tensor_arg(n, n.args[1])
        if a.lead != b.lead:
            raise self.fail(n, f"adds values with different batch/time dims {list(a.lead)} and {list(b.lead)}")
        name = self.add(n.name, Add(), [a.node, b.node], f"{n.name} ({_op_name(n)})")
        return self.checked(n, _Value("tensor", name, self.shapes[name], a.lead), "the add")

    def reshape(self, n: fx.Node) -> _Value:
        """A flatten / view / reshape: a merge of per-sample dims is a Flatten; one that changes
        only the batch/time dims (SpikingJelly's [T, N] <-> [T*N]) passes the value on."""
        src = self.tensor_arg(n, n.args[0])
        full = self.full_shape(n)
        lead_size = _prod(src.lead)
        k = next((k for k in range(len(full) + 1) if _prod(full[:k]) == lead_size), None)
        if k is None:
            raise self.fail(n, f"{_op_name(n)} to {list(full)} mixes samples (the batch of {list(src.lead)} is not "
                               "its leading dims)", "flatten one sample's dims only, e.g. x.flatten(1)")
        per, lead = tuple(full[k:]), tuple(full[:k])
        if per == src.shape:
            return _Value("tensor", src.node, src.shape, lead, src.spikes)
        dims = _merged_dims(src.shape, per)
        if dims is None:
            raise self.fail(n, f"{_op_name(n)} turns one sample's shape {list(src.shape)} into {list(per)}, which is "
                               "not a flatten of neighbouring dims", "snnsim maps flatten-like reshapes only")
        start, end = dims
        name = self.add(n.name, Flatten(start_dim=start, end_dim=-1 if end == len(src.shape) - 1 else end),
                        [src.node], f"{n.name} ({_op_name(n)})")
        return _Value("tensor", name, self.shapes[name], lead, src.spikes)

    def readout(self, n: fx.Node) -> _Value:
        """``x.mean(0)`` / ``x.sum(0)`` over a multi-step output's time dim: the output's average."""
        src = self.tensor_arg(n, n.args[0])
        dim = _arg(n, 1, "dim", None)
        if self.multi and src.lead == self.lead and dim in (0, (0,), [0]) and not _arg(n, 2, "keepdim", False):
            return _Value("readout", src.node, src.shape, self.lead[1:], src.spikes)
        raise self.fail(n, f"{_op_name(n)} is mapped only as the time average of a multi-step network's output "
                           "(x.mean(0) right before return)")

    def functional_pool(self, n: fx.Node) -> nn.Module | None:
        """``F.max_pool2d`` / ``F.avg_pool2d`` / ``F.adaptive_*_pool2d`` as the module they equal."""
        if n.op != "call_function":
            return None
        target, rest, kw = n.target, list(n.args[1:]), dict(n.kwargs)
        try:
            if target is F.max_pool2d:
                for i, key in enumerate(("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")):
                    if i < len(rest):
                        kw[key] = rest[i]
                return nn.MaxPool2d(**kw)
            if target is F.avg_pool2d:
                return nn.AvgPool2d(*rest, **kw)
            if target is F.adaptive_avg_pool2d:
                return nn.AdaptiveAvgPool2d(*rest, **kw)
            if target is F.adaptive_max_pool2d:
                return nn.AdaptiveMaxPool2d(*rest, **kw)
        except TypeError as exc:
            raise self.fail(n, f"{_op_name(n)} has arguments snnsim cannot read ({quote(exc, 80)})") from None
        return None

    # ------------------------------------------------------------------ modules
    def call_module(self, n: fx.Node) -> _Value:
        qual = str(n.target)
        m = self.gm.get_submodule(qual)
        self.calls[qual] += 1
        call = self.calls[qual] - 1
        base = _node_base(qual, m) + (f"_{call}" if call else "")
        label = f"module {qual} ({type(m).__name__})"
        if self.kinds.is_neuron(m):
            return self.neuron(n, m, qual, call, base, label)
        src = self.tensor_arg(n, n.args[0]) if n.args else _CONST
        if src.kind != "tensor" or len(n.args) != 1 or n.kwargs:
            raise self.fail(n, f"{label} is called with {len(n.args) + len(n.kwargs)} arguments; snnsim maps one input")
        value = self.module_value(n, m, base, label, src, qual)
        return self.checked(n, value, label)

    def module_value(self, n: fx.Node, m: nn.Module, base: str, label: str, src: _Value, qual: str) -> _Value:
        """The value of module ``m`` applied to ``src`` (SpikingJelly containers: their children)."""
        sj_containers = tuple(getattr(self.kinds.sj_layer, c) for c in
                              ("SeqToANNContainer", "MultiStepContainer", "StepModeContainer")) \
            if self.kinds.sj_layer is not None else ()
        if sj_containers and type(m) in sj_containers:
            value = src
            for child_name, child in m.named_children():
                child_label = f"module {qual}.{child_name} ({type(child).__name__})"
                if self.kinds.is_neuron(child):
                    raise self.fail(n, f"{child_label} is a neuron inside {type(m).__name__}",
                                    "use the neuron in multi-step mode (functional.set_step_mode(net, 'm')) outside "
                                    "the container")
                value = self.module_value(n, child, f"{base}_{child_name}", child_label, value, f"{qual}.{child_name}")
            return value
        made = self.layer(n, m, label, src.shape)
        if made is None:
            return src  # Dropout / Identity: nothing in eval
        node, params = made
        name = self.add(base, node, [src.node], label)
        for key, t in params.items():
            self.state[f"{name}.{key}"] = t
        spikes = src.spikes and isinstance(node, Flatten | MaxPool2d)
        return _Value("tensor", name, self.shapes[name], src.lead, spikes)

    def layer(self, n: fx.Node, m: nn.Module, label: str,
              in_shape: Shape) -> tuple[Node, dict[str, torch.Tensor]] | None:
        """The snnsim node and values of a torch.nn layer, None for one that vanishes in eval."""
        def t(x: torch.Tensor) -> torch.Tensor:
            return x.detach().to(torch.float32).cpu().clone()

        sj_dropout = self.kinds.sj_layer is not None and isinstance(m, self.kinds.sj_layer.Dropout)
        if isinstance(m, nn.Identity | nn.Dropout | nn.Dropout2d) or sj_dropout:
            return None
        if isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros" or not isinstance(m.kernel_size, tuple) or len(m.kernel_size) != 2:
                raise self.fail(n, f"{label} pads with {m.padding_mode!r}; snnsim's convolutions pad with zeros")
            padding = _conv_padding(m.padding, m.kernel_size, m.stride, m.dilation)
            if padding is None:
                raise self.fail(n, f"{label} has padding {m.padding!r} that pads one side more than the other",
                                "use an odd kernel or numeric padding")
            node = Conv2d(out_channels=m.out_channels, kernel_size=m.kernel_size, stride=m.stride, padding=padding,
                          dilation=m.dilation, groups=m.groups, bias=m.bias is not None)
            params = {"weight": t(m.weight)}
            if m.bias is not None:
                params["bias"] = t(m.bias)
            return node, params
        if isinstance(m, nn.Linear):
            params = {"weight": t(m.weight)}
            if m.bias is not None:
                params["bias"] = t(m.bias)
            return Affine(out_features=m.out_features, bias=m.bias is not None), params
        if isinstance(m, nn.BatchNorm2d):
            if m.running_mean is None or m.running_var is None:
                raise self.fail(n, f"{label} has no running statistics (track_running_stats=False)",
                                "snnsim folds batch norm with its eval statistics")
            c = m.num_features
            weight = t(m.weight) if m.weight is not None else torch.ones(c)
            bias = t(m.bias) if m.bias is not None else torch.zeros(c)
            return BatchNorm2d(eps=float(m.eps)), {"weight": weight, "bias": bias, "running_mean": t(m.running_mean),
                                                   "running_var": t(m.running_var)}
        if isinstance(m, nn.MaxPool2d | nn.AvgPool2d | nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
            return self.pool(n, m, label, in_shape), {}
        if isinstance(m, nn.Flatten):
            start, end = int(m.start_dim), int(m.end_dim)
            if start == 0 or end == 0:
                raise self.fail(n, f"{label} flattens the batch dim (start_dim={start})", "use nn.Flatten(start_dim=1)")
            return Flatten(start_dim=start - 1 if start > 0 else start, end_dim=end - 1 if end > 0 else end), {}
        raise self.fail(n, f"{label} is a module snnsim does not map")

    def pool(self, n: fx.Node, m: nn.Module, label: str, in_shape: Shape) -> Node:
        """A pooling module as AvgPool2d / SumPool2d / MaxPool2d (adaptive ones where they are fixed)."""
        if len(in_shape) != 3:
            raise self.fail(n, f"{label} pools a value of shape {list(in_shape)}, not a (C, H, W) map")
        if isinstance(m, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
            out = m.output_size if isinstance(m.output_size, tuple) else (m.output_size, m.output_size)
            sides = [side if o is None else int(o) for o, side in zip(out, in_shape[1:], strict=True)]
            if any(side % o for o, side in zip(sides, in_shape[1:], strict=True)) or \
                    getattr(m, "return_indices", False):
                raise self.fail(n, f"{label} to {sides} from {list(in_shape[1:])} is not a fixed pool",
                                "use an output size that divides the input")
            kernel = tuple(side // o for o, side in zip(sides, in_shape[1:], strict=True))
            cls = AvgPool2d if isinstance(m, nn.AdaptiveAvgPool2d) else MaxPool2d
            return cls(kernel_size=kernel, stride=kernel)
        kernel, stride, padding = (_pair(v) for v in (m.kernel_size, m.stride or m.kernel_size, m.padding))
        if getattr(m, "ceil_mode", False) and any((side + 2 * p - k) % s for side, k, s, p in
                                                   zip(in_shape[1:], kernel, stride, padding, strict=True)):
            raise self.fail(n, f"{label} has ceil_mode=True, which changes its output size here", "use ceil_mode=False")
        if isinstance(m, nn.MaxPool2d):
            if _pair(m.dilation) != (1, 1) or m.return_indices:
                raise self.fail(n, f"{label} has dilation or return_indices", "use a plain max pool")
            return MaxPool2d(kernel_size=kernel, stride=stride, padding=padding)
        assert isinstance(m, nn.AvgPool2d)
        if padding != (0, 0) and not m.count_include_pad:
            raise self.fail(n, f"{label} has count_include_pad=False with padding", "use count_include_pad=True")
        if m.divisor_override not in (None, 1) and m.divisor_override != kernel[0] * kernel[1]:
            raise self.fail(n, f"{label} has divisor_override={m.divisor_override}",
                            "snnsim maps divisor_override=1 (a sum pool) or none")
        cls_p = SumPool2d if m.divisor_override == 1 else AvgPool2d
        return cls_p(kernel_size=kernel, stride=stride, padding=padding)

    # ------------------------------------------------------------------ neurons
    def neuron(self, n: fx.Node, m: nn.Module, qual: str, call: int, base: str, label: str) -> _Value:
        src = self.tensor_arg(n, n.args[0]) if n.args else _CONST
        if src.kind != "tensor":
            raise self.fail(n, f"{label} is called without an input")
        if src.lead != self.lead:
            raise self.fail(n, f"{label} reads a value with batch/time dims {list(src.lead)}, not {list(self.lead)}",
                            "give neurons the network's [N, ...] (multi-step: [T, N, ...]) values")
        synaptic = self.kinds.snntorch is not None and isinstance(m, self.kinds.snntorch.Synaptic)
        names = ("syn", "mem") if synaptic else ("mem",)
        state = list(n.args[1:]) + [v for k, v in n.kwargs.items() if k in names]
        extra = [k for k in n.kwargs if k not in names]
        if extra or len(state) > len(names):
            raise self.fail(n, f"{label} is called with more than an input and its {' and '.join(names)}")
        for given_state in (v for v in state if v is not None):
            given = self.values.get(given_state) if isinstance(given_state, fx.Node) else None
            if given is not None and given.kind == "mem" and given.neuron == qual:
                raise self.fail(n, f"{label} is called again with the membrane of its earlier call: forward loops over "
                                   "timesteps itself", "write forward for one timestep (snnsim, like NeuroBench's "
                                   "SNNTorchModel, calls it once per timestep)")
            raise self.fail(n, f"{label} is given a membrane potential made inside forward, so it forgets its state "
                               "at every call", f"let it keep its own state: spk, mem = {qual}(x)")
        node, params = self.neuron_node(n, m, label, src.shape)
        name = self.add(base, node, [src.node], label)
        for key, values in params.items():
            self.state[f"{name}.{key}"] = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
        self.populations[name] = (qual, call)
        spikes = _Value("tensor", name, self.shapes[name], src.lead, spikes=True)
        result = self.probe.shapes.get(n)
        if isinstance(result, tuple) and result and isinstance(result[0], tuple):  # (spk, mem, ...)
            items = [spikes] + [_Value("mem", neuron=qual) for _ in result[1:]]
            if result[0] != src.lead + src.shape:
                raise self.fail(n, f"{label} returns spikes of shape {list(result[0])} for an input of shape "
                                   f"{list(src.lead + src.shape)}")
            return _Value("tuple", items=tuple(items))
        return self.checked(n, spikes, label)

    def neuron_node(self, n: fx.Node, m: nn.Module, label: str, shape: Shape) -> tuple[Node, dict[str, np.ndarray]]:
        """The snnsim LIF / IF / CubaLIF of one neuron module and its values (module docstring)."""
        if self.kinds.is_snntorch_neuron(m):
            return self.snntorch_leaky(n, m, label, shape)
        return self.sj_node(n, m, label)

    def snntorch_leaky(self, n: fx.Node, m: nn.Module, label: str, shape: Shape) -> tuple[Node, dict[str, np.ndarray]]:
        snt = self.kinds.snntorch
        if type(m) not in (snt.Leaky, snt.Synaptic):
            raise self.fail(n, f"{label} is not supported: snnsim maps snnTorch's Leaky and Synaptic",
                            "use snn.Leaky or snn.Synaptic")
        synaptic = type(m) is snt.Synaptic
        for flag, why in (("inhibition", "inhibition"), ("state_quant", "state quantization")):
            if getattr(m, flag, False):
                raise self.fail(n, f"{label} uses {why}, which snnsim's LIF does not have", f"build it without {flag}")
        graded = torch.as_tensor(getattr(m, "graded_spikes_factor", 1.0)).double()
        if not bool((graded == 1).all()):
            raise self.fail(n, f"{label} has graded spikes (graded_spikes_factor != 1); snnsim's spikes are binary",
                            "use graded_spikes_factor=1")
        mech = m.reset_mechanism
        if mech not in ("subtract", "zero"):
            raise self.fail(n, f"{label} has reset_mechanism={mech!r}; snnsim's neurons reset",
                            "use 'subtract' or 'zero'")
        beta = torch.as_tensor(m.beta).detach().double().clamp(0, 1).cpu().numpy()
        theta = torch.as_tensor(m.threshold).detach().double().cpu().numpy()
        leak = channel_values(beta, shape, f"{self.shown}: {label} beta")
        thr = channel_values(theta, shape, f"{self.shown}: {label} threshold")
        if np.any(thr <= 0):
            raise self.fail(n, f"{label} has a threshold <= 0", "snnsim's neurons need positive thresholds")
        per_channel = bool(leak.size > 1 or thr.size > 1)
        width = shape[0] if per_channel else 1
        alpha = None
        if synaptic:
            decay = torch.as_tensor(m.alpha).detach().double().clamp(0, 1).cpu().numpy()
            alpha = channel_values(decay, shape, f"{self.shown}: {label} alpha")
            per_channel = per_channel or alpha.size > 1
            width = shape[0] if per_channel else 1
            if mech == "zero":
                self.approximate.setdefault("synaptic_zero", []).append(label)
        if mech == "subtract" and np.any(leak != 1):
            self.approximate.setdefault("subtract", []).append(label)
        if not getattr(m, "reset_delay", True):
            self.approximate.setdefault("reset_delay", []).append(label)
        reset = "subtract" if mech == "subtract" else "value"
        values = {"threshold": np.broadcast_to(thr, (width,)).copy(), "leak": np.broadcast_to(leak, (width,)).copy()}
        if alpha is None:
            return LIF(per_channel=per_channel, reset=reset, v_reset=0.0, fire=">"), values
        values["alpha"] = np.broadcast_to(alpha, (width,)).copy()
        return CubaLIF(per_channel=per_channel, reset=reset, v_reset=0.0, fire=">"), values

    def sj_node(self, n: fx.Node, m: nn.Module, label: str) -> tuple[Node, dict[str, np.ndarray]]:
        sjn = self.kinds.sj_neuron
        if type(m) not in (sjn.LIFNode, sjn.IFNode):
            raise self.fail(n, f"{label} is not supported: snnsim maps SpikingJelly's LIFNode and IFNode",
                            "use neuron.LIFNode or neuron.IFNode")
        step_mode = getattr(m, "step_mode", "s")
        if (step_mode == "m") != self.multi:
            raise self.fail(n, f"{label} is in step mode {step_mode!r} while the network's neurons are in "
                               f"{'m' if self.multi else 's'!r}", "set one mode: functional.set_step_mode(net, 'm')")
        v_th, v_reset = float(m.v_threshold), m.v_reset
        offset = 0.0 if v_reset is None else float(v_reset)
        gain = float(m.tau) if type(m) is sjn.LIFNode and m.decay_input else 1.0
        theta = gain * (v_th - offset)
        if not (math.isfinite(theta) and theta > 0):
            raise self.fail(n, f"{label} has v_threshold {v_th:g} <= v_reset {offset:g}", "use v_threshold > v_reset")
        reset = "subtract" if v_reset is None else "value"
        params = {"threshold": np.array([theta])}
        if type(m) is sjn.LIFNode:
            tau = float(m.tau)
            params["leak"] = np.array([1.0 - 1.0 / tau])
            return LIF(reset=reset, v_reset=0.0, fire=">="), params
        return IF(reset=reset, v_reset=0.0, fire=">="), params

    # ------------------------------------------------------------------ output
    def output_value(self, n: fx.Node) -> _Value:
        arg = n.args[0]
        if isinstance(arg, tuple | list):  # return spk, mem (a Python tuple)
            if not arg:
                raise self.fail(n, "forward returns an empty tuple")
            arg = arg[0]
        value = self.values.get(arg) if isinstance(arg, fx.Node) else None
        if value is not None and value.kind == "tuple":
            value = value.items[0]
        if value is None or value.kind in ("const", "mem"):
            what = "a membrane potential" if value is not None and value.kind == "mem" else "no network value"
            raise self.fail(n, f"forward returns {what} first", "return the output layer's spikes or its Linear output "
                            "first (NeuroBench reads spk, _ = net(x))")
        if value.node == "input":
            raise self.fail(n, "forward returns its input")
        return value

    def output_population(self, out: _Value) -> str:
        """The output Integrator (module docstring, output rule): put behind a non-spiking output;
        a returned neuron's spikes that nothing else reads make that neuron the Integrator (as
        NeuroBench counts snnTorch's ``Leaky(output=True)``: the output accumulator)."""
        if not out.spikes:
            return self.add("out_integrator", Integrator(), [out.node], "the output integrator")
        node = self.builder.nodes[out.node]
        readers = [b for a, b in self.builder.edges if a == out.node]
        if not isinstance(node, LIF | IF | CubaLIF) or readers:
            what = "are also read inside the network" if readers else "are reshaped before they are returned"
            raise SnnsimError(f"{self.shown}: the returned spikes of {self.labels[out.node]} {what}; snnsim's output "
                              "is an integrator of the last layer's current", "return the output layer's spikes "
                              "(or its Linear output) as they are")
        self.builder.nodes[out.node] = Integrator()
        for key in [k for k in self.state if k.startswith(f"{out.node}.")]:
            del self.state[key]
        del self.populations[out.node]
        self.warnings.append(f"{self.labels[out.node]} is the output layer: snnsim models it as its output integrator "
                             "(logits = its mean input current over T; the event engine and functional replay predict "
                             "from that), while traces keep your module's own output (its spikes averaged over T, "
                             "which is what NeuroBench reads from snnTorch's Leaky(output=True))")
        for reason in self.approximate.values():
            if self.labels[out.node] in reason:
                reason.remove(self.labels[out.node])
        return out.node


def _arg(n: fx.Node, index: int, key: str, default: Any) -> Any:
    if key in n.kwargs:
        return n.kwargs[key]
    return n.args[index] if len(n.args) > index else default


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[-1]))


def _conv_padding(padding: Any, kernel: tuple[int, ...], stride: tuple[int, ...],
                  dilation: tuple[int, ...]) -> tuple[int, int] | None:
    """A torch Conv2d's padding as a pair ('valid' = 0; 'same' where it is symmetric), else None."""
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        if any(t % 2 for t in totals):
            return None
        return (totals[0] // 2, totals[1] // 2)
    return _pair(padding)


def _merged_dims(src: Shape, dst: Shape) -> tuple[int, int] | None:
    """(a, b) when ``dst`` is ``src`` with dims a..b merged into one, else None."""
    if len(dst) >= len(src):
        return None
    a = 0
    while a < len(dst) and src[a] == dst[a]:
        a += 1
    b = a + len(src) - len(dst)
    if src[b + 1:] != dst[a + 1:] or _prod(src[a:b + 1]) != dst[a]:
        return None
    return a, b


def _node_base(qual: str, m: nn.Module) -> str:
    """An snnsim node name for a module: its qualified name with '_' for '.', led by its type's
    name where it starts with a digit (an ``nn.Sequential`` child: ``0`` -> ``conv2d_0``)."""
    base = qual.replace(".", "_")
    if not base or base[0].isdigit():
        base = f"{type(m).__name__.lower()}_{base}"
    return base


# ============================================================================== import
@dataclass
class TorchImport:
    """What :func:`import_torch` built: the model, the warnings to show, the framework and mode."""

    model: Model
    warnings: list[str]
    framework: str
    multi_step: bool
    populations: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: a multi-step module returns [T, N, ...] (True) or its average over T (False)
    output_has_time: bool = False


def _step_mode(net: nn.Module, kinds: _Kinds, framework: str, shown: str) -> bool:
    """True for a SpikingJelly network in multi-step mode (its neurons' ``step_mode`` 'm')."""
    if framework != "spikingjelly":
        return False
    modes = {getattr(m, "step_mode", "s") for m in net.modules() if kinds.is_sj_neuron(m)}
    if len(modes) > 1:
        raise SnnsimError(f"{shown} has neurons in single- and multi-step mode",
                          "set one mode for the whole network: functional.set_step_mode(net, 's' or 'm')")
    return modes == {"m"}


@torch.no_grad()
def module_to_model(net: nn.Module, input_shape: Shape, timesteps: int, path: Path, factory: str) -> TorchImport:
    """Trace and map a loaded module (module docstring); the model's provenance is the caller's."""
    from snnsim.graph.schedule import fold_batchnorm
    from snnsim.models import build_model

    shown = f"{path.name}:{factory}"
    net.eval()  # the probe must not move batch-norm statistics
    kinds = _Kinds.of(net)
    framework = kinds.framework(net, shown)
    multi = _step_mode(net, kinds, framework, shown)
    gm = trace_module(net, kinds, path, shown)
    probe = _Probe(gm)
    lead = (PROBE_STEPS, PROBE_BATCH) if multi else (PROBE_BATCH,)
    x = torch.randn((*lead, *input_shape), generator=torch.Generator().manual_seed(0))
    try:
        _reset(net, kinds, framework)
        probe.run(x)
    except _ProbeError as exc:
        node = exc.node
        what = (f"module {node.target} ({type(gm.get_submodule(str(node.target))).__name__})"
                if node.op == "call_module" else _op_name(node)) + _source_line(node, path)
        raise SnnsimError(f"{shown} does not run on input shape {list(lead)} + {list(input_shape)} (batch"
                          f"{', time' if multi else ''}, then --input-shape): {what}: {type(exc.exc).__name__}: "
                          f"{quote(exc.exc, 160)}", "pass the --input-shape the module was built for (C,H,W)") from None
    finally:
        _reset(net, kinds, framework)
    mapper = _Mapper(gm, probe, kinds, framework, multi, tuple(input_shape), path.stem or "torch", path, shown)
    mapper.run()
    out = mapper.output
    assert out is not None
    if out.lead != (PROBE_BATCH,) and not (multi and out.lead == lead):
        raise SnnsimError(f"{shown}: forward returns a value with batch/time dims {list(out.lead)}",
                          "return [N, classes] (multi-step: [T, N, classes] or its mean over T)")
    source = mapper.output_population(out)
    mapper.builder.last = source
    graph = mapper.builder.build()
    graph.check_size(shown)
    folded, state = fold_batchnorm(graph, mapper.state)
    left = [n for n, node in folded.nodes.items() if isinstance(node, BatchNorm2d)]
    if left:
        raise SnnsimError(f"{shown}: {mapper.labels.get(left[0], left[0])} does not directly follow a Conv2d that "
                          "feeds only it, so it cannot be folded", "snnsim folds batch norm into the conv in front of it")
    model = build_model(folded, kind="snn", timesteps=timesteps)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise SnnsimError(f"{shown}: its values do not fit the mapped graph ({quote(exc, 100)})",
                          "report this as an snnsim bug") from None
    try:
        model.check_simulable()
    except GraphError as exc:
        raise SnnsimError(f"{shown}: the mapped network is not one snnsim's simulator runs: {exc}") from None
    model.eval()
    warnings = list(mapper.warnings)
    repeated = sorted(q for q, c in mapper.calls.items() if c > 1 and kinds.is_neuron(net.get_submodule(q)))
    if repeated:
        warnings.append(f"neuron module{'s' if len(repeated) > 1 else ''} {', '.join(repeated)} called more than once "
                        f"per forward: {framework} shares one state between the calls, snnsim gives each call its own "
                        "population (the trace records the framework's spikes)")
    if mapper.approximate.get("subtract"):
        warnings.append(f"{', '.join(mapper.approximate['subtract'])}: snnTorch's subtract reset takes the threshold "
                        "off after the leak (mem <- beta*mem + I - theta*s), snnsim's before it (u <- leak*(u - theta*s) "
                        "+ I), a difference of (1 - beta)*theta per spike; traces record snnTorch's own spikes, the "
                        "event engine and functional replay use snnsim's neuron (replay reports the mismatches)")
    if mapper.approximate.get("synaptic_zero"):
        warnings.append(f"{', '.join(mapper.approximate['synaptic_zero'])}: snnTorch's Synaptic zero reset zeroes the "
                        "whole membrane step after a spike (mem <- (1 - s)*(beta*mem + syn)), snnsim's value reset "
                        "restarts it from 0 and integrates that step's current; traces record snnTorch's own spikes, "
                        "the event engine and functional replay use snnsim's neuron (replay reports the mismatches)")
    if mapper.approximate.get("reset_delay"):
        warnings.append(f"{', '.join(mapper.approximate['reset_delay'])}: reset_delay=False is approximated by "
                        "snnsim's reset (traces record snnTorch's own spikes)")
    has_time = multi and out.lead == lead
    return TorchImport(model, warnings, framework, multi, dict(mapper.populations), output_has_time=has_time)


def import_torch(spec: str, input_shape: Shape, timesteps: int, weights: str | None = None) -> TorchImport:
    """Load ``FILE.py:FACTORY`` (and ``weights``), trace and map it (:func:`module_to_model`); the
    model's provenance records the source (file, factory, SHA-256 of file and weights, framework,
    populations), which :class:`SourceRunner` needs to record traces. Nothing is written."""
    from snnsim.checkpoint import checkpoint_dict, validate_checkpoint

    path, factory = parse_source(spec)
    weights_path = Path(weights).expanduser().resolve() if weights else None
    net = load_factory_module(path, factory)
    if weights_path is not None:
        load_weights(net, weights_path)
    result = module_to_model(net, tuple(input_shape), timesteps, path, factory)
    model = result.model
    info: dict[str, Any] = {"input_shape": list(input_shape)}
    out_shape = model.graph.info[model.graph.output].in_shapes[0]
    info["num_classes"] = int(math.prod(out_shape))
    model.dataset_info = info
    version = getattr(importlib.import_module(result.framework), "__version__", None)
    model.provenance = {
        "imported_from": {
            "format": SOURCE_FORMAT, "framework": result.framework,
            "framework_version": None if version is None else str(version),
            "torch_version": str(torch.__version__), "file": str(path), "file_sha256": file_sha256(path),
            "factory": factory, "weights": str(weights_path) if weights_path else None,
            "weights_sha256": file_sha256(weights_path) if weights_path else None,
            "step_mode": "multi" if result.multi_step else "single", "input_shape": list(input_shape),
            "output_has_time": bool(result.output_has_time), "state_sha256": state_sha256(net),
            "populations": {p: {"module": q, "call": c} for p, (q, c) in result.populations.items()},
        },
        "import_notes": list(result.warnings),
    }
    validate_checkpoint(checkpoint_dict(model), f"imported model of {spec!r}")  # loadable as saved
    return result


def state_sha256(net: nn.Module) -> str:
    """SHA-256 (hex) of a module's state dict (names, dtypes, shapes, bytes): what the trace
    checks the rebuilt module against, so a factory that draws new weights is caught."""
    h = hashlib.sha256()
    for key, t in sorted(net.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{list(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def torch_source(model: Model) -> dict[str, Any] | None:
    """The ``imported_from`` record of a model imported by :func:`import_torch`, else None."""
    src = (model.provenance or {}).get("imported_from")
    return src if isinstance(src, dict) and src.get("format") == SOURCE_FORMAT else None


# ============================================================================== recording
def _reset(net: nn.Module, kinds: _Kinds, framework: str) -> None:
    """Clear every neuron's state the framework's way (module docstring)."""
    if framework == "spikingjelly":
        kinds.sj_functional.reset_net(net)
        return
    if callable(getattr(net, "reset", None)):
        net.reset()
    else:
        kinds.snntorch.utils.reset(net)
    for m in net.modules():  # utils.reset looks at the top-level children only
        if kinds.is_snntorch_neuron(m) and callable(getattr(m, "reset_mem", None)):
            m.reset_mem()


class SourceRunner:
    """The user's own module, rerun for a trace: forward hooks on its neuron modules capture
    each population's spikes (the k-th call of a module in one forward is the population the
    import mapped to that call)."""

    def __init__(self, model: Model, device: torch.device | str | None = None) -> None:
        src = torch_source(model)
        if src is None:
            raise TraceError(f"model {model.name!r} was not imported with --torch", "record it with snnsim's engines")
        path = Path(str(src.get("file")))
        fix = "re-import the model (snnsim import --torch), or trace it with --engine event (snnsim's neuron model)"
        if not path.is_file():
            raise TraceError(f"the model's source file {str(path)!r} no longer exists", fix)
        if file_sha256(path) != src.get("file_sha256"):
            raise TraceError(f"the model's source file {str(path)!r} changed since it was imported", fix)
        net = load_factory_module(path, str(src.get("factory")))
        if src.get("weights"):
            wpath = Path(str(src["weights"]))
            if not wpath.is_file() or file_sha256(wpath) != src.get("weights_sha256"):
                raise TraceError(f"the model's weights file {str(wpath)!r} is gone or changed since it was imported", fix)
            load_weights(net, wpath)
        if state_sha256(net) != src.get("state_sha256"):
            raise TraceError(f"{path.name}:{src.get('factory')}() builds other weights than at the import (an unseeded "
                             "factory?)", "seed the factory or import with --weights, then re-import")
        self.kinds = _Kinds.of(net)
        self.framework = self.kinds.framework(net, f"{path.name}:{src.get('factory')}")
        self.multi = src.get("step_mode") == "multi"
        self.output_has_time = bool(src.get("output_has_time"))
        out_shape = model.graph.info[model.graph.output].in_shapes[0]
        self.classes = _prod(tuple(out_shape))
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.net = net.to(self.device).eval()
        self.shapes = {p.name: tuple(p.shape) for p in model.populations if p.spiking}
        self.input_shape = tuple(model.input_shape)
        pops = src.get("populations") or {}
        self.wanted: dict[tuple[str, int], str] = {}
        for pop, where in pops.items():
            self.wanted[(str(where["module"]), int(where["call"]))] = pop
        if set(self.wanted.values()) != set(self.shapes):
            raise TraceError(f"model {model.name!r}: its recorded source populations do not match its graph", fix)
        self.calls: Counter[str] = Counter()
        self.captured: dict[str, list[torch.Tensor]] = {}
        for qual in sorted({q for q, _ in self.wanted}):
            self.net.get_submodule(qual).register_forward_hook(self._hook(qual))

    def _hook(self, qual: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            k = self.calls[qual]
            self.calls[qual] += 1
            pop = self.wanted.get((qual, k))
            if pop is not None:
                spikes = output[0] if isinstance(output, tuple | list) else output
                self.captured.setdefault(pop, []).append(spikes.detach())
        return hook

    @torch.no_grad()
    def run(self, x: torch.Tensor, steps: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Spikes (bit-packed ``[b, T, bytes]`` per population, big bit order) and logits ``[b, K]``
        of the user's module on a batch ``x`` ``[b, C, H, W]`` fed at every timestep, or ``[b, T, C,
        H, W]`` fed step by step (frames, or a Poisson model's spikes)."""
        b = int(x.shape[0])
        x = x.to(self.device)
        per_step = x.dim() == len(self.input_shape) + 2
        _reset(self.net, self.kinds, self.framework)
        self.captured = {}
        if self.multi:
            self.calls.clear()
            seq = x[:, :steps].transpose(0, 1).contiguous() if per_step else x.unsqueeze(0).expand(steps, *x.shape).contiguous()
            out = _first(self.net(seq)).float()
            logits = (out.mean(dim=0) if self.output_has_time else out).reshape(b, -1)
            per_step = {p: [t[s] for t in ts for s in range(steps)] for p, ts in self.captured.items()}
        else:
            total: torch.Tensor | None = None
            for t in range(steps):
                self.calls.clear()
                o = _first(self.net(x[:, t] if per_step else x)).float().reshape(b, -1)
                total = o if total is None else total + o
            assert total is not None
            logits = total / steps
            per_step = self.captured
        if logits.shape[1] != self.classes:
            raise TraceError(f"the source module returns {logits.shape[1]} values per sample, the model has "
                             f"{self.classes} outputs", "re-import the model: its forward no longer matches the import")
        bits: dict[str, np.ndarray] = {}
        for pop, shape in self.shapes.items():
            seq = per_step.get(pop, [])
            if len(seq) != steps:
                raise TraceError(f"the source module produced {len(seq)} outputs of population {pop!r} for {steps} "
                                 "timesteps", "re-import the model: its forward no longer matches the import")
            s = torch.stack([t.reshape(b, -1) for t in seq], dim=1)  # [b, T, neurons]
            if s.shape[2] != _prod(shape):
                raise TraceError(f"population {pop!r}: the source module's spikes have {s.shape[2]} neurons, the "
                                 f"model's {_prod(shape)}", "re-import the model")
            if bool(((s != 0) & (s != 1)).any()):
                raise TraceError(f"population {pop!r}: the source module's neuron outputs values other than 0 and 1",
                                 "snnsim records binary spikes")
            bits[pop] = np.packbits(s.cpu().numpy() != 0, axis=2)
        return bits, logits.cpu().numpy().astype(np.float32)


def _first(out: Any) -> torch.Tensor:
    value = out[0] if isinstance(out, tuple | list) else out
    if not isinstance(value, torch.Tensor):
        raise TraceError(f"the source module returned a {type(value).__name__}", "return a tensor (or a tuple led by one)")
    return value


def source_runner(model: Model, device: torch.device | str | None = None) -> SourceRunner | None:
    """A :class:`SourceRunner` for a model imported with ``--torch``, else None."""
    return SourceRunner(model, device) if torch_source(model) is not None else None
