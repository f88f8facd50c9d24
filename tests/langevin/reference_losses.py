"""Each likelihood's loss written directly in plain torch ops, independent of
langevin.likelihoods, for the autograd reference gradients of the likelihood tests."""
import torch


def reference_loss(name, f, y):
    """ℓ summed over the last axis: gaussian ½(f − y)², logistic log(1 + e^{−yf}),
    hinge max(0, 1 − yf), quadratic_hinge ½ max(0, 1 − yf)²."""
    if name == "gaussian":
        return 0.5 * ((f - y) ** 2).sum(-1)
    if name == "logistic":
        return torch.log1p(torch.exp(-y * f)).sum(-1)
    if name == "hinge":
        return torch.clamp(1 - y * f, min=0).sum(-1)
    if name == "quadratic_hinge":
        return 0.5 * (torch.clamp(1 - y * f, min=0) ** 2).sum(-1)
    raise AssertionError(f"test lacks a reference loss for {name!r}")
