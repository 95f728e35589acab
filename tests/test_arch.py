"""Architecture specs: lineage VGG sizes (paper.md §3.2), width edits, unknown/unsupported layers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from snnsim.arch import ArchSpec, make_arch
from snnsim.checkpoint import checkpoint_dict
from snnsim.cli import main
from snnsim.errors import SnnsimError
from snnsim.models import build_model

# paper.md §3.2, computed by the lineage's compute_mac rule [DER]
LINEAGE = {
    ("vgg5", 10): 50_595_520,
    ("vgg9", 10): 32_065_216,
    ("vgg11", 100): 36_562_624,
    ("vgg16", 10): 39_917_248,
    ("vgg16", 100): 40_285_888,
}


@pytest.mark.parametrize(("name", "classes"), list(LINEAGE))
def test_lineage_vgg_parameter_counts(name: str, classes: int) -> None:
    spec = make_arch(name, num_classes=classes)
    assert spec.param_count() == LINEAGE[(name, classes)]
    model = build_model(spec, "ann")
    assert spec.param_count() == sum(p.numel() for syn in model.synapses if syn is not None for p in syn.parameters())
    assert spec.param_count() == model.param_count()


def test_vgg16_macs_and_first_layer() -> None:
    spec = make_arch("vgg16")
    assert spec.mac_count() == 338_403_328
    layers = spec.layers()
    assert layers[0].macs == 1_769_472 and layers[0].analog_input
    assert [layer.name for layer in layers][-3:] == ["fc1", "fc2", "out"]
    assert not layers[-1].spiking and all(layer.spiking for layer in layers[:-1])
    # pooling is folded into the layer that follows it
    assert [layer.pool for layer in layers[:4]] == [None, None, "avg", None]


def test_with_widths_edits_only_widths() -> None:
    spec = make_arch("digits")
    pruned = spec.with_widths([8, 9, 10, 11, 12])
    assert pruned.features == (8, 9, "A", 10, 11, "A") and pruned.classifier == (12,)
    assert pruned.input_shape == spec.input_shape and pruned.num_classes == spec.num_classes
    expected = 9 * 1 * 8 + 9 * 8 * 9 + 9 * 9 * 10 + 9 * 10 * 11 + 11 * 2 * 2 * 12 + 12 * 10
    assert pruned.param_count() == expected
    with pytest.raises(SnnsimError, match="expected 5"):
        spec.with_widths([1, 2, 3])


@pytest.mark.parametrize("features", [(8, "X"), ("A", 8), (8, "A", "A"), (0,), (8, True)])
def test_unknown_or_impossible_layers_are_refused(features: tuple) -> None:
    with pytest.raises(SnnsimError) as exc:
        ArchSpec("bad", features, (), (1, 8, 8), 10)
    assert "\n" not in str(exc.value)


def test_checkpoint_with_an_unknown_layer_is_a_one_line_error(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    net = build_model(make_arch("digits"), "snn")
    ckpt = checkpoint_dict(net)
    ckpt["arch"]["features"] = [64, "R", 64]  # 'R': a layer kind snnsim does not know
    path = tmp_path / "odd.pt"
    torch.save(ckpt, path)
    with pytest.raises(SystemExit) as exc:
        main(["info", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown layer 'R'" in err[0]


# ----------------------------------------------------------------------------- from_dict / bounds


@pytest.mark.parametrize("name", ["digits", "vgg5", "vgg9", "vgg11", "vgg16"])
def test_to_dict_from_dict_round_trip(name: str) -> None:
    spec = make_arch(name)
    assert ArchSpec.from_dict(spec.to_dict()) == spec
    assert ArchSpec.from_dict(spec.to_dict()).to_dict() == spec.to_dict()


def _spec_dict(**changes: object) -> dict:
    d = make_arch("digits").to_dict()
    d.update(changes)
    return d


@pytest.mark.parametrize(("changes", "needle"), [
    ({"features": [64, "64", "A"]}, "unknown layer '64'"),
    ({"features": [64, True, "A"]}, "unknown layer True"),
    ({"features": [64, 2.5, "A"]}, "unknown layer 2.5"),
    ({"features": "64,64,A"}, "features must be a list"),
    ({"features": [-8, "A"]}, "conv width -8"),
    ({"features": [10**7, "A"]}, "conv width 10000000"),
    ({"classifier": ["256"]}, "classifier[0] must be a whole number"),
    ({"classifier": [10**7]}, "hidden FC widths"),
    ({"input_shape": [1, 8]}, "input_shape must be 3 whole numbers"),
    ({"input_shape": [1, 8, True]}, "input_shape must be 3 whole numbers"),
    ({"input_shape": [1, 10**6, 8]}, "too large"),
    ({"num_classes": "10"}, "num_classes must be a whole number"),
    ({"num_classes": True}, "num_classes must be a whole number"),
    ({"num_classes": 0}, "num_classes must be a whole number in 1..65536"),
    ({"kernel_size": 0}, "kernel_size"),
    ({"kernel_size": 11}, "kernel_size 11 is larger"),
    ({"padding": 3}, "padding must be a whole number in 0..2"),
    ({"pool_size": -2}, "pool_size"),
    ({"dropout_conv": 1.0}, "dropout_conv must be a number in [0, 1)"),
    ({"dropout_fc": float("nan")}, "dropout_fc"),
    ({"name": 7}, "name must be a string"),
    ({"meta": {"x": object()}}, "not plain data"),
    ({"stride": 2}, "unknown fields ['stride']"),
    ({"features": [65_536] * 3}, "weights, more than"),
])
def test_from_dict_checks_every_field(changes: dict, needle: str) -> None:
    with pytest.raises(SnnsimError) as exc:
        ArchSpec.from_dict(_spec_dict(**changes))
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg, msg


def test_from_dict_refuses_non_mappings_and_missing_fields() -> None:
    for bad in ("vgg16", [1, 2], None, 5):
        with pytest.raises(SnnsimError, match="must be a mapping"):
            ArchSpec.from_dict(bad)
    d = _spec_dict()
    del d["input_shape"]
    with pytest.raises(SnnsimError, match=r"lacks the fields \['input_shape'\]"):
        ArchSpec.from_dict(d)


def test_sizes_are_bounded_from_arithmetic_before_allocation() -> None:
    """4 convs of 65,536 channels: 1.2e11 weights (480 GB) refused without allocating anything."""
    with pytest.raises(SnnsimError, match="weights, more than the 2,000,000,000"):
        ArchSpec("huge", (65_536, 65_536, 65_536, 65_536), (), (3, 32, 32), 10)
    with pytest.raises(SnnsimError, match="neurons per sample"):
        # 73,729 weights, but 6.9e10 membrane potentials in the first layer
        ArchSpec("wide-maps", (4096, "A", 1, "A"), (), (1, 4096, 4096), 1, pool_size=64)
