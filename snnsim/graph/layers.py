"""The simulator's view of a graph: synapse layers (edges into populations) and populations.

The event simulator, the trace and the cost model see a network as *populations* (LIF / IF /
CubaLIF neurons that spike, and the output Integrator) driven by *synapse layers*. :func:`simulation_view`
derives both from a graph's one schedule (:func:`snnsim.graph.schedule.lower`):

* every ``Conv2d`` / ``Affine`` node is a layer (:class:`~snnsim.arch.LayerInfo`): it reads the
  spikes of one ``source`` population (or the analog ``input``) through at most one pooling
  node (average, sum or max, stride = kernel, no padding: folded into the layer, ``docs/counting.md``)
  and a ``Flatten``, and its current (plus its bias) drives one ``target`` population, directly
  or through an ``Add``; a conv keeps its ``groups`` (each output channel reads the input
  channels of its group only) and its ``dilation`` (tap ``ky`` reads input offset
  ``ky * dilation``);
* an ``Add`` operand that is a population's spikes itself (a residual identity shortcut) is an
  ``identity`` layer: each spike adds 1 to the neuron at the same position of the target;
* a synapse may read an ``Add`` of populations' spikes (a SEW connection: graded values, a 2
  where two spikes meet): its ``source`` is the Add and ``parts`` the populations it sums
  (nested Adds flattened); every part's spike is an event of its own (``docs/counting.md``);
* a population fed by an ``Add`` sums the currents of all its layers (``PopulationInfo.layers``,
  in the ``Add``'s operand order, so float sums follow the PyTorch model's);
* a ``BatchNorm2d`` that cannot be folded into a conv (behind an ``Add``) may sit in front of a
  population: its layers carry its name (``LayerInfo.norm``), and the summed current is
  normalised per channel before the neurons integrate it.

Layers are numbered in schedule order (the ``Add`` of an identity layer gives its place), so a
VGG chain's layers are exactly :meth:`snnsim.arch.ArchSpec.layers`. Anything the simulator cannot
express yet (a BatchNorm2d anywhere but in front of a population, a Scale, two pools in a row, a pool on the analog
input, a synapse that feeds two nodes, a non-square kernel, stride, padding or dilation) is one
:class:`GraphError` line naming the node.
"""

from __future__ import annotations

from snnsim.arch import LayerInfo, PopulationInfo
from snnsim.graph.graph import Graph
from snnsim.graph.nodes import (
    SPIKING,
    SYNAPSES,
    Add,
    Affine,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    GraphError,
    Input,
    Integrator,
    MaxPool2d,
    Node,
    SumPool2d,
)
from snnsim.graph.schedule import Schedule, lower

_FIX = "fold it first (fold_batchnorm) or build the network from supported nodes (docs/counting.md)"


def _square(name: str, node: Node, field: str, value: tuple[int, ...]) -> int:
    if value[0] != value[1]:
        raise GraphError(f"graph node {name!r} ({node.kind}): the event simulator needs a square {field}, "
                         f"got {list(value)}", "use the same size along both axes")
    return int(value[0])


def spike_sum_parts(graph: Graph, add: str) -> tuple[str, ...]:
    """The spiking populations an ``Add`` of spikes sums (a SEW connection), in operand order,
    through nested Adds; a GraphError names an operand that is not spikes."""
    parts: list[str] = []
    for op in graph.info[add].inputs:
        info = graph.info[op]
        if isinstance(info.node, Add):
            parts.extend(spike_sum_parts(graph, op))
        elif info.kind in SPIKING and not isinstance(info.node, Integrator):
            parts.append(op)
        else:
            raise GraphError(f"graph node {add!r} (Add) feeds a synapse, so it must sum spikes, but its operand {op!r} "
                             f"is a {info.kind}", "add populations' spikes (a SEW connection), or add currents in front "
                             "of a population")
    return tuple(parts)


def _read_path(graph: Graph, name: str) -> tuple[str, str | None, int, bool, tuple[str, ...]]:
    """Walk back from synapse ``name`` to the population (or input) it reads:
    ``(source, pool kind, pool kernel, flatten, parts)``; a source that is an ``Add`` of spikes
    (SEW) gives the populations it sums as ``parts``."""
    pool: str | None = None
    k, flatten = 1, False
    cur = graph.info[name].inputs[0]
    while True:
        info = graph.info[cur]
        node = info.node
        if isinstance(node, Add):
            if pool == "max":
                raise GraphError(f"graph node {name!r}: the event simulator does not max-pool a sum of spikes ({cur!r})",
                                 "use average or sum pooling after a SEW add")
            return cur, pool, k, flatten, spike_sum_parts(graph, cur)
        if info.kind in SPIKING or isinstance(node, Input):
            if isinstance(node, Input) and pool is not None:
                raise GraphError(f"graph node {name!r}: the event simulator does not pool the analog input "
                                 f"(pool in front of the first synapse)", "pool after the first population instead")
            return cur, pool, k, flatten, ()
        if isinstance(node, Flatten) and not flatten and pool is None:
            flatten = True
        elif isinstance(node, AvgPool2d | SumPool2d | MaxPool2d) and pool is None:
            kernel = _square(cur, node, "kernel", node.kernel_size)
            assert node.stride is not None
            if node.stride != node.kernel_size or node.padding != (0, 0):
                raise GraphError(f"graph node {cur!r} ({node.kind}): the event simulator folds pools whose stride "
                                 f"equals the kernel and that have no padding, got {node.describe()}", _FIX)
            pool, k = ("avg" if isinstance(node, AvgPool2d) else "sum" if isinstance(node, SumPool2d) else "max"), kernel
        else:
            raise GraphError(f"graph node {name!r}: the event simulator reads a synapse's input from a population "
                             f"through at most one pool and a flatten, but it reads {node.kind} node {cur!r}", _FIX)
        cur = info.inputs[0]


