"""Statistics of a unit-indexed observable that are identifiable across chains.

The posterior of a network is invariant under permutations of its hidden units and,
for an odd activation, under the flip (a_i, w_i) → (−a_i, −w_i); different chains
settle in different copies of these symmetries, so R̂ or ESS of one unit's value
(e.g. q_i = w_i·w*) across chains measures the symmetry, not convergence. Averages
over the units of even functions are invariant under both, and are what
`experiments.reporting.report` diagnoses for such observables.
"""
from __future__ import annotations

import numpy as np


def unit_symmetric_statistics(samples, axis: int = 2) -> dict[str, np.ndarray]:
    """The unit averages of the module docstring, per draw d of every chain:

        mean_square_d = (1/N) Σ_i x_{d,i}²,   mean_abs_d = (1/N) Σ_i |x_{d,i}|.

    ``samples``: (chain, draw, ...) with the unit axis at ``axis``
    (≥ 2); returns arrays (chain, draw, ...) with that axis removed, float64.
    """
    values = np.asarray(samples, dtype=np.float64)
    if axis < 2 or axis >= values.ndim:
        raise ValueError(f"the unit axis must be one of the trailing axes 2..{values.ndim - 1}, "
                         f"got {axis}")
    return {"mean_square": np.mean(values**2, axis=axis),
            "mean_abs": np.mean(np.abs(values), axis=axis)}
