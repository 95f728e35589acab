"""The README's command lines, run as written, as a stranger would: from an empty temporary
directory, against a non-editable (wheel) install of snnsim.

Every ```bash block of the README is marked: `<!-- readme-test: run -->` (run here, line by
line: snnsim commands only), `<!-- readme-test: script -->` (run here whole, as one bash script:
a block that writes the files it needs, such as a user's own model), `<!-- readme-test: skip (why) -->` (needs what this machine lacks: the CIFAR download,
a GPU), or it is one of the two set-up blocks that CI runs itself (`ci:main`, `ci:test`). An
unmarked block fails the test, so no command can slip in untried.

The wheel goes into a fresh virtual environment that sees the already installed dependencies
(torch, numba, ...) through a plain path entry, never through the editable install's import
hook, so `snnsim` there is the wheel's package and the wheel's data files (the shipped
hardware configs under ``<venv>/share/snnsim``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MARK = re.compile(r"<!--\s*(readme-test:\s*(run|script|skip[^>]*)|ci:(main|test))\s*-->")


def readme_blocks() -> list[tuple[str, list[str]]]:
    """(marker, command lines) for every ```bash block; marker '' where none precedes it."""
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() in ("```bash", "```sh"):
            above = next((lines[k] for k in range(i - 1, max(-1, i - 3), -1) if lines[k].strip()), "")
            m = MARK.search(above)
            marker = "" if m is None else (m.group(2) or f"ci:{m.group(3)}").split()[0].split("(")[0]
            body: list[str] = []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append((marker, body))
        i += 1
    return blocks


def commands(body: list[str]) -> list[str]:
    """The command lines of a block (comments and blank lines dropped, continuations joined)."""
    out: list[str] = []
    pending = ""
    for raw in body:
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    return out


def test_every_readme_block_is_marked() -> None:
    blocks = readme_blocks()
    assert blocks, "the README has no bash blocks"
    unmarked = [body[0] if body else "(empty)" for marker, body in blocks if marker == ""]
    assert not unmarked, f"README bash blocks without a readme-test marker: {unmarked}"
    assert sum(1 for marker, _ in blocks if marker == "run") >= 1


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment variables of a fresh venv holding snnsim from a wheel built from this repo."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    # Build from a clean copy: setuptools reuses a build/ folder, and stale files in one would
    # end up in the wheel.
    src = root / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                                             "runs", "traces", "reports", "data", ".*"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(src)], check=True, capture_output=True, timeout=600)
    wheel = next(dist.glob("snnsim-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    # The installed dependencies as plain path entries (their .pth hooks, the editable snnsim's
    # among them, are not run), after the venv's own site-packages.
    deps = [p for p in {*site.getsitepackages(), sysconfig.get_paths()["purelib"]} if Path(p).is_dir()]
    (purelib / "zz_deps.pth").write_text("\n".join(deps) + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=600)
    env = dict(os.environ)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env.pop("PYTHONPATH", None)
    env["PYTHONUNBUFFERED"] = "1"
    where = subprocess.run(["snnsim", "--version"], env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr
    origin = subprocess.run([str(py), "-c", "import snnsim, snnsim.hw; print(snnsim.__file__); "
                             "print(snnsim.hw.shipped_dir())"], env=env, capture_output=True, text=True,
                            check=True, cwd=root).stdout.split()
    assert Path(origin[0]).is_relative_to(venv), f"snnsim came from {origin[0]}, not the wheel"
    assert Path(origin[1]).is_relative_to(venv), f"shipped configs from {origin[1]}, not the wheel"
    return env


def test_readme_commands_run_as_written(wheel_env: dict[str, str], tmp_path: Path) -> None:
    ran = 0
    for marker, body in readme_blocks():
        if marker != "run":
            continue
        for line in commands(body):
            assert shlex.split(line, comments=True)[0] == "snnsim", f"not an snnsim command: {line}"
            done = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=tmp_path, env=wheel_env,
                                  capture_output=True, text=True, timeout=1800)
            assert done.returncode == 0, f"README command failed ({done.returncode}): {line}\n{done.stderr[-3000:]}"
            assert "Traceback" not in done.stderr, line
            ran += 1
    assert ran >= 15
    assert (tmp_path / "runs" / "digits" / "quant" / "snn_5bit.pt").is_file()
    assert any((tmp_path / "reports").glob("estimate-snn_T2*/summary.csv"))


def test_readme_scripts_run_whole(wheel_env: dict[str, str], tmp_path: Path) -> None:
    """Each `script` block as one ``bash -e`` script, from its own empty directory."""
    scripts = [body for marker, body in readme_blocks() if marker == "script"]
    assert scripts, "the README has no script block (Bring your own model)"
    for k, body in enumerate(scripts):
        where = tmp_path / f"script{k}"
        where.mkdir()
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", "\n".join(body)], cwd=where, env=wheel_env,
                              capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, f"README script {k} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr
    byom = tmp_path / "script0"
    for name in ("nir_snn.pt", "torch_snn.pt", "spikes.h5", "roundtrip.nir", "report_mine/summary.csv",
                 "report_nir/summary.csv", "report_torch/summary.csv"):
        assert (byom / name).is_file(), name
