"""Checkpoints: bit-identical round trip, bad files as one-line errors (exit 2), `snnsim info`."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from snnsim.arch import make_arch
from snnsim.checkpoint import (
    FORMAT_VERSION,
    checkpoint_dict,
    load_model,
    model_from_checkpoint,
    read_checkpoint,
    save_model,
    state_checksum,
)
from snnsim.compression.quantize import quantize_model
from snnsim.errors import CheckpointError
from snnsim.models import build_model


def _model(tiny_spec):  # type: ignore[no-untyped-def]
    """A 4-bit quantized SNN with odd thresholds and leaks, dataset info and provenance."""
    m = build_model(tiny_spec, kind="snn", timesteps=7, seed=3)
    with torch.no_grad():
        m.thresholds.copy_(torch.tensor([0.123456789, 1.5, 2.75]))
        m.leaks.copy_(torch.tensor([0.9901, 0.5, 1.0]))
    m = quantize_model(m, 4)
    m.dataset_info = {"name": "synthetic", "mean": [0.5], "std": [0.5], "input_shape": [1, 8, 8], "num_classes": 4}
    m.provenance = {"command": "snnsim train --x", "seed": 11, "accuracy": 0.8125, "history": [{"epoch": 1, "loss": 0.5}]}
    return m


def test_round_trip_is_bit_identical(tmp_path: Path, tiny_spec) -> None:
    m = _model(tiny_spec)
    path = save_model(m, tmp_path / "sub" / "m.pt", extra={"epoch": 3, "opt": {"lr": 0.1}})
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # atomic: no temp file left
    back = load_model(path)
    sd, sd2 = m.state_dict(), back.state_dict()
    assert sd.keys() == sd2.keys()
    for k in sd:
        assert torch.equal(sd[k], sd2[k]) and sd[k].dtype == sd2[k].dtype, k
    assert back.spec == m.spec and back.spec.to_dict() == m.spec.to_dict()
    assert (back.kind, back.timesteps) == ("snn", 7)
    assert back.dataset_info == m.dataset_info
    assert {k: back.provenance[k] for k in m.provenance} == m.provenance
    assert "created" in back.provenance and "snnsim_version" in back.provenance
    q = back.quantization
    assert q["bits"] == 4 and q["scales"] == m.quantization["scales"] and q["scheme"] == m.quantization["scheme"]
    assert torch.equal(q["int_weights"]["synapses.0.weight"], m.quantization["int_weights"]["synapses.0.weight"])
    assert q["int_weights"]["synapses.0.weight"].dtype == torch.int8
    assert read_checkpoint(path)["extra"] == {"epoch": 3, "opt": {"lr": 0.1}}
    x = torch.randn(5, 1, 8, 8)
    m.eval()
    assert torch.equal(m(x), back(x))


# ----------------------------------------------------------------------------- bad files


def _bad_files(tmp: Path, tiny_spec) -> dict[str, Path]:
    good = save_model(_model(tiny_spec), tmp / "good.pt")
    data = good.read_bytes()
    files = {
        "missing": tmp / "nope.pt",
        "directory": tmp,
    }
    (tmp / "empty.pt").write_bytes(b"")
    files["empty"] = tmp / "empty.pt"
    (tmp / "trunc.pt").write_bytes(data[: len(data) // 2])
    files["truncated"] = tmp / "trunc.pt"
    (tmp / "random.pt").write_bytes(os.urandom(4096))
    files["random"] = tmp / "random.pt"
    torch.save({"weights": torch.zeros(3)}, tmp / "other.pt")
    files["not-a-checkpoint"] = tmp / "other.pt"
    torch.save([1, 2, 3], tmp / "list.pt")
    files["a-list"] = tmp / "list.pt"
    future = checkpoint_dict(_model(tiny_spec))
    future["format_version"] = FORMAT_VERSION + 1
    torch.save(future, tmp / "future.pt")
    files["future"] = tmp / "future.pt"
    broken = checkpoint_dict(_model(tiny_spec))
    broken["state_dict"]["synapses.0.weight"] = torch.zeros(2, 2)
    torch.save(broken, tmp / "mismatch.pt")
    files["weights-mismatch"] = tmp / "mismatch.pt"
    nan = checkpoint_dict(_model(tiny_spec))
    nan["state_dict"]["thresholds"][0] = float("nan")
    torch.save(nan, tmp / "nan.pt")
    files["nan"] = tmp / "nan.pt"
    return files


def test_bad_checkpoints_raise_one_line_errors(tmp_path: Path, tiny_spec) -> None:
    for what, path in _bad_files(tmp_path, tiny_spec).items():
        with pytest.raises(CheckpointError) as exc:
            load_model(path)
        msg = str(exc.value)
        assert "\n" not in msg and len(msg) < 300, (what, msg)
    with pytest.raises(CheckpointError, match="newer"):
        load_model(tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(tmp_path / "trunc.pt")


def test_bad_checkpoints_exit_2_through_the_cli(tmp_path: Path, tiny_spec, run_cli) -> None:
    for what, path in _bad_files(tmp_path, tiny_spec).items():
        code, out, err = run_cli("info", path)
        assert code == 2, (what, code, err)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("snnsim: error:"), (what, err)
        assert "Traceback" not in err and out == ""


def test_bad_checkpoint_exit_2_in_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"\x00not a checkpoint at all")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "snnsim", "info", str(tmp_path / "junk.pt")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("snnsim: error:")


# ----------------------------------------------------------------------------- info


def test_info_prints_everything(tmp_path: Path, tiny_spec, run_cli) -> None:
    path = save_model(_model(tiny_spec), tmp_path / "m.pt", extra={"stage": "snn", "epoch": 2, "optimizer": {}})
    code, out, err = run_cli("info", path)
    assert code == 0, err
    for needle in ("snnsim-model v1", "kind          snn", "timesteps     7", "4-bit uniform-symmetric-per-layer",
                   "0.123457", "0.9901", "synthetic", "mean [0.5] std [0.5]", "seed", "81.2500%",
                   "snnsim train --x", "conv1", "conv2", "fc1", "out", "8x1x3x3", "stage snn after epoch 2"):
        assert needle in out, needle
    params = tiny_spec.param_count()
    assert f"total params  {params:,} weights" in out and "+ 6 neuron parameters" in out


def test_info_on_vgg16_cifar10_reports_paper_param_count(tmp_path: Path, run_cli) -> None:
    """paper.md §3.2: VGG16/CIFAR10 = 39,917,248 weights, 338,403,328 MACs."""
    spec = make_arch("vgg16")
    m = build_model(spec, kind="snn", timesteps=5, seed=0)
    m.dataset_info = {"name": "cifar10", "mean": [0.5] * 3, "std": [0.5] * 3, "input_shape": [3, 32, 32],
                      "num_classes": 10}
    path = save_model(m, tmp_path / "vgg16.pt")
    del m
    code, out, err = run_cli("info", path)
    assert code == 0, err
    assert "total params  39,917,248 weights" in out
    assert "338,403,328" in out
    for shape in ("64x3x3x3", "512x512x3x3", "4096x2048", "4096x4096", "10x4096"):
        assert shape in out, shape
    layers_section = out.split("\ngraph\n")[0]  # the graph table below lists the nodes again
    layer_lines = [ln for ln in layers_section.splitlines() if ln.strip().startswith(tuple(str(i) for i in range(16)))
                   and ("conv" in ln or "fc" in ln or " out " in ln)]
    assert len(layer_lines) == 16
    assert "1,769,472" in out  # first conv MACs


# ----------------------------------------------------------------------------- integrity


def _storage_member(path: Path, tensor_bytes: bytes) -> tuple[int, int]:
    """(file offset, length) of the zip member holding exactly ``tensor_bytes``."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if zf.read(info) == tensor_bytes:
                off = info.header_offset
                n_name, n_extra = struct.unpack("<HH", data[off + 26: off + 30])
                return off + 30 + n_name + n_extra, info.file_size
    raise AssertionError("tensor storage not found")


