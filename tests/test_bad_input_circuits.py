"""Careless input to circuits, solvers and EqProp gets a clear error (or, inside jit, a
non-SUCCESS status) naming the problem and the node, element, setting or example at fault:
never a silent wrong number."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kirchhoff as kh

NEWTON = kh.DampedNewton()
QP = kh.BoxQP()

# in —1 S— a —1 S— gnd, and a —g— z —1 S— w: the resistor a–z is z and w's only link
LINKED = kh.Circuit(
    [kh.Ground(), kh.Input("in"), kh.Resistor(["in", "a", "a", "z"], ["a", "gnd", "z", "w"], 1.0)],
    outputs=["w"],
)
# in —1 S— a, with a bounded by ideal diodes to an input `lo` (a ≥ lo) and to ground (a ≤ 0)
CLAMPED = kh.Circuit(
    [
        kh.Ground(),
        kh.Input(["in", "lo"]),
        kh.Resistor("in", "a", 1.0),
        kh.IdealDiode("lo", "a"),
        kh.IdealDiode("a", "gnd"),
    ],
    outputs=["a"],
)


def _open_link(circuit=LINKED):
    """``circuit`` with its a–z conductance set to exactly 0 after construction (as training's
    projection may do), without passing the constructor's checks."""
    return eqx.tree_at(lambda c: c.elements[2].conductance, circuit, jnp.asarray([1, 1, 0, 1.0]))


# ---- zero conductances cut a sub-network off --------------------------------------------------
def test_zero_conductance_cut_off_at_construction():
    elements = [kh.Ground(), kh.Input("in"), kh.Resistor(["in", "a", "z"], ["a", "gnd", "w"], 1.0)]
    with pytest.raises(ValueError, match=r"\['z', 'w'\] are cut off.*Resistor 'a'–'z'"):
        kh.Circuit([*elements, kh.Resistor("a", "z", 0.0)], outputs=["w"])
    # a zero conductance in parallel with a conducting path is harmless
    kh.Circuit([*elements, kh.Resistor(["a", "a"], ["z", "z"], [0.0, 1.0])], outputs=["w"])


@pytest.mark.parametrize("solver", [NEWTON, QP], ids=type)  # (LBFGS shares _finish)
def test_zero_conductance_at_run_time_is_disconnected(solver):
    opened = _open_link()
    np.testing.assert_array_equal(opened.cut_off(), [False, True, True])  # free: a, z, w
    eq = solver.solve(opened, jnp.ones((2, 1)))
    assert np.all(eq.status == kh.Status.DISCONNECTED)
    assert "cut off" in eq.messages()[1] and "zero conductances" in eq.messages()[1]
    # the same circuit conducting: no false alarm
    assert np.all(solver.solve(LINKED, jnp.ones((2, 1))).converged)


def test_zero_conductance_traced_inside_jit():
    """The conductance reaches zero inside a jitted training step: the status says so."""

    @eqx.filter_jit
    def solve(g):
        c = eqx.tree_at(lambda c: c.elements[2].conductance, LINKED, g)
        return NEWTON.solve(c, jnp.ones(1)).status == kh.Status.DISCONNECTED

    assert bool(solve(jnp.asarray([1, 1, 0, 1.0])))
    assert not bool(solve(jnp.asarray([1, 1, 0.5, 1.0])))


def test_zero_conductance_flags_eqprop_phases():
    x, y = jnp.ones((2, 1)), jnp.ones((2, 1))  # the free phase compiled above already
    result = kh.eqprop_gradient(_open_link(), NEWTON, x, y, 0.1, "positive")
    for eq in (result.free, result.nudged_positive):
        assert np.all(eq.status == kh.Status.DISCONNECTED)


