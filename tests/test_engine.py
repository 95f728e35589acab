"""The event-driven trace engine: the same spikes, logits and counts as PyTorch's forward pass
(up to float32 rounding flips, of which these small models have none), a valid trace on disk,
and its CLI/cache wiring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from sim_testutil import AVG_FC, MIXED, digits_model, inputs, spiking_model

from snnsim.cli import cli
from snnsim.errors import TraceError
from snnsim.recording import record_trace
from snnsim.sim import kernels as K
from snnsim.sim import replay
from snnsim.sim.engine import event_forward
from snnsim.sim.replay import layer_plans, layer_values
from snnsim.trace import load_trace
from snnsim.trace_cache import trace_cache_dir


def _bits(trace, layer: int) -> np.ndarray:
    return np.unpackbits(np.asarray(trace.events(layer)), axis=2)


@pytest.mark.parametrize("spec", [MIXED, AVG_FC], ids=["mixed", "avg-into-fc"])
def test_event_engine_trace_equals_the_torch_trace(tmp_path: Path, spec) -> None:
    model = spiking_model(spec, timesteps=5, prune=0.2)
    x = inputs(spec, 12, seed=3)
    labels = np.arange(12) % spec.num_classes
    a = record_trace(model, x, tmp_path / "torch", labels=labels, progress=False)
    b = record_trace(model, x, tmp_path / "event", labels=labels, progress=False, engine="event", batch_size=5)
    assert a.meta["engine"] == "torch" and b.meta["engine"] == "event"
    total = 0
    for li in range(1, len(model.layer_infos)):
        np.testing.assert_array_equal(_bits(a, li), _bits(b, li))
        total += int(_bits(a, li).sum())
    assert total > 0  # the model spikes: the comparison is not vacuous
    np.testing.assert_array_equal(np.asarray(a.spike_counts()), np.asarray(b.spike_counts()))
    np.testing.assert_allclose(a.logits(), b.logits(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(a.predictions, b.predictions)
    np.testing.assert_array_equal(np.asarray(a.analog_input()), np.asarray(b.analog_input()))
    # and so the counts replayed from either trace are the same
    ca, cb = replay(a, model, progress=False), replay(b, model, progress=False)
    np.testing.assert_array_equal(ca.syn_ops, cb.syn_ops)
    np.testing.assert_array_equal(ca.spikes_out, cb.spikes_out)


def test_event_forward_on_the_trained_digits_model(tmp_path: Path) -> None:
    model, x, _, _ = digits_model(tmp_path)
    events, logits = event_forward(model, x.numpy(), model.timesteps)
    spikes: dict[str, list[torch.Tensor]] = {}

    def obs(ev) -> None:  # each spiking population's spikes at step t, steps in order
        if ev.spikes is not None:
            spikes.setdefault(ev.node, []).append((ev.spikes != 0).reshape(x.shape[0], -1))

    with torch.no_grad():
        ref_logits = model.forward_snn(x, model.timesteps, obs)
    assert isinstance(events, dict)
    assert list(events) == [p.name for p in model.populations if p.spiking] == list(spikes)
    assert len(events) == len(model.layer_infos) - 1  # a VGG chain: one LIF population per hidden layer
    total = 0
    for name, packed in events.items():
        want = torch.stack(spikes[name], dim=1).numpy().astype(np.uint8)
        assert packed.shape == (x.shape[0], model.timesteps, (want.shape[2] + 7) // 8)
        got = np.unpackbits(packed, axis=2, count=want.shape[2])
        assert got.shape == want.shape
        assert int((got != want).sum()) == 0, f"population {name}: spike trains differ"
        total += int(want.sum())
    assert total > 0
    np.testing.assert_allclose(logits, ref_logits.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(logits.argmax(axis=1), ref_logits.argmax(dim=1).numpy())
    # sub-batches change nothing: every sample is simulated on its own
    events_7, logits_7 = event_forward(model, x.numpy(), model.timesteps, sub_batch=7)
    assert list(events_7) == list(events)
    for name in events:
        np.testing.assert_array_equal(events[name], events_7[name])
    np.testing.assert_array_equal(logits, logits_7)


def test_all_steps_scatter_is_bit_identical_to_per_step() -> None:
    """One pass over every timestep's events gives the same floats as one pass per step."""
    model = spiking_model(MIXED, timesteps=4, prune=0.2)
    x = inputs(MIXED, 6, seed=9)
    plans = layer_plans(model)
    prev = None
    for li, plan in enumerate(plans):
        vals = layer_values(plan, prev, x.numpy().reshape(6, 1, -1) if li == 0 else None, "float", None)
        wt = plan.transposed(plan.weight)
        pop = plan.info.target  # a VGG chain: layer li alone drives population li
        leak = np.float32(model.leak(pop).item()) if plan.info.spiking else np.float32(1.0)
        theta = np.float32(model.threshold(pop).item()) if plan.info.spiking else np.float32(1.0)
        args = (vals, 4, wt, plan.is_conv, plan.cp, plan.hp, plan.wp, plan.c_out, plan.h_out, plan.w_out,
                plan.ksize, plan.stride, plan.padding, plan.info.spiking, leak, theta, None, True)
        one = K.functional_layer(*args, False)
        every = K.functional_layer(*args, True)
        for p, q in zip(one, every, strict=True):
            np.testing.assert_array_equal(p, q)
        prev = one[0]


def test_unknown_engine_is_refused(tmp_path: Path) -> None:
    model = spiking_model(MIXED)
    with pytest.raises(TraceError, match="unknown trace engine"):
        record_trace(model, inputs(MIXED, 2), tmp_path / "t", engine="gpu", progress=False)
    assert not (tmp_path / "t").exists()


def test_cli_trace_and_estimate_with_the_event_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from snnsim.checkpoint import save_model

    model, _, _, _ = digits_model(tmp_path)
    ckpt = tmp_path / "m.pt"
    save_model(model, ckpt)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(cli, ["trace", "--model", str(ckpt), "--samples", "40", "--engine", "event", "--out", "tr"])
    assert res.exit_code == 0, res.output
    tr = load_trace(tmp_path / "tr")
    assert tr.meta["engine"] == "event" and tr.samples == 40
    assert "event engine" in res.output
    res = runner.invoke(cli, ["estimate", "--model", str(ckpt), "--samples", "40", "--engine", "event",
                               "--out", "rep"])
    assert res.exit_code == 0, res.output
    cached = [p.name for p in (tmp_path / "traces").iterdir()]
    assert cached == [trace_cache_dir(model, "digits", engine="event").name] and cached[0].endswith("-event")
    assert "-40-" not in cached[0]  # the cache key holds no sample count
    assert (tmp_path / "rep" / "summary.csv").is_file()
    cached_trace = load_trace(tmp_path / "traces" / cached[0])
    assert cached_trace.meta["engine"] == "event" and cached_trace.samples == 40
