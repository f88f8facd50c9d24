"""The kernel ladder of a two-layer network: from the sampled posterior-mean training predictor to the
Gaussian closure (VGA), one approximation at a time, from the stored first-layer draws W
(observables.first_layer_weights).

Exact identity [DERIVED]. Network f(x) = Σ_i a_i φ(w_i·x), N neurons, features Φ_W = φ(X Wᵀ) (n × N) on
the training inputs X (n × d). The convention (docs/conventions.md) samples p(θ) ∝ exp(−U/T) with

    U = ½ |Φ_W a − y|² + (γ_a/2)|a|² + (γ_w/2)|W|²,   prior variance v_a = T/γ_a = σ̃_a²/(χN) per readout
    weight, noise σ² = T = σ̃²/χ.

At fixed W the a-dependence is Gaussian: precision (Φ_WᵀΦ_W + γ_a I)/T, mean (Φ_WᵀΦ_W + γ_a I)⁻¹Φ_Wᵀy.
So, with the push-through identity Φ(ΦᵀΦ + γI)⁻¹Φᵀ = ΦΦᵀ(ΦΦᵀ + γI)⁻¹ and γ_a = T/v_a,

    E[f(X) | W] = Φ_W (Φ_WᵀΦ_W + γ_a I)⁻¹ Φ_Wᵀ y = K_W (K_W + σ² I)⁻¹ y,
    K_W = v_a Φ_W Φ_Wᵀ = (σ_a²/N) Σ_i φ(X w_i) φ(X w_i)ᵀ,   σ_a² = σ̃_a²/χ (the NNGP's readout numerator),

exactly (mean-field χ = N: v_a = σ̃_a²/N²). The posterior-mean predictor is f̄ = E_W[K_W(K_W + σ²)⁻¹y].

The ladder (R_p = g·h_p / y·h_p of each predictor g on the training set, h_p = He_p(X v*)):
- sampled: the per-draw f(X) of the chains (f_train);
- rao_blackwell (i): K_W(K_W + σ²)⁻¹y averaged over every sampled W (all chains and draws): the same
  posterior mean (it must agree with `sampled` within the MCSE plus the step-size allowance), with
  the readout's conditional noise integrated out (smaller variance);
- mean_kernel (ii): K̄(K̄ + σ²)⁻¹y with K̄ = E_W[K_W] = σ_a² E_{w~p₁}[φ(Xw)φ(Xw)ᵀ] (p₁ the one-neuron
  marginal, the neurons being exchangeable); (ii) − (i) is the effect of the posterior fluctuations of
  the kernel K_W around its mean, second order in them: E[g(K)] − g(K̄) = −σ² E[RδK RδK R] y + …,
  R = (K̄ + σ²)⁻¹;
- gaussian_given_q_binned (ii″, with a teacher direction v*): K̄ of the weights w̃ = q v* + r that keep
  every sampled q = w·v* (its full, non-Gaussian law) and draw the rest r from a Gaussian with the sampled
  mean and covariance of r in the quantile bin of q (Q_BINS bins; seeded): p₁ as a family of Gaussians
  indexed by q. (ii″) − (ii) is the non-Gaussian shape of r given q;
- gaussian_given_q_linear (ii′): the same with r | q Gaussian of the sampled moments, linear in q
  (regression on q, conditional covariance independent of q). If p₁ were Gaussian, (ii′) and (ii″) would
  equal (iii′) up to the draws' noise: (ii′) − (ii″) is the nonlinear dependence of r's mean and
  covariance on q, (iii′) − (ii′) the non-Gaussian shape of p(q) itself;
- gaussian_mean_covariance (iii′, relu only): a Gaussian N(m, C) with the sampled mean m = E[w] and
  covariance C = M − m mᵀ (`theory.relu_shifted_gram`): a ReLU network has no w → −w symmetry, so p₁
  can have a mean (for an odd φ, erf, m = 0 by the symmetry (w, a) → (−w, −a), and the rung is omitted);
- gaussian_second_moment (iii): a zero-mean Gaussian w ~ N(0, M) with the sampled second moment
  M = E[w wᵀ] (the closure's family, `COVARIANCE_KERNELS[φ].gram`); (iii) − (ii) is the whole
  non-Gaussian shape of p₁ at fixed second moment, (iii) − (iii′) the part of it carried by the mean;
- vga (iv): the closure's own Σ (`theory.adaptive_kernel`); (iv) − (iii) is the closure's covariance error;
- gp: the prior Σ = σ_w²/d I (the NNGP posterior mean), for scale.

Errors. `sampled` and `rao_blackwell` are means of per-draw series: their MCSE (ESS over all chains,
`langevin.diagnostics.mcse_mean`). Every rung and every difference of consecutive rungs also gets a
leave-one-chain-out jackknife standard error (the chains are independent; the plug-in rungs are
smooth functions of chain means: K̄, M, m), `se`. The VGA and GP rungs carry no sampling error.
Shapes: weights (chain, draw, N, d), f_train (chain, draw, n), X (n, d), y (n,), probes (n, k).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.compare.theory_inputs import is_two_layer, two_layer_inputs
from experiments.rundirs import rundir, shards
from experiments.rundirs.run_draws import chain_draw
from experiments.setup.run_mode_setup import theory_skip_reason
from langevin import diagnostics
from langevin.store import SampleStore
from theory.adaptive_kernel import COVARIANCE_KERNELS, solve_adaptive_kernel
from theory.hermite import hermite_he
from theory.relu_shifted_gram import relu_gram_with_mean

WEIGHTS = "first_layer_weights"   # langevin.observables.first_layer_weights
PROBE_DEGREES = (1, 2)
RUNGS = ("sampled", "rao_blackwell", "mean_kernel", "gaussian_given_q_binned", "gaussian_given_q_linear",
         "gaussian_mean_covariance", "gaussian_second_moment", "vga", "gp")
Q_BINS = 100                       # quantile bins of q (at most: ≥ 20·d neurons per bin)
CHUNK = 512                        # draws per batched solve
SEED = 20260                       # the Gaussian rests of the gaussian_given_q_* rungs


def predictor(kernel: np.ndarray, y: np.ndarray, noise_variance: float) -> np.ndarray:
    """g = K (K + σ² I)⁻¹ y = y − σ² (K + σ² I)⁻¹ y for K (..., n, n) → (..., n)."""
    n = len(y)
    shifted = kernel + noise_variance * np.eye(n)
    rhs = np.broadcast_to(y, kernel.shape[:-1])[..., None]
    return y - noise_variance * np.linalg.solve(shifted, rhs)[..., 0]


def ratios(g: np.ndarray, y: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """R_p = g·h_p / y·h_p for g (..., n) and probes (n, k) → (..., k)."""
    return (g @ probes) / (y @ probes)


def _jackknife(values: np.ndarray) -> np.ndarray:
    """Standard error from leave-one-chain-out values (C, ...)."""
    C = values.shape[0]
    return np.sqrt((C - 1) / C * ((values - values.mean(0)) ** 2).sum(0))


def _draw_kernels(W, X, y, H, phi, readout_variance, noise_variance):
    """Per draw R_p of K_W(K_W + σ²)⁻¹y (chain, draw, k) and the per-chain mean kernel E_draws[K_W]
    (chain, n, n), K_W = v_a φ(XWᵀ)φ(XWᵀ)ᵀ, for W (chain, draw, N, d), in batches of CHUNK draws."""
    C, D, N, d = W.shape
    flat = W.reshape(C * D, N, d)
    per_draw, chain_kernel = np.empty((C * D, H.shape[1])), np.zeros((C, len(y), len(y)))
    for start in range(0, C * D, CHUNK):
        features = phi(np.einsum("nd,bid->bni", X, flat[start:start + CHUNK]))
        K = readout_variance * np.einsum("bni,bmi->bnm", features, features)
        per_draw[start:start + CHUNK] = ratios(predictor(K, y, noise_variance), y, H)
        np.add.at(chain_kernel, np.arange(start, start + len(K)) // D, K / D)
    return per_draw.reshape(C, D, -1), chain_kernel


def _gaussian_given_q(W, v):
    """The weights w̃ = q v + r with the sampled q = w·v of every stored neuron and r drawn (seed SEED) from the
    Gaussian law of the rest given q with the pooled moments: r | q ~ N(m_⊥ + β(q − m_q), C_⊥ − β βᵀ var_q),
    m_⊥ = P_⊥m, β = P_⊥Cv/var_q, C_⊥ = P_⊥CP_⊥ (m, C the mean and covariance of one neuron's w)."""
    d = W.shape[-1]
    flat = W.reshape(-1, d)
    m = flat.mean(0)
    cov = np.cov(flat, rowvar=False)
    P = np.eye(d) - np.outer(v, v)
    q = W @ v
    var_q = float(v @ cov @ v)
    beta = P @ cov @ v / var_q
    conditional = P @ cov @ P - np.outer(beta, beta) * var_q
    values, vectors = np.linalg.eigh(0.5 * (conditional + conditional.T))
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    noise = np.random.default_rng(SEED).standard_normal(W.shape) @ root.T
    return q[..., None] * v + (P @ m) + (q - m @ v)[..., None] * beta + noise


def _q_deciles(W, v, input_mean):
    """Per decile of q = w·v over all stored neurons: the mean of q, of r·x̄ and of |r|², r = w − q v the rest,
    x̄ the mean training input (how the rest's law moves with the alignment q)."""
    d = W.shape[-1]
    q = (W @ v).ravel()
    rest = W.reshape(-1, d) - q[:, None] * v
    edges = np.quantile(q, np.linspace(0.0, 1.0, 11))
    which = np.clip(np.searchsorted(edges, q, side="right") - 1, 0, 9)
    pick = [which == b for b in range(10)]
    return {"q": [float(q[p].mean()) for p in pick],
            "rest_along_input_mean": [float((rest[p] @ input_mean).mean()) for p in pick],
            "rest_squared_norm": [float((rest[p] ** 2).sum(-1).mean()) for p in pick]}


def _gaussian_given_binned_q(W, v):
    """w̃ = q v + r with the sampled q = w·v of every stored neuron and r drawn (seed SEED) from a Gaussian with
    the mean and covariance of the sampled r = w − q v in the quantile bin of q that holds it (Q_BINS bins,
    fewer when a bin would hold under 20·d neurons): the rest r Gaussian given q, with any dependence of
    its mean and covariance on q."""
    d = W.shape[-1]
    q = (W @ v).ravel()
    rest = W.reshape(-1, d) - q[:, None] * v
    bins = max(1, min(Q_BINS, len(q) // (20 * d)))
    edges = np.quantile(q, np.linspace(0.0, 1.0, bins + 1))
    which = np.clip(np.searchsorted(edges, q, side="right") - 1, 0, bins - 1)
    rng = np.random.default_rng(SEED)
    out = np.empty_like(rest)
    for b in range(bins):
        members = rest[which == b]
        values, vectors = np.linalg.eigh(np.cov(members, rowvar=False))
        root = vectors * np.sqrt(np.clip(values, 0.0, None))
        out[which == b] = members.mean(0) + rng.standard_normal(members.shape) @ root.T
    return (q[:, None] * v + out).reshape(W.shape)


def kernel_ladder(weights, x, y, probes, *, readout_variance: float, noise_variance: float, activation: str,
                  f_train=None, vga_covariance=None, prior_covariance=None, teacher=None) -> dict:
    """The ladder of the module docstring. readout_variance: v_a = σ̃_a²/(χN), the prior variance of one
    readout weight (so K_W = v_a Φ_WΦ_Wᵀ); noise_variance: σ² = T; teacher: the unit v* (d,) of the q rungs
    (omitted without it); vga_covariance / prior_covariance: Σ of the vga / gp rungs (omitted when None);
    at least 2 chains and 4 draws. Returns {"rungs": [...], "R": {rung: [R_p]}, "mcse": {rung: [...]}, "se": {rung: [...]}, "differences": {"b-a": {"value", "se"}} (consecutive rungs
    and rao_blackwell − sampled), "variance_ratio": per-draw variance of R_p, Rao-Blackwellized / sampled,
    "moments": {"mean", "second_moment"} of one neuron's w, and with a `teacher` v* "q_deciles" (`_q_deciles`)}."""
    if activation not in COVARIANCE_KERNELS:
        raise ValueError(f"activation must be one of {sorted(COVARIANCE_KERNELS)}, got {activation!r}")
    W = np.asarray(weights, dtype=np.float64)
    X, y, H = (np.asarray(a, dtype=np.float64) for a in (x, y, probes))
    if W.ndim != 4 or W.shape[-1] != X.shape[1] or W.shape[0] < 2:
        raise ValueError(f"weights must have shape (chain ≥ 2, draw, N, {X.shape[1]}), got {W.shape}")
    if not (readout_variance > 0 and noise_variance > 0):
        raise ValueError(f"readout_variance and noise_variance must be positive, got "
                         f"{readout_variance!r}, {noise_variance!r}")
    C, D, N, d = W.shape
    phi = COVARIANCE_KERNELS[activation].activation
    sa2 = readout_variance * N                                  # σ_a² = σ̃_a²/χ
    per_draw, chain_kernel = _draw_kernels(W, X, y, H, phi, readout_variance, noise_variance)
    per_draw = per_draw.reshape(C, D, -1)
    chain_mean = W.mean(axis=(1, 2))                             # (C, d)
    chain_moment = np.einsum("cbid,cbie->cde", W, W) / (D * N)   # (C, d, d)
    keep = ~np.eye(C, dtype=bool)                                # row c: every chain but c

    def plug_in(kernel_of):
        full = ratios(predictor(kernel_of(slice(None)), y, noise_variance), y, H)
        loo = np.stack([ratios(predictor(kernel_of(keep[c]), y, noise_variance), y, H) for c in range(C)])
        return full, loo

    gram = COVARIANCE_KERNELS[activation].gram
    rungs = {"rao_blackwell": (per_draw.mean((0, 1)), np.stack([per_draw[keep[c]].mean((0, 1)) for c in range(C)])),
             "mean_kernel": plug_in(lambda s: chain_kernel[s].mean(0)),
             "gaussian_second_moment": plug_in(lambda s: sa2 * gram(X, chain_moment[s].mean(0)).gram)}
    mcse = {"rao_blackwell": diagnostics.mcse_mean(per_draw)}
    if f_train is not None:
        f = np.asarray(f_train, dtype=np.float64)
        if f.shape != (C, D, len(y)):
            raise ValueError(f"f_train must have shape {(C, D, len(y))}, got {f.shape}")
        sampled = ratios(f, y, H)
        rungs["sampled"] = (sampled.mean((0, 1)), np.stack([sampled[keep[c]].mean((0, 1)) for c in range(C)]))
        mcse["sampled"] = diagnostics.mcse_mean(sampled)
        mcse["rao_blackwell-sampled"] = diagnostics.mcse_mean(per_draw - sampled)
    deciles = None
    if teacher is not None:
        v = np.asarray(teacher, dtype=np.float64)
        deciles = _q_deciles(W, v, X.mean(0))
        for name, synthetic in (("gaussian_given_q_binned", _gaussian_given_binned_q(W, v)),
                                ("gaussian_given_q_linear", _gaussian_given_q(W, v))):
            kernel = _draw_kernels(synthetic, X, y, H, phi, readout_variance, noise_variance)[1]
            rungs[name] = plug_in(lambda s, kernel=kernel: kernel[s].mean(0))
    if activation == "relu":
        def shifted(s):
            m, M = chain_mean[s].mean(0), chain_moment[s].mean(0)
            return sa2 * relu_gram_with_mean(X, m, M - np.outer(m, m))
        rungs["gaussian_mean_covariance"] = plug_in(shifted)
    for name, covariance in (("vga", vga_covariance), ("gp", prior_covariance)):
        if covariance is not None:
            value = ratios(predictor(sa2 * gram(X, covariance).gram, y, noise_variance), y, H)
            rungs[name] = (value, np.broadcast_to(value, (C, len(value))))
    order = [r for r in RUNGS if r in rungs]
    pairs = list(zip(order[:-1], order[1:]))
    if "sampled" in rungs:
        pairs = [("sampled", "rao_blackwell")] + [p for p in pairs if p != ("sampled", "rao_blackwell")]
    out = {"rungs": order,
           "R": {r: rungs[r][0].tolist() for r in order},
           "se": {r: _jackknife(rungs[r][1]).tolist() for r in order},
           "mcse": {k: np.asarray(v).tolist() for k, v in mcse.items()},
           "differences": {f"{b}-{a}": {"value": (rungs[b][0] - rungs[a][0]).tolist(),
                                        "se": _jackknife(rungs[b][1] - rungs[a][1]).tolist()} for a, b in pairs},
           "moments": {"mean": chain_mean.mean(0).tolist(), "second_moment": chain_moment.mean(0).tolist()},
           "num_draws": int(C * D), "width": int(N)}
    if deciles is not None:
        out["q_deciles"] = deciles
    if "sampled" in rungs:
        out["variance_ratio"] = (per_draw.reshape(C * D, -1).var(0) / sampled.reshape(C * D, -1).var(0)).tolist()
    return out


def hermite_probes(x: np.ndarray, teacher: np.ndarray, degrees=PROBE_DEGREES) -> np.ndarray:
    """He_p(X v*) for p in degrees: (n, k)."""
    z = x @ teacher
    return np.stack([hermite_he(p, z) for p in degrees], axis=1)


def kernel_ladder_from_run(run_dir, *, logdet_term: bool = True) -> dict:
    """The ladder of a run directory whose draws include first_layer_weights (one hidden fc layer without
    bias, an activation of `COVARIANCE_KERNELS`, the Gaussian likelihood, a teacher direction v*). The VGA is
    solved on the run's training set (`logdet_term` as `theory.adaptive_kernel`), started from the sampled
    second moment; its convergence is reported under "vga_solver"."""
    run_dir = Path(run_dir)
    if shards.is_sharded_dir(run_dir):
        raise ValueError(f"{str(run_dir)!r} is a sharded run: its report's relu_learnability section holds the "
                         "kernel ladder of the merged draws (`langevin report`)")
    config = rundir.load_config(run_dir)
    if not config["observables"]["first_layer_weights"]:
        raise ValueError(f"{str(run_dir)!r}: config key 'observables.first_layer_weights' is false: "
                         "the run stored no first-layer draws")
    reason = theory_skip_reason(config)
    if reason is not None or not is_two_layer(config):
        raise ValueError(f"{str(run_dir)!r}: the kernel ladder needs one hidden fc layer without bias "
                         f"(model.widths, model.bias) and the Gaussian likelihood; {reason or 'not two-layer'}")
    if config["model"]["activation"] not in COVARIANCE_KERNELS:
        raise ValueError(f"config key 'model.activation' must be one of {sorted(COVARIANCE_KERNELS)} for the "
                         f"kernel ladder, got {config['model']['activation']!r}")
    meta = rundir.read_json(run_dir / rundir.META_FILE)
    data = rundir.read_run_data(run_dir)
    if data.teacher_direction is None:
        raise ValueError(f"{str(run_dir)!r}: the data have no teacher direction v* (the probes He_p(X v*))")
    ds = SampleStore(run_dir / rundir.SAMPLES_DIR, config["sampler"]["num_chains"]).open()
    inputs = two_layer_inputs(config, meta, n_train=len(data.y_train), input_dim=data.x_train.shape[1])
    return ladder_of_draws(inputs, data, ds, logdet_term=logdet_term)


def ladder_of_draws(inputs, data, ds, *, vga_covariance=None, logdet_term: bool = True) -> dict:
    """The ladder from a run's draws `ds` (first_layer_weights, f_train if recorded) and its
    `TwoLayerTheoryInputs`; the VGA Σ is solved here unless given."""
    W = chain_draw(ds[WEIGHTS], "neuron", "input")
    f = chain_draw(ds["f_train"], "train_point") if "f_train" in ds else None
    d = data.x_train.shape[1]
    solver = None
    if vga_covariance is None:
        second = np.einsum("cbid,cbie->de", W, W) / (W.shape[0] * W.shape[1] * W.shape[2])
        solution = solve_adaptive_kernel(data.x_train, data.y_train, inputs.prior, logdet_term=logdet_term,
                                         initial_covariance=second)
        vga_covariance = solution.covariance
        solver = {"converged": solution.converged, "residual": solution.residual, "message": solution.message,
                  "logdet_term": logdet_term}
    out = kernel_ladder(W, data.x_train, data.y_train, hermite_probes(data.x_train, data.teacher_direction),
                        readout_variance=inputs.gp_sigma_a2 / inputs.width, noise_variance=inputs.noise_variance,
                        activation=inputs.activation, f_train=f, vga_covariance=vga_covariance,
                        prior_covariance=inputs.sigma_w2 / d * np.eye(d), teacher=data.teacher_direction)
    v = data.teacher_direction
    out["degrees"] = list(PROBE_DEGREES)
    out["moments"]["mean_parallel"] = float(np.asarray(out["moments"]["mean"]) @ v)
    out["moments"]["second_moment_parallel"] = float(v @ np.asarray(out["moments"]["second_moment"]) @ v)
    out["moments"]["vga_parallel"] = float(v @ vga_covariance @ v)
    if solver is not None:
        out["vga_solver"] = solver
    return out
