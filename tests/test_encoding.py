"""Input encoding and per-timestep inputs: the signed Poisson encoder, the trace's input spikes,
their counts (ACs equal input spikes x fan-out), every backend on the same events, and the
first-layer conventions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sim_testutil import AVG_FC, MIXED, inputs, quantize, spiking_model

from snnsim.checkpoint import load_model, save_model
from snnsim.cost import cost_report, layer_connections, resolve_first_layer
from snnsim.errors import SnnsimError, TraceError
from snnsim.graph.encoding import poisson_steps, signed_poisson
from snnsim.hw import load_hw
from snnsim.recording import record_trace
from snnsim.sim.integer import integer_forward, integer_spec
from snnsim.sim.reference import counts_ref
from snnsim.sim.replay import layer_plans, replay, simulate_chunk
from snnsim.trace import META_FILE, load_trace, meta_digest, model_fingerprint

T = 4


def _poisson_model(seed: int = 0):  # type: ignore[no-untyped-def]
    model = spiking_model(MIXED, seed=seed, timesteps=T, threshold=0.2)
    model.set_encoding("poisson")
    return model


# ---------------------------------------------------------------------------- the encoder
def test_signed_poisson_rule_and_clip() -> None:
    x = torch.tensor([-2.0, -0.5, 0.0, 0.25, 1.0, 3.0])
    u = torch.tensor([0.99, 0.49, 0.0, 0.26, 0.999, 0.5])
    np.testing.assert_array_equal(signed_poisson(x, u).numpy(), [-1, -1, 0, 0, 1, 1])
    # the spike rate is |x| (clipped at 1), the sign is x's
    big = torch.full((200_000,), -0.3)
    s = signed_poisson(big, torch.rand(big.shape, generator=torch.Generator().manual_seed(0)))
    assert set(np.unique(s.numpy())) <= {-1.0, 0.0}
    assert abs(float((s != 0).float().mean()) - 0.3) < 0.005


def test_poisson_steps_are_per_sample_and_prefix_stable() -> None:
    x = inputs(MIXED, 6, seed=1)
    whole = poisson_steps(x, 5, seed=7)
    assert whole.dtype == np.int8 and whole.shape == (6, 5, *MIXED.input_shape)
    # a sample's spikes do not depend on the batch it is in, and T=3 is a prefix of T=5
    np.testing.assert_array_equal(poisson_steps(x[3:], 5, seed=7, first_index=3), whole[3:])
    np.testing.assert_array_equal(poisson_steps(x, 3, seed=7), whole[:, :3])
    assert not np.array_equal(poisson_steps(x, 5, seed=8), whole)
    np.testing.assert_array_equal(np.abs(whole).max(axis=1) <= (x.numpy() != 0), True)


def test_encoding_is_in_the_graph_and_checkpoint(tmp_path: Path) -> None:
    direct = spiking_model(MIXED, timesteps=T, threshold=0.2)
    assert "encoding" not in direct.graph.to_dict()["nodes"][direct.graph.input]  # earlier graphs unchanged
    fp = model_fingerprint(direct)
    model = _poisson_model()
    assert model.encoding == "poisson" and model_fingerprint(model) != fp
    save_model(model, tmp_path / "p.pt")
    again = load_model(tmp_path / "p.pt")
    assert again.encoding == "poisson" and model_fingerprint(again) == model_fingerprint(model)
    again.set_encoding("direct")
    assert model_fingerprint(again) == fp
    with pytest.raises(SnnsimError, match="unknown input encoding"):
        again.set_encoding("rate")


def test_forward_draws_poisson_spikes_and_feeds_sequences_as_given() -> None:
    model = _poisson_model()
    x = inputs(MIXED, 3, seed=2)
    seen: list[torch.Tensor] = []
    layer0 = model.layer_infos[0].target

    def obs(ev) -> None:  # type: ignore[no-untyped-def]
        if ev.node == layer0:
            seen.append(ev.current)

    torch.manual_seed(0)
    with torch.no_grad():
        a = model.forward_snn(x, T)
        stream = torch.from_numpy(poisson_steps(x, T, seed=0).astype(np.float32))
        b = model.forward_snn(stream, T, obs)
        c = model.forward_snn(stream, T)
    torch.testing.assert_close(b, c, rtol=0, atol=0)  # a given sequence is not re-encoded
    assert not torch.equal(a, b)  # a static batch is encoded with fresh draws
    direct = model.layer_infos[0]
    w = model[direct.name].weight
    ref = torch.nn.functional.conv2d(stream[:, 1], w, padding=direct.padding)
    torch.testing.assert_close(seen[1], ref)  # step 1 read the stream's step 1


# ---------------------------------------------------------------------------- traces and counts
def test_poisson_trace_counts_backends_and_conventions(tmp_path: Path) -> None:
    model = _poisson_model()
    x = inputs(MIXED, 10, seed=3)
    tr = record_trace(model, x, tmp_path / "t", labels=np.arange(10) % 10, progress=False, seed=5)
    meta = tr.meta["input"]
    assert tr.encoding == "poisson" and tr.input_spikes and tr.input_per_timestep
    assert meta["dtype"] == "int8" and meta["shape"] == [10, T, *MIXED.input_shape]
    assert meta["encoder"] == {"kind": "poisson", "seed": 5}
    spikes = np.asarray(tr.analog_input())
    np.testing.assert_array_equal(spikes, poisson_steps(x, T, seed=5))

    counts = replay(tr, model, functional="float", progress=False)
    assert counts.input_kind == "spikes" and not counts.analog.any()
    assert counts.functional.spike_mismatches.sum() == 0  # float replay == PyTorch on the same events
    info = model.layer_infos[0]
    ref = counts_ref(info, model[info.name].weight, spikes.reshape(10 * T, *MIXED.input_shape), analog=True)
    np.testing.assert_array_equal(counts.syn_ops[0], ref["syn"].reshape(10, T).sum(axis=0))
    np.testing.assert_array_equal(counts.input_events[0], np.abs(spikes).reshape(10, T, -1).sum(axis=(0, 2)))

    ev = record_trace(model, x, tmp_path / "e", labels=np.arange(10) % 10, progress=False, seed=5, engine="event")
    for pop in model.populations:
        if pop.spiking:
            np.testing.assert_array_equal(np.asarray(ev.spikes(pop.name)), np.asarray(tr.spikes(pop.name)))

    hw = load_hw("45nm", compute_only=True)
    auto = cost_report(counts, hw)
    assert auto.summary["first_layer"] == "ac_with_input_rate"
    row0 = auto.snn.layers.iloc[0]
    assert row0["mac"] == 0 and row0["ac"] == pytest.approx(counts.syn_ops[0].sum() / 10)
    dense = cost_report(counts, hw, first_layer="mac_per_timestep").snn.layers.iloc[0]
    assert dense["ac"] == 0 and dense["mac"] == pytest.approx(T * layer_connections(model.layer_infos[0], "inbounds"))
    once = cost_report(counts, hw, first_layer="mac_once").snn.layers.iloc[0]
    assert once["mac"] == pytest.approx(layer_connections(model.layer_infos[0], "inbounds"))


def test_integer_replay_of_poisson_input_is_bit_exact(tmp_path: Path) -> None:
    model = quantize(_poisson_model(seed=1), 6)
    x = inputs(MIXED, 8, seed=4)
    tr = record_trace(model, x, tmp_path / "t", progress=False, seed=2)
    got = replay(tr, model, functional="integer", progress=False)
    spec = integer_spec(model, input_scale=1.0, timesteps=T)
    ref_u: dict = {}

    def obs(ev) -> None:  # type: ignore[no-untyped-def]
        ref_u[(ev.index, ev.t)] = ev.potential.clone()  # a chain: population k is driven by layer k

    acc = integer_forward(model, torch.from_numpy(np.asarray(tr.analog_input()).astype(np.float32)), spec, T, obs)
    res = simulate_chunk(layer_plans(model), next(tr.iter_chunks(8)), T, "integer", "chained", model, spec,
                         keep_potentials=True)
    assert res.potentials is not None
    for li in range(model.num_layers):
        for t in range(T):
            np.testing.assert_array_equal(res.potentials[li][:, t], ref_u[(li, t)].reshape(8, -1).numpy())
    np.testing.assert_array_equal(res.acc, acc.numpy())
    np.testing.assert_array_equal(np.argmax(acc.numpy(), axis=1), got.functional.predictions)


def test_sequence_input_equal_to_direct_when_repeated(tmp_path: Path) -> None:
    """[N, T, ...] frames that repeat the image give the direct trace's spikes and counts."""
    model = spiking_model(MIXED, timesteps=T)
    x = inputs(MIXED, 6, seed=5)
    a = record_trace(model, x, tmp_path / "a", progress=False)
    b = record_trace(model, x.unsqueeze(1).repeat(1, T, 1, 1, 1), tmp_path / "b", progress=False)
    assert b.input_per_timestep and not b.input_spikes and b.meta["input"]["dtype"] == "float32"
    for pop in model.populations:
        if pop.spiking:
            np.testing.assert_array_equal(np.asarray(a.spikes(pop.name)), np.asarray(b.spikes(pop.name)))
    ca, cb = replay(a, model, progress=False), replay(b, model, functional="float", progress=False)
    np.testing.assert_array_equal(ca.syn_ops, cb.syn_ops)
    assert cb.input_kind == "frames" and cb.analog[0] and cb.functional.spike_mismatches.sum() == 0
    with pytest.raises(SnnsimError, match="mac_once assumes"):
        resolve_first_layer("mac_once", cb)
    with pytest.raises(SnnsimError, match="ac_with_input_rate charges input spikes"):
        resolve_first_layer("ac_with_input_rate", ca)
    # ternary frames are spikes: stored as int8, costed as ACs
    s = record_trace(model, torch.sign(x).unsqueeze(1).repeat(1, T, 1, 1, 1), tmp_path / "s", progress=False)
    assert s.input_spikes and s.meta["input"]["dtype"] == "int8"
    assert resolve_first_layer("auto", replay(s, model, progress=False)) == "ac_with_input_rate"


