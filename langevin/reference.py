"""Reference sampler: NUTS (NumPyro) on the posterior of the two-layer network, to check
the Langevin samplers on tiny problems with an independent, exact-in-the-limit method.

The model is `langevin.models.TwoLayerNetwork` with the project's convention
(docs/conventions.md), written in NumPyro:

    w_i ~ N(0, prior_variances["w"] · I_d),   a_i ~ N(0, prior_variances["a"]),
    y_μ ~ N(f(x_μ), noise_variance),          f(x) = Σ_{i=1}^{N} a_i φ(w_i·x),

i.e. the density ∝ exp(−U/T) with U = ½ Σ (f − y)² + Σ_l (γ_l/2)|θ_l|², T =
noise_variance and γ_l = T/prior_variances[l] (the ½-SSE loss: σ² = T). Sampled with
the No-U-Turn sampler (M. D. Hoffman, A. Gelman, JMLR 15, 1593–1623 (2014)) with
NumPyro's dense-free defaults (diagonal mass matrix and step size adapted during
warm-up), `chain_method="vectorized"`: all chains in one batched JAX program.

JAX and NumPyro are an optional extra (`pip install -e ".[jax]"`), imported only inside
the functions of this module. The posterior is symmetric under permutations of the
neurons and, for odd φ, under (w_i, a_i) → (−w_i, −a_i): NUTS chains (like Langevin
chains) may sit in different copies of a mode, so compare symmetric statistics only.
"""
from __future__ import annotations

import math
from typing import Mapping, NamedTuple

import numpy as np

INSTALL_HINT = ('the reference sampler needs the optional [jax] extra: pip install -e ".[jax]" '
                "(or: pip install jax numpyro)")


class ReferenceSamplerUnavailable(ImportError):
    """JAX or NumPyro is not installed."""


class NutsDraws(NamedTuple):
    theta: dict[str, np.ndarray]  # "w": (chain, draw, N, d), "a": (chain, draw, N)
    num_divergences: int  # divergent transitions after warm-up, all chains
    mean_acceptance: float  # mean acceptance statistic after warm-up


def _import_numpyro():
    try:
        import jax
        import numpyro
    except ImportError as err:
        raise ReferenceSamplerUnavailable(f"{INSTALL_HINT} ({err})") from None
    return jax, numpyro


def require_reference_sampler() -> None:
    """Raise `ReferenceSamplerUnavailable` (with the install command) unless JAX and
    NumPyro can be imported."""
    _import_numpyro()


def _float64(jax):
    """A context in which JAX computes in float64 (the global flag is left as it was)."""
    if hasattr(jax, "enable_x64"):  # JAX ≥ 0.4.3x: a config context manager
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # older JAX

    return enable_x64()


def _jax_activation(name: str):
    """φ in jax.numpy, the same functions as `langevin.activations.ACTIVATIONS`."""
    import jax
    import jax.numpy as jnp

    table = {
        "erf": jax.scipy.special.erf,
        "relu": jax.nn.relu,
        "tanh": jnp.tanh,
        "linear": lambda h: h,
        "quadratic": lambda h: h * h,
    }
    if name not in table:
        raise ValueError(f"activation must be one of {sorted(table)}, got {name!r}")
    return table[name]


def nuts_two_layer_posterior(
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    width: int,
    activation: str,
    prior_variances: Mapping[str, float],
    noise_variance: float,
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    seed: int = 0,
    target_accept_prob: float = 0.9,
) -> NutsDraws:
    """NUTS draws of (w, a) from the posterior of the module docstring, float64.

    x_train: (n, d), y_train: (n,). Returns `NutsDraws` with arrays (chain, draw, ...).
    Raises `ReferenceSamplerUnavailable` (with the install command) without JAX/NumPyro.
    """
    jax, numpyro = _import_numpyro()
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    if not (noise_variance > 0 and math.isfinite(noise_variance)):
        raise ValueError(f"noise_variance must be positive and finite, got {noise_variance!r}")
    for layer in ("w", "a"):
        if not prior_variances.get(layer, 0) > 0:
            raise ValueError(f"prior_variances[{layer!r}] must be positive, got "
                             f"{prior_variances.get(layer)!r}")
    phi = _jax_activation(activation)
    x = np.asarray(x_train, dtype=np.float64)
    y = np.asarray(y_train, dtype=np.float64)
    d = x.shape[1]
    scale_w, scale_a = math.sqrt(prior_variances["w"]), math.sqrt(prior_variances["a"])
    noise_scale = math.sqrt(noise_variance)

    def model(x, y):
        w = numpyro.sample("w", dist.Normal(0.0, scale_w).expand([width, d]).to_event(2))
        a = numpyro.sample("a", dist.Normal(0.0, scale_a).expand([width]).to_event(1))
        f = phi(x @ w.T) @ a  # (n,)
        numpyro.sample("y", dist.Normal(f, noise_scale), obs=y)

    with _float64(jax):
        kernel = NUTS(model, target_accept_prob=target_accept_prob)
        mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples,
                    num_chains=num_chains, chain_method="vectorized", progress_bar=False)
        mcmc.run(jax.random.PRNGKey(seed), jnp.asarray(x), jnp.asarray(y),
                 extra_fields=("diverging", "accept_prob"))
        samples = mcmc.get_samples(group_by_chain=True)
        extra = mcmc.get_extra_fields(group_by_chain=True)
        theta = {layer: np.asarray(samples[layer], dtype=np.float64) for layer in ("w", "a")}
        divergences = int(np.asarray(extra["diverging"]).sum())
        acceptance = float(np.asarray(extra["accept_prob"]).mean())
    return NutsDraws(theta, divergences, acceptance)
