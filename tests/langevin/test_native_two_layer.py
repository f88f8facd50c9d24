"""The native two-layer erf kernel (langevin.native): its erf and exp against float64, its
loss and gradient against the float64 torch path within a derived rounding bound, thread
invariance (bitwise), the padded-data cache, refusals, and the atomic build."""
import math
import os
import stat
import subprocess
import sys

import pytest
import torch

from langevin.models import FullyConnectedNetwork
from langevin.models.two_layer import two_layer_loss_and_gradient
from langevin.activations import get_activation
from experiments.setup.native_kernel import native_build_settings
from langevin.native import build
from langevin.native import two_layer as native

REASON = native.unavailable_reason(native_build_settings())
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no native kernel: {REASON}")
KERNEL = native.load_kernel(native_build_settings()) if REASON is None else None

EPS32 = 2.0 ** -24  # unit roundoff of float32
ERF_ERROR = 4e-7  # the kernel's erf: |erf~(x) − erf(x)| (test_erf_is_accurate_to_a_few_ulp)
EXP_ERROR = 2e-7  # the kernel's exp: relative (test_exp_is_accurate_to_a_few_ulp)


def test_erf_is_accurate_to_a_few_ulp():
    x = torch.linspace(-7.0, 7.0, 400_003)
    approx = native.elementwise(KERNEL, "erf", x).double()
    exact = torch.erf(x.double())
    assert (approx - exact).abs().max() <= ERF_ERROR  # ≈ 3 ulp of 1
    assert torch.equal(native.elementwise(KERNEL, "erf", -x), -native.elementwise(KERNEL, "erf", x))  # odd
    assert (approx[x.abs() >= 4.0].abs() == 1.0).all()


def test_exp_is_accurate_to_a_few_ulp():
    u = torch.cat([-torch.linspace(0.0, 86.9, 400_001), torch.tensor([-87.5, -100.0, -1e30])])
    approx = native.elementwise(KERNEL, "exp_nonpositive", u).double()
    exact = torch.exp(u.double())
    inside = u > -87.0
    assert ((approx - exact).abs() / exact)[inside].max() <= EXP_ERROR
    assert (approx[~inside] == 0).all()


