"""Training: conversion by threshold balancing, surrogate gradients, BPTT, resume, hybrid pipeline."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from sim_testutil import leaks, set_leaks, spiking_pops, thresholds

from snnsim.checkpoint import load_model, read_checkpoint
from snnsim.data import make_loaders
from snnsim.errors import SnnsimError
from snnsim.models import build_model
from snnsim.training import (
    TrainConfig,
    _percentile,
    balance_thresholds,
    convert_ann_to_snn,
    evaluate,
    hybrid_train,
    train_ann,
    train_snn,
)


def _cfg(**kw) -> TrainConfig:  # type: ignore[no-untyped-def]
    base = {"epochs": 1, "lr": 0.05, "optimizer": "sgd", "batch_size": 32, "device": "cpu", "progress": False}
    base.update(kw)
    return TrainConfig(**base)


# ----------------------------------------------------------------------------- conversion


def test_percentile_is_nearest_rank() -> None:
    v = torch.arange(1, 1001, dtype=torch.float32)
    assert _percentile(v, 99.9) == 999.0
    assert _percentile(v, 100) == 1000.0
    assert _percentile(v, 50) == 500.0
    assert _percentile(v.reshape(10, 10, 10), 10) == 100.0


def test_first_layer_threshold_is_percentile_of_input_current(small_digits_ann, digits_bundle) -> None:
    """Layer 0 sees the same analog input every step, so its threshold is exactly the
    percentile of conv0(x) over the balancing batch, times the scale."""
    tr, _ = make_loaders(digits_bundle, batch_size=64)
    tr.sampler.set_epoch(0)
    snn = convert_ann_to_snn(small_digits_ann, tr, timesteps=3, percentile=99.0, scale=0.5, max_samples=200)
    x = torch.cat([b[0] for _, b in zip(range(4), tr, strict=False)])[:200]
    with torch.no_grad():
        cur = small_digits_ann.synapses[0](x)
    expected = _percentile(cur, 99.0) * 0.5
    assert math.isclose(float(snn.threshold("conv1_lif").detach()), expected, rel_tol=1e-5)
    assert len(thresholds(snn)) == snn.num_layers - 1  # one per spiking population of the chain
    assert bool((thresholds(snn) > 0).all())
    # Weights are copied, the ANN is untouched, metadata carried over.
    for a, s in zip(small_digits_ann.synapses, snn.synapses, strict=True):
        assert torch.equal(a.weight, s.weight) and a.weight.data_ptr() != s.weight.data_ptr()
    assert snn.kind == "snn" and snn.timesteps == 3 and snn.dataset_info["name"] == "digits"
    assert snn.provenance["conversion"]["percentile"] == 99.0


def test_balancing_is_sequential(small_digits_ann, digits_bundle) -> None:
    """Layer 1's threshold depends on layer 0's (it is balanced on layer 0's spikes)."""
    tr, _ = make_loaders(digits_bundle, batch_size=128)
    snn = convert_ann_to_snn(small_digits_ann, tr, timesteps=4, max_samples=128)
    base = balance_thresholds(copy.deepcopy(snn), tr, 4, max_samples=128)
    assert base == pytest.approx(thresholds(snn).tolist())
    # Scale 2 on everything: layer 0 doubles exactly, later layers do not simply double
    # (fewer spikes from layer 0 feed them).
    doubled = balance_thresholds(copy.deepcopy(snn), tr, 4, scale=2.0, max_samples=128)
    assert doubled[0] == pytest.approx(2 * base[0], rel=1e-5)
    assert doubled[1] != pytest.approx(2 * base[1], rel=1e-3)


def test_converted_snn_agrees_with_ann_at_many_timesteps(small_digits_ann, digits_bundle) -> None:
    """With T=96, 99.9th percentile thresholds from the trained ANN, the SNN predicts the
    same class as the ANN on >= 90 % of the digits test set."""
    tr, te = make_loaders(digits_bundle, batch_size=128)
    ann_acc = evaluate(small_digits_ann, te)
    assert ann_acc >= 0.9
    snn = convert_ann_to_snn(small_digits_ann, tr, timesteps=96, percentile=99.9, scale=1.0, leak=1.0)
    x, _ = digits_bundle.test.tensors
    with torch.no_grad():
        a = small_digits_ann(x).argmax(1)
        s = snn(x).argmax(1)
    agreement = float((a == s).float().mean())
    assert agreement >= 0.9, agreement
    assert evaluate(snn, te) >= 0.88


def test_balance_rejects_bad_arguments(small_digits_ann, digits_bundle) -> None:
    tr, _ = make_loaders(digits_bundle, batch_size=64)
    snn = convert_ann_to_snn(small_digits_ann, tr, timesteps=2, max_samples=64)
    with pytest.raises(SnnsimError, match="percentile"):
        balance_thresholds(snn, tr, 2, percentile=0)
    with pytest.raises(SnnsimError, match="scale"):
        balance_thresholds(snn, tr, 2, scale=-1)
    with pytest.raises(SnnsimError, match="SNN"):
        balance_thresholds(small_digits_ann, tr, 2)
    with pytest.raises(SnnsimError, match="ANN"):
        convert_ann_to_snn(snn, tr, 2)


def test_resnet_conversion_folds_batchnorm_and_balances_every_population() -> None:
    """A residual graph: BN is folded into the conv biases, every LIF population gets a
    threshold, and the stem's is the percentile of the folded conv's current (its analog input)."""
    from snnsim.graph import build_graph

    ann = build_model(build_graph("digits-resnet"), kind="ann", seed=0)
    with torch.no_grad():
        ann["stem_bn"].running_mean.uniform_(-0.3, 0.3)
        ann["stem_bn"].running_var.uniform_(0.5, 2.0)
        ann["stem_bn"].weight.uniform_(0.5, 1.5)
    ann.eval()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 1, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g)
    snn = convert_ann_to_snn(ann, [(x, y)], timesteps=3, percentile=99.0, scale=0.5)
    assert not any("bn" in name for name in snn.graph.nodes)
    snn.check_simulable()
    with torch.no_grad():
        ref = ann["stem_bn"](ann["stem"](x))
        assert torch.allclose(snn["stem"](x), ref, atol=1e-5)
    assert math.isclose(float(snn.threshold("stem_lif").detach()), _percentile(ref, 99.0) * 0.5, rel_tol=1e-4)
    pops = spiking_pops(snn)
    assert pops == ["stem_lif", "s1b1_lif1", "s1b1_lif2", "s2b1_lif1", "s2b1_lif2"]
    assert snn.provenance["conversion"]["thresholds"] == pytest.approx(thresholds(snn).tolist())
    assert bool((thresholds(snn) > 1e-3).all()) and len(set(thresholds(snn).tolist())) == len(pops)
    with torch.no_grad():
        assert snn(x).shape == (32, 10)


