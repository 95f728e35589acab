"""NIR 1.0 (the Neuromorphic Intermediate Representation, ``nir`` on PyPI) in and out of snnsim.

* :func:`import_nir` (``snnsim import net.nir``) reads a NIR graph with ``nir.read`` and builds an
  snnsim SNN from it: nested ``NIRGraph`` nodes are flattened (``<graph>_<node>``), fan-in (several
  edges into one node, NIR's sum) becomes an :class:`~snnsim.graph.nodes.Add`, ``Scale`` is folded
  into the synapse in front of it and the neurons are discretised (below).
* :func:`export_nir` (``snnsim export model.pt --nir out.nir``) writes an snnsim SNN as NIR: the
  inverse mapping, an ``Add`` written as fan-in edges.
* :func:`write_nirdata` writes a recorded trace's spikes as NIRData (``nir.write_data``).

Node mapping (``docs/interop.md`` has the full table): ``Input``, ``Output``, ``Conv2d`` (padding
numbers, ``'valid'``, or ``'same'`` where it is symmetric; groups and dilation carried over),
``Affine``, ``Linear`` (an ``Affine`` without bias), ``Flatten`` (its ``start_dim``/``end_dim``:
NIR shapes have no batch dimension, like snnsim's), ``SumPool2d``, ``AvgPool2d`` (scalar or pair
kernel), ``Scale`` (folded), ``LIF``, ``IF``, ``CubaLIF``, ``LI`` and ``I`` (both as the output
``Integrator``). Refused in one line naming the node and its type: every other node type
(``Conv1d``, ``Delay``, ``Threshold``, ``CubaLI``: a non-spiking synaptic current has no snnsim
node), recurrent edges (cycles), and values snnsim cannot hold (below).

**Discretisation.** NIR neurons are continuous-time; snnsim's step ``u <- leak * u + I`` once per
timestep of length ``dt``. snnsim uses forward Euler, ``v(t + dt) = v(t) + dt * dv/dt``:

=====  ==============================  ==================================================
NIR    equation                        snnsim, per timestep
=====  ==============================  ==================================================
LIF    tau dv/dt = (v_leak - v) + r I  LIF: u <- (1 - dt/tau) u + (r dt/tau) I + (dt/tau) v_leak
IF     dv/dt = r I                     IF:  u <- u + (r dt) I
LI     tau dv/dt = (v_leak - v) + r I  Integrator: u <- u + (r dt/tau) I + (dt/tau) v_leak
I      dv/dt = r I                     Integrator: u <- u + (r dt) I
=====  ==============================  ==================================================

CubaLIF (``tau_syn dJ/dt = -J + w_in I``, ``tau_mem dv/dt = (v_leak - v) + r J``) becomes
snnsim's CubaLIF: ``i <- (1 - dt/tau_syn) i + g I + c``, ``u <- (1 - dt/tau_mem) u + i`` with the
gain ``g = w_in (dt/tau_syn) r (dt/tau_mem)`` folded into the driving synapses like a LIF's and
``c = (dt/tau_syn)(dt/tau_mem) v_leak`` into their bias. It is stepped as snnTorch and snnsim
step it: the synaptic current ``J`` first, then ``v``
from the new ``J``; snnsim's ``i`` is NIR's ``(r dt/tau_mem) J + (dt/tau_mem) v_leak``, so
``alpha = 1 - dt/tau_syn`` and ``leak = 1 - dt/tau_mem``. That is exact for ``v_leak = 0``; with
``v_leak != 0`` snnsim's ``i`` starts at 0 where NIR's would start at ``(dt/tau_mem) v_leak``, so
the first steps differ (it converges to the same steady state; a warning says so).

So ``leak = 1 - dt/tau`` (a ``tau`` shorter than ``dt`` is refused: Euler would be unstable), and
the input gain ``g`` (``r dt/tau``, or ``r dt``) is folded into the weights and bias of the
``Conv2d``/``Affine`` that drives the neuron (every one of a fan-in); the constant
``(dt/tau) v_leak`` becomes a bias of the first of them (exact: it is added at every step). A fan-in
that also adds a population's spikes directly (an identity shortcut, which snnsim adds unscaled)
keeps the potential in units of ``1/g`` instead: threshold, ``v_reset`` and the ``v_leak`` bias
are divided by ``g``, which gives the same spikes. The integrator has no leak: LI's ``1 - dt/tau``
is dropped (a warning, and a note in the checkpoint's provenance). A gain within 1e-6 of 1 is 1:
exporters compute ``r = tau / dt`` in float32 (snnTorch writes r = 9.999997 for tau = 10 dt), and
snnsim -> NIR -> snnsim returns the same weights bit for bit.

Firing and reset: NIR fires on ``v > v_threshold`` and then *sets* ``v`` to ``v_reset`` (a hard
reset, ``reset='value'``, the default); NIR cannot say snnsim's soft reset (subtract the
threshold), which ``reset='subtract'`` asks for. Thresholds and leaks may be uniform or uniform
within each channel (``per_channel=True``); values that vary within a channel are refused, as is a
``v_reset`` that is not one number per population.

``dt``: NIR has no time step field. The exporters (snnTorch, SpikingJelly) write time constants in
seconds for ``dt = 1e-4`` s (``tau = dt / (1 - beta)``, ``r = tau / dt``; SpikingJelly's ``IF``
has ``r = 1 / dt``), so only ``dt/tau`` and ``r dt`` matter and :data:`DEFAULT_DT` is 1e-4 s.
``--dt`` overrides it, and a graph's ``dt`` metadata entry (which :func:`export_nir` writes) is used
where ``--dt`` is not given.

What NIR cannot say about an snnsim model (soft reset, ``>=`` firing, dropout, per-channel flags,
a zero bias that exists, the names of Add nodes, node order, T, the data set) is written as JSON
under the ``snnsim`` key of the node's or graph's metadata, with a warning for the semantics NIR
readers will not see (soft reset, ``>=``); :func:`import_nir` reads it back.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnsim.errors import SnnsimError, quote
from snnsim.graph.graph import Graph, stable_topological_order
from snnsim.graph.nodes import (
    ENCODINGS,
    IF,
    LIF,
    SYNAPSES,
    Add,
    Affine,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    CubaLIF,
    Flatten,
    Input,
    Integrator,
    MaxPool2d,
    Node,
    Output,
    Scale,
    Shape,
    SumPool2d,
)
from snnsim.io import existing_file
from snnsim.models import Model

#: The time step used when neither ``--dt`` nor the file's metadata gives one (seconds): the
#: exporters' convention, with time constants in seconds.
DEFAULT_DT = 1e-4
#: Reset modes an import can ask for: NIR's hard reset to v_reset, or snnsim's soft reset.
RESETS = ("value", "subtract")
#: A gain (``r dt/tau`` or ``r dt``) this close to 1 is 1: a few float32 roundings of an
#: exporter's ``r = tau / dt`` (see the module docstring).
GAIN_SNAP = 1e-6
#: NIR node types snnsim maps (the others that NIR 1.0 defines are refused by name).
SUPPORTED = ("Input", "Output", "Affine", "Linear", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d", "Scale",
             "LIF", "IF", "CubaLIF", "LI", "I", "NIRGraph")
_NEURONS = ("LIF", "IF", "CubaLIF", "LI", "I")
_META_KEY = "snnsim"
_FIX_FILE = "pass a graph written by nir.write (NIR 1.0)"
_WHY: dict[str, str] = {
    "CubaLI": "its synaptic current has its own time constant (tau_syn), a second state no snnsim node has",
    "Conv1d": "snnsim's convolutions are 2-D",
    "Delay": "snnsim has no delay node",
    "Threshold": "snnsim's neurons fire by themselves (a bare Threshold has no snnsim node)",
}


def _nir() -> Any:
    """The ``nir`` package (a dependency; imported where it is used, it pulls in h5py)."""
    import nir

    return nir


# ============================================================================== reading
def _text(value: Any) -> str:
    return value.decode("utf8", "replace") if isinstance(value, bytes) else str(value)


def _scan_types(group: Any, prefix: str, known: set[str], source: str) -> None:
    """Walk the file's node groups before ``nir.read`` does: a node type NIR does not define (nir
    would fail with a bare assertion) or snnsim does not map is refused here, naming the node."""
    import h5py

    if "type" not in group:
        raise SnnsimError(f"NIR file {source}: node {prefix.rstrip('.') or '(root)'!r} has no type", _FIX_FILE)
    kind = _text(group["type"][()])
    name = prefix.rstrip(".") or "(root)"
    if kind not in known:
        raise SnnsimError(f"NIR file {source}: node {name!r} has type {kind!r}, which NIR "
                          f"{_nir().version} does not define", "snnsim imports NIR 1.0 node types")
    if kind != "NIRGraph":
        if kind not in SUPPORTED:
            why = _WHY.get(kind, "snnsim has no node for it")
            raise SnnsimError(f"NIR file {source}: node {name!r} ({kind}) is not supported: {why}",
                              f"snnsim imports {', '.join(t for t in SUPPORTED if t != 'NIRGraph')} and nested graphs")
        return
    nodes = group.get("nodes")
    if not isinstance(nodes, h5py.Group):
        raise SnnsimError(f"NIR file {source}: graph {name!r} has no nodes", _FIX_FILE)
    for key, child in nodes.items():
        if not isinstance(child, h5py.Group):
            raise SnnsimError(f"NIR file {source}: node {prefix + key!r} is malformed", _FIX_FILE)
        _scan_types(child, f"{prefix}{key}.", known, source)


def read_nir(path: str | os.PathLike[str]) -> Any:
    """Read a NIR graph file with ``nir.read`` (types not checked: snnsim infers shapes itself);
    one-line :class:`SnnsimError` for a missing file, a file that is not HDF5 or not a NIR graph,
    and for a node type snnsim does not map (naming the node)."""
    import h5py

    nir = _nir()
    p = existing_file(path, "NIR file", dir_fix="pass the .nir file")
    source = repr(str(p))
    if not h5py.is_hdf5(p):
        raise SnnsimError(f"{source} is not a NIR file (NIR graphs are HDF5 files, this is not one)", _FIX_FILE)
    known = {n for n in nir.ir.__all__ if isinstance(getattr(nir, n, None), type) and n != "NIRNode"}
    try:
        with h5py.File(p, "r") as f:
            root = f.get("node")
            if not isinstance(root, h5py.Group):
                raise SnnsimError(f"NIR file {source} is an HDF5 file but not a NIR graph (no 'node' group)", _FIX_FILE)
            _scan_types(root, "", known, source)
    except OSError as exc:
        raise SnnsimError(f"NIR file {source} cannot be read ({quote(exc, 100)})", _FIX_FILE) from None
    try:
        graph = nir.read(p, type_check=False)
    except SnnsimError:
        raise
    except Exception as exc:  # nir's reader raises AssertionError, KeyError, ValueError, TypeError, ...
        raise SnnsimError(f"NIR file {source} cannot be read by nir {nir.version} "
                          f"({type(exc).__name__}: {quote(exc, 100)})", _FIX_FILE) from None
    if not isinstance(graph, nir.NIRGraph):
        raise SnnsimError(f"NIR file {source} holds a single {type(graph).__name__} node, not a graph",
                          "wrap it in a NIRGraph with Input and Output nodes")
    return graph


# ============================================================================== flattening
def _meta(node: Any, label: str, warnings: list[str]) -> dict[str, Any]:
    """The snnsim entry of a node's (or graph's) metadata, as a dict ({} if absent or unreadable)."""
    raw = (getattr(node, "metadata", None) or {}).get(_META_KEY)
    if raw is None:
        return {}
    try:
        value = json.loads(_text(raw))
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, dict):
        warnings.append(f"{label}: its '{_META_KEY}' metadata is not a JSON object; ignored")
        return {}
    return value


@dataclass
class _Flat:
    """A NIR graph with nested graphs dissolved: nodes by flat name, edges, NIR paths for messages."""

    nodes: dict[str, Any] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    path: dict[str, str] = field(default_factory=dict)
    through: set[str] = field(default_factory=set)  # a nested graph's Input / Output: contracted


def _flatten(graph: Any, prefix: str, path: str, flat: _Flat, source: str) -> tuple[str | None, str | None]:
    """Add ``graph``'s nodes to ``flat`` (names prefixed); return the flat names of its Input and
    Output (None at the top level, whose Input and Output stay real nodes)."""
    nir = _nir()
    entry: dict[str, str] = {}
    exit_: dict[str, str] = {}
    ends: dict[type, list[str]] = {nir.Input: [], nir.Output: []}
    nodes = graph.nodes if isinstance(graph.nodes, Mapping) else {}
    for key, node in nodes.items():
        name, where = f"{prefix}{key}", f"{path}{key}"
        if isinstance(node, nir.NIRGraph):
            inner_in, inner_out = _flatten(node, f"{name}_", f"{where}.", flat, source)
            assert inner_in is not None and inner_out is not None
            entry[key], exit_[key] = inner_in, inner_out
            continue
        flat.nodes[name] = node
        flat.path[name] = where
        for kind, found in ends.items():
            if isinstance(node, kind):
                found.append(name)
    names = set(nodes)
    for edge in graph.edges:
        if not isinstance(edge, tuple | list) or len(edge) != 2:
            raise SnnsimError(f"NIR file {source}: graph {path.rstrip('.') or '(root)'!r} has a malformed edge {edge!r}",
                              _FIX_FILE)
        a, b = (_text(e) for e in edge)
        for end in (a, b):
            if end not in names:
                raise SnnsimError(f"NIR file {source}: edge {path + a!r} -> {path + b!r} names node {path + end!r}, "
                                  "which does not exist", _FIX_FILE)
        flat.edges.append((exit_.get(a, f"{prefix}{a}"), entry.get(b, f"{prefix}{b}")))
    if not prefix:
        return None, None
    ins, outs = ends[nir.Input], ends[nir.Output]
    if len(ins) != 1 or len(outs) != 1:
        raise SnnsimError(f"NIR file {source}: nested graph {path.rstrip('.')!r} has {len(ins)} Input and "
                          f"{len(outs)} Output nodes", "snnsim flattens nested graphs with one of each")
    flat.through.update((ins[0], outs[0]))
    return ins[0], outs[0]


def _contract(flat: _Flat, source: str) -> None:
    """Remove the nested graphs' Input/Output nodes, joining each of their inputs to each output."""
    for p in [n for n in flat.nodes if n in flat.through]:
        preds = [a for a, b in flat.edges if b == p]
        succs = [b for a, b in flat.edges if a == p]
        joined = [(a, b) for b in succs for a in preds]
        edges: list[tuple[str, str]] = []
        for e in flat.edges:
            if p not in e:
                edges.append(e)
            elif joined:  # the joined edges take the place of the first edge that touched p
                edges.extend(joined)
                joined = []
        flat.edges = edges
        del flat.nodes[p]
    seen: set[tuple[str, str]] = set()
    for a, b in flat.edges:
        if (a, b) in seen:
            raise SnnsimError(f"NIR file {source}: edge {flat.path[a]!r} -> {flat.path[b]!r} appears twice",
                              "list each edge once (a node that reads a value twice needs a Scale of 2)")
        seen.add((a, b))


