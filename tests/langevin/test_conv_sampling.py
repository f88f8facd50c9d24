"""The patch networks with the rest of the sampler: the prior function covariance is the
CNN-GP of theory.conv_kernels, and a short Langevin run is at temperature T."""
import math

import numpy as np
import pytest
import torch

from langevin.models.conv import LocalPatchNetwork, patch_prior_variances
from langevin.integrators import euler_maruyama, per_layer_step_sizes
from langevin.potential import make_potential
from tests.langevin.chain_averages import assert_within_4_se, time_averages
from theory.conv_kernels import cnn_gp_gram


@pytest.mark.parametrize("shared", [True, False], ids=["cnn", "lcn"])
def test_prior_function_covariance_is_the_cnn_gp(shared):
    """E[f(x)f(y)] over prior draws (chains are iid) equals cnn_gp_gram at any channel count."""
    shape, patch, stride, channels = (6, 6), 4, 2, 4
    variances = patch_prior_variances(16, 4, channels, sigma_w2=1.5, sigma_a2=2.0,
                                      sigma_b2=0.3)
    model = LocalPatchNetwork(shape, patch, stride, channels, "erf", variances, shared=shared,
                              bias=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 36))
    theta = model.sample_prior(6000, torch.Generator().manual_seed(1), torch.float64)
    f = model.predict(theta, torch.as_tensor(x)).numpy()  # (R, n)
    products = (f[:, :, None] * f[:, None, :]).reshape(len(f), -1)
    K = cnn_gp_gram(x, None, "erf", 2.0, 1.5, input_shape=shape, patch_size=patch,
                    stride=stride, bias_variance=0.3)
    assert_within_4_se(products, K.ravel())


def test_langevin_run_of_the_cnn_is_at_temperature_T():
    """Virial thermometer per layer on a tiny cnn posterior (ULA, prior preconditioner).

    The stationary ULA chain θ' = θ − η_l g + √(2η_l T) ξ (g = ∇_l U) has E|θ'|² = E|θ|²,
    hence exactly E[θ·g] = T·P_l + (η_l/2) E|g|²: the corrected thermometer
    (θ·g − η_l|g|²/2)/P_l has mean T with no discretization bias, and the plain virial
    temperature θ·g/P_l exceeds T by the measured allowance η_l E|g|²/(2P_l).
    """
    generator = torch.Generator().manual_seed(2)
    temperature, channels = 0.5, 3
    variances = patch_prior_variances(4, 4, channels, sigma_w2=1.0, sigma_a2=1.0)
    model = LocalPatchNetwork((4, 4), 2, 2, channels, "erf", variances, shared=True)
    x = torch.randn(8, 16, generator=generator, dtype=torch.float64)
    y = torch.sign(x[:, 0])
    decays = {layer: temperature / v for layer, v in variances.items()}
    step_sizes = per_layer_step_sizes(0.02, decays, "prior")
    integrator = euler_maruyama(make_potential(model, x, y, decays), step_sizes, temperature)
    theta0 = model.sample_prior(64, generator, torch.float64)
    layers = model.layer_names

    def thermometers(state):
        values = []
        for layer in layers:
            theta, grad = state.theta[layer], state.gradient[layer]
            count = theta[0].numel()
            virial = (theta * grad).flatten(1).sum(1) / count
            allowance = 0.5 * step_sizes[layer] * (grad * grad).flatten(1).sum(1) / count
            values += [virial, allowance]
        return torch.stack(values, dim=1)

    averages = time_averages(integrator, theta0, generator, burn_in=500, num_steps=1500,
                             fn=thermometers)  # (C, 2·layers)
    for i, layer in enumerate(layers):
        virial, allowance = averages[:, 2 * i], averages[:, 2 * i + 1]
        assert_within_4_se(virial - allowance, np.array(temperature))
        estimate = virial.mean()
        error = virial.std(ddof=1) / math.sqrt(len(virial))
        assert abs(estimate - temperature) < 4 * error + allowance.mean(), (layer, estimate)
