"""Classification observables: the NTK observable against a per-chain autograd Jacobian
(also through the sampling loop, with Θ(0) kept in the checkpoint and a bitwise resume),
N_Δ on a hand case, the separation's invariance under a signed permutation of hidden units,
and the dictionary alignment of a network whose neurons are the atoms (against the NumPy
good-neuron reference)."""
import numpy as np
import pytest
import torch

from experiments.setup.sparse_coding_data import good_neurons, haar_orthogonal
from langevin import classification_observables as cobs
from langevin.checkpoint import load_checkpoint
from langevin.integrators import euler_maruyama
from langevin.models.fc import FullyConnectedNetwork
from langevin.observables import evaluate
from langevin.potential import make_potential
from langevin.run import RunPlan, run_chains
from langevin.separation import separation_fuzziness
from langevin.store import SampleStore


def _net(widths=(5, 4), activation="erf", d=3):
    variances = {"w": 1.0 / d, "w2": 1.0 / widths[0], "a": 1.0 / widths[-1]}
    if len(widths) == 1:
        variances = {"w": 1.0 / d, "a": 1.0 / widths[0]}
    return FullyConnectedNetwork(d, widths, activation, variances)


def _autograd_ntk(model, theta, x, chain):
    """Θ of one chain from an explicit per-output autograd Jacobian of that chain alone."""
    leaves = {k: v[chain:chain + 1].detach().clone().requires_grad_(True)
              for k, v in theta.items()}
    f = model.predict(leaves, x)[0]
    rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        f[mu], list(leaves.values()), retain_graph=True)]) for mu in range(x.shape[0])]
    jacobian = torch.stack(rows)
    return jacobian @ jacobian.T


def test_ntk_observable_equals_per_chain_autograd_and_its_relative_change():
    generator = torch.Generator().manual_seed(3)
    model = _net()
    theta0 = model.sample_prior(3, generator, dtype=torch.float64)
    theta1 = {k: v + 0.3 * torch.randn(v.shape, generator=generator, dtype=v.dtype)
              for k, v in theta0.items()}
    x = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    observable = cobs.ntk_observable(model.predict, x)

    class State:  # only theta is read
        def __init__(self, theta):
            self.theta = theta

    initial = observable.initial(State(theta0))
    values = evaluate(observable, State(theta1), initial)
    for c in range(3):
        reference0 = _autograd_ntk(model, theta0, x, c)
        reference1 = _autograd_ntk(model, theta1, x, c)
        torch.testing.assert_close(initial["ntk"][c], reference0, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(values["ntk"][c], reference1, rtol=1e-12, atol=1e-12)
        expected = torch.linalg.norm(reference1 - reference0) / torch.linalg.norm(reference0)
        torch.testing.assert_close(values["ntk_relative_change"][c], expected)
    with pytest.raises(ValueError, match="initial"):
        evaluate(observable, State(theta1))


def _run(tmp_path, name, stop_after=None):
    torch.manual_seed(0)
    model = _net(widths=(4,), d=2)
    generator = torch.Generator().manual_seed(7)
    data = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, generator=data, dtype=torch.float64)
    y = torch.sign(torch.randn(6, generator=data, dtype=torch.float64))
    decays = {layer: 1.0 / v for layer, v in model.prior_variances.items()}
    integrator = euler_maruyama(make_potential(model, x, y, decays),
                                {k: 0.01 / g for k, g in decays.items()}, 1.0)
    theta = model.sample_prior(2, torch.Generator().manual_seed(5), dtype=torch.float64)
    observables = {"ntk": cobs.ntk_observable(model.predict, x[:3], every=10),
                   "n_delta": cobs.margin_violations(model.predict, x, y)}
    plan = RunPlan(burn_in=5, num_steps=40, thin=5, checkpoint_every=15)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return stop_after is not None and calls["n"] == stop_after

    store = SampleStore(tmp_path / name / "samples.zarr", 2)
    kwargs = dict(integrator=integrator, initial_theta=theta, generator=generator,
                  observables=observables, plan=plan, store=store,
                  checkpoint_dir=tmp_path / name / "checkpoint", config_hash="h")
    result = run_chains(stop_requested=stop, **kwargs)
    return result, kwargs, model, theta, x


