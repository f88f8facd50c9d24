"""Convergence warnings only on statistics identifiable across chains, worded plainly,
in one warning with its remedy; divergence messages that say what is kept."""
import numpy as np
import xarray as xr

from experiments.cli import main
from experiments.reporting.report import RHAT_THRESHOLD, mixing_warning, scalar_diagnostics
from langevin import diagnostics, unit_symmetry


def _symmetric_copies(num_chains=8, num_draws=400, units=16, seed=0):
    """q of chains that sit in different copies of the permutation and sign symmetry:
    unit i of chain c has mean s_c · m_{π_c(i)}, the draws are i.i.d. around it."""
    rng = np.random.default_rng(seed)
    means = np.linspace(-2.0, 2.0, units)
    q = np.empty((num_chains, num_draws, units))
    for chain in range(num_chains):
        shifted = rng.choice([-1.0, 1.0]) * means[rng.permutation(units)]
        q[chain] = shifted + rng.standard_normal((num_draws, units))
    return q


def test_unit_indexed_observable_is_diagnosed_through_symmetric_statistics():
    q = _symmetric_copies()
    per_unit = diagnostics.rank_normalized_split_rhat(q)
    assert per_unit.max() > 1.5  # per unit, the chains "disagree": the symmetry, not mixing
    ds = xr.Dataset({"q": (("chain", "draw", "neuron"), q)})
    diag = scalar_diagnostics(ds)
    assert set(diag["q"]["symmetric_statistics"]) == {"mean_square", "mean_abs"}
    assert diag["q"]["r_hat_max"] < RHAT_THRESHOLD  # i.i.d. draws: converged
    assert mixing_warning(diag, num_chains=8) is None


def test_symmetric_statistics_are_invariant_under_permutation_and_sign():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((3, 5, 7, 2))  # (chain, draw, neuron, direction)
    flipped = -q[:, :, rng.permutation(7), :]
    for key, values in unit_symmetry.unit_symmetric_statistics(q, axis=2).items():
        assert values.shape == (3, 5, 2)
        np.testing.assert_allclose(
            values, unit_symmetry.unit_symmetric_statistics(flipped, axis=2)[key], rtol=1e-12)
    np.testing.assert_allclose(unit_symmetry.unit_symmetric_statistics(q)["mean_square"],
                               (q**2).mean(axis=2), rtol=1e-12)


def test_one_plain_warning_lists_every_statistic_with_the_remedy():
    diag = {"potential": {"r_hat": 1.033, "ess_bulk": 592.0},
            "squared_norm_a": {"r_hat": 1.002, "ess_bulk": 510.0},
            "train_loss": {"r_hat": 1.001, "ess_bulk": 4000.0}}
    text = mixing_warning(diag, num_chains=16, num_steps=20000)
    assert text.startswith("2 of 3 statistics have not converged")
    assert "bulk ESS over 16 chains below 50 per chain = 800" in text
    assert "potential: R-hat 1.033, bulk ESS 592" in text
    assert "squared_norm_a: bulk ESS 510" in text and "train_loss" not in text
    assert "Remedy: sample longer, raise sampler.num_steps (now 20000)" in text


def test_divergence_before_any_checkpoint_says_nothing_is_kept(tmp_path, capsys):
    code = main(["run", "smoke", "--set", "sampler.step_size=2.5", "--set", "sampler.burn_in=0",
                 "--set", "sampler.checkpoint_every=1000", "--set", "sampler.progress=false",
                 "--out", str(tmp_path / "run")])
    assert code == 3
    err = capsys.readouterr().err
    assert "No checkpoint was written before the divergence" in err
    assert "last good checkpoint" not in err and "Traceback" not in err
