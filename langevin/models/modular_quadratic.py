"""P-output quadratic two-layer network of the modular-addition model (Rubin, Seroussi, Ringel,
ICLR 2024, §3.2 and App. B), batched over chains, and the paper's non-linear
(sixth-order) weight decay on the Fourier modes of its input weights.

    f_p(x) = Σ_{i=1}^N a_{pi} (w_i·x)²,   p = 0, …, P−1,

    theta["w"]: (C, N, 2P)  input weights w_i = (u_i, v_i) ∈ R^P × R^P (the two residue halves
                            of the two-hot input), prior N(0, prior_variances["w"]) per weight
                            (1 in the paper)
    theta["a"]: (C, P, N)   readout a_{pi}, prior N(0, prior_variances["a"]) (σ_a²/N in the
                            paper, σ_a² the NNGP readout numerator of theory.modular_addition)

Outputs are flattened onto the point axis: `predict` returns (C, n·P) with column μP + p
(input μ, output p), and `loss_and_gradient` takes the targets flattened the same way, y of
shape (n·P,) (`langevin.potential.make_potential(..., num_outputs=P)` flattens (n, P) targets).
The data term is then the ordinary one, L_c = ½ Σ_{μ,p} (f_cp(x_μ) − y_μp)² (half_sse: noise
variance σ² = T), so every observable of per-point outputs works unchanged.

Fused gradient, with h = X wᵀ (C, n, N), r = f − y (C, n, P):
    ∂L/∂a_{pi} = Σ_μ r_μp h_μi²,   ∂L/∂w_i = Σ_μ 2 h_μi (Σ_p r_μp a_pi) x_μ
(tested equal to `protocol.autograd_loss_and_gradient`).

Sixth-order decay (paper App. B), per neuron, with the modes normalized as in
`experiments.setup.modular_addition_data.mode_order_parameters`, u_k = (1/P) Σ_n u_n e^{−2πikn/P}
(prior E|u_k|² = 1/P for unit prior variance), summed over every k = 0, …, P−1:

    Γ(w_i) = Σ_k (Pγ/6) (|u_k|⁶ + |v_k|⁶)     (real weights: u_k u_{−k} = |u_k|²).

It is a term of the action S = U/T (the exponent of the posterior), so the potential gets
T·Γ: `sextic_mode_decay(P, γ, T)` returns θ ↦ (T Σ_i Γ(w_i) of shape (C,), its gradient).
[DERIVED] With X_k = |u_k|² and U_k = Σ_n u_n e^{−2πikn/P} = P u_k (the unnormalized DFT),
    ∂Γ/∂u_n = γ Re Σ_k X_k² u_k e^{2πikn/P} = γ · IDFT(X² ∘ U)_n,
IDFT(Z)_n = (1/P) Σ_k Z_k e^{2πikn/P} (torch.fft.ifft; X² ∘ U is Hermitian, so irfft of the
rfft half is exact); the same for v. Tested against autograd.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from langevin.models.protocol import (
    Tensor, Theta, autograd_loss_and_gradient, check_prior_variances, sample_gaussian_prior,
)

LAYERS = ("w", "a")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class ModularQuadraticNetwork:
    """f_p(x) = Σ_i a_pi (w_i·x)² on inputs of dimension 2P (module docstring).

    `gradient`: "fused" (the analytic backward) or "autograd" (the generic pass).
    """

    modulus: int
    width: int
    prior_variances: Mapping[str, float]
    gradient: str = "fused"

    def __post_init__(self) -> None:
        modulus = _positive_int(self.modulus, "modulus")
        if modulus < 2:
            raise ValueError(f"modulus must be an integer ≥ 2, got {self.modulus!r}")
        object.__setattr__(self, "modulus", modulus)
        object.__setattr__(self, "width", _positive_int(self.width, "width"))
        if self.gradient not in ("fused", "autograd"):
            raise ValueError(f"gradient must be 'fused' or 'autograd', got {self.gradient!r}")
        check_prior_variances(self.prior_variances, LAYERS)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return LAYERS

    @property
    def num_outputs(self) -> int:
        return self.modulus

    @property
    def input_dim(self) -> int:
        return 2 * self.modulus

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"w": (self.width, self.input_dim), "a": (self.modulus, self.width)}

    def fan_ins(self) -> dict[str, int]:
        return {"w": self.input_dim, "a": self.width}

    def hidden_units(self) -> int:
        return self.width

    def sample_prior(self, num_chains: int, generator: torch.Generator,
                     dtype: torch.dtype = torch.float32,
                     device: torch.device | str = "cpu") -> Theta:
        return sample_gaussian_prior(self, num_chains, generator, dtype, device)

    def preactivations(self, theta: Theta, x: Tensor) -> list[Tensor]:
        """[h], h = X wᵀ of shape (C, n, N)."""
        return [torch.matmul(x, theta["w"].transpose(-1, -2))]

    def outputs(self, theta: Theta, x: Tensor) -> Tensor:
        """f_cp(x_μ), shape (C, n, P)."""
        h = self.preactivations(theta, x)[0]
        return torch.matmul(h * h, theta["a"].transpose(-1, -2))

    def predict(self, theta: Theta, x: Tensor) -> Tensor:
        """f flattened onto the point axis: (C, n·P), column μP + p."""
        f = self.outputs(theta, x)
        return f.reshape(f.shape[0], -1)

    def loss_and_gradient(self, theta: Theta, x: Tensor, y: Tensor) -> tuple[Tensor, Theta]:
        """L_c = ½ Σ_{μ,p} (f − y)², y flattened (n·P,); fused or autograd gradient."""
        n = x.shape[0]
        if y.shape != (n * self.modulus,):
            raise ValueError(f"targets must be flattened to (n·P,) = ({n * self.modulus},), "
                             f"got {tuple(y.shape)}")
        if self.gradient == "autograd":
            return autograd_loss_and_gradient(self, theta, x, y)
        h = self.preactivations(theta, x)[0]  # (C, n, N)
        features = h * h
        residual = torch.matmul(features, theta["a"].transpose(-1, -2)) - y.reshape(n, self.modulus)
        loss = 0.5 * (residual * residual).sum((-1, -2))
        grad_a = torch.matmul(residual.transpose(-1, -2), features)  # (C, P, N)
        backward = torch.matmul(residual, theta["a"]).mul_(h).mul_(2.0)  # (C, n, N)
        grad_w = torch.matmul(backward.transpose(-1, -2), x)  # (C, N, 2P)
        return loss, {"w": grad_w, "a": grad_a}


def mode_squared_amplitudes(w: Tensor, modulus: int) -> tuple[Tensor, Tensor]:
    """(|u_k|², |v_k|²) for k = 0..P−1 of input weights (..., 2P), u_k = (1/P) Σ_n u_n e^{−2πikn/P}."""
    P = int(modulus)
    U = torch.fft.fft(w[..., :P], dim=-1)
    V = torch.fft.fft(w[..., P:], dim=-1)
    return (U.abs() ** 2) / (P * P), (V.abs() ** 2) / (P * P)


def sextic_mode_penalty(w: Tensor, modulus: int, decay: float) -> Tensor:
    """Σ_i Γ(w_i) = Σ_i Σ_k (Pγ/6)(|u_ik|⁶ + |v_ik|⁶) for w of shape (C, N, 2P): (C,)."""
    X, Y = mode_squared_amplitudes(w, modulus)
    return (int(modulus) * float(decay) / 6.0) * (X ** 3 + Y ** 3).sum((-1, -2))


def sextic_mode_penalty_gradient(w: Tensor, modulus: int, decay: float) -> Tensor:
    """∂/∂w of `sextic_mode_penalty`: γ · IDFT(X² ∘ DFT(u)) per half (module docstring)."""
    P = int(modulus)
    halves = []
    for half in (w[..., :P], w[..., P:]):
        spectrum = torch.fft.rfft(half, dim=-1)
        squared = (spectrum.abs() ** 2) / (P * P)
        halves.append(torch.fft.irfft(squared * squared * spectrum, n=P, dim=-1))
    return float(decay) * torch.cat(halves, dim=-1)


def sextic_mode_decay(modulus: int, decay: float,
                      temperature: float) -> Callable[[Theta], tuple[Tensor, Theta]]:
    """The potential term θ ↦ (T Σ_i Γ(w_i) (C,), {"w": its gradient}) (module docstring):
    exp(−U/T) then carries exp(−Γ), the paper's action term with coefficient γ = `decay`."""
    P = _positive_int(modulus, "modulus")
    gamma, T = float(decay), float(temperature)
    if not gamma >= 0 or gamma == float("inf"):
        raise ValueError(f"the sextic mode decay γ must be non-negative and finite, got {decay!r}")
    if not T > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")

    def term(theta: Theta) -> tuple[Tensor, Theta]:
        w = theta["w"]
        return (T * sextic_mode_penalty(w, P, gamma),
                {"w": T * sextic_mode_penalty_gradient(w, P, gamma)})

    return term