def _order(flat: _Flat, source: str) -> list[str]:
    """Topological order (ties by first appearance in the edge list, then node order); a cycle
    (a recurrent edge) is refused naming a node on it and its type."""
    rank: dict[str, int] = {}
    for a, b in flat.edges:
        rank.setdefault(a, len(rank))
        rank.setdefault(b, len(rank))
    for n in flat.nodes:
        rank.setdefault(n, len(rank))
    preds: dict[str, list[str]] = {n: [] for n in flat.nodes}
    succs: dict[str, list[str]] = {n: [] for n in flat.nodes}
    for a, b in flat.edges:
        succs[a].append(b)
        preds[b].append(a)
    order = stable_topological_order(preds, succs, rank)
    if len(order) != len(flat.nodes):
        done = set(order)

        def back_of(n: str) -> str:  # every node left over has an input that is left over too
            return next(p for p in preds[n] if p not in done)

        node = min((n for n in flat.nodes if n not in done), key=rank.__getitem__)
        walked: set[str] = set()
        while node not in walked:  # walking inputs backwards must come round a cycle
            walked.add(node)
            node = back_of(node)
        back = back_of(node)  # (back -> node) is an edge of that cycle
        raise SnnsimError(f"NIR file {source}: node {flat.path[node]!r} ({type(flat.nodes[node]).__name__}) is on a "
                          f"recurrent edge ({flat.path[back]!r} -> {flat.path[node]!r})",
                          "snnsim imports feed-forward graphs only (no recurrence)")
    return order


