"""DistributedDataParallel: two CPU processes (gloo) under torchrun end with identical models."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    from snnsim.arch import ArchSpec
    from snnsim.data import make_synthetic
    from snnsim.training import (TrainConfig, cleanup_distributed, hybrid_train, init_distributed,
                                 rank, world_size)

    out = sys.argv[1]
    dev = init_distributed("cpu")
    assert world_size() == 2, world_size()
    torch.manual_seed(1234 + rank())  # different local RNG per rank: DDP must still agree
    spec = ArchSpec("tiny", (8, "A", 16, "A"), (32,), (1, 8, 8), 4)
    bundle = make_synthetic(128, 64, (1, 8, 8), 4, seed=0)
    ann_cfg = TrainConfig(epochs=2, lr=0.05, optimizer="sgd", batch_size=16, device="cpu", seed=0, progress=False)
    snn_cfg = TrainConfig(epochs=1, lr=1e-3, optimizer="adam", batch_size=16, device="cpu", seed=0, progress=False)
    ann, snn, hist = hybrid_train(spec, bundle, ann_cfg, snn_cfg, timesteps=3, scale=0.5,
                                  out_dir=os.path.join(out, "run"))
    torch.save({"ann": ann.state_dict(), "snn": snn.state_dict(), "hist": hist}, os.path.join(out, f"rank{rank()}.pt"))
    cleanup_distributed()
    """
)


def test_two_rank_ddp_gives_identical_weights(tmp_path: Path) -> None:
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    script = tmp_path / "ddp_job.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    # --standalone: rendezvous on a free localhost port chosen by torchrun itself.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=280, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=False)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=False)
    for stage in ("ann", "snn"):
        for k, v in r0[stage].items():
            assert torch.equal(v, r1[stage][k]), (stage, k)
    # Thresholds and leaks were trained (moved from their converted/initial values) and agree.
    # (state keys ``<population>.threshold`` / ``.leak``, in schedule order)
    pops = ["conv1_lif", "conv2_lif", "fc1_lif"]
    assert [k for k in r0["snn"] if k.endswith(".threshold")] == [f"{p}.threshold" for p in pops]
    trained_th = torch.cat([r0["snn"][f"{p}.threshold"] for p in pops])
    trained_leak = torch.cat([r0["snn"][f"{p}.leak"] for p in pops])
    conv = r0["hist"]["conversion"]["thresholds"]
    assert len(conv) == len(pops)
    assert not torch.allclose(trained_th, torch.tensor(conv))
    assert not torch.allclose(trained_leak, torch.full_like(trained_leak, 0.9901))
    # Both ranks report the same (all-reduced) accuracies.
    assert r0["hist"]["snn_test_acc"] == r1["hist"]["snn_test_acc"]
    assert r0["hist"]["ann"] and [h["test_acc"] for h in r0["hist"]["ann"]] == [h["test_acc"] for h in r1["hist"]["ann"]]
    # Only rank 0 wrote the run files, and they hold rank 0's final weights.
    from snnsim.checkpoint import load_model

    saved = load_model(tmp_path / "run" / "snn.pt")
    for k, v in r0["snn"].items():
        assert torch.equal(v, saved.state_dict()[k])
    leftovers = [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]
    assert leftovers == []
