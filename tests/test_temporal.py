"""Temporal pruning: schedule bookkeeping and the stage loop (paper.md §2.10, §7.1 item 7)."""

from __future__ import annotations

import pytest
import torch
from sim_testutil import set_thresholds, spiking_pops, thresholds

from snnsim.arch import make_arch
from snnsim.checkpoint import load_model
from snnsim.compression.temporal import (
    Stage,
    direct_plan,
    from_ann_epochs,
    from_ann_scale,
    plan_schedule,
    prune_temporal,
    total_epochs,
    train_from_ann,
)
from snnsim.errors import SnnsimError
from snnsim.models import build_model


def test_plan_from_model_t() -> None:
    plan = plan_schedule([5, 4, 3, 2, 1], model_timesteps=5, epochs_per_step=3)
    assert plan == [Stage(5, 0), Stage(4, 3), Stage(3, 3), Stage(2, 3), Stage(1, 3)]
    assert total_epochs(plan) == 12
    assert direct_plan(plan) == [Stage(5, 0), Stage(1, 12)]


def test_plan_below_model_t() -> None:
    plan = plan_schedule([4, 2], model_timesteps=8, epochs_per_step=2)
    assert plan == [Stage(4, 2), Stage(2, 2)]
    assert direct_plan(plan) == [Stage(2, 4)]
    assert direct_plan(plan_schedule([5], 5, 2)) == [Stage(5, 0)]


@pytest.mark.parametrize("schedule", [[], [5, 5, 3], [3, 4], [6, 4], [4, 0], [4, -1], [4.5, 2], [True]])
def test_bad_schedules_rejected(schedule: list) -> None:
    with pytest.raises(SnnsimError):
        plan_schedule(schedule, model_timesteps=5, epochs_per_step=1)


def test_bad_epochs_rejected() -> None:
    with pytest.raises(SnnsimError):
        plan_schedule([4, 3], 5, 0)


def _setup():
    spec = make_arch("digits").with_widths([6, 6, 8, 8, 12], name="tiny")
    model = build_model(spec, "snn", timesteps=5, seed=0)
    set_thresholds(model, 0.4)
    model.dataset_info = {"name": "synthetic", "input_shape": [1, 8, 8], "num_classes": 10}
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (48,), generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    return model, loader


def test_stage_loop_carries_state_and_saves(tmp_path) -> None:
    model, loader = _setup()
    calls: list[tuple[int, int, float]] = []

    def fake_train(net, train_loader, test_loader, cfg, timesteps=None):
        # records the carried-over threshold, then "trains": shifts all thresholds by +0.1
        calls.append((timesteps, cfg.epochs, float(thresholds(net)[0])))
        with torch.no_grad():
            for pop in spiking_pops(net):
                net.threshold(pop).add_(0.1)
        return [{"epoch": e + 1, "train_acc": 0.5} for e in range(cfg.epochs)]

    from snnsim.training import TrainConfig

    cfg = TrainConfig(epochs=99, lr=1e-4, device="cpu", progress=False)
    plan = plan_schedule([5, 3, 2], 5, 2)
    final, rows = prune_temporal(model, plan, loader, loader, cfg, out_dir=tmp_path, train_fn=fake_train,
                                 threshold_rescale=0.5, progress=False)
    # T=5 stage is not retrained; the 0.5 rescale applies on entering each trained stage
    assert calls == [(3, 2, pytest.approx(0.2)), (2, 2, pytest.approx(0.15))]
    assert [r["timesteps"] for r in rows] == [5, 3, 2]
    assert [r["epochs"] for r in rows] == [0, 2, 2]
    assert [r["cumulative_epochs"] for r in rows] == [0, 2, 4]
    assert final.timesteps == 2 and thresholds(final).tolist() == pytest.approx([0.25] * 5)
    assert thresholds(model).tolist() == pytest.approx([0.4] * 5) and model.timesteps == 5  # input untouched
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0 and r["spikes_per_inference"] >= 0
        back = load_model(r["checkpoint"])
        assert back.timesteps == r["timesteps"]
        assert back.provenance["temporal"]["timesteps"] == r["timesteps"]
    assert (tmp_path / "snn_T3.pt").exists() and (tmp_path / "snn_T2.pt").exists()
    assert torch.equal(thresholds(load_model(tmp_path / "snn_T2.pt")), thresholds(final))


