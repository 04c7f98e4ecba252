"""Coupled and contrastive learning on layered networks: the clamped phase is the circuit with
its outputs held, coupled learning tends to its η → 0 limit at O(η) and points downhill,
contrastive learning vanishes at the targets, statuses say when the sweeps did not converge,
and float32 agrees with float64.

Compilation dominates: the rules are jitted here (η traced), and the tests share networks
and sweep counts so that each compiles once."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import cosine, rel_error, tree_flat

import kirchhoff as kh
from kirchhoff._learning._clamped import (
    RULES,
    check_rule,
    layered_contrastive_gradient,
    layered_coupled_gradient,
)
from kirchhoff._solver._clamped import ClampedProblem
from kirchhoff._solver._sweeps import input_drive, layer_sums

pytestmark = pytest.mark.skipif(
    not jax.config.jax_enable_x64, reason="compares with float64 references"
)

coupled = eqx.filter_jit(layered_coupled_gradient)
contrastive = eqx.filter_jit(layered_contrastive_gradient)
MANY = 300  # sweeps that converge every phase here (a deep net with amplifiers included)
SHALLOW_SWEEPS = 60


@pytest.fixture(scope="module")
def data():
    x = jax.random.uniform(jax.random.PRNGKey(1), (4, 6), minval=-1.0, maxval=1.0)
    y = jax.nn.one_hot(jnp.arange(4) % 3, 3)
    return x, y


def _shallow():
    """One hidden layer of 8 ideal-diode nodes, some of them held on their diodes' bound."""
    return kh.drn(jax.random.PRNGKey(0), (6, 8, 3), input_gain=3.0)


def _deep():
    """Three hidden layers and amplifiers of gains below and above 1."""
    return kh.drn(jax.random.PRNGKey(2), (6, 5, 4, 4, 3), input_gain=2.0, amp_gains=(0.5, 2.0, 1.5))


@eqx.filter_jit
def _hidden_kcl(net, clamped, x):
    """Per hidden node at potentials ``clamped`` (batch, n_free): the current its resistors
    and bias source draw from it, ∂E/∂v_h over the node's energy weight (amperes), by
    autodiff of the energy; and the node's conductance Σg."""
    n_hidden = net.n_free - net.n_outputs
    grad = jax.vmap(jax.grad(net.energy))(clamped, x) / net.node_weight_free()
    sums = net.join(layer_sums(net))
    return grad[:, :n_hidden], sums[:n_hidden]


def test_clamped_phase_is_the_energy_minimum_with_held_outputs(data):
    """The clamped phase holds the outputs at v⁰_out + η·(y − v⁰_out) and its hidden layers
    minimise the energy given them: KCL by autodiff of ``net.energy`` (the one physics, not
    the sweeps' closed forms) holds at every hidden node off its diode's bound, and at a node
    on its bound the diode carries the current, forward (the energy's projected gradient
    vanishes; with a strictly convex energy, that is its unique minimum)."""
    x, y = data
    net, eta = _deep(), 0.3
    _, _, ph = coupled(net, x, y, jnp.asarray(eta), MANY)
    assert np.all(ph.converged())
    clamped = ph.clamped_eq.free
    held = ph.free[-1] + eta * (y - ph.free[-1])
    np.testing.assert_allclose(net.split(clamped)[-1], held, rtol=0, atol=1e-15)
    current, conductance = (np.asarray(a) for a in _hidden_kcl(net, clamped, x))
    v = np.asarray(clamped)[:, : current.shape[1]]
    lo, hi = (np.concatenate([np.asarray(b) for b in bound]) for bound in (net.lower, net.upper))
    at_lo, at_hi = v == lo, v == hi
    tol = 1e-12 * conductance
    inside = ~(at_lo | at_hi)
    assert np.all(np.abs(current[inside]) <= np.broadcast_to(tol, v.shape)[inside])
    # a diode to a lower bound can only feed the node (its resistors draw current out), one to
    # an upper bound only drain it
    assert np.all(current[at_lo] >= -np.broadcast_to(tol, v.shape)[at_lo])
    assert np.all(current[at_hi] <= np.broadcast_to(tol, v.shape)[at_hi])
    # the diodes are doing something, and the clamped state differs from the free one
    assert np.any(at_lo | at_hi) and np.any(inside)
    assert np.max(np.abs(net.join(ph.clamped[:-1]))) > 1e-3


