"""The feature-learning theories for a target with y_1 ≠ 1 (experiments.compare.feature_learning_comparison).

Scaling the target by s together with the readout and noise numerators by s² leaves the
posterior of the hidden weights unchanged and scales the readout (and so f) by s:
with y = s(He_1 + ε He_3), σ̃_a² → s²σ̃_a² and σ̃² → s²σ̃², the order parameter's E[q²] and
kurtosis ratio are unchanged, the mean's coefficients (b, c on He_1, He_3) and the
GFL mean coefficients are s times those of the s = 1 problem, and a transition noise
variance σ²_c is s² times. GFL takes the target as it is, so it checks the identity
independently of the y_1 rescaling the Landau side applies (`theory_inputs.TwoLayerTheoryInputs.landau_problem`).
"""
import pytest

from experiments.compare import feature_learning_comparison as flc
from experiments.compare.theory_inputs import TwoLayerTheoryInputs
from theory.network_prior import NetworkPrior

SCALE, EPSILON, CHI = 2.0, 0.5, 64.0


def _inputs(scale: float) -> TwoLayerTheoryInputs:
    readout, noise = scale**2 * 1.0, scale**2 * 0.5  # σ̃_a², σ̃² of the s = 1 problem: 1, 0.5
    prior = NetworkPrior(activation="erf", input_dim=8, widths=(64,), weight_variances=(1.0,),
                         readout_variance_tilde=readout, noise_variance_tilde=noise, chi=CHI)
    return TwoLayerTheoryInputs(prior=prior, n_train=64, hermite_coefficients=(0.0, scale, 0.0, scale * EPSILON))


def test_theories_of_a_scaled_target_are_the_scaled_theories():
    scaled, unit = flc.solve_theories(_inputs(SCALE)), flc.solve_theories(_inputs(1.0))
    tight = dict(rel=1e-8)
    landau_s, landau_1 = scaled.sections["landau"], unit.sections["landau"]
    assert landau_s["converged"] and landau_1["converged"]
    assert landau_s["second_moment"] == pytest.approx(landau_1["second_moment"], **tight)
    assert landau_s["kurtosis_ratio"] == pytest.approx(landau_1["kurtosis_ratio"], **tight)
    assert landau_s["b"] == pytest.approx(SCALE * landau_1["b"], **tight)
    assert landau_s["c"] == pytest.approx(SCALE * landau_1["c"], **tight)
    # GFL (no rescaling inside) agrees with the same identity and with Landau's E[q²] scaling.
    assert scaled.gfl.sigma_parallel == pytest.approx(unit.gfl.sigma_parallel, rel=1e-6)
    for c_s, c_1 in zip(scaled.gfl.mean_coefficients, unit.gfl.mean_coefficients):
        assert c_s == pytest.approx(SCALE * c_1, rel=1e-6)
    limit_s = scaled.sections["transition"]["scaling_limit"]
    limit_1 = unit.sections["transition"]["scaling_limit"]
    assert limit_s["found"] and limit_1["found"]
    assert limit_s["noise_variance"] == pytest.approx(SCALE**2 * limit_1["noise_variance"], **tight)