# ============================================================================== values
def _label(path: str, node: Any) -> str:
    return f"node {path!r} ({type(node).__name__})"


def _array(value: Any, what: str, source: str) -> np.ndarray:
    """A finite float64 array of a NIR field (torch tensors and scalars accepted)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise SnnsimError(f"NIR file {source}: {what} is not numeric", _FIX_FILE) from None
    if not np.isfinite(arr).all():
        raise SnnsimError(f"NIR file {source}: {what} contains NaN or Inf", "fix the exported values")
    return arr


def _ints(value: Any, what: str, source: str) -> tuple[int, int]:
    """A NIR kernel/stride/padding/dilation (a number or a pair, any numeric type) as a pair."""
    arr = _array(value, what, source).reshape(-1)
    if arr.size not in (1, 2) or not np.all(arr == np.round(arr)):
        raise SnnsimError(f"NIR file {source}: {what} must be a whole number or a pair of them, got {arr.tolist()}",
                          _FIX_FILE)
    vals = [int(v) for v in arr]
    return (vals[0], vals[-1])


def _whole(value: Any, what: str, source: str) -> int:
    arr = _array(value, what, source).reshape(-1)
    if arr.size != 1 or arr[0] != round(arr[0]):
        raise SnnsimError(f"NIR file {source}: {what} must be a whole number, got {arr.tolist()}", _FIX_FILE)
    return int(arr[0])


def channel_values(values: np.ndarray, shape: Shape, what: str) -> np.ndarray:
    """``values`` (broadcastable to the population ``shape``) as one value (shape (1,)) if
    uniform, or one per channel (``(C,)``, ``C = shape[0]``) if uniform within each channel;
    values that vary within a channel are refused (``what`` names them in the message). Shared
    with :mod:`snnsim.interop.torch_import`."""
    try:
        full = np.broadcast_to(values, shape)
    except ValueError:
        raise SnnsimError(f"{what} has shape {list(values.shape)}, which does not fit its "
                          f"population's {list(shape)}", "give neuron parameters the neuron's shape") from None
    rows = full.reshape(shape[0], -1)
    if np.all(rows == rows.flat[0]):
        return np.array([rows.flat[0]], dtype=np.float64)
    if np.all(rows == rows[:, :1]):
        return rows[:, 0].astype(np.float64)
    raise SnnsimError(f"{what} varies within a channel (per-element values)",
                      "snnsim takes one value per population or one per channel")


def _channels(values: np.ndarray, shape: Shape, what: str, source: str) -> np.ndarray:
    """:func:`channel_values` of a NIR node's field, the message naming the file."""
    return channel_values(values, shape, f"NIR file {source}: {what}")


def _uniform(values: np.ndarray) -> np.ndarray:
    """One value (shape (1,)) where all of ``values`` are equal, else ``values``."""
    return values[:1].copy() if np.all(values == values[0]) else values


def _snap(gain: np.ndarray) -> np.ndarray:
    return np.where(np.abs(gain - 1.0) <= GAIN_SNAP, 1.0, gain)


@dataclass
class _Proto:
    """One snnsim node being built: its kind, constructor fields, values (float64) and origin."""

    kind: str
    fields: dict[str, Any]
    params: dict[str, np.ndarray]
    label: str
    nir_type: str
    meta: dict[str, Any]

    def node(self) -> Node:
        from snnsim.graph.nodes import NODE_TYPES

        return NODE_TYPES[self.kind](**self.fields)