def _energy_gradient(net, v, x):
    """∂E/∂θ (weights and biases) at free potentials ``v`` (batch, n_free), one row each."""
    params, static = eqx.partition(net, net.trainable_filter())
    energy = lambda p, vi, xi: eqx.combine(p, static).energy(vi, xi)
    return jax.vmap(jax.grad(energy), in_axes=(None, 0, 0))(params, v, x)


@eqx.filter_jit
def _coupled_limit(net, free, x, y):
    """lim_{η→0} (∂E/∂θ(v^C(η)) − ∂E/∂θ(v⁰))/η, batch mean, by autodiff: the clamped state
    moves along dv/dη = [−H_hh⁻¹·H_ho·d, d], d = y − v⁰_out, H the energy's Hessian (hidden
    nodes on a diode bound stay there and drop out of H_hh), and the limit is the derivative
    of ∂E/∂θ along it (a jvp)."""
    n_hidden = net.n_free - net.n_outputs
    lo, hi = (jnp.concatenate(b) for b in (net.lower, net.upper))

    def direction(v, xi, yi):
        h = jax.hessian(net.energy)(v, xi)
        d = yi - v[n_hidden:]
        pinned = (v[:n_hidden] == lo) | (v[:n_hidden] == hi)
        either = pinned[:, None] | pinned[None, :]
        h_hh = jnp.where(either, jnp.eye(n_hidden), h[:n_hidden, :n_hidden])
        rhs = jnp.where(pinned, 0.0, h[:n_hidden, n_hidden:] @ d)
        return jnp.concatenate([-jnp.linalg.solve(h_hh, rhs), d])

    dv = jax.vmap(direction)(free, x, y)
    _, tangent = jax.jvp(lambda v: _energy_gradient(net, v, x), (free,), (dv,))
    return jax.tree_util.tree_map(lambda t: jnp.mean(t, axis=0), tangent)


def test_coupled_learning_tends_to_its_limit_at_order_eta_and_descends(data):
    x, y = data
    net = _shallow()
    etas = (1e-2, 1e-3, 1e-4)
    runs = [coupled(net, x, y, jnp.asarray(eta), SHALLOW_SWEEPS) for eta in etas]
    assert all(np.all(ph.converged()) for _, _, ph in runs)
    free = net.join(runs[0][2].free[1:])
    hidden = free[:, : net.n_free - net.n_outputs]
    assert np.any(hidden == 0.0) and np.any(hidden != 0.0)  # pinned and free hidden nodes
    limit = _coupled_limit(net, free, x, y)
    errors = [rel_error(g, limit) for g, _, _ in runs]
    # the bias is linear in η: a decade of η, a decade of error
    for a, b in zip(errors, errors[1:], strict=False):
        assert 7 < a / b < 13, errors
    assert errors[-1] < 5 * etas[-1]

    # not the loss gradient (the output error is weighted by the conductances the outputs
    # see), but a descent direction; contrastive learning too
    true, _, _ = eqx.filter_jit(kh.layered_backprop_gradient)(net, x, y, n_sweeps=SHALLOW_SWEEPS)
    assert rel_error(limit, true) > 1e-2
    assert cosine(runs[1][0], true) > 0
    g, loss, ph = contrastive(net, x, y, SHALLOW_SWEEPS)
    assert cosine(g, true) > 0
    # contrastive is coupled learning at η = 1
    g1, loss1, _ = coupled(net, x, y, jnp.asarray(1.0), SHALLOW_SWEEPS)
    assert rel_error(g, g1) < 1e-14 and float(loss) == float(loss1)


@pytest.mark.parametrize("case", ["ideal drn", "shockley seed"])
def test_contrastive_vanishes_at_the_targets(data, case):
    """With the targets at the free outputs the clamped phase is the free one: the estimate is
    exactly zero, whether or not the sweeps converged (one sweep of a deep net does not)."""
    x, _ = data
    if case == "ideal drn":
        net, n_sweeps = _deep(), 1
    else:
        net = kh.seed_network(
            jax.random.PRNGKey(3), n_hidden=5, n_features=6, n_outputs=3, rail_volts=0.05
        )
        n_sweeps = SHALLOW_SWEEPS
    _, _, ph = contrastive(net, x, jnp.zeros((4, 3)), n_sweeps)
    g, loss, ph = contrastive(net, x, ph.free[-1], n_sweeps)
    assert np.all(tree_flat(g) == 0.0) and float(loss) == 0.0
    assert all(np.all(np.asarray(d) == 0.0) for d in ph.clamped)


