"""Peers and pieces of the two-layer step for `step_throughput.py`.

The posterior of every variant (the project's convention, docs/conventions.md):

    U(θ) = ½ Σ_μ (f(x_μ) − y_μ)² + Σ_l γ_l/2 |θ_l|²,   f(x) = Σ_i a_i erf(w_i·x),
    target exp(−U/T),  γ_l = T/σ_l²  (σ_w² = 1/d, σ_a² = 1/N),

with per-layer step sizes η_l = step_size/γ_l (the "prior" preconditioner) and the
Euler–Maruyama (ULA/SGLD) update θ_l ← θ_l − η_l ∇_l U + √(2 η_l T) ξ.

  blackjax_rate  `blackjax.sgld` with the full batch as its minibatch (the gradient
                 estimator's data_size/batch_size factor is then 1), vmapped over chains
                 and jitted, float32. BlackJAX's SGLD has one scalar step size η, so it
                 runs in the coordinates u_l = θ_l/s_l, s_l = √(η_l/η): in u the update
                 with scalar η is exactly the per-layer update above in θ (same chain law,
                 same cost up to one scaling of the weights).
  piece_times    seconds of each piece of the project's fused step (the matmuls, the
                 elementwise passes over the (C, n, N) temporaries, the noise), timed
                 one by one, to say what bounds the step.

FLOPs per chain-step (the matmuls of the fused backward, `two_layer`):
    h = X wᵀ          2·n·N·d
    r = φ(h) a        2·n·N
    ∂L/∂a = rᵀ φ(h)   2·n·N
    ∂L/∂w = Bᵀ X      2·n·N·d
  total 4·n·N·(d + 1); the elementwise work (erf, exp, products) is not counted.
"""
from __future__ import annotations

import math
import time

import torch


def flops_per_chain_step(d: int, width: int, n: int) -> float:
    return 4.0 * n * width * (d + 1)


def blackjax_available() -> bool:
    try:
        import blackjax  # noqa: F401
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def blackjax_rate(d: int, width: int, n: int, chains: int, steps: int,
                  temperature: float = 0.01, step_size: float = 1e-4,
                  scan: bool = False, seed: int = 0) -> float:
    """Chain-steps/s of a vmapped, jitted `blackjax.sgld` step of the posterior above.

    scan=False: one jitted call per step from a Python loop (as the project's loop calls
    its step); scan=True: `steps` steps inside one jitted `lax.fori_loop` (no per-step
    dispatch at all: JAX's best case)."""
    import blackjax
    import jax
    import jax.numpy as jnp

    key = jax.random.PRNGKey(seed)
    kx, ky, kw, ka, key = jax.random.split(key, 5)
    x = jax.random.normal(kx, (n, d), dtype=jnp.float32)
    y = jax.random.normal(ky, (n,), dtype=jnp.float32)
    decays = {"w": temperature * d, "a": temperature * width}  # γ_l = T / σ_l²
    eta = step_size
    scales = {layer: math.sqrt((step_size / decay) / eta) for layer, decay in decays.items()}

    def theta_of(u):
        return {layer: u[layer] * scales[layer] for layer in u}

    def logprior(u):
        theta = theta_of(u)
        return -sum(0.5 * decays[layer] * jnp.sum(theta[layer] ** 2) for layer in theta)

    def loglikelihood(u, datum):
        xi, yi = datum
        theta = theta_of(u)
        f = jnp.dot(theta["a"], jax.scipy.special.erf(theta["w"] @ xi))
        return -0.5 * (f - yi) ** 2

    grad_fn = blackjax.sgmcmc.gradients.grad_estimator(logprior, loglikelihood, n)
    sgld = blackjax.sgld(grad_fn)

    def one_chain(rng_key, u):
        return sgld.step(rng_key, u, (x, y), eta, temperature)

    vstep = jax.vmap(one_chain)
    u = {"w": jax.random.normal(kw, (chains, width, d), dtype=jnp.float32)
              * math.sqrt(1.0 / d) / scales["w"],
         "a": jax.random.normal(ka, (chains, width), dtype=jnp.float32)
              * math.sqrt(1.0 / width) / scales["a"]}

    if scan:
        @jax.jit
        def run(key, u):
            def body(_, carry):
                key, u = carry
                key, sub = jax.random.split(key)
                return key, vstep(jax.random.split(sub, chains), u)
            return jax.lax.fori_loop(0, steps, body, (key, u))

        jax.block_until_ready(run(key, u))  # compile + warm-up
        start = time.perf_counter()
        jax.block_until_ready(run(key, u))
        return steps * chains / (time.perf_counter() - start)

    @jax.jit
    def step(key, u):
        key, sub = jax.random.split(key)
        return key, vstep(jax.random.split(sub, chains), u)

    key, u = jax.block_until_ready(step(key, u))  # compile + warm-up
    start = time.perf_counter()
    for _ in range(steps):
        key, u = step(key, u)
    jax.block_until_ready(u)
    return steps * chains / (time.perf_counter() - start)


def _timed(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def piece_times(d: int, width: int, n: int, chains: int, repeats: int = 2,
                dtype=torch.float32) -> dict[str, float]:
    """Seconds per step of each piece of `two_layer_loss_and_gradient` (erf) and of the
    Euler–Maruyama noise, each timed alone on tensors of the step's shapes."""
    from langevin.activations import get_activation

    phi = get_activation("erf")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    y = torch.randn(n, generator=g, dtype=dtype)
    w = torch.randn(chains, width, d, generator=g, dtype=dtype) / math.sqrt(d)
    a = torch.randn(chains, width, generator=g, dtype=dtype) / math.sqrt(width)
    h = torch.matmul(x, w.transpose(-1, -2))
    features = phi.value(h)
    residual = torch.matmul(features, a.unsqueeze(-1)).squeeze(-1) - y
    backward = phi.derivative(h)
    return {
        "forward matmul X wᵀ": _timed(lambda: torch.matmul(x, w.transpose(-1, -2)), repeats),
        "erf(h)": _timed(lambda: phi.value(h), repeats),
        "readout matvecs (f, ∂L/∂a)": _timed(lambda: (
            torch.matmul(features, a.unsqueeze(-1)),
            torch.matmul(residual.unsqueeze(-2), features)), repeats),
        "erf'(h) (4 passes)": _timed(lambda: phi.derivative(h), repeats),
        "B *= r, B *= a (in place)": _timed(lambda: backward.mul_(residual.unsqueeze(-1))
                                            .mul_(a.unsqueeze(-2)), repeats),
        "backward matmul Bᵀ X": _timed(lambda: torch.matmul(backward.transpose(-1, -2), x),
                                       repeats),
        "noise + update (w, a)": _timed(lambda: (
            w - 1e-4 * w + 0.01 * torch.randn(w.shape, generator=g, dtype=dtype),
            a - 1e-4 * a + 0.01 * torch.randn(a.shape, generator=g, dtype=dtype)), repeats),
    }


def stream_rate(elements: int, dtype=torch.float32, repeats: int = 3) -> float:
    """Bytes/s of an in-place multiply over `elements` values (one read + one write)."""
    t = torch.ones(elements, dtype=dtype)
    seconds = _timed(lambda: t.mul_(1.0000001), repeats)
    return 2 * elements * t.element_size() / seconds
