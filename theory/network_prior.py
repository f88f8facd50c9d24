"""The network prior and likelihood that the theory solvers take, in the χ convention.

Convention (docs/conventions.md): U = ½ Σ_μ (f(x_μ) − y_μ)² + Σ_l (γ_l/2)|θ_l|²
at temperature T; prior variance T/γ_l per weight. A network with hidden widths N_1, ..., N_L has

    weights of hidden layer l ~ N(0, σ_l²/fan_in),      σ_l² = weight_variances[l]
    readout a ~ N(0, σ̃_a²/(χ N_L)),                     σ̃_a² = readout_variance_tilde
    biases ~ N(0, σ_b²),                                 σ_b² = bias_variance (0: no biases)
    Gaussian likelihood of variance σ² = σ̃²/χ = T,       σ̃² = noise_variance_tilde

with χ = 1 the standard scaling and χ = N the mean-field scaling. The record stores the
χ-scaled numerators σ̃_a², σ̃² and χ; the physical variances

    σ_a² = σ̃_a²/χ  (`readout_variance`, the readout numerator of the NNGP output kernel),
    σ²   = σ̃²/χ    (`noise_variance`)

are computed here and nowhere else. A mean-field width scan at fixed numerators is
`dataclasses.replace(prior, widths=(N,), chi=N)`; a noise scan
`dataclasses.replace(prior, noise_variance_tilde=v)`.

Widths are positive numbers, not necessarily integers: the theory takes limits (N → ∞ as a
large float) and continuation inserts intermediate widths. `architecture` names the family
(the experiments' registry key, "fc" for fully connected) and `geometry` holds what else its
NNGP needs (None for fc; (input_shape, patch_size, stride) for the convolutional families);
theory does not interpret either beyond the two-layer check below.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["NetworkPrior", "check_two_layer"]


def _positive(value, name: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"NetworkPrior.{name} must be a finite positive number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"NetworkPrior.{name} must be a finite positive number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"NetworkPrior.{name} must be a finite positive number, got {value!r}")
    return number


def _nonnegative(value, name: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"NetworkPrior.{name} must be finite and non-negative, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"NetworkPrior.{name} must be finite and non-negative, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"NetworkPrior.{name} must be finite and non-negative, got {value!r}")
    return number


def _sequence(value, name: str) -> tuple:
    if isinstance(value, (str, bytes)):
        raise ValueError(f"NetworkPrior.{name} must be a sequence of numbers, got {value!r}")
    try:
        return tuple(value)
    except TypeError:
        raise ValueError(f"NetworkPrior.{name} must be a sequence of numbers, got {value!r}") from None


@dataclass(frozen=True, kw_only=True)
class NetworkPrior:
    """Prior and likelihood of a network (module docstring); validated on construction.

    activation: the pointwise φ by name; input_dim: d; widths: (N_1, ..., N_L) (empty for a
    family without fc hidden widths); weight_variances: (σ_1², ..., σ_L²), one per hidden weight
    layer; readout_variance_tilde: σ̃_a²; noise_variance_tilde: σ̃² (0 allowed: a T = 0 run;
    the solvers that divide by σ² require it positive); chi: χ; bias_variance: σ_b².
    """

    activation: str
    input_dim: int
    widths: tuple[float, ...]
    weight_variances: tuple[float, ...]
    readout_variance_tilde: float
    noise_variance_tilde: float
    chi: float = 1.0
    bias_variance: float = 0.0
    architecture: str = "fc"
    geometry: Any = None

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)
        for name in ("activation", "architecture"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"NetworkPrior.{name} must be a non-empty string, got {value!r}")
        d = self.input_dim
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) \
                or int(d) != d or d < 1:
            raise ValueError(f"NetworkPrior.input_dim must be a positive integer, got {d!r}")
        set_("input_dim", int(d))
        widths = _sequence(self.widths, "widths")
        # Integers stay integers (parameter counts); other numbers become floats.
        set_("widths", tuple(w if isinstance(w, int) and not isinstance(w, bool) and w > 0
                             else _positive(w, "widths") for w in widths))
        variances = _sequence(self.weight_variances, "weight_variances")
        if not variances:
            raise ValueError("NetworkPrior.weight_variances must hold at least one variance, got ()")
        set_("weight_variances", tuple(_positive(v, "weight_variances") for v in variances))
        if self.widths and len(self.weight_variances) != len(self.widths):
            raise ValueError(f"NetworkPrior.weight_variances must have one entry per hidden layer "
                             f"(widths {self.widths!r}), got {self.weight_variances!r}")
        set_("readout_variance_tilde", _positive(self.readout_variance_tilde, "readout_variance_tilde"))
        set_("noise_variance_tilde", _nonnegative(self.noise_variance_tilde, "noise_variance_tilde"))
        set_("chi", _positive(self.chi, "chi"))
        set_("bias_variance", _nonnegative(self.bias_variance, "bias_variance"))

    # The χ scaling: the only place σ_a² = σ̃_a²/χ and σ² = σ̃²/χ are formed.
    @property
    def readout_variance(self) -> float:
        """σ_a² = σ̃_a²/χ: the physical readout numerator (NNGP output kernel σ_a² K)."""
        return self.readout_variance_tilde / self.chi

    @property
    def noise_variance(self) -> float:
        """σ² = σ̃²/χ = T: the likelihood variance (½-SSE loss)."""
        return self.noise_variance_tilde / self.chi

    # One-hidden-layer accessors (the two-layer theories).
    @property
    def width(self) -> float:
        """N of a one-hidden-layer network; ValueError otherwise."""
        if len(self.widths) != 1:
            raise ValueError(f"NetworkPrior.widths must hold one hidden width here, got {self.widths!r}")
        return float(self.widths[0])

    @property
    def input_variance(self) -> float:
        """σ_w² of a one-hidden-layer network (w ~ N(0, σ_w²/d · I)); ValueError otherwise."""
        if len(self.weight_variances) != 1:
            raise ValueError(f"NetworkPrior.weight_variances must hold one variance here, "
                             f"got {self.weight_variances!r}")
        return self.weight_variances[0]


def check_two_layer(prior: NetworkPrior, activations=None, *, positive_noise: bool = True) -> NetworkPrior:
    """The prior of f(x) = Σ_i a_i φ(w_i·x): fully connected, one hidden layer, no biases, σ̃² > 0,
    and (if given) φ among `activations`. Returns the prior; ValueError naming the field otherwise."""
    if not isinstance(prior, NetworkPrior):
        raise ValueError(f"prior must be a theory.network_prior.NetworkPrior, got {type(prior).__name__}")
    if prior.architecture != "fc":
        raise ValueError(f"NetworkPrior.architecture must be 'fc' here, got {prior.architecture!r}")
    if len(prior.widths) != 1 or len(prior.weight_variances) != 1:
        raise ValueError(f"NetworkPrior.widths must hold one hidden width here, got {prior.widths!r}")
    if prior.bias_variance != 0.0:
        raise ValueError(f"NetworkPrior.bias_variance must be 0 here (no biases), got {prior.bias_variance!r}")
    if positive_noise and prior.noise_variance_tilde <= 0:
        raise ValueError(f"NetworkPrior.noise_variance_tilde must be positive here, got {prior.noise_variance_tilde!r}")
    if activations is not None and prior.activation not in activations:
        raise ValueError(f"NetworkPrior.activation must be one of {sorted(activations)}, got {prior.activation!r}")
    return prior
