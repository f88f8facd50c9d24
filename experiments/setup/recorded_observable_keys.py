"""Config keys of the opt-in recorded observables ([observables]) added after runs existed; merged
into experiments.setup.config.SCHEMA. Each is off at its default and enters the config hash only
when it differs from its default, so the hash (and the resumability) of every earlier run is
unchanged. All are recorded every sampler.thin steps."""
from __future__ import annotations

from experiments.setup.config_keys import Key

RECORDED_OBSERVABLE_KEYS = {
    # experiments.compare.three_layer_comparison: the kernel of the last hidden layer's
    # pre-activations on the training inputs, (1/N_L) h^L h^Lᵀ (n² numbers per chain and draw).
    "hidden_kernel": Key(
        bool, False, None, "record the last hidden layer's pre-activation kernel (1/N_L) h hᵀ on the "
        "training inputs, dims (train_point, train_point_other), every sampler.thin steps"),
    # experiments.staircase_study: the exact Gaussian projections E_x[f He_k(w*.x)], k = 1, 3, of a
    # one-hidden-layer erf network (langevin.observables.erf_hermite_projections).
    "hermite_projections": Key(
        bool, False, None, "record E_x[f He_k(w*.x)], k = 1, 3, exactly (one hidden erf layer, no bias, "
        "single-index data), dims (hermite_degree,)"),
    # experiments.compare.kernel_ladder: the input-layer weights W (N·d numbers per chain and draw), in
    # the root group beside f_train.
    "first_layer_weights": Key(
        bool, False, None, "record the input-layer weights theta['w'], dims (neuron, input), every "
        "sampler.thin steps, for the Rao-Blackwellized readout and the kernel ladder (two-layer networks)"),
}
