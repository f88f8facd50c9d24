"""Sampled mean-field networks beside kernel adaptation (GFL) and the Landau φ⁶ theory.

Applies to runs with χ > 1 (mean-field scaling χ = N, or any explicit χ > 1) on a single-index
teacher: the sampled side needs the teacher direction w*, the theories an erf network and a target
y = y_1 He_1(z*) + y_3 He_3(z*) (z* = w*·x, unnormalized Hermites). Standard-scaling runs get the
GP comparison instead (`experiments.compare.gp_comparison`).

Conventions (`experiments.compare.theory_inputs`): prior w ~ N(0, σ_w²/d · I), readout a ~ N(0, σ̃_a²/(χN)),
likelihood variance σ² = σ̃²/χ = T (loss ½ SSE); the theories take (σ̃_a², σ̃², χ). The grokking
paper's σ_a², σ² are the physical σ̃_a²/χ, σ̃²/χ; u = n²σ_a²/(σ⁴dN), κ = nσ_a²/σ².

Theories (every one reports converged/residual; a non-convergence becomes a warning string):
- `gfl`: the symmetric reduction Σ = a P_⊥ + b w*w*ᵀ of the Gaussian (VGA) closure in the continuum
  limit (`theory.single_index_gfl`), reached by continuation in σ̃² from the GP side
  (`GP_SIDE_NOISE_FACTOR` σ̃² down to σ̃²). Predicts E[q²] = b, the ⊥ eigenvalue a, a Gaussian
  p(q) = N(0, b) (kurtosis ratio 1) and f̄ = (y_1 − τ_1)He_1 + (y_3 − τ_3)He_3.
- `landau` (cubic teacher, both y_k ≠ 0): the finite-d self-consistent Landau theory with the
  non-Gaussian p(q) ∝ exp(−S[q]) integrated exactly (`theory.cubic_teacher`); directions ⊥ w* stay
  at the prior σ_w²/d; f̄ = (1 − b)He_1 + (ε − c)He_3 (times y_1, see `theory_inputs`).
  `transition`: the scaling-limit (d → ∞) first-order point σ²_c (`landau.find_landau_transition`)
  and, when that transition is first order (A4 < 0), the finite-d crossover where the q ≈ ±q*
  wells carry half of ⟨v_1²⟩ (`cubic_teacher.find_cubic_teacher_crossover`).

Validity: `parameters.mean_field_expansion` = κE[φ²]/N is the size of the O(1/N) corrections the
per-neuron theories neglect (`mean_field_expansion`); both are quantitative only when it is small.

Sampled side, each with its MCSE (`langevin.diagnostics`): `w_second_moment_parallel`/`_perp`
(per (chain, draw), means over neurons of the eigenvalues of the empirical weight covariance along
w* and ⊥), the second moment and kurtosis ratio of q and its histogram
(`experiments.compare.order_parameter_statistics`), and the learnabilities R_k = f·He_k/y·He_k on the test
set (`gp_comparison.hermite_learnabilities`, per draw, beside the NNGP posterior with the same
physical σ_a², σ² for contrast).

Learnability normalization. The theories' own L_k = 1 − τ_k/y_k (`*_continuum`) are projections
under the data measure N(0, 1), where He_1 ⊥ He_3. On a finite test set the sampled ratio mixes
the modes (y·He_3 contains Σ He_1 He_3 = O(√n_test)), so the value compared with the sample
(`gfl`, `landau`) is the same ratio f̄_theory·He_k/y·He_k evaluated on the same test points.
"""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np
import xarray as xr

from experiments.compare import order_parameter_statistics as qstats
from experiments.compare.gp_comparison import gp_prediction, hermite_learnabilities
from experiments.compare.theory_inputs import TwoLayerTheoryInputs
from experiments.rundirs.run_draws import chain_draw, mean_with_mcse
from experiments.rundirs.rundir import json_ready
from experiments.setup.data import DataSet
from langevin.convention import scaled_noise_variance
from theory import landau
from theory.adaptive_kernel import projection_ratio
from theory.cubic_teacher import (CubicTeacherSolution, find_cubic_teacher_crossover,
                                  order_parameter_density, scan_cubic_teacher, solve_cubic_teacher)
