"""One-hidden-layer networks over local patches of a 1-D or 2-D input, batched over chains.

    f(x) = Σ_{p=1}^{M} Σ_{c=1}^{K} a_{p,c} φ(w_{(p),c} · x^{(p)} + b_{(p),c}),

x^{(p)} the p-th patch of x (patch_dim = k entries), M patches, K = `channels` filters.
`shared=True` is the convolutional network ("cnn"): one filter bank w_c for every patch
(w_{(p),c} = w_c). `shared=False` is the locally connected network ("lcn"): a separate
filter w_{p,c} per patch, the comparison of the local kernel renormalization theory
(Aiudi et al., arXiv 2307.11807). The readout is dense over (patch,
channel); there is no pooling.

Parameters of C networks, chains on the leading axis:

    cnn:  theta["w"]: (C, K, k)      theta["b"]: (C, K)      (optional)
    lcn:  theta["w"]: (C, M, K, k)   theta["b"]: (C, M, K)   (optional)
    both: theta["a"]: (C, M, K)

Prior (fan-in convention, per weight; see `patch_prior_variances`):

    w ~ N(0, σ_w²/k),   a ~ N(0, σ_a²/(χ·M·K)),   b ~ N(0, σ_b²).

In the sampler's convention, U = ½ Σ_μ (f(x_μ) − y_μ)² + Σ_l (γ_l/2)|θ_l|² with posterior
∝ exp(−U/T), these variances are T/γ_l (γ_l = T/prior_variances[l]) and the likelihood
variance is σ² = T (= σ̃²/χ: χ = 1 standard scaling, χ = M·K mean-field).

The readout fan-in is M·K (every (patch, channel) unit feeds the output), so the NNGP
of both networks is the CNN-GP without pooling,

    K(x, y) = σ_a² (1/M) Σ_p κ_φ(C_pp(x,x), C_pp(x,y), C_pp(y,y)),
    C_pq(x, y) = σ_w² x^{(p)}·y^{(q)}/k + σ_b²,

(`theory.conv_kernels.cnn_gp_gram`): only the diagonal patch blocks appear, because the
readout weights a_{p,c} of different patches are independent. The factor 1/M keeps the
prior output variance O(1) whatever the number of patches (the convention of Aiudi et al.,
arXiv 2307.11807: K_R = Σ_pq Q_pq K_pq/(λ1 M)).

Patches: p runs over patch positions in row-major order; a 2-D patch is flattened
row-major (the layout of `torch.nn.Conv2d`'s weight (K, 1, kh, kw)). The patches must
tile the input exactly: (size − patch) divisible by stride in every dimension (no edge
pixel is silently dropped).

Batched without a Python loop over chains. The input is unfolded inside each call with
`Tensor.unfold` into a contiguous (M, n, k) tensor (one copy of n·M·k numbers, a factor
C·K cheaper than the hidden layer; caching it per input tensor would save nothing
measurable); the hidden layer is then ONE matmul for all chains:
    cnn: W_all (C·K, k) @ (M·n, k)ᵀ, W_all = w reshaped; h laid out (C, K, M, n);
    lcn: a batched matmul over patches, (M, C·K, k) @ (M, k, n); h laid out (M, C, K, n).
In these layouts the readout and ∂L/∂a are batched matrix-vector products that read the
(C, n, M·K) features once without copying them, and ∂L/∂w is one more matmul of the size
of the forward one. The backward pass is analytic; tests compare it with a per-chain
`torch.nn.Module` and autograd.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch

from langevin.activations import Activation, get_activation
from langevin.types import Tensor, Theta


def _as_tuple(value, ndim: int, name: str) -> tuple[int, ...]:
    """An int (the same in every dimension) or a sequence of `ndim` positive ints."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive integer or a sequence of {ndim}, "
                         f"got {value!r}")
    if isinstance(value, int):
        values = (value,) * ndim
    else:
        values = tuple(value)
        if len(values) != ndim:
            raise ValueError(f"{name} must have {ndim} entries (one per input dimension), "
                             f"got {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must hold positive integers, got {value!r}")
    return values