# ---- contradictory ideal diodes ---------------------------------------------------------------
def test_contradictory_diodes_at_construction():
    with pytest.raises(ValueError, match=r"node 'a' contradict.*≥ 1 V and at ≤ -1 V"):
        kh.Circuit(
            [
                kh.Ground(),
                kh.VoltageSource("p", 1.0),
                kh.VoltageSource("m", -1.0),
                kh.Input("in"),
                kh.Resistor("in", "a", 1.0),
                kh.IdealDiode("p", "a"),
                kh.IdealDiode("a", "m"),
            ],
            outputs=["a"],
        )


def test_contradictory_diodes_at_run_time_are_infeasible():
    # example 1 asks a ≥ 1 V and a ≤ 0 V
    eq = QP.solve(CLAMPED, jnp.asarray([[0.5, -1.0], [0.5, 1.0]]))
    np.testing.assert_array_equal(eq.status == kh.Status.INFEASIBLE, [False, True])
    assert bool(eq.converged[0]) and "ideal diodes contradict" in eq.messages()[1]
    strict = kh.BoxQP(throw=True)
    with pytest.raises(kh.NotConvergedError, match=r"example\(s\) \[1\].*diodes contradict"):
        strict.solve(CLAMPED, jnp.asarray([[0.5, -1.0], [0.5, 1.0]]))


def test_throw_inside_jit_names_the_example_and_status():
    strict = kh.BoxQP(throw=True)
    x = jnp.asarray([[0.5, -1.0], [0.5, -1.0], [0.5, 1.0]])
    with pytest.raises(eqx.EquinoxRuntimeError, match="for example 2 .*diodes contradict"):
        eqx.filter_jit(lambda x: strict.solve(CLAMPED, x).free)(x)


# ---- the autodiff references and EqProp share one argument check -------------------------------
def _references():
    one = jnp.ones((2, 1))
    return {
        "mean_loss": lambda x, y: kh.mean_loss(LINKED, NEWTON, x, y),
        "implicit_gradient": lambda x, y: kh.implicit_gradient(LINKED, NEWTON, x, y),
        "unrolled_gradient": lambda x, y: kh.unrolled_gradient(LINKED, x, y, 3),
        "finite_difference_gradient": lambda x, y: kh.finite_difference_gradient(
            LINKED, NEWTON, x, y
        ),
        "eqprop": lambda x, y: kh.eqprop_gradient(LINKED, NEWTON, x, y, 0.1),
    }, one


@pytest.mark.parametrize("who", list(_references()[0]))
def test_examples_are_checked_alike(who):
    f, x = _references()[0][who], _references()[1]
    with pytest.raises(ValueError, match=rf"{who}: targets have shape \(2,\).*\(2, 1\)"):
        f(x, jnp.ones(2))  # would broadcast into a different answer
    with pytest.raises(ValueError, match=rf"{who}: targets have shape \(1,\)"):
        f(x, jnp.ones(1))
    with pytest.raises(ValueError, match=rf"{who}: the targets of example\(s\) \[1\] are NaN"):
        f(x, jnp.asarray([[0.0], [np.nan]]))  # would drop example 1
    with pytest.raises(ValueError, match=r"inputs have shape \(2, 2\)"):
        f(jnp.ones((2, 2)), jnp.ones((2, 1)))
    with pytest.raises(TypeError, match=rf"{who}: targets has dtype complex"):
        f(x, jnp.ones((2, 1)) * (1 + 1j))
    with pytest.raises(ValueError, match=rf"{who}: the inputs of example\(s\) \[0\] are NaN"):
        f(jnp.asarray([[np.inf], [1.0]]), jnp.ones((2, 1)))


def test_nan_target_inside_jit():
    grad = eqx.filter_jit(lambda y: kh.implicit_gradient(LINKED, NEWTON, jnp.ones(1), y))
    with pytest.raises(eqx.EquinoxRuntimeError, match="implicit_gradient: a target is NaN"):
        grad(jnp.asarray([np.nan]))