# ----------------------------------------------------------------------------- gradients


def test_surrogate_gradient_reaches_every_layer_threshold_and_leak(tiny_spec, synthetic_bundle) -> None:
    snn = build_model(tiny_spec, kind="snn", timesteps=4, seed=0)
    tr, _ = make_loaders(synthetic_bundle, batch_size=64)
    snn_conv = balance_thresholds(snn, tr, 4, percentile=99.0, scale=0.5, max_samples=64)
    assert len(snn_conv) == 3
    x, y = next(iter(tr))
    snn.train()
    loss = F.cross_entropy(snn(x), y)
    loss.backward()
    for i, syn in enumerate(snn.synapses):
        assert syn.weight.grad is not None and float(syn.weight.grad.abs().sum()) > 0, f"layer {i}"
    pops = spiking_pops(snn)
    assert len(pops) == 3
    for pop in pops:
        th, lk = snn.threshold(pop), snn.leak(pop)
        assert th.grad is not None and bool((th.grad != 0).all()), pop
        assert lk.grad is not None and bool((lk.grad != 0).all()), pop


# ----------------------------------------------------------------------------- training loops


def test_train_snn_learns_and_keeps_leaks_in_range(tiny_spec, synthetic_bundle) -> None:
    ann = build_model(tiny_spec, kind="ann", seed=0)
    tr, te = make_loaders(synthetic_bundle, batch_size=32)
    hist = train_ann(ann, tr, te, _cfg(epochs=3, lr=1e-2, optimizer="adam"))
    assert [r["epoch"] for r in hist] == [1, 2, 3]
    assert hist[-1]["loss"] < hist[0]["loss"]
    neuron = ann.neuron_parameters()
    assert len(neuron) == 6 and all(p.requires_grad for p in neuron)  # restored after the ANN stage
    snn = convert_ann_to_snn(ann, tr, timesteps=3, scale=0.5, max_samples=128)
    set_leaks(snn, 0.999)
    before = evaluate(snn, te)
    hist = train_snn(snn, tr, te, _cfg(epochs=3, lr=5e-3, optimizer="adam"), timesteps=3)
    assert len(hist) == 3 and all(set(r) >= {"loss", "train_acc", "test_acc", "lr", "time_s"} for r in hist)
    assert bool(((leaks(snn) >= 0) & (leaks(snn) <= 1)).all())
    assert not torch.equal(leaks(snn), torch.full_like(leaks(snn), 0.999))  # the leaks were trained
    assert bool((thresholds(snn) > 0).all())
    assert hist[-1]["test_acc"] >= max(before - 0.05, 0.5)
    assert hist[-1]["test_acc"] == pytest.approx(evaluate(snn, te))


