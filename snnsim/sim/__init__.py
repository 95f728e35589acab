"""Event-driven SNN simulator: numba kernels, trace replay, counting profiles.

* :func:`replay` (``snnsim.sim.replay``): trace + model -> :class:`SimCounts`;
* ``snnsim.sim.kernels``: the numba kernels, ``snnsim.sim.reference`` their plain references;
* ``snnsim.sim.neurobench``: the NeuroBench-2.3-compatible counting profile;
* ``snnsim.sim.integer``: integer semantics of quantized models and their PyTorch reference.
"""

from __future__ import annotations

from snnsim.sim.replay import FunctionalResult, SimCounts, layer_plans, replay

__all__ = ["FunctionalResult", "SimCounts", "layer_plans", "replay"]
