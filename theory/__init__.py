"""Analytic predictions for the equilibrium posterior of finite-width networks.

Float64 NumPy/SciPy only: no torch, no JAX, and no import of ``langevin`` or
``experiments``. Import the submodule you need, e.g. ``from theory import kernels``.
"""
