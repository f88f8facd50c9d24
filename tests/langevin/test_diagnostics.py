"""Tests of langevin.diagnostics: agreement with ArviZ, an exact AR(1) result, R̂ behaviour,
vectorization and edge cases."""
from __future__ import annotations

import importlib.metadata
import json
import math
import warnings

import numpy as np
import pytest
import xarray as xr
from scipy import signal

from langevin import diagnostics

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # ArviZ 0.x announces its 1.0 refactor
    import arviz

ARVIZ_0 = int(importlib.metadata.version("arviz").split(".")[0]) < 1
needs_arviz_0 = pytest.mark.skipif(
    not ARVIZ_0, reason="compares with the ArviZ 0.x ndarray API (az.ess(ary, method=...))"
)
# The same estimator evaluated with the same arithmetic up to summation order / FFT batching.
AGREEMENT_RTOL = 1e-10


def ar1_chains(rng: np.random.Generator, rho: float, shape: tuple[int, ...]) -> np.ndarray:
    """Stationary AR(1) along axis 1: x_0 ~ N(0, 1), x_t = ρ x_{t−1} + √(1−ρ²) ε_t."""
    innovations = rng.standard_normal(shape)
    innovations[:, 1:] *= math.sqrt(1.0 - rho**2)
    return signal.lfilter([1.0], [1.0, -rho], innovations, axis=1)


def _arviz_cases():
    rng = np.random.default_rng(20210301)
    return {
        "iid_normal": rng.standard_normal((4, 200)),
        "ar1_0.9_odd_draws": ar1_chains(rng, 0.9, (4, 301)),
        "ar1_0.99_long": ar1_chains(rng, 0.99, (8, 1000)),
        "antithetic_ar1_-0.6": ar1_chains(rng, -0.6, (6, 40)),
        "single_chain": ar1_chains(rng, 0.5, (1, 100)),
        "poisson_ties": rng.poisson(2.0, (3, 50)).astype(float),
        "cauchy_short": rng.standard_cauchy((2, 7)),
        "four_draws": rng.standard_normal((2, 4)),
        "five_draws": rng.standard_normal((2, 5)),
        "constant": np.full((3, 20), 0.25),
    }


ARVIZ_CASES = _arviz_cases()


@needs_arviz_0
@pytest.mark.parametrize("case", sorted(ARVIZ_CASES))
def test_agrees_with_arviz(case):
    samples = ARVIZ_CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # ArviZ's 0/0 on constant draws
        for kind in diagnostics.ESS_KINDS:
            np.testing.assert_allclose(
                diagnostics.effective_sample_size(samples, kind),
                arviz.ess(samples, method=kind),
                rtol=AGREEMENT_RTOL,
                err_msg=f"ess {kind}",
            )
        np.testing.assert_allclose(
            diagnostics.mcse_mean(samples),
            arviz.mcse(samples, method="mean"),
            rtol=AGREEMENT_RTOL,
        )
        if samples.shape[0] == 1:
            # Documented difference: ArviZ gives nan for one chain, we split it in two.
            assert np.isnan(arviz.rhat(samples, method="split"))
            assert np.isfinite(diagnostics.split_rhat(samples))
            return
        np.testing.assert_allclose(
            diagnostics.split_rhat(samples), arviz.rhat(samples, method="split"),
            rtol=AGREEMENT_RTOL,
        )
        ours = diagnostics.rank_normalized_split_rhat(samples)
        if samples.shape[1] % 2 == 0:
            reference = arviz.rhat(samples, method="rank")
        else:
            # Odd D: az.rhat folds about the median of the split draws; az.summary (and
            # VGSCB21 (folding), and we) about the median of all draws.
            reference = arviz.summary(samples, round_to="none", fmt="xarray")["x"]
            reference = reference.sel(metric="r_hat").item()
        np.testing.assert_allclose(ours, reference, rtol=AGREEMENT_RTOL)