@eqx.filter_jit
def _clamped_error(net, free, x, held, hidden):
    """The clamped phase's exact |KCL residual| per hidden node (amperes)."""
    problem = ClampedProblem.at_free_state(net, free, input_drive(net, x), held)
    return problem.error(hidden)


def test_clamped_status_and_residual(data):
    """One sweep of a deep network does not converge, and says so; many do. The reported
    residual bounds the clamped phase's exact KCL residual at its hidden nodes (the held
    outputs are not judged)."""
    x, y = data
    net = _deep()
    n_hidden = net.n_free - net.n_outputs
    for n_sweeps in (1, MANY):
        _, _, ph = coupled(net, x, y, jnp.asarray(0.5), n_sweeps)
        eq = ph.clamped_eq
        exact = np.asarray(_clamped_error(net, ph.free, x, ph.clamped[-1], ph.clamped[:-1]))
        assert exact.shape == (4, n_hidden)
        assert np.all(np.max(exact, axis=-1) <= np.asarray(eq.residual) * (1 + 1e-9) + 1e-14)
        if n_sweeps == 1:
            assert np.all(eq.status == kh.Status.MAX_STEPS)
        else:
            assert np.all(ph.converged())
            assert np.max(exact) < 1e-12


def test_float32_agrees_with_float64(data):
    """The clamped phase is solved for its deviation and the estimate formed in difference
    form, so at η = 1e-3 float32 is as good as its round-off allows."""
    x, y = data
    net = _deep()
    eta = jnp.asarray(1e-3)
    g64, loss64, _ = coupled(net, x, y, eta, MANY)
    g32, loss32, ph = coupled(
        net.astype(jnp.float32), x.astype(jnp.float32), y.astype(jnp.float32), eta, MANY
    )
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(g32))
    assert ph.clamped_eq.free.dtype == jnp.float32
    assert np.all(ph.converged())
    assert rel_error(g32, g64) < 1e-5  # 7.8e-8 measured
    assert float(loss32) == pytest.approx(float(loss64), rel=1e-5)


def test_noisy_reads_solve_the_clamped_phase_whole(data):
    """With read noise each phase reads its own conductances, and the clamped phase is solved
    whole: still converged, and close to the noiseless estimate at 1 % noise."""
    from kirchhoff._devices import PulsedDevice

    x, y = data
    noisy = kh.drn(
        jax.random.PRNGKey(0),
        (6, 8, 3),
        input_gain=3.0,
        device=PulsedDevice(1.0, read_noise=0.01),
    )
    eta = jnp.asarray(0.5)
    g, _, ph = coupled(noisy, x, y, eta, SHALLOW_SWEEPS, key=jax.random.PRNGKey(5))
    assert np.all(ph.converged()) and np.all(np.isfinite(tree_flat(g)))
    g_ideal, _, _ = coupled(_shallow(), x, y, eta, SHALLOW_SWEEPS)
    assert cosine(g, g_ideal) > 0.9


def test_bad_arguments(data):
    x, y = data
    net = _shallow()
    for eta in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(kh.InvalidInputError, match="eta"):
            layered_coupled_gradient(net, x, y, eta)
    with pytest.raises(kh.InvalidInputTypeError, match="eta"):
        layered_coupled_gradient(net, x, y, "0.1")
    with pytest.raises(kh.InvalidInputError, match="targets"):
        layered_contrastive_gradient(net, x, y[:, :2])
    with pytest.raises(kh.InvalidInputError, match="n_sweeps"):
        layered_contrastive_gradient(net, x, y, n_sweeps=0)
    with pytest.raises(kh.InvalidInputTypeError, match="LayeredNetwork"):
        layered_coupled_gradient(net.weights, x, y, 0.1)
    assert RULES == ("eqprop", "coupled", "contrastive")
    assert check_rule("coupled") == "coupled"
    with pytest.raises(kh.InvalidInputError, match="rule"):
        check_rule("hebbian")