def test_lr_schedule_and_weight_decay_groups(tiny_spec, synthetic_bundle) -> None:
    snn = build_model(tiny_spec, kind="snn", timesteps=2, seed=0)
    tr, te = make_loaders(synthetic_bundle, batch_size=128)
    hist = train_snn(snn, tr, te, _cfg(epochs=3, lr=1e-3, optimizer="adam", lr_step=1, lr_gamma=0.5,
                                       weight_decay=1e-3))
    assert [r["lr"] for r in hist] == pytest.approx([1e-3, 5e-4, 2.5e-4])


def test_cosine_lr_schedule_anneals_within_the_stage(tiny_spec, synthetic_bundle) -> None:
    snn = build_model(tiny_spec, kind="snn", timesteps=2, seed=0)
    tr, te = make_loaders(synthetic_bundle, batch_size=128)
    hist = train_snn(snn, tr, te, _cfg(epochs=4, lr=1e-3, optimizer="adam", lr_schedule="cosine", lr_step=1))
    # lr_e = lr * (1 + cos(pi e / E)) / 2; lr_step is ignored under the cosine schedule
    assert [r["lr"] for r in hist] == pytest.approx([1e-3, 8.5355e-4, 5e-4, 1.4645e-4], rel=1e-4)


def test_resume_continues_bit_exactly(tmp_path: Path, tiny_spec, synthetic_bundle) -> None:
    """2 epochs in one go == 1 epoch, save, resume for the 2nd (ANN and SNN)."""
    tr, te = make_loaders(synthetic_bundle, batch_size=32)
    spec = tiny_spec.__class__(**{**tiny_spec.to_dict(), "dropout_conv": 0.2, "dropout_fc": 0.2})

    def run_ann(epochs: int, ckpt: Path | None, resume: bool, model=None):  # type: ignore[no-untyped-def]
        m = model or build_model(spec, kind="ann", seed=1)
        train_ann(m, tr, te, _cfg(epochs=epochs, lr=0.05, lr_step=1, lr_gamma=0.5, weight_decay=1e-4), ckpt, resume)
        return m

    full = run_ann(2, None, False)
    ck = tmp_path / "ann_last.pt"
    run_ann(1, ck, False)
    resumed = run_ann(2, ck, True)
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    assert read_checkpoint(ck)["extra"]["epoch"] == 2

    def run_snn(epochs: int, ckpt: Path | None, resume: bool):  # type: ignore[no-untyped-def]
        m = build_model(spec, kind="snn", timesteps=2, seed=2)
        train_snn(m, tr, te, _cfg(epochs=epochs, lr=1e-3, optimizer="adam", lr_step=1), None, ckpt, resume)
        return m

    full_s = run_snn(2, None, False)
    cks = tmp_path / "snn_last.pt"
    run_snn(1, cks, False)
    resumed_s = run_snn(2, cks, True)
    for k, v in full_s.state_dict().items():
        assert torch.equal(v, resumed_s.state_dict()[k]), k
    # A checkpoint of the other stage is refused with a one-line error.
    with pytest.raises(SnnsimError, match="not a resumable ann"):
        run_ann(3, cks, True)


