"""The MCSE of the order-parameter statistics (experiments.compare.order_parameter_statistics)
against a Monte Carlo of the estimators' spread, on Gaussian draws with known answers."""
import numpy as np

from experiments.compare import order_parameter_statistics as qstats

REPLICATES = 400
SHAPE = (4, 50, 8)  # (chain, draw, neuron), independent standard normal q


def _replicated(statistic: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    rows = [qstats.moment_statistics(rng.standard_normal(SHAPE))[statistic]
            for _ in range(REPLICATES)]
    return (np.array([r["sampled"] for r in rows]), np.array([r["mcse"] for r in rows]))


def _check_mcse_is_the_spread(values: np.ndarray, mcses: np.ndarray) -> None:
    """mean reported MCSE / spread of the estimates = 1 within 4 standard errors: that of
    a sample standard deviation of R values, 1/√(2(R − 1)), and that of the mean MCSE."""
    spread = values.std(ddof=1)
    ratio = mcses.mean() / spread
    error = np.hypot(1 / np.sqrt(2 * (REPLICATES - 1)),
                     mcses.std(ddof=1) / mcses.mean() / np.sqrt(REPLICATES))
    assert abs(ratio - 1) < 4 * error, (ratio, error)


def test_kurtosis_ratio_and_its_mcse_on_gaussian_draws():
    """R = E[q⁴]/(3E[q²]²) = 1 for a Gaussian. Its MCSE is that of the delta-method series
    m_4/(3B²) − 2A m_2/(3B³); without the second term it would be twice the true spread
    (per neuron Var(q⁴/3) = 96/9 against Var(q⁴/3 − 2q²) = 8/3)."""
    ratios, mcses = _replicated("kurtosis_ratio")
    assert abs(ratios.mean() - 1) < 4 * ratios.std(ddof=1) / np.sqrt(REPLICATES)
    _check_mcse_is_the_spread(ratios, mcses)


def test_second_moment_and_its_mcse_on_gaussian_draws():
    seconds, mcses = _replicated("second_moment")
    assert abs(seconds.mean() - 1) < 4 * seconds.std(ddof=1) / np.sqrt(REPLICATES)
    _check_mcse_is_the_spread(seconds, mcses)
