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
from legacy_spikingnet import SpikingNet, v1_checkpoint
from sim_testutil import leaks, set_leaks, set_thresholds, thresholds

from snnsim.arch import ArchSpec, make_arch
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
from snnsim.graph import build_graph
from snnsim.models import build_model

EXAMPLE = Path(__file__).resolve().parents[1] / "snnsim" / "examples" / "digits_pruned_T2.pt"


def _model(tiny_spec):  # type: ignore[no-untyped-def]
    """A 4-bit quantized SNN with odd thresholds and leaks, dataset info and provenance."""
    m = build_model(tiny_spec, kind="snn", timesteps=7, seed=3)
    set_thresholds(m, [0.123456789, 1.5, 2.75])
    set_leaks(m, [0.9901, 0.5, 1.0])
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
    assert back.graph.to_dict() == m.graph.to_dict()
    assert (back.kind, back.timesteps) == ("snn", 7)
    assert back.dataset_info == m.dataset_info
    assert {k: back.provenance[k] for k in m.provenance} == m.provenance
    assert "created" in back.provenance and "snnsim_version" in back.provenance
    q = back.quantization
    assert q["bits"] == 4 and q["scales"] == m.quantization["scales"] and q["scheme"] == m.quantization["scheme"]
    assert isinstance(q["scales"], dict) and list(q["scales"]) == ["conv1", "conv2", "fc1", "out"]
    assert q["int_weights"].keys() == m.quantization["int_weights"].keys()
    for k, v in m.quantization["int_weights"].items():
        assert torch.equal(q["int_weights"][k], v) and q["int_weights"][k].dtype == v.dtype, k
    assert q["int_weights"]["conv1.weight"].dtype == torch.int8
    raw = read_checkpoint(path)
    assert raw["extra"] == {"epoch": 3, "opt": {"lr": 0.1}}
    assert raw["format_version"] == FORMAT_VERSION == 2 and raw["graph"] == m.graph.to_dict()
    assert raw["arch"] == m.spec.to_dict()
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
    broken["state_dict"]["conv1.weight"] = torch.zeros(2, 2)
    torch.save(broken, tmp / "mismatch.pt")
    files["weights-mismatch"] = tmp / "mismatch.pt"
    nan = checkpoint_dict(_model(tiny_spec))
    nan["state_dict"]["conv1_lif.threshold"][0] = float("nan")
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
    for needle in ("snnsim-model v2", "kind          snn", "timesteps     7", "4-bit uniform-symmetric-per-layer",
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
    q = dict(m.quantization, scales={k: 2 * s for k, s in m.quantization["scales"].items()})
    assert state_checksum(m.state_dict(), q) != ckpt["checksum"]["state"]
    assert state_checksum(m.state_dict(), None) != ckpt["checksum"]["state"]


def test_one_flipped_weight_byte_is_detected(tmp_path: Path, tiny_spec) -> None:
    """torch.load does not check zip CRCs: this flip used to load as a silently different weight."""
    m = _model(tiny_spec)
    path = save_model(m, tmp_path / "m.pt")
    w = m.state_dict()["conv2.weight"]
    start, size = _storage_member(path, w.numpy().tobytes())
    data = bytearray(path.read_bytes())
    data[start + size // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"truncated or corrupt \(zip member 'data/\d+' fails its CRC-32 check\)"):
        load_model(path)


def test_changed_weights_in_a_valid_zip_fail_the_checksum(tmp_path: Path, tiny_spec) -> None:
    ckpt = checkpoint_dict(_model(tiny_spec))
    ckpt["state_dict"]["fc1.weight"][0, 0] += 1.0  # re-saved by torch: every CRC is valid
    torch.save(ckpt, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="is corrupt: its weights do not match the checksum stored at save time; "
                                              "restore or re-train it"):
        load_model(tmp_path / "m.pt")


def test_checkpoints_without_checksum_still_load(tmp_path: Path, tiny_spec) -> None:
    """Files written before the checksum existed are verified by CRC only (v2 here; v1 below)."""
    m = _model(tiny_spec)
    ckpt = checkpoint_dict(m)
    del ckpt["checksum"]
    torch.save(ckpt, tmp_path / "old.pt")
    back = load_model(tmp_path / "old.pt")
    for k, v in m.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


def test_shipped_example_loads_unchanged() -> None:
    before = EXAMPLE.read_bytes()
    raw = torch.load(EXAMPLE, map_location="cpu", weights_only=True)
    assert raw["format_version"] == 1 and "checksum" not in raw and "graph" not in raw  # a v1 file, as shipped
    ckpt = read_checkpoint(EXAMPLE)
    assert ckpt["format_version"] == FORMAT_VERSION == 2
    # converted: the checksum is the converted state's (the file had none)
    assert ckpt["checksum"]["state"] == state_checksum(ckpt["state_dict"], ckpt["quantization"])
    m = load_model(EXAMPLE)
    assert (m.kind, m.timesteps, m.spec.features) == ("snn", 2, (27, 36, "A", 72, 96, "A"))
    assert EXAMPLE.read_bytes() == before


# ----------------------------------------------------------------------------- version 1 files


def _digits_inputs(n: int = 64) -> torch.Tensor:
    """Real normalised digits (what the example was trained on) plus a few random inputs."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor((d.images[:n] / 16.0 - 0.5) / 0.5, dtype=torch.float32).unsqueeze(1)
    return torch.cat([x, torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))])


def _legacy_from_raw(raw: dict) -> SpikingNet:
    net = SpikingNet(ArchSpec.from_dict(raw["arch"]), kind=raw["kind"], timesteps=raw["timesteps"])
    net.load_state_dict(raw["state_dict"], strict=True)
    return net.eval()


def test_shipped_v1_example_converts_and_matches_the_legacy_model() -> None:
    raw = torch.load(EXAMPLE, map_location="cpu", weights_only=True)
    legacy = _legacy_from_raw(raw)
    ckpt = read_checkpoint(EXAMPLE)
    spec = ArchSpec.from_dict(raw["arch"])
    assert ckpt["graph"] == build_model(spec).graph.to_dict()  # the spec's VGG graph
    names = [i.name for i in spec.layers()]
    assert names == ["conv1", "conv2", "conv3", "conv4", "fc1", "out"]
    expected_keys = {f"{n}.weight" for n in names} | {f"{n}_lif.{p}" for n in names[:-1] for p in ("threshold", "leak")}
    assert set(ckpt["state_dict"]) == expected_keys
    for i, n in enumerate(names):  # the same tensors, renamed
        assert torch.equal(ckpt["state_dict"][f"{n}.weight"], raw["state_dict"][f"synapses.{i}.weight"]), n
        if i < len(names) - 1:
            assert torch.equal(ckpt["state_dict"][f"{n}_lif.threshold"], raw["state_dict"]["thresholds"][i:i + 1]), n
            assert torch.equal(ckpt["state_dict"][f"{n}_lif.leak"], raw["state_dict"]["leaks"][i:i + 1]), n
    m = load_model(EXAMPLE)
    assert m.graph.to_dict() == ckpt["graph"] and m.spec == spec
    assert torch.equal(thresholds(m), legacy.thresholds.detach()) and torch.equal(leaks(m), legacy.leaks.detach())
    x = _digits_inputs()
    with torch.no_grad():
        for steps in (None, 1, 5):  # its own T = 2, and others
            want, got = legacy(x, steps), m(x, steps)
            assert torch.equal(got, want), steps
    assert float(want.abs().max()) > 0  # not a vacuous comparison of zeros


def _v1_dict(spec: ArchSpec, bits: int | None, seed: int = 4) -> tuple[dict, SpikingNet]:
    """A version-1 checkpoint as snnsim wrote it before the graph (``legacy_spikingnet.v1_checkpoint``)."""
    n = sum(1 for info in spec.layers() if info.spiking)
    dataset = {"name": "synthetic", "mean": [0.5], "std": [0.5], "input_shape": list(spec.input_shape),
               "num_classes": spec.num_classes}
    return v1_checkpoint(spec, torch.linspace(0.3, 0.7, n), torch.linspace(0.8, 1.0, n), bits, dataset,
                         {"command": "snnsim train (v1)", "seed": seed}, seed=seed)


@pytest.mark.parametrize("bits", [None, 4])
def test_v1_file_resaved_is_v2_and_round_trips_bit_exactly(tmp_path: Path, tiny_spec, bits: int | None) -> None:
    v1, legacy = _v1_dict(tiny_spec, bits)
    torch.save(v1, tmp_path / "v1.pt")
    m = load_model(tmp_path / "v1.pt")
    x = torch.randn(6, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(m(x), legacy(x))
    if bits is not None:  # the v1 record, re-keyed by node
        q = m.quantization
        assert q["scales"] == dict(zip(["conv1", "conv2", "fc1", "out"], v1["quantization"]["scales"], strict=True))
        for i, n in enumerate(["conv1", "conv2", "fc1", "out"]):
            assert torch.equal(q["int_weights"][f"{n}.weight"], v1["quantization"]["int_weights"][f"synapses.{i}.weight"])
        assert set(q["int_weights"]) == {"conv1.weight", "conv2.weight", "fc1.weight", "out.weight"}
    path = save_model(m, tmp_path / "v2.pt")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format_version"] == 2 and raw["graph"] == m.graph.to_dict() and raw["arch"] == tiny_spec.to_dict()
    assert not any(k.startswith("synapses.") or k in ("thresholds", "leaks") for k in raw["state_dict"])
    assert "conv1_lif.threshold" in raw["state_dict"] and "out.weight" in raw["state_dict"]
    if bits is not None:
        assert isinstance(raw["quantization"]["scales"], dict) and "conv1.weight" in raw["quantization"]["int_weights"]
    assert raw["provenance"]["command"] == "snnsim train (v1)"
    back = load_model(path)
    sd, sd2 = m.state_dict(), back.state_dict()
    assert sd.keys() == sd2.keys()
    for k in sd:
        assert sd[k].dtype == sd2[k].dtype and torch.equal(sd[k], sd2[k]), k
    assert back.quantization is None if bits is None else back.quantization["scales"] == m.quantization["scales"]
    assert back.spec == m.spec == tiny_spec and back.dataset_info == m.dataset_info
    with torch.no_grad():
        assert torch.equal(back(x), m(x))


def test_v1_files_are_checked_against_their_v1_checksum(tmp_path: Path, tiny_spec) -> None:
    v1, _ = _v1_dict(tiny_spec, None)
    torch.save(v1, tmp_path / "v1.pt")
    load_model(tmp_path / "v1.pt")  # the v1 checksum, as written, verifies
    v1["state_dict"]["synapses.1.weight"][0, 0, 0, 0] += 1.0  # re-saved: CRCs valid, checksum stale
    torch.save(v1, tmp_path / "v1.pt")
    with pytest.raises(CheckpointError, match="is corrupt: its weights do not match the checksum"):
        load_model(tmp_path / "v1.pt")
    v1["checksum"]["state"] = state_checksum(v1["state_dict"], None)
    v1["state_dict"]["thresholds"][1] = -1.0
    v1["checksum"]["state"] = state_checksum(v1["state_dict"], None)
    torch.save(v1, tmp_path / "v1.pt")
    with pytest.raises(CheckpointError, match=r"thresholds must all be > 0, got -1 in 'thresholds'"):
        load_model(tmp_path / "v1.pt")


def test_model_from_a_v1_dict_converts_it_in_place(tiny_spec) -> None:
    v1, legacy = _v1_dict(tiny_spec, None)
    m = model_from_checkpoint(v1, source="mem")
    assert v1["format_version"] == 2 and "graph" in v1 and "conv1.weight" in v1["state_dict"]
    assert v1["checksum"]["state"] == state_checksum(v1["state_dict"], None)
    model_from_checkpoint(v1, source="mem")  # the converted dict is a valid v2 checkpoint
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(m(x), legacy(x))


# ----------------------------------------------------------------------------- graph models


def test_resnet_saves_and_loads_bit_exactly(tmp_path: Path) -> None:
    m = build_model(build_graph("digits-resnet"), kind="ann", seed=0)
    m.train()
    with torch.no_grad():  # non-trivial BN running statistics and a batch counter to round-trip
        m(torch.randn(16, 1, 8, 8))
    m.eval()
    m.dataset_info = {"name": "digits", "mean": [0.5], "std": [0.5], "input_shape": [1, 8, 8], "num_classes": 10}
    path = save_model(m, tmp_path / "resnet.pt")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format_version"] == 2 and raw["arch"] is None and raw["graph"] == m.graph.to_dict()
    assert raw["state_dict"]["stem_bn.num_batches_tracked"].dtype == torch.int64
    back = load_model(path)
    assert back.spec is None and back.name == "digits-resnet" and back.graph.to_dict() == m.graph.to_dict()
    assert (back.kind, back.timesteps) == ("ann", m.timesteps)
    sd, sd2 = m.state_dict(), back.state_dict()
    assert sd.keys() == sd2.keys()
    assert int(sd2["stem_bn.num_batches_tracked"]) == 1 and not torch.equal(sd2["stem_bn.running_var"], torch.ones(32))
    for k in sd:
        assert sd[k].dtype == sd2[k].dtype and torch.equal(sd[k], sd2[k]), k
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(back(x), m(x))


def test_quantized_resnet_with_biases_round_trips(tmp_path: Path) -> None:
    """A folded (biased) ResNet SNN, quantized: bias codes are int32 and round-trip exactly."""
    from snnsim.graph.schedule import fold_batchnorm

    ann = build_model(build_graph("digits-resnet"), kind="ann", seed=0).eval()
    graph, state = fold_batchnorm(ann.graph, ann.state_dict())
    snn = build_model(graph, kind="snn", timesteps=3, seed=0)
    snn.load_state_dict(state)
    q = quantize_model(snn, 6)
    assert q.quantization["int_weights"]["stem.bias"].dtype == torch.int32
    path = save_model(q, tmp_path / "rq.pt")
    back = load_model(path)
    assert back.spec is None
    assert back.quantization["scales"] == q.quantization["scales"] and isinstance(back.quantization["scales"], dict)
    for k, v in q.quantization["int_weights"].items():
        assert back.quantization["int_weights"][k].dtype == v.dtype and torch.equal(back.quantization["int_weights"][k], v), k
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(back(x), q(x))


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda g: g["nodes"]["stem"].update(out_channels=10**9), "out_channels and groups must be in 1..65536"),
    (lambda g: g["nodes"]["out"].update(out_features=10**9), "out_features must be in 1..65536"),
    (lambda g: [g["nodes"][n].update(out_channels=65_536) for n in ("stem", "s1b1_conv1", "s1b1_conv2")],
     "parameters, more than"),
    (lambda g: g["nodes"]["input"].update(shape=[1, 4096, 4096]), "values per sample"),
])
def test_absurd_graph_sizes_are_refused_before_allocation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          edit, needle: str) -> None:  # type: ignore[no-untyped-def]
    import snnsim.checkpoint as ckpt_mod

    ckpt = checkpoint_dict(build_model(build_graph("digits-resnet"), kind="ann", seed=0))
    edit(ckpt["graph"])
    torch.save(ckpt, tmp_path / "huge.pt")

    def no_build(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a network was built for a refused checkpoint")

    monkeypatch.setattr(ckpt_mod, "GraphNet", no_build)  # expected_state (meta device)
    monkeypatch.setattr(ckpt_mod, "build_model", no_build)
    with pytest.raises(CheckpointError) as exc:
        load_model(tmp_path / "huge.pt")
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg and len(msg) < 300, msg
    assert msg.startswith(repr(str(tmp_path / "huge.pt"))), msg


def test_a_v2_graph_that_differs_from_its_arch_is_refused(tiny_spec) -> None:
    ckpt = checkpoint_dict(build_model(tiny_spec, seed=0))
    ckpt["graph"]["nodes"]["fc1_lif"]["dropout"] = 0.5  # a different network than the arch entry
    with pytest.raises(CheckpointError, match="is not the graph of its arch entry"):
        model_from_checkpoint(ckpt, source="mem")
    ckpt["arch"] = None  # without an arch entry the graph alone is the network
    assert model_from_checkpoint(ckpt, source="mem").spec is None


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