def test_bad_beta_and_learning_settings():
    for beta in (np.inf, 0.0, -1.0):
        with pytest.raises(ValueError, match=r"eqprop: beta must be finite and positive"):
            kh.eqprop_gradient(LINKED, NEWTON, jnp.ones(1), jnp.ones(1), beta)
    with pytest.raises(ValueError, match=r"beta must be a scalar, got shape \(2,\)"):
        kh.eqprop_gradient(LINKED, NEWTON, jnp.ones(1), jnp.ones(1), jnp.asarray([0.1, 0.2]))
    with pytest.raises(TypeError, match="beta has dtype complex"):
        NEWTON.solve(LINKED, jnp.ones(1), jnp.ones(1), 0.1 + 0.1j)
    with pytest.raises(ValueError, match="local_conductance_gradient: beta must be finite"):
        kh.local_conductance_gradient(jnp.ones(2), jnp.ones(2), jnp.ones(2), beta=0.0)
    with pytest.raises(ValueError, match="centered rule needs `change_negative`"):
        kh.local_conductance_gradient(jnp.ones(2), jnp.ones(2), beta=0.1)
    with pytest.raises(ValueError, match="unrolled_gradient: `n_steps` = 0"):
        kh.unrolled_gradient(LINKED, jnp.ones(1), jnp.ones(1), n_steps=0)
    with pytest.raises(ValueError, match="finite_difference_gradient: `step` = nan"):
        kh.finite_difference_gradient(LINKED, NEWTON, jnp.ones(1), jnp.ones(1), step=np.nan)
    no_outputs = kh.Circuit(LINKED.elements)
    with pytest.raises(ValueError, match="eqprop: the circuit has no output nodes"):
        kh.eqprop_gradient(no_outputs, NEWTON, jnp.ones(1), jnp.ones(0), 0.1)


def test_local_rule_needs_the_phases_it_uses():
    result = kh.eqprop_gradient(LINKED, NEWTON, jnp.ones(1), jnp.ones(1), 0.1, "positive")
    with pytest.raises(ValueError, match="centered rule needs the negative nudged phase"):
        kh.local_conductance_gradients(LINKED, result, jnp.ones(1), 0.1, "centered")
    with pytest.raises(ValueError, match=r"inputs of shape \(3, 1\) are not those"):
        kh.local_conductance_gradients(LINKED, result, jnp.ones((3, 1)), 0.1, "positive")


# ---- solver settings ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, setting, value",
    [
        (kh.DampedNewton, "max_steps", 0),
        (kh.LBFGS, "max_steps", -3),
        (kh.BoxQP, "max_steps", 2.5),
        (kh.DampedNewton, "atol", np.nan),
        (kh.DampedNewton, "rtol", -1e-6),
        (kh.BoxQP, "rtol", np.inf),
        (kh.LBFGS, "vtol", -1.0),
        (kh.DampedNewton, "n_halvings", 0),
        (kh.LBFGS, "history_size", 0),
        (kh.BlockCoordinateDescent, "n_sweeps", 0),
        (kh.BoxQP, "throw", "yes"),
    ],
)
def test_solver_settings(make, setting, value):
    with pytest.raises(ValueError, match=rf"{make.__name__}: `{setting}` = {value!r}"):
        make(**{setting: value})


# ---- node names, outputs and dtypes --------------------------------------------------------
def test_outputs_string_is_one_node():
    elements = [kh.Ground(), kh.Input("in"), kh.Resistor(["in", "a", "b"], ["a", "b", "gnd"], 1.0)]
    assert kh.Circuit(elements, outputs="a").output_names == ("a",)
    with pytest.raises(ValueError, match="unknown node 'ab'"):
        kh.Circuit(elements, outputs="ab")
    with pytest.raises(ValueError, match="output node 'a' is listed twice"):
        kh.Circuit(elements, outputs=["a", "a"])