@pytest.mark.parametrize("rho", [-0.3, 0.0, 0.5, 0.9])
def test_ar1_mean_ess_matches_integrated_autocorrelation_time(rho):
    """ESS/S → 1/τ = (1−ρ)/(1+ρ) for AR(1) (τ = Σ_{t∈ℤ} ρ^|t|).

    R independent replicates of C chains of D draws, vectorized as R observables.
    Tolerance = 4·(standard error of the replicate mean) + the estimator's own bias:
    Geyer's sum stops at the first non-positive pair estimate P̂_j, and where the true
    pairs have died out P̂_j ≈ N(0, σ_P²) with σ_P² = 2τ/S (Bartlett's formula for AR(1):
    Var ρ̂_t ≈ Σ_k ρ_k²/S, Cov(ρ̂_t, ρ̂_{t+1}) ≈ Σ_k ρ_k ρ_{k+1}/S). About one noise pair
    (mean E[P̂ | P̂ > 0] = σ_P √(2/π)) is included, or a true pair below σ_P is lost, so
    |E τ̂ − τ| ≲ 2σ_P√(2/π), i.e. |E ESS/S − 1/τ| ≲ 2σ_P√(2/π)/τ².
    """
    rng = np.random.default_rng(int(1000 * (rho + 1.0)))
    num_replicates, num_chains, num_draws = 64, 4, 20_000
    samples = ar1_chains(rng, rho, (num_chains, num_draws, num_replicates))
    total = num_chains * num_draws
    relative_ess = diagnostics.effective_sample_size(samples, "mean") / total

    tau = (1.0 + rho) / (1.0 - rho)
    standard_error = relative_ess.std(ddof=1) / math.sqrt(num_replicates)
    truncation_bias = 2.0 * math.sqrt(2.0 / math.pi) * math.sqrt(2.0 * tau / total) / tau**2
    tolerance = 4.0 * standard_error + truncation_bias
    assert abs(relative_ess.mean() - 1.0 / tau) < tolerance


def test_rhat_flags_a_chain_in_another_place():
    rng = np.random.default_rng(1)
    samples = rng.standard_normal((4, 500))
    samples[3] += 2.0  # one chain stuck two standard deviations away
    assert diagnostics.split_rhat(samples) > 1.1
    assert diagnostics.rank_normalized_split_rhat(samples) > 1.1


def test_folded_rhat_flags_a_chain_with_another_scale():
    """Same mean, one chain 3× wider: the classic R̂ misses it, the folded R̂ (VGSCB21)
    sees it."""
    rng = np.random.default_rng(2)
    samples = rng.standard_normal((4, 1000))
    samples[0] *= 3.0
    assert diagnostics.split_rhat(samples) < 1.01
    assert diagnostics.rank_normalized_split_rhat(samples) > 1.1


def test_rhat_is_one_for_iid_chains():
    """For iid draws B/W ~ χ²_{M−1}/(M−1) with M = 8 split chains of N = 500, and
    R̂² = (N−1)/N + B/(WN): R̂ > 1.01 needs B/W > 11, probability < 1e-12 per element."""
    rng = np.random.default_rng(3)
    samples = rng.standard_normal((4, 1000, 50))
    for rhat_function in (diagnostics.split_rhat, diagnostics.rank_normalized_split_rhat):
        rhat = rhat_function(samples)
        assert rhat.shape == (50,)
        assert np.all(rhat < 1.01)
        assert np.all(rhat >= math.sqrt(499 / 500) - 1e-12)


def test_single_chain_split_rhat_sees_a_trend():
    rng = np.random.default_rng(4)
    drift = np.linspace(0.0, 3.0, 400)
    samples = (drift + rng.standard_normal(400))[None, :]
    assert diagnostics.split_rhat(samples) > 1.1
    assert diagnostics.rank_normalized_split_rhat(samples) > 1.1


