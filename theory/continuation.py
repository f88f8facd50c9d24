"""Warm-started continuation of a self-consistent solution in one control parameter.

The self-consistency equations of `theory` (adaptive kernel, single-index GFL, cubic-teacher Landau
theory, modular addition) are solved by a root finder that needs a starting point. The standard
practice (the `zringel/AdaptiveGPs` notebook of Seroussi, Naveh & Ringel 2023) is to start on the side where the answer is known
(the GP/GFL side: very wide network, large noise, few samples) and walk the control parameter
towards the target value, warm-starting every solve from the previous solution. Plain damped
fixed-point iteration oscillates inside first-order (mixed) regions; a root finder started close
enough does not.

Contract shared by the solvers that use this module:

* ``solve_at(value, guess) -> solution`` where ``solution.converged`` is a bool and ``guess`` is a
  1-D float64 array (or None for the solver's own default start);
* ``guess_of(solution) -> np.ndarray`` extracts the unknowns to warm-start the next solve.

The control value is a number (so the step can be halved); the solvers' scans turn it into their
inputs with a caller's function value → `theory.network_prior.NetworkPrior` (e.g.
``lambda v: dataclasses.replace(prior, noise_variance_tilde=v)``) or, for a data-side control
such as the number of samples, with a separately named scan.

If a solve fails, the step is halved (up to ``max_refinements`` times) from the last converged
solution before the failure is recorded; a failure is never hidden: ``ContinuationResult.converged``
is False and ``failed_values`` lists the control values that did not converge.

Predictor. By default the next solve starts from the last converged solution g_k (zeroth order). With
``predictor="secant"`` it starts from the straight line through the last two converged solutions,
extrapolated in a chosen coordinate s = ``coordinate``(value) along which the solution is smooth
(e.g. s = 1/C for a width C, the natural expansion variable of a finite-width theory):

    g_pred = g_k + (s − s_k)/(s_k − s_{k−1}) · (g_k − g_{k−1}),

an error O(Δs²) instead of O(Δs), so the root finder starts closer and needs fewer steps. If the solve
from the prediction fails, it is repeated from g_k before any halving, so the secant predictor never
converges where the plain one would not have.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional, Sequence

import numpy as np
from scipy import optimize

__all__ = ["ContinuationResult", "CrossingResult", "continuation", "locate_crossing"]


class ContinuationResult(NamedTuple):
    """Solutions along a path of control values (in the order requested).

    values: the requested control values, shape (m,); solutions: the solver results, one per value;
    converged: every requested value converged; failed_values: those that did not; solves: the
    number of calls to ``solve_at`` (refinement steps included).
    """

    values: np.ndarray
    solutions: tuple
    converged: bool
    failed_values: tuple
    solves: int


class CrossingResult(NamedTuple):
    """The control value where ``indicator(solution) == level`` (Brent's method on the path).

    value: the crossing; solution: the solver result there; converged: Brent converged *and* every
    inner solve converged; residual: |indicator − level| at ``value``; iterations: Brent
    iterations; message: why it did not converge, if it did not.
    """

    value: float
    solution: Any
    converged: bool
    residual: float
    iterations: int
    message: str


def _check_values(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"values must be a non-empty sequence of finite numbers, got {values!r}")
    return values


def continuation(solve_at: Callable[[float, Optional[np.ndarray]], Any],
                 values: Sequence[float],
                 guess_of: Callable[[Any], np.ndarray],
                 initial_guess: Optional[np.ndarray] = None,
                 max_refinements: int = 6,
                 predictor: str = "previous",
                 coordinate: Callable[[float], float] = float) -> ContinuationResult:
    """Solve at each control value in turn, warm-starting from the previous converged solution.

    ``values`` is walked in the order given (put the known side first). When the solve at
    ``values[k]`` fails from the last converged guess, intermediate values are inserted by halving
    the step (at most ``max_refinements`` halvings); the intermediate solutions are only used as
    guesses and are not returned. A value that still fails is recorded in ``failed_values`` and its
    (non-converged) solution is returned in place; the walk continues from the last converged guess.
    """
    values = _check_values(values)
    if isinstance(max_refinements, bool) or not isinstance(max_refinements, (int, np.integer)) \
            or max_refinements < 0:
        raise ValueError(f"max_refinements must be a non-negative integer, got {max_refinements!r}")
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {PREDICTORS}, got {predictor!r}")
    guess = None if initial_guess is None else np.asarray(initial_guess, dtype=np.float64)
    last_value: Optional[float] = None
    history: list[tuple[float, np.ndarray]] = []  # (coordinate, guess) of the last two converged values
    solutions, failed, solves = [], [], 0
    for value in values:
        predicted = _secant_guess(history, float(coordinate(float(value)))) if predictor == "secant" else None
        solution = solve_at(float(value), guess if predicted is None else predicted)
        solves += 1
        if predicted is not None and not solution.converged:
            solution = solve_at(float(value), guess)   # the zeroth-order start, before any halving
            solves += 1
        if not solution.converged and last_value is not None:
            # Halve the step from the last converged point until the target solves.
            start, start_guess = last_value, guess
            for level in range(1, max_refinements + 1):
                steps = 2 ** level
                path_guess, ok = start_guess, True
                for j in range(1, steps + 1):
                    intermediate = start + (value - start) * j / steps
                    trial = solve_at(float(intermediate), path_guess)
                    solves += 1
                    if not trial.converged:
                        ok = False
                        break
                    path_guess = guess_of(trial)
                if ok:
                    solution = trial
                    break
        if solution.converged:
            guess = np.asarray(guess_of(solution), dtype=np.float64)
            last_value = float(value)
            history = [*history[-1:], (float(coordinate(last_value)), guess)]
        else:
            failed.append(float(value))
        solutions.append(solution)
    return ContinuationResult(values, tuple(solutions), not failed, tuple(failed), solves)


PREDICTORS = ("previous", "secant")


def _secant_guess(history: list[tuple[float, np.ndarray]], s: float) -> Optional[np.ndarray]:
    """g_k + (s − s_k)/(s_k − s_{k−1}) (g_k − g_{k−1}) from the last two converged (s, g); None with
    fewer than two (or two at the same coordinate): the caller then starts from g_k."""
    if len(history) < 2 or history[1][0] == history[0][0]:
        return None
    (s0, g0), (s1, g1) = history
    return g1 + (s - s1) / (s1 - s0) * (g1 - g0)


def locate_crossing(solve_at: Callable[[float, Optional[np.ndarray]], Any],
                    indicator: Callable[[Any], float],
                    lower: Any, upper: Any,
                    lower_value: float, upper_value: float,
                    guess_of: Callable[[Any], np.ndarray],
                    level: float = 0.0,
                    xtol: float = 1e-10, maxiter: int = 100) -> CrossingResult:
    """Find the control value in [lower_value, upper_value] where indicator(solution) = level.

    ``lower`` and ``upper`` are converged solutions at the bracket ends (typically two neighbours
    of a `continuation` path) with indicator − level of opposite signs. Brent's method
    (`scipy.optimize.brentq`) drives the control value; every inner solve is warm-started from the
    converged solution whose control value is nearest, so the path stays on one branch.
    """
    for name, value in (("lower_value", lower_value), ("upper_value", upper_value), ("level", level)):
        if not math.isfinite(float(value)):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if not (lower.converged and upper.converged):
        raise ValueError("lower and upper must be converged solutions (bracket ends)")
    f_lower = float(indicator(lower)) - level
    f_upper = float(indicator(upper)) - level
    if f_lower * f_upper > 0:
        raise ValueError(f"indicator − level must change sign on the bracket, got {f_lower!r} at "
                         f"{lower_value!r} and {f_upper!r} at {upper_value!r}")
    known = [(float(lower_value), lower), (float(upper_value), upper)]
    all_inner_converged = [True]

    def residual(value: float) -> float:
        nearest = min(known, key=lambda item: abs(item[0] - value))[1]
        solution = solve_at(value, guess_of(nearest))
        if not solution.converged:
            all_inner_converged[0] = False
            raise RuntimeError(f"inner solve did not converge at control value {value!r}")
        known.append((value, solution))
        return float(indicator(solution)) - level

    if f_lower == 0.0:
        return CrossingResult(float(lower_value), lower, True, 0.0, 0, "")
    if f_upper == 0.0:
        return CrossingResult(float(upper_value), upper, True, 0.0, 0, "")
    try:
        root, info = optimize.brentq(residual, float(lower_value), float(upper_value), xtol=xtol,
                                     maxiter=maxiter, full_output=True, disp=False)
    except RuntimeError as error:
        value, solution = known[-1]
        return CrossingResult(value, solution, False, math.inf, len(known) - 2, str(error))
    value, solution = min(known, key=lambda item: abs(item[0] - root))
    if value != root:
        solution = solve_at(root, guess_of(solution))
        all_inner_converged[0] &= bool(solution.converged)
    res = abs(float(indicator(solution)) - level)
    converged = bool(info.converged) and all_inner_converged[0]
    message = "" if converged else f"brentq: {info.flag}"
    return CrossingResult(float(root), solution, converged, res, int(info.iterations), message)
