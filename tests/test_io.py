"""The atomic writer: temporaries, the sweep of dead runs' leftovers, atomic replacement."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snnsim import io
from snnsim.errors import SnnsimError


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_atomic_dir_creates_and_replaces(tmp_path: Path) -> None:
    dest = tmp_path / "run"
    with io.atomic_dir(dest) as tmp:
        (tmp / "a.csv").write_text("old")
    assert (dest / "a.csv").read_text() == "old"
    with io.atomic_dir(dest) as tmp:
        (tmp / "b.csv").write_text("new")
    assert sorted(p.name for p in dest.iterdir()) == ["b.csv"]  # replaced as a set, not merged
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary, no old copy left


def test_atomic_dir_failure_keeps_the_old_set(tmp_path: Path) -> None:
    dest = tmp_path / "run"
    with io.atomic_dir(dest) as tmp:
        (tmp / "a.csv").write_text("old")
    with pytest.raises(OSError), io.atomic_dir(dest) as tmp:
        (tmp / "a.csv").write_text("half")
        raise OSError(28, "No space left on device")
    assert (dest / "a.csv").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_fallback_replacement_without_exchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    dest = tmp_path / "run"
    for text in ("one", "two"):
        with io.atomic_dir(dest) as tmp:
            (tmp / "x").write_text(text)
    assert (dest / "x").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_sweep_removes_dead_runs_temporaries(tmp_path: Path) -> None:
    dead = _dead_pid()
    stale_dir = tmp_path / f".trace.snnsim-{dead}-0123abcd.tmp"
    stale_dir.mkdir()
    (stale_dir / "layer_01.npy").write_bytes(b"\0" * 4096)
    stale_file = tmp_path / f".summary.csv.snnsim-{dead}-89abcdef.tmp"
    stale_file.write_text("partial")
    live = tmp_path / f".other.snnsim-{os.getpid()}-00000000.tmp"  # this process: still running
    live.write_text("in use")
    unrelated = tmp_path / ".cache.tmp"
    unrelated.write_text("not ours")
    io.write_text("done", tmp_path / "result.txt")  # any write into the directory sweeps it
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([live.name, unrelated.name, "result.txt"])


def test_sweep_restores_a_tree_moved_aside_by_a_killed_replacement(tmp_path: Path) -> None:
    dead = _dead_pid()
    old = tmp_path / f".run.snnsim-{dead}-old.tmp"  # killed between its two renames
    old.mkdir()
    (old / "summary.csv").write_text("previous results")
    io.sweep_stale(tmp_path)
    assert (tmp_path / "run" / "summary.csv").read_text() == "previous results"
    assert not old.exists()


def test_atomic_path_refuses_a_directory_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "x.csv").mkdir()
    with pytest.raises(SnnsimError, match="a directory is in the way"):
        io.write_text("a", tmp_path / "x.csv")


def test_atomic_dir_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("a file")
    with pytest.raises(SnnsimError, match="a file is in the way"), io.atomic_dir(tmp_path / "run"):
        pass
    assert (tmp_path / "run").read_text() == "a file"


@pytest.mark.parametrize("case", ["file", "under-file", "dev-null"])
def test_output_dir_refuses_impossible_destinations(tmp_path: Path, case: str) -> None:
    (tmp_path / "f").write_text("x")
    path = {"file": tmp_path / "f", "under-file": tmp_path / "f" / "sub" / "dir", "dev-null": Path("/dev/null")}[case]
    with pytest.raises(SnnsimError) as err:
        io.output_dir(path, "--out")
    assert "--out" in str(err.value) and "\n" not in str(err.value)


def test_output_dir_accepts_new_nested_directories_and_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    assert io.output_dir(target) == target
    assert not (tmp_path / "a").exists()


def test_errors_about_the_temporary_name_the_destination(tmp_path: Path) -> None:
    dest = tmp_path / "run"
    with pytest.raises(OSError) as err, io.atomic_dir(dest) as tmp:
        open(tmp / "sub" / "x.csv", "w")  # noqa: SIM115 - fails: no such directory
    assert err.value.filename == str(dest / "sub" / "x.csv")


def test_sweep_removes_old_versions_leftovers_after_an_hour(tmp_path: Path) -> None:
    old = tmp_path / ".trace.k2j4h5g6.tmp"  # tempfile.mkdtemp's name, as earlier snnsim wrote it
    old.mkdir()
    recent = tmp_path / ".summary.csv.a1b2c3d4.csv.tmp"
    recent.write_text("x")
    hour_ago = time.time() - 7200
    os.utime(old, (hour_ago, hour_ago))
    io.sweep_stale(tmp_path)
    assert not old.exists() and recent.exists()  # the recent one may still be in use
