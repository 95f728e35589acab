"""Interoperability with other SNN tools: NIR graphs in and out, spikes out as NIRData, and
PyTorch modules (snnTorch, SpikingJelly, plain ``nn.Module``) in.

See :mod:`snnsim.interop.nir_io`, :mod:`snnsim.interop.torch_import` and ``docs/interop.md``.
"""

from __future__ import annotations

from snnsim.interop.nir_io import (
    DEFAULT_DT,
    RESETS,
    NirImport,
    export_nir,
    import_nir,
    model_to_nir,
    nir_to_model,
    read_nir,
    write_nirdata,
)
from snnsim.interop.torch_import import SourceRunner, import_torch, module_to_model

__all__ = ["DEFAULT_DT", "RESETS", "NirImport", "export_nir", "import_nir", "model_to_nir", "nir_to_model",
           "read_nir", "write_nirdata", "SourceRunner", "import_torch", "module_to_model"]
