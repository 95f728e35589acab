"""Runs killed with SIGKILL at random moments, and full disks: no destination is ever
half-written, the next run leaves no temporary behind, and a full disk is one clear line.

The kill moments are seeded and spread over each command's own measured duration, so the
kills land in start-up, in the computation and in the writing alike.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snnsim.checkpoint import load_model
from snnsim.commands.estimate import default_model_paths
from snnsim.trace import load_trace

EXAMPLE = default_model_paths()[0]
ESTIMATE_FILES = {"layers.csv", "summary.csv", "breakdown.csv", "accesses.csv", "layers_ann.csv"}
KILLS_PER_COMMAND = 3


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SNNSIM_PROGRESS", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snnsim", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=600)


def _killed_at(args: list[str], cwd: Path, delay: float) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "snnsim", *args], cwd=cwd, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".snnsim-" in p.name and p.name.endswith(".tmp")]


def _timed(args: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    done = _run(args, cwd)
    assert done.returncode == 0, done.stderr
    return time.perf_counter() - t0


def _kill_moments(duration: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return sorted(rng.uniform(0.15 * duration, 0.98 * duration) for _ in range(KILLS_PER_COMMAND))


def test_trace_killed_at_random_moments(tmp_path: Path) -> None:
    args = ["trace", "--model", str(EXAMPLE), "--samples", "360", "--out", "tr"]
    duration = _timed(args, tmp_path)
    reference = load_trace(tmp_path / "tr").spike_counts().copy()
    for k, delay in enumerate(_kill_moments(duration, seed=1)):
        dest = tmp_path / f"tr{k}"
        _killed_at([*args[:-1], dest.name], tmp_path, delay)
        if dest.exists():  # the kill came after the rename: it must be the whole trace
            assert (load_trace(dest).spike_counts() == reference).all()
        done = _run([*args[:-1], dest.name], tmp_path)  # the next run completes and sweeps
        assert done.returncode == 0, done.stderr
        assert (load_trace(dest).spike_counts() == reference).all()
    assert _temporaries(tmp_path) == []


def test_estimate_killed_at_random_moments(tmp_path: Path) -> None:
    assert _run(["trace", "--model", str(EXAMPLE), "--samples", "128", "--out", "tr"], tmp_path).returncode == 0
    args = ["estimate", "--model", str(EXAMPLE), "--trace", "tr", "--all-hw", "--plots", "--force", "--out", "est"]
    duration = _timed(args, tmp_path)
    reference = (tmp_path / "est" / "summary.csv").read_text()
    for delay in _kill_moments(duration, seed=2):
        _killed_at(args, tmp_path, delay)
        # --out replaced as a set: always the complete previous results, never a mix
        assert {p.name for p in (tmp_path / "est").iterdir()} >= ESTIMATE_FILES
        assert (tmp_path / "est" / "summary.csv").read_text() == reference
    assert _run(args, tmp_path).returncode == 0
    assert _temporaries(tmp_path) == []


def test_train_killed_at_random_moments(tmp_path: Path) -> None:
    base = ["train", "--dataset", "synthetic", "--synthetic-size", "128,64", "--ann-epochs", "3",
            "--snn-epochs", "2", "--quiet"]
    duration = _timed([*base, "--out", "ref"], tmp_path)
    for k, delay in enumerate(_kill_moments(duration, seed=3)):
        out = tmp_path / f"run{k}"
        _killed_at([*base, "--out", out.name], tmp_path, delay)
        for ckpt in out.glob("*.pt") if out.exists() else []:
            load_model(ckpt)  # every checkpoint that exists is whole
        resumed = [*base, "--out", out.name] + (["--resume"] if out.exists() and any(out.glob("*.pt")) else [])
        done = _run(resumed, tmp_path)
        assert done.returncode == 0, done.stderr
        assert load_model(out / "snn.pt").kind == "snn"
    assert _temporaries(tmp_path) == []


# ---------------------------------------------------------------------------- full disk
def test_estimate_disk_full_injected(tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    code, _, err = run_cli("trace", "--model", EXAMPLE, "--samples", "64", "--out", tmp_path / "tr")
    assert code == 0, err
    real = pd.DataFrame.to_csv
    calls = {"n": 0}

    def fills_up(self, path, *a, **k):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:  # the third of the set's files hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(self, path, *a, **k)

    monkeypatch.setattr(pd.DataFrame, "to_csv", fills_up)
    code, out, err = run_cli("estimate", "--model", EXAMPLE, "--trace", tmp_path / "tr", "--out", tmp_path / "est")
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("snnsim: error: cannot access ") and "No space left on device" in lines[-1]
    assert "Traceback" not in err
    assert not (tmp_path / "est").exists()  # nothing half-written
    assert _temporaries(tmp_path) == []


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 256 KiB tmpfs (needs root; the injected test above covers the rest)."""
    mnt = tmp_path / "disk"
    if not _tmpfs(mnt, "256k"):
        pytest.skip("cannot mount a tmpfs here (not root?); test_estimate_disk_full_injected covers ENOSPC")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def test_trace_and_estimate_on_a_full_disk(tmp_path: Path, small_disk: Path) -> None:
    done = _run(["trace", "--model", str(EXAMPLE), "--samples", "360", "--out", str(small_disk / "tr")], tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("snnsim: error: ")
    assert "No space left" in done.stderr or "no space left" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (small_disk / "tr").exists() and _temporaries(small_disk) == []

    assert _run(["trace", "--model", str(EXAMPLE), "--samples", "64", "--out", "tr"], tmp_path).returncode == 0
    (small_disk / "filler").write_bytes(b"\0" * (248 << 10))  # leave a few KiB
    done = _run(["estimate", "--model", str(EXAMPLE), "--trace", "tr", "--all-hw", "--plots",
                 "--out", str(small_disk / "est")], tmp_path)
    assert done.returncode == 2, done.stderr
    assert "No space left on device" in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert not (small_disk / "est").exists() and _temporaries(small_disk) == []
