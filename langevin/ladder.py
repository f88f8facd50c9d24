"""Temperature ladders of replica exchange and their adaptation (Syed et al. 2021).

A ladder is a strictly increasing sequence of R rung values s_0 < … < s_{R−1} (noise
variances σ² = τ, or temperatures T); the tempered energy of rung r is β_r E with
β_r = 1/s_r (`langevin.tempering`).

Adaptation toward equal swap-rejection rates (Syed, Bouchard-Côté, Deligiannidis,
Doucet, "Non-reversible parallel tempering: a scalable highly parallel MCMC scheme",
J. R. Stat. Soc. B 84(2), 321–350 (2022), arXiv:1905.02939, Sec. 5.1–5.3): the
rejection rate of the pair (β_r, β_{r+1}) is r_r ≈ ∫_{β_{r+1}}^{β_r} λ(β) dβ, with λ the
local communication barrier. The cumulative barrier Λ(β) is estimated as the piecewise-
linear function through (β_r, Σ_{r'<r} r_{r'}); the new ladder keeps both ends and puts
the inner rungs where Λ takes the equally spaced values Λ_total·r/(R−1), so that every
pair has the same rejection rate Λ_total/(R−1) (to first order). The round-trip rate of
non-reversible PT is then 1/(2 + 2Λ_total) at large R (their Thm. 3).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

# Pairs that never rejected get this small rate, so Λ stays strictly increasing and the
# inverse interpolation is defined (a pair with no rejections is merged, not split).
MIN_REJECTION_RATE = 1e-3


def validate_ladder(values: Sequence[float], name: str = "ladder") -> np.ndarray:
    """The rung values as float64, after checking: ≥ 2 finite, positive, strictly increasing."""
    array = np.asarray(list(values), dtype=np.float64)
    if array.ndim != 1 or array.size < 2:
        raise ValueError(f"{name} needs at least 2 rungs, got {list(values)!r}")
    if not (np.all(np.isfinite(array)) and np.all(array > 0)):
        raise ValueError(f"{name} values must be finite and positive, got {list(values)!r}")
    if not np.all(np.diff(array) > 0):
        raise ValueError(f"{name} values must be strictly increasing, got {list(values)!r}")
    return array


def geometric_ladder(minimum: float, maximum: float, rungs: int) -> np.ndarray:
    """s_r = s_min (s_max/s_min)^{r/(R−1)}, r = 0..R−1 (equal ratios between neighbours)."""
    if not (rungs >= 2 and minimum > 0 and maximum > minimum and math.isfinite(maximum)):
        raise ValueError(f"a geometric ladder needs rungs >= 2 and 0 < min < max, got "
                         f"min={minimum!r}, max={maximum!r}, rungs={rungs!r}")
    return minimum * (maximum / minimum) ** (np.arange(rungs) / (rungs - 1))


def communication_barrier(rejection_rates: Sequence[float]) -> np.ndarray:
    """Λ at the rungs: Λ_0 = 0, Λ_{r+1} = Λ_r + rejection rate of pair (r, r+1)."""
    rates = np.maximum(np.asarray(rejection_rates, dtype=np.float64), MIN_REJECTION_RATE)
    return np.concatenate([[0.0], np.cumsum(rates)])


def equalized_ladder(values: Sequence[float], rejection_rates: Sequence[float]) -> np.ndarray:
    """The ladder with the same ends whose pairs have equal estimated rejection rates.

    `values`: the current rung values s_r (increasing), `rejection_rates`: the measured
    1 − (mean acceptance probability) of each neighbouring pair (R − 1 values). Λ is
    interpolated linearly in β = 1/s between the rungs (module docstring).
    """
    values = validate_ladder(values)
    rates = np.asarray(rejection_rates, dtype=np.float64)
    if rates.shape != (values.size - 1,) or not np.all(np.isfinite(rates)):
        raise ValueError(f"need {values.size - 1} finite rejection rates, got {rates!r}")
    beta = 1.0 / values  # decreasing along the ladder
    barrier = communication_barrier(rates)  # increasing along the ladder
    targets = barrier[-1] * np.arange(values.size) / (values.size - 1)
    new_beta = np.interp(targets, barrier, beta)  # Λ increasing: a valid abscissa
    new_beta[0], new_beta[-1] = beta[0], beta[-1]
    return 1.0 / new_beta
