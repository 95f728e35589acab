"""A user's own inputs (``--inputs FILE``) on trace, estimate and compare: what is read, the
trace it gives, and a one-line error (exit 2, nothing written) for every malformed file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from snnsim.data import INPUTS_PREFIX, load_dataset, load_inputs
from snnsim.errors import DataError

EXAMPLE = Path(__file__).resolve().parents[1] / "snnsim" / "examples" / "digits_pruned_T2.pt"


@pytest.fixture(scope="module")
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    ds = load_dataset("digits")
    x = torch.stack([ds.test[i][0] for i in range(40)]).numpy()
    y = np.array([int(ds.test[i][1]) for i in range(40)], dtype=np.int64)
    return x, y


def test_npz_with_labels_and_npy_without(tmp_path: Path, digits_arrays) -> None:
    x, y = digits_arrays
    np.savez(tmp_path / "a.npz", inputs=x, labels=y)
    np.save(tmp_path / "b.npy", x.astype(np.float64))
    a = load_inputs(tmp_path / "a.npz")
    b = load_dataset(INPUTS_PREFIX + str(tmp_path / "b.npy"))
    assert a.input_shape == (1, 8, 8) and len(a.test) == 40 and a.meta["labelled"] is True
    assert int(a.test[3][1]) == int(y[3]) and torch.equal(a.test[5][0], torch.from_numpy(x[5]))
    assert b.meta["labelled"] is False and b.test[0][0].dtype == torch.float32
    assert a.name.startswith("inputs-a-") and a.name != load_inputs(tmp_path / "b.npy").name  # content-addressed


def test_trace_and_estimate_on_user_inputs(tmp_path: Path, digits_arrays, run_cli) -> None:
    x, y = digits_arrays
    np.savez(tmp_path / "lab.npz", inputs=x, labels=y)
    np.save(tmp_path / "nolab.npy", x)
    code, out, err = run_cli("trace", "--model", EXAMPLE, "--inputs", tmp_path / "lab.npz", "--out", tmp_path / "t1", "--quiet")
    assert code == 0, err
    meta = json.loads((tmp_path / "t1" / "meta.json").read_text())
    assert meta["samples"] == 40 and meta["labels"] == y.tolist()
    assert meta["dataset"]["name"].startswith("inputs-lab-")
    code, _, err = run_cli("trace", "--model", EXAMPLE, "--inputs", tmp_path / "nolab.npy", "--out", tmp_path / "t2", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "t2" / "meta.json").read_text())["labels"] is None
    # the same inputs as the digits test set give the same spikes as tracing on digits itself
    code, _, err = run_cli("trace", "--model", EXAMPLE, "--samples", 40, "--out", tmp_path / "t3", "--quiet")
    assert code == 0, err
    from snnsim.trace import load_trace

    a, b = load_trace(tmp_path / "t1"), load_trace(tmp_path / "t3")
    for pop in a.populations:
        if pop.spiking:
            np.testing.assert_array_equal(np.asarray(a.spikes(pop.name)), np.asarray(b.spikes(pop.name)))
    code, out, err = run_cli("estimate", "--model", EXAMPLE, "--inputs", tmp_path / "lab.npz", "--out", tmp_path / "e1",
                             "--quiet", "--functional", "float")
    assert code == 0, err
    summary = (tmp_path / "e1" / "summary.csv").read_text()
    assert "inputs-lab-" in summary or "lab" in out


@pytest.mark.parametrize("make,needle", [
    (lambda p, x, y: np.save(p / "f.npy", x[:, :, :6]), "does not match the model's (1, 8, 8)"),
    (lambda p, x, y: np.save(p / "f.npy", np.where(np.arange(x.size).reshape(x.shape) == 70, np.nan, x)),
     "sample 1 contains NaN or Inf"),
    (lambda p, x, y: np.save(p / "f.npy", np.repeat(x[:, None], 3, axis=1)), "hold 3 timesteps per sample, the trace runs T=2"),
    (lambda p, x, y: np.save(p / "f.npy", x[0]), "not [N, C, H, W]"),
    (lambda p, x, y: np.save(p / "f.npy", x.astype(np.complex64)), "not a real number type"),
    (lambda p, x, y: np.save(p / "f.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True), "not a readable"),
    (lambda p, x, y: (p / "f.npy").write_bytes(b"hello"), "does not start like one"),
    (lambda p, x, y: np.savez(p / "f.npz", x=x), "has no 'inputs' array"),
    (lambda p, x, y: np.savez(p / "f.npz", inputs=x, labels=y[:5]), "must be 40 integers"),
    (lambda p, x, y: np.savez(p / "f.npz", inputs=x, labels=y.astype(np.float32)), "must be 40 integers"),
    (lambda p, x, y: np.savez(p / "f.npz", inputs=x, labels=y - 3), "is negative"),
    (lambda p, x, y: np.savez(p / "f.npz", inputs=x, labels=y + 10), "not one of the model's 10 classes"),
    (lambda p, x, y: (p / "f.txt").write_text("1 2 3"), "not a .npy or .npz file"),
])
def test_bad_inputs_are_one_line_and_write_nothing(tmp_path: Path, digits_arrays, run_cli, make, needle: str) -> None:
    x, y = digits_arrays
    src = tmp_path / "src"
    src.mkdir()
    make(src, x, y)
    (path,) = list(src.iterdir())
    code, out, err = run_cli("trace", "--model", EXAMPLE, "--inputs", path, "--out", tmp_path / "t", "--quiet")
    assert code == 2 and needle in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t").exists()


def test_missing_file_and_both_sources(tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli("trace", "--model", EXAMPLE, "--inputs", tmp_path / "nope.npy", "--quiet")
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli("estimate", "--model", EXAMPLE, "--inputs", tmp_path / "nope.npy", "--dataset", "digits",
                           "--out", tmp_path / "e", "--quiet")
    assert code == 2 and "--dataset and --inputs both given" in err
    assert not (tmp_path / "e").exists()
    with pytest.raises(DataError, match="does not exist"):
        load_inputs(tmp_path / "nope.npz")
