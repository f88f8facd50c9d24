"""The steps as they were before buffers were reused and the noise drawn in one call:
a frozen copy, so tests can check that every stored float of an existing run is
unchanged (bitwise) by the faster step."""
import math

import torch

from langevin.potential import PotentialValue


def noise_scale(variance_factor, temperature, like):
    if not isinstance(temperature, torch.Tensor):
        return math.sqrt(variance_factor * temperature)
    scale = torch.sqrt(variance_factor * temperature.to(like.dtype))
    return scale.reshape(scale.shape + (1,) * (like.ndim - 1))


def two_layer_loss_and_gradient(phi, w, a, x, y, b=None):
    h = torch.matmul(x, w.transpose(-1, -2))
    if b is not None:
        h = h + b.unsqueeze(-2)
    features = phi.value(h)
    residual = torch.matmul(features, a.unsqueeze(-1)).squeeze(-1) - y
    loss = 0.5 * (residual * residual).sum(-1)
    grad_a = torch.matmul(residual.unsqueeze(-2), features).squeeze(-2)
    backward = phi.derivative(h)
    backward.mul_(residual.unsqueeze(-1)).mul_(a.unsqueeze(-2))
    grads = {"w": torch.matmul(backward.transpose(-1, -2), x), "a": grad_a}
    if b is not None:
        grads["b1"] = backward.sum(-2)
    return loss, grads


def make_potential(phi, x, y, decays, bias=False):
    def potential(theta):
        loss, data_gradient = two_layer_loss_and_gradient(
            phi, theta["w"], theta["a"], x, y, theta["b1"] if bias else None)
        value, gradient = loss, {}
        for layer, decay in decays.items():
            param = theta[layer]
            value = value + 0.5 * decay * (param * param).sum(tuple(range(1, param.ndim)))
            gradient[layer] = data_gradient[layer] + decay * param
        return PotentialValue(value, loss, gradient)
    return potential


def euler_maruyama_step(potential_fn, sizes, temperature, theta, gradient, generator):
    new = {}
    for layer, eta in sizes.items():
        param = theta[layer]
        noise = torch.randn(param.shape, generator=generator, dtype=param.dtype,
                            device=param.device)
        scale = noise_scale(2.0 * eta, temperature, param)
        new[layer] = param - eta * gradient[layer] + scale * noise
    return new, potential_fn(new)


def mala_step(potential_fn, sizes, temperature, theta, value, generator):
    proposal, log_forward = {}, torch.zeros_like(value.potential)
    for layer, eta in sizes.items():
        param = theta[layer]
        noise = torch.randn(param.shape, generator=generator, dtype=param.dtype,
                            device=param.device)
        scale = noise_scale(2.0 * eta, temperature, param)
        proposal[layer] = param - eta * value.gradient[layer] + scale * noise
        log_forward = log_forward - 0.5 * (noise * noise).sum(tuple(range(1, noise.ndim)))
    new = potential_fn(proposal)
    log_backward = torch.zeros_like(value.potential)
    for layer, eta in sizes.items():
        residual = theta[layer] - proposal[layer] + eta * new.gradient[layer]
        log_backward = log_backward - (residual * residual).sum(
            tuple(range(1, residual.ndim))) / (4.0 * eta * temperature)
    log_alpha = -(new.potential - value.potential) / temperature + log_backward - log_forward
    log_alpha = torch.where(torch.isfinite(log_alpha), log_alpha,
                            torch.full_like(log_alpha, -math.inf))
    uniform = torch.rand(log_alpha.shape, generator=generator, dtype=log_alpha.dtype)
    accept = torch.log(uniform) < log_alpha

    def select(p, c):
        return torch.where(accept.reshape(accept.shape + (1,) * (p.ndim - 1)), p, c)
    theta = {layer: select(proposal[layer], theta[layer]) for layer in sizes}
    merged = PotentialValue(select(new.potential, value.potential), select(new.loss, value.loss),
                            {layer: select(new.gradient[layer], value.gradient[layer])
                             for layer in sizes})
    return theta, merged


def baoab_step(potential_fn, sizes, temperature, friction, theta, momentum, gradient,
               generator):
    halves = {layer: 0.5 * math.sqrt(2.0 * eta) for layer, eta in sizes.items()}
    theta_next, before_kick = {}, {}
    for layer, half in halves.items():
        decay = math.exp(-friction * 2.0 * half)
        p = momentum[layer] - half * gradient[layer]
        position = theta[layer] + half * p
        noise = torch.randn(position.shape, generator=generator, dtype=position.dtype)
        scale = noise_scale(1.0 - decay * decay, temperature, position)
        p = decay * p + scale * noise
        theta_next[layer] = position + half * p
        before_kick[layer] = p
    value = potential_fn(theta_next)
    momentum_new = {layer: before_kick[layer] - half * value.gradient[layer]
                    for layer, half in halves.items()}
    return theta_next, momentum_new, value
