"""The network graph: validation, shape inference and counts against PyTorch and the VGG specs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from snnsim.arch import ARCH_NAMES, make_arch
from snnsim.graph import (
    LIF,
    Add,
    Affine,
    AvgPool2d,
    Conv2d,
    Flatten,
    Graph,
    GraphBuilder,
    GraphError,
    Input,
    Integrator,
    MaxPool2d,
    Output,
    SumPool2d,
    build_graph,
    digits_resnet,
    resnet19,
    resnet20,
    vgg_graph,
)

# ----------------------------------------------------------------------------- VGG = spec
SPECS = [make_arch(n) for n in ARCH_NAMES] + [make_arch("digits").with_widths([9, 17, 33, 5, 77])]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name + str(s.widths()) for s in SPECS])
def test_vgg_graph_has_the_specs_layers_and_counts(spec) -> None:  # type: ignore[no-untyped-def]
    g = vgg_graph(spec)
    layers = spec.layers()
    assert [i.name for i in g.synapses] == [layer.name for layer in layers]
    assert [i.out_shape for i in g.synapses] == [tuple(layer.out_shape) for layer in layers]
    assert [i.in_shapes[0] for i in g.synapses] == [tuple(layer.in_shape) for layer in layers]
    assert g.weight_count() == spec.param_count()
    assert g.mac_count() == spec.mac_count()
    assert [i.kind for i in g.populations] == ["LIF"] * (len(layers) - 1) + ["Integrator"]


def test_vgg16_counts_are_the_papers_lineage_and_neurobench_dense() -> None:
    g = vgg_graph(make_arch("vgg16"))
    assert g.weight_count() == 39_917_248 and g.mac_count() == 338_403_328
    # NeuroBench's Dense on VGG16 at T=5 is 1,362,579,200 = 5 x the in-bounds connections
    assert 5 * g.connection_count() == 1_362_579_200


# ----------------------------------------------------------------------------- against torch
@settings(max_examples=60, deadline=None)
@given(c=st.integers(1, 6), h=st.integers(1, 12), w=st.integers(1, 12), k=st.integers(1, 5),
       s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2), g=st.sampled_from([1, 2, 3]),
       o=st.integers(1, 4), bias=st.booleans())
def test_conv_shape_params_macs_and_inbounds_connections_match_torch(c, h, w, k, s, p, d, g, o, bias) -> None:  # type: ignore[no-untyped-def]
    cin, cout = c * g, o * g
    node = Conv2d(out_channels=cout, kernel_size=k, stride=s, padding=p, dilation=d, groups=g, bias=bias)
    x = torch.ones(1, cin, h, w, dtype=torch.float64)
    try:
        ref = F.conv2d(x, torch.ones(cout, cin // g, k, k, dtype=torch.float64), stride=s, padding=p, dilation=d,
                       groups=g)
    except RuntimeError:  # torch refuses: the kernel does not fit
        with pytest.raises(GraphError):
            node.out_shape("c", [(cin, h, w)])
        return
    out = node.out_shape("c", [(cin, h, w)])
    assert out == tuple(ref.shape[1:])
    mod = nn.Conv2d(cin, cout, k, s, p, d, g, bias=bias)
    assert node.params((cin, h, w), out) == sum(t.numel() for t in mod.parameters())
    assert node.macs((cin, h, w), out) == (cin // g) * k * k * cout * out[1] * out[2]
    # all-ones input and weights: each in-bounds tap adds 1, each padding tap 0
    assert node.connections((cin, h, w), out) == int(ref.sum())


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 4), h=st.integers(1, 9), w=st.integers(1, 9), k=st.integers(1, 4),
       s=st.integers(1, 3), kind=st.sampled_from(["avg", "max", "sum"]))
def test_pool_shapes_match_torch(c, h, w, k, s, kind) -> None:  # type: ignore[no-untyped-def]
    node = {"avg": AvgPool2d, "max": MaxPool2d, "sum": SumPool2d}[kind](kernel_size=k, stride=s)
    if k > min(h, w):
        with pytest.raises(GraphError):
            node.out_shape("p", [(c, h, w)])
        return
    ref = F.avg_pool2d(torch.zeros(1, c, h, w), k, s)
    assert node.out_shape("p", [(c, h, w)]) == tuple(ref.shape[1:])


def test_flatten_dims_match_torch() -> None:
    for start, end in ((0, -1), (1, -1), (0, 1), (1, 2)):
        ref = torch.zeros(1, 3, 4, 5).flatten(start + 1, end if end < 0 else end + 1)
        assert Flatten(start, end).out_shape("f", [(3, 4, 5)]) == tuple(ref.shape[1:])


# ----------------------------------------------------------------------------- ResNets
def _torch_params(graph: Graph) -> int:
    """Parameters of the equivalent torch modules, built independently from the node fields."""
    total = 0
    for info in graph.info.values():
        n = info.node
        if isinstance(n, Conv2d):
            mod: nn.Module = nn.Conv2d(info.in_shapes[0][0], n.out_channels, n.kernel_size, n.stride, n.padding,
                                       n.dilation, n.groups, bias=n.bias)
        elif isinstance(n, Affine):
            mod = nn.Linear(info.in_shapes[0][0], n.out_features, bias=n.bias)
        elif info.kind == "BatchNorm2d":
            mod = nn.BatchNorm2d(info.out_shape[0])
        else:
            continue
        total += sum(t.numel() for t in mod.parameters())
    return total


def test_resnet19_is_the_tet_cifar_network() -> None:
    g = resnet19()
    convs = [i for i in g.synapses if i.kind == "Conv2d" and not i.name.endswith("_down")]
    assert len(convs) == 1 + 2 * (3 + 3 + 2)  # the stem + two per block: 17 convs + 2 fc = 19 layers
    assert [i.kind for i in g.synapses].count("Affine") == 2
    assert len(g.of_kind("Add")) == 8
    assert {i.out_shape[0] for i in convs} == {128, 256, 512}
    assert g.shapes["s3b2_lif2"] == (512, 8, 8) and g.shapes["fc1"] == (256,) and g.shapes["output"] == (10,)
    downs = [i for i in g.synapses if i.name.endswith("_down")]
    assert [(i.node.kernel_size, i.node.stride) for i in downs] == [((1, 1), (2, 2))] * 2
    assert g.weight_count() + sum(i.params for i in g.of_kind("BatchNorm2d")) == _torch_params(g)


def test_resnet20_and_digits_resnet() -> None:
    g = resnet20()
    assert len([i for i in g.synapses if not i.name.endswith("_down")]) == 20
    assert g.shapes["s3b3_lif2"] == (64, 8, 8)
    d = digits_resnet()
    assert len(d.of_kind("Add")) == 2
    strided = [i for i in d.synapses if i.name.endswith("_down")]
    assert len(strided) == 1 and strided[0].node.kernel_size == (1, 1) and strided[0].node.stride == (2, 2)
    assert d.shapes["output"] == (10,)
    for graph in (g, d):
        assert graph.weight_count() + sum(i.params for i in graph.of_kind("BatchNorm2d")) == _torch_params(graph)


def test_build_graph_names() -> None:
    assert build_graph("digits-resnet").name == "digits-resnet"
    assert build_graph("vgg5").weight_count() == make_arch("vgg5").param_count()
    with pytest.raises(GraphError, match="choose one of .*resnet19"):
        build_graph("resnet1000")


# ----------------------------------------------------------------------------- refusals
def _chain(*nodes: tuple[str, object]) -> tuple[dict, list]:  # type: ignore[type-arg]
    names = [n for n, _ in nodes]
    return dict(nodes), list(zip(names, names[1:], strict=False))


def _one_line(err: pytest.ExceptionInfo[GraphError]) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_refuses_a_dangling_edge() -> None:
    nodes, edges = _chain(("input", Input((4,))), ("fc", Affine(3)), ("output", Output()))
    with pytest.raises(GraphError) as err:
        Graph(nodes, [*edges, ("fc", "ghost")])
    assert "'ghost', which does not exist" in _one_line(err)


def test_refuses_a_cycle() -> None:
    nodes = {"input": Input((4,)), "a": Affine(4), "add": Add(), "b": Affine(4), "output": Output()}
    edges = [("input", "add"), ("b", "add"), ("add", "a"), ("a", "b"), ("a", "output")]
    with pytest.raises(GraphError) as err:
        Graph(nodes, edges)
    assert "is on a cycle" in _one_line(err)


def test_refuses_mismatched_add_and_implicit_fan_in() -> None:
    g = GraphBuilder("x", (3, 8, 8))
    g.add("c1", Conv2d(out_channels=4, kernel_size=3, padding=1))
    g.add("c2", Conv2d(out_channels=4, kernel_size=3, stride=2, padding=1))
    g.add("sum", Add(), "c1", "c2")
    g.add("fl", Flatten())
    g.add("fc", Affine(2))
    with pytest.raises(GraphError) as err:
        g.build()
    assert "node 'sum' (Add): its inputs have different shapes [4, 8, 8], [4, 4, 4]" in _one_line(err)
    nodes = {"input": Input((4,)), "a": Affine(4), "b": Affine(4), "output": Output()}
    with pytest.raises(GraphError) as err:
        Graph(nodes, [("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")])
    assert "node 'output' (Output) has 2 inputs, needs 1; join several inputs with an Add node" in _one_line(err)


@pytest.mark.parametrize("case,needle", [
    ("dead", "node 'dead' (Affine) feeds nothing"),
    ("no-flatten", "node 'fc' (Affine) needs a vector input, got shape [3, 4, 4]; put a Flatten in front of it"),
    ("two-inputs", "needs exactly one Input node, found 2"),
    ("big-kernel", "node 'c' (Conv2d): kernel [9, 9] does not fit its (padded) 4x4 input"),
    ("dot-name", "node name 'a.b' must be non-empty text without '.'"),
    ("groups", "node 'c' (Conv2d): groups=2 must divide its 3 input and 4 output channels"),
])
def test_refusals_name_the_node(case: str, needle: str) -> None:
    if case == "dead":
        nodes = {"input": Input((4,)), "fc": Affine(2), "dead": Affine(2), "output": Output()}
        edges = [("input", "fc"), ("input", "dead"), ("fc", "output")]
    elif case == "no-flatten":
        nodes, edges = _chain(("input", Input((3, 4, 4))), ("fc", Affine(2)), ("output", Output()))
    elif case == "two-inputs":
        nodes = {"input": Input((4,)), "input2": Input((4,)), "add": Add(), "output": Output()}
        edges = [("input", "add"), ("input2", "add"), ("add", "output")]
    elif case == "big-kernel":
        nodes, edges = _chain(("input", Input((3, 4, 4))), ("c", Conv2d(out_channels=2, kernel_size=9)),
                              ("output", Output()))
    elif case == "dot-name":
        nodes, edges = _chain(("input", Input((4,))), ("a.b", Affine(2)), ("output", Output()))
    else:
        nodes, edges = _chain(("input", Input((3, 4, 4))), ("c", Conv2d(out_channels=4, groups=2)),
                              ("output", Output()))
    with pytest.raises(GraphError) as err:
        Graph(nodes, edges)
    assert needle in _one_line(err)


def test_describe_lists_every_node_with_totals() -> None:
    g = digits_resnet()
    text = g.describe()
    for name in g.nodes:
        assert f"\n{name} " in text or text.startswith(name)
    assert f"{g.param_count():,} params" in text and f"{g.mac_count():,} MACs" in text
    assert math.prod(g.shapes["stem"]) == 32 * 8 * 8


def test_neuron_settings_are_checked() -> None:
    nodes, edges = _chain(("input", Input((4,))), ("fc", Affine(2)), ("n", LIF(reset="zero")),  # type: ignore[arg-type]
                          ("acc", Integrator()), ("output", Output()))
    with pytest.raises(GraphError, match="reset must be 'subtract' or 'value'"):
        Graph(nodes, edges)


def test_snnsim_info_prints_graphs(run_cli) -> None:  # type: ignore[no-untyped-def]
    from snnsim.commands.estimate import default_model_paths

    code, out, err = run_cli("info", "--arch", "digits-resnet")
    assert code == 0, err
    assert "s2b1_down" in out and "77,300 params" in out
    code, out, err = run_cli("info", default_model_paths()[0])
    assert code == 0, err
    assert "graph" in out and "conv1_lif" in out and "out_integrator" in out
    code, out, err = run_cli("info", "--arch", "vgg9", "--input-shape", "3,32")
    assert code == 2 and "--input-shape must be C,H,W" in err
    code, out, err = run_cli("info")
    assert code == 2 and "a checkpoint or --arch NAME" in err


@pytest.mark.parametrize("name", ["digits", "vgg16", "resnet19", "resnet20", "digits-resnet"])
def test_to_dict_round_trips_through_json(name: str) -> None:
    import json

    g = build_graph(name)
    back = Graph.from_dict(json.loads(json.dumps(g.to_dict())))
    assert back.nodes == g.nodes and back.edges == g.edges and back.name == g.name
    assert back.shapes == g.shapes and back.param_count() == g.param_count()


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d["nodes"]["conv1"].update(kind="Conv9d"), "node 'conv1' has unknown kind 'Conv9d'"),
    (lambda d: d["nodes"]["conv1"].update(colour="red"), "node 'conv1' (Conv2d) has unknown field 'colour'"),
    (lambda d: d["nodes"]["conv1"].update(padding={"a": 1}), "node 'conv1' field 'padding' must be"),
    (lambda d: d["nodes"]["conv1"].update(out_channels=0), "node 'conv1' (Conv2d): out_channels and groups must be in 1.."),
    (lambda d: d["nodes"]["conv1"].update(out_channels=10**9), "node 'conv1' (Conv2d): out_channels and groups must be in 1.."),
    (lambda d: d["nodes"]["conv1"].update(stride=0), "node 'conv1' (Conv2d): sizes must be positive"),
    (lambda d: d["edges"].append(["conv1"]), "every edge must be a pair of node names"),
    (lambda d: d.pop("nodes"), "must be a mapping with 'nodes'"),
    (lambda d: d["edges"].append(["conv1", "nowhere"]), "names node 'nowhere', which does not exist"),
])
def test_from_dict_refuses_malformed_graphs_in_one_line(mutate, needle: str) -> None:  # type: ignore[no-untyped-def]
    d = build_graph("digits").to_dict()
    mutate(d)
    with pytest.raises(GraphError) as err:
        Graph.from_dict(d)
    assert needle in _one_line(err)
