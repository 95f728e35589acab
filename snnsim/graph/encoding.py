"""Input encoding: what the graph's Input node feeds the first synapses at each timestep.

``direct`` feeds the normalised sample itself at every timestep. ``poisson`` is the signed
Poisson rate code of the paper's line of work (paper.md sec. 2.3): at every timestep each
element spikes with probability ``min(|x|, 1)``, carrying the sign of ``x``, so the first layer
reads ternary events (-1, 0, +1) and its synapses accumulate instead of multiplying. With the
data sets' normalisation (mean 0.5, std 0.5) pixels lie in [-1, 1] already; a value beyond it
(e.g. after added noise) is clipped, since ``|x|`` is a probability (paper.md sec. 2.12).

The rule is written once, :func:`signed_poisson` (spikes from the values and uniform draws);
the backends differ only in where the draws come from:

* training and evaluation (:meth:`GraphNet.forward_snn <snnsim.graph.torch_net.GraphNet.forward_snn>`
  on a static batch): ``torch.rand`` of the global generator, which ``--seed`` seeds;
* a trace (:func:`poisson_steps`): one numpy generator per sample, seeded by ``(seed, sample
  index)``, so a sample's spikes do not depend on the batch size or on the samples before it,
  and a shorter run's spikes are a prefix of a longer one's. The recorded spikes are stored in
  the trace and fed to the PyTorch forward pass, the event engine and both functional
  replays, which therefore all see the same events.
"""

from __future__ import annotations

import numpy as np
import torch

from snnsim.graph.nodes import ENCODINGS

__all__ = ["ENCODINGS", "check_encoding", "poisson_steps", "signed_poisson"]


def signed_poisson(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Signed Poisson spikes of values ``x`` for uniform [0, 1) draws ``u`` of the same shape:
    ``sign(x)`` where ``u < min(|x|, 1)``, else 0 (``x``'s dtype)."""
    return torch.sign(x) * (u < x.abs().clamp(max=1.0)).to(x.dtype)


def poisson_steps(x: np.ndarray | torch.Tensor, steps: int, seed: int, first_index: int = 0) -> np.ndarray:
    """Signed Poisson spikes of a batch ``x`` [B, *shape] for ``steps`` timesteps -> int8
    [B, T, *shape]; sample ``b`` draws from ``numpy.random.default_rng([seed, first_index + b])``
    (module docstring)."""
    xs = torch.as_tensor(np.asarray(x, dtype=np.float32) if not isinstance(x, torch.Tensor) else x).float().cpu()
    out = np.empty((xs.shape[0], steps, *xs.shape[1:]), dtype=np.int8)
    for b in range(xs.shape[0]):
        rng = np.random.default_rng([int(seed), int(first_index) + b])
        u = torch.from_numpy(rng.random((steps, *xs.shape[1:]), dtype=np.float32))
        out[b] = signed_poisson(xs[b].unsqueeze(0).expand_as(u), u).numpy().astype(np.int8)
    return out


def check_encoding(encoding: str) -> str:
    """``encoding`` if it is one of :data:`ENCODINGS`, else a one-line error."""
    from snnsim.errors import SnnsimError

    if encoding not in ENCODINGS:
        raise SnnsimError(f"unknown input encoding {encoding!r}", f"choose one of {', '.join(ENCODINGS)}")
    return encoding