def test_stage_loop_with_real_training(tmp_path) -> None:
    """One real (tiny) fine-tuning epoch per stage through snnsim.training.train_snn."""
    from snnsim.training import TrainConfig

    model, loader = _setup()
    cfg = TrainConfig(epochs=1, lr=1e-3, device="cpu", progress=False)
    before = model.synapses[0].weight.detach().clone()
    final, rows = prune_temporal(model, plan_schedule([4, 2], 5, 1), loader, loader, cfg,
                                 out_dir=tmp_path, file_pattern="direct_T{t}.pt", label="direct",
                                 progress=False)
    assert final.timesteps == 2
    assert not torch.equal(final.synapses[0].weight.detach(), before)
    assert torch.equal(model.synapses[0].weight.detach(), before)
    assert (tmp_path / "direct_T4.pt").exists() and (tmp_path / "direct_T2.pt").exists()
    assert all(r["schedule"] == "direct" for r in rows)


def test_bad_rescale_rejected() -> None:
    model, loader = _setup()
    with pytest.raises(SnnsimError):
        prune_temporal(model, [Stage(4, 1)], loader, loader, None, threshold_rescale=0.0)


def test_rescale_factor_and_parse() -> None:
    from snnsim.compression.temporal import parse_rescale, rescale_factor

    assert rescale_factor("ratio", 5, 2) == pytest.approx(0.4)
    assert rescale_factor(0.8, 5, 2) == 0.8
    assert parse_rescale("ratio") == "ratio" and parse_rescale("0.7") == 0.7
    for bad in ("-1", "0", "fast"):
        with pytest.raises(SnnsimError):
            parse_rescale(bad)


def test_ratio_rescale_in_stage_loop() -> None:
    model, loader = _setup()
    seen: list[float] = []

    def fake_train(net, train_loader, test_loader, cfg, timesteps=None):
        seen.append(float(thresholds(net)[0]))
        return []

    from snnsim.training import TrainConfig

    cfg = TrainConfig(epochs=1, lr=1e-4, device="cpu", progress=False)
    _, rows = prune_temporal(model, plan_schedule([5, 4, 2], 5, 1), loader, loader, cfg,
                             train_fn=fake_train, threshold_rescale="ratio", progress=False)
    assert seen == [pytest.approx(0.4 * 4 / 5), pytest.approx(0.4 * 2 / 5)]
    assert [r["threshold_factor"] for r in rows] == [1.0, pytest.approx(0.8), pytest.approx(0.5)]


def test_from_ann_bookkeeping() -> None:
    plan = plan_schedule([5, 4, 3, 2, 1], 5, 5)
    assert from_ann_epochs(8, plan) == 8 + 20
    assert from_ann_epochs(-3, plan) == 20
    assert from_ann_scale({"scale": 0.5, "timesteps": 5}, 1) == pytest.approx(0.1)
    assert from_ann_scale({"scale": 0.5, "timesteps": 5}, 2) == pytest.approx(0.2)
    for bad in ({}, {"scale": 0.5}, {"scale": 0, "timesteps": 5}, {"scale": "x", "timesteps": 5}):
        with pytest.raises(SnnsimError):
            from_ann_scale(bad, 1)