from theory.hermite import hermite_he
from theory.order_parameter_quadrature import folded_quadrature
from theory.network_prior import NetworkPrior
from theory.single_index_gfl import SingleIndexGFLSolution, scan_single_index_gfl

# Continuation of the GFL solution starts at this multiple of σ̃² (close to the GP), in this many
# geometric steps: the GP-connected branch, as the `zringel/AdaptiveGPs` code of Seroussi, Naveh & Ringel 2023 prescribes.
GP_SIDE_NOISE_FACTOR = 64.0
CONTINUATION_STEPS = 13
# Brackets (multiples of σ̃²) in which the Landau transition and the finite-d crossover are sought.
TRANSITION_BRACKET = 64.0
CROSSOVER_BRACKET, CROSSOVER_STEPS = 8.0, 13
# Grid of the theory p(q) overlaid on the run's q histogram (figures.q_histogram).
OVERLAY_POINTS = 401


def _solver_report(solution) -> dict:
    return {"converged": bool(solution.converged), "residual": float(solution.residual),
            "iterations": int(solution.iterations), "message": solution.message}


def _convergence_warning(name: str, solution) -> list[str]:
    if solution.converged:
        return []
    return [f"{name} did not converge: {solution.message or 'no message'} "
            f"(residual {solution.residual:.3g}); its predictions are not reliable"]


def mean_field_expansion(inputs: TwoLayerTheoryInputs) -> float:
    """ε_N = (σ_a²/N) n E[φ²]/σ² = κ E[φ²]/N: one neuron's share of the kernel against the noise.

    The per-neuron (mean-field) action keeps K_W = Q + δK to first order in one neuron's
    δK_c = (σ_a²/N) φ_c φ_cᵀ (Seroussi, Naveh & Ringel, Nat. Commun. 2023); the neglected self-interaction is smaller by
    (σ_a²/N) φᵀ(Q + σ²I)⁻¹φ ≤ ε_N (E[φ²] = (2/π) arcsin(2σ_w²/(1 + 2σ_w²)) for erf at the prior
    |w|² ≈ σ_w²). In mean-field scaling ε_N = n σ̃_a² E[φ²]/(N σ̃²) → 0 as N → ∞ at fixed κ: the
    O(1/N) corrections of GFL and Landau carry the coefficient κ E[φ²]. Under the α = β scaling
    of the grokking paper ε_N ∝ 1/√β.
    """
    second_moment = 2.0 / math.pi * math.asin(2.0 * inputs.sigma_w2 / (1.0 + 2.0 * inputs.sigma_w2))
    return inputs.gp_sigma_a2 * inputs.n_train * second_moment / (inputs.width * inputs.noise_variance)


def solve_gfl(inputs: TwoLayerTheoryInputs) -> SingleIndexGFLSolution:
    """GFL at the run's parameters, continued in σ̃² from the GP side (module docstring)."""
    prior = inputs.prior
    values = prior.noise_variance_tilde * np.geomspace(GP_SIDE_NOISE_FACTOR, 1.0, CONTINUATION_STEPS)
    path = scan_single_index_gfl(_noise_path(prior), values, num_samples=inputs.n_train,
                                 target_coefficients=inputs.linear_cubic_target)
    return path.solutions[-1]


def _noise_path(prior: NetworkPrior):
    """σ̃² → the prior at that χ-scaled noise numerator (the continuation parameter)."""
    return lambda value: dataclasses.replace(prior, noise_variance_tilde=value)


class LandauPrediction(NamedTuple):
    solution: CubicTeacherSolution
    scale: float  # y_1: (b, c) of the run's target are y_1 × the solution's
    second_moment: float  # E[q²] under p(q) ∝ exp(−S[q])
    kurtosis_ratio: float  # E[q⁴]/(3 E[q²]²)


