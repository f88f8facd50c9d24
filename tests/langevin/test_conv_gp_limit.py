"""GP limit of the patch networks on digits: the sampled posterior mean of cnn and lcn
approaches the CNN-GP posterior (theory.conv_kernels.cnn_gp_gram + theory.gaussian_process)
with a gap that falls like 1/channels (finite-width corrections are O(1/K), Naveh et al., PRE 2021)."""
import numpy as np
import pytest
import torch

from experiments.setup.digits import digits_data
from langevin.models.conv import LocalPatchNetwork, patch_prior_variances
from langevin.integrators import euler_maruyama, per_layer_step_sizes
from langevin.potential import make_potential
from tests.langevin.chain_averages import time_averages
from theory.conv_kernels import cnn_gp_diag, cnn_gp_gram
from theory.gaussian_process import gp_posterior

SMALL, LARGE = 2, 32  # channels
NOISE_VARIANCE = 0.05  # σ² = T (standard scaling, χ = 1)
GEOMETRY = dict(input_shape=(8, 8), patch_size=4, stride=4)


def _data():
    data = digits_data(target="pair", classes=(3, 8), n_train=24, seed=0)
    return data, data.x_test[:8]


def _sampled_mean(shared, channels, data, x_test, seed):
    variances = patch_prior_variances(16, 4, channels, sigma_w2=1.0, sigma_a2=1.0)
    model = LocalPatchNetwork((8, 8), 4, 4, channels, "erf", variances, shared=shared)
    x = torch.as_tensor(data.x_train)
    y = torch.as_tensor(data.y_train)
    decays = {layer: NOISE_VARIANCE / v for layer, v in variances.items()}
    integrator = euler_maruyama(make_potential(model, x, y, decays),
                                per_layer_step_sizes(0.005, decays), NOISE_VARIANCE)
    generator = torch.Generator().manual_seed(seed)
    theta0 = model.sample_prior(16, generator, torch.float64)
    test = torch.as_tensor(x_test)
    per_chain = time_averages(integrator, theta0, generator, burn_in=1000, num_steps=8000,
                              fn=lambda state: model.predict(state.theta, test))
    return per_chain.mean(0), per_chain.std(0, ddof=1) / np.sqrt(len(per_chain))


@pytest.mark.slow
@pytest.mark.parametrize("shared", [True, False], ids=["cnn", "lcn"])
def test_gap_to_the_cnn_gp_posterior_mean_falls_like_one_over_channels(shared):
    data, x_test = _data()
    kernel = dict(activation="erf", sigma_a2=1.0, sigma_w2=1.0, **GEOMETRY)
    gp = gp_posterior(cnn_gp_gram(data.x_train, None, **kernel),
                      cnn_gp_gram(x_test, data.x_train, **kernel),
                      cnn_gp_diag(x_test, **kernel), data.y_train, NOISE_VARIANCE)
    mean_small, mcse_small = _sampled_mean(shared, SMALL, data, x_test, seed=1)
    mean_large, mcse_large = _sampled_mean(shared, LARGE, data, x_test, seed=2)
    gap_small, gap_large = mean_small - gp.mean, mean_large - gp.mean
    # Resolved at the small channel count ...
    assert np.linalg.norm(gap_small) > 4 * np.linalg.norm(mcse_small)
    # ... and, if it is c/K + O(1/K²), at most c/K_large at the large one, with c bounded
    # from the small count (|Δ| + 4 MCSE)·K_small and a factor 2 for the O(1/K²) terms.
    allowance = 2 * SMALL * (np.abs(gap_small) + 4 * mcse_small) / LARGE
    assert np.all(np.abs(gap_large) < 4 * mcse_large + allowance), (gap_large, mcse_large,
                                                                     allowance)