def _problem(d, width, n, chains, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.randn(n, generator=g)
    w = torch.randn(chains, width, d, generator=g) / math.sqrt(d)
    a = torch.randn(chains, width, generator=g) / math.sqrt(width)
    return w, a, x, y


def _rounding_bound(w, a, x, y):
    """First-order bound on |float32 kernel − exact| of (L, ∂L/∂w, ∂L/∂a), in float64.
    A sum of m terms rounds by at most γ_m Σ|terms| (γ_m = mε/(1 − mε)); the kernel's erf
    adds ERF_ERROR and its exp EXP_ERROR relative; each error is propagated to first order
    through h → φ, φ' → f → r → the gradients; the bound is doubled for the second-order
    terms and the roundings of the products."""
    w, a, x, y = (t.double() for t in (w, a, x, y))
    d, width, n = x.shape[1], w.shape[1], x.shape[0]

    def gamma(m):
        return m * EPS32 / (1 - m * EPS32)

    h = torch.matmul(x, w.transpose(-1, -2))                            # (C, n, N)
    dh = gamma(d) * torch.matmul(x.abs(), w.abs().transpose(-1, -2))
    phi = torch.erf(h)
    phi_prime = 2 / math.sqrt(math.pi) * torch.exp(-h * h)
    dphi = ERF_ERROR + phi_prime * dh
    dphi_prime = phi_prime * (EXP_ERROR + 2 * h.abs() * dh + 4 * EPS32)
    f = torch.matmul(phi, a.unsqueeze(-1)).squeeze(-1)
    r = f - y
    terms = (phi * a.unsqueeze(-2)).abs()
    dr = gamma(width) * terms.sum(-1) + torch.matmul(dphi, a.abs().unsqueeze(-1)).squeeze(-1) \
        + EPS32 * r.abs()
    loss = 0.5 * (r * r).sum(-1)
    dloss = (r.abs() * dr).sum(-1) + gamma(n) * loss + EPS32 * loss
    ga_terms = (r.unsqueeze(-1) * phi).abs()
    dga = gamma(n) * ga_terms.sum(-2) + (dr.unsqueeze(-1) * phi.abs()
                                         + r.abs().unsqueeze(-1) * dphi).sum(-2)
    back = (r.unsqueeze(-1) * a.unsqueeze(-2) * phi_prime).abs()           # |r a φ'|
    dback = (dr.unsqueeze(-1) * a.abs().unsqueeze(-2) * phi_prime
             + r.abs().unsqueeze(-1) * a.abs().unsqueeze(-2) * dphi_prime + 3 * EPS32 * back)
    dgw = gamma(n) * torch.matmul(back.transpose(-1, -2), x.abs()) \
        + torch.matmul(dback.transpose(-1, -2), x.abs())
    return 2 * dloss, 2 * dgw, 2 * dga


SHAPES = [(16, 64, 128, 64),  # the benchmark's small size: no padding
          (5, 13, 37, 3),     # every dimension padded
          (1, 1, 1, 1),
          (7, 17, 33, 2),
          (40, 100, 300, 4)]


@pytest.mark.parametrize("d, width, n, chains", SHAPES)
def test_loss_and_gradient_within_the_rounding_bound(d, width, n, chains):
    w, a, x, y = _problem(d, width, n, chains)
    loss, grads = native.native_two_layer_loss_and_gradient(KERNEL, w, a, x, y)
    exact_loss, exact = two_layer_loss_and_gradient(get_activation("erf"), w.double(),
                                                    a.double(), x.double(), y.double())
    bound_loss, bound_w, bound_a = _rounding_bound(w, a, x, y)
    assert ((loss.double() - exact_loss).abs() <= bound_loss).all()
    assert ((grads["w"].double() - exact["w"]).abs() <= bound_w).all()
    assert ((grads["a"].double() - exact["a"]).abs() <= bound_a).all()
    # and the bound is tight enough to see a wrong unit: far below the gradients themselves
    assert bound_w.max() < 1e-3 * exact["w"].abs().max()


def test_the_numbers_do_not_depend_on_the_thread_count():
    w, a, x, y = _problem(7, 17, 33, 5)
    runs = [native.native_two_layer_loss_and_gradient(KERNEL, w, a, x, y, threads=t) for t in (1, 2, 3)]
    for loss, grads in runs[1:]:
        assert torch.equal(loss, runs[0][0])
        assert all(torch.equal(grads[k], runs[0][1][k]) for k in ("w", "a"))


def test_a_chain_does_not_depend_on_the_other_chains():
    w, a, x, y = _problem(7, 17, 33, 5)
    loss, grads = native.native_two_layer_loss_and_gradient(KERNEL, w, a, x, y)
    one, one_grads = native.native_two_layer_loss_and_gradient(KERNEL, w[2:3], a[2:3], x, y)
    assert torch.equal(one[0], loss[2]) and torch.equal(one_grads["w"][0], grads["w"][2])


def test_the_padded_data_follow_an_in_place_change():
    w, a, x, y = _problem(5, 13, 37, 2)
    padded = native.PaddedData()
    first, _ = native.native_two_layer_loss_and_gradient(KERNEL, w, a, x, y, padded)
    y.add_(1.0)  # the same tensor, modified: the padded copy must be refreshed
    second, _ = native.native_two_layer_loss_and_gradient(KERNEL, w, a, x, y, padded)
    fresh, _ = native.native_two_layer_loss_and_gradient(KERNEL, w, a, x, y)
    assert torch.equal(second, fresh) and not torch.equal(first, second)


def test_the_model_uses_the_kernel_and_refuses_what_it_does_not_cover():
    variances = {"w": 1 / 5, "a": 1 / 13}
    model = FullyConnectedNetwork(5, (13,), "erf", variances, gradient="native",
                                  native_kernel=KERNEL)
    w, a, x, y = _problem(5, 13, 37, 2)
    loss, grads = model.loss_and_gradient({"w": w, "a": a}, x, y)
    assert torch.equal(loss, native.native_two_layer_loss_and_gradient(KERNEL, w, a, x, y)[0])
    for kwargs in ({"activation": "relu"}, {"bias": True}, {"widths": (13, 13)}):
        settings = {"input_dim": 5, "widths": (13,), "activation": "erf",
                    "prior_variances": variances, **kwargs}
        if "bias" in kwargs:
            settings["prior_variances"] = {**variances, "b1": 1.0}
        if "widths" in kwargs:
            settings["prior_variances"] = {**variances, "w2": 1 / 13}
        with pytest.raises(ValueError, match="native"):
            FullyConnectedNetwork(**settings, gradient="native", native_kernel=KERNEL)
    with pytest.raises(ValueError, match="native_kernel"):
        FullyConnectedNetwork(5, (13,), "erf", variances, gradient="native")
    with pytest.raises(ValueError, match="float32 CPU"):
        native.native_two_layer_loss_and_gradient(KERNEL, w.double(), a.double(), x.double(), y.double())


# The build: a compiler that is stopped part-way must never leave a library that loads.

def _fake_compiler(tmp_path, body):
    script = tmp_path / "fake-cc"
    script.write_text("#!/bin/sh\n"
                      'if [ "$1" = "--version" ]; then echo fake 1; exit 0; fi\n'
                      'while [ "$1" != "-o" ]; do shift; done; out="$2"\n' + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.parametrize("body", [
    'printf "partial" > "$out"; exit 1\n',              # writes half a library, then fails
    'printf "partial" > "$out"; kill -9 $$\n',          # killed after writing
    'kill -9 $$\n',                                     # killed before writing
    'echo "error: no" >&2; exit 1\n',                   # fails without writing
], ids=["partial-then-error", "partial-then-killed", "killed-first", "error"])
def test_an_interrupted_build_leaves_no_library(tmp_path, body):
    settings = build.BuildSettings(tmp_path / "cache", _fake_compiler(tmp_path, body))
    with pytest.raises(build.NativeKernelUnavailable):
        build.build("two_layer_erf", settings)
    target = build.library_path("two_layer_erf", settings)
    assert not target.exists()
    assert list(target.parent.glob("*.tmp")) == []  # the temporary is removed


def test_a_build_in_a_fresh_cache_is_complete_and_reused(tmp_path):
    settings = build.BuildSettings(tmp_path / "cache", native_build_settings().compiler)
    stale = tmp_path / "cache" / ".two_layer_erf-left-over.tmp"  # from a killed build
    stale.parent.mkdir(parents=True)
    stale.write_text("partial")
    path = build.build("two_layer_erf", settings)
    assert path.exists() and path.parent == tmp_path / "cache"
    modified = path.stat().st_mtime_ns
    assert build.build("two_layer_erf", settings) == path and path.stat().st_mtime_ns == modified
    # the built library loads and computes (in a fresh process: this one has its own)
    code = ("import ctypes, torch; lib = ctypes.CDLL(%r); print(lib.two_layer_erf is not None)"
            % str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ})
    assert out.stdout.strip() == "True", out.stderr


def test_no_compiler_is_a_clear_error(tmp_path):
    settings = build.BuildSettings(tmp_path / "cache", "no-such-compiler")
    with pytest.raises(build.NativeKernelUnavailable, match="no-such-compiler"):
        build.build("two_layer_erf", settings)


def test_the_environment_chooses_compiler_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", "my-cc")
    monkeypatch.setenv("LANGEVIN_NATIVE_CACHE", str(tmp_path / "explicit"))
    assert native_build_settings() == build.BuildSettings(tmp_path / "explicit", "my-cc")
    monkeypatch.delenv("LANGEVIN_NATIVE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert native_build_settings().cache == tmp_path / "xdg" / "langevin" / "native"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("CC")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert native_build_settings() == build.BuildSettings(
        tmp_path / "home" / ".cache" / "langevin" / "native", "cc")