def solve_landau(inputs: TwoLayerTheoryInputs) -> LandauPrediction | None:
    """Finite-d Landau solution of a cubic teacher (None for other targets), with E[q²] and the
    kurtosis ratio of its p(q) by the same panelled quadrature the solver uses. The solution is
    unique (theory.cubic_teacher); a direct solve that fails is retried by continuation from the
    GP side."""
    problem = inputs.landau_problem()
    if problem is None:
        return None
    prior, epsilon, scale = problem
    fixed = dict(num_samples=inputs.n_train, epsilon=epsilon)  # the data side
    solution = solve_cubic_teacher(prior, **fixed)
    if not solution.converged:
        values = prior.noise_variance_tilde * np.geomspace(GP_SIDE_NOISE_FACTOR, 1.0, CONTINUATION_STEPS)
        solution = scan_cubic_teacher(_noise_path(prior), values, **fixed).solutions[-1]
    points = landau.stationary_points(solution.u, solution.b, solution.c, solution.input_variance)
    rule = folded_quadrature(lambda q: landau.landau_action(
        q, solution.u, solution.b, solution.c, solution.input_variance, solution.input_dim),
        points.positions)
    m2, m4 = float(rule.weights @ rule.nodes ** 2), float(rule.weights @ rule.nodes ** 4)
    return LandauPrediction(solution, scale, m2, m4 / (3.0 * m2 * m2))


def landau_transition(inputs: TwoLayerTheoryInputs) -> tuple[dict, list[str]]:
    """σ²_c of the scaling limit and the finite-d crossover, as physical noise variances σ̃²/χ."""
    prior, epsilon, scale = inputs.landau_problem()
    noise = prior.noise_variance_tilde
    fixed = dict(num_samples=inputs.n_train, epsilon=epsilon)  # the data side
    # the rescaled σ̃² of the y_1 = 1 problem back to the run's physical σ² = y_1² σ̃²/χ
    physical = lambda value: scaled_noise_variance(value * scale * scale, inputs.chi)  # noqa: E731
    out, warnings = {}, []
    try:
        found = landau.find_landau_transition(_noise_path(prior), noise / TRANSITION_BRACKET,
                                              noise * TRANSITION_BRACKET, **fixed)
    except ValueError as error:
        return {"scaling_limit": {"found": False, "reason": str(error)}}, warnings
    out["scaling_limit"] = {"found": True, "noise_variance": physical(found.value), "u": found.u,
                            "well_position": found.well_position, "a4": found.coefficients.a4,
                            "first_order": found.coefficients.a4 < 0, **_solver_report(found)}
    warnings += _convergence_warning("the scaling-limit Landau transition", found)
    if found.coefficients.a4 >= 0:
        return out, warnings
    values = noise * np.geomspace(CROSSOVER_BRACKET, 1.0 / CROSSOVER_BRACKET, CROSSOVER_STEPS)
    try:
        crossing = find_cubic_teacher_crossover(_noise_path(prior), values, **fixed)
    except ValueError as error:
        out["finite_d_crossover"] = {"found": False, "reason": str(error)}
        return out, warnings
    out["finite_d_crossover"] = {"found": True, "noise_variance": physical(crossing.value),
                                 "indicator": "well_kernel_fraction = 0.5",
                                 "converged": bool(crossing.converged),
                                 "residual": float(crossing.residual),
                                 "iterations": int(crossing.iterations), "message": crossing.message}
    warnings += _convergence_warning("the finite-d Landau crossover (wells' share of ⟨v_1²⟩ = 1/2; "
                                     "the share jumps where the phase goes GFL → GMFL-II directly)",
                                     crossing)
    return out, warnings


def _gfl_section(solution: SingleIndexGFLSolution) -> dict:
    return {"sigma_perp": solution.sigma_perp, "sigma_parallel": solution.sigma_parallel,
            "discrepancy": solution.discrepancy, "learnabilities": solution.learnabilities,
            "u": solution.u, "kernel_strength": solution.kernel_strength, **_solver_report(solution)}


def _landau_section(prediction: LandauPrediction) -> dict:
    s = prediction.solution
    return {"b": prediction.scale * s.b, "c": prediction.scale * s.c, "u": s.u,
            "kernel_strength": s.kernel_strength, "epsilon": s.epsilon,
            "learnability_linear": s.learnability_linear, "learnability_cubic": s.learnability_cubic,
            "second_moment": prediction.second_moment, "kurtosis_ratio": prediction.kurtosis_ratio,
            "phase": s.phase, "zero_well_mass": s.zero_well_mass, "well_mass": s.well_mass,
            "well_kernel_fraction": s.well_kernel_fraction, "free_energy": s.free_energy,
            "stationary_points": s.stationary_points.positions, **_solver_report(s)}