def _proto(path: str, node: Any, source: str, warnings: list[str]) -> _Proto:
    """The snnsim node for one NIR node, values unfolded (neurons keep NIR's raw parameters)."""
    nir = _nir()
    kind = type(node).__name__
    label = _label(path, node)
    meta = _meta(node, label, warnings)
    where = f"{label} field"

    def arr(name: str) -> np.ndarray:
        return _array(getattr(node, name), f"{where} {name!r}", source)

    if isinstance(node, nir.Input):
        shape = node.input_type.get("input") if isinstance(node.input_type, Mapping) else None
        if shape is None:
            raise SnnsimError(f"NIR file {source}: {label} has no shape", "give the Input node its shape (C, H, W)")
        dims = tuple(_whole(v, f"{label} shape", source) for v in np.asarray(shape).reshape(-1))
        if len(dims) > 3:
            raise SnnsimError(f"NIR file {source}: {label} has shape {list(dims)}; NIR shapes have no batch or time "
                              "dimension", "re-export with the input's (C, H, W) shape (snnTorch: ignore_dims=[0])")
        fields: dict[str, Any] = {"shape": dims}
        if meta.get("encoding") in ENCODINGS:  # written by export_nir: NIR has no input encoding
            fields["encoding"] = meta["encoding"]
        return _Proto("Input", fields, {}, label, kind, meta)
    if isinstance(node, nir.Output):
        return _Proto("Output", {}, {}, label, kind, meta)
    if isinstance(node, nir.Affine | nir.Linear):
        weight = arr("weight")
        if weight.ndim != 2:
            raise SnnsimError(f"NIR file {source}: {label} weight must be 2-D [out, in], got shape {list(weight.shape)}",
                              _FIX_FILE)
        params = {"weight": weight}
        if isinstance(node, nir.Affine):
            params["bias"] = arr("bias").reshape(-1)
            if params["bias"].shape != (weight.shape[0],):
                raise SnnsimError(f"NIR file {source}: {label} bias has {params['bias'].size} values for "
                                  f"{weight.shape[0]} outputs", _FIX_FILE)
        return _Proto("Affine", {"out_features": weight.shape[0], "bias": isinstance(node, nir.Affine)}, params,
                      label, kind, meta)
    if isinstance(node, nir.Conv2d):
        weight = arr("weight")
        if weight.ndim != 4:
            raise SnnsimError(f"NIR file {source}: {label} weight must be 4-D [out, in, kH, kW], got shape "
                              f"{list(weight.shape)}", _FIX_FILE)
        bias = arr("bias").reshape(-1) if node.bias is not None else np.zeros(weight.shape[0])
        if bias.shape != (weight.shape[0],):
            raise SnnsimError(f"NIR file {source}: {label} bias has {bias.size} values for {weight.shape[0]} output "
                              "channels", _FIX_FILE)
        kernel = (int(weight.shape[2]), int(weight.shape[3]))
        stride = _ints(node.stride, f"{where} 'stride'", source)
        dilation = _ints(node.dilation, f"{where} 'dilation'", source)
        padding = _conv_padding(node.padding, kernel, stride, dilation, label, source)
        has_bias = bool(np.any(bias != 0)) or meta.get("bias") is True
        fields = {"out_channels": int(weight.shape[0]), "kernel_size": kernel, "stride": stride, "padding": padding,
                  "dilation": dilation, "groups": _whole(node.groups, f"{where} 'groups'", source), "bias": has_bias}
        return _Proto("Conv2d", fields, {"weight": weight, "bias": bias}, label, kind, meta)
    if isinstance(node, nir.SumPool2d | nir.AvgPool2d):
        fields = {"kernel_size": _ints(node.kernel_size, f"{where} 'kernel_size'", source),
                  "stride": _ints(node.stride, f"{where} 'stride'", source) if node.stride is not None else None,
                  "padding": _ints(node.padding, f"{where} 'padding'", source) if node.padding is not None else (0, 0)}
        return _Proto("SumPool2d" if isinstance(node, nir.SumPool2d) else "AvgPool2d", fields, {}, label, kind, meta)
    if isinstance(node, nir.Flatten):
        fields = {"start_dim": _whole(node.start_dim, f"{where} 'start_dim'", source),
                  "end_dim": _whole(node.end_dim, f"{where} 'end_dim'", source)}
        return _Proto("Flatten", fields, {}, label, kind, meta)
    if isinstance(node, nir.Scale):
        return _Proto("Scale", {}, {"scale": arr("scale")}, label, kind, meta)
    if isinstance(node, nir.CubaLIF):
        names = ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")
    elif isinstance(node, nir.LIF):
        names = ("tau", "r", "v_leak", "v_threshold", "v_reset")
    elif isinstance(node, nir.IF):
        names = ("r", "v_threshold", "v_reset")
    elif isinstance(node, nir.LI):
        names = ("tau", "r", "v_leak")
    elif isinstance(node, nir.I):
        names = ("r",)
    else:  # read_nir refused every other type already
        raise SnnsimError(f"NIR file {source}: {label} is not supported", "snnsim imports NIR 1.0 feed-forward graphs")
    params = {n: arr(n) if getattr(node, n, None) is not None else np.zeros(1) for n in names}
    spiking = kind in ("LIF", "IF", "CubaLIF")
    return _Proto(kind if spiking else "Integrator", {}, params, label, kind, meta)


