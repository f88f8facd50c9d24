"""The ReLU learnability ratios of Ringel et al. 2025 (experiments.compare.relu_learnability): the relu_abs data
option, joint sweeps over several keys, the comparison section and figure, and (slow) sampled
mean-field ReLU networks against the adaptive-kernel prediction."""
import dataclasses
import json
import math

import numpy as np
import pytest
import xarray as xr

from experiments import presets, sweep
from experiments.cli import execute, start_run
from experiments.compare import relu_learnability as rl
from experiments.compare.theory_inputs import TwoLayerTheoryInputs
from experiments.reporting import sweep_tables
from experiments.setup import config as cfg
from experiments.setup.build import make_data
from experiments.setup.data import relu_abs_target, target_hermite_coefficients
from langevin.export import open_samples
from theory.adaptive_kernel import solve_adaptive_kernel
from theory.network_prior import NetworkPrior


def test_relu_abs_data_option():
    config, _ = cfg.resolve([presets.get_preset("relu_learnability").overrides],
                            ["data.d=6", "data.n_train=20", "data.n_test=30", "model.width=10"])
    data = make_data(config)
    z = data.x_train @ data.teacher_direction
    assert np.allclose(data.y_train, z + np.abs(z) - math.sqrt(2 / math.pi), atol=1e-15)
    coefficients = target_hermite_coefficients(config["data"])
    assert len(coefficients) == 7 and coefficients[0] == 0 and coefficients[1] == 1
    assert coefficients[2] == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-15)
    assert coefficients[3] == coefficients[5] == 0.0
    with pytest.raises(cfg.ConfigError, match="data.target"):
        cfg.resolve([], ["data.target=abs"])
    with pytest.raises(cfg.ConfigError, match="data.epsilon"):
        cfg.resolve([], ["data.epsilon=nan"])
    assert np.allclose(relu_abs_target(np.array([-1.0, 2.0]), 0.5), [-1 + 0.5 * (1 - math.sqrt(2 / math.pi)),
                                                                     2 + 0.5 * (2 - math.sqrt(2 / math.pi))])


def test_talk_sizes_and_sweep():
    assert rl.talk_sizes(1.0, 3) == (750, 96, 288)
    assert rl.talk_sizes(0.125, 2) == (94, 12, 24)
    points = presets.get_preset("relu_learnability").sweep[rl.SWEEP_KEYS]
    assert len(points) == 9 and (375, 48, 192) in points
    assert sweep.subdir_name(rl.SWEEP_KEYS, (94, 12, 24)) == "width=94,d=12,n_train=24"
    assert sweep.assignments(list(rl.SWEEP_KEYS), [94, 12, 24]) == ["model.width=94", "data.d=12",
                                                                      "data.n_train=24"]
    with pytest.raises(ValueError, match="3 entries"):
        sweep.assignments(rl.SWEEP_KEYS, (94, 12))
    for point in points:                                     # every point of the preset is a valid config
        cfg.resolve([presets.get_preset("relu_learnability").overrides], sweep.assignments(rl.SWEEP_KEYS, point))


def _inputs(width, d, n, chi=None):
    chi = float(width) if chi is None else chi
    prior = NetworkPrior(activation="relu", input_dim=d, widths=(width,), weight_variances=(rl.SIGMA_W2,),
                         readout_variance_tilde=rl.READOUT_NUMERATOR, noise_variance_tilde=rl.NOISE_NUMERATOR, chi=chi)
    return TwoLayerTheoryInputs(prior, n, ())


def test_comparison_section_table_and_figure(tmp_path):
    config, _ = cfg.resolve([presets.get_preset("relu_learnability").overrides],
                            ["data.d=6", "data.n_train=12", "data.n_test=40", "model.width=40"])
    data = make_data(config)
    inputs = _inputs(40, 6, 12)
    theory = rl.theory_ratios(inputs, 1.0, data)
    assert all(s["converged"] for s in theory["solvers"].values()), theory["solvers"]
    # A synthetic "sample": 4 chains × 50 draws scattered around the adaptive training-set mean.
    adaptive = solve_adaptive_kernel(data.x_train, data.y_train, inputs.prior, X_test=data.x_test)
    rng = np.random.default_rng(0)
    f_train = adaptive.mean_train + 0.01 * rng.normal(size=(4, 50, 12))
    f_test = adaptive.mean_test + 0.01 * rng.normal(size=(4, 50, 40))
    ds = xr.Dataset({"f_train": (("chain", "draw", "train_point"), f_train),
                     "f_test": (("chain", "draw", "test_point"), f_test)})
    section = rl.compare_relu_learnability(inputs, config, data, ds)["relu_learnability"]
    assert np.allclose(section["train"]["adaptive"], theory["train"]["adaptive"], rtol=1e-6)
    assert np.allclose(section["train"]["sampled"], section["train"]["adaptive"], atol=5e-3)
    assert all(section["train"]["adaptive_within_4_mcse_plus_allowance"])
    assert section["mean_field_expansion"] == pytest.approx(12 * (1 / 40) * 0.5 / (40 * 2 / 40), rel=1e-12)
    json.dumps(section)                                       # strict JSON
    summaries = []
    for width, d, n in ((40, 6, 12), (80, 6, 18)):
        s = {"theory": {"relu_learnability": dict(section, width=width, input_dim=d, n_train=n, beta=width / 750)}}
        summaries.append(((width, d, n), s))
    table = [dict(sweep_tables.ROW_BUILDERS["relu_learnability"](s), **{"k": v}) for v, s in summaries]
    assert table[1]["n_over_d"] == 3 and table[0]["R1_sampled"] == section["train"]["sampled"][0]
    rl.draw_learnability_ratios("relu_learnability", "k", table, tmp_path)
    assert (tmp_path / "learnability_ratios.png").stat().st_size > 0
    # Not a ReLU run on the relu_abs teacher: no section.
    erf_config, _ = cfg.resolve([], [])
    assert rl.compare_relu_learnability(inputs._replace(prior=dataclasses.replace(inputs.prior, activation="erf")), erf_config, data, ds) == {}


