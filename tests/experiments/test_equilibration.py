"""Equilibration diagnostics (experiments.reporting.equilibration) on synthetic draws with known
behaviour: stationary AR(1) chains (no warning) and chains with an initial transient
(drift and burn-in warnings)."""
import numpy as np
import xarray as xr

from experiments.reporting.equilibration import (
    BURN_IN_IN_TAU, DRIFT_Z, autocorrelation_times, equilibration_summary, virial_windows,
)

THIN = 10


def _ar1(rng, rho, num_chains, num_draws, scale=1.0):
    """Stationary AR(1): x_t = ρ x_{t−1} + √(1−ρ²) ε_t, started in its stationary law."""
    x = np.empty((num_chains, num_draws))
    x[:, 0] = rng.standard_normal(num_chains)
    noise = rng.standard_normal((num_chains, num_draws)) * np.sqrt(1 - rho**2)
    for t in range(1, num_draws):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return scale * x


def _dataset(**variables):
    num_draws = next(iter(variables.values())).shape[1]
    return xr.Dataset({name: (("chain", "draw"), values) for name, values in variables.items()},
                      coords={"step": ("draw", THIN * np.arange(1, num_draws + 1))})


def test_stationary_chains_raise_no_warning():
    rng = np.random.default_rng(0)
    temperature = 0.1
    ds = _dataset(virial_temperature_w=temperature + _ar1(rng, 0.5, 8, 400, 0.01),
                  train_loss=3.0 + _ar1(rng, 0.9, 8, 400))
    summary = equilibration_summary(ds, temperature, burn_in=10_000, thin=THIN)
    assert summary["warnings"] == []
    windows = summary["virial_windows"]["w"]
    assert len(windows) == 4
    assert windows[0]["first_step"] == THIN and windows[-1]["last_step"] == 400 * THIN
    assert all(abs(w["deviation_in_mcse"]) < 4 for w in windows)
    assert all(abs(entry["z"]) < DRIFT_Z
               for entry in summary["drift_first_vs_last_third"].values())
    assert summary["slowest_observable"] == "train_loss"  # ρ = 0.9 vs 0.5


def test_autocorrelation_time_of_ar1_chains_is_the_known_one():
    """AR(1) draws with ρ = 0.8 have τ_int = (1 + ρ)/(1 − ρ) = 9 draws, i.e. 90 sampler steps
    at thin 10. The mean of τ over 50 independent data sets (4 chains × 2000 draws each)
    agrees within 4 standard errors of that mean (the spread of the 50 estimates)."""
    rng = np.random.default_rng(5)
    rho, replicates = 0.8, 50
    truth = THIN * (1 + rho) / (1 - rho)
    taus = np.array([autocorrelation_times(_dataset(x=_ar1(rng, rho, 4, 2000)), THIN)["x"]
                     for _ in range(replicates)])
    standard_error = taus.std(ddof=1) / np.sqrt(replicates)
    assert abs(taus.mean() - truth) < 4 * standard_error


def test_an_initial_transient_is_flagged_by_drift_and_burn_in():
    rng = np.random.default_rng(2)
    num_draws = 300
    # The mean relaxes from +5 sd with a time constant of 40 draws (400 steps).
    transient = 5.0 * np.exp(-np.arange(num_draws) / 40.0)
    ds = _dataset(squared_norm_w=transient + _ar1(rng, 0.95, 4, num_draws),
                  virial_temperature_a=1.0 + _ar1(rng, 0.3, 4, num_draws, 0.05))
    summary = equilibration_summary(ds, 1.0, burn_in=100, thin=THIN)
    drift = summary["drift_first_vs_last_third"]["squared_norm_w"]
    assert drift["z"] > DRIFT_Z
    tau = summary["autocorrelation_time_steps"]["squared_norm_w"]
    assert summary["slowest_observable"] == "squared_norm_w" and 100 < BURN_IN_IN_TAU * tau
    joined = " ".join(summary["warnings"])
    assert "squared_norm_w drifts" in joined
    assert "burn-in of 100 steps is shorter" in joined and "squared_norm_w" in joined


def test_short_runs_get_fewer_windows_or_none():
    rng = np.random.default_rng(3)
    assert len(virial_windows(_dataset(virial_temperature_w=rng.random((2, 10))), 1.0)["w"]) == 2
    assert virial_windows(_dataset(virial_temperature_w=rng.random((2, 3))), 1.0) == {}
    assert equilibration_summary(_dataset(x=rng.random((2, 3))), 1.0, 0, THIN)["warnings"] == []
