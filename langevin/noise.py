"""Standard normal draws ξ ~ N(0, I) for every layer of a step, into reused buffers, with
one generator call for all layers where that leaves the random stream unchanged.

The stream of a seeded run is fixed by the order of the draws: layer by layer, in the
integrator's layer order, each `torch.randn(θ_l.shape, generator=g)`. This module keeps
exactly that stream:

- every layer is drawn into its own preallocated buffer with `Tensor.normal_`, which is
  what `torch.randn` does after allocating (same kernel, same generator consumption);
- on the CPU, the layers are drawn with ONE `normal_` call over a flat buffer whose
  views are the layers when `fused_draw_keeps_stream` holds. Why that is the same
  stream: torch's CPU normal kernel (ATen `normal_fill`, tensors of ≥ 16 contiguous
  values) first fills the tensor with uniforms in order, then transforms blocks of 16
  values (Box–Muller), and for a size not divisible by 16 recomputes the LAST 16 values
  from 16 further uniforms. If every layer but the last has a multiple of 16 values,
  the blocks of the concatenation coincide with the blocks of the separate draws and
  only the last layer has a tail, so both give the same numbers (tested against
  separate `torch.randn` calls). Tensors with fewer than 16 values use a serial kernel
  (one value per draw, Box–Muller pairs with a cached second value), so they are never
  fused. On CUDA every call advances a Philox offset rounded per call, so layers are
  never fused there.

The returned tensors are views of buffers that the next `draw` overwrites: use them
within the step (they never enter a state).
"""
from __future__ import annotations

import math
from typing import Mapping

import torch

Tensor = torch.Tensor
Theta = dict[str, Tensor]

FUSED_BLOCK = 16  # values per Box–Muller block of torch's CPU normal kernel


def fused_draw_keeps_stream(shapes: list[tuple[int, ...]], dtype: torch.dtype,
                            device: torch.device) -> bool:
    """True when one normal_ call over the concatenated layers gives the stream of the
    separate per-layer draws (module docstring): a CPU generator, a float dtype, every
    layer ≥ 16 values and every layer but the last a multiple of 16 values."""
    if device.type != "cpu" or dtype not in (torch.float32, torch.float64) or len(shapes) < 2:
        return False
    sizes = [math.prod(shape) for shape in shapes]
    return (all(size >= FUSED_BLOCK for size in sizes)
            and all(size % FUSED_BLOCK == 0 for size in sizes[:-1]))


class NormalDraws:
    """Per-step N(0, I) noise for the layers `layers` (in that order), in reused buffers.

    `draw(like, generator)` returns {layer: ξ_l} with ξ_l of like[layer]'s shape, dtype
    and device: the same numbers as `torch.randn(like[layer].shape, generator=generator)`
    layer by layer. Buffers are reallocated when a shape, dtype or device changes.
    """

    def __init__(self, layers):
        self.layers = tuple(layers)
        self._key = None
        self._flat: Tensor | None = None
        self._views: Theta = {}

    def _allocate(self, like: Mapping[str, Tensor]) -> None:
        first = like[self.layers[0]]
        shapes = [tuple(like[layer].shape) for layer in self.layers]
        same_kind = all(like[layer].dtype == first.dtype and like[layer].device == first.device
                        for layer in self.layers)
        if same_kind and fused_draw_keeps_stream(shapes, first.dtype, first.device):
            self._flat = torch.empty(sum(math.prod(s) for s in shapes), dtype=first.dtype,
                                     device=first.device)
            self._views, offset = {}, 0
            for layer, shape in zip(self.layers, shapes):
                size = math.prod(shape)
                self._views[layer] = self._flat[offset:offset + size].view(shape)
                offset += size
        else:
            self._flat = None
            self._views = {layer: torch.empty_like(like[layer],
                                                   memory_format=torch.contiguous_format)
                           for layer in self.layers}

    def draw(self, like: Mapping[str, Tensor], generator: torch.Generator) -> Theta:
        key = tuple((tuple(like[layer].shape), like[layer].dtype, like[layer].device)
                    for layer in self.layers)
        if key != self._key:
            self._allocate(like)
            self._key = key
        if self._flat is not None:
            self._flat.normal_(generator=generator)
        else:
            for layer in self.layers:
                self._views[layer].normal_(generator=generator)
        return dict(self._views)
