"""End-to-end estimation: model + configs -> CSV tables; compare reuses traces; bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sim_testutil import set_thresholds

from snnsim.arch import ArchSpec
from snnsim.checkpoint import save_model
from snnsim.cli import cli, main
from snnsim.cost import layer_connections
from snnsim.estimation import estimate
from snnsim.models import build_model

LAYER_COLUMNS = {
    "model", "hw", "layer", "kind", "timesteps", "neurons", "input_events", "spike_rate", "ac", "mac",
    "dense_ops", "weight_reads", "potential_reads", "potential_writes", "neuron_updates", "spikes_out",
    "energy_compute_pj", "energy_memory_pj", "energy_neuron_pj", "energy_routing_pj", "energy_total_pj",
    "latency_cycles",
}
SUMMARY_COLUMNS = {
    "model", "hw", "samples", "timesteps", "accuracy", "params", "spikes_per_inference", "energy_snn_pj",
    "energy_ann_pj", "energy_ann_over_snn", "latency_cycles", "latency_s",
}
SPEC = ArchSpec("tiny-est", (8, "A", 16, "A"), (32,), (1, 8, 8), 10)


def _model(path: Path, threshold: float, seed: int = 0) -> Path:
    net = build_model(SPEC, "snn", timesteps=3, seed=seed)
    set_thresholds(net, threshold)
    net.dataset_info = {"name": "synthetic"}
    save_model(net, path)
    return path


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_estimate_api_tables_have_the_documented_schema(workdir: Path) -> None:
    path = _model(workdir / "m.pt", 0.3)
    res = estimate(path, ["45nm", "loihi"], samples=16, progress=False)
    assert set(res.layers.columns) >= LAYER_COLUMNS
    assert set(res.summary.columns) >= SUMMARY_COLUMNS
    assert len(res.summary) == 2
    assert len(res.layers) == 2 * len(SPEC.layers())
    # per-layer energies add up to the summary's SNN energy, on every config
    for hw, rows in res.layers.groupby("hw"):
        total = float(res.summary.loc[res.summary["hw"] == hw, "energy_snn_pj"].iloc[0])
        assert rows["energy_total_pj"].sum() == pytest.approx(total, rel=1e-9)
    assert (res.summary["energy_snn_pj"] > 0).all() and (res.summary["energy_ann_pj"] > 0).all()
    # the first layer is analog (MACs), the others spike-driven (ACs)
    first = res.layers[(res.layers["hw"] == res.layers["hw"].iloc[0]) & (res.layers["layer"] == "conv1")].iloc[0]
    assert first["mac"] > 0 and first["ac"] == 0
    # spikes per inference equals the recorded spike counts of the trace
    counts = next(iter(res.counts.values()))
    assert float(res.summary["spikes_per_inference"].iloc[0]) == pytest.approx(counts.per_sample("spikes_out").sum())


def test_compute_only_ratio_is_the_ops_formula(workdir: Path) -> None:
    path = _model(workdir / "m.pt", 0.3)
    res = estimate(path, "45nm", samples=8, compute_only=True, progress=False)
    lay = res.layers
    expected = float((lay["mac"] * 4.6 + lay["ac"] * 0.9).sum())
    assert float(res.summary["energy_snn_pj"].iloc[0]) == pytest.approx(expected, rel=1e-9)
    # the ANN counts the in-bounds connections, as the SNN's events do (issue 13 item 7: it used to
    # count LayerInfo.macs, padding taps included); the conventional option gives that number back
    ann_macs = sum(layer_connections(layer, "inbounds") for layer in SPEC.layers())
    assert float(res.summary["energy_ann_pj"].iloc[0]) == pytest.approx(ann_macs * 4.6, rel=1e-9)
    conv = estimate(path, "45nm", samples=8, compute_only=True, progress=False, connections="conventional")
    assert float(conv.summary["energy_ann_pj"].iloc[0]) == pytest.approx(SPEC.mac_count() * 4.6, rel=1e-9)


def test_estimate_cli_writes_csvs_and_compare_reuses_traces(workdir: Path) -> None:
    a = _model(workdir / "a.pt", 0.3)
    b = _model(workdir / "b.pt", 0.6, seed=1)
    runner = CliRunner()
    r = runner.invoke(cli, ["estimate", "--model", str(a), "--hw", "45nm", "--samples", "8", "--out", "rep"])
    assert r.exit_code == 0, r.output
    for name in ("layers.csv", "summary.csv", "breakdown.csv", "accesses.csv"):
        assert (workdir / "rep" / name).stat().st_size > 0
    r = runner.invoke(cli, ["compare", "--model", str(a), "--model", str(b), "--hw", "45nm", "--hw", "45nm-int8",
                            "--hw", "loihi", "--hw", "truenorth", "--samples", "8", "--out", "cmp"])
    assert r.exit_code == 0, r.output
    assert "traces: 1 recorded, 1 reused" in r.output  # a.pt was traced by the estimate above
    table = pd.read_csv(workdir / "cmp" / "compare.csv")
    assert len(table) == 8
    assert list(table["energy_snn_pj"]) == sorted(table["energy_snn_pj"])
    assert {"energy_compute_ac_pj", "energy_neuron_pj", "energy_ann_over_snn"} <= set(table.columns)


def test_trace_from_another_model_is_refused(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _model(workdir / "a.pt", 0.3)
    b = _model(workdir / "b.pt", 0.3, seed=7)
    with pytest.raises(SystemExit) as exc:
        main(["trace", "--model", str(a), "--samples", "4", "--out", "tr"])
    assert exc.value.code == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["estimate", "--model", str(b), "--trace", "tr", "--out", "rep"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "recorded from model" in err[0]
    assert not (workdir / "rep").exists()


def test_bad_hw_and_missing_model_are_one_line_errors(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _model(workdir / "a.pt", 0.3)
    bad = workdir / "bad.yaml"
    bad.write_text((Path(__file__).resolve().parents[1] / "hwconfigs" / "45nm.yaml").read_text().replace(
        "ac_pj: 0.9", "ac_pj: -0.9", 1))
    for args in (["estimate", "--model", str(a), "--hw", str(bad), "--samples", "4"],
                 ["estimate", "--model", "missing.pt"],
                 ["estimate", "--model", str(a), "--hw", "no-such-chip"]):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("snnsim: error")]
        assert len(err) == 1


def test_quantized_model_reports_its_weight_bits(workdir: Path) -> None:
    from snnsim.checkpoint import load_model
    from snnsim.compression.quantize import quantize_model

    path = _model(workdir / "m.pt", 0.3)
    q = quantize_model(load_model(path), 4)
    save_model(q, workdir / "q.pt")
    res = estimate(workdir / "q.pt", "45nm", samples=8, progress=False)
    assert int(res.summary["weight_bits"].iloc[0]) == 4
    full = estimate(path, "45nm", samples=8, progress=False)
    # 4-bit weights move fewer bits through memory than fp32 ones
    assert res.summary["snn_memory:sram_pj"].iloc[0] < full.summary["snn_memory:sram_pj"].iloc[0] or \
        np.isclose(full.summary["snn_memory:sram_pj"].iloc[0], 0)


def test_estimate_without_model_uses_the_shipped_example(workdir: Path) -> None:
    from snnsim.commands.estimate import default_model_paths

    paths = default_model_paths()
    assert paths, "the package ships an example digits model (snnsim/examples)"
    r = CliRunner().invoke(cli, ["estimate", "--samples", "8", "--out", "rep"])
    assert r.exit_code == 0, r.output
    summary = pd.read_csv(workdir / "rep" / "summary.csv")
    assert summary["samples"].iloc[0] == 8 and summary["params"].iloc[0] > 0
