"""`langevin reference`: Langevin against NUTS (NumPyro) on a tiny network.

The agreement test's tolerance is the Monte Carlo error of both samplers:
|Langevin − NUTS| < 4 √(mcse_L² + mcse_N²) per symmetric statistic (MCSE from the ESS
over all chains, `langevin.diagnostics`), or the same after subtracting the estimated
step-size bias of Langevin (its MCSE added in quadrature).
"""
import json
import sys

import pytest

from experiments.cli import main
from experiments.reference_check import compare, symmetric_statistics


def test_too_large_problems_are_refused_naming_the_key(tmp_path, capsys):
    code = main(["reference", "--set", "model.width=16", "--out", str(tmp_path / "ref")])
    assert code == 2
    err = capsys.readouterr().err
    assert "model.width = 16 > 8" in err
    assert not (tmp_path / "ref").exists()


def test_missing_jax_gives_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # makes `import jax` raise ImportError
    code = main(["reference", "--out", str(tmp_path / "ref")])
    assert code == 2
    err = capsys.readouterr().err
    assert 'pip install -e ".[jax]"' in err
    assert not (tmp_path / "ref" / "langevin").exists()


def test_statistics_are_symmetric_under_neuron_permutation_and_sign_flip():
    import numpy as np

    rng = np.random.default_rng(0)
    draws = {"q": rng.standard_normal((4, 10, 5)), "f_test": rng.standard_normal((4, 10, 2)),
             "train_loss": rng.random((4, 10))}
    flipped = dict(draws, q=-draws["q"][:, :, ::-1])
    original, transformed = symmetric_statistics(draws), symmetric_statistics(flipped)
    assert original.keys() == transformed.keys()
    for name, value in original.items():
        assert transformed[name] == pytest.approx(value, rel=1e-12), name
    table = compare({"x": (1.0, 0.1)}, {"x": (1.3, 0.0)}, {"x": (-0.3, 0.05)})["x"]
    assert table["z"] == pytest.approx(3.0) and table["z_corrected"] == pytest.approx(0.0)


@pytest.mark.slow  # ~40 s on 2 idle cores, 85 s on a busy machine
def test_langevin_and_nuts_agree_on_a_tiny_network(tmp_path, capsys):
    pytest.importorskip("numpyro")
    out = tmp_path / "ref"
    # 16 Langevin chains x 22000 steps, NUTS 4 chains x (500 + 2000).
    code = main(["reference", "--set", "sampler.progress=false", "--nuts-warmup", "500",
                 "--out", str(out)])
    printed = capsys.readouterr().out
    result = json.loads((out / "reference.json").read_text())
    assert code == 0, printed
    assert result["all_agree"], printed
    table = result["comparisons"]
    assert {"q2", "q4", "train_loss", "predictive_mean[0]", "predictive_variance[0]"} <= set(table)
    assert result["nuts"]["num_divergences"] == 0
    # The comparison has power: the combined MCSE is a few % of the posterior values.
    assert table["q2"]["langevin_mcse"] < 0.05 * table["q2"]["nuts"]
    assert (out / "langevin" / "summary.json").is_file()
