"""Two-layer networks batched over chains: f_c(x) = Σ_i a_{c,i} φ(w_{c,i}·x).

Parameters of C networks live in one tensor per layer, chains on the leading axis:

    theta["w"]: (C, N, d)   input weights,  prior w_i ~ N(0, σ_w²/d · I_d)
    theta["a"]: (C, N)      readout,        prior a_i ~ N(0, σ̃_a²/(χN))

No Python loop over chains: the forward pass is one batched matmul
h = X wᵀ of shape (C, n, N). The backward pass is analytic (two more matmuls);
tests compare it with autograd and with a per-chain reference.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import torch

from langevin.activations import Activation, get_activation

Tensor = torch.Tensor
Theta = dict[str, Tensor]

LAYERS = ("w", "a")


@dataclass(frozen=True)
class TwoLayerNetwork:
    """f(x) = Σ_{i=1}^{N} a_i φ(w_i·x), batched over chains.

    `prior_variances` holds the variance of ONE weight of each layer:
    {"w": σ_w²/d, "a": σ̃_a²/(χN)} (see `convention.two_layer_prior_variances`).
    """

    input_dim: int
    width: int
    activation: str
    prior_variances: Mapping[str, float]
    _phi: Activation = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if int(self.input_dim) < 1:
            raise ValueError(f"input_dim must be a positive integer, got {self.input_dim!r}")
        if int(self.width) < 1:
            raise ValueError(f"width must be a positive integer, got {self.width!r}")
        if set(self.prior_variances) != set(LAYERS):
            raise ValueError(
                f"prior_variances must have exactly the layers {LAYERS}, "
                f"got {sorted(self.prior_variances)}"
            )
        for layer, variance in self.prior_variances.items():
            if not variance > 0:
                raise ValueError(f"prior_variances[{layer!r}] must be positive, got {variance!r}")
        object.__setattr__(self, "_phi", get_activation(self.activation))

    @property
    def layer_names(self) -> tuple[str, ...]:
        return LAYERS

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of one chain's parameters, per layer."""
        return {"w": (self.width, self.input_dim), "a": (self.width,)}

    def fan_ins(self) -> dict[str, int]:
        return {"w": self.input_dim, "a": self.width}

    def sample_prior(
        self,
        num_chains: int,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> Theta:
        """θ_l ~ N(0, prior_variances[l]) independently for every weight of every chain."""
        theta = {}
        for layer in LAYERS:
            shape = (num_chains, *self.parameter_shapes()[layer])
            noise = torch.randn(shape, generator=generator, dtype=dtype, device=device)
            theta[layer] = noise * self.prior_variances[layer] ** 0.5
        return theta

    def preactivations(self, theta: Theta, x: Tensor) -> Tensor:
        """h_{c,μ,i} = w_{c,i}·x_μ, shape (C, n, N); x has shape (n, d)."""
        return torch.matmul(x, theta["w"].transpose(-1, -2))

    def predict(self, theta: Theta, x: Tensor) -> Tensor:
        """f_c(x_μ), shape (C, n)."""
        features = self._phi.value(self.preactivations(theta, x))
        return torch.matmul(features, theta["a"].unsqueeze(-1)).squeeze(-1)

    def loss_and_gradient(self, theta: Theta, x: Tensor, y: Tensor) -> tuple[Tensor, Theta]:
        """L_c = ½ Σ_μ (f_c(x_μ) − y_μ)² (shape (C,)) and ∂L_c/∂θ_c per layer.

        With r = f − y and h = X wᵀ:
            ∂L/∂a_i = Σ_μ r_μ φ(h_{μi})
            ∂L/∂w_i = Σ_μ r_μ a_i φ'(h_{μi}) x_μ
        Each chain's gradient depends only on its own parameters.
        """
        h = self.preactivations(theta, x)
        features = self._phi.value(h)
        residual = torch.matmul(features, theta["a"].unsqueeze(-1)).squeeze(-1) - y
        loss = 0.5 * (residual * residual).sum(-1)
        grad_a = torch.matmul(residual.unsqueeze(-2), features).squeeze(-2)
        # (C, n, N): r_μ a_i φ'(h_μi), built in place: at large sizes the step is bound by
        # memory traffic through these (C, n, N) temporaries, not by the matmuls.
        backward = self._phi.derivative(h)  # a fresh tensor (activations.py contract)
        backward.mul_(residual.unsqueeze(-1)).mul_(theta["a"].unsqueeze(-2))
        grad_w = torch.matmul(backward.transpose(-1, -2), x)
        return loss, {"w": grad_w, "a": grad_a}


@dataclass(frozen=True)
class LinearModel:
    """f(x) = θ·x with θ ~ N(0, prior_variance · I): Bayesian linear regression.

    The reference problem with an exact posterior (theory.md §7 R0):
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