def test_ntk_in_a_run_is_checkpointed_resumes_bitwise_and_matches_autograd(tmp_path):
    full, _, model, theta0, x = _run(tmp_path, "full")
    assert full.status == "completed"
    interrupted, kwargs, *_ = _run(tmp_path, "split", stop_after=22)
    assert interrupted.status == "interrupted"
    checkpoint = load_checkpoint(tmp_path / "split" / "checkpoint")
    kept = checkpoint.observable_constants["ntk"]["ntk"]
    for c in range(2):  # Θ(0) in the checkpoint is the kernel at the initial draw
        torch.testing.assert_close(kept[c], _autograd_ntk(model, theta0, x[:3], c))
    # restored from the checkpoint, not recomputed: a resume ignores both of these
    kwargs["generator"] = torch.Generator().manual_seed(999)
    kwargs["initial_theta"] = {k: v + 1.0 for k, v in kwargs["initial_theta"].items()}
    resumed = run_chains(**kwargs)
    assert resumed.status == "completed"
    a = SampleStore(tmp_path / "full" / "samples.zarr", 2).open("every_10").load()
    b = SampleStore(tmp_path / "split" / "samples.zarr", 2).open("every_10").load()
    np.testing.assert_array_equal(a["ntk"].values, b["ntk"].values)
    np.testing.assert_array_equal(a["ntk_relative_change"].values,
                                  b["ntk_relative_change"].values)
    root_a = SampleStore(tmp_path / "full" / "samples.zarr", 2).open().load()
    root_b = SampleStore(tmp_path / "split" / "samples.zarr", 2).open().load()
    np.testing.assert_array_equal(root_a["n_delta"].values, root_b["n_delta"].values)
    # the last draw (step 40 = the final state) against the explicit reference
    final = full.state.theta
    for c in range(2):
        torch.testing.assert_close(torch.as_tensor(a["ntk"].values[c, -1]),
                                   _autograd_ntk(model, final, x[:3], c))
        expected = (torch.linalg.norm(_autograd_ntk(model, final, x[:3], c)
                                      - _autograd_ntk(model, theta0, x[:3], c))
                    / torch.linalg.norm(_autograd_ntk(model, theta0, x[:3], c)))
        torch.testing.assert_close(torch.as_tensor(a["ntk_relative_change"].values[c, -1]),
                                   expected)


def test_n_delta_counts_margins_below_one_on_a_hand_case():
    # f = a·x for a linear net of one unit with w = 1: margins y·f per point
    model = FullyConnectedNetwork(1, (1,), "linear", {"w": 1.0, "a": 1.0})
    x = torch.tensor([[2.0], [0.5], [-3.0], [1.0]], dtype=torch.float64)
    y = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    theta = {"w": torch.ones(2, 1, 1, dtype=torch.float64),
             "a": torch.tensor([[1.0], [-1.0]], dtype=torch.float64)}

    class State:
        pass

    state = State()
    state.theta = theta
    # chain 0: f = x, margins (2, 0.5, 3, -1) -> 2 below 1; chain 1: f = −x, margins
    # (−2, −0.5, −3, 1) -> 3 below 1 (a margin of exactly 1 is not counted)
    counts = cobs.margin_violations(model.predict, x, y).fn(state)["n_delta"]
    assert counts.tolist() == [2, 3] and counts.dtype == torch.int64