# --- slow: sampled networks -----------------------------------------------------------------------

SLOW_SETTINGS = ["data.d=12", "data.n_train=24", "data.n_test=256", "sampler.num_chains=16",
                 "sampler.burn_in=10000", "sampler.num_steps=20000", "sampler.thin=20",
                 "sampler.step_size=0.01", "sampler.progress=false", "diagnostics.bias_check=off"]


@pytest.mark.slow
def test_sampled_relu_network_against_the_adaptive_prediction(tmp_path):
    """A mean-field ReLU network on the relu_abs teacher (d = 12, n = 24: the β = 1/8, n = 2d point) at
    N = 94 and N = 188 against the Gaussian closure (VGA) on the same data set.

    Width: in mean-field scaling at fixed numerators and fixed (n, d) the adaptive-kernel equations
    without the log-det term are N-free (u = n²σ̃_a²/(σ̃⁴d), κ = nσ̃_a²/σ̃²), so every sampled
    observable moves with N only through the dropped self-interaction, of relative size ε_N
    (`relu_learnability.mean_field_expansion`, 0.064 at N = 94): |R_1(94) − R_1(188)| must stay
    below 4 MCSE + ε_N(94)·|R_1|.
    Σ: the sampled second moment along v* (w_second_moment_parallel) against the VGA b, within
    4 MCSE + (b − σ_w²/d) ε_N + b·step_size/2 (the self-interaction on the feature-learning part of
    b, and the Euler–Maruyama variance inflation ≤ step_size/2, docs/conventions.md).
    R_1: the Gaussian closure's R_1 is *not* within that allowance at this size (measured: sampled
    0.5675 ± 0.0005 and 0.5707 ± 0.0004 at N = 94, 188 against the VGA's 0.4944 and the GP's 0.3075;
    the gap does not close with N, so it is the closure's error at d = 12, not a finite-width
    effect). The test records that the closure captures most of the feature-learning gain over the GP,
    (R_VGA − R_GP)/(R_sampled − R_GP) > 0.6 (measured 0.71), and that p(q = w·v*) is heavy-tailed
    (kurtosis ratio E[q⁴]/3E[q²]² = 1.30 at N = 94, against 1.01 on the control directions ⊥ v*).
    Where the gap comes from: the kernel ladder (`experiments.compare.kernel_ladder`, first-layer
    weights stored at N = 94; docs/results.md). Given W the readout posterior is Gaussian, and the
    Rao-Blackwellized E_W[K_W(K_W + σ²)⁻¹y] reproduces the sampled R_1 (0.5675, difference 0.0001 ±
    0.0005; asserted within 4 MCSE + step_size·|R_1|), with 0.37 of its per-draw variance. The mean
    kernel E_W[K_W] gives 0.5740 (kernel fluctuations: −0.0065, asserted < 15 % of the gap); a zero-mean
    Gaussian w with the sampled second moment gives 0.4973, so the non-Gaussian shape of one neuron's
    law at fixed second moment is −0.0768 ± 0.0003, the whole gap (104 % of sampled − VGA; asserted
    between 80 and 125 %), and the VGA's own Σ adds only −0.0037 (asserted < 15 %). That shape is *not*
    the heavy tail of p(q): the sampled q with a Gaussian rest linear in q has the Gaussian N(m, C)'s R_1
    (0.5251 both; asserted within 4 jackknife SE). It is the dependence of the rest r = w − q v* on q
    (its mean along the training mean x̄ and its size grow with |q|; per q-bin Gaussian moments recover
    0.5700) and the mean of w (−0.028). At N = 188 (the same ladder, measured once) the kernel-fluctuation
    step halves (+0.00325: O(1/N), and the whole of the sampled R_1's change with N) and every other step
    is unchanged.
    Measured (one run, 9.5 min on a busy 2-core machine): b = 0.2024 ± 0.0004 (N = 94), 0.2030 ± 0.0003
    (N = 188) against the VGA's 0.1990.
    """
    preset = presets.get_preset("relu_learnability")
    sampled, moments = {}, {}
    ladder = None
    for width in (94, 188):
        weights = ["observables.first_layer_weights=true"] if width == 94 else []   # the kernel ladder at N = 94
        run_dir, config = start_run("relu_learnability", [preset.overrides],
                                    [*SLOW_SETTINGS, f"model.width={width}", *weights], tmp_path / f"N{width}")
        assert execute(run_dir, config, "relu_learnability") == 0
        summary = json.loads((run_dir / "summary.json").read_text())
        section = summary["theory"]["relu_learnability"]
        sampled[width] = (section["train"]["sampled"][0], section["train"]["mcse"][0], section["train"]["gp"][0])
        moment = summary["diagnostics"]["w_second_moment_parallel"]
        moments[width] = (moment["mean"], moment["mcse_mean"], section["mean_field_expansion"])
        ladder = section.get("kernel_ladder", ladder)
        data = make_data(config)
    adaptive = solve_adaptive_kernel(data.x_train, data.y_train, _inputs(94, *data.x_train.shape[::-1]).prior,
                                     logdet_term=False, probes=rl.hermite_probes(data.x_train, data.teacher_direction))
    assert adaptive.converged
    v = data.teacher_direction
    b, prior = float(v @ adaptive.covariance @ v), 1.0 / 12
    (r1, e1, gp), (r2, e2, _) = sampled[94], sampled[188]
    eps94 = moments[94][2]
    theory = adaptive.learnabilities[0]
    print(f"\nR_1 train: N=94 {r1:.4f}±{e1:.4f}, N=188 {r2:.4f}±{e2:.4f}, VGA {theory:.4f}, GP {gp:.4f}; "
          f"b: {moments[94][0]:.4f}±{moments[94][1]:.4f}, {moments[188][0]:.4f}±{moments[188][1]:.4f}, VGA {b:.4f}")
    assert abs(r1 - r2) < 4 * math.hypot(e1, e2) + eps94 * abs(r2)
    for width, (mean, mcse, eps) in moments.items():
        assert abs(mean - b) < 4 * mcse + (b - prior) * eps + b * 0.01 / 2, width
    assert (theory - gp) / (r2 - gp) > 0.6
    ds = open_samples(tmp_path / "N94" / "samples.zarr")
    kurtosis = {name: float(np.mean(ds[name].values.astype(np.float64) ** 4)
                            / (3 * np.mean(ds[name].values.astype(np.float64) ** 2) ** 2))
                for name in ("q", "q_control")}
    print(f"kurtosis ratios {kurtosis}")
    assert kurtosis["q"] > 1.1 > kurtosis["q_control"]
    # The kernel ladder (experiments.compare.kernel_ladder) at N = 94, R_1.
    R = {name: values[0] for name, values in ladder["R"].items()}
    step = {name: entry["value"][0] for name, entry in ladder["differences"].items()}
    se = {name: entry["se"][0] for name, entry in ladder["differences"].items()}
    print("kernel ladder R_1: " + ", ".join(f"{name} {value:.4f}" for name, value in R.items()))
    # Rao-Blackwellized = sampled posterior mean: 4 MCSE of the paired difference + the O(step_size) allowance.
    assert abs(step["rao_blackwell-sampled"]) < 4 * ladder["mcse"]["rao_blackwell-sampled"][0] + 0.01 * abs(R["sampled"])
    assert all(ratio < 1 for ratio in ladder["variance_ratio"])
    gap = R["vga"] - R["sampled"]
    shape = R["gaussian_second_moment"] - R["mean_kernel"]
    assert abs(shape) > 4 * math.hypot(ladder["se"]["gaussian_second_moment"][0], ladder["se"]["mean_kernel"][0])
    assert 0.8 < shape / gap < 1.25                                  # the non-Gaussian shape of p(w): the gap
    assert abs(step["mean_kernel-rao_blackwell"]) < 0.15 * abs(gap)  # kernel fluctuations: small
    assert abs(step["vga-gaussian_second_moment"]) < 0.15 * abs(gap)  # the closure's covariance: nearly right
    # ... and not the heavy tail of p(q): a Gaussian given q, linear in q, has the Gaussian's R_1
    assert abs(step["gaussian_mean_covariance-gaussian_given_q_linear"]) < 4 * se["gaussian_mean_covariance-gaussian_given_q_linear"]