def test_checksum_is_stored_and_covers_weights_and_quantization(tmp_path: Path, tiny_spec) -> None:
    m = _model(tiny_spec)
    ckpt = read_checkpoint(save_model(m, tmp_path / "m.pt"))
    assert ckpt["checksum"]["algorithm"] == "sha256"
    assert ckpt["checksum"]["state"] == state_checksum(m.state_dict(), m.quantization)
    q = dict(m.quantization, scales=[2 * s for s in m.quantization["scales"]])
    assert state_checksum(m.state_dict(), q) != ckpt["checksum"]["state"]
    assert state_checksum(m.state_dict(), None) != ckpt["checksum"]["state"]


def test_one_flipped_weight_byte_is_detected(tmp_path: Path, tiny_spec) -> None:
    """torch.load does not check zip CRCs: this flip used to load as a silently different weight."""
    m = _model(tiny_spec)
    path = save_model(m, tmp_path / "m.pt")
    w = m.state_dict()["synapses.1.weight"]
    start, size = _storage_member(path, w.numpy().tobytes())
    data = bytearray(path.read_bytes())
    data[start + size // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"truncated or corrupt \(zip member 'data/\d+' fails its CRC-32 check\)"):
        load_model(path)


def test_changed_weights_in_a_valid_zip_fail_the_checksum(tmp_path: Path, tiny_spec) -> None:
    ckpt = checkpoint_dict(_model(tiny_spec))
    ckpt["state_dict"]["synapses.2.weight"][0, 0] += 1.0  # re-saved by torch: every CRC is valid
    torch.save(ckpt, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="is corrupt: its weights do not match the checksum stored at save time; "
                                              "restore or re-train it"):
        load_model(tmp_path / "m.pt")


def test_checkpoints_without_checksum_still_load(tmp_path: Path, tiny_spec) -> None:
    """Format v1 files written before the checksum existed are verified by CRC only."""
    m = _model(tiny_spec)
    ckpt = checkpoint_dict(m)
    del ckpt["checksum"]
    torch.save(ckpt, tmp_path / "old.pt")
    back = load_model(tmp_path / "old.pt")
    for k, v in m.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


def test_shipped_example_loads_unchanged() -> None:
    example = Path(__file__).resolve().parents[1] / "snnsim" / "examples" / "digits_pruned_T2.pt"
    before = example.read_bytes()
    ckpt = read_checkpoint(example)
    assert "checksum" not in ckpt and ckpt["format_version"] == FORMAT_VERSION
    m = load_model(example)
    assert (m.kind, m.timesteps, m.spec.features) == ("snn", 2, (27, 36, "A", 72, 96, "A"))
    assert example.read_bytes() == before


def test_in_memory_checkpoints_are_validated_too(tiny_spec) -> None:
    ckpt = checkpoint_dict(_model(tiny_spec))
    ckpt["timesteps"] = "abc"
    with pytest.raises(CheckpointError, match=r"^mem: timesteps must be a whole number in 1\.\.10000, got 'abc'; "
                                              r"re-save the model with snnsim$"):
        model_from_checkpoint(ckpt, source="mem")


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    torch.save({"format": "snnsim-model", "payload": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="asks to unpickle posix.system") as exc:
        load_model(tmp_path / "evil.pt")
    assert not marker.exists()
    assert "weights_only" not in str(exc.value)  # never advise the unsafe load


def test_quoted_errors_are_shortened_at_a_word_boundary() -> None:
    from snnsim.errors import quote

    text = "PytorchStreamReader failed reading zip archive: failed finding central directory " * 3
    short = quote(RuntimeError(text), 60)
    assert short.endswith(" …") and len(short) <= 62
    assert text.startswith(short[:-2]) and text[len(short) - 2] == " "  # cut where a word ends
    assert quote(RuntimeError("short\nsecond line")) == "short"
    assert quote(RuntimeError("x" * 500), 100) == "RuntimeError"  # one giant word: not half of it
