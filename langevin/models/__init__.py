"""Network families batched over chains, one module per architecture.

    protocol   the `Model` interface and the generic batched-autograd gradient
    fc         fully connected networks, any depth, widths, activation, optional biases
    two_layer  the analytic (fused) backward of one hidden layer; `TwoLayerNetwork`
    conv       one hidden layer over local patches: cnn (shared filters) and lcn
    linear     Bayesian linear regression (the exact reference problem)
    modular_quadratic  the P-output quadratic net of modular addition, its sextic mode decay

The experiments registry (experiments/setup/architectures.py) maps config names to these.
"""
from langevin.models.conv import LocalPatchNetwork
from langevin.models.fc import FullyConnectedNetwork
from langevin.models.linear import LinearModel
from langevin.models.modular_quadratic import ModularQuadraticNetwork
from langevin.models.protocol import Model, autograd_loss_and_gradient
from langevin.models.two_layer import TwoLayerNetwork

__all__ = ["FullyConnectedNetwork", "LocalPatchNetwork", "LinearModel", "Model", "ModularQuadraticNetwork", "TwoLayerNetwork",
           "autograd_loss_and_gradient"]
