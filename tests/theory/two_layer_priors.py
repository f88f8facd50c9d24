"""The two-layer network record of the theory tests: f(x) = Σ_i a_i φ(w_i·x), w ~ N(0, σ_w²/d I),
a ~ N(0, σ̃_a²/(χN)), likelihood variance σ̃²/χ (theory.network_prior)."""
from theory.network_prior import NetworkPrior


def two_layer_prior(input_dim, *, width, noise_variance_tilde, readout_variance_tilde=1.0,
                    input_variance=1.0, chi=1.0, activation="erf") -> NetworkPrior:
    return NetworkPrior(activation=activation, input_dim=input_dim, widths=(width,),
                        weight_variances=(input_variance,), readout_variance_tilde=readout_variance_tilde,
                        noise_variance_tilde=noise_variance_tilde, chi=chi)
