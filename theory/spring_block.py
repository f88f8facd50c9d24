"""The spring-block model of feature learning across layers (C. Shi, L. Pan, I. Dokmanić,
"Spring-block theory of feature learning in deep neural networks", Phys. Rev. Lett. 134,
257301 (2025)).

The model
---------
A chain of L blocks on a line, block ℓ = 1 … L at position x_ℓ, block 0 (the input) fixed
at x_0 = 0. Spring ℓ (stiffness k) joins block ℓ − 1 to block ℓ; its elongation is
d_ℓ = x_ℓ − x_{ℓ−1}. A load F pulls the last block. Each block (unit mass) obeys the
equation of motion of Shi, Pan & Dokmanić

    ẍ_ℓ = k (d_{ℓ+1} − d_ℓ) − γ ẋ_ℓ − f_ℓ + σ ξ_ℓ,      k d_{L+1} ≡ F,

with viscous damping γ, white noise ξ_ℓ (⟨ξ_ℓ(t)ξ_m(s)⟩ = δ_ℓm δ(t − s)) of amplitude σ, and
the dry (Coulomb) friction f_ℓ of their forward vs backward pass asymmetry: a sliding
block feels a constant friction μ₊ against forward motion (ẋ_ℓ > 0) and μ₋ against backward
motion (ẋ_ℓ < 0); a block at rest stays at rest while the other forces on it lie in
[−μ₋, μ₊] (they write μ_ℓ, μ_r for μ₊, μ₋).

What the parameters stand for (their dictionary): the DNN's layers are the blocks; the
elongation d_ℓ is the data separation achieved by layer ℓ, d_ℓ = log D_{ℓ−1} − log D_ℓ with
D_ℓ the within/between-class measure of `langevin.separation` (so x_ℓ = log D_0 − log D_ℓ
is the separation accumulated up to layer ℓ); F is the training signal (the loss) pulling on
the output; the friction μ stands for the nonlinearity of the activation (none for a linear
net); the noise σ for the stochasticity of training: SGD noise, learning rate, dropout,
label noise, temperature T; k and γ set the units of force and time.

Its predictions
---------------
The data-separation curve is log D_ℓ − log D_0 = −x_ℓ against ℓ; its shape is that of the
elongation profile d_ℓ:
    linear  (d_ℓ constant, "equiseparation", the law of data separation),
    concave (d_ℓ increasing with ℓ: deep layers separate more, shallow layers lazy),
    convex  (d_ℓ decreasing with ℓ: shallow layers separate more).
The sequence of Shi, Pan & Dokmanić: nonlinear nets without noise are concave; adding noise (5 % dropout)
makes them linear, more noise (30 % dropout) convex.

Limits derived here (each tested in tests/theory/test_spring_block.py):
1. No friction (linear network), any σ: the force balance of the stationary state gives
   k⟨d_ℓ⟩ = F for every ℓ, a linear curve (their "h_L = LF/k, w_ℓ = F/k"). With μ = 0
   the dynamics is linear, so the mean of the discretized chain obeys the deterministic
   recursion and its stationary mean is F/k exactly.
2. No noise, load ramped up slowly from rest (`quasi_static_elongations`): a sliding block
   moves at the threshold, so the tension k d_ℓ drops by μ₊ across every sliding block:
   k d_ℓ = max(0, F − (L + 1 − ℓ) μ₊). Concave; lazy (unstretched) shallow springs when
   F < (L + 1 − ℓ) μ₊.
3. Noise-dominated stationary state (`large_noise_elongations`). In the stationary state
   every ⟨ẋ_ℓ⟩ = 0, so the mean forces balance: k⟨d_{ℓ+1}⟩ − k⟨d_ℓ⟩ = ⟨f_ℓ⟩. For one block
   under a constant force G with white noise, the stationary velocity law is
   p(v) ∝ exp(−(γv²/2 + μ̄|v| − (G − (μ₊ − μ₋)/2) v)·2/σ²), μ̄ = (μ₊ + μ₋)/2, whose mean
   vanishes only at G = (μ₊ − μ₋)/2; then P(ẋ > 0) = ½ and ⟨f⟩ = (μ₊ − μ₋)/2 for every
   σ > 0. Applying this block by block (a mean-field step: in the chain the forces on a
   block fluctuate) gives
       k⟨d_ℓ⟩ = F − (L + 1 − ℓ)(μ₊ − μ₋)/2:
   linear for symmetric friction, convex when the backward friction is the larger
   (μ₋ > μ₊), concave when it is the smaller. The noise amplitude drops out: white noise
   always unsticks the blocks, so for any σ > 0 this is where the chain ends up, after a
   creep whose duration grows as σ falls. (Measured with `simulate` for L = 8, F = 1.5,
   k = γ = 1, μ₊ = 0.1, μ₋ = 0.3, σ = 0.8-1.6: ⟨f_ℓ⟩ = −0.099 ± 0.001 against −0.1, and
   the profile within 0.04 of the formula.)
4. Finite training time (what a training run of finite length sees). After a time t the
   chain has crept only part of the way from the noiseless profile (2) to the stationary
   one (3), the further the larger σ. So at fixed t, increasing σ moves the profile
   continuously from concave to linear and, for μ₋ > μ₊, on to convex: their
   sequence (no dropout: concave; 5 %: linear; 30 %: convex). That the convex regime needs
   μ₋ > μ₊ is derived here from the friction law; they state only the sequence.

Numerics: `simulate` integrates the equation of motion for many independent realizations at
once (float64 arrays of shape (R, L)) by a semi-implicit Euler step with an implicit
(Moreau) treatment of the set-valued friction, which represents sticking exactly:
    v* = v + Δt (k(d_{ℓ+1} − d_ℓ) − γ v) + √Δt σ N(0, 1)
    v' = v* − Δt μ₊ if v* > Δt μ₊;  v* + Δt μ₋ if v* < −Δt μ₋;  0 otherwise
    x' = x + Δt v'.
Without friction the scheme is linear with the exact fixed point, so limit 1 holds for the
discretized chain's stationary mean. The load is ramped linearly over `ramp_time`.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "SpringBlockParameters", "SpringBlockResult", "quasi_static_elongations",
    "large_noise_elongations", "simulate", "profile_shape", "elongation_slope",
]


class SpringBlockParameters(NamedTuple):
    """num_layers L ≥ 1, load F, stiffness k > 0, damping γ ≥ 0, friction_forward μ₊ ≥ 0,
    friction_backward μ₋ ≥ 0, noise σ ≥ 0 (module docstring)."""

    num_layers: int
    load: float
    stiffness: float = 1.0
    damping: float = 1.0
    friction_forward: float = 0.0
    friction_backward: float = 0.0
    noise: float = 0.0


class SpringBlockResult(NamedTuple):
    """Time- and realization-averaged elongations of a simulation.

    elongations: ⟨d_ℓ⟩, shape (L,); standard_error: its Monte Carlo standard error over the
    R independent realizations (sd/√R; zero when σ = 0, where realizations coincide);
    per_realization: each realization's time average, (R, L); forward_fraction: the
    fraction of steps in the window in which block ℓ slid forward, averaged over
    realizations, (L,) (½ in the noise-dominated limit 3); mean_friction: the friction
    force ⟨f_ℓ⟩ over the window (positive against forward motion), (L,); converged: σ = 0: every block
    at rest in static equilibrium at the end; σ > 0: the first and second halves of the
    record agree within 4 standard errors for every ℓ; residual: σ = 0: the largest
    violation of the static conditions (force beyond the friction range, or speed);
    σ > 0: the largest |early − late| / standard error; iterations: time steps taken.
    """

    elongations: np.ndarray
    standard_error: np.ndarray
    per_realization: np.ndarray
    forward_fraction: np.ndarray
    mean_friction: np.ndarray
    converged: bool
    residual: float
    iterations: int


def _validate(params: SpringBlockParameters) -> None:
    if int(params.num_layers) < 1:
        raise ValueError(f"num_layers must be a positive integer, got {params.num_layers!r}")
    if not params.stiffness > 0:
        raise ValueError(f"stiffness must be positive, got {params.stiffness!r}")
    for name in ("damping", "friction_forward", "friction_backward", "noise"):
        value = getattr(params, name)
        if not value >= 0:
            raise ValueError(f"{name} must be non-negative, got {value!r}")
    if not math.isfinite(params.load):
        raise ValueError(f"load must be finite, got {params.load!r}")


def quasi_static_elongations(params: SpringBlockParameters) -> np.ndarray:
    """Noiseless profile after pulling slowly from rest (limit 2): shape (L,),
    d_ℓ = max(0, F − (L + 1 − ℓ) μ₊)/k for ℓ = 1 … L (F ≥ 0)."""
    _validate(params)
    if params.load < 0:
        raise ValueError(f"load must be non-negative for the forward pull, got {params.load!r}")
    layers = np.arange(1, params.num_layers + 1)
    tension = params.load - (params.num_layers + 1 - layers) * params.friction_forward
    return np.maximum(tension, 0.0) / params.stiffness


def large_noise_elongations(params: SpringBlockParameters) -> np.ndarray:
    """Profile in the noise-dominated limit σ² ≫ μ²/γ (limit 3): shape (L,),
    ⟨d_ℓ⟩ = (F − (L + 1 − ℓ)(μ₊ − μ₋)/2)/k. The noise amplitude itself drops out."""
    _validate(params)
    layers = np.arange(1, params.num_layers + 1)
    mean_friction = 0.5 * (params.friction_forward - params.friction_backward)
    return (params.load - (params.num_layers + 1 - layers) * mean_friction) / params.stiffness


def _net_spring_force(x: np.ndarray, load: float, stiffness: float) -> np.ndarray:
    """k(d_{ℓ+1} − d_ℓ) for every block, with k d_{L+1} = F; x: (R, L)."""
    elongation = np.diff(x, axis=1, prepend=0.0)  # d_ℓ = x_ℓ − x_{ℓ−1}, x_0 = 0
    ahead = np.empty_like(elongation)
    ahead[:, :-1] = stiffness * elongation[:, 1:]
    ahead[:, -1] = load
    return ahead - stiffness * elongation


def simulate(params: SpringBlockParameters, time_step: float, ramp_time: float,
             training_time: float, average_time: float, num_realizations: int = 1,
             seed: int = 0) -> SpringBlockResult:
    """Integrate the chain from rest (x = v = 0) for `training_time` and average the
    elongations over the final `average_time` of it, per realization.

    The load rises linearly from 0 to F over ramp_time, then stays. Randomness: numpy
    default_rng(seed), R = num_realizations independent chains in one (R, L) array.
    Stability of the explicit spring step needs Δt√k < 1 and Δt γ < 2 (checked).
    """
    _validate(params)
    if not time_step > 0 or time_step * math.sqrt(params.stiffness) >= 1.0 \
            or time_step * params.damping >= 2.0:
        raise ValueError(f"time_step must be positive with Δt√k < 1 and Δt γ < 2, got "
                         f"{time_step!r}")
    if not (0 <= ramp_time <= training_time) or not (0 < average_time <= training_time):
        raise ValueError(f"need 0 ≤ ramp_time ≤ training_time and 0 < average_time ≤ "
                         f"training_time, got {ramp_time!r}, {training_time!r}, "
                         f"{average_time!r}")
    if int(num_realizations) < 1:
        raise ValueError(f"num_realizations must be ≥ 1, got {num_realizations!r}")
    rng = np.random.default_rng(seed)
    shape = (int(num_realizations), int(params.num_layers))
    x = np.zeros(shape)
    v = np.zeros(shape)
    k, gamma, sigma = params.stiffness, params.damping, params.noise
    stick_forward = time_step * params.friction_forward
    stick_backward = time_step * params.friction_backward
    noise_scale = math.sqrt(time_step) * sigma
    total_steps = max(1, int(round(training_time / time_step)))
    record_steps = min(total_steps, max(1, int(round(average_time / time_step))))
    ramp_steps = int(round(ramp_time / time_step))
    first_recorded = total_steps - record_steps
    half = max(1, record_steps // 2)
    # Σ x over the two halves of the averaging window (d is linear in x: diff at the end)
    sums = [np.zeros(shape), np.zeros(shape)]
    forward = np.zeros(shape)  # steps with v' > 0, for the forward fraction
    friction_sum = np.zeros(shape)  # Σ f_ℓ over the window: f = (v* − v')/Δt
    elongation = np.zeros(shape)
    force = np.empty(shape)
    for step in range(total_steps):
        load = params.load * min(1.0, (step + 1) / ramp_steps) if ramp_steps else params.load
        # k(d_{ℓ+1} − d_ℓ) with k d_{L+1} = F
        np.subtract(x[:, 1:], x[:, :-1], out=elongation[:, 1:])
        elongation[:, 0] = x[:, 0]
        force[:, :-1] = elongation[:, 1:]
        force[:, -1] = load / k
        force -= elongation
        trial = v * (1.0 - time_step * gamma) + (time_step * k) * force  # v*
        if sigma > 0:
            trial += noise_scale * rng.standard_normal(shape)
        v = np.where(trial > stick_forward, trial - stick_forward,
                     np.where(trial < -stick_backward, trial + stick_backward, 0.0))
        x += time_step * v
        recorded = step - first_recorded
        if recorded >= 0:
            sums[0 if recorded < half else 1] += x
            forward += v > 0
            friction_sum += (trial - v) / time_step
    sums = [np.diff(total, axis=1, prepend=0.0) for total in sums]
    per_realization = (sums[0] + sums[1]) / record_steps
    mean = per_realization.mean(0)
    if shape[0] > 1:
        standard_error = per_realization.std(0, ddof=1) / math.sqrt(shape[0])
    else:
        standard_error = np.zeros(shape[1])
    if sigma == 0:
        net = _net_spring_force(x, params.load, k)
        violation = np.maximum(net - params.friction_forward, 0.0) + \
            np.maximum(-params.friction_backward - net, 0.0)
        residual = float(max(violation.max(), np.abs(v).max()))
        converged = residual < 1e-8 * max(1.0, abs(params.load))
    elif record_steps >= 2 and shape[0] > 1:
        early, late = sums[0] / half, sums[1] / (record_steps - half)
        drift = (early - late).mean(0)
        drift_error = (early - late).std(0, ddof=1) / math.sqrt(shape[0])
        residual = float(np.max(np.abs(drift) / drift_error))
        converged = residual < 4.0
    else:
        residual, converged = math.inf, False
    return SpringBlockResult(mean, standard_error, per_realization,
                             (forward / record_steps).mean(0),
                             (friction_sum / record_steps).mean(0), bool(converged), residual,
                             total_steps)


def elongation_slope(elongations: np.ndarray) -> float:
    """Least-squares slope of d_ℓ against ℓ, divided by the mean elongation: the shape
    parameter of the profile (> 0 concave, 0 linear, < 0 convex curve log D_ℓ vs ℓ)."""
    d = np.asarray(elongations, dtype=np.float64)
    layers = np.arange(1, d.size + 1, dtype=np.float64)
    centred = layers - layers.mean()
    return float((centred @ d) / (centred @ centred) / d.mean())


def profile_shape(elongations: np.ndarray, tolerance: float) -> str:
    """"concave", "linear" or "convex": the shape of log D_ℓ − log D_0 = −Σ_{j≤ℓ} d_j against ℓ,
    from the sign of `elongation_slope` (|slope| ≤ tolerance: "linear")."""
    slope = elongation_slope(elongations)
    if abs(slope) <= tolerance:
        return "linear"
    return "concave" if slope > 0 else "convex"
