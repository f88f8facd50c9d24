"""Bayesian linear regression f(x) = θ·x: the reference problem with an exact posterior."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from langevin.types import Tensor, Theta


@dataclass(frozen=True)
class LinearModel:
    """f(x) = θ·x with θ ~ N(0, prior_variance · I): Bayesian linear regression.

    The reference problem with an exact posterior (tests/langevin/test_integrators.py):
        Σ_post = (XᵀX/σ² + I/σ_p²)⁻¹,  mean = Σ_post Xᵀy/σ².
    theta["theta"]: (C, d).
    """

    input_dim: int
    prior_variance: float

    @property
    def layer_names(self) -> tuple[str, ...]:
        return ("theta",)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"theta": (self.input_dim,)}

    def sample_prior(self, num_chains: int, generator: torch.Generator,
                     dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Theta:
        noise = torch.randn((num_chains, self.input_dim), generator=generator, dtype=dtype,
                            device=device)
        return {"theta": noise * self.prior_variance ** 0.5}

    def predict(self, theta: Theta, x: Tensor) -> Tensor:
        return torch.matmul(theta["theta"], x.transpose(0, 1))

    def loss_and_gradient(self, theta: Theta, x: Tensor, y: Tensor) -> tuple[Tensor, Theta]:
        residual = self.predict(theta, x) - y
        return 0.5 * (residual * residual).sum(-1), {"theta": torch.matmul(residual, x)}
