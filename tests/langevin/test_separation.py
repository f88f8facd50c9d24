"""Class-separation measure D = Tr(Σ_w Σ_b⁺): the definition with an explicit pseudo-inverse,
invariances, closed forms on Gaussian classes with exactly prescribed sample moments, and
chain batching."""
import numpy as np
import pytest
import torch

from langevin.separation import (
    separation_fuzziness, trace_ratio, within_and_between_scatter)


def _reference(h, labels):
    """The definition of He & Su / Shi, Pan & Dokmanić, one chain, NumPy: Σ_w = Ave_k Cov_k, Σ_b = Cov(μ_k), pinv."""
    classes = np.unique(labels)
    means = np.stack([h[labels == k].mean(0) for k in classes])
    covs = [np.cov(h[labels == k].T, bias=True).reshape(h.shape[1], h.shape[1])
            for k in classes]
    within = np.mean(covs, axis=0)
    centred = means - means.mean(0)
    between = centred.T @ centred / len(classes)
    # Σ_b has rank K − 1 exactly; cut the pseudo-inverse there
    eigenvalues, vectors = np.linalg.eigh(between)
    top = vectors[:, -(len(classes) - 1):]
    pinv = top @ np.diag(1 / eigenvalues[-(len(classes) - 1):]) @ top.T
    return np.trace(within @ pinv), np.trace(within) / np.trace(between), within, between


