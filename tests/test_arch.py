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
    assert spec.param_count() == sum(p.numel() for p in build_model(spec, "ann").synapses.parameters())


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