def _theory_means(gfl, landau_prediction) -> dict[str, tuple[float, float]]:
    """Coefficients (on He_1, He_3) of each theory's posterior mean f̄."""
    means = {}
    if gfl is not None:
        means["gfl"] = tuple(float(v) for v in gfl.mean_coefficients)
    if landau_prediction is not None:
        s, y1 = landau_prediction.solution, landau_prediction.scale
        means["landau"] = (y1 * (1.0 - s.b), y1 * (s.epsilon - s.c))
    return means


def learnability_comparison(f: np.ndarray, data: DataSet, inputs: TwoLayerTheoryInputs,
                            means: dict, continuum: dict) -> dict:
    """Sampled R_k with MCSE and the NNGP value (gp_comparison), plus each theory's R_k on the same
    test set and its continuum L_k (module docstring)."""
    gp = gp_prediction(inputs.prior, data)
    out = hermite_learnabilities(f, gp.mean, data, inputs)
    z = data.x_test @ data.teacher_direction
    he = {1: hermite_he(1, z), 3: hermite_he(3, z)}
    for name, (c1, c3) in means.items():
        prediction = c1 * he[1] + c3 * he[3]
        for index, k in enumerate((1, 3)):
            if f"He{k}" in out:
                out[f"He{k}"][name] = projection_ratio(prediction, data.y_test, he[k])
                out[f"He{k}"][f"{name}_continuum"] = float(continuum[name][index])
    return out


def _q_values(ds: xr.Dataset, q: xr.DataArray | None) -> np.ndarray | None:
    if q is None and "q" in ds:
        q = ds["q"]
    if q is None or q.sizes.get("draw", 0) < 4:
        return None
    return chain_draw(q, "neuron").astype(np.float64)


class _Theories(NamedTuple):
    gfl: SingleIndexGFLSolution | None
    landau: LandauPrediction | None
    sections: dict  # JSON-ready solver sections: parameters, gfl, landau, transition
    warnings: list


def solve_theories(inputs: TwoLayerTheoryInputs) -> _Theories:
    """GFL (and, for a cubic teacher, Landau with its transition) at the run's parameters."""
    prior = inputs.sigma_w2 / inputs.input_dim
    sections = {"parameters": {
        "chi": inputs.chi, "width": inputs.width, "input_dim": inputs.input_dim,
        "n_train": inputs.n_train, "readout_variance": inputs.gp_sigma_a2,
        "noise_variance": inputs.noise_variance, "prior_variance_w": prior,
        "hermite_coefficients": list(inputs.hermite_coefficients)}}
    if inputs.activation != "erf" or inputs.linear_cubic_target is None or inputs.input_dim < 2:
        return _Theories(None, None, sections, [
            "no feature-learning theory applies: it needs an erf network, d ≥ 2 and a target "
            f"y_1 He_1 + y_3 He_3 (got activation {inputs.activation!r}, coefficients "
            f"{list(inputs.hermite_coefficients)})"])
    sections["parameters"].update(
        u=landau.effective_interaction(inputs.prior, inputs.n_train),
        kernel_strength=landau.kernel_strength(inputs.prior, inputs.n_train),
        mean_field_expansion=mean_field_expansion(inputs))
    gfl = solve_gfl(inputs)
    sections["gfl"] = _gfl_section(gfl)
    warnings = _convergence_warning("GFL (theory.single_index_gfl)", gfl)
    prediction = solve_landau(inputs)
    if prediction is not None:
        sections["landau"] = _landau_section(prediction)
        warnings += _convergence_warning("Landau (theory.cubic_teacher)", prediction.solution)
        sections["transition"], notes = landau_transition(inputs)
        warnings += notes
    return _Theories(gfl, prediction, sections, warnings)


def _predicted_second_moments(theories: _Theories, prior: float) -> dict:
    """E[q²] (= b), the ⊥ eigenvalue a and the kurtosis ratio of q per theory (None: no theory)."""
    gfl, prediction = theories.gfl, theories.landau
    return {
        "gfl": None if gfl is None else {"parallel": gfl.sigma_parallel, "perp": gfl.sigma_perp,
                                         "kurtosis_ratio": 1.0},
        "landau": None if prediction is None else {"parallel": prediction.second_moment, "perp": prior,
                                                   "kurtosis_ratio": prediction.kurtosis_ratio},
    }


