"""snnsim: hardware-aware energy and latency simulator for spiking neural networks.

Data flow: data -> models -> training/compression -> trace recording -> trace files ->
simulator (numba kernels) + hardware config -> results -> reports.

The public API is imported lazily so that ``import snnsim`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "ArchSpec": "snnsim.arch",
    "make_arch": "snnsim.arch",
    "SpikingNet": "snnsim.models",
    "build_model": "snnsim.models",
    "load_model": "snnsim.checkpoint",
    "save_model": "snnsim.checkpoint",
    "load_hw": "snnsim.hw",
    "record_trace": "snnsim.recording",
    "load_trace": "snnsim.trace",
    "estimate": "snnsim.estimation",
    "SnnsimError": "snnsim.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'snnsim' has no attribute {name!r}")