def test_evaluate_noise_is_reproducible(small_digits_ann, digits_bundle) -> None:
    _, te = make_loaders(digits_bundle, batch_size=100)
    clean = evaluate(small_digits_ann, te)
    assert evaluate(small_digits_ann, te, noise_std=0.0) == clean
    n1 = evaluate(small_digits_ann, te, noise_std=1.5, noise_seed=3)
    assert n1 == evaluate(small_digits_ann, te, noise_std=1.5, noise_seed=3)
    assert n1 < clean


def test_config_validation() -> None:
    for bad in ({"epochs": -1}, {"lr": 0.0}, {"lr": float("nan")}, {"optimizer": "rmsprop"},
                {"lr_gamma": 0.0}, {"batch_size": 0}, {"weight_decay": -1.0}, {"lr_schedule": "linear"}):
        with pytest.raises(SnnsimError):
            _cfg(**bad).validate()


def test_divergence_is_a_one_line_error(tiny_spec, synthetic_bundle) -> None:
    ann = build_model(tiny_spec, kind="ann", seed=0)
    tr, te = make_loaders(synthetic_bundle, batch_size=32)
    with pytest.raises(SnnsimError, match="diverged"):
        train_ann(ann, tr, te, _cfg(epochs=1, lr=1e12))


# ----------------------------------------------------------------------------- hybrid pipeline


def test_hybrid_train_writes_models_and_resumes(tmp_path: Path, tiny_spec, synthetic_bundle) -> None:
    ann_cfg = _cfg(epochs=2, lr=1e-2, optimizer="adam")
    snn_cfg = _cfg(epochs=1, lr=1e-3, optimizer="adam")
    ann, snn, hist = hybrid_train(tiny_spec, synthetic_bundle, ann_cfg, snn_cfg, timesteps=3, scale=0.5,
                                  out_dir=tmp_path, command="test")
    for name in ("ann.pt", "snn.pt", "ann_last.pt", "snn_last.pt"):
        assert (tmp_path / name).exists(), name
    assert len(hist["ann"]) == 2 and len(hist["snn"]) == 1
    assert set(hist) >= {"conversion", "ann_test_acc", "conversion_test_acc", "snn_test_acc", "wall_s"}
    assert hist["ann_test_acc"] > 0.5
    saved = load_model(tmp_path / "snn.pt")
    assert saved.kind == "snn" and saved.timesteps == 3
    assert saved.provenance["accuracy"] == pytest.approx(hist["snn_test_acc"])
    assert saved.provenance["parent"].endswith("ann.pt") and saved.provenance["command"] == "test"
    assert saved.dataset_info["name"] == "synthetic"
    for k, v in snn.state_dict().items():
        assert torch.equal(v.cpu(), saved.state_dict()[k])
    # Resume after completion: nothing is retrained, the same SNN comes back.
    _, snn2, hist2 = hybrid_train(tiny_spec, synthetic_bundle, ann_cfg, snn_cfg, timesteps=3, scale=0.5,
                                  out_dir=tmp_path, resume=True)
    assert len(hist2["snn"]) == 1
    for k, v in snn.state_dict().items():
        assert torch.equal(v.cpu(), snn2.state_dict()[k].cpu())
    # Starting from a given ANN skips the ANN stage.
    _, _, hist3 = hybrid_train(tiny_spec, synthetic_bundle, ann_cfg, _cfg(epochs=0, lr=1e-3), timesteps=2,
                               ann=ann)
    assert hist3["ann"] == [] and hist3["snn"] == []


def test_hybrid_train_rejects_mismatched_data(tiny_spec, digits_bundle) -> None:
    with pytest.raises(SnnsimError, match="expects input"):
        hybrid_train(tiny_spec, digits_bundle, _cfg(), _cfg(), timesteps=2)
