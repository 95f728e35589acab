"""Interoperability with other SNN tools: NIR graphs in and out, spikes out as NIRData.

See :mod:`snnsim.interop.nir_io` and ``docs/interop.md``.
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

__all__ = ["DEFAULT_DT", "RESETS", "NirImport", "export_nir", "import_nir", "model_to_nir", "nir_to_model",
           "read_nir", "write_nirdata"]