def test_separation_is_invariant_under_a_signed_permutation_of_hidden_units():
    generator = torch.Generator().manual_seed(11)
    model = _net(widths=(6, 5), activation="erf", d=4)
    theta = model.sample_prior(3, generator, dtype=torch.float64)
    x = torch.randn(30, 4, generator=generator, dtype=torch.float64)
    labels = torch.sign(x[:, 0] + 0.3 * x[:, 1])
    observable = cobs.layer_separation(model.preactivations, torch.erf, x, labels)

    class State:
        def __init__(self, theta):
            self.theta = theta

    before = observable.fn(State(theta))["separation"]
    assert before.shape == (3, 3)
    # erf is odd: (W¹_i, W²_{:,i}) -> (s_i W¹_{π(i)}, s_i W²_{:,π(i)}) rotates layer 1's
    # representation by an orthogonal signed permutation and leaves layer 2 and f unchanged
    perm = torch.randperm(6, generator=generator)
    signs = torch.where(torch.rand(6, generator=generator) < 0.5, -1.0, 1.0).double()
    moved = dict(theta)
    moved["w"] = theta["w"][:, perm, :] * signs[:, None]
    moved["w2"] = theta["w2"][:, :, perm] * signs
    after = observable.fn(State(moved))["separation"]
    torch.testing.assert_close(after, before, rtol=1e-10, atol=0)
    torch.testing.assert_close(model.predict(moved, x), model.predict(theta, x))
    # depth 0 is the inputs' own D, for every chain
    torch.testing.assert_close(before[:, 0], separation_fuzziness(x[None], labels).expand(3))


def test_network_whose_neurons_are_the_atoms_is_surely_good_for_each():
    d = 9
    rng = np.random.default_rng(0)
    dictionary = haar_orthogonal(d, rng)
    label_weights = np.where(rng.random(d) < 0.5, -1.0, 1.0) * rng.uniform(1, 2, d)
    # neuron i = 2.5 s_i M_i with s_i = sign(w*_i): Ō = diag(s), every neuron good for its atom
    weights = 2.5 * (dictionary * np.sign(label_weights)).T  # rows w_i
    theta = {"w": torch.as_tensor(np.stack([weights, -weights]))}  # chain 1: all signs wrong

    class State:
        pass

    state = State()
    state.theta = theta
    observable = cobs.dictionary_alignment(torch.as_tensor(dictionary),
                                           torch.as_tensor(label_weights), c1=3.0, c2=1.0)
    values = observable.fn(state)
    np.testing.assert_allclose(values["dictionary_overlap"][0].numpy(),
                               np.diag(np.sign(label_weights)), atol=1e-12)
    assert values["good_atom"][0].tolist() == list(range(d))
    assert values["good_atom"][1].tolist() == [-1] * d  # Ō_ii w*_i < 0
    assert values["good_neuron_count"].tolist() == [[1] * d, [0] * d]
    assert values["potentially_good_count"].tolist() == [[1] * d, [1] * d]
    assert values["good_neurons"].tolist() == [d, 0]


def test_good_neuron_sets_equal_the_numpy_reference_on_random_weights():
    d, width = 16, 200
    rng = np.random.default_rng(4)
    dictionary = haar_orthogonal(d, rng)
    label_weights = np.where(rng.random(d) < 0.5, -1.0, 1.0) * rng.uniform(1, 2, d)
    # half the neurons near an atom, half from the prior: both sides of the thresholds
    near = dictionary.T[rng.integers(0, d, width // 2)] + 0.2 * rng.standard_normal((width // 2, d))
    weights = np.concatenate([near, rng.standard_normal((width // 2, d))])[None]
    overlaps = cobs.normalized_overlaps(torch.as_tensor(weights), torch.as_tensor(dictionary))
    surely, potentially, atom = cobs.good_neuron_sets(overlaps, torch.as_tensor(label_weights),
                                                      2.0, 0.5)
    normalized = weights @ dictionary / np.linalg.norm(weights, axis=-1, keepdims=True)
    reference = good_neurons(normalized, label_weights, scale=1 / np.sqrt(d), c1=2.0, c2=0.5)
    np.testing.assert_array_equal(surely.numpy(), reference.surely_good)
    np.testing.assert_array_equal(potentially.numpy(), reference.potentially_good)
    assert 0 < int(surely.sum()) < width  # the case is not trivial
    expected_atom = np.where(reference.surely_good.any(-1), reference.surely_good.argmax(-1), -1)
    np.testing.assert_array_equal(atom.numpy(), expected_atom)
