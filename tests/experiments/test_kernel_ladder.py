"""The kernel ladder (experiments.compare.kernel_ladder): the conditional readout identity against a direct
Gaussian conditioning in the run's own convention, the ladder's rungs on synthetic draws whose values are
known, the mean-shifted ReLU Gram, the observables.first_layer_weights key, and a tiny sampled run read
back from its directory."""
import json
import math

import numpy as np
import pytest

from experiments import presets
from experiments.cli import execute, start_run
from experiments.compare import kernel_ladder as kl
from experiments.setup import config as cfg
from experiments.setup.build import resolve_physics
from theory.adaptive_kernel import solve_adaptive_kernel
from theory.network_prior import NetworkPrior
from theory.relu_covariance_gradient import relu_gram
from theory.relu_shifted_gram import relu_gram_with_mean


def _relu(z):
    return np.maximum(z, 0.0)


def test_conditional_mean_is_gaussian_conditioning_in_the_run_convention():
    """E[f(X) | W] = K_W(K_W + σ²)⁻¹y with K_W = v_a ΦΦᵀ equals the mean of the readout posterior
    ∝ exp(−[½|Φa − y|² + γ_a/2 |a|²]/T) with the run's own γ_a and T (mean-field, N = 5)."""
    config, _ = cfg.resolve([presets.get_preset("relu_learnability").overrides],
                            ["model.width=5", "data.d=3", "data.n_train=4"])
    physics = resolve_physics(config, 3)
    gamma_a, T = physics.weight_decays["a"], physics.temperature
    rng = np.random.default_rng(3)
    X, y, W = rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=(5, 3)) / math.sqrt(3)
    Phi = _relu(X @ W.T)
    direct = Phi @ np.linalg.solve(Phi.T @ Phi + gamma_a * np.eye(5), Phi.T @ y)
    v_a = physics.prior_variances["a"]
    assert v_a == pytest.approx(T / gamma_a, rel=1e-12) and v_a == pytest.approx(1.0 / 25, rel=1e-12)
    assert np.allclose(kl.predictor(v_a * Phi @ Phi.T, y, physics.noise_variance), direct, rtol=1e-12, atol=1e-14)
    # The ladder's Rao-Blackwellized rung is that formula averaged over the draws (2 chains × 4 draws).
    scales = np.linspace(0.5, 2.0, 8)
    weights = (scales[:, None, None] * W).reshape(2, 4, 5, 3)
    H = np.stack([X[:, 0], X[:, 1] ** 2 - 1], axis=1)
    out = kl.kernel_ladder(weights, X, y, H, readout_variance=v_a, noise_variance=T, activation="relu")
    each = []
    for s in scales:
        P = _relu(X @ (s * W).T)
        each.append(kl.ratios(P @ np.linalg.solve(P.T @ P + gamma_a * np.eye(5), P.T @ y), y, H))
    assert np.allclose(out["R"]["rao_blackwell"], np.mean(each, axis=0), rtol=1e-12)


def _gaussian_draws(rng, C, D, N, Sigma):
    L = np.linalg.cholesky(Sigma)
    return rng.normal(size=(C, D, N, Sigma.shape[0])) @ L.T


def test_ladder_on_gaussian_weights_with_known_covariance():
    """i.i.d. w ~ N(0, Σ): K̄ = σ_a² K_Σ, so mean_kernel = gaussian_second_moment = gaussian_mean_covariance =
    the Gaussian rung at Σ within 4 jackknife SE; given a VGA solution's Σ, the vga rung reproduces its R_p;
    f drawn from the exact readout conditional makes rao_blackwell − sampled a zero-mean difference."""
    rng = np.random.default_rng(0)
    n, d, N, C, D = 10, 4, 200, 8, 25
    X, teacher = rng.normal(size=(n, d)), np.eye(d)[0]
    y = 2 * _relu(X @ teacher) - math.sqrt(2 / math.pi)
    H = kl.hermite_probes(X, teacher)
    A = rng.normal(size=(d, d))
    Sigma = (A @ A.T / d + np.eye(d)) / d
    W = _gaussian_draws(rng, C, D, N, Sigma)
    v_a, s2 = 1.0 / N ** 2, 2.0 / N                                                 # mean field: σ̃_a² = 1, σ̃² = 2
    # f | W from the exact conditional N(K(K+σ²)⁻¹y, K − K(K+σ²)⁻¹K)
    f = np.empty((C, D, n))
    for c in range(C):
        for k in range(D):
            Phi = _relu(X @ W[c, k].T)
            K = v_a * Phi @ Phi.T
            cov = K - K @ np.linalg.solve(K + s2 * np.eye(n), K)
            f[c, k] = kl.predictor(K, y, s2) + np.linalg.cholesky(cov + 1e-12 * np.eye(n)) @ rng.normal(size=n)
    prior = NetworkPrior(activation="relu", input_dim=d, widths=(N,), weight_variances=(1.0,),
                         readout_variance_tilde=1.0, noise_variance_tilde=2.0, chi=float(N))
    vga = solve_adaptive_kernel(X, y, prior, probes=H)
    assert vga.converged
    out = kl.kernel_ladder(W, X, y, H, readout_variance=v_a, noise_variance=s2, activation="relu",
                           f_train=f, vga_covariance=vga.covariance, prior_covariance=Sigma, teacher=teacher)
    assert out["rungs"] == list(kl.RUNGS)
    assert np.allclose(out["R"]["vga"], vga.learnabilities, rtol=1e-10)
    R, se = ({k: np.asarray(v) for k, v in out[key].items()} for key in ("R", "se"))
    diff = out["differences"]
    for a, b in zip(kl.RUNGS[2:6], kl.RUNGS[3:7]):         # mean_kernel → … → gaussian_second_moment
        gap = diff[f"{b}-{a}"]
        assert np.all(np.abs(np.asarray(gap["value"])) < 4 * np.asarray(gap["se"])), (a, b, gap)
    # "gp" here is the Gaussian rung at the true Σ: the sampled-moment rung scatters around it.
    assert np.all(np.abs(R["gaussian_second_moment"] - R["gp"]) < 4 * se["gaussian_second_moment"])
    check = diff["rao_blackwell-sampled"]
    assert np.all(np.abs(np.asarray(check["value"])) < 4 * np.asarray(out["mcse"]["rao_blackwell-sampled"]))
    assert np.all(np.asarray(out["variance_ratio"]) < 1)                          # Rao-Blackwell: smaller variance
    assert np.allclose(out["moments"]["second_moment"], Sigma, atol=5 * Sigma.max() * math.sqrt(2 / (C * D * N)))
    json.dumps(out)
    with pytest.raises(ValueError, match="activation"):
        kl.kernel_ladder(W, X, y, H, readout_variance=v_a, noise_variance=s2, activation="tanh")