def test_vectorized_result_equals_per_element_result(monkeypatch):
    rng = np.random.default_rng(5)
    rhos = np.linspace(-0.5, 0.95, 12).reshape(3, 4)
    samples = np.stack(
        [ar1_chains(rng, rho, (3, 257)) for rho in rhos.ravel()], axis=-1
    ).reshape(3, 257, 3, 4)
    samples[:, :, 2, 3] = np.round(samples[:, :, 2, 3])  # ties in one element
    functions = {
        "split_rhat": diagnostics.split_rhat,
        "rank_normalized_split_rhat": diagnostics.rank_normalized_split_rhat,
        "mcse_mean": diagnostics.mcse_mean,
        **{
            f"ess_{kind}": (lambda x, kind=kind: diagnostics.effective_sample_size(x, kind))
            for kind in diagnostics.ESS_KINDS
        },
    }
    for name, function in functions.items():
        vectorized = function(samples)
        assert vectorized.shape == (3, 4), name
        per_element = np.array(
            [[function(samples[:, :, i, j]) for j in range(4)] for i in range(3)]
        )
        np.testing.assert_allclose(vectorized, per_element, rtol=1e-12, err_msg=name)
        # Blocks of observables (bounded memory) give the same numbers: 5 per block here.
        monkeypatch.setattr(diagnostics, "_BLOCK_ELEMENTS", 5 * 3 * 257)
        np.testing.assert_array_equal(function(samples), vectorized, err_msg=name)
        monkeypatch.undo()


def test_constant_draws():
    samples = np.full((3, 20, 2), 1.5)
    samples[:, :, 1] = np.array([0.0, 1.0, 2.0])[:, None]  # constant chains, different values
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning leaks out
        rhat = diagnostics.rank_normalized_split_rhat(samples)
        classic = diagnostics.split_rhat(samples)
        ess = diagnostics.effective_sample_size(samples, "bulk")
        mcse = diagnostics.mcse_mean(samples)
    assert np.isnan(rhat[0]) and np.isnan(classic[0])
    assert rhat[1] == np.inf and classic[1] == np.inf
    assert ess[0] == 60.0  # S = 2C·⌊D/2⌋ split draws, as ArviZ
    assert mcse[0] == 0.0


def test_errors():
    with pytest.raises(ValueError, match="at least 4 draws"):
        diagnostics.split_rhat(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\(chain, draw, ...\)"):
        diagnostics.effective_sample_size(np.zeros(10))
    with pytest.raises(ValueError, match="kind must be one of"):
        diagnostics.effective_sample_size(np.zeros((2, 10)), kind="median")
    samples = np.zeros((2, 10, 3))
    samples[1, 4, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 non-finite value\(s\), the first .* \(1, 4, 2\)"):
        diagnostics.mcse_mean(samples)
    with pytest.raises(ValueError, match="variable 'weights'"):
        diagnostics.summarize({"weights": samples, "loss": np.zeros((2, 10))})


def test_summarize_is_json_ready_and_consistent():
    rng = np.random.default_rng(6)
    weights = ar1_chains(rng, 0.7, (4, 100, 2, 3))
    loss = ar1_chains(rng, 0.2, (4, 100))
    dataset = xr.Dataset(
        {
            # stored (draw, chain, ...): summarize transposes by name
            "weights": (("draw", "chain", "row", "col"), weights.transpose(1, 0, 2, 3)),
            "loss": (("chain", "draw"), loss),
            "kernel": (("chain", "draw_kernel"), rng.standard_normal((4, 7))),
        }
    )
    with pytest.raises(ValueError, match="'kernel'.*var_names"):
        diagnostics.summarize(dataset)
    table = diagnostics.summarize(dataset, var_names=["weights", "loss"])
    assert json.loads(json.dumps(table)) == table
    assert set(table) == {"weights", "loss"}
    assert set(table["loss"]) == set(diagnostics.SUMMARY_STATISTICS)
    assert isinstance(table["loss"]["r_hat"], float)
    assert np.shape(table["weights"]["ess_bulk"]) == (2, 3)

    expected = {
        "mean": weights.mean(axis=(0, 1)),
        "sd": weights.std(axis=(0, 1), ddof=1),
        "mcse_mean": diagnostics.mcse_mean(weights),
        "ess_bulk": diagnostics.effective_sample_size(weights, "bulk"),
        "ess_tail": diagnostics.effective_sample_size(weights, "tail"),
        "r_hat": diagnostics.rank_normalized_split_rhat(weights),
    }
    for statistic, value in expected.items():
        np.testing.assert_allclose(table["weights"][statistic], value, rtol=1e-12)
    assert table == diagnostics.summarize(
        {"weights": weights, "loss": loss}, var_names=["weights", "loss"]
    )
