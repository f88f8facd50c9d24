"""The paired IEEE continuation of a tf32 run (experiments.reporting.precision_check), tested on the
CPU: the difference estimator against an exact shift, and the whole check forced on a
CPU run (where both arms are the same chain, so the difference is exactly 0)."""
import numpy as np
import torch

from experiments.cli import main
from experiments.reporting import bias
from experiments.reporting.precision_check import paired_difference, paired_precision_check
from experiments.rundirs import rundir
from langevin.export import open_samples
from langevin.integrators import euler_maruyama
from langevin.observables import Observable
from langevin.potential import gaussian_potential

SQUARE = {"square": Observable(lambda s: {"x2": s.theta["x"][:, 0] ** 2}, {"x2": ()})}


def test_paired_difference_recovers_an_exact_shift_within_4_mcse():
    # ULA on U = ½kθ² at T and at T(1 + δ): stationary variances v = T/(k(1 − ηk/2)) and
    # v(1 + δ), so the exact difference of E[θ²] is v δ; both arms start at their law.
    k, eta, temperature, delta, chains = 1.0, 0.2, 0.5, 0.05, 800
    variance = temperature / (k * (1 - eta * k / 2))
    arms = []
    for t, seed in ((temperature * (1 + delta), 1), (temperature, 2)):
        generator = torch.Generator().manual_seed(seed)
        scale = (variance * t / temperature) ** 0.5
        theta = {"x": scale * torch.randn(chains, 1, generator=generator, dtype=torch.float64)}
        integrator = euler_maruyama(gaussian_potential({"x": k}), {"x": eta}, t)
        arms.append(bias.continue_chains(integrator, integrator.init(theta), generator, 400,
                                         SQUARE).values["x2"])
    result = paired_difference(*arms)
    assert result["difference_mcse"] > 0
    assert abs(result["difference"] - variance * delta) < 4 * result["difference_mcse"]
    assert abs(result["difference"]) > 4 * result["difference_mcse"]  # the shift is resolved


def test_forced_check_on_a_cpu_run_reports_every_key_observable(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["run", "smoke", "--set", "sampler.progress=false", "--set",
                 "sampler.num_steps=400", "--set", "sampler.burn_in=100", "--set",
                 "diagnostics.bias_check=off", "--set", "diagnostics.bias_check_steps=60",
                 "--out", str(run_dir)]) == 0
    config = rundir.load_config(run_dir)
    data = rundir.read_run_data(run_dir)
    ds = open_samples(run_dir / rundir.SAMPLES_DIR)
    assert paired_precision_check(run_dir, config, data, ds)["status"] == "off"  # IEEE run
    check = paired_precision_check(run_dir, config, data, ds, force=True)
    assert check["status"] == "done" and check["steps"] == 60
    assert set(check["observables"]) == {"train_loss", "squared_norm_w", "squared_norm_a",
                                         "virial_temperature_w", "virial_temperature_a"}
    for entry in check["observables"].values():
        # On the CPU both arms are the same chain (same state, noise and kernels).
        assert entry["difference"] == 0.0 and entry["difference_mcse"] > 0
        assert entry["run_mcse"] > 0 and np.isfinite(entry["mean_run"])
    assert check["warnings"] == []