def _synapse_layer(graph: Graph, name: str, target: str, spiking: bool, norm: str = "") -> LayerInfo:
    info = graph.info[name]
    node = info.node
    source, pool, k, flatten, parts = _read_path(graph, name)
    common = dict(name=name, in_shape=info.in_shapes[0], out_shape=info.out_shape,
                  source_shape=graph.info[source].out_shape, pool=pool, pool_kernel=k, flatten=flatten,
                  spiking=spiking, analog_input=isinstance(graph.nodes[source], Input), source=source,
                  target=target, bias=bool(node.bias), parts=parts, norm=norm)  # type: ignore[attr-defined]
    if isinstance(node, Conv2d):
        kernel = _square(name, node, "kernel", node.kernel_size)
        stride = _square(name, node, "stride", node.stride)
        padding = _square(name, node, "padding", node.padding)
        dilation = _square(name, node, "dilation", node.dilation)
        return LayerInfo(index=0, kind="conv", kernel=kernel, stride=stride, padding=padding, groups=node.groups,  # type: ignore[arg-type]
                         dilation=dilation, **common)
    assert isinstance(node, Affine)
    return LayerInfo(index=0, kind="linear", **common)  # type: ignore[arg-type]


def simulation_view(graph_or_schedule: Graph | Schedule) -> tuple[tuple[LayerInfo, ...], tuple[PopulationInfo, ...]]:
    """The layers and populations of a graph, as the simulator sees them (module docstring)."""
    sched = graph_or_schedule if isinstance(graph_or_schedule, Schedule) else lower(graph_or_schedule)
    graph = sched.graph
    step_of = {s.name: k for k, s in enumerate(sched.steps)}
    found: list[tuple[int, int, LayerInfo]] = []  # (step, operand position, layer)
    owner: dict[str, str] = {}
    for pop in sched.populations:
        feed = graph.info[pop.name].inputs[0]
        norm = ""
        if isinstance(graph.nodes[feed], BatchNorm2d):  # an unfolded BN on the population's input current
            norm, feed = feed, graph.info[feed].inputs[0]
            if len(graph.info[feed].outputs) != 1:
                raise GraphError(f"graph node {feed!r} feeds BatchNorm2d {norm!r} and other nodes; the event simulator "
                                 "needs what a batch norm normalises to reach only it", _FIX)
        feed_node = graph.nodes[feed]
        operands = list(graph.info[feed].inputs) if isinstance(feed_node, Add) else [feed]
        spiking = not isinstance(pop.node, Integrator)
        for pos, op in enumerate(operands):
            op_info = graph.info[op]
            if op_info.kind in SYNAPSES:
                if len(op_info.outputs) != 1:
                    raise GraphError(f"graph node {op!r} ({op_info.kind}) feeds {len(op_info.outputs)} nodes; the event "
                                     "simulator needs each synapse to drive one population", _FIX)
                found.append((step_of[op], pos, _synapse_layer(graph, op, pop.name, spiking, norm)))
                owner[op] = pop.name
            elif isinstance(feed_node, Add) and (op_info.kind in SPIKING or isinstance(op_info.node, Input)):
                if op_info.out_shape != pop.shape:
                    raise GraphError(f"graph node {feed!r} (Add): operand {op!r} has shape {list(op_info.out_shape)}, "
                                     f"not its population's {list(pop.shape)}")
                shape = op_info.out_shape
                found.append((step_of[feed], pos, LayerInfo(
                    index=0, name=f"{feed}.{op}", kind="identity", in_shape=shape, out_shape=shape,
                    source_shape=shape, spiking=spiking, analog_input=isinstance(op_info.node, Input),
                    source=op, target=pop.name, norm=norm)))
            else:
                what = f"{feed!r} ({feed_node.kind})" if op == feed else f"{op!r} ({op_info.kind}), an operand of {feed!r}"
                raise GraphError(f"graph {graph.name!r}: population {pop.name!r} is driven by {what}; the event simulator "
                                 "needs synapses (Conv2d / Affine, or an Add of them and of populations)", _FIX)
    for name in (i.name for i in graph.synapses):
        if name not in owner:
            raise GraphError(f"graph node {name!r}: its current reaches no population directly or through one Add", _FIX)
    found.sort(key=lambda item: (item[0], item[1]))
    layers = tuple(_renumber(layer, i) for i, (_, _, layer) in enumerate(found))
    operand = {layer.name: pos for _, pos, layer in found}
    pops = []
    for pop in sched.populations:
        mine = sorted((i for i, ly in enumerate(layers) if ly.target == pop.name), key=lambda i: operand[layers[i].name])
        pops.append(PopulationInfo(pop.index, pop.name, pop.node.kind, pop.shape, tuple(mine)))
    return layers, tuple(pops)


def _renumber(layer: LayerInfo, index: int) -> LayerInfo:
    from dataclasses import replace

    return replace(layer, index=index)