def _theory_values(theories: _Theories, prior: float, field: str) -> dict:
    return {name: None if values is None else values[field]
            for name, values in _predicted_second_moments(theories, prior).items()}


def second_moment_comparison(ds: xr.Dataset, theories: _Theories, prior: float) -> dict:
    """Sampled eigenvalues of the weight covariance along w* (b) and ⊥ (a) against the theories
    (Landau keeps ⊥ at the prior)."""
    predicted = {"w_second_moment_parallel": _theory_values(theories, prior, "parallel"),
                 "w_second_moment_perp": _theory_values(theories, prior, "perp")}
    out = {}
    for name, theory in predicted.items():
        if name in ds:
            values = chain_draw(ds[name]).astype(np.float64)
            out[name] = {**mean_with_mcse(values), **theory, "prior": prior}
    return out


def order_parameter_comparison(q_values: np.ndarray, theories: _Theories, prior: float) -> tuple[dict, list | None]:
    """E[q²], the kurtosis ratio and the histogram of q against the theories, and the theory
    density on a grid for the run's q-histogram figure (Landau where it applies, else GFL)."""
    gfl, prediction = theories.gfl, theories.landau
    densities = {}
    if gfl is not None:
        densities["gfl"] = qstats.gaussian_density(gfl.sigma_parallel)
    if prediction is not None:
        densities["landau"] = lambda grid: order_parameter_density(prediction.solution, grid)[0]
    moments = qstats.moment_statistics(q_values)
    out = {
        "q_second_moment": {**moments["second_moment"], "prior": prior,
                            **_theory_values(theories, prior, "parallel")},
        "q_kurtosis_ratio": {**moments["kurtosis_ratio"], "prior": 1.0,
                             **_theory_values(theories, prior, "kurtosis_ratio")},
        "q_density": qstats.density_comparison(q_values, densities),
    }
    if not densities:
        return out, None
    name = "landau" if "landau" in densities else "gfl"
    top = 1.1 * float(np.max(np.abs(q_values)))
    grid = np.linspace(-top, top, OVERLAY_POINTS)
    out["q_density_overlay_theory"] = name
    return out, [grid.tolist(), densities[name](grid).tolist()]


def compare_feature_learning(inputs: TwoLayerTheoryInputs, data: DataSet, ds: xr.Dataset,
                             q: xr.DataArray | None = None) -> dict:
    """{"feature_learning": section, "q_density": [grid, density]} for a χ > 1 single-index run,
    {} otherwise. `q` (chain, draw, neuron) defaults to ds["q"] (pass it when q has its own
    cadence group, `run_draws.q_draws`)."""
    if inputs.chi <= 1.0 or data.teacher_direction is None or not inputs.hermite_coefficients:
        return {}
    prior = inputs.sigma_w2 / inputs.input_dim
    theories = solve_theories(inputs)
    section, warnings = dict(theories.sections), list(theories.warnings)
    section.update(second_moment_comparison(ds, theories, prior))
    q_values, overlay = _q_values(ds, q), None
    if q_values is None:
        warnings.append("no q draws in the root group (q recorded at its own cadence?): p(q) not "
                        "compared; pass q = run_draws.q_draws(store, config)")
    else:
        order_parameter, overlay = order_parameter_comparison(q_values, theories, prior)
        section.update(order_parameter)
    if "f_test" in ds and len(data.y_test):
        f = chain_draw(ds["f_test"], "test_point").astype(np.float64)
        continuum = {}
        if theories.gfl is not None:
            continuum["gfl"] = theories.gfl.learnabilities
        if theories.landau is not None:
            s = theories.landau.solution
            continuum["landau"] = (s.learnability_linear, s.learnability_cubic)
        section["hermite_learnabilities"] = learnability_comparison(
            f, data, inputs, _theory_means(theories.gfl, theories.landau), continuum)
    section["warnings"] = warnings
    out = {"feature_learning": json_ready(section)}
    if overlay is not None:
        out["q_density"] = overlay
    return out
