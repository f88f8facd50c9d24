"""Finite-data theory of one staircase run: the adaptive-kernel (VGA) and GP posterior means solved on the run's
OWN training set (X, y), and their POPULATION learnability of the cubic component, beside the sampled network.

The population theories of `experiments.compare.staircase_sampled` (`theory.staircase`: the Gaussian closure in
the single-index reduction and the self-consistent NNGP; `theory.cubic_teacher`: the Landau theory with the exact
p(q)) replace the P training points by their population average. Here the data stay finite: `theory.adaptive_kernel.solve_adaptive_kernel` (the VGA of Seroussi, Naveh &
Ringel, Nat. Commun. 2023; Ringel et al. 2025, arXiv:2502.18553 for the staircase target) on (X, y) (two-layer erf,
mean-field χ = N, the run's own prior and noise from meta.json, `experiments.compare.theory_inputs`) gives Σ_VGA and

    f̄(x) = σ_a² K_Σ(x, X) α,   α = (σ_a² K_Σ(X, X) + σ² I)⁻¹ y,   K_Σ(x, x') = E_{w~N(0,Σ)}[erf(w·x) erf(w·x')],

(σ_a² = σ̃_a²/χ the readout prior variance per unit of N, σ² = σ̃²/χ the Gaussian likelihood variance = T of the
Langevin potential U = ½Σ_μ(f(x_μ)−y_μ)² + Σ_l γ_l/2 |θ_l|², whose prior variances are T/γ_l; w ~ N(0, σ_w²/d I)),
and the GP (NNGP) is the same formula at Σ = σ_w²/d I. The population learnabilities of this f̄,

    L_k = E_x[f̄ He_k(z*)] / E_x[y He_k(z*)],   z* = w*·x, x ~ N(0, I_d),   E_x[y He_1] = 1 + 3ε, E_x[y He_3] = 6ε,

follow from exchanging the x and w averages: E_x[f̄ He_k] = σ_a² E_w[(Σ_μ α_μ erf(w·x_μ)) P_k(w)] with
P_k(w) = E_x[erf(w·x) He_k(z*)] in closed form by Stein's lemma. That is the Hermite projection of a two-layer erf
network whose neurons are M draws w_i ~ N(0, Σ) with readouts a_i = σ_a² Σ_μ α_μ erf(w_i·x_μ)/M, so
`langevin.observables.erf_hermite_projections` (the sampled runs' own observable) evaluates it. Monte Carlo over
w only (no test set; the x average is exact): `num_batches` independent batches of M draws are the "chains", the
estimate is their mean and its standard error their standard deviation / √batches.

Also reported: the training-set ratio f̄(X)·He_3(Xw*)/y·He_3(Xw*) of the VGA (the sampled runs report the same
ratio), w*ᵀΣ_VGA w* against the sampled E[q²] (the mean over chains, draws and neurons of (w_i·w*)²), and the mean
perpendicular variance (tr Σ − w*ᵀΣw*)/(d − 1).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
from scipy import special

from experiments.compare.theory_inputs import network_prior
from experiments.rundirs import rundir
from langevin.export import open_samples
from langevin.integrators import LangevinState
from langevin.observables import erf_hermite_projections
from theory.adaptive_kernel import scan_adaptive_kernel
from theory.erf_covariance_gradient import erf_gram
from theory.hermite import hermite_he
from theory.staircase import cubic_target_coefficients

DRAWS_PER_BATCH = 20000
NUM_BATCHES = 16
NOISE_START_FACTOR = 100.0
NOISE_STEPS = 16


def covariance_root(covariance) -> np.ndarray:
    """A (d, d) with A Aᵀ = Σ from the eigendecomposition (Σ PSD, singular allowed: w = A u, u ~ N(0, I))."""
    S = np.asarray(covariance, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1] or not np.all(np.isfinite(S)):
        raise ValueError(f"covariance must be a finite square matrix, got shape {S.shape}")
    values, vectors = np.linalg.eigh(0.5 * (S + S.T))
    if values.min() < -1e-12 * max(values.max(), 1.0):
        raise ValueError(f"covariance must be positive semi-definite, smallest eigenvalue {values.min():.3g}")
    return vectors * np.sqrt(np.clip(values, 0.0, None))


def population_hermite_projections(covariance, x_train, alpha, readout_variance: float, teacher, *,
                                   draws_per_batch: int = DRAWS_PER_BATCH, num_batches: int = NUM_BATCHES,
                                   seed: int = 0) -> dict:
    """(E_x[f̄ He_1(z*)], E_x[f̄ He_3(z*)]) of f̄(x) = σ_a² E_{w~N(0,Σ)}[erf(w·x) erf(w·X)]ᵀ α (module docstring).

    covariance Σ (d, d); x_train X (n, d); alpha (n,); readout_variance σ_a² (physical, σ̃_a²/χ); teacher w*
    (d,), |w*| = 1. Monte Carlo over w: `num_batches` ≥ 2 independent batches of `draws_per_batch` draws (numpy
    seed `seed`). Returns "mean" (2,), "se" (2,) (standard error of the batch mean) and "batches" (num_batches, 2).
    """
    X = np.asarray(x_train, dtype=np.float64)
    a_vec = np.asarray(alpha, dtype=np.float64)
    v = np.asarray(teacher, dtype=np.float64)
    if X.ndim != 2 or a_vec.shape != (X.shape[0],) or v.shape != (X.shape[1],):
        raise ValueError(f"x_train (n, d), alpha (n,) and teacher (d,) must agree, got {X.shape}, {a_vec.shape}, "
                         f"{v.shape}")
    if abs(float(v @ v) - 1.0) > 1e-8:
        raise ValueError(f"teacher must have unit norm, got |w*| = {math.sqrt(float(v @ v)):.6g}")
    if int(num_batches) < 2 or int(draws_per_batch) < 1:
        raise ValueError(f"num_batches must be >= 2 and draws_per_batch >= 1, got {num_batches}, {draws_per_batch}")
    root = covariance_root(covariance)
    if root.shape[0] != X.shape[1]:
        raise ValueError(f"covariance must be ({X.shape[1]}, {X.shape[1]}), got {root.shape}")
    rng = np.random.default_rng(seed)
    observable = erf_hermite_projections(torch.from_numpy(v))
    batches = np.empty((int(num_batches), 2))
    for b in range(int(num_batches)):  # one batch at a time keeps the (n, M) erf matrix small
        w = rng.standard_normal((int(draws_per_batch), X.shape[1])) @ root.T          # (M, d), w ~ N(0, Σ)
        readout = readout_variance * (special.erf(w @ X.T) @ a_vec) / w.shape[0]    # (M,)
        theta = {"w": torch.from_numpy(w[None]), "a": torch.from_numpy(readout[None])}
        state = LangevinState(theta, torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64), {})
        batches[b] = observable.fn(state)["hermite_projection"][0].numpy()
    return {"mean": batches.mean(axis=0), "se": batches.std(axis=0, ddof=1) / math.sqrt(batches.shape[0]),
            "batches": batches}


def population_learnabilities(covariance, x_train, alpha, readout_variance: float, teacher, epsilon: float,
                              **options) -> dict:
    """L_1, L_3 (population, module docstring) of f̄ at the weight covariance Σ with their Monte Carlo errors."""
    y1, y3 = cubic_target_coefficients(epsilon)
    proj = population_hermite_projections(covariance, x_train, alpha, readout_variance, teacher, **options)
    scale = np.array([y1, 6.0 * y3])
    return {"L1": float(proj["mean"][0] / scale[0]), "L3": float(proj["mean"][1] / scale[1]),
            "L1_se": float(proj["se"][0] / abs(scale[0])), "L3_se": float(proj["se"][1] / abs(scale[1]))}


def gp_dual_coefficients(x_train, y_train, covariance, readout_variance: float, noise_variance: float) -> np.ndarray:
    """α = (σ_a² K_Σ + σ² I)⁻¹ y with the exact erf Gram K_Σ (`theory.erf_covariance_gradient.erf_gram`)."""
    K = erf_gram(np.asarray(x_train, dtype=np.float64), np.asarray(covariance, dtype=np.float64)).gram
    A = readout_variance * K + noise_variance * np.eye(K.shape[0])
    return np.linalg.solve(A, np.asarray(y_train, dtype=np.float64))


def _vga_by_noise_continuation(X, y, prior, probe, steps: int = NOISE_STEPS):
    """`solve_adaptive_kernel` at the run's σ̃², reached by continuation in the noise numerator from
    NOISE_START_FACTOR·σ̃² (the GP side, where the GP start converges) down to σ̃² in `steps` geometric steps
    (`theory.adaptive_kernel.scan_adaptive_kernel`): from the GP start at σ̃² itself the root finder stalls."""
    target = prior.noise_variance_tilde
    values = np.geomspace(NOISE_START_FACTOR * target, target, int(steps))
    path = scan_adaptive_kernel(X, y, lambda v: dataclasses.replace(prior, noise_variance_tilde=float(v)), values,
                                probes=probe)
    vga = path.solutions[-1]
    if not path.converged or not vga.converged:
        raise RuntimeError(f"the finite-data VGA did not converge on the noise path {values.round(4).tolist()}: "
                           f"failed at {list(path.failed_values)}; {vga.message}")
    return vga


def finite_data_theory(x_train, y_train, teacher, prior, epsilon: float, *, seed: int = 0, **options) -> dict:
    """The VGA (`solve_adaptive_kernel`, log-det term kept: the finite-N action) and the GP (Σ = σ_w²/d I) on
    the data (X, y) with the `theory.network_prior.NetworkPrior` `prior`: their population L_1, L_3 ± Monte Carlo
    error, the VGA's training-set ratio, w*ᵀΣw* and the perpendicular variance of Σ_VGA. Where the VGA does not
    converge its entry is None and "warnings" says why (the GP is a linear solve and always present)."""
    X = np.asarray(x_train, dtype=np.float64)
    y = np.asarray(y_train, dtype=np.float64)
    v = np.asarray(teacher, dtype=np.float64)
    d = X.shape[1]
    sa2, s2 = prior.readout_variance, prior.noise_variance
    probe = hermite_he(3, X @ v)
    out = {"vga": None, "warnings": []}
    try:
        vga = _vga_by_noise_continuation(X, y, prior, probe)
    except RuntimeError as error:
        out["warnings"].append(str(error))
    else:
        parallel = float(v @ vga.covariance @ v)
        out["vga"] = dict(population_learnabilities(vga.covariance, X, vga.discrepancy, sa2, v, epsilon, seed=seed,
                                                    **options),
                          training_set_ratio=float(vga.learnabilities[0]), sigma_parallel=parallel,
                          sigma_perp=(float(np.trace(vga.covariance)) - parallel) / max(d - 1, 1),
                          residual=vga.residual)
    gp_cov = prior.input_variance / d * np.eye(d)
    alpha = gp_dual_coefficients(X, y, gp_cov, sa2, s2)
    out["gp"] = population_learnabilities(gp_cov, X, alpha, sa2, v, epsilon, seed=seed + 1, **options)
    out["prior_q2"] = prior.input_variance / d
    return out


def measure_finite_data(run_dir: Path, epsilon: float, **options) -> dict:
    """`finite_data_theory` on one stored run (its data.npz, config.toml and meta.json), with the sampled E[q²]
    (`w_second_moment_parallel`: the mean of q² over the neurons, averaged over chains and draws) ± its MCSE
    (standard deviation of the per-chain means / √C)."""
    run_dir = Path(run_dir)
    data = rundir.read_run_data(run_dir)
    config = rundir.load_config(run_dir)
    meta = rundir.read_json(run_dir / rundir.META_FILE)
    prior = network_prior(config, meta, data.x_train.shape[1])
    out = finite_data_theory(data.x_train, data.y_train, data.teacher_direction, prior, epsilon, **options)
    ds = open_samples(run_dir / rundir.SAMPLES_DIR)
    q2 = ds["w_second_moment_parallel"].transpose("chain", "draw").values.astype(np.float64).mean(axis=1)
    out["sampled_q2"] = float(q2.mean())
    out["sampled_q2_mcse"] = float(q2.std(ddof=1) / math.sqrt(q2.size))
    return out