def test_node_names_that_would_collide():
    with pytest.raises(TypeError, match="node name True is a bool"):
        kh.Resistor(True, "gnd", 1.0)
    with pytest.raises(TypeError, match="node name 1.0 is a float"):
        kh.Resistor([1, 1.0], ["gnd", "gnd"], 1.0)
    with pytest.raises(TypeError, match=r"node name \('h', True\)"):
        kh.Resistor([("h", True)], ["gnd"], 1.0)
    with pytest.raises(TypeError, match="node name None"):
        kh.Circuit([kh.Ground(), kh.Resistor(1, "gnd", 1.0)], outputs=[None])
    # numpy integers are ints: the same node as the Python int
    c = kh.Circuit([kh.Ground(), kh.Resistor([np.int64(1), 1], ["gnd", "gnd"], 1.0)])
    assert c.node_names == ("gnd", 1) and type(c.node_names[1]) is int


def test_complex_and_string_values_are_refused():
    with pytest.raises(TypeError, match="Resistor: `conductance` has dtype complex128"):
        kh.Resistor("a", "b", 1 + 2j)
    with pytest.raises(TypeError, match="VoltageSource: `volts` has dtype <U3"):
        kh.VoltageSource("a", "1.0")
    with pytest.raises(TypeError, match="CurrentSource: `current` has dtype bool"):
        kh.CurrentSource("a", True)
    with pytest.raises(TypeError, match="Amplifier: `gain` has dtype complex"):
        kh.Amplifier("a", "b", 2j)
    with pytest.raises(TypeError, match="inputs has dtype complex64"):
        NEWTON.solve(LINKED, jnp.ones(1, jnp.complex64))
    with pytest.raises(TypeError, match="inputs has dtype <U1"):
        NEWTON.solve(LINKED, ["1"])
    with pytest.raises(TypeError, match="init has dtype complex"):
        NEWTON.solve(LINKED, jnp.ones(1), init=jnp.zeros(3, complex))
    with pytest.raises(TypeError, match="target has dtype complex"):
        NEWTON.solve(LINKED, jnp.ones(1), jnp.ones(1, complex), 0.1)


def test_traced_conductance_skips_construction_checks():
    """Built inside jit, a circuit cannot read its conductances: the solve's status does."""

    @jax.jit
    def status(g):
        c = kh.Circuit([kh.Ground(), kh.Input("in"), kh.Resistor(["in", "a"], ["a", "z"], g)])
        return QP.solve(c, jnp.ones(1)).status._value

    assert int(status(jnp.asarray([1.0, 0.0]))) == kh.Status.DISCONNECTED._value


# ---- found on the way ---------------------------------------------------------------------------
def test_forward_biased_diode_between_held_nodes():
    """An ideal diode between two sources bounds no free node, so it used to be ignored; biased
    forward it would carry an infinite current."""
    base = [kh.Ground(), kh.Input("in"), kh.Resistor(["in", "a"], ["a", "gnd"], 1.0)]
    with pytest.raises(ValueError, match=r"IdealDiode 'p'→'gnd' joins two held nodes"):
        kh.Circuit([*base, kh.VoltageSource("p", 1.0), kh.IdealDiode("p", "gnd")])
    # set by an input: INFEASIBLE where the input biases it forward
    c = kh.Circuit([*base, kh.IdealDiode("in", "gnd")], outputs=["a"])
    eq = QP.solve(c, jnp.asarray([[-1.0], [1.0]]))
    np.testing.assert_array_equal(eq.status == kh.Status.INFEASIBLE, [False, True])


def test_other_careless_calls():
    with pytest.raises(ValueError, match="beta = 0.5 nudges the outputs, but no target"):
        NEWTON.solve(LINKED, jnp.ones(1), beta=0.5)
    with pytest.raises(ValueError, match=r"solve_unrolled: one example, not inputs of shape"):
        NEWTON.solve_unrolled(LINKED, jnp.ones((2, 1)))  # used to broadcast silently
    with pytest.raises(TypeError, match="astype: a circuit computes in a floating dtype"):
        LINKED.astype(jnp.int32)
    with pytest.raises(ValueError, match=r"ShockleyDiode: `max_exponent` = nan"):
        kh.ShockleyDiode("a", "b", max_exponent=np.nan)
    with pytest.raises(TypeError, match="Circuit: give a list of elements, not Resistor"):
        kh.Circuit(kh.Resistor("a", "gnd", 1.0))
