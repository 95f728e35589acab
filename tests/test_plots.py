"""Plots and ``snnsim report``: every plot writes a readable PNG; report finds tables, errors cleanly."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from snnsim import plots
from snnsim.cli import main
from snnsim.errors import SnnsimError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LAYERS = ["conv1", "conv2", "fc1", "fc2"]


# ----------------------------------------------------------------------------- synthetic tables
def layers_df(models: tuple[str, ...] = ("vgg", "vgg_pruned"), hws: tuple[str, ...] = ("loihi", "tianjic")) -> pd.DataFrame:
    rows = []
    for mi, model in enumerate(models):
        for hi, hw in enumerate(hws):
            for i, name in enumerate(LAYERS):
                e = 10.0 ** (6 - i) * (1 + hi) / (1 + mi)
                rows.append({"model": model, "hw": hw, "layer": name, "index": i,
                             "kind": "conv" if name.startswith("conv") else "linear", "timesteps": 5,
                             "neurons": 100, "spike_rate": 0.0 if i == 3 else 0.05 * (i + 1),
                             "energy_compute_pj": 0.5 * e, "energy_memory_pj": 0.3 * e,
                             "energy_neuron_pj": 0.1 * e, "energy_routing_pj": 0.05 * e,
                             "energy_static_pj": 0.05 * e, "energy_total_pj": e, "latency_cycles": 10})
    return pd.DataFrame(rows)


def summary_df() -> pd.DataFrame:
    rows = []
    for mi, model in enumerate(["vgg", "vgg_pruned"]):
        for hi, hw in enumerate(["loihi", "tianjic"]):
            snn = 3e7 * (1 + hi) / (1 + mi)
            ann = snn * (5 + 3 * hi)
            rows.append({"model": model, "hw": hw, "samples": 8, "timesteps": 5, "accuracy": 0.9 - 0.02 * mi,
                         "params": 1000, "spikes_per_inference": 1e4, "energy_snn_pj": snn,
                         "energy_ann_pj": ann, "energy_ann_over_snn": ann / snn, "latency_cycles": 100,
                         "latency_s": 1e-4})
    return pd.DataFrame(rows)


def temporal_df() -> pd.DataFrame:
    rows = [{"schedule": "gradual", "timesteps": t, "epochs": 1, "accuracy_cut": a - 0.1, "accuracy": a,
             "spikes_per_inference": 1000.0 * t, "checkpoint": f"snn_T{t}.pt"}
            for t, a in [(3, 0.9), (2, 0.88), (1, 0.8)]]
    rows.append({"schedule": "direct", "timesteps": 1, "epochs": 3, "accuracy_cut": 0.3, "accuracy": 0.75,
                 "spikes_per_inference": 1100.0, "checkpoint": "direct_T1.pt"})
    return pd.DataFrame(rows)


def quantize_df() -> pd.DataFrame:
    rows = [{"bits": 32, "scheme": "float32", "accuracy": 0.9, "accuracy_drop": 0.0}]
    rows += [{"bits": k, "scheme": "uniform-symmetric-per-layer", "accuracy": a, "accuracy_drop": 0.9 - a}
             for k, a in [(8, 0.9), (4, 0.85), (2, 0.4)]]
    return pd.DataFrame(rows)


def spatial_df() -> pd.DataFrame:
    before, after = [16, 32, 256, 10], [8, 20, 40, 10]
    rows = [{"layer": n, "kind": "conv", "channels_before": b, "channels_after": a, "params_before": b * 50,
             "params_after": a * 30, "accuracy_before": np.nan, "accuracy_after": np.nan}
            for n, b, a in zip(LAYERS, before, after, strict=True)]
    rows.append({"layer": "total", "kind": "", "channels_before": sum(before), "channels_after": sum(after),
                 "params_before": sum(before) * 50, "params_after": sum(after) * 30,
                 "accuracy_before": 0.9, "accuracy_after": 0.89})
    return pd.DataFrame(rows)


def pca_df() -> pd.DataFrame:
    rows = []
    for name, width in [("conv1", 16), ("fc1", 64)]:
        v = np.cumsum(np.exp(-np.arange(width) / 4.0))
        rows += [{"layer": name, "k": j + 1, "cumulative_variance": float(x)} for j, x in enumerate(v / v[-1])]
    return pd.DataFrame(rows)


def noise_df() -> pd.DataFrame:
    return pd.DataFrame({"noise_std": [0.0, 0.1, 0.2], "snn_accuracy": [0.9, 0.85, 0.7],
                         "ann_accuracy": [0.92, 0.8, 0.5], "difference": [-0.02, 0.05, 0.2],
                         "snn_std": [0.0, 0.01, 0.02], "ann_std": [0.0, 0.01, 0.03]})


def assert_png(path: Path, min_w: int = 400, min_h: int = 300) -> None:
    """A non-empty, valid PNG that matplotlib reads back with a sensible size."""
    path = Path(path)
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h, (w, h)
    assert w <= 6000 and h <= 6000, (w, h)
    assert float(np.ptp(img[..., :3])) > 0.1, "the image is blank"


# ----------------------------------------------------------------------------- plot functions
CASES = [
    ("plot_energy_breakdown", layers_df),
    ("plot_spike_rates", layers_df),
    ("plot_snn_vs_ann", summary_df),
    ("plot_accuracy_vs_energy", summary_df),
    ("plot_temporal", temporal_df),
    ("plot_quantization", quantize_df),
    ("plot_spatial", spatial_df),
    ("plot_pca_curves", pca_df),
    ("plot_noise", noise_df),
]


@pytest.mark.parametrize(("fn", "make"), CASES, ids=[c[0] for c in CASES])
def test_plot_writes_png(tmp_path: Path, fn: str, make) -> None:
    out = tmp_path / "sub" / f"{fn}.png"
    got = getattr(plots, fn)(make(), out)
    assert Path(got) == out
    assert_png(out)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "temporary file left behind"


def test_single_panel_and_minimal_columns(tmp_path: Path) -> None:
    # no model/hw columns, only one component: still a plot
    df = pd.DataFrame({"layer": ["a", "b"], "energy_compute_pj": [5.0, 2.0], "spike_rate": [0.1, 0.0]})
    assert_png(plots.plot_energy_breakdown(df, tmp_path / "e.png"))
    assert_png(plots.plot_spike_rates(df, tmp_path / "s.png"))
    q = pd.DataFrame({"bits": [4, 8], "accuracy": [80.0, 90.0]})  # percent, no float row
    assert_png(plots.plot_quantization(q, tmp_path / "q.png"))


def test_missing_columns_raise_one_line(tmp_path: Path) -> None:
    with pytest.raises(SnnsimError, match="energy_snn_pj"):
        plots.plot_snn_vs_ann(pd.DataFrame({"hw": ["x"], "energy_ann_pj": [1.0]}), tmp_path / "x.png")
    with pytest.raises(SnnsimError, match="empty"):
        plots.plot_temporal(pd.DataFrame(columns=["timesteps", "accuracy"]), tmp_path / "t.png")
    nan_acc = summary_df().assign(accuracy=np.nan)
    with pytest.raises(SnnsimError):
        plots.plot_accuracy_vs_energy(nan_acc, tmp_path / "p.png")
    assert not list(tmp_path.glob("*.png"))


def test_pareto_front() -> None:
    energy = [10.0, 20.0, 5.0, 30.0, 20.0, np.nan]
    acc = [0.8, 0.9, 0.7, 0.85, 0.95, 0.99]
    # 5 (0.7) -> 10 (0.8) -> 20 (0.95); 20/0.9 and 30/0.85 are dominated; NaN never on it
    assert plots.pareto_front(energy, acc) == [2, 0, 4]


def test_energy_unit() -> None:
    assert plots.energy_unit(500.0) == (1.0, "pJ")
    assert plots.energy_unit(2.5e4) == (1e3, "nJ")
    assert plots.energy_unit(3e7) == (1e6, "µJ")
    assert plots.energy_unit(float("nan")) == (1.0, "pJ")


def test_snn_rows_drops_ann_baseline() -> None:
    df = pd.concat([layers_df(("m",), ("h",)).assign(net="snn"), layers_df(("m",), ("h",)).assign(net="ann")])
    assert set(plots.snn_rows(df)["net"]) == {"snn"}


# ----------------------------------------------------------------------------- snnsim report
def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return int(exc.value.code or 0)


def _run_dir(root: Path) -> Path:
    (root / "est").mkdir(parents=True)
    layers_df().to_csv(root / "est" / "layers.csv", index=False)
    summary_df().to_csv(root / "est" / "summary.csv", index=False)
    for sub, name, df in [("prune-temporal-snn", "temporal.csv", temporal_df()),
                          ("stages", "temporal.csv", temporal_df()),  # identical copy: one plot
                          ("quantize-snn", "quantize.csv", quantize_df()),
                          ("prune-spatial-snn", "spatial.csv", spatial_df()),
                          ("prune-spatial-snn", "pca_curves.csv", pca_df()),
                          ("evaluate-a", "noise.csv", noise_df()),
                          ("evaluate-b", "noise.csv", noise_df().assign(snn_accuracy=0.5))]:
        (root / sub).mkdir(exist_ok=True)
        df.to_csv(root / sub / name, index=False)
    return root


def test_report_writes_every_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run_dir(tmp_path / "run")
    assert _run(["report", str(run)]) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in (run / "plots").glob("*.png"))
    assert names == sorted(["energy_breakdown.png", "spike_rates.png", "snn_vs_ann.png",
                            "accuracy_vs_energy.png", "temporal.png", "quantize.png", "spatial.png",
                            "pca_curves.png", "noise_evaluate-a.png", "noise_evaluate-b.png"])
    for name in names:
        assert name in out
        assert_png(run / "plots" / name)


def test_report_out_option_and_make_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from snnsim.commands.report import make_plots

    run = tmp_path / "run"
    (run / "q").mkdir(parents=True)
    quantize_df().to_csv(run / "q" / "quantize.csv", index=False)
    (run / "q" / "noise.csv").write_text("")  # unreadable table: skipped, not fatal
    assert _run(["report", str(run), "--out", str(tmp_path / "figs")]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err
    assert [p.name for p in (tmp_path / "figs").glob("*.png")] == ["quantize.png"]
    assert not (run / "plots").exists()
    paths = make_plots(run, tmp_path / "again")
    assert [p.name for p in paths] == ["quantize.png"]


@pytest.mark.parametrize("case", ["missing", "empty", "file", "bad-table"])
def test_report_errors_exit_2_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    target = tmp_path / "run"
    if case == "empty":
        target.mkdir()
        (target / "notes.txt").write_text("no tables here")
    elif case == "file":
        target.write_text("x")
    elif case == "bad-table":
        target.mkdir()
        pd.DataFrame({"foo": [1]}).to_csv(target / "summary.csv", index=False)
    assert _run(["report", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("snnsim: error: ")
    assert not (target / "plots").exists() or not list((target / "plots").glob("*.png"))
