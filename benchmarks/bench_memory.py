"""Peak memory (and wall time) of ``snnsim trace`` and ``snnsim estimate`` on a VGG16 (or
``--arch resnet19``) x N trace.

The issue's target: ``snnsim estimate`` on 1,000 VGG16 samples stays below 2 GiB, because the
trace is streamed (memory-mapped, replayed in sample chunks), never held in RAM at once.

Each measured step runs in a **fresh subprocess** whose peak resident set size is read with
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` (read by a tiny wrapper interpreter per step,
so every step has its own figure; the same quantity ``/usr/bin/time -v`` prints as "Maximum
resident set size"); with ``--time-v`` the steps also run under ``/usr/bin/time -v`` and both
figures are shown. Steps:

1. ``record``: ``record_trace`` of N CIFAR-shaped synthetic samples through a VGG16 with random
   realistic weights (the checkpoint comes from ``benchmarks/common.py``, cached in --work-dir);
   with ``--event`` also ``record_trace(engine='event')``;
2. ``estimate``: the real CLI, ``python -m snnsim estimate --model CKPT --trace DIR --hw 45nm
   --out OUT`` (counting='snnsim'), then the same with ``--counting neurobench``, and optionally
   ``--functional float`` (event-by-event run of every sample; slow: ~0.1 s/sample/core).
3. a baseline: the same interpreter importing torch+snnsim and loading the checkpoint, doing
   nothing else (what any run of this model pays before replaying anything).

Examples::

    python benchmarks/bench_memory.py --samples 1000               # the issue's target
    python benchmarks/bench_memory.py --samples 64 --functional     # quick, with a functional run
"""

from __future__ import annotations

import os

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # see bench_kernels.py

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe_machine, fmt_table, load_average  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_RECORD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(int(sys.argv[5]))
from common import cached_vgg, cifar_like_inputs
from snnsim.recording import record_trace
from pathlib import Path
model = cached_vgg(Path(sys.argv[2]), sys.argv[8], int(sys.argv[6]))
n = int(sys.argv[4])
x = cifar_like_inputs(n, seed=1, shape=tuple(model.input_shape))
t0 = time.perf_counter()
tr = record_trace(model, x, sys.argv[3], batch_size=64, labels=(torch.arange(n) % 10).numpy(), progress=False,
                  engine=sys.argv[7])
