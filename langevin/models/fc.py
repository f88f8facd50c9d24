"""Fully connected networks with L hidden layers, batched over chains.

    h¹ = W¹ x + b¹,   h^l = W^l φ(h^{l−1}) + b^l  (l = 2..L),   f(x) = a·φ(h^L),

with shapes per chain (chains leading in every tensor):

    "w"   W¹: (N_1, d)            prior N(0, σ_1²/d)         (the input layer)
    "wl"  W^l: (N_l, N_{l−1})     prior N(0, σ_l²/N_{l−1})   (l = 2..L)
    "bl"  b^l: (N_l,)             prior N(0, σ_b²)           (only with bias=True)
    "a"   a: (N_L,)               prior N(0, σ̃_a²/(χ N_L))  (no readout bias)

The variances of ONE weight of every layer are given as `prior_variances` (the
experiments registry applies the fan-in and χ rule); this is the prior of the deep
NNGP recursion `theory.kernels.deep_fc_gram` (the NNGP recursion of Lee et al., ICLR 2018). Naming: with one hidden
layer and no bias the layers are ("w", "a") exactly as the two-layer network always was,
so stored observable names (squared_norm_w, virial_temperature_a, q) do not change; the
input layer keeps the name "w" at every depth (teacher projections q = W¹w* read it),
deeper weight layers are "w2".."wL", biases "b1".."bL".

Forward: one batched matmul per layer, x (n, d) @ W¹ᵀ (C, d, N_1) -> (C, n, N_1), then
(C, n, N_{l−1}) @ (C, N_{l−1}, N_l). Gradient: with one hidden layer the analytic
backward of `two_layer` (the fused fast path, tested equal to autograd), or on request the
C kernel of `langevin.native.two_layer` (erf, no bias, float32 CPU); deeper nets use one
batched autograd pass (`protocol.autograd_loss_and_gradient`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from langevin.activations import Activation, get_activation
from langevin.models.protocol import (
    Tensor, Theta, autograd_loss_and_gradient, check_prior_variances, sample_gaussian_prior,
)
from langevin.models.two_layer import two_layer_loss_and_gradient
from langevin.native.two_layer import ACTIVATIONS as NATIVE_ACTIVATIONS
from langevin.native.two_layer import PaddedData, native_two_layer_loss_and_gradient

READOUT = "a"
GRADIENTS = ("auto", "autograd", "native")


def weight_name(layer: int) -> str:
    """Name of the weights of hidden layer `layer` (1-based): "w", "w2", "w3", ..."""
    return "w" if layer == 1 else f"w{layer}"


def bias_name(layer: int) -> str:
    """Name of the biases of hidden layer `layer` (1-based): "b1", "b2", ..."""
    return f"b{layer}"


def fc_layer_names(num_hidden: int, bias: bool) -> tuple[str, ...]:
    """("w", ["b1",] "w2", ["b2",] ..., "a"): the order of the prior draws."""
    names = []
    for layer in range(1, num_hidden + 1):
        names.append(weight_name(layer))
        if bias:
            names.append(bias_name(layer))
    return (*names, READOUT)


@dataclass(frozen=True)
class FullyConnectedNetwork:
    """f(x) = a·φ(h^L(x)) with L = len(widths) hidden layers (module docstring).

    `prior_variances[l]` is the variance of one weight of layer l; `gradient` chooses the
    backward pass: "auto" (analytic for one hidden layer, autograd otherwise), "autograd"
    (always the generic pass, e.g. to test the fast path against it), "native" (the C
    kernel `langevin.native.two_layer`: one hidden layer, erf, no bias, float32 CPU;
    `native_kernel` is then the library from `langevin.native.two_layer.load_kernel`).
    """

    input_dim: int
    widths: tuple[int, ...]
    activation: str
    prior_variances: Mapping[str, float]
    bias: bool = False
    gradient: str = "auto"
    native_kernel: Any = field(default=None, repr=False, compare=False)
    _phi: Activation = field(init=False, repr=False, compare=False)
    # Scratch (C, n, N) tensors of the fused two-layer backward, reused between calls
    # (`two_layer.two_layer_loss_and_gradient`); never part of a result.
    _workspace: dict = field(init=False, repr=False, compare=False, default_factory=dict)
    # The padded copy of the training data of the native kernel ("native" only).
    _padded: PaddedData = field(init=False, repr=False, compare=False, default_factory=PaddedData)

    def __post_init__(self) -> None:
        if isinstance(self.input_dim, bool) or int(self.input_dim) != self.input_dim \
                or self.input_dim < 1:
            raise ValueError(f"input_dim must be a positive integer, got {self.input_dim!r}")
        widths = tuple(self.widths)
        if not widths or any(isinstance(n, bool) or int(n) != n or n < 1 for n in widths):
            raise ValueError(f"width(s) must be a non-empty list of positive integers, "
                             f"got {list(self.widths)!r}")
        object.__setattr__(self, "widths", tuple(int(n) for n in widths))
        if self.gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {GRADIENTS}, got {self.gradient!r}")
        if self.gradient == "native" and (len(widths) != 1 or self.bias
                                          or self.activation not in NATIVE_ACTIVATIONS):
            raise ValueError("gradient = 'native' is the one-hidden-layer network without bias "
                             f"with activation in {NATIVE_ACTIVATIONS}; got widths "
                             f"{list(widths)}, bias {self.bias}, activation {self.activation!r}")
        if self.gradient == "native" and self.native_kernel is None:
            raise ValueError("gradient = 'native' needs native_kernel, the library from "
                             "langevin.native.two_layer.load_kernel(settings)")
        object.__setattr__(self, "_phi", get_activation(self.activation))
        check_prior_variances(self.prior_variances, self.layer_names)

    @property
    def num_hidden(self) -> int:
        return len(self.widths)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return fc_layer_names(self.num_hidden, self.bias)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes, fan_in = {}, self.input_dim
        for layer, width in enumerate(self.widths, start=1):
            shapes[weight_name(layer)] = (width, fan_in)
            if self.bias:
                shapes[bias_name(layer)] = (width,)
            fan_in = width
        shapes[READOUT] = (fan_in,)
        return {name: shapes[name] for name in self.layer_names}

    def fan_ins(self) -> dict[str, int]:
        """Inputs of one unit: d, N_1, ..., N_L for the weights; 1 for a bias."""
        return {name: (shape[-1] if len(shape) == 2 or name == READOUT else 1)
                for name, shape in self.parameter_shapes().items()}

    def hidden_units(self) -> int:
        return sum(self.widths)

    def sample_prior(self, num_chains: int, generator: torch.Generator,
                     dtype: torch.dtype = torch.float32,
                     device: torch.device | str = "cpu") -> Theta:
        """θ_l ~ N(0, prior_variances[l]) for every weight of every chain."""
        return sample_gaussian_prior(self, num_chains, generator, dtype, device)

    def preactivations(self, theta: Theta, x: Tensor) -> list[Tensor]:
        """[h¹, ..., h^L], h^l of shape (C, n, N_l); x has shape (n, d)."""
        out, features = [], x
        for layer in range(1, self.num_hidden + 1):
            h = torch.matmul(features, theta[weight_name(layer)].transpose(-1, -2))
            if self.bias:
                h = h + theta[bias_name(layer)].unsqueeze(-2)
            out.append(h)
            features = self._phi.value(h)
        return out

    def predict(self, theta: Theta, x: Tensor) -> Tensor:
        """f_c(x_μ), shape (C, n)."""
        features = self._phi.value(self.preactivations(theta, x)[-1])
        return torch.matmul(features, theta[READOUT].unsqueeze(-1)).squeeze(-1)

    def loss_and_gradient(self, theta: Theta, x: Tensor, y: Tensor) -> tuple[Tensor, Theta]:
        """L_c = ½ Σ_μ (f_c(x_μ) − y_μ)² (shape (C,)) and ∂L_c/∂θ_c per layer."""
        if self.gradient == "native":
            return native_two_layer_loss_and_gradient(self.native_kernel, theta["w"],
                                                      theta[READOUT], x, y, self._padded)
        if self.num_hidden == 1 and self.gradient == "auto":
            # Under torch.compile the compiler plans the temporaries itself.
            workspace = None if torch.compiler.is_compiling() else self._workspace
            return two_layer_loss_and_gradient(
                self._phi, theta["w"], theta[READOUT], x, y,
                theta[bias_name(1)] if self.bias else None, bias_name(1), workspace)
        return autograd_loss_and_gradient(self, theta, x, y)
