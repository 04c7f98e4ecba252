"""Circuit realism: Shockley diodes behind a series resistance, a spread of saturation
currents across a layered network's diodes, and a crossbar layer's wire (IR-drop) resistance."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require_ngspice

import kirchhoff as kh
from kirchhoff._crossbar import crossbar_circuit, crossbar_column_currents, ideal_column_currents
from kirchhoff._shockley import (
    series_shockley_co_content,
    series_shockley_co_content_increment,
    series_shockley_current,
    shockley_co_content,
    shockley_current,
)

VT = 0.025852
# (I_s amperes, n, R_s ohms): a small-signal diode, a leaky one, one dominated by R_s
DIODES = [(1e-14, 1.0, 10.0), (1e-6, 1.3, 50.0), (1e-9, 2.0, 1e4)]


def _leaves(tree):
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(tree)])


def _rel(a, b):
    a, b = _leaves(a), _leaves(b)
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


# ---- the series-resistance diode ----------------------------------------------------------
@pytest.mark.parametrize("i_s, n, r_s", DIODES)
def test_series_current_solves_the_implicit_iv(i_s, n, r_s):
    u = np.concatenate([-np.logspace(1.5, -9, 200), [0.0], np.logspace(-9, 1.5, 200)])
    i = np.asarray(series_shockley_current(jnp.asarray(u), i_s, n, VT, r_s))
    # V − I·R_s − nV_T·ln(1 + I/I_s) = 0 to round-off of its terms (where the log is
    # well conditioned: deep reverse bias puts I/I_s at −1, whose log no float resolves)
    ok = i > -0.5 * i_s
    assert ok.sum() > 250
    u_ok, i_ok = u[ok], i[ok]
    log_term = n * VT * np.log1p(i_ok / i_s)
    residual = u_ok - i_ok * r_s - log_term
    scale = np.abs(u_ok) + np.abs(i_ok * r_s) + np.abs(log_term)
    assert np.all(np.abs(residual) <= 8 * np.finfo(float).eps * scale)
    # monotone, −I_s in deep reverse bias, ≈ u/R_s far forward
    assert np.all(np.diff(i) >= 0)
    assert i[0] == pytest.approx(-i_s, rel=1e-12)
    assert i[-1] == pytest.approx(u[-1] / r_s, rel=0.05)
    # float32 solves the same equation to its own round-off
    i32 = np.asarray(series_shockley_current(jnp.asarray(u, jnp.float32), i_s, n, VT, r_s))
    assert i32.dtype == np.float32
    np.testing.assert_allclose(i32[ok], i[ok], rtol=2e-6, atol=4e-7 * i_s)


@pytest.mark.parametrize("i_s, n, r_s", DIODES)
def test_series_co_content_derivatives_are_exact(i_s, n, r_s):
    u = jnp.asarray(np.linspace(-2.0, 3.0, 101))
    args = (i_s, n, VT, r_s)
    i = series_shockley_current(u, *args)
    # dF/dV = I (autodiff through the co-content's closed form)
    dF = jax.vmap(jax.grad(lambda u: series_shockley_co_content(u, *args)))(u)
    np.testing.assert_allclose(dF, i, rtol=1e-13, atol=1e-30)
    # dI/dV = 1/(R_s + nV_T/(I + I_s)), and the co-content's second derivative is the same
    dI = jax.vmap(jax.grad(lambda u: series_shockley_current(u, *args)))(u)
    ok = np.asarray(i > -0.5 * i_s)
    closed = 1.0 / (r_s + n * VT / (i + i_s))
    np.testing.assert_allclose(dI[ok], closed[ok], rtol=1e-12)
    d2F = jax.vmap(jax.grad(jax.grad(lambda u: series_shockley_co_content(u, *args))))(u)
    np.testing.assert_allclose(d2F, dI, rtol=1e-12, atol=1e-12 * float(jnp.max(dI)))
    # F is ∫₀ᵘ I: composite Gauss–Legendre of the current, and F(0) = 0
    nodes, weights = np.polynomial.legendre.leggauss(40)
    for end in (-2.0, 0.4, 3.0):
        t = np.linspace(0.0, end, 65)
        a, b = t[:-1, None], t[1:, None]
        pts = 0.5 * (b - a) * nodes + 0.5 * (a + b)
        integral = np.sum(0.5 * (b - a) * weights * series_shockley_current(pts, *args))
        assert float(series_shockley_co_content(end, *args)) == pytest.approx(
            float(integral), rel=1e-11
        )
    assert float(series_shockley_co_content(0.0, *args)) == 0.0
    # R_s → 0 is the plain diode (below its linear continuation)
    v = jnp.linspace(-0.5, 0.7, 25)
    tiny = 1e-24 / i_s  # ohms: a·x ≪ round-off
    np.testing.assert_allclose(
        series_shockley_current(v, i_s, n, VT, tiny),
        shockley_current(v, i_s, n, VT),
        rtol=1e-9,
        atol=1e-12 * i_s,
    )
    np.testing.assert_allclose(
        series_shockley_co_content(v, i_s, n, VT, tiny),
        shockley_co_content(v, i_s, n, VT),
        rtol=1e-9,
        atol=1e-12 * i_s * VT,
    )


def test_series_increment_is_accurate_for_tiny_steps_in_float32():
    i_s, n, r_s = 1e-6, 1.3, 50.0
    u = np.array([-0.5, 0.0, 0.3, 0.6, 2.0])[:, None]
    du = np.array([1e-7, -1e-6, 1e-5, -1e-3, 1e-1])[None, :]
    u, du = np.broadcast_arrays(u, du)
    ref = series_shockley_co_content_increment(jnp.asarray(u), jnp.asarray(du), i_s, n, VT, r_s)
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    got = series_shockley_co_content_increment(f32(u), f32(du), *map(f32, (i_s, n, VT, r_s)))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, ref, rtol=1e-5)  # observed ≤ 1.2e-6: a few float32 ulps
    # the float64 reference is the plain difference where that does not cancel
    args = (i_s, n, VT, r_s)
    big = np.abs(series_shockley_co_content(u, *args)) < 1e6 * np.abs(ref)
    assert big.sum() >= 5
    plain = (
        series_shockley_co_content(u + du, *args)
        - series_shockley_co_content(u, *args)
        - series_shockley_current(u, *args) * du
    )
    np.testing.assert_allclose(np.asarray(ref)[big], np.asarray(plain)[big], rtol=1e-8)
    # its derivative in Δu is the current change, accurate for a tiny Δu too
    change = jax.vmap(jax.grad(series_shockley_co_content_increment, argnums=1))(
        f32(u.ravel()), f32(du.ravel()), *(f32(np.full(u.size, x)) for x in args)
    )
    c = i_s * np.exp(np.log1p(np.asarray(series_shockley_current(u.ravel(), *args)) / i_s))
    dy_ref = np.asarray(series_shockley_current(du.ravel(), c, n, VT, r_s)) / c
    np.testing.assert_allclose(change, c * dy_ref, rtol=1e-5)


def test_shockley_diode_element_with_series_resistance():
    anodes, cathodes = ["a", "b", "c"], ["gnd"] * 3
    plain = kh.ShockleyDiode(anodes, cathodes, 1e-9, 1.5)
    assert plain.series_resistance is None
    # zero series resistance is no series resistance (the plain diode's own code path)
    assert kh.ShockleyDiode(anodes, cathodes, 1e-9, 1.5, series_resistance=0.0) == plain
    mixed = kh.ShockleyDiode(anodes, cathodes, 1e-9, 1.5, series_resistance=[0.0, 100.0, 1e3])
    u = jnp.array([0.9, 0.9, 0.9])
    want = [
        shockley_current(0.9, 1e-9, 1.5, VT),
        series_shockley_current(0.9, 1e-9, 1.5, VT, 100.0),
        series_shockley_current(0.9, 1e-9, 1.5, VT, 1e3),
    ]
    np.testing.assert_allclose(mixed.current(u), want, rtol=1e-14)
    np.testing.assert_allclose(
        mixed.differential_conductance(u)[1:],
        [1 / (r + 1.5 * VT / (i + 1e-9)) for r, i in zip((100.0, 1e3), want[1:], strict=True)],
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match="series_resistance"):
        kh.ShockleyDiode(anodes, cathodes, series_resistance=-1.0)


@pytest.mark.spice
def test_series_resistance_matches_ngspice_and_survives_the_netlist():
    require_ngspice()
    circuit = kh.Circuit(
        [
            kh.Ground("gnd"),
            kh.Input(["in"]),
            kh.Resistor(["in", "a", "a"], ["a", "b", "gnd"], [1e-3, 2e-3, 1e-4]),
            kh.ShockleyDiode(
                ["a", "b", "gnd"],
                ["gnd", "gnd", "b"],
                [1e-12, 1e-9, 1e-10],
                1.2,
                series_resistance=[50.0, 0.0, 200.0],
            ),
        ]
    )
    netlist = kh.to_netlist(circuit)
    assert "RS=50.0" in netlist and "RS=200.0" in netlist and netlist.count("RS=") == 2
    assert eqx.tree_equal(kh.from_netlist(netlist), circuit)
    x = np.array([[2.0], [-3.0], [0.4]])
    eq = kh.DampedNewton().solve(circuit, x)
    assert np.all(eq.converged)
    expected = np.asarray(jax.vmap(circuit.potentials)(eq.free, x))
    # the series resistances matter here: forward currents of milliamperes through them
    assert np.abs(expected[0, 2]) > 0.6
    np.testing.assert_allclose(kh.ngspice_potentials(circuit, x), expected, rtol=0, atol=1e-7)


# ---- a layered network's diodes with R_s and a spread of I_s ------------------------------
@pytest.fixture(scope="module")
def data():
    x = jax.random.uniform(jax.random.PRNGKey(1), (3, 6))
    y = jax.nn.one_hot(jnp.arange(3) % 3, 3)
    return x, y


def _seed(**kwargs):
    return kh.seed_network(
        jax.random.PRNGKey(2),
        n_hidden=5,
        n_features=6,
        n_outputs=3,
        rail_volts=0.02,
        amp_gain=3.0,
        input_gain=6.0,
        **kwargs,
    )


@pytest.mark.offload  # slow and self-contained: the background process runs it
def test_layered_series_resistance_equilibrium_and_eqprop(data):
    x, y = data
    net = _seed(series_resistance=2e3, saturation_spread=0.7)
    solver = kh.BlockCoordinateDescent()
    eq = solver.solve(net, x)
    assert np.all(eq.status == kh.Status.SUCCESS) and np.max(eq.residual) < 1e-10
    # the general circuit (R_s and every diode's own I_s exported) is at equilibrium there too
    circ = net.to_circuit()
    kcl = jax.jit(jax.vmap(circ.kcl_residual))(eq.free, net.circuit_inputs(x))  # eager: 7 s
    assert np.max(np.abs(kcl)) < 1e-10
    # R_s matters here: the diodes' currents drop over a tenth of a volt across it
    into, out = eqx.filter_jit(net.rail_diode_currents)(net.split(eq.free)[0], 1)
    assert np.max(np.abs(into) + np.abs(out)) * 2e3 > 0.1
    # power balances at equilibrium (Tellegen), with i·u the junction's and R_s's heat
    p = kh.phase_power(net, x, net.split(eq.free))
    assert np.all(np.abs(p.imbalance) <= 1e-9 * p.dissipated)
    # EqProp (nudged phases solved for their deviation, on the co-content increment) matches
    # implicit autodiff: β = 1e-4 leaves its O(β) bias
    grad = kh.implicit_gradient(net, solver, x, y)
    fused, _, _ = kh.layered_eqprop_gradient(net, x, y, 1e-3, n_sweeps=30)
    assert _rel(fused, grad) < 3e-4  # centered, O(β²): observed 1.0e-4
    # float32 gives the same estimate to its own round-off (observed 7e-8): the nudged
    # phases' deviations and diode current changes do not cancel
    net32 = eqx.tree_at(
        lambda n: (n.weights, n.biases, n.lower, n.upper, n.saturation_currents),
        net,
        replace_fn=lambda t: jax.tree.map(lambda a: a.astype(jnp.float32), t),
    )
    x32, y32 = x.astype(jnp.float32), y.astype(jnp.float32)
    g32, _, _ = kh.layered_eqprop_gradient(net32, x32, y32, 1e-3, n_sweeps=30)
    assert _leaves(g32).dtype == jnp.float32
    assert _rel(g32, fused) < 1e-5


def test_saturation_spread_reproduces_from_its_seed(data):
    x, _ = data
    a, b = _seed(saturation_spread=0.5), _seed(saturation_spread=0.5)
    assert np.array_equal(a.saturation_currents[0], b.saturation_currents[0])
    assert a.saturation_currents[0].shape == (2, 5)
    other = _seed(saturation_spread=0.5, saturation_key=jax.random.PRNGKey(9))
    assert not np.array_equal(a.saturation_currents[0], other.saturation_currents[0])
    # no spread: one number for all diodes, and the weights do not depend on the spread
    none = _seed()
    assert none.saturation_currents is None and none.saturation_current == 1e-6
    assert all(np.array_equal(u, w) for u, w in zip(none.weights, a.weights, strict=True))
    # log-normal about the nominal I_s
    many = kh.drn(jax.random.PRNGKey(0), (2, 4000, 1), diode="shockley", saturation_spread=0.5)
    logs = np.log(np.asarray(many.saturation_currents[0]) / 1e-6)
    assert abs(logs.mean()) < 0.03 and abs(logs.std() - 0.5) < 0.03
    # the arrays are leaves, not trainable: partitioning keeps them in the static part
    params, static = eqx.partition(a, a.trainable_filter())
    assert jax.tree_util.tree_leaves(params.saturation_currents) == []
    assert eqx.tree_equal(eqx.combine(params, static), a)
    # and they change the equilibrium
    solver = kh.BlockCoordinateDescent()
    assert np.max(np.abs(solver.solve(a, x).free - solver.solve(none, x).free)) > 1e-3
    with pytest.raises(kh.InvalidInputError, match="Shockley"):
        kh.drn(jax.random.PRNGKey(0), (2, 4, 1), saturation_spread=0.5)


# ---- a crossbar's wire resistance ---------------------------------------------------------
def test_crossbar_without_wire_resistance_is_ideal():
    rng = np.random.default_rng(0)
    g = rng.uniform(1e-5, 1e-4, (4, 3))
    x = rng.uniform(-1.0, 1.0, (2, 4))
    got = crossbar_column_currents(g, x, 0.0, column_potential=0.1).column_currents
    np.testing.assert_allclose(got, ideal_column_currents(g, x, 0.1), rtol=1e-14)


def test_crossbar_closed_forms():
    r = 20.0
    # 1×1: driver, a wire, the cross-point, a wire, the held column end
    g = 1e-3
    (got,) = crossbar_column_currents([[g]], [0.8], r).column_currents
    assert float(got) == pytest.approx(g * 0.8 / (1 + 2 * g * r), rel=1e-13)
    # 2×1: with G_i = g_i/(1 + g_i·r) each row's branch through its wire,
    # I = (G0·v0 + G1·v1·(1 + G0·r)) / (1 + r·(2·G0 + G1) + r²·G0·G1)
    g0, g1, v0, v1 = 1e-3, 2e-3, 0.7, -0.3
    G0, G1 = g0 / (1 + g0 * r), g1 / (1 + g1 * r)
    want = (G0 * v0 + G1 * v1 * (1 + G0 * r)) / (1 + r * (2 * G0 + G1) + r**2 * G0 * G1)
    (got,) = crossbar_column_currents([[g0], [g1]], [v0, v1], r).column_currents
    assert float(got) == pytest.approx(want, rel=1e-12)
    # a load resistance in series with an ideal single-row crossbar: g·v/(1 + g·R_load)
    (got,) = crossbar_column_currents([[g]], [0.8], 0.0, load_resistance=50.0).column_currents
    assert float(got) == pytest.approx(g * 0.8 / (1 + g * 50.0), rel=1e-13)


def test_crossbar_ir_drop_grows_with_size_and_wire_resistance():
    rng = np.random.default_rng(1)
    g0 = 1e-4

    def error(n, rg):
        g = g0 * rng.uniform(0.5, 1.5, (n, n))
        sol = crossbar_column_currents(g, np.ones(n), rg / g0)
        ideal = ideal_column_currents(g, np.ones(n))
        assert sol.residual < 1e-12 * float(jnp.max(ideal))
        return float(jnp.max(jnp.abs(sol.column_currents - ideal) / ideal))

    errors = {(n, rg): error(n, rg) for n in (2, 4, 8) for rg in (1e-3, 1e-2)}
    for rg in (1e-3, 1e-2):
        assert errors[(2, rg)] < errors[(4, rg)] < errors[(8, rg)]
    for n in (2, 4, 8):
        assert errors[(n, 1e-3)] < errors[(n, 1e-2)]
    # all rows at 1 V: every current shrinks (the drops only take voltage away)
    assert errors[(8, 1e-3)] > 0.02  # 8×8 at r·g = 1e-3 already loses ≈ 5 %


@pytest.mark.spice
def test_crossbar_matches_ngspice():
    require_ngspice()
    rng = np.random.default_rng(2)
    g = rng.uniform(1e-4, 1e-3, (3, 2))
    circuit = crossbar_circuit(g, 15.0, column_potential=0.05)
    x = rng.uniform(-1.0, 1.0, (2, 3))
    sol = crossbar_column_currents(g, x, 15.0, column_potential=0.05)
    expected = np.asarray(jax.vmap(circuit.potentials)(sol.free, x))
    np.testing.assert_allclose(kh.ngspice_potentials(circuit, x), expected, rtol=0, atol=1e-9)