def test_relu_gram_with_mean():
    rng = np.random.default_rng(1)
    X, A = rng.normal(size=(6, 3)), rng.normal(size=(3, 3))
    C = A @ A.T / 3 + 0.1 * np.eye(3)
    assert np.allclose(relu_gram_with_mean(X, np.zeros(3), C), relu_gram(X, C).gram, rtol=1e-12, atol=1e-14)
    m = np.array([0.5, -0.3, 0.8])
    W = rng.multivariate_normal(m, C, size=200_000)
    F = _relu(X @ W.T)
    products = F[:, None, :] * F[None, :, :]
    error = products.std(-1) / math.sqrt(len(W))
    assert np.all(np.abs(relu_gram_with_mean(X, m, C) - products.mean(-1)) < 4 * error)
    with pytest.raises(ValueError, match="mean"):
        relu_gram_with_mean(X, np.zeros(2), C)


def test_first_layer_weights_key():
    base, _ = cfg.resolve([], [])
    on, _ = cfg.resolve([], ["observables.first_layer_weights=true"])
    without = {s: {k: v for k, v in keys.items() if k != "first_layer_weights"} for s, keys in base.items()}
    assert cfg.config_hash(base) == cfg.config_hash(without)             # earlier runs keep their hash
    assert cfg.config_hash(base) != cfg.config_hash(on)
    with pytest.raises(cfg.ConfigError, match="observables.first_layer_weights"):
        cfg.resolve([presets.get_preset("proportional_cnn").overrides],
                    ["model.architecture=cnn", "model.channels=2", "observables.first_layer_weights=true"])


def test_tiny_sampled_run_from_its_directory(tmp_path):
    """A mean-field ReLU run (8 chains, N = 16, d = 4, n = 8) with first_layer_weights: the summary's
    kernel_ladder section and kernel_ladder_from_run agree, and the Rao-Blackwellized R_1 equals the
    sampled one within 4 MCSE of their paired difference plus the O(step_size) allowance step_size·|R_1|
    (the chain's readout law given W is the exact conditional only up to the ULA bias)."""
    settings = ["model.width=16", "data.d=4", "data.n_train=8", "data.n_test=16", "sampler.num_chains=8",
                "sampler.burn_in=1000", "sampler.num_steps=4000", "sampler.thin=10", "sampler.step_size=0.01",
                "sampler.progress=false", "diagnostics.bias_check=off", "observables.first_layer_weights=true"]
    run_dir, config = start_run("relu_learnability", [presets.get_preset("relu_learnability").overrides],
                                settings, tmp_path / "run")
    assert execute(run_dir, config, "relu_learnability") == 0
    section = json.loads((run_dir / "summary.json").read_text())["theory"]["relu_learnability"]["kernel_ladder"]
    out = kl.kernel_ladder_from_run(run_dir)
    assert out["vga_solver"]["converged"]
    assert np.allclose(out["R"]["rao_blackwell"], section["R"]["rao_blackwell"], rtol=1e-12)
    assert np.allclose(out["R"]["vga"], section["R"]["vga"], rtol=1e-6)
    gap = abs(out["differences"]["rao_blackwell-sampled"]["value"][0])
    assert gap < 4 * out["mcse"]["rao_blackwell-sampled"][0] + 0.01 * abs(out["R"]["sampled"][0])
    other, _ = start_run("relu_learnability", [presets.get_preset("relu_learnability").overrides],
                         settings[:-1], tmp_path / "off")
    with pytest.raises(ValueError, match="observables.first_layer_weights"):
        kl.kernel_ladder_from_run(other)
