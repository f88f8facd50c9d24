"""The type aliases of the sampler: a tensor, and θ as a dict of per-layer tensors whose
leading axis is the chain, {layer name: (C, *layer shape)}."""
from __future__ import annotations

import torch

Tensor = torch.Tensor
Theta = dict[str, Tensor]
