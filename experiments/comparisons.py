"""Sample-vs-theory comparisons attached to a run's summary (filled in per theory)."""
from __future__ import annotations

import xarray as xr

from experiments.data import DataSet


def compare_with_theory(config: dict, meta: dict, data: DataSet, ds: xr.Dataset) -> dict:
    """Every applicable theory prediction beside the sampled value with its MCSE."""
    return {}