def _conv_padding(padding: Any, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                  label: str, source: str) -> tuple[int, int]:
    """A Conv2d's padding as a pair: numbers, ``'valid'`` (0) or ``'same'`` where symmetric."""
    if isinstance(padding, bytes | str):
        mode = _text(padding)
        if mode == "valid":
            return (0, 0)
        if mode == "same":
            if stride != (1, 1):
                raise SnnsimError(f"NIR file {source}: {label} has padding 'same' with stride {list(stride)}",
                                  "'same' padding needs stride 1; give the padding as numbers")
            totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
            if any(t % 2 for t in totals):
                raise SnnsimError(f"NIR file {source}: {label} has padding 'same' with an even kernel "
                                  f"{list(kernel)}, which pads one side more than the other",
                                  "snnsim pads both sides equally; use an odd kernel or numeric padding")
            return (totals[0] // 2, totals[1] // 2)
        raise SnnsimError(f"NIR file {source}: {label} has padding {mode!r}", "use numbers, 'same' or 'valid'")
    return _ints(padding, f"{label} field 'padding'", source)


# ============================================================================== import
@dataclass
class NirImport:
    """What :func:`import_nir` built: the model, the warnings to show, and the time step used."""

    model: Model
    warnings: list[str]
    dt: float
    dt_source: str  # 'given' | 'file' | 'default'
    reset: str | None


def safe_name(name: str, used: set[str]) -> str:
    """A valid, unused snnsim node name for ``name`` (unchanged when it already is one): '.'
    becomes '_', names that clash with a GraphNet attribute or start with '_' get a suffix.
    Shared with :mod:`snnsim.interop.torch_import`."""
    from snnsim.graph.torch_net import GraphNet

    base = name.replace(".", "_") or "node"
    if base.startswith("_"):
        base = f"n{base}"
    reserved = {"graph", "kind", "timesteps", "schedule", "spec", "dataset_info", "provenance", "quantization",
                "training"}
    cand = base[:200]
    while cand in used or cand in reserved or hasattr(GraphNet, cand):
        cand = f"{cand}_"
    used.add(cand)
    return cand


class _Builder:
    """The import's working graph: protos by name, edges, and the passes over them."""

    def __init__(self, source: str, dt: float, reset: str | None, warnings: list[str]) -> None:
        self.source, self.dt, self.reset, self.warnings = source, dt, reset, warnings
        self.protos: dict[str, _Proto] = {}
        self.edges: list[tuple[str, str]] = []
        self.notes: list[str] = []

    # ------------------------------------------------------------------ structure
    def preds(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def succs(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]

    def add_fan_in(self, used: set[str]) -> None:
        """Every node with several inputs reads their sum: an explicit Add in front of it."""
        for name in list(self.protos):
            preds = self.preds(name)
            if len(preds) < 2:
                continue
            proto = self.protos[name]
            wanted = proto.meta.get("add") if isinstance(proto.meta.get("add"), str) else f"{name}_add"
            add = safe_name(wanted, used)
            self.protos = _insert_before(self.protos, name, add,
                                         _Proto("Add", {}, {}, f"fan-in of {proto.label}", "fan-in", {}))
            self.edges = [(a, add) if b == name else (a, b) for a, b in self.edges] + [(add, name)]

    def graph(self, name: str) -> Graph:
        nodes = {n: p.node() for n, p in self.protos.items()}
        rank = {n: i for i, n in enumerate(nodes)}
        pos = {e: i for i, e in enumerate(self.edges)}
        edges = sorted(self.edges, key=lambda e: (rank[e[1]], pos[e]))
        return Graph(nodes, edges, name=name)

    # ------------------------------------------------------------------ checks and folds
    def check_weights(self, graph: Graph) -> None:
        """The synapses' weights fit their inferred input shapes."""
        for name, proto in self.protos.items():
            if proto.kind not in SYNAPSES:
                continue
            info = graph.info[name]
            node = info.node
            want = node.weight_shape(info.in_shapes[0]) if isinstance(node, Conv2d) else \
                (info.out_shape[0], info.in_shapes[0][0])
            got = proto.params["weight"].shape
            if tuple(got) != tuple(want):
                raise SnnsimError(f"NIR file {self.source}: {proto.label} has weight shape {list(got)}, but its input "
                                  f"{list(info.in_shapes[0])} needs {list(want)}", "fix the exported graph")

    def _exclusive(self, synapse: str, reader: str) -> None:
        if self.succs(synapse) != [reader]:
            raise SnnsimError(f"NIR file {self.source}: {self.protos[synapse].label} feeds "
                              f"{len(self.succs(synapse))} nodes, so the value folded into it from "
                              f"{self.protos[reader].label} cannot be",
                              "snnsim folds scales and neuron gains into a synapse that feeds one node")

    def fold_scales(self, graph: Graph) -> None:
        """Each Scale multiplies the rows of the Conv2d / Affine in front of it, then disappears."""
        for name in [n for n, p in self.protos.items() if p.kind == "Scale"]:
            proto = self.protos[name]
            (pred,) = self.preds(name)
            if self.protos[pred].kind not in SYNAPSES:
                raise SnnsimError(f"NIR file {self.source}: {proto.label} follows {self.protos[pred].label}",
                                  "snnsim folds a Scale only into the Conv2d or Affine in front of it")
            self._exclusive(pred, name)
            s = _channels(proto.params["scale"], graph.info[name].out_shape, f"{proto.label} field 'scale'", self.source)
            self._scale_rows(pred, s)
            self.edges = [(pred, b) if a == name else (a, b) for a, b in self.edges if b != name]
            del self.protos[name]

    def _scale_rows(self, synapse: str, factor: np.ndarray) -> None:
        params = self.protos[synapse].params
        w = params["weight"]
        params["weight"] = w * factor.reshape(-1, *([1] * (w.ndim - 1)))
        if "bias" in params:
            params["bias"] = params["bias"] * factor

    def _add_bias(self, synapse: str, reader: str, bias: np.ndarray) -> None:
        proto = self.protos[synapse]
        self._exclusive(synapse, reader)
        rows = proto.params["weight"].shape[0]
        proto.params["bias"] = proto.params.get("bias", np.zeros(rows)) + np.broadcast_to(bias, (rows,))
        proto.fields["bias"] = True

    def fold_neurons(self, graph: Graph) -> None:
        """Discretise every neuron (module docstring) and fold its gain and v_leak term."""
        for name in [n for n, p in self.protos.items() if p.nir_type in _NEURONS]:
            self._fold_neuron(name, graph.info[name].out_shape)

    def _fold_neuron(self, name: str, shape: Shape) -> None:
        proto = self.protos[name]
        src, dt = self.source, self.dt
        raw = proto.params

        def per(field: str, values: np.ndarray) -> np.ndarray:
            return _channels(values, shape, f"{proto.label} field {field!r}", src)

        for key, values in raw.items():  # every field must fit the population, per channel at most
            per(key, values)

        def euler_step(field: str) -> np.ndarray:  # dt/tau, checked
            tau = per(field, raw[field])
            if np.any(tau <= 0):
                raise SnnsimError(f"NIR file {src}: {proto.label} has {field} <= 0", "time constants must be positive")
            if np.any(dt / tau > 1):
                raise SnnsimError(f"NIR file {src}: {proto.label} has {field} {float(tau.min()):.4g} shorter than dt "
                                  f"{dt:.4g}, where forward Euler is unstable", "pass a smaller --dt")
            return dt / tau

        syn_step = euler_step("tau_syn") if "tau_syn" in raw else None  # CubaLIF: dt/tau_syn
        if "tau" in raw or "tau_mem" in raw:
            step = euler_step("tau" if "tau" in raw else "tau_mem")  # LIF / LI / CubaLIF: dt/tau
        else:
            step = np.full(1, dt)  # IF / I: dv/dt = r I
        r = per("r", raw["r"])
        if np.any(r <= 0):
            raise SnnsimError(f"NIR file {src}: {proto.label} has r <= 0", "the input resistance must be positive")
        const = step * per("v_leak", raw["v_leak"]) if "v_leak" in raw else np.zeros(1)
        if syn_step is None:
            gain = _snap(r * step)
        else:  # the synaptic current's gain w_in dt/tau_syn in front of the membrane's r dt/tau_mem
            w_in = per("w_in", raw["w_in"])
            if np.any(w_in == 0):
                raise SnnsimError(f"NIR file {src}: {proto.label} has w_in = 0, so nothing drives it",
                                  "give the input current weight w_in a nonzero value")
            gain = _snap(r * step * syn_step * w_in)
            const = syn_step * const
            if np.any(const != 0):
                self.warnings.append(f"{proto.label} (CubaLIF) has v_leak != 0: snnsim's synaptic current starts at "
                                     "0, so its first steps differ from NIR's (the same steady state)")
        pred = self.preds(name)[0]
        operands = self.preds(pred) if self.protos[pred].kind == "Add" else [pred]
        reader = pred if self.protos[pred].kind == "Add" else name
        synapses = [o for o in operands if self.protos[o].kind in SYNAPSES]
        units = np.ones(1)  # the potential's unit relative to NIR's v (1/g in threshold mode)
        if np.any(gain != 1):
            if len(synapses) == len(operands):
                for s in synapses:
                    self._exclusive(s, reader)
                    self._scale_rows(s, gain)
            elif proto.kind == "Integrator" or (not synapses and np.any(const != 0)):
                other = next(o for o in operands if o not in synapses)
                raise SnnsimError(f"NIR file {src}: {proto.label} has input gain "
                                  f"{float(gain.mean()):.6g} and is driven by {self.protos[other].label}, which snnsim "
                                  "adds unscaled", "give it r = tau/dt (gain 1), as the snnTorch and SpikingJelly "
                                  "exporters do")
            else:
                units = gain
                self.notes.append(f"{proto.label}: input gain {float(gain.mean()):.6g} kept in the threshold "
                                  "(its fan-in adds a population's spikes unscaled)")
        if np.any(const != 0):
            if not synapses:
                raise SnnsimError(f"NIR file {src}: {proto.label} has v_leak != 0 but no Conv2d / Affine drives it",
                                  "snnsim folds v_leak into the bias of the synapse driving the neuron")
            self._add_bias(synapses[0], reader, const / units)
        if proto.nir_type == "LI":
            msg = (f"{proto.label} is imported as the output Integrator, which does not leak: NIR's leak "
                   f"1 - dt/tau = {float((1 - step).mean()):.6g} per step is not modelled")
            self.warnings.append(msg)
        if proto.kind == "Integrator":
            proto.params = {}
            return
        self._neuron_values(proto, per, step, units, shape, syn_step)

    def _neuron_values(self, proto: _Proto, per: Any, step: np.ndarray, units: np.ndarray, shape: Shape,
                       syn_step: np.ndarray | None = None) -> None:
        """Threshold, leak (alpha: ``1 - syn_step``), v_reset and the flags of a LIF / IF /
        CubaLIF population."""
        src, raw, meta = self.source, proto.params, proto.meta
        theta = _uniform(per("v_threshold", raw["v_threshold"]) / units)
        if np.any(theta <= 0):
            raise SnnsimError(f"NIR file {src}: {proto.label} has v_threshold <= 0",
                              "snnsim's neurons need positive thresholds")
        v_reset = _uniform(per("v_reset", raw["v_reset"]) / units)
        if v_reset.size != 1:
            raise SnnsimError(f"NIR file {src}: {proto.label} has a v_reset that differs between channels",
                              "snnsim takes one v_reset per population")
        reset = self.reset or (meta.get("reset") if meta.get("reset") in RESETS else "value")
        if reset == "subtract" and float(v_reset[0]) != 0:
            self.warnings.append(f"{proto.label}: v_reset = {float(v_reset[0]):.6g} is not used by the subtract reset")
        leak = 1.0 - step if ("tau" in raw or "tau_mem" in raw) else None
        alpha = None if syn_step is None else 1.0 - syn_step
        cuba = proto.kind == "CubaLIF"
        as_lif = proto.kind == "LIF" or meta.get("kind") == "LIF"
        if as_lif and leak is None:
            leak = np.ones(1)
        per_channel = bool(theta.size > 1 or (leak is not None and leak.size > 1)
                           or (alpha is not None and alpha.size > 1) or meta.get("per_channel") is True)
        width = shape[0] if per_channel else 1
        values = {"threshold": np.broadcast_to(theta, (width,)).copy()}
        if leak is not None:
            values["leak"] = np.broadcast_to(leak, (width,)).copy()
        if alpha is not None:
            values["alpha"] = np.broadcast_to(alpha, (width,)).copy()
        dropout = meta.get("dropout", 0.0)
        proto.kind = "CubaLIF" if cuba else "LIF" if as_lif else "IF"
        proto.fields = {"per_channel": per_channel, "reset": reset, "v_reset": float(v_reset[0]),
                        "fire": meta.get("fire") if meta.get("fire") in (">", ">=") else ">",
                        "dropout": float(dropout) if isinstance(dropout, int | float) and 0 <= dropout < 1 else 0.0}
        proto.params = values

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name, proto in self.protos.items():
            for key, values in proto.params.items():
                if key == "bias" and not proto.fields.get("bias"):
                    continue
                out[f"{name}.{key}"] = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
        return out


def _insert_before(protos: dict[str, _Proto], before: str, name: str, proto: _Proto) -> dict[str, _Proto]:
    out: dict[str, _Proto] = {}
    for k, v in protos.items():
        if k == before:
            out[name] = proto
        out[k] = v
    return out


def _positive(value: Any) -> float | None:
    try:
        v = float(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def nir_to_model(graph: Any, timesteps: int | None = None, dt: float | None = None, reset: str | None = None,
                 source: str = "'<graph>'", name: str = "nir") -> NirImport:
    """Build an snnsim SNN from a NIR graph (see the module docstring for the mapping and the
    discretisation). ``timesteps``/``dt`` default to the graph's metadata (``dt`` then to
    :data:`DEFAULT_DT`); ``reset`` None means the node's snnsim metadata, else ``'value'``."""
    from snnsim.models import build_model

    warnings: list[str] = []
    if reset is not None and reset not in RESETS:
        raise SnnsimError(f"reset must be one of {', '.join(RESETS)}, got {reset!r}")
    meta = _meta(graph, "graph", warnings)
    file_dt = _positive((getattr(graph, "metadata", None) or {}).get("dt"))
    if dt is not None:
        if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
            raise SnnsimError(f"dt must be a positive number, got {dt!r}")
        dt_used, dt_source = float(dt), "given"
    elif file_dt is not None:
        dt_used, dt_source = file_dt, "file"
    else:
        dt_used, dt_source = DEFAULT_DT, "default"
        warnings.append(f"no --dt given and the file states none: using dt = {DEFAULT_DT:g} s, the exporters' "
                        "convention (only dt/tau and r*dt matter)")
    steps = timesteps if timesteps is not None else meta.get("timesteps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise SnnsimError(f"NIR file {source} does not say how many timesteps to run", "pass --timesteps T")

    flat = _Flat()
    _flatten(graph, "", "", flat, source)
    _contract(flat, source)
    order = _order(flat, source)
    for kind in ("Input", "Output"):
        found = [flat.path[n] for n in order if type(flat.nodes[n]).__name__ == kind]
        if len(found) != 1:
            raise SnnsimError(f"NIR file {source}: has {len(found)} {kind} nodes ({', '.join(found) or 'none'})",
                              f"snnsim imports graphs with exactly one {kind}")

    b = _Builder(source, dt_used, reset, warnings)
    used: set[str] = set()
    names = {n: safe_name(n, used) for n in order}
    for n in order:
        b.protos[names[n]] = _proto(flat.path[n], flat.nodes[n], source, warnings)
    b.edges = [(names[a], names[c]) for a, c in flat.edges]
    b.add_fan_in(used)
    graph_name = meta.get("name") if isinstance(meta.get("name"), str) and meta["name"] else name
    graph_name = graph_name[:256]
    first = b.graph(graph_name)  # shapes (and every structural check) before values are folded
    first.check_size(f"NIR file {source}")  # before anything is allocated
    b.check_weights(first)
    b.fold_scales(first)
    b.fold_neurons(first)
    wanted = meta.get("nodes")
    if isinstance(wanted, list) and sorted(map(str, wanted)) == sorted(b.protos):
        b.protos = {n: b.protos[n] for n in wanted}
    final = b.graph(graph_name)
    model = build_model(final, kind="snn", timesteps=steps)
    try:
        model.load_state_dict(b.state(), strict=True)
    except RuntimeError as exc:  # a shape the checks above missed: still one line
        raise SnnsimError(f"NIR file {source}: its values do not fit the graph ({quote(exc, 100)})",
                          "fix the exported graph") from None
    model.check_simulable()
    model.eval()
    info: dict[str, Any] = {"input_shape": list(final.info[final.input].out_shape)}
    out_shape = final.info[final.output].in_shapes[0]
    if len(out_shape) == 1:
        info["num_classes"] = int(out_shape[0])
    dataset = meta.get("dataset")
    if isinstance(dataset, dict):
        for key in ("name", "mean", "std"):
            if dataset.get(key) is not None:
                info[key] = dataset[key]
    model.dataset_info = info
    model.provenance = {"imported_from": {"format": "NIR", "nir_version": _nir().version, "file": source,
                                          "dt": dt_used, "dt_source": dt_source,
                                          "reset": reset or "value (NIR) unless the node's metadata says otherwise",
                                          "discretisation": "forward Euler (snnsim.interop.nir_io)"},
                        "import_notes": [*warnings, *b.notes]}
    return NirImport(model, warnings, dt_used, dt_source, reset)


def import_nir(path: str | os.PathLike[str], timesteps: int | None = None, dt: float | None = None,
               reset: str | None = None) -> NirImport:
    """Read a NIR file (:func:`read_nir`) and build its snnsim SNN (:func:`nir_to_model`); the
    model's provenance records the file, dt and every warning. Nothing is written."""
    p = Path(path)
    graph = read_nir(p)
    from snnsim.checkpoint import checkpoint_dict, validate_checkpoint

    result = nir_to_model(graph, timesteps, dt, reset, source=repr(str(p)), name=p.stem or "nir")
    validate_checkpoint(checkpoint_dict(result.model), f"imported model of {str(p)!r}")  # loadable as saved
    return result


# ============================================================================== export
def _sources(graph: Graph, name: str) -> list[str]:
    """The non-Add nodes whose values reach ``name`` through Adds (its NIR fan-in), in order."""
    if not isinstance(graph.nodes[name], Add):
        return [name]
    return [s for p in graph.predecessors[name] for s in _sources(graph, p)]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _full(values: torch.Tensor, shape: Shape) -> np.ndarray:
    """A population's (1,) or (C,) parameter as an array of the population's shape (float64)."""
    v = values.detach().cpu().double().numpy()
    v = v.reshape(-1, *([1] * (len(shape) - 1))) if v.size > 1 else v.reshape(())
    return np.broadcast_to(v, shape).copy()


def model_to_nir(model: Model, dt: float = DEFAULT_DT) -> tuple[Any, list[str]]:
    """The NIR graph of an snnsim SNN and the warnings about what NIR cannot say.

    LIF with leak ``l``: ``tau = dt / (1 - l)``, ``r = tau / dt`` (input gain 1), ``v_leak = 0``;
    a LIF whose leak is exactly 1 is written as an IF (with metadata); IF: ``r = 1 / dt``; the
    Integrator: ``I`` with ``r = 1 / dt``. BatchNorm2d (fold it first) and MaxPool2d (NIR has no max
    pooling) are refused in one line."""
    nir = _nir()
    if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise SnnsimError(f"dt must be a positive number, got {dt!r}")
    if model.kind != "snn":
        raise SnnsimError(f"model {model.name!r} is an ANN checkpoint", "export the converted or trained SNN")
    graph = model.graph
    state = model.state_dict()
    flagged: dict[str, list[str]] = {}
    nodes: dict[str, Any] = {}
    for name in graph.order:
        info = graph.info[name]
        node = info.node
        if isinstance(node, Add):
            continue
        meta: dict[str, Any] = {}
        preds = graph.predecessors[name]
        if preds and isinstance(graph.nodes[preds[0]], Add):
            meta["add"] = preds[0]
        nodes[name] = _export_node(name, node, info.in_shapes[0] if info.in_shapes else info.out_shape,
                                   info.out_shape, state, dt, meta)
        if meta:
            nodes[name].metadata = {_META_KEY: json.dumps(meta, sort_keys=True)}
        for key, value, what in (("reset", "subtract", "reset by subtracting the threshold (NIR has only the hard "
                                  "reset to v_reset, which NIR readers will apply)"),
                                 ("fire", ">=", "fire at u >= threshold (NIR fires at v > threshold)"),
                                 ("encoding", "poisson", "feed signed Poisson spikes of the input (NIR has no input "
                                  "encoding; NIR readers will feed the values)")):
            if meta.get(key) == value:
                flagged.setdefault(what, []).append(name)
    edges: list[tuple[str, str]] = []
    for a, b in graph.edges:
        if isinstance(graph.nodes[b], Add):
            continue
        for s in _sources(graph, a):
            if (s, b) in edges:
                raise SnnsimError(f"model {model.name!r}: node {b!r} reads {s!r} twice through Add nodes, which NIR "
                                  "(one edge per pair) cannot say", "scale the synapse by 2 instead")
            edges.append((s, b))
    warnings = [f"{', '.join(names)} {what}; written in their '{_META_KEY}' metadata, which snnsim reads back"
                for what, names in flagged.items()]
    if model.quantization is not None:
        warnings.append(f"model {model.name!r} is quantized to {model.quantization.get('bits')} bits: NIR gets its "
                        "float weights (codes x scale); the integer codes and scales are not written")
    gmeta: dict[str, Any] = {"name": graph.name, "timesteps": int(model.timesteps), "nodes": list(graph.nodes)}
    ds = {k: model.dataset_info[k] for k in ("name", "mean", "std") if model.dataset_info.get(k) is not None}
    if ds:
        gmeta["dataset"] = ds
    metadata = {"dt": float(dt), _META_KEY: json.dumps(gmeta, sort_keys=True),
                "source": "snnsim export (forward Euler, see snnsim.interop.nir_io)"}
    try:
        out = nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)
    except Exception as exc:  # nir's own type check: a bug in this mapping, reported in one line
        raise SnnsimError(f"model {model.name!r}: nir {nir.version} refuses the exported graph "
                          f"({type(exc).__name__}: {quote(exc, 100)})", "report this as an snnsim bug") from None
    return out, warnings


def _export_node(name: str, node: Node, in_shape: Shape, out_shape: Shape, state: Mapping[str, torch.Tensor],
                 dt: float, meta: dict[str, Any]) -> Any:
    """One snnsim node as a NIR node (``meta`` collects what NIR cannot say)."""
    nir = _nir()
    if isinstance(node, Input):
        if node.encoding != "direct":
            meta["encoding"] = node.encoding
        return nir.Input(input_type=np.array(out_shape))
    if isinstance(node, Output):
        return nir.Output(output_type=np.array(out_shape))
    if isinstance(node, Conv2d):
        weight = _np(state[f"{name}.weight"])
        bias = _np(state[f"{name}.bias"]) if node.bias else np.zeros(node.out_channels, dtype=np.float32)
        if node.bias and not np.any(bias):
            meta["bias"] = True
        return nir.Conv2d(input_shape=(int(in_shape[1]), int(in_shape[2])), weight=weight, stride=node.stride,
                          padding=node.padding, dilation=node.dilation, groups=int(node.groups), bias=bias)
    if isinstance(node, Affine):
        weight = _np(state[f"{name}.weight"])
        if node.bias:
            return nir.Affine(weight=weight, bias=_np(state[f"{name}.bias"]))
        return nir.Linear(weight=weight)
    if isinstance(node, AvgPool2d | SumPool2d):
        assert node.stride is not None
        cls = nir.AvgPool2d if isinstance(node, AvgPool2d) else nir.SumPool2d
        return cls(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride), padding=np.array(node.padding))
    if isinstance(node, Flatten):
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=node.start_dim, end_dim=node.end_dim)
    if isinstance(node, Scale):
        return nir.Scale(scale=_full(state[f"{name}.scale"], out_shape))
    if isinstance(node, MaxPool2d):
        raise SnnsimError(f"node {name!r} is a MaxPool2d, which NIR cannot say (it has no max pooling)",
                          "use average or sum pooling to export to NIR")
    if isinstance(node, BatchNorm2d):
        raise SnnsimError(f"node {name!r} is an unfolded BatchNorm2d, which NIR cannot say",
                          "fold it into its conv first (snnsim.graph.fold_batchnorm; an SNN checkpoint has it folded)")
    if isinstance(node, Integrator):
        return nir.I(r=np.full(out_shape, 1.0 / dt))
    if isinstance(node, LIF | IF | CubaLIF):
        return _export_neuron(name, node, out_shape, state, dt, meta)
    raise SnnsimError(f"node {name!r} is a {node.kind}, which snnsim cannot export to NIR")


def _export_neuron(name: str, node: LIF | IF | CubaLIF, shape: Shape, state: Mapping[str, torch.Tensor], dt: float,
                   meta: dict[str, Any]) -> Any:
    """A LIF / IF / CubaLIF population as NIR's LIF, IF or CubaLIF (``meta``: soft reset, ``>=``,
    dropout, flags). A CubaLIF gets ``tau_syn = dt/(1 - alpha)``, ``tau_mem = dt/(1 - leak)`` and
    unit gain (``w_in = tau_syn/dt``, ``r = tau_mem/dt``), the inverse of the import."""
    nir = _nir()
    theta = _full(state[f"{name}.threshold"], shape)
    v_reset = np.full(shape, float(node.v_reset))
    if node.per_channel:
        meta["per_channel"] = True
    if node.dropout:
        meta["dropout"] = float(node.dropout)
    if node.reset == "subtract":
        meta["reset"] = "subtract"
    if node.fire == ">=":
        meta["fire"] = ">="
    if isinstance(node, IF):
        return nir.IF(r=np.full(shape, 1.0 / dt), v_threshold=theta, v_reset=v_reset)
    leak = state[f"{name}.leak"].detach().cpu().double()
    if isinstance(node, CubaLIF):
        alpha = state[f"{name}.alpha"].detach().cpu().double()
        for what, value in (("leak", leak), ("alpha", alpha)):
            if bool((value == 1).any()):
                raise SnnsimError(f"node {name!r} (CubaLIF) has {what} exactly 1; NIR's CubaLIF cannot say it "
                                  "(its time constant would be infinite)", f"set {what} below 1")
        tau_mem, tau_syn = _full(dt / (1.0 - leak), shape), _full(dt / (1.0 - alpha), shape)
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=np.zeros(shape),
                           v_threshold=theta, v_reset=v_reset, w_in=tau_syn / dt)
    if bool((leak == 1).all()):
        meta["kind"] = "LIF"
        return nir.IF(r=np.full(shape, 1.0 / dt), v_threshold=theta, v_reset=v_reset)
    if bool((leak == 1).any()):
        raise SnnsimError(f"node {name!r} (LIF) has a leak of exactly 1 in some channels and not in others; NIR's LIF "
                          "cannot say a leak of 1 (tau would be infinite)", "set those leaks below 1")
    tau = _full(dt / (1.0 - leak), shape)
    return nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(shape), v_threshold=theta, v_reset=v_reset)


