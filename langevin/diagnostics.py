"""Convergence diagnostics of MCMC draws: split-R̂, rank-normalized R̂, ESS, MCSE.

Cheap and vectorized, for live monitoring of thousands of scalar observables while a
run streams to disk; ArviZ gives the same numbers (tests/langevin/test_diagnostics.py
checks agreement to 1e-10) but loops in Python over every scalar.

Shapes. Every function takes ``samples`` of shape ``(chain, draw, *rest)`` and returns
an array of shape ``rest`` (a NumPy float64 scalar when ``rest`` is empty); each
element of ``rest`` is one scalar observable, treated independently. There is no
Python loop over observables: ranks, autocovariances (FFT along ``draw``) and Geyer's
truncation are computed for blocks of ~4·10⁶ draws of many observables at once
(which bounds memory). Inputs are cast to float64.

Cost (8 chains × 1000 draws, NumPy on one busy CPU core, per observable):
``split_rhat`` ≈ 0.1 ms, ``effective_sample_size(kind="mean")`` ≈ 0.5 ms (FFT, no
ranks), ``summarize`` ≈ 3 ms (two rankings, four ESS); ``arviz.summary(kind=
"diagnostics")`` without numba ≈ 6–8 ms. Monitor live with the first two; summarize
for the report.

Estimators (Vehtari, Gelman, Simpson, Carpenter, Bürkner 2021, "Rank-normalization,
folding, and localization: an improved R̂ for assessing convergence of MCMC",
Bayesian Analysis 16(2), hereafter VGSCB21; the implementation follows ArviZ 0.x
``arviz.stats.diagnostics``, detail for detail):

- Split chains: each chain is cut into its first and last ⌊D/2⌋ draws (for odd D the
  middle draw is dropped), giving M = 2C chains of N = ⌊D/2⌋ draws.
- Classic split-R̂ (BDA3 §11.4; VGSCB21): with W the mean within-chain
  variance and B = N·Var(chain means), R̂ = √(((N−1)/N·W + B/N)/W).
- Rank normalization (VGSCB21): z = Φ⁻¹((r − 3/8)/(S + 1/4)), r the average rank of a
  draw among all S = M·N split draws (Blom 1958 offsets).
- Rank-normalized split-R̂ (VGSCB21): max(bulk, tail), bulk = split-R̂ of the
  rank-normalized split draws, tail = the same for the folded draws |θ − median(θ)|,
  folded about the median of all draws, then split (VGSCB21, folding; ``arviz.summary``).
  ``arviz.rhat`` folds after splitting, about the median of the split draws; the two
  differ only for odd D (the dropped middle draw moves the median).
- ESS (VGSCB21; Geyer 1992, "Practical Markov chain Monte Carlo", Stat. Sci. 7(4),
  initial monotone sequence): ρ̂_t = 1 − (W − mean_chains acov_t)/var⁺ with
  var⁺ = (N−1)/N·W + B/N, acov_t the lag-t autocovariance of a chain (FFT, 1/N norm);
  τ̂ = −1 + 2 Σ_{t ≤ 2k−1} ρ̂_t + ρ̂_{2k}, summed over the initial positive pairs
  P_j = ρ̂_{2j} + ρ̂_{2j+1} > 0 made monotone (P_j ← min(P_j, P_{j−1})), with the
  search stopped at lag N − 3 as in ArviZ; τ̂ ≥ 1/log10(S); ESS = S/τ̂ (> S for
  antithetic chains, at most S·log10(S)).
  kind="mean": on split draws; "bulk": on rank-normalized split draws; "tail": the
  minimum of the ESS of the indicators I(θ ≤ q₀.₀₅) and I(θ ≤ q₀.₉₅), q the type-7
  (linear) quantiles of all draws (VGSCB21, tail-ESS).
- MCSE of the mean: sd/√ESS_mean, sd the ddof=1 standard deviation of all draws.

ArviZ ≥ 1.0 (arviz-stats) implements the same VGSCB21 estimators; agreement is
tested against ArviZ 0.x only.

Edge cases (documented, ArviZ-compatible unless said otherwise):
- fewer than 4 draws per chain, or non-finite values: ``ValueError`` naming the
  variable (``summarize``) and the first offending index;
- a single chain: split-R̂ is defined (two halves) and returned; ArviZ returns nan;
- all draws of an observable identical (range < 1e-15, ArviZ's threshold): R̂ = nan
  (0/0), ESS = S (the number of split draws, as ArviZ), MCSE = 0. Every chain constant
  but chains differing: R̂ = +inf (W = 0 < B).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import xarray as xr
from scipy import fft as scipy_fft
from scipy import special

ESS_KINDS = ("bulk", "tail", "mean")  # the keys of _ESS_CORES
SUMMARY_STATISTICS = ("mean", "sd", "mcse_mean", "ess_bulk", "ess_tail", "r_hat")

# Fewer than 4 draws leaves split halves of < 2 draws: no within-chain variance.
_MIN_DRAWS = 4
# Blom (1958) offset of the rank-normalizing transform (VGSCB21; ArviZ).
_BLOM_OFFSET = 3.0 / 8.0
# Tail-ESS quantiles (VGSCB21, tail-ESS; ArviZ's default prob=(0.05, 0.95)).
_TAIL_PROBABILITIES = (0.05, 0.95)
# Draws processed at once (observables × chains × draws): 32 MB of float64 per block.
_BLOCK_ELEMENTS = 2**22


def _as_draws(samples, name: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """Validate; return float64 draws laid out ``(K, chain, draw)`` and ``rest``.

    Observable-major and C-contiguous, so that sorts, ranks and FFTs run along
    contiguous rows (several times faster than along a strided leading axis).
    """
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim < 2:
        raise ValueError(f"{name}: expected shape (chain, draw, ...), got {array.shape}")
    num_chains, num_draws = array.shape[:2]
    if num_chains < 1:
        raise ValueError(f"{name}: at least one chain is needed, got shape {array.shape}")
    if num_draws < _MIN_DRAWS:
        raise ValueError(
            f"{name}: at least {_MIN_DRAWS} draws per chain are needed (split halves "
            f"must hold 2 draws each), got {num_draws}"
        )
    finite = np.isfinite(array)
    if not finite.all():
        first_bad = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{name}: {int((~finite).sum())} non-finite value(s), the first at index "
            f"(chain, draw, ...) = {first_bad}"
        )
    rest = array.shape[2:]
    flat = array.reshape(num_chains, num_draws, math.prod(rest))
    return np.ascontiguousarray(np.moveaxis(flat, 2, 0)), rest


def _pooled(draws: np.ndarray) -> np.ndarray:
    """(K, M, N) -> (K, M·N): all draws of each observable in one row."""
    return draws.reshape(draws.shape[0], draws.shape[1] * draws.shape[2])


def _split_chains(draws: np.ndarray) -> np.ndarray:
    """(K, C, D) -> (K, 2C, ⌊D/2⌋): first and last halves; odd D drops the middle."""
    half = draws.shape[2] // 2
    return np.concatenate([draws[:, :, :half], draws[:, :, draws.shape[2] - half :]], axis=1)


def _fold(draws: np.ndarray) -> np.ndarray:
    """|θ − median(θ)|, the median over all chains and draws (VGSCB21, folding)."""
    return np.abs(draws - np.median(_pooled(draws), axis=1)[:, None, None])


def _z_scale(draws: np.ndarray) -> np.ndarray:
    """Rank-normalize (VGSCB21): z = Φ⁻¹((r − 3/8)/(S + 1/4)).

    r is the rank of a draw among the S draws of its observable, ties given their
    average rank (scipy's rankdata "average", as ArviZ). 2r is an integer in 2…2S, so
    Φ⁻¹ is evaluated once per possible value and looked up, bitwise equal to
    evaluating it per draw.
    """
    pooled = _pooled(draws)
    size = pooled.shape[1]
    order = np.argsort(pooled, axis=1)
    ordered = np.take_along_axis(pooled, order, axis=1)
    position = np.arange(size)
    starts = np.ones(pooled.shape, dtype=bool)  # a tie group starts at this position
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = np.ones(pooled.shape, dtype=bool)  # a tie group ends at this position
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, position, size)[:, ::-1], axis=1)[:, ::-1]
    # A tie group on sorted positions first…last (0-based) has average rank
    # r = (first + last)/2 + 1, i.e. 2r − 2 = first + last ∈ {0, …, 2S − 2}.
    twice_rank = np.arange(2, 2 * size + 1)
    # Φ⁻¹ = ndtri, exactly what scipy.stats.norm.ppf evaluates.
    z_of_twice_rank = special.ndtri(
        (0.5 * twice_rank - _BLOM_OFFSET) / (size - 2.0 * _BLOM_OFFSET + 1.0)
    )
    z = np.empty(pooled.shape)
    np.put_along_axis(z, order, z_of_twice_rank[first + last], axis=1)
    return z.reshape(draws.shape)


def _rhat_core(chains: np.ndarray) -> np.ndarray:
    """Potential scale reduction of (K, M, N) chains as given (BDA3 §11.4)."""
    num_draws = chains.shape[2]
    within = chains.var(axis=2, ddof=1).mean(axis=1)  # W
    between = num_draws * chains.mean(axis=2).var(axis=1, ddof=1)  # B
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + num_draws - 1.0) / num_draws)


def _autocovariance(chains: np.ndarray) -> np.ndarray:
    """Biased autocovariance (1/N normalization) of every chain, all lags, by FFT."""
    num_draws = chains.shape[2]
    # Zero-padding to ≥ 2N removes circular wrap-around; a 5-smooth length, as ArviZ.
    fft_length = scipy_fft.next_fast_len(2 * num_draws, real=True)
    centered = chains - chains.mean(axis=2, keepdims=True)
    spectrum = np.fft.rfft(centered, n=fft_length, axis=2)
    power = (spectrum * np.conjugate(spectrum)).real  # |FFT|², real to rounding
    return np.fft.irfft(power, n=fft_length, axis=2)[:, :, :num_draws] / num_draws


def _ess_core(chains: np.ndarray) -> np.ndarray:
    """ESS of (K, M, N) chains as given: Geyer's initial monotone sequence (VGSCB21, ESS)."""
    num_observables, num_chains, num_draws = chains.shape
    total = num_chains * num_draws
    pooled = _pooled(chains)
    span = pooled.max(axis=1) - pooled.min(axis=1)
    constant = span < np.finfo(np.float64).resolution  # ArviZ: then ESS = S

    autocovariance = _autocovariance(chains)  # (K, M, N)
    within = autocovariance[:, :, 0].mean(axis=1) * num_draws / (num_draws - 1.0)  # W
    variance_plus = within * (num_draws - 1.0) / num_draws  # var⁺ (VGSCB21)
    if num_chains > 1:
        variance_plus = variance_plus + chains.mean(axis=2).var(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # ρ̂_t = 1 − (W − mean_m acov_{m,t}) / var⁺  (VGSCB21), ρ̂_0 ≡ 1.
        rho = 1.0 - (within[:, None] - autocovariance.mean(axis=1)) / variance_plus[:, None]
    rho[:, 0] = 1.0  # (K, N)

    # ArviZ's loop visits pairs P_k = ρ̂_2k + ρ̂_2k+1 while 2k+1 < N − 3 and P_k > 0; it
    # stops at the first k (k_end) where either fails. last_pair is the bound's k.
    last_pair = max(0, (num_draws - 3) // 2)
    pairs = rho[:, 0 : 2 * last_pair + 2 : 2] + rho[:, 1 : 2 * last_pair + 2 : 2]
    stop = ~(pairs > 0.0)  # also stops on nan, as ArviZ's `> 0` test does
    stop[:, last_pair] = True
    end = np.argmax(stop, axis=1)  # k_end, per observable
    # Initial monotone sequence: P_j ← min(P_j, P_{j−1}) over the kept pairs j < k_end.
    monotone_pairs = np.minimum.accumulate(pairs, axis=1)
    kept = np.arange(last_pair + 1)[None, :] < end[:, None]
    pair_sum = np.where(kept, monotone_pairs, 0.0).sum(axis=1)
    # ρ̂_{2 k_end} enters once when positive or when its pair was stored (P ≥ 0).
    row = np.arange(num_observables)
    rho_even_end = rho[row, 2 * end]
    stored = (rho_even_end > 0.0) | (pairs[row, end] >= 0.0)
    last_term = np.where(stored, rho_even_end, 0.0)
    tau = -1.0 + 2.0 * pair_sum + last_term
    # ArviZ's floor on τ̂ caps the ESS of antithetic chains at S·log10(S).
    tau = np.maximum(tau, 1.0 / np.log10(total))
    with np.errstate(divide="ignore", invalid="ignore"):
        ess = total / tau
    ess = np.where(np.isfinite(variance_plus) & (variance_plus > 0.0), ess, np.nan)
    return np.where(constant, float(total), ess)


def _type7_quantiles(draws: np.ndarray, probabilities) -> list[np.ndarray]:
    """Quantiles of all draws per observable, R type 7, arithmetic as scipy's mquantiles."""
    ordered = np.sort(_pooled(draws), axis=1)
    size = ordered.shape[1]
    quantiles = []
    for probability in probabilities:
        # mquantiles(alphap=1, betap=1): aleph = n·p + m with m = 1 − p.
        aleph = size * probability + (1.0 - probability)
        index = int(np.floor(np.clip(aleph, 1, size - 1)))
        weight = float(np.clip(aleph - index, 0.0, 1.0))
        quantiles.append((1.0 - weight) * ordered[:, index - 1] + weight * ordered[:, index])
    return quantiles


def _ess_tail_core(draws: np.ndarray) -> np.ndarray:
    """min over p ∈ {0.05, 0.95} of the split ESS of I(θ ≤ q_p) (VGSCB21, tail-ESS)."""
    per_probability = [
        _ess_core(_split_chains((draws <= quantile[:, None, None]).astype(np.float64)))
        for quantile in _type7_quantiles(draws, _TAIL_PROBABILITIES)
    ]
    return np.minimum(*per_probability)


def _split_rhat_core(draws: np.ndarray) -> np.ndarray:
    return _rhat_core(_split_chains(draws))


def _rank_normalized_rhat_from(draws: np.ndarray, z_split: np.ndarray) -> np.ndarray:
    """max(bulk, folded) R̂ of (K, C, D) draws, given their split z-scores."""
    bulk = _rhat_core(z_split)
    tail = _rhat_core(_z_scale(_split_chains(_fold(draws))))
    # fmax: ArviZ's Python max() keeps the bulk value when only the folded draws are
    # constant (tail = nan); both are nan only for constant draws.
    return np.fmax(bulk, tail)


def _rank_normalized_rhat_core(draws: np.ndarray) -> np.ndarray:
    return _rank_normalized_rhat_from(draws, _z_scale(_split_chains(draws)))


def _ess_bulk_core(draws: np.ndarray) -> np.ndarray:
    return _ess_core(_z_scale(_split_chains(draws)))


def _ess_mean_core(draws: np.ndarray) -> np.ndarray:
    return _ess_core(_split_chains(draws))


_ESS_CORES = {"bulk": _ess_bulk_core, "tail": _ess_tail_core, "mean": _ess_mean_core}


def _mcse_mean_core(draws: np.ndarray) -> np.ndarray:
    standard_deviation = _pooled(draws).std(axis=1, ddof=1)
    return standard_deviation / np.sqrt(_ess_core(_split_chains(draws)))


def _summary_core(draws: np.ndarray) -> np.ndarray:
    """(K, C, D) -> (6, K): the SUMMARY_STATISTICS rows, sharing the split z-scores."""
    split = _split_chains(draws)
    z_split = _z_scale(split)
    standard_deviation = _pooled(draws).std(axis=1, ddof=1)
    return np.stack(
        [
            _pooled(draws).mean(axis=1),
            standard_deviation,
            standard_deviation / np.sqrt(_ess_core(split)),
            _ess_core(z_split),
            _ess_tail_core(draws),
            _rank_normalized_rhat_from(draws, z_split),
        ]
    )


def _by_blocks(core, draws: np.ndarray) -> np.ndarray:
    """Apply ``core`` to blocks of observables (rows of ``draws``) and join the results
    along their last axis. Bounds the temporaries (the FFT buffers are ~4× a block) to
    ~100 MB whatever the number of observables, and keeps them in cache."""
    rows = max(1, _BLOCK_ELEMENTS // (draws.shape[1] * draws.shape[2]))
    if draws.shape[0] <= rows:
        return core(draws)
    starts = range(0, draws.shape[0], rows)
    return np.concatenate([core(draws[start : start + rows]) for start in starts], axis=-1)


def _shaped(values: np.ndarray, rest: tuple[int, ...]):
    return values.reshape(values.shape[:-1] + rest)[()]


def split_rhat(samples) -> np.ndarray:
    """Classic split-R̂ (BDA3 §11.4; VGSCB21) of ``(chain, draw, *rest)`` draws.

    Returns shape ``rest``. Equals ``arviz.rhat(method="split")`` for ≥ 2 chains; for a
    single chain it is the R̂ of its two halves (ArviZ returns nan).
    """
    draws, rest = _as_draws(samples, "samples")
    return _shaped(_by_blocks(_split_rhat_core, draws), rest)


def rank_normalized_split_rhat(samples) -> np.ndarray:
    """Rank-normalized split-R̂ = max(bulk, folded) (VGSCB21); shape ``rest``.

    Equals ``arviz.rhat(method="rank")`` for ≥ 2 chains and an even number of draws
    (for odd D ArviZ folds about the median of the split draws; we use all draws, as
    ``arviz.summary`` and VGSCB21 (folding)). Recommended threshold: R̂ < 1.01.
    """
    draws, rest = _as_draws(samples, "samples")
    return _shaped(_by_blocks(_rank_normalized_rhat_core, draws), rest)


def effective_sample_size(samples, kind: str = "bulk") -> np.ndarray:
    """ESS of ``(chain, draw, *rest)`` draws (Geyer initial monotone); shape ``rest``.

    kind: "bulk" (rank-normalized split chains, VGSCB21), "tail" (min of the 5 % and
    95 % quantile-indicator ESS, VGSCB21 tail-ESS) or "mean" (split chains, no
    rank normalization: the ESS that sets the MCSE of the mean). Equals
    ``arviz.ess(method=kind)``.
    """
    if kind not in _ESS_CORES:
        raise ValueError(f"kind must be one of {ESS_KINDS}, got {kind!r}")
    draws, rest = _as_draws(samples, "samples")
    return _shaped(_by_blocks(_ESS_CORES[kind], draws), rest)


def mcse_mean(samples) -> np.ndarray:
    """Monte Carlo standard error of the posterior mean, sd/√ESS_mean; shape ``rest``.

    sd is the ddof=1 standard deviation over all chains and draws. Equals
    ``arviz.mcse(method="mean")``.
    """
    draws, rest = _as_draws(samples, "samples")
    return _shaped(_by_blocks(_mcse_mean_core, draws), rest)


def _chain_draw_values(value, name: str) -> np.ndarray:
    """A DataArray transposed to (chain, draw, ...), or an array taken as such."""
    if isinstance(value, xr.DataArray):
        missing = {"chain", "draw"} - set(value.dims)
        if missing:
            raise ValueError(
                f"variable {name!r} has dims {value.dims}, lacking {sorted(missing)}; "
                "select the variables with (chain, draw) dims via var_names"
            )
        return value.transpose("chain", "draw", ...).values
    return np.asarray(value)


def summarize(
    samples: Mapping[str, object], *, var_names: Sequence[str] | None = None
) -> dict[str, dict[str, float | list]]:
    """Posterior summary of every scalar element of every variable, JSON-ready.

    ``samples``: an ``xarray.Dataset`` (each variable transposed to ``(chain, draw,
    ...)`` by name) or a mapping of names to arrays of shape ``(chain, draw, *rest)``.
    ``var_names`` selects variables (default: all).

    Returns ``{variable: {statistic: value}}`` with statistics ``SUMMARY_STATISTICS``:
    mean, sd (ddof=1 over chains and draws), mcse_mean, ess_bulk, ess_tail and r_hat
    (rank-normalized split-R̂), each a float for a scalar variable or a nested list of
    shape ``rest``, i.e. ``json.dumps`` serializes it directly (nan and inf are written
    as NaN/Infinity, the default of Python's json). These are the columns of the same
    names of ``arviz.summary``, which gives r_hat = nan for a single chain.
    """
    names = list(samples.keys()) if var_names is None else list(var_names)
    table: dict[str, dict[str, float | list]] = {}
    for name in names:
        draws, rest = _as_draws(_chain_draw_values(samples[name], name), f"variable {name!r}")
        statistics = _by_blocks(_summary_core, draws).reshape(len(SUMMARY_STATISTICS), *rest)
        table[str(name)] = {
            key: values.tolist() for key, values in zip(SUMMARY_STATISTICS, statistics)
        }
    return table
