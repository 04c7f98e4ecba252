"""Layered networks: exact block coordinate descent against the general solvers, and EqProp
on DRNs against implicit autodiff."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kirchhoff as kh
from kirchhoff import layered_backprop_gradient, layered_eqprop_gradient


def _leaves(tree):
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(tree)])


def _rel(a, b):
    a, b = _leaves(a), _leaves(b)
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _free_from_circuit(net, circ, eq_free, cx):
    """Potentials of the layered free nodes, read by name from the general circuit."""
    v = jax.vmap(circ.potentials)(eq_free, cx)
    names = [f"h{m}_{j}" for m in range(1, net.n_layers) for j in range(net.sizes[m])]
    names += [f"out{j}" for j in range(net.n_outputs)]
    return v[:, [circ.node_index(n) for n in names]]


@pytest.fixture(scope="module")
def data():
    x = jax.random.uniform(jax.random.PRNGKey(1), (3, 6))
    y = jax.nn.one_hot(jnp.arange(3) % 3, 3)
    return x, y


def _bcd_against_general_solver(net, x, solver):
    """Block coordinate descent on ``net`` and ``solver`` on its general circuit: both converge
    and agree within 1 nV. Returns the layered equilibrium."""
    eq = kh.BlockCoordinateDescent().solve(net, x)
    assert np.all(eq.status == kh.Status.SUCCESS)
    circ = net.to_circuit()
    cx = net.circuit_inputs(x)
    ref = solver.solve(circ, cx)
    assert np.all(ref.status == kh.Status.SUCCESS)
    assert np.max(np.abs(_free_from_circuit(net, circ, ref.free, cx) - eq.free)) < 1e-9
    return eq


def test_bcd_matches_box_qp_on_ideal_drn(data):
    x, _ = data
    net = kh.drn(jax.random.PRNGKey(0), (6, 5, 4, 3), input_gain=2.0)
    eq = _bcd_against_general_solver(net, x, kh.BoxQP())
    # the diode bounds hold and some of them are active (the test exercises clipping)
    h = np.asarray(net.split(eq.free)[0])
    assert np.all(h[:, 0::2] >= 0) and np.all(h[:, 1::2] <= 0)
    assert np.any(h == 0)


def test_bcd_matches_newton_on_shockley_seed_network(data):
    x, _ = data
    net = kh.seed_network(
        jax.random.PRNGKey(2),
        n_hidden=5,
        n_features=6,
        n_outputs=3,
        rail_volts=0.02,
        amp_gain=3.0,
        input_gain=6.0,
    )
    eq = kh.BlockCoordinateDescent().solve(net, x)
    assert np.all(eq.status == kh.Status.SUCCESS)
    assert np.max(eq.residual) < 1e-9
    circ = net.to_circuit()
    cx = net.circuit_inputs(x)
    ref = kh.DampedNewton().solve(circ, cx)
    dv = np.max(np.abs(_free_from_circuit(net, circ, ref.free, cx) - eq.free))
    assert dv < 1e-9
    # some diodes are forward biased past their rail: the hidden layer is nonlinear here
    h = np.asarray(net.split(eq.free)[0])
    assert np.any(np.abs(h) > 0.02 + 0.05)


def test_bcd_matches_newton_on_single_rail_shockley_drn(data):
    """A DRN with Shockley diodes has one diode per hidden node (to 0 V, either way round):
    a node pulled past its rail must end between its unclipped value and the rail."""
    x, _ = data
    net = kh.drn(jax.random.PRNGKey(4), (6, 5, 3), input_gain=3.0, diode="shockley")
    eq = _bcd_against_general_solver(net, x, kh.DampedNewton())
    # some diodes conduct: an excitatory node below 0 V or an inhibitory one above
    h = np.asarray(net.split(eq.free)[0])
    assert np.any(h[:, 0::2] < -0.05) or np.any(h[:, 1::2] > 0.05)


def test_fixed_sweeps_report_status_and_residual(data):
    x, _ = data
    net = kh.drn(jax.random.PRNGKey(0), (6, 5, 4, 3), input_gain=2.0)
    one = kh.BlockCoordinateDescent(n_sweeps=1).solve(net, x)
    many = kh.BlockCoordinateDescent(n_sweeps=400).solve(net, x)
    assert np.all(one.status == kh.Status.MAX_STEPS)
    assert np.all(many.residual < one.residual)
    assert np.all(many.status == kh.Status.SUCCESS)


@pytest.mark.offload  # slow and self-contained: the background process runs it
def test_eqprop_on_drn_matches_implicit_autodiff(data):
    x, y = data
    net = kh.drn(jax.random.PRNGKey(0), (6, 5, 4, 3), input_gain=2.0)
    net = eqx.tree_at(lambda n: n.biases, net, tuple(0.05 * jnp.ones_like(b) for b in net.biases))
    solver = kh.BlockCoordinateDescent()
    ref = kh.implicit_gradient(net, solver, x, y)
    est = kh.eqprop_gradient(net, solver, x, y, beta=1e-4).gradient
    assert _rel(est, ref) < 1e-4
    fused, loss, _ = layered_eqprop_gradient(net, x, y, 1e-4, n_sweeps=400)
    assert _rel(fused, ref) < 1e-4
    assert float(loss) == pytest.approx(float(kh.mean_loss(net, solver, x, y)), rel=1e-9)
    # and implicit autodiff agrees with finite differences on one weight matrix
    small = kh.drn(jax.random.PRNGKey(0), (2, 2, 2), input_gain=2.0)
    fd = kh.finite_difference_gradient(small, solver, x[:, :2], y[:, :2], step=1e-6)
    assert _rel(fd, kh.implicit_gradient(small, solver, x[:, :2], y[:, :2])) < 1e-5


@pytest.mark.parametrize("variant", ["positive", "negative", "centered"])
def test_fused_eqprop_equals_generic(data, variant):
    x, y = data
    net = kh.drn(jax.random.PRNGKey(3), (6, 4, 3), input_gain=3.0)
    g1, _, _ = layered_eqprop_gradient(net, x, y, 0.1, n_sweeps=300, variant=variant)
    g2 = kh.eqprop_gradient(net, kh.BlockCoordinateDescent(), x, y, 0.1, variant=variant).gradient
    assert _rel(g1, g2) < 1e-8


def test_backprop_through_sweeps_converges_to_implicit(data):
    x, y = data
    net = kh.drn(jax.random.PRNGKey(3), (6, 4, 3), input_gain=3.0)
    ref = kh.implicit_gradient(net, kh.BlockCoordinateDescent(), x, y)
    short, _, _ = layered_backprop_gradient(net, x, y, n_sweeps=2)
    long, _, _ = layered_backprop_gradient(net, x, y, n_sweeps=300)
    assert _rel(long, ref) < 1e-7
    assert _rel(short, ref) > _rel(long, ref)


def test_amplifier_energy_scaling_matches_general_circuit(data):
    x, _ = data
    net = kh.drn(jax.random.PRNGKey(4), (6, 4, 4, 3), input_gain=2.0, amp_gains=(2.0, 5.0))
    eq = kh.BlockCoordinateDescent().solve(net, x)
    circ = net.to_circuit()
    cx = net.circuit_inputs(x)
    ref = kh.BoxQP().solve(circ, cx)
    assert np.max(np.abs(_free_from_circuit(net, circ, ref.free, cx) - eq.free)) < 1e-9


def test_layered_bad_input():
    with pytest.raises(ValueError, match="unknown model"):
        kh.make_model("drn-huge", jax.random.PRNGKey(0))
    net = kh.drn(jax.random.PRNGKey(0), (6, 4, 3))
    with pytest.raises(ValueError, match="non-negative"):
        kh.LayeredNetwork([-jnp.abs(w) for w in net.weights], net.biases, net.lower, net.upper)
    with pytest.raises(ValueError, match="features per example"):
        kh.BlockCoordinateDescent().solve(net, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="LayeredNetwork"):
        kh.BlockCoordinateDescent().solve(net.to_circuit(), jnp.ones(12))
    assert kh.make_model("drn:6-3-3-2", jax.random.PRNGKey(0)).sizes == (6, 3, 3, 2)


# ---- the closed forms against the energy they come from --------------------------------
def _closed_form_cases():
    key = jax.random.PRNGKey(7)
    yield "ideal drn", kh.drn(key, (6, 5, 4, 3), input_gain=3.0, amp_gains=(1.0, 2.5))
    yield (
        "shockley seed",
        kh.seed_network(
            key, n_hidden=5, n_features=6, n_outputs=3, rail_volts=0.05, input_gain=0.2
        ),
    )


@pytest.mark.parametrize("case", ["ideal drn", "shockley seed"])
def test_closed_forms_are_the_energy_derivatives(data, case):
    """The sweeps' KCL (layer_residuals), the nudged phases' deviation KCL
    (DeviationProblem.error) and the training gradient (_pair_gradient) are hand-written closed
    forms for speed; each equals the autodiff derivative of the one energy,
    LayeredNetwork.energy / energy_increment, at arbitrary (non-equilibrium) potentials."""
    from kirchhoff._learning._layered import _pair_gradient
    from kirchhoff._solver._deviation import DeviationProblem
    from kirchhoff._solver._sweeps import input_drive, layer_residuals

    net = dict(_closed_form_cases())[case]
    x, y = data
    rng = np.random.default_rng(3)
    free = jnp.asarray(rng.uniform(-0.3, 0.3, (x.shape[0], net.n_free)))
    layers = [x, *net.split(free)]
    drive = input_drive(net, x)
    beta = 0.3
    w = jax.vmap(lambda v: 1.0 / net.node_weight_free())(free)  # energy weight per node

    # KCL residual of the nudged energy E + β·C, per node, in amperes (E carries 1/A² weights)
    def nudged_energy(v, xi, yi):
        return net.energy(v, xi) + beta * kh.squared_error(net.output_potentials(v, xi), yi)

    grad_e = jax.vmap(jax.grad(nudged_energy))(free, x, y) * w
    if net.diode == "ideal":  # unprojected: compare with the bounds removed
        net_free = eqx.tree_at(
            lambda n: (n.lower, n.upper),
            net,
            (tuple(-jnp.inf * jnp.ones_like(b) for b in net.lower),)
            + (tuple(jnp.inf * jnp.ones_like(b) for b in net.upper),),
        )
        closed = net.join(layer_residuals(net_free, layers, drive, y, beta))
    else:
        closed = net.join(layer_residuals(net, layers, drive, y, beta))
    np.testing.assert_allclose(closed, grad_e, rtol=1e-10, atol=1e-12)

    # the deviation problem: ∂/∂δ of the energy increment plus the nudge, at v⁰ + δ
    delta = jnp.asarray(rng.uniform(-0.05, 0.05, free.shape))
    problem = DeviationProblem.at_free_state(net, layers, drive, y, beta)

    def increment(d, v, xi, yi):
        out = net.output_potentials(v + d, xi)
        return net.energy_increment(v, d, xi) + beta * kh.squared_error(out, yi)

    if net.diode != "ideal":  # ideal diodes keep the free state's held currents (κ): not E's
        grad_d = jax.vmap(jax.grad(increment))(delta, free, x, y) * w
        np.testing.assert_allclose(
            problem.error(net.split(delta)), jnp.abs(grad_d), rtol=1e-9, atol=1e-12
        )

    # the training gradient: batch mean of ∂E/∂θ(v⁰ + δa) − ∂E/∂θ(v⁰ + δb)
    da = [0.5 * d for d in net.split(delta)]
    db = [-0.3 * d for d in net.split(delta)]
    gw, gb = _pair_gradient(net, x, layers, da, db)
    params, static = eqx.partition(net, net.trainable_filter())

    def energy_of(p, v, xi):
        return eqx.combine(p, static).energy(v, xi)

    dE = jax.vmap(jax.grad(energy_of), in_axes=(None, 0, 0))
    va = free + net.join(da)
    vb = free + net.join(db)
    ref = jax.tree_util.tree_map(
        lambda a, b: jnp.mean(a - b, axis=0), dE(params, va, x), dE(params, vb, x)
    )
    for got, want in zip((*gw, *gb), (*ref.weights, *ref.biases), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def _swept_cases():
    key = jax.random.PRNGKey(11)
    yield "ideal drn, amplifiers", kh.drn(key, (6, 5, 4, 3), input_gain=3.0, amp_gains=(1.0, 2.5))
    yield (
        "ideal drn, gains below and above 1",
        kh.drn(key, (6, 5, 4, 4, 3), input_gain=3.0, amp_gains=(0.5, 3.0, 1.5)),
    )
    yield (
        "shockley seed",
        kh.seed_network(
            key, n_hidden=5, n_features=6, n_outputs=3, rail_volts=0.05, input_gain=0.2
        ),
    )


@pytest.mark.parametrize(
    "case", ["ideal drn, amplifiers", "ideal drn, gains below and above 1", "shockley seed"]
)
@pytest.mark.parametrize("n_sweeps", [1, 3, 25])
@pytest.mark.parametrize("nudge", [0.5, 1.5])
def test_swept_status_bounds_the_residual(data, case, n_sweeps, nudge):
    """A training phase's status comes from its last sweep's corrections where they certify
    it, not from a residual pass: the residual it reports must bound the swept state's exact
    KCL residual, and a SUCCESS must hold by the exact residual too (free phase and both
    nudged phases; with amplifiers, whose gains weight the bound, and a negative nudge that
    halves the outputs' conductance, or turns it negative: a saddle the sweeps still solve)."""
    from kirchhoff._solver._deviation import DeviationProblem
    from kirchhoff._solver._sweeps import input_drive, layer_residuals, layer_sums

    net = dict(_swept_cases())[case]
    x, y = data
    w_out = net.layer_weight(net.n_layers)
    beta = nudge * float(jnp.min(jnp.sum(net.weights[-1], axis=0))) * w_out
    rtol = 1e-3
    ph = kh.layered_phases(net, x, y, beta, n_sweeps, rtol=rtol)
    drive, sums = input_drive(net, x), layer_sums(net)
    problem = DeviationProblem.at_free_state(net, ph.free, drive, y, beta, sums)
    s_out = sums[-1] + jnp.array([[1.0], [-1.0]]) * beta / w_out
    phases = [
        (
            ph.free_eq,
            net.join(layer_residuals(net, ph.free, drive, y, 0.0, sums)),
            sums[-1],
            ph.free[1:],
        ),
        (ph.positive_eq, problem.error(ph.positive), s_out[0], ph.positive),
        (ph.negative_eq, problem.with_beta(-beta).error(ph.negative), s_out[1], ph.negative),
    ]
    for eq, res, s_last, values in phases:
        r = np.abs(np.asarray(res))
        s = np.abs(np.asarray(net.join([*sums[:-1], s_last])))
        exact_correction = np.max(np.where(r == 0, 0.0, r / s), axis=-1)
        scale = np.max(np.abs(np.asarray(net.join(values))), axis=-1)
        assert np.all(np.max(r, axis=-1) <= np.asarray(eq.residual) * (1 + 1e-9) + 1e-14)
        ok = np.asarray(eq.status == kh.Status.SUCCESS)
        assert np.all(exact_correction[ok] <= rtol * scale[ok] * (1 + 1e-9))
    statuses = [e.status for e in ph.equilibria().values()]
    if n_sweeps == 25 and nudge < 1:  # and the phases converge (the negative one last)
        assert all(np.all(s == kh.Status.SUCCESS) for s in statuses)
