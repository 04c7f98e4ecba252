"""Physics: Kirchhoff's current law at equilibrium, KKT conditions with ideal diodes, and
closed-form circuits (dividers, series/parallel, a diode and a resistor, amplifiers)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    LBFGS,
    NEWTON,
    QP,
    diode_forward_currents,
    equilibrium_report,
    random_circuit,
    random_ideal_diode_circuit,
    random_inputs,
    scalar_root,
)

import kirchhoff as kh

KCL_AMPS = 1e-9


def _node_potentials(circuit, free, inputs):
    v = equilibrium_report(circuit, free, jnp.asarray(inputs))["potentials"]
    return {name: float(v[k]) for k, name in enumerate(circuit.node_names)}


# ---- KCL on random smooth circuits ---------------------------------------------------------
@pytest.mark.parametrize(
    "solver, topology, seed",
    [(NEWTON, 0, 0), (NEWTON, 0, 1), (NEWTON, 1, 2), (NEWTON, 1, 3), (LBFGS, 0, 0), (LBFGS, 0, 2)],
    ids=lambda p: type(p).__name__ if isinstance(p, kh.AbstractSolver) else str(p),
)
def test_kcl_holds_at_equilibrium(solver, topology, seed):
    circuit = random_circuit(seed, topology)
    x = random_inputs(seed)
    eq = solver.solve(circuit, x)
    assert bool(eq.status == kh.Status.SUCCESS)
    bumps = np.random.default_rng(seed).normal(0.0, 1e-3, (8, circuit.n_free))
    report = equilibrium_report(circuit, eq.free, x, jnp.asarray(bumps))
    kcl = np.asarray(report["kcl"])
    # independently: scatter the branch currents of every element onto its nodes
    net = np.asarray(report["net_free"])
    assert np.max(np.abs(kcl)) < KCL_AMPS
    assert np.max(np.abs(net)) < KCL_AMPS
    assert float(eq.residual) == pytest.approx(np.max(np.abs(kcl)), abs=1e-13)
    # the circuit is not trivial: currents of order 0.1–1 A flow through it
    assert float(report["max_branch_current"]) > 0.1
    # Millar's theorem: the equilibrium minimises the energy
    assert np.all(np.asarray(report["bumped_energies"]) > float(report["energy"]))


# ---- KKT conditions on random ideal-diode circuits ------------------------------------------
@pytest.mark.parametrize("topology, seed", [(0, 0), (0, 1), (1, 2)])
def test_ideal_diode_kkt(topology, seed):
    circuit = random_ideal_diode_circuit(seed, topology)
    x = jnp.asarray(random_inputs(seed))
    eq = QP.solve(circuit, x)
    assert bool(eq.status == kh.Status.SUCCESS)
    assert float(eq.residual) < KCL_AMPS
    lo, hi = circuit.free_bounds(x)
    assert np.all(np.asarray(eq.free) >= np.asarray(lo) - 1e-12)
    assert np.all(np.asarray(eq.free) <= np.asarray(hi) + 1e-12)
    current, bound, potential = diode_forward_currents(circuit, eq.free, x)
    assert np.all(current >= -KCL_AMPS)
    assert np.all(np.abs(current * (bound - potential)) < KCL_AMPS)
    # KCL holds exactly at the nodes without an ideal diode
    kcl = np.asarray(equilibrium_report(circuit, eq.free, x)["kcl"])
    unbounded = np.setdiff1d(np.arange(circuit.n_free), np.asarray(circuit.bound_node))
    assert np.max(np.abs(kcl[unbounded])) < KCL_AMPS
    # not vacuous: some diodes conduct, some block
    assert np.any(current > 1e-3)
    assert np.any(np.abs(bound - potential) > 1e-3)


# ---- closed forms ------------------------------------------------------------------------
# One circuit of independent textbook sub-circuits sharing ground (one compilation):
#   divider        in_div —g1— a —g2— gnd
#   series/par.    in_sp —g3— b;  b —g4— gnd,  b —g5— gnd,  b —g6— c —g7— gnd
#   rail, source   rail(1.2 V) —g8— d —g9— gnd,  0.35 A injected into d
#   diodes         in_dio —g— da —D→ gnd;   in_dio —g— db ←D— gnd   (Shockley)
#   amplifiers     in_amp{k} —g1— s{k} —g2— gnd;  d{k} = A_k·s{k};  d{k} —g3— gnd,
#                  d{k} —g4— out{k} —g5— gnd;   A = (3, −0.5)
G = dict(g1=1.3, g2=0.4, g3=2.0, g4=0.5, g5=0.25, g6=1.5, g7=0.75, g8=0.9, g9=1.7)
RAIL_VOLTS, SOURCE_AMPS = 1.2, 0.35
DIODE = dict(g=0.8, i_s=1e-9, n=1.5, v_t=0.025852)
AMP = dict(g1=1.0, g2=2.0, g3=0.5, g4=1.5, g5=0.7, gains=(3.0, -0.5))
INPUT_NAMES = ["in_div", "in_sp", "in_dio", "in_amp0", "in_amp1"]
INPUT_SETS = [  # the diode sub-circuit sees -2 … 2.5 V: reverse, off, knee, on
    [1.0, -2.0, -2.0, 2.0, -1.5],
    [2.5, 0.7, -0.3, -0.4, 0.8],
    [-1.1, 1.3, 0.2, 1.0, 1.0],
    [0.3, -0.2, 0.7, -2.0, 0.1],
    [2.0, 2.0, 2.5, 0.5, -3.0],
]


@functools.cache
def textbook():
    a = AMP
    anodes = ["in_div", "a", "in_sp", "b", "b", "b", "c", "rail", "d", "in_dio", "in_dio"]
    cathodes = ["a", "gnd", "b", "gnd", "gnd", "c", "gnd", "d", "gnd", "da", "db"]
    values = [*G.values(), DIODE["g"], DIODE["g"]]
    for k in range(2):
        anodes += [f"in_amp{k}", f"s{k}", f"d{k}", f"d{k}", f"out{k}"]
        cathodes += [f"s{k}", "gnd", "gnd", f"out{k}", "gnd"]
        values += [a["g1"], a["g2"], a["g3"], a["g4"], a["g5"]]
    circuit = kh.Circuit(
        [
            kh.Ground(),
            kh.Input(INPUT_NAMES),
            kh.VoltageSource("rail", RAIL_VOLTS),
            kh.Resistor(anodes, cathodes, values),
            kh.CurrentSource("d", SOURCE_AMPS),
            kh.ShockleyDiode(["da", "gnd"], ["gnd", "db"], DIODE["i_s"], DIODE["n"], DIODE["v_t"]),
            kh.Amplifier(["s0", "s1"], ["d0", "d1"], a["gains"]),
        ],
        outputs=["a", "out0"],
    )
    solutions = []
    for x in INPUT_SETS:
        eq = NEWTON.solve(circuit, jnp.asarray(x))
        assert bool(eq.status == kh.Status.SUCCESS)
        solutions.append((x, eq.free, _node_potentials(circuit, eq.free, x)))
    return circuit, solutions


def test_linear_networks_closed_form():
    g = G
    _, solutions = textbook()
    for x, _, v in solutions:
        assert v["a"] == pytest.approx(x[0] * g["g1"] / (g["g1"] + g["g2"]), abs=1e-13)
        g_b = g["g4"] + g["g5"] + g["g6"] * g["g7"] / (g["g6"] + g["g7"])
        v_b = x[1] * g["g3"] / (g["g3"] + g_b)
        assert v["b"] == pytest.approx(v_b, abs=1e-13)
        assert v["c"] == pytest.approx(v_b * g["g6"] / (g["g6"] + g["g7"]), abs=1e-13)
        v_d = (g["g8"] * RAIL_VOLTS + SOURCE_AMPS) / (g["g8"] + g["g9"])
        assert v["d"] == pytest.approx(v_d, abs=1e-13)
        assert v["in_div"] == x[0] and v["rail"] == RAIL_VOLTS and v["gnd"] == 0.0


def test_diode_and_resistor_against_scalar_root():
    """A resistor in series with a Shockley diode, forward and reversed, against an
    independent root-find of g·(V − v) = ±I_s·(exp(±v/nV_T) − 1)."""
    g, i_s, nvt = DIODE["g"], DIODE["i_s"], DIODE["n"] * DIODE["v_t"]
    _, solutions = textbook()
    for x, _, v in solutions:
        volts = x[2]
        lo, hi = min(0.0, volts), max(0.0, volts)
        # da: current da → gnd leaves da;  db: current gnd → db enters db
        ref_a = scalar_root(lambda u, V=volts: g * (V - u) - i_s * np.expm1(u / nvt), lo, hi)
        ref_b = scalar_root(lambda u, V=volts: g * (V - u) + i_s * np.expm1(-u / nvt), lo, hi)
        assert v["da"] == pytest.approx(ref_a, abs=1e-12)
        assert v["db"] == pytest.approx(ref_b, abs=1e-12)
    # at 2.5 V the forward diode conducts and clamps near its knee; the reversed one blocks
    x, _, v = solutions[-1]
    assert x[2] == 2.5 and 0.5 < v["da"] < 1.0
    assert v["db"] == pytest.approx(2.5, abs=1e-6)


def test_bidirectional_amplifier_against_hand_kcl():
    """The amplifier holds drive = A·source and draws i_drive/A from the source node, where
    i_drive is the current drawn from the drive node by its elements."""
    a = AMP
    circuit, solutions = textbook()
    free_names = [circuit.node_names[int(k)] for k in circuit.free_nodes]
    for x, free, v in solutions:
        report = equilibrium_report(circuit, free, jnp.asarray(x))
        kcl, net = np.asarray(report["kcl"]), np.asarray(report["net"])
        for k, gain in enumerate(a["gains"]):
            v_in, v_s, v_d, v_o = x[3 + k], v[f"s{k}"], v[f"d{k}"], v[f"out{k}"]
            assert v_d == pytest.approx(gain * v_s, abs=1e-14)
            # hand-derived KCL at the source node and at the output node
            i_drive = a["g3"] * v_d + a["g4"] * (v_d - v_o)
            kcl_s = a["g1"] * (v_s - v_in) + a["g2"] * v_s + i_drive / gain
            assert kcl_s == pytest.approx(0.0, abs=1e-12)
            assert a["g4"] * (v_o - v_d) + a["g5"] * v_o == pytest.approx(0.0, abs=1e-12)
            # closed form: the drive side loads s like a conductance G_d (the gains cancel)
            g_d = a["g3"] + a["g4"] * a["g5"] / (a["g4"] + a["g5"])
            assert v_s == pytest.approx(a["g1"] * v_in / (a["g1"] + a["g2"] + g_d), abs=1e-13)
            assert v_o == pytest.approx(v_d * a["g4"] / (a["g4"] + a["g5"]), abs=1e-13)
            # the circuit's KCL residual counts the amplifier's current at s; net_current
            # (element currents only) shows it: i_drive leaves d, i_drive/A is missing at s
            assert kcl[free_names.index(f"s{k}")] == pytest.approx(0.0, abs=1e-12)
            assert net[circuit.node_index(f"s{k}")] == pytest.approx(-i_drive / gain, abs=1e-12)
            assert net[circuit.node_index(f"d{k}")] == pytest.approx(i_drive, abs=1e-12)
            assert abs(i_drive) > 1e-2
    # downstream energy is rescaled by 1/A²: the last three resistors of each amplifier block
    weights = np.asarray(circuit.energy_weights[3])
    for k, gain in enumerate(a["gains"]):
        block = weights[11 + 5 * k : 16 + 5 * k]
        np.testing.assert_allclose(block, [1, 1, gain**-2, gain**-2, gain**-2], rtol=1e-15)


def test_ideal_diode_clamp_closed_form():
    """in —g1— a;  a —g2— gnd;  a —g3— b —g4— gnd;  ideal diode a → rail (5 V): a ≤ 5 V."""
    g1, g2, g3, g4, rail = 1.0, 0.5, 2.0, 0.8, 5.0
    circuit = kh.Circuit(
        [
            kh.Ground(),
            kh.Input("in"),
            kh.VoltageSource("rail", rail),
            kh.Resistor(["in", "a", "a", "b"], ["a", "gnd", "b", "gnd"], [g1, g2, g3, g4]),
            kh.IdealDiode("a", "rail"),
        ],
        outputs=["b"],
    )
    g_a = g2 + g3 * g4 / (g3 + g4)
    for volts in (-3.0, 1.0, 12.0, 20.0):
        x = jnp.asarray([volts])
        eq = QP.solve(circuit, x)
        v = _node_potentials(circuit, eq.free, [volts])
        v_a = min(g1 * volts / (g1 + g_a), rail)  # the diode clamps a at the rail
        assert v["a"] == pytest.approx(v_a, abs=1e-12)
        assert v["b"] == pytest.approx(v_a * g3 / (g3 + g4), abs=1e-12)
        # the diode carries what the input pushes beyond the clamp
        diode_amps = float(circuit.ideal_diode_currents(eq.free, x)[0])
        expected = g1 * (volts - v_a) - g_a * v_a
        assert diode_amps == pytest.approx(expected, abs=1e-11)
        assert (diode_amps > 0.1) == (volts >= 12.0)  # the clamp starts at ≈10.4 V


# ---- co-contents ---------------------------------------------------------------------------
def test_co_content_is_the_integral_of_the_current():
    from scipy.integrate import quad

    # binary fractions, so that the edge of the linear continuation is hit exactly
    n, v_t, x_max = 1.25, 0.03125, 30.0
    edge = x_max * n * v_t  # 1.171875 V: beyond it the exponential is continued linearly
    assert edge / (n * v_t) == x_max
    diode = kh.ShockleyDiode("a", "b", 1e-6, ideality=n, thermal_voltage=v_t, max_exponent=x_max)
    resistor = kh.Resistor("a", "b", 0.7)
    u = jnp.asarray([-1.0, -0.1, 0.0, 0.3, 0.9, edge, 1.2, 1.5, 3.0])

    def reference_current(s, e):  # the textbook formulas, in numpy: independent of kirchhoff
        if isinstance(e, kh.Resistor):
            return 0.7 * s
        x = s / (n * v_t)
        return 1e-6 * (np.exp(x) - 1 if x <= x_max else np.exp(x_max) * (1 + x - x_max) - 1)

    for element in (diode, resistor):
        current = lambda s, e=element: reference_current(s, e)
        grad = jax.vmap(jax.grad(lambda s, e=element: e.co_content(s[None])[0]))(u)
        np.testing.assert_allclose(grad, element.current(u), rtol=1e-12, atol=1e-18)
        for ui in np.asarray(u):
            pieces = [(0.0, ui)] if ui <= edge else [(0.0, edge), (edge, ui)]
            ref = sum(quad(current, p, q, epsabs=0.0, epsrel=1e-13)[0] for p, q in pieces)
            co = float(element.co_content(jnp.asarray([ui]))[0])
            assert co == pytest.approx(ref, rel=1e-10, abs=1e-18)
    # the continuation is C1 in the current: no jump at the edge
    below, above = diode.current(jnp.asarray([edge * (1 - 1e-12), edge * (1 + 1e-12)]))
    assert float(above) == pytest.approx(float(below), rel=1e-9)
    # and so is its derivative (the Hessian), also exactly at the edge
    slope = jax.vmap(jax.grad(lambda s: diode.current(s[None])[0]))
    np.testing.assert_allclose(
        slope(edge * (1 + jnp.asarray([-1e-9, 0.0, 1e-9]))),
        1e-6 / (n * v_t) * np.exp(x_max),
        rtol=1e-7,
    )
    assert np.isfinite(float(diode.co_content(jnp.asarray([100.0]))[0]))
