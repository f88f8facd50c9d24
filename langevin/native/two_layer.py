"""The native CPU loss and gradient of the one-hidden-layer erf network (`two_layer_erf.c`).

    L_c = ½ Σ_μ (f_c(x_μ) − y_μ)²,  f_c(x) = Σ_i a_{c,i} erf(w_{c,i}·x),
    ∂L/∂a_{c,i} = Σ_μ r_μ erf(h_μi),  ∂L/∂w_{c,i} = Σ_μ r_μ a_i (2/√π) e^{−h_μi²} x_μ,

the equations of `langevin.models.two_layer`, for float32 CPU tensors: one call computes
every chain, threads over chains (`torch.get_num_threads()` of them), each chain by one
thread in a fixed order, so the numbers do not depend on the thread count and a run
resumes bitwise. They differ from the torch path by rounding only (another summation
order and erf/exp approximations of a few ulp; tested against float64).
"""
from __future__ import annotations

import ctypes

import torch

from langevin.native.build import BuildSettings, NativeKernelUnavailable, load
from langevin.types import Tensor, Theta

ROW_GROUP = 16  # RG of two_layer_erf.c: n is padded to a multiple
INPUT_BLOCK = 4  # KB: d is padded to a multiple
ACTIVATIONS = ("erf",)
_POINTER, _INT = ctypes.c_void_p, ctypes.c_int64


def load_kernel(settings: BuildSettings) -> ctypes.CDLL:
    """The loaded `two_layer_erf` library (built on first use with `settings`), its entry
    points typed: what `native_two_layer_loss_and_gradient` and `elementwise` take."""
    lib = load("two_layer_erf", settings)
    lib.two_layer_erf.argtypes = [_INT, _INT, _INT, _INT, _INT, _POINTER, _POINTER, _POINTER,
                                  _POINTER, _POINTER, _POINTER, _POINTER, ctypes.c_int]
    lib.two_layer_erf.restype = None
    for name in ("erf_values", "exp_nonpositive_values"):
        getattr(lib, name).argtypes = [_POINTER, _POINTER, _INT]
        getattr(lib, name).restype = None
    return lib


def unavailable_reason(settings: BuildSettings) -> str | None:
    """None when the kernel builds and loads here with `settings`, else why not."""
    try:
        load_kernel(settings)
    except NativeKernelUnavailable as err:
        return str(err)
    return None


def _check(name: str, tensor: Tensor) -> None:
    if tensor.device.type != "cpu" or tensor.dtype != torch.float32:
        raise ValueError(f"the native two-layer kernel takes float32 CPU tensors; {name} is "
                         f"{tensor.dtype} on {tensor.device} (sampler.cpu_kernel = 'native' "
                         "needs sampler.device = 'cpu' and sampler.dtype = 'float32')")


class PaddedData:
    """X (n, d) and y (n,) copied once, zero padded to (n_pad, d_pad) and (n_pad,), and
    reused while the same, unmodified tensors are passed (data pointer, shape and torch's
    version counter are compared)."""

    def __init__(self) -> None:
        self._key = None
        self.x = self.y = None

    def get(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        key = (x.data_ptr(), tuple(x.shape), x.stride(), x._version,
               y.data_ptr(), tuple(y.shape), y.stride(), y._version)
        if key != self._key:
            n, d = x.shape
            n_pad = -(-n // ROW_GROUP) * ROW_GROUP
            d_pad = -(-d // INPUT_BLOCK) * INPUT_BLOCK
            self.x = x.new_zeros((n_pad, d_pad))
            self.x[:n, :d] = x
            self.y = y.new_zeros(n_pad)
            self.y[:n] = y
            self._key = key
        return self.x, self.y


def native_two_layer_loss_and_gradient(kernel: ctypes.CDLL, w: Tensor, a: Tensor, x: Tensor,
                                       y: Tensor, padded: PaddedData | None = None,
                                       threads: int | None = None) -> tuple[Tensor, Theta]:
    """(L_c of shape (C,), {"w": ∂L/∂w (C, N, d), "a": ∂L/∂a (C, N)}) for w (C, N, d),
    a (C, N), x (n, d), y (n,), all float32 on the CPU. `kernel`: from `load_kernel`;
    `padded`: a `PaddedData` kept by the caller between calls (None: pad now); `threads`:
    default torch.get_num_threads()."""
    for name, tensor in (("w", w), ("a", a), ("x", x), ("y", y)):
        _check(name, tensor)
    chains, width, d = w.shape
    if a.shape != (chains, width) or x.ndim != 2 or x.shape[1] != d or y.shape != (x.shape[0],):
        raise ValueError(f"shapes do not match: w {tuple(w.shape)}, a {tuple(a.shape)}, "
                         f"x {tuple(x.shape)}, y {tuple(y.shape)}")
    xp, yp = (padded or PaddedData()).get(x, y)
    w, a = w.contiguous(), a.contiguous()
    loss = w.new_empty(chains)
    grad_w, grad_a = torch.empty_like(w), torch.empty_like(a)
    kernel.two_layer_erf(chains, xp.shape[0], d, xp.shape[1], width, xp.data_ptr(),
                         yp.data_ptr(), w.data_ptr(), a.data_ptr(), loss.data_ptr(),
                         grad_w.data_ptr(), grad_a.data_ptr(),
                         int(threads or torch.get_num_threads()))
    return loss, {"w": grad_w, "a": grad_a}


def elementwise(kernel: ctypes.CDLL, name: str, values: Tensor) -> Tensor:
    """The kernel's own erf ("erf") or exp on u ≤ 0 ("exp_nonpositive") of a float32 CPU
    tensor: what the tests compare with float64."""
    _check("values", values)
    values = values.contiguous()
    out = torch.empty_like(values)
    getattr(kernel, f"{name}_values")(values.data_ptr(), out.data_ptr(), values.numel())
    return out
