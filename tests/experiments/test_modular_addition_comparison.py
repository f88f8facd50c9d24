"""The sampled modular-addition sweep (experiments.modular_addition_comparison, the study
`modular_addition`): a tiny run end to end, its observables against the data module's definitions,
resumption, and bad input (the command line's study tests: tests/experiments/test_studies.py)."""
import json
import math

import numpy as np
import pytest
import torch

from experiments import modular_addition_comparison as mac
from experiments.setup.modular_addition_data import modular_addition_data, mode_order_parameters, sampled_discrepancy
from langevin.integrators import LangevinState
from langevin.models.modular_quadratic import ModularQuadraticNetwork
from theory.modular_addition import mode_action

TINY = {"modulus": 5, "width": 6, "num_chains": 4, "burn_in": 40, "num_steps": 80, "thin": 10,
        "checkpoint_every": 40, "noise_variances": [0.08]}


def test_observables_match_the_data_module_definitions():
    P, N, C = 5, 6, 3
    data = modular_addition_data(P)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    model = ModularQuadraticNetwork(P, N, {"w": 1.0, "a": 0.1})
    theta = model.sample_prior(C, torch.Generator().manual_seed(4), torch.float64)
    state = LangevinState(theta, torch.zeros(C), torch.zeros(C), {})
    values = mac.modular_observables(model, x, y, threshold=0.15)["modes"].fn(state)
    f = model.outputs(theta, x).numpy()
    modes = mode_order_parameters(theta["w"].numpy(), P)
    for c in range(C):
        assert values["discrepancy"][c].item() == pytest.approx(sampled_discrepancy(f[c], data.y_train), rel=1e-12)
        assert values["mode_product"][c].item() == pytest.approx(modes["product"][c].mean(), rel=1e-12)
        both = (modes["u_squared"][c] > 0.15) & (modes["v_squared"][c] > 0.15)
        assert values["well_fraction"][c].item() == pytest.approx(both.mean())
    np.testing.assert_allclose(values["mode_product_by_k"].numpy(), modes["product"].mean(-2), rtol=1e-12)


def test_well_threshold_is_the_barrier_of_the_degenerate_action():
    gamma, P = 3.0, 13
    A_c = 2.0 * math.sqrt(gamma / 3.0)
    W = np.linspace(1e-3, 2.0 / A_c, 20001)
    S = mode_action(W, W, A_c, gamma, P)
    assert W[np.argmax(S)] == pytest.approx(mac.well_threshold(gamma), abs=2e-4)


def test_tiny_sweep_end_to_end_and_resumes(tmp_path):
    table = mac.run_study(tmp_path, TINY)
    (point,) = table["points"]
    assert point["noise_variance"] == 0.08
    d = point["discrepancy"]
    assert -1.5 < d["sampled"] < 0.5 and d["sampled_mcse"] > 0
    assert d["gp"] == pytest.approx(-0.08 / (4 * mac.DEFAULTS["readout_variance"] + 0.08))
    assert point["eigenvalue"]["sampled"] == pytest.approx(-0.08 * (1 + 1 / d["sampled"]))
    assert len(point["mode_product_by_k"]) == 4
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["points"][0]["discrepancy"] == d
    again = mac.run_study(tmp_path, TINY)  # finished: the same draws are read back
    assert again["points"][0]["discrepancy"] == d
    assert "| 0.08 |" in mac.format_table(table)


@pytest.mark.parametrize("key, value", [("modulus", 1), ("width", 0), ("sextic_decay", -1.0),
                                        ("train_fraction", 1.5), ("noise_variances", []),
                                        ("dtype", "half"), ("init", "cold"), ("bogus", 1),
                                        ("noise_variances", 0.05), ("integrator", [1]), ("seed", "x"),
                                        ("train_fraction", "all"), ("step_size", True)])
def test_bad_parameters_name_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        mac.check_parameters({key: value})


def test_well_start_puts_one_mode_per_neuron_at_the_degenerate_well():
    P, N, C, gamma = 7, 5, 2, 3.0
    model = ModularQuadraticNetwork(P, N, {"w": 1e-24, "a": 0.1})  # ~zero prior: the wave alone
    generator = torch.Generator().manual_seed(0)
    theta = mac.well_start(model.sample_prior(C, generator, torch.float64), P, gamma, generator)
    modes = mode_order_parameters(theta["w"].numpy(), P)
    W_c = math.sqrt(3.0 / gamma)
    for name in ("u_squared", "v_squared"):
        X = modes[name]  # (C, N, P − 1): W_c at k and −k, zero elsewhere
        np.testing.assert_allclose(np.sort(X, -1)[..., -2:], W_c, rtol=1e-9)
        np.testing.assert_allclose(np.sort(X, -1)[..., :-2], 0.0, atol=1e-9)
    product = modes["product"]  # the same mode pair in both halves: X_k Y_k = W_c² at k and −k
    np.testing.assert_allclose(np.sort(product, -1)[..., -2:], W_c ** 2, rtol=1e-9)


def test_main_writes_the_table_and_the_figure(tmp_path, capsys):
    args = [f"--set={k}={json.dumps(v)}" for k, v in TINY.items()]
    assert mac.main(["--out", str(tmp_path), *args]) == 0
    assert "| 0.08 |" in capsys.readouterr().out
    assert (tmp_path / "figures" / "modular_addition.png").stat().st_size > 0


@pytest.mark.slow
def test_prior_and_well_starts_agree_below_the_theory_boundary(tmp_path):
    """At σ² = 0.04 (below the theory's onset σ²_I = 0.0462, P = 13) chains started at the prior and
    with a mode per neuron in the well sample one posterior: their a agree within 4 combined MCSE
    (both have the same step-size bias, so no allowance), i.e. no metastable branch at this size."""
    common = {"step_size": 0.01, "noise_variances": [0.04]}
    prior = mac.run_study(tmp_path / "prior", common)["points"][0]["discrepancy"]
    well = mac.run_study(tmp_path / "well", {**common, "init": "well"})["points"][0]["discrepancy"]
    combined = math.hypot(prior["sampled_mcse"], well["sampled_mcse"])
    assert abs(prior["sampled"] - well["sampled"]) < 4 * combined, (prior, well)