print("RESULT", time.perf_counter() - t0, tr.describe())
"""

_BASELINE = r"""
import sys, torch
from snnsim.checkpoint import load_model
m = load_model(sys.argv[1])
print("RESULT loaded", sum(p.numel() for p in m.parameters()))
"""


_WRAP = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
         "print('WRAPPED_MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
         "sys.exit(r.returncode)")


def run_measured(cmd: list[str], time_v: bool, env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd`` in a fresh child; return its wall time, peak RSS (MiB) and output.

    The child is started by a tiny wrapper interpreter that reports its own
    ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` afterwards, so every step gets its own figure (the
    wrapper's own ~10 MiB is not included: it is not its own child).
    """
    inner = (["/usr/bin/time", "-v"] + cmd) if time_v and Path("/usr/bin/time").exists() else cmd
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WRAP, *inner], capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"rc": proc.returncode, "wall_s": wall, "stdout": proc.stdout, "stderr": proc.stderr}
    m = re.search(r"WRAPPED_MAXRSS_KB (\d+)", proc.stderr)
    out["rusage_mib"] = int(m.group(1)) / 1024 if m else None
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    out["time_v_mib"] = int(m.group(1)) / 1024 if m else None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        print(f"  command failed (rc {proc.returncode}): {' '.join(cmd)}\n    " + "\n    ".join(tail))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="See benchmarks/README.md.")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--timesteps", type=int, default=5)
    p.add_argument("--work-dir", default="/tmp/snnsim-bench")
    p.add_argument("--arch", default="vgg16", help="network with random realistic weights (vgg16, resnet19, ...)")
    p.add_argument("--model", default=None, help="checkpoint (default: cached random realistic --arch in --work-dir)")
    p.add_argument("--trace", default=None, help="use this recorded trace instead of recording one")
    p.add_argument("--threads", type=int, default=1, help="torch threads for recording")
    p.add_argument("--functional", action="store_true", help="also measure `estimate --functional float`")
    p.add_argument("--time-v", action="store_true", help="also run each step under /usr/bin/time -v")
    p.add_argument("--keep-trace", action="store_true", help="keep the recorded trace in --work-dir")
    p.add_argument("--event", action="store_true", help="also record the trace with the event-driven engine")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    print(describe_machine())
    print(f"command: {' '.join(sys.argv)}")
    ckpt = Path(args.model) if args.model else work / f"{args.arch}_T{args.timesteps}_seed0_v2.pt"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    rows: list[dict[str, Any]] = []

    def add(step: str, res: dict[str, Any], note: str = "") -> None:
        peak = res["time_v_mib"] or res["rusage_mib"]
        rows.append({"step": step, "rc": res["rc"], "wall s": f"{res['wall_s']:.1f}",
                     "peak RSS MiB (getrusage)": f"{res['rusage_mib']:.0f}" if res["rusage_mib"] else "?",
                     "peak RSS MiB (time -v)": f"{res['time_v_mib']:.0f}" if res["time_v_mib"] else "-",
                     "< 2 GiB": ("yes" if peak < 2048 else "NO") if peak else "?", "note": note,
                     "load": load_average()})

    if not ckpt.is_file():
        print(f"creating {ckpt} (calibrating thresholds, a few minutes)")
        sys.path.insert(0, str(HERE))
        from common import cached_vgg

        cached_vgg(ckpt, args.arch, args.timesteps)
    res = run_measured([sys.executable, "-c", _BASELINE, str(ckpt)], args.time_v, env)
    add("baseline: import + load checkpoint", res)

    trace_dir = Path(args.trace) if args.trace else work / f"mem-trace-{args.arch}-{args.samples}"
    if args.trace is None:
        res = run_measured([sys.executable, "-c", _RECORD, str(HERE), str(ckpt), str(trace_dir), str(args.samples),
                            str(args.threads), str(args.timesteps), "torch", args.arch], args.time_v, env)
        add(f"record_trace {args.samples} samples", res, "batch 64; arrays written through open_memmap")
        if res["rc"] != 0:
            print(fmt_table(rows))
            return 1
    if args.event:
        ev_dir = work / f"mem-trace-{args.arch}-{args.samples}-event"
        res = run_measured([sys.executable, "-c", _RECORD, str(HERE), str(ckpt), str(ev_dir), str(args.samples),
                            str(args.threads), str(args.timesteps), "event", args.arch], args.time_v, env)
        add(f"record_trace --engine event, {args.samples} samples", res, "batch 64 (16-sample sub-batches)")
        shutil.rmtree(ev_dir, ignore_errors=True)
    size = sum(f.stat().st_size for f in trace_dir.iterdir())
    print(f"trace {trace_dir}: {size / 2**20:.1f} MiB on disk")

    cli = [sys.executable, "-m", "snnsim", "estimate", "--model", str(ckpt), "--trace", str(trace_dir), "--hw", "45nm"]
    variants = [("estimate (counting snnsim)", []), ("estimate --counting neurobench", ["--counting", "neurobench"])]
    if args.functional:
        variants.append(("estimate --functional float", ["--functional", "float"]))
    for name, extra in variants:
        out_dir = work / ("mem-report-" + re.sub(r"[^a-z]+", "-", name))
        res = run_measured(cli + extra + ["--out", str(out_dir)], args.time_v, env)
        add(name, res, f"{args.samples} samples, trace {size / 2**20:.0f} MiB")
        shutil.rmtree(out_dir, ignore_errors=True)
    print("\n" + fmt_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.trace is None and not args.keep_trace:
        shutil.rmtree(trace_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
