"""Self-describing model checkpoints: one ``.pt`` file rebuilds the model with no user code.

Contents (``format: snnsim-model``, ``format_version``):

* ``arch`` – the :class:`~snnsim.arch.ArchSpec` as a dict; ``kind`` (ann/snn); ``timesteps``;
* ``state_dict`` – synaptic weights, thresholds and leaks (float32, bit-exact round trip);
* ``quantization`` – ``None`` or ``{bits, scheme, scales, int_weights}`` (integer weights and
  per-layer scale, so the simulator can run integer arithmetic);
* ``dataset`` – name, normalisation mean/std, input shape, classes;
* ``provenance`` – command, seed, accuracy, creation time, snnsim version, parent checkpoint.

Loading never unpickles arbitrary objects (``weights_only=True``).
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import torch

from snnsim.arch import ArchSpec
from snnsim.errors import CheckpointError, SnnsimError
from snnsim.io import atomic_path
from snnsim.models import SpikingNet

FORMAT_NAME = "snnsim-model"
FORMAT_VERSION = 1


def _version() -> str:
    from snnsim import __version__

    return __version__


def checkpoint_dict(model: SpikingNet, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plain-dict checkpoint of ``model`` (tensors on CPU)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    prov = dict(model.provenance)
    prov.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    prov.setdefault("snnsim_version", _version())
    prov.setdefault("command", " ".join(["snnsim", *sys.argv[1:]]) if sys.argv else "")
    ckpt: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "arch": model.spec.to_dict(),
        "kind": model.kind,
        "timesteps": int(model.timesteps),
        "state_dict": state,
        "quantization": model.quantization,
        "dataset": dict(model.dataset_info),
        "provenance": prov,
    }
    if extra:
        ckpt["extra"] = extra
    return ckpt


def save_model(model: SpikingNet, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
    """Save ``model`` atomically to ``path`` and return the path."""
    ckpt = checkpoint_dict(model, extra)
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a checkpoint dict; every failure is a one-line :class:`CheckpointError`."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"model file {str(p)!r} does not exist", "check the path, or train one with `snnsim train`")
    if p.is_dir():
        raise CheckpointError(f"model path {str(p)!r} is a directory", "pass the .pt file inside it")
    if p.stat().st_size == 0:
        raise CheckpointError(f"model file {str(p)!r} is empty", "re-save or re-train the model")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, EOFError, RuntimeError, OSError) as exc:
        with open(p, "rb") as fh:
            zip_magic = fh.read(4) == b"PK\x03\x04"  # torch.save's zip container; truncation loses the end
        kind = "truncated or corrupt" if zip_magic or zipfile.is_zipfile(p) or "zip" in str(exc).lower() else "not a PyTorch checkpoint"
        raise CheckpointError(f"model file {str(p)!r} is {kind} ({type(exc).__name__})", "re-save or re-train the model") from None
    except Exception as exc:  # pickle errors, unsupported globals, ...
        raise CheckpointError(f"model file {str(p)!r} cannot be read as an snnsim checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
                              "pass a file written by snnsim") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{str(p)!r} is a PyTorch file but not an snnsim model checkpoint",
                              "pass a file written by `snnsim train` / `snnsim.save_model`")
    version = ckpt.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{str(p)!r} has no valid format_version", "re-save the model with this snnsim")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{str(p)!r} is checkpoint format v{version}, newer than this snnsim supports (v{FORMAT_VERSION})",
                              "upgrade snnsim")
    for key in ("arch", "kind", "timesteps", "state_dict"):
        if key not in ckpt:
            raise CheckpointError(f"{str(p)!r} is missing the {key!r} entry", "re-save the model with snnsim")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], source: str = "checkpoint") -> SpikingNet:
    """Rebuild a :class:`SpikingNet` from a checkpoint dict."""
    try:
        spec = ArchSpec.from_dict(ckpt["arch"])
    except SnnsimError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{source}: architecture entry is malformed ({exc})", "re-save the model with snnsim") from None
    model = SpikingNet(spec, kind=ckpt["kind"], timesteps=int(ckpt["timesteps"]))
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:160]
        raise CheckpointError(f"{source}: weights do not match its architecture ({first})", "re-save the model with snnsim") from None
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{source}: tensor {name!r} contains NaN or Inf", "retrain, or restore an earlier checkpoint")
    model.quantization = ckpt.get("quantization")
    model.dataset_info = dict(ckpt.get("dataset") or {})
    model.provenance = dict(ckpt.get("provenance") or {})
    model.eval()
    return model


def load_model(path: str | os.PathLike[str]) -> SpikingNet:
    """Load an snnsim checkpoint and rebuild the model (eval mode, CPU)."""
    return model_from_checkpoint(read_checkpoint(path), source=repr(str(path)))
