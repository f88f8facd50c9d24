"""Chain-batched Langevin sampling of the Bayesian posterior of finite-width networks.

One physics convention throughout (docs/conventions.md):

    U(θ) = ½ Σ_μ (f(x_μ) − y_μ)² + Σ_l (γ_l/2) |θ_l|²,
    dθ = −∇U dt + √(2T) dW           (Itô),
    stationary law ∝ exp(−U/T)  ⇔  prior variance T/γ_l per weight of layer l,
                                    observation-noise variance σ² = T.

Every tensor has the chains on its leading axis, ``(num_chains, ...)``. Nothing in
this package reads config files, environment variables or global state; every
function takes what it needs as explicit arguments (randomness as a
``torch.Generator``).
"""