def test_bad_sequences_and_tampered_meta_are_refused(tmp_path: Path) -> None:
    model = spiking_model(MIXED, timesteps=T)
    x = inputs(MIXED, 4, seed=6)
    with pytest.raises(TraceError, match="hold 3 timesteps per sample, the trace runs T=4"):
        record_trace(model, x.unsqueeze(1).repeat(1, 3, 1, 1, 1), tmp_path / "x", progress=False)
    model.set_encoding("poisson")
    with pytest.raises(TraceError, match="Poisson-encoded"):
        record_trace(model, x.unsqueeze(1).repeat(1, T, 1, 1, 1), tmp_path / "y", progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    record_trace(model, x, tmp_path / "t", progress=False)
    meta = json.loads((tmp_path / "t" / META_FILE).read_text())
    meta["input"]["encoder"] = None
    meta["meta_sha256"] = meta_digest(meta)
    (tmp_path / "t" / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(TraceError, match="Poisson-encoded model's input must be per-timestep spikes"):
        load_trace(tmp_path / "t")


def test_cli_encoding_option(tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    example = Path(__file__).resolve().parents[1] / "snnsim" / "examples" / "digits_pruned_T2.pt"
    code, out, err = run_cli("estimate", "--model", example, "--encoding", "poisson", "--samples", "16",
                             "--compute-only", "--out", tmp_path / "e", "--quiet", "--seed", "3")
    assert code == 0, err
    summary = (tmp_path / "e" / "summary.csv").read_text()
    assert "ac_with_input_rate" in summary
    traces = list((tmp_path / "traces").glob("*-p3"))
    assert traces, "the Poisson trace's cache name carries its encoder seed"
    code, out, err = run_cli("estimate", "--model", example, "--first-layer", "ac_with_input_rate", "--samples", "8",
                             "--out", tmp_path / "f", "--quiet")
    assert code == 2 and "direct encoding" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "f").exists()


def test_nir_round_trip_keeps_the_encoding(tmp_path: Path) -> None:
    from snnsim.interop.nir_io import export_nir, import_nir

    model = spiking_model(AVG_FC, timesteps=T)  # NIR has no max pooling
    model.set_encoding("poisson")
    warnings = export_nir(model, tmp_path / "p.nir")
    assert any("Poisson" in w for w in warnings)
    back = import_nir(tmp_path / "p.nir", timesteps=T)
    assert back.model.encoding == "poisson"


def test_a_trace_written_before_the_new_fields_still_loads(tmp_path: Path) -> None:
    """Format-v3 traces of the previous release lack input.spikes / input.encoder and the layers'
    parts / norm: they mean a direct input and plain layers, and load as such."""
    model = spiking_model(MIXED, timesteps=T)
    record_trace(model, inputs(MIXED, 3, seed=8), tmp_path / "t", progress=False)
    path = tmp_path / "t" / META_FILE
    meta = json.loads(path.read_text())
    for key in ("spikes", "encoder"):
        del meta["input"][key]
    for entry in meta["layers"]:
        del entry["parts"], entry["norm"]
    meta["meta_sha256"] = meta_digest(meta)
    path.write_text(json.dumps(meta))
    trace = load_trace(tmp_path / "t")
    assert not trace.input_spikes and not trace.input_per_timestep and trace.encoding == "direct"
    assert replay(trace, model, progress=False).input_kind == "analog"