@pytest.mark.parametrize("num_classes", [2, 3, 4])
def test_matches_the_definition_with_unbalanced_classes(num_classes):
    rng = np.random.default_rng(num_classes)
    n, width = 31, 6
    labels = np.concatenate([np.arange(num_classes), rng.integers(0, num_classes, n - num_classes)])
    h = rng.standard_normal((3, n, width)) + 0.7 * rng.standard_normal((num_classes, width))[labels]
    d = separation_fuzziness(torch.from_numpy(h), torch.from_numpy(labels)).numpy()
    ratio = trace_ratio(torch.from_numpy(h), torch.from_numpy(labels)).numpy()
    within, between = within_and_between_scatter(torch.from_numpy(h), torch.from_numpy(labels))
    for c in range(3):
        ref_d, ref_ratio, ref_within, ref_between = _reference(h[c], labels)
        np.testing.assert_allclose(d[c], ref_d, rtol=1e-10)
        np.testing.assert_allclose(ratio[c], ref_ratio, rtol=1e-12)
        np.testing.assert_allclose(within[c].numpy(), ref_within, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(between[c].numpy(), ref_between, rtol=1e-10, atol=1e-14)


def test_invariant_under_orthogonal_change_of_basis_scale_and_shift():
    rng = np.random.default_rng(0)
    n, width = 40, 5
    labels = torch.from_numpy(rng.integers(0, 3, n))
    h = torch.from_numpy(rng.standard_normal((2, n, width)))
    q, _ = np.linalg.qr(rng.standard_normal((width, width)))
    transformed = -2.5 * h @ torch.from_numpy(q) + torch.from_numpy(rng.standard_normal(width))
    torch.testing.assert_close(separation_fuzziness(transformed, labels),
                               separation_fuzziness(h, labels), rtol=1e-10, atol=0)
    torch.testing.assert_close(trace_ratio(transformed, labels), trace_ratio(h, labels),
                               rtol=1e-10, atol=0)
    # labels are names, not numbers: relabelling the classes changes nothing
    torch.testing.assert_close(separation_fuzziness(h, 10 * labels - 7),
                               separation_fuzziness(h, labels), rtol=0, atol=0)


def _exact_moment_sample(rng, num, covariance_root, mean):
    """num points whose sample mean is `mean` and sample (1/num) covariance is
    covariance_rootᵀ covariance_root, exactly: whitened Gaussian noise, then coloured."""
    z = rng.standard_normal((num, len(mean)))
    z -= z.mean(0)
    cholesky = np.linalg.cholesky(z.T @ z / num)
    white = np.linalg.solve(cholesky, z.T).T  # sample covariance I
    return mean + white @ covariance_root


def test_two_gaussian_closed_form():
    """Classes with sample means ±m and sample covariance S (both classes): Σ_w = S,
    μ̄ = 0, Σ_b = ½(mmᵀ + mmᵀ) = mmᵀ, Σ_b⁺ = mmᵀ/|m|⁴, so
    D = Tr(S mmᵀ)/|m|⁴ = mᵀSm/|m|⁴ and D' = Tr S/|m|²."""
    rng = np.random.default_rng(1)
    width = 4
    m = np.array([1.0, -0.5, 2.0, 0.3])
    root = rng.standard_normal((width, width))
    covariance = root.T @ root
    h = np.concatenate([_exact_moment_sample(rng, 50, root, m),
                        _exact_moment_sample(rng, 70, root, -m)])
    labels = np.array([1] * 50 + [-1] * 70)
    d = separation_fuzziness(torch.from_numpy(h)[None], torch.from_numpy(labels))
    np.testing.assert_allclose(d.numpy(), [m @ covariance @ m / (m @ m) ** 2], rtol=1e-10)
    ratio = trace_ratio(torch.from_numpy(h)[None], torch.from_numpy(labels))
    np.testing.assert_allclose(ratio.numpy(), [np.trace(covariance) / (m @ m)], rtol=1e-10)


def test_three_class_simplex_closed_form():
    """Means at the vertices of an equilateral triangle of circumradius ρ in a plane P of
    R^N, isotropic class covariance s²I: Σ_b = (1/3)Σ_k μ_kμ_kᵀ = (ρ²/2) P (three unit
    vectors at 120° have Σ u uᵀ = (3/2) P), Σ_b⁺ = (2/ρ²) P, D = Tr(s² I (2/ρ²) P) = 4s²/ρ²."""
    rng = np.random.default_rng(2)
    width, rho, s = 5, 1.7, 0.6
    plane, _ = np.linalg.qr(rng.standard_normal((width, 2)))
    angles = 2 * np.pi * np.arange(3) / 3
    means = rho * (np.cos(angles)[:, None] * plane[:, 0] + np.sin(angles)[:, None] * plane[:, 1])
    h = np.concatenate([_exact_moment_sample(rng, 20 + 5 * k, s * np.eye(width), means[k])
                        for k in range(3)])
    labels = np.repeat(np.arange(3), [20, 25, 30])
    d = separation_fuzziness(torch.from_numpy(h)[None], torch.from_numpy(labels))
    np.testing.assert_allclose(d.numpy(), [4 * s ** 2 / rho ** 2], rtol=1e-10)


def test_chain_batching_and_independence():
    rng = np.random.default_rng(3)
    labels = torch.from_numpy(rng.integers(0, 2, 30))
    h = torch.from_numpy(rng.standard_normal((4, 30, 6)))
    batched = separation_fuzziness(h, labels)
    for c in range(4):
        torch.testing.assert_close(separation_fuzziness(h[c:c + 1], labels)[0], batched[c],
                                   rtol=1e-13, atol=0)
    perturbed = h.clone()
    perturbed[0] += 0.1 * torch.from_numpy(rng.standard_normal((30, 6)))
    again = separation_fuzziness(perturbed, labels)
    assert torch.equal(again[1:], batched[1:]) and again[0] != batched[0]
    assert separation_fuzziness(h.float(), labels).dtype == torch.float32


def test_bad_shapes_are_rejected():
    h = torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match="shape \\(C, n, N\\)"):
        separation_fuzziness(h[0], torch.zeros(5))
    with pytest.raises(ValueError, match="labels must have shape"):
        separation_fuzziness(h, torch.zeros(4))
    with pytest.raises(ValueError, match="N ≥ K − 1"):
        separation_fuzziness(torch.randn(1, 9, 1), torch.arange(9) % 3)
    with pytest.raises(ValueError, match="at least 2 classes"):
        trace_ratio(h, torch.zeros(5))