def patch_grid(input_shape: Sequence[int], patch_size, stride) -> tuple[tuple[int, ...],
                                                                       tuple[int, ...],
                                                                       tuple[int, ...]]:
    """Validated (patch_size, stride, patches per dimension) for an input of `input_shape`.

    Patches per dimension: (size − patch)/stride + 1, which must be an integer.
    """
    shape = tuple(input_shape)
    if len(shape) not in (1, 2) or any(isinstance(s, bool) or not isinstance(s, int) or s < 1
                                       for s in shape):
        raise ValueError(f"input_shape must be (L,) or (H, W) of positive integers, "
                         f"got {input_shape!r}")
    patch = _as_tuple(patch_size, len(shape), "patch_size")
    step = _as_tuple(stride, len(shape), "stride")
    counts = []
    for size, k, s in zip(shape, patch, step):
        if k > size:
            raise ValueError(f"patch_size {patch_size!r} exceeds input_shape {shape!r}")
        if (size - k) % s:
            raise ValueError(f"patches of size {patch_size!r} with stride {stride!r} do not tile "
                             f"input_shape {shape!r}: (size − patch) must be divisible by the "
                             f"stride in every dimension")
        counts.append((size - k) // s + 1)
    return patch, step, tuple(counts)


def patch_prior_variances(patch_dim: int, num_patches: int, channels: int, sigma_w2: float,
                          sigma_a2: float, chi: float = 1.0,
                          sigma_b2: float | None = None) -> dict[str, float]:
    """Per-weight prior variances {"w": σ_w²/k, "a": σ_a²/(χ·M·K)[, "b": σ_b²]}."""
    variances = {"w": sigma_w2 / patch_dim, "a": sigma_a2 / (chi * num_patches * channels)}
    if sigma_b2 is not None:
        variances["b"] = float(sigma_b2)
    return variances


@dataclass(frozen=True)
class LocalPatchNetwork:
    """f(x) = Σ_{p,c} a_{p,c} φ(w_{(p),c}·x^{(p)} [+ b_{(p),c}]), batched over chains.

    input_shape: (L,) or (H, W); inputs are given flat, (n, L) or (n, H·W) (row-major).
    patch_size, stride: an int or one per dimension. channels: K filters per patch position.
    shared: True = convolutional (one filter bank for all patches), False = locally
    connected (a filter bank per patch). bias: add a hidden bias b (shared like w).
    prior_variances: the variance of ONE weight of each layer, {"w", "a"} plus "b" iff
    bias (see `patch_prior_variances`). Module docstring: equations, shapes, NNGP.
    """

    input_shape: tuple[int, ...]
    patch_size: int | tuple[int, ...]
    stride: int | tuple[int, ...]
    channels: int
    activation: str
    prior_variances: Mapping[str, float]
    shared: bool = True
    bias: bool = False
    _phi: Activation = field(init=False, repr=False, compare=False)
    _patch: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _stride: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _grid: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        patch, step, grid = patch_grid(self.input_shape, self.patch_size, self.stride)
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        object.__setattr__(self, "_patch", patch)
        object.__setattr__(self, "_stride", step)
        object.__setattr__(self, "_grid", grid)
        if isinstance(self.channels, bool) or not isinstance(self.channels, int) or self.channels < 1:
            raise ValueError(f"channels must be a positive integer, got {self.channels!r}")
        if set(self.prior_variances) != set(self.layer_names):
            raise ValueError(f"prior_variances must have exactly the layers {self.layer_names}, "
                             f"got {sorted(self.prior_variances)}")
        for layer, variance in self.prior_variances.items():
            if not (variance > 0 and math.isfinite(variance)):
                raise ValueError(f"prior_variances[{layer!r}] must be positive and finite, "
                                 f"got {variance!r}")
        object.__setattr__(self, "_phi", get_activation(self.activation))

    # -- geometry ---------------------------------------------------------------------
    @property
    def num_patches(self) -> int:
        """M, the number of patch positions."""
        return math.prod(self._grid)

    @property
    def patch_dim(self) -> int:
        """k, the number of inputs in one patch."""
        return math.prod(self._patch)

    @property
    def input_dim(self) -> int:
        return math.prod(self.input_shape)

    def hidden_units(self) -> int:
        """M·K, the readout's fan-in."""
        return self.num_patches * self.channels

    # -- the Model protocol -----------------------------------------------------------
    @property
    def layer_names(self) -> tuple[str, ...]:
        return ("w", "a", "b") if self.bias else ("w", "a")

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of one chain's parameters, per layer."""
        M, K, k = self.num_patches, self.channels, self.patch_dim
        filters = (K,) if self.shared else (M, K)
        shapes = {"w": (*filters, k), "a": (M, K)}
        if self.bias:
            shapes["b"] = filters
        return shapes

    def fan_ins(self) -> dict[str, int]:
        """Fan-in of each layer: k for w, M·K for a, 1 for b (its variance is σ_b² itself)."""
        fans = {"w": self.patch_dim, "a": self.hidden_units()}
        if self.bias:
            fans["b"] = 1
        return fans

    def sample_prior(self, num_chains: int, generator: torch.Generator,
                     dtype: torch.dtype = torch.float32,
                     device: torch.device | str = "cpu") -> Theta:
        """θ_l ~ N(0, prior_variances[l]) independently for every weight of every chain
        (layers drawn in `layer_names` order)."""
        theta = {}
        shapes = self.parameter_shapes()
        for layer in self.layer_names:
            noise = torch.randn((num_chains, *shapes[layer]), generator=generator, dtype=dtype,
                                device=device)
            theta[layer] = noise * self.prior_variances[layer] ** 0.5
        return theta

    def patches(self, x: Tensor) -> Tensor:
        """x^{(p)} of every input: (n, M, k) from flat x (n, prod(input_shape))."""
        return self._patches_by_position(x).transpose(0, 1)

    def _patches_by_position(self, x: Tensor) -> Tensor:
        """The patches as a contiguous (M, n, k) tensor: one copy of n·M·k numbers."""
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"x must have shape (n, {self.input_dim}) (flat inputs of shape "
                             f"{self.input_shape}), got {tuple(x.shape)}")
        n, d = x.shape[0], len(self.input_shape)
        image = x.reshape(n, *self.input_shape)
        for dim, (k, s) in enumerate(zip(self._patch, self._stride), start=1):
            image = image.unfold(dim, k, s)  # appends the patch dimension: (n, *grid, *patch)
        order = (*range(1, d + 1), 0, *range(d + 1, 2 * d + 1))  # (*grid, n, *patch)
        return image.permute(*order).reshape(self.num_patches, n, self.patch_dim).contiguous()

    def _hidden(self, theta: Theta, patches: Tensor) -> Tensor:
        """Pre-activations h from (M, n, k) patches, chains leading: (C, K, M, n) for cnn,
        (M, C, K, n) for lcn (then (M·C, K, n) is contiguous).

        cnn: ONE matmul for all chains, W_all (C·K, k) @ (M·n, k)ᵀ.
        lcn: one matmul per patch, batched: (M, C·K, k) @ (M, k, n).
        """
        M, n, k = patches.shape
        w = theta["w"]
        C, K = w.shape[0], self.channels
        if self.shared:
            h = torch.matmul(w.reshape(C * K, k), patches.view(M * n, k).T).view(C, K, M, n)
            if self.bias:
                h = h + theta["b"].view(C, K, 1, 1)
            return h
        weights = w.transpose(0, 1).reshape(M, C * K, k)  # (M, C·K, k), a copy of w
        h = torch.matmul(weights, patches.transpose(1, 2)).view(M, C, K, n)
        if self.bias:
            h = h + theta["b"].transpose(0, 1).unsqueeze(-1)  # (M, C, K, 1)
        return h

    def _readout(self, features: Tensor, a: Tensor) -> Tensor:
        """f_c(x_μ) = Σ_{p,k} a_{c,p,k} φ_{c,μ,p,k}: (C, n), as batched matrix-vector
        products in the layout of `_hidden` (no copy of the features)."""
        C, M, K = a.shape
        n = features.shape[-1]
        if self.shared:  # (C, 1, K·M) @ (C, K·M, n)
            return torch.matmul(a.transpose(1, 2).reshape(C, 1, K * M),
                                features.view(C, K * M, n)).view(C, n)
        # (M·C, 1, K) @ (M·C, K, n), summed over patches
        out = torch.matmul(a.transpose(0, 1).reshape(M * C, 1, K), features.view(M * C, K, n))
        return out.view(M, C, n).sum(0)

    def preactivations(self, theta: Theta, x: Tensor) -> list[Tensor]:
        """[h] with h_{c,μ,(p,k)} = w_{(p),k}·x_μ^{(p)} (+ b), shape (C, n, M·K), patch-major."""
        h = self._hidden(theta, self._patches_by_position(x))
        order = (0, 3, 2, 1) if self.shared else (1, 3, 0, 2)  # -> (C, n, M, K)
        C, n = theta["a"].shape[0], x.shape[0]
        return [h.permute(*order).reshape(C, n, self.hidden_units())]

    def predict(self, theta: Theta, x: Tensor) -> Tensor:
        """f_c(x_μ), shape (C, n); x flat, (n, prod(input_shape))."""
        h = self._hidden(theta, self._patches_by_position(x))
        return self._readout(self._phi.value(h), theta["a"])

    def loss_and_gradient(self, theta: Theta, x: Tensor, y: Tensor) -> tuple[Tensor, Theta]:
        """L_c = ½ Σ_μ (f_c(x_μ) − y_μ)² (shape (C,)) and ∂L_c/∂θ_c per layer.

        With r = f − y and g_{μ,p,k} = r_μ a_{p,k} φ'(h_{μ,p,k}):
            ∂L/∂a_{p,k} = Σ_μ r_μ φ(h_{μ,p,k})
            ∂L/∂w_k     = Σ_{μ,p} g_{μ,p,k} x_μ^{(p)}      (cnn: summed over patches)
            ∂L/∂w_{p,k} = Σ_μ g_{μ,p,k} x_μ^{(p)}          (lcn)
            ∂L/∂b       = the same sums of g without the input.
        Each chain's gradient depends only on its own parameters.
        """
        patches = self._patches_by_position(x)
        M, n, k = patches.shape
        a = theta["a"]
        C, K = a.shape[0], self.channels
        h = self._hidden(theta, patches)
        features = self._phi.value(h)
        residual = self._readout(features, a) - y  # (C, n)
        loss = 0.5 * (residual * residual).sum(-1)
        # g = r a φ'(h), built in place in the layout of h: the step is bound by memory
        # traffic through these (C, n, M·K) temporaries, not by the matmuls.
        backward = self._phi.derivative(h)  # a fresh tensor (activations.py contract)
        grads: Theta = {}
        if self.shared:  # layout (C, K, M, n)
            grad_a = torch.matmul(features.view(C, K * M, n), residual.unsqueeze(-1))
            grads["a"] = grad_a.view(C, K, M).transpose(1, 2)
            backward.mul_(residual.view(C, 1, 1, n)).mul_(a.transpose(1, 2).unsqueeze(-1))
            grads["w"] = torch.matmul(backward.view(C * K, M * n),
                                      patches.view(M * n, k)).view(C, K, k)
            if self.bias:
                grads["b"] = backward.sum((2, 3))
        else:  # layout (M, C, K, n)
            r = residual.expand(M, C, n).reshape(M * C, n, 1)
            grads["a"] = torch.matmul(features.view(M * C, K, n), r).view(M, C, K).transpose(0, 1)
            backward.mul_(residual.view(1, C, 1, n)).mul_(a.transpose(0, 1).unsqueeze(-1))
            # (M, C·K, n) @ (M, n, k) -> (M, C·K, k) -> (C, M, K, k)
            grad_w = torch.matmul(backward.view(M, C * K, n), patches)
            grads["w"] = grad_w.view(M, C, K, k).transpose(0, 1)
            if self.bias:
                grads["b"] = backward.sum(3).transpose(0, 1)
        return loss, {layer: g.contiguous() for layer, g in grads.items()}
