"""What estimate/compare/report leave on disk and print: one directory per run, --force,
plots, captions that name the baseline, report merges that say what they did."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from snnsim.captions import comparison_caption, format_ratio
from snnsim.commands.estimate import default_model_paths
from snnsim.errors import quote

Run = Callable[..., tuple[int, str, str]]
EX = default_model_paths()[0]


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from snnsim.checkpoint import load_model
    from snnsim.data import load_dataset
    from snnsim.recording import record_trace

    out = tmp_path_factory.mktemp("tr") / "trace"
    model = load_model(EX)
    record_trace(model, load_dataset("digits", augment=False), out, samples=48, progress=False)
    return out


def test_each_estimate_gets_its_own_directory(run_cli: Run, trace_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(3):
        code, out, err = run_cli("estimate", "--model", EX, "--trace", trace_dir)
        assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert names == ["estimate-digits_pruned_T2", "estimate-digits_pruned_T2-2", "estimate-digits_pruned_T2-3"]


def test_out_with_results_needs_force_and_is_replaced_whole(run_cli: Run, trace_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_cli("estimate", "--model", EX, "--trace", trace_dir, "--out", out, "--plots")[0] == 0
    assert (out / "plots" / "snn_vs_ann.png").is_file()
    code, _, err = run_cli("estimate", "--model", EX, "--trace", trace_dir, "--out", out)
    assert code == 2 and "--force" in err
    code, _, err = run_cli("estimate", "--model", EX, "--trace", trace_dir, "--out", out, "--force")
    assert code == 0, err
    assert not (out / "plots").exists()  # the new set replaced the old one, it was not merged into it
    assert {p.name for p in out.iterdir()} == {"layers.csv", "summary.csv", "breakdown.csv", "accesses.csv",
                                                "layers_ann.csv"}


def test_table_names_baseline_and_rules_and_ratios_have_3_significant_figures(
        run_cli: Run, trace_dir: Path, tmp_path: Path) -> None:
    code, out, err = run_cli("estimate", "--model", EX, "--trace", trace_dir, "--hw", "45nm", "--hw", "loihi",
                             "--out", tmp_path / "r")
    assert code == 0, err
    assert "baseline: the non-spiking ANN of the SNN's own network" in out
    assert "on eyeriss-like (for loihi)" in out and "the same config (45nm)" in out
    assert "the first layer costs MACs at every timestep" in out
    assert "ANN/SNN = E_ANN / E_SNN" in out
    summary = pd.read_csv(tmp_path / "r" / "summary.csv")
    loihi = summary[summary["hw"] == "loihi"].iloc[0]
    assert loihi["baseline_hw"] == "eyeriss-like"
    assert format_ratio(loihi["energy_ann_over_snn"]) in out  # e.g. 0.156x, not 0.16x or 0.00x


def test_format_ratio() -> None:
    assert [format_ratio(v) for v in (0.004671, 1.994, 12.61, 123.4, 5250.0)] == [
        "0.00467x", "1.99x", "12.6x", "123x", "5,250x"]
    assert format_ratio(float("nan")) == "-"


def test_caption_names_an_explicit_baseline() -> None:
    rows = pd.DataFrame([{"hw": "truenorth", "baseline_hw": "eyeriss-like", "baseline_model": "base/ann",
                          "counting": "neurobench", "first_layer": "mac_once", "skip_zero_weights": True}])
    text = "\n".join(comparison_caption(rows))
    assert "ANN base/ann" in text and "eyeriss-like (for truenorth)" in text
    assert "NeuroBench" in text and "once per inference" in text and "zero weights skipped" in text


def test_report_merges_runs_without_dropping(run_cli: Run, trace_dir: Path, tmp_path: Path) -> None:
    for name, hw in (("a", "45nm"), ("b", "45nm"), ("c", "loihi")):
        assert run_cli("estimate", "--model", EX, "--trace", trace_dir, "--out", tmp_path / name, "--hw", hw)[0] == 0
    code, out, err = run_cli("report", tmp_path)
    assert code == 0, err
    assert f"used {tmp_path / 'a' / 'summary.csv'} once: {tmp_path / 'b' / 'summary.csv'} is a byte-identical copy" in out
    other = pd.read_csv(tmp_path / "b" / "summary.csv")
    other["energy_snn_pj"] *= 1.001  # the same model and config, measured differently
    other.to_csv(tmp_path / "b" / "summary.csv", index=False)
    code, out, err = run_cli("report", tmp_path)
    assert "digits_pruned_T2 appear in several, labelled by run directory" in out
    from snnsim.reports import merge_runs

    rows = pd.concat([pd.read_csv(tmp_path / n / "summary.csv").assign(source=n) for n in ("a", "b")])
    merged = merge_runs(rows, lambda m: None)
    assert sorted(merged["model"]) == ["digits_pruned_T2 [a]", "digits_pruned_T2 [b]"]


def test_quote_never_cuts_mid_word() -> None:
    long = RuntimeError("size mismatch for synapses.0.weight: copying a param with shape torch.Size([64, 1, 3, 3])")
    q = quote(long, 50)
    assert q.endswith(" …") and len(q) <= 52
    assert q[:-2] == long.args[0][:len(q) - 2] and long.args[0][len(q) - 2] == " "
    assert quote(ValueError()) == "ValueError"


def test_compiled_kernels_are_reused_by_later_processes(tmp_path: Path) -> None:
    """A fresh numba cache: the first process compiles (and the notice's check says so), a
    later process loads the kernel from the cache without compiling."""
    code = ("import sys, numpy as np\n"
            "from snnsim.sim import kernels as k\n"
            "before = k.kernels_compiled(('popcount_packed',))\n"
            "k.popcount_packed(np.zeros((2, 3, 4), dtype=np.uint8))\n"
            "s = k.popcount_packed.stats\n"
            "print(before, sum(s.cache_hits.values()), sum(s.cache_misses.values()))\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.split() == ["False", "0", "1"]  # not cached: compiled here
    assert second.stdout.split() == ["True", "1", "0"]  # cached: loaded, nothing compiled


def test_demo_refuses_an_earlier_run_without_force(tmp_path: Path, run_cli: Run) -> None:
    from snnsim.demo import claim_demo_dir

    root = tmp_path / "demo"
    (root / "models" / "base").mkdir(parents=True)
    (root / "summary.md").write_text("earlier run")
    code, _, err = run_cli("demo", "--out", root)
    assert code == 2 and "already holds a demo run" in err and "--force" in err
    claim_demo_dir(root, force=True)
    assert list(root.iterdir()) == []  # the earlier run's entries are gone
    (root / "thesis.tex").write_text("precious")
    code, _, err = run_cli("demo", "--out", root, "--force")
    assert code == 2 and "holds other files (thesis.tex)" in err
    assert (root / "thesis.tex").read_text() == "precious"


def test_demo_compares_direct_and_poisson_from_their_tables(tmp_path: Path) -> None:
    """`demo --encoding both`: the comparison section and the first-layer table are read from the
    CSVs the two pipelines wrote (here small hand-made ones), figure for figure."""
    import pandas as pd

    from snnsim.demo import FIRST_LAYER_TABLE, append_comparison, first_layer_table

    root, pois = tmp_path / "demo", tmp_path / "demo" / "poisson"
    for where, acc, ratio in ((root, 0.981, 14.1), (pois, 0.975, 12.5)):
        (where / "compare").mkdir(parents=True)
        (where / "noise").mkdir()
        pd.DataFrame([{"model": "pruned_T2", "hw": "45nm", "timesteps": 2, "accuracy": acc,
                       "spikes_per_inference": 1234.0, "energy_compute_ann_over_snn": ratio,
                       "first_layer": "auto"}]).to_csv(where / "compare" / "compare.csv", index=False)
        pd.DataFrame({"noise_std": [0.0, 0.2], "snn_accuracy": [acc, acc - 0.05], "ann_accuracy": [0.99, 0.95],
                      "difference": [acc - 0.99, acc - 1.0], "difference_ci95": [0.0, 0.012]}
                     ).to_csv(where / "noise" / "noise.csv", index=False)
    for k, rule in enumerate(FIRST_LAYER_TABLE):
        (pois / "first_layer" / rule).mkdir(parents=True)
        pd.DataFrame([{"model": "pruned_T2", "energy_ann_over_snn": 10.0 + k}]).to_csv(
            pois / "first_layer" / rule / "compare.csv", index=False)
    (root / "summary.md").write_text("# demo\n")
    table = first_layer_table(pois)
    assert table is not None and list(table.columns) == ["model", *FIRST_LAYER_TABLE]
    assert table.iloc[0].tolist() == ["pruned_T2", "10x", "11x", "12x"]
    text = append_comparison(root, pois).read_text()
    assert "## Direct vs Poisson input encoding" in text and "| poisson | pruned_T2 | 2 | 97.5% | 1,234 | 12.5x" in text
    assert "| 0.2 | 93.1% | 95.0% | -1.90 ± 1.20 | 92.5% | 95.0% | -2.50 ± 1.20 |" in text
    assert first_layer_table(root) is None
