"""The network-prior record of the theory solvers (theory.network_prior): validation naming the
field, the χ scaling σ_a² = σ̃_a²/χ, σ² = σ̃²/χ, and variation by dataclasses.replace."""
import dataclasses

import pytest

from theory.network_prior import NetworkPrior, check_two_layer

BASE = dict(activation="erf", input_dim=150, widths=(700,), weight_variances=(0.5,),
            readout_variance_tilde=8.0, noise_variance_tilde=0.18 * 700, chi=700)


def test_chi_scaling_and_one_layer_accessors():
    prior = NetworkPrior(**BASE)
    assert prior.readout_variance == 8.0 / 700 and prior.noise_variance == 0.18 * 700 / 700
    assert prior.width == 700.0 and prior.input_variance == 0.5
    assert isinstance(prior.widths[0], int) and isinstance(prior.chi, float)
    # Standard scaling: the numerators are the physical variances.
    standard = dataclasses.replace(prior, readout_variance_tilde=8 / 700, noise_variance_tilde=0.18, chi=1)
    assert standard.readout_variance == 8 / 700 and standard.noise_variance == 0.18
    assert check_two_layer(prior, ("erf",)) is prior


def test_replace_validates_and_the_record_is_frozen():
    prior = NetworkPrior(**BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        prior.chi = 1.0
    moved = dataclasses.replace(prior, noise_variance_tilde=30.0)
    assert moved.noise_variance == 30.0 / 700 and moved.widths == prior.widths
    with pytest.raises(ValueError, match="NetworkPrior.noise_variance_tilde"):
        dataclasses.replace(prior, noise_variance_tilde=-1.0)
    with pytest.raises(TypeError):
        NetworkPrior("erf", 150, (700,), (0.5,), 8.0, 1.0)  # keyword-only


@pytest.mark.parametrize("field,value", [
    ("activation", ""), ("input_dim", 0), ("input_dim", 2.5), ("input_dim", True), ("widths", (0,)),
    ("widths", "700"), ("widths", (float("inf"),)), ("weight_variances", ()), ("weight_variances", (0.5, 0.5)),
    ("weight_variances", (-0.5,)), ("readout_variance_tilde", 0.0), ("noise_variance_tilde", float("nan")),
    ("chi", 0.0), ("bias_variance", -1.0), ("architecture", None)])
def test_bad_fields_are_named(field, value):
    with pytest.raises(ValueError, match=f"NetworkPrior.{field}"):
        NetworkPrior(**dict(BASE, **{field: value}))


def test_two_layer_check_names_the_field():
    deep = NetworkPrior(**dict(BASE, widths=(10, 10), weight_variances=(1.0, 1.0)))
    with pytest.raises(ValueError, match="NetworkPrior.widths"):
        deep.width
    for changes, field in (({"widths": (10, 10), "weight_variances": (1.0, 1.0)}, "widths"),
                           ({"bias_variance": 0.5}, "bias_variance"), ({"architecture": "cnn"}, "architecture"),
                           ({"noise_variance_tilde": 0.0}, "noise_variance_tilde"),
                           ({"activation": "relu"}, "activation")):
        with pytest.raises(ValueError, match=f"NetworkPrior.{field}"):
            check_two_layer(NetworkPrior(**dict(BASE, **changes)), ("erf",))