def export_nir(model: Model, path: str | os.PathLike[str], dt: float = DEFAULT_DT) -> list[str]:
    """Write ``model`` as a NIR graph file (atomically: a temporary beside ``path``, then renamed);
    returns the warnings about what NIR cannot say."""
    from snnsim.io import atomic_path

    graph, warnings = model_to_nir(model, dt)
    with atomic_path(path) as tmp:
        _nir().write(tmp, graph)
    return warnings


# ============================================================================== NIRData
def write_nirdata(trace: Any, path: str | os.PathLike[str], dt: float = DEFAULT_DT,
                  populations: Iterable[str] | None = None) -> Path:
    """Write a trace's spikes as NIRData (``nir.write_data``), atomically.

    One ``NIRNodeData`` per spiking population, keyed by its node name (the name
    :func:`export_nir` gives that population's NIR node), with one observable ``spikes``:
    ``TimeGriddedData`` of dtype bool, shape ``[n_samples, T, n_neurons]`` (the population's map
    flattened in C, H, W order) and time step ``dt``. ``trace`` is a :class:`~snnsim.trace.Trace`
    or a trace directory; ``populations`` limits which are written. The arrays are unpacked in
    memory: ``n_samples * T * neurons`` bytes per population.
    """
    from snnsim.io import atomic_path
    from snnsim.trace import Trace, load_trace

    nir = _nir()
    if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise SnnsimError(f"dt must be a positive number, got {dt!r}")
    tr = trace if isinstance(trace, Trace) else load_trace(trace)
    spiking = [p for p in tr.populations if p.spiking]
    wanted = None if populations is None else list(populations)
    if wanted is not None:
        unknown = [w for w in wanted if w not in {p.name for p in spiking}]
        if unknown:
            raise SnnsimError(f"trace {str(tr.path)!r} has no spiking population {unknown[0]!r}",
                              f"choose from {', '.join(p.name for p in spiking)}")
        spiking = [p for p in spiking if p.name in wanted]
    nodes = {}
    for pop in spiking:
        packed = np.asarray(tr.spikes(pop.name))
        bits = np.unpackbits(packed, axis=-1, count=pop.neurons).astype(bool)
        nodes[pop.name] = nir.NIRNodeData(observables={"spikes": nir.TimeGriddedData(bits, float(dt))})
    out = Path(path)
    with atomic_path(out) as tmp:
        nir.write_data(tmp, nir.NIRGraphData(nodes=nodes))
    return out