def test_train_from_ann_converts_at_final_t(tmp_path) -> None:
    """The control converts the ANN at the final T with the scaled thresholds, then trains there."""
    from snnsim.training import TrainConfig, balance_thresholds

    model, loader = _setup()
    ann = build_model(model.spec, "ann", timesteps=5, seed=1)
    ann.dataset_info = dict(model.dataset_info)
    calls: list[tuple[int, int]] = []

    def fake_train(net, train_loader, test_loader, cfg, timesteps=None):
        calls.append((timesteps, cfg.epochs))
        return [{"epoch": 1, "train_acc": 0.25}]

    cfg = TrainConfig(epochs=99, lr=1e-3, device="cpu", progress=False)
    conversion = {"scale": 0.5, "timesteps": 5, "percentile": 99.0, "leak": 1.0, "samples": 32}
    snn, row = train_from_ann(ann, 2, conversion, 7, loader, loader, cfg, out_path=tmp_path / "c.pt",
                              train_fn=fake_train, progress=False)
    assert calls == [(2, 7)]
    assert snn.timesteps == 2 and snn.kind == "snn"
    assert snn.provenance["conversion"]["scale"] == pytest.approx(0.2)
    assert row["schedule"] == "from-ann" and row["timesteps"] == 2 and row["epochs"] == 7
    assert row["train_accuracy_last"] == 0.25 and 0 <= row["accuracy"] <= 1
    # thresholds are the balancing statistic at scale 0.2: rebalancing at 0.2 gives the same values
    fresh = build_model(model.spec, "snn", timesteps=2, leak=1.0, seed=1)
    with torch.no_grad():
        for dst, src in zip(fresh.synapses, ann.synapses, strict=True):
            dst.weight.copy_(src.weight)
    expected = balance_thresholds(fresh, loader, 2, 99.0, 0.2, 32)
    assert snn.provenance["conversion"]["thresholds"] == pytest.approx(expected)
    assert load_model(tmp_path / "c.pt").provenance["temporal"]["conversion_scale"] == pytest.approx(0.2)


def test_prune_temporal_on_a_resnet_snn(tmp_path) -> None:
    """One short real stage on a residual graph (the converted digits-resnet SNN, T 4 -> 2)."""
    from snnsim.compression.spatial import measure
    from snnsim.graph import build_graph
    from snnsim.training import TrainConfig, convert_ann_to_snn

    _, loader = _setup()
    ann = build_model(build_graph("digits-resnet"), kind="ann", seed=0)
    x, y = next(iter(loader))
    snn = convert_ann_to_snn(ann, [(x, y)], 4)
    snn.dataset_info = {"name": "synthetic", "input_shape": [1, 8, 8], "num_classes": 10}
    before = thresholds(snn)
    weights = snn["s2b1_down"].weight.detach().clone()
    small = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    cfg = TrainConfig(epochs=1, lr=1e-3, device="cpu", progress=False)
    seen: list[torch.Tensor] = []

    def one_epoch(net, train_loader, test_loader, cfg, timesteps=None):
        from snnsim.training import train_snn

        seen.append(thresholds(net))
        return train_snn(net, train_loader, test_loader, cfg, timesteps)

    final, rows = prune_temporal(snn, plan_schedule([4, 2], 4, 1), small, small, cfg, out_dir=tmp_path,
                                 threshold_rescale="ratio", train_fn=one_epoch, progress=False)
    assert [r["timesteps"] for r in rows] == [4, 2] and [r["epochs"] for r in rows] == [0, 1]
    # every population's threshold was halved on the cut (ratio 2/4), then trained
    assert len(seen) == 1 and torch.allclose(seen[0], before * 0.5)
    assert final.timesteps == 2 and not torch.equal(final["s2b1_down"].weight.detach(), weights)
    assert torch.equal(thresholds(snn), before) and snn.timesteps == 4  # input untouched
    back = load_model(tmp_path / "snn_T2.pt")
    assert back.timesteps == 2 and list(back.graph.nodes) == list(snn.graph.nodes) and back.spec is None
    assert torch.equal(thresholds(back), thresholds(final))
    # measure at a new T: accuracy in range, spikes on each population's first-layer row only
    m = measure(back, small, timesteps=1, progress=False)
    assert 0.0 <= m.accuracy <= 1.0 and m.spikes.shape == (back.num_layers,)
    assert all(m.spikes[i] == 0.0 for i, info in enumerate(back.layer_infos)
               if info.kind == "identity" or info.target == "out_integrator" or info.name == "s2b1_down")
    assert rows[1]["spikes_per_inference"] == pytest.approx(measure(final, small, progress=False).total_spikes)
