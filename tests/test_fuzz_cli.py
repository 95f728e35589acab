"""Bad command lines, in-process: every one ends in one `snnsim: error:` line and exit code 2,
before any long work, and writes nothing.

The cases are written out (not generated) so that each names the class of mistake it stands
for: wrong types, values out of range, impossible paths, files of the wrong kind, unknown
names, and contradictory options, across every command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from snnsim.commands.estimate import default_model_paths

Run = Callable[..., tuple[int, str, str]]
EX = str(default_model_paths()[0])

# {tmp} is replaced by a fresh temporary directory holding: file.txt (text), empty.pt (0 bytes),
# a.dir/ (an empty directory), results/ (a previous estimate run), other/ (a directory of the user's).
CASES: list[list[str]] = [
    # numbers: type, range, non-finite, overflow
    ["train", "--timesteps", "abc"],
    ["train", "--timesteps", "0"],
    ["train", "--timesteps", "-3"],
    ["train", "--timesteps", "100000000000000000000"],
    ["train", "--seed", "18446744073709551616"],
    ["train", "--seed", "-1"],
    ["train", "--seed", "1.5"],
    ["train", "--lr", "nan"],
    ["train", "--lr", "-0.1"],
    ["train", "--lr", "1e308"],
    ["train", "--leak", "2"],
    ["train", "--percentile", "0"],
    ["train", "--threshold-scale", "inf"],
    ["train", "--batch-size", "0"],
    ["train", "--workers", "-1"],
    ["train", "--synthetic-size", "a,b", "--dataset", "synthetic"],
    ["train", "--synthetic-size", "5", "--dataset", "synthetic"],
    ["train", "--arch", "resnet9000"],
    ["train", "--dataset", "imagenet"],
    ["train", "--device", "tpu"],
    ["train", "--kind", "ann", "--ann", EX],
    ["train", "--ann", EX],  # an SNN where an ANN is needed
    ["train", "--out", "{tmp}/file.txt"],
    ["evaluate", "--model", EX, "--timesteps", "100000000000000000000"],
    ["evaluate", "--model", EX, "--noise-std", "1e308"],
    ["evaluate", "--model", EX, "--noise-std", "nan"],
    ["evaluate", "--model", EX, "--noise-std", "-1"],
    ["evaluate", "--model", EX, "--noise-std", "x,y"],
    ["evaluate", "--model", EX, "--repeats", "0"],
    ["evaluate", "--model", EX, "--baseline", EX],  # an SNN as the ANN baseline
    ["prune", "spatial", "--model", EX, "--out", "{tmp}/p.pt", "--variance", "1.5"],
    ["prune", "spatial", "--model", EX, "--out", "{tmp}/p.pt", "--variance", "0"],
    ["prune", "spatial", "--model", EX, "--out", "{tmp}/p.pt", "--widths", "0,0"],
    ["prune", "spatial", "--model", EX, "--out", "{tmp}/p.pt", "--samples", "1"],
    ["prune", "temporal", "--model", EX, "--out", "{tmp}/t", "--schedule", "5,x"],
    ["prune", "temporal", "--model", EX, "--out", "{tmp}/t", "--schedule", "0"],
    ["prune", "temporal", "--model", EX, "--out", "{tmp}/t", "--epochs-per-step", "0"],
    ["prune", "temporal", "--model", EX, "--out", "{tmp}/file.txt"],
    ["quantize", "--model", EX, "--out", "{tmp}/q", "--bits", "1"],
    ["quantize", "--model", EX, "--out", "{tmp}/q", "--bits", "64"],
    ["quantize", "--model", EX, "--out", "{tmp}/q", "--bits", ""],
    # files of the wrong kind
    ["info", "{tmp}/missing.pt"],
    ["info", "{tmp}/empty.pt"],
    ["info", "{tmp}/file.txt"],
    ["info", "{tmp}/a.dir"],
    ["estimate", "--model", "{tmp}/file.txt"],
    ["estimate", "--model", "{tmp}/a.dir"],
    ["estimate", "--model", EX, "--trace", "{tmp}/file.txt"],
    ["estimate", "--model", EX, "--trace", "{tmp}/a.dir"],
    ["estimate", "--model", EX, "--trace", "{tmp}/missing"],
    ["trace", "--model", "{tmp}/empty.pt"],
    ["report", "{tmp}/missing"],
    ["report", "{tmp}/file.txt"],
    ["report", "{tmp}/a.dir"],
    # output destinations
    ["estimate", "--model", EX, "--out", "/dev/null"],
    ["estimate", "--model", EX, "--out", "/proc/snnsim-test"],  # passes the early check, fails at the write
    ["estimate", "--model", EX, "--out", "{tmp}/file.txt"],
    ["estimate", "--model", EX, "--out", "{tmp}/file.txt/sub"],
    ["estimate", "--model", EX, "--out", "{tmp}/results"],  # holds results: needs --force
    ["estimate", "--model", EX, "--out", "{tmp}/other", "--force"],  # not ours: never replaced
    ["compare", "--model", EX, "--out", "{tmp}/file.txt"],
    ["compare", "--model", EX, "--out", "{tmp}/results"],
    # names and choices
    ["estimate", "--model", EX, "--hw", "45nmm"],
    ["estimate", "--model", EX, "--hw", "{tmp}/file.txt"],
    ["estimate", "--model", EX, "--counting", "xyz"],
    ["estimate", "--model", EX, "--first-layer", "mac_sometimes"],
    ["estimate", "--model", EX, "--functional", "quantum"],
    ["estimate", "--model", EX, "--engine", "gpu"],
    ["estimate", "--model", EX, "--samples", "0"],
    ["estimate", "--model", EX, "--samples", "100000000"],
    ["estimate", "--model", EX, "--dataset", "nonexistent"],
    ["estimate", "--model", EX, "--baseline", "{tmp}/file.txt"],
    ["compare", "--model", EX, "--trace", "{tmp}/a.dir", "--trace", "{tmp}/a.dir"],
    ["hw", "show", "nonexistent-chip"],
    ["nonsense-command"],
    ["estimate", "--no-such-option"],
]


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "file.txt").write_text("not a model\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "a.dir").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "summary.csv").write_text("model,hw\nx,45nm\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "thesis.tex").write_text("precious\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_there_are_at_least_50_cases() -> None:
    assert len(CASES) >= 50


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("args", CASES, ids=[" ".join(c)[:60] for c in CASES])
def test_bad_command_line(run_cli: Run, sandbox: Path, args: list[str]) -> None:
    before = _snapshot(sandbox)
    code, out, err = run_cli(*[a.replace("{tmp}", str(sandbox)) for a in args])
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert lines and lines[-1].startswith("snnsim: error: "), err
    assert sum(1 for line in lines if line.startswith("snnsim: error:")) == 1
    assert "Traceback" not in err
    after = _snapshot(sandbox)
    assert {k: v for k, v in after.items() if not k.startswith("traces/")} == before  # nothing written
