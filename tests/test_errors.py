"""Bad input gets a clear error: at construction, at trace time, or at run time (inside jit)."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import NEWTON, QP, random_circuit

import kirchhoff as kh

# one small nonlinear circuit (in —R— a —diode— gnd): its solves compile in a moment
DIODE_CIRCUIT = kh.Circuit(
    [kh.Ground(), kh.Input("in"), kh.Resistor("in", "a", 1.0), kh.ShockleyDiode("a", "gnd", 1e-6)],
    outputs=["a"],
)


# ---- construction ----------------------------------------------------------------------
def test_negative_or_nonfinite_conductance():
    with pytest.raises(ValueError, match="non-negative"):
        kh.Resistor("a", "b", -0.5)
    with pytest.raises(ValueError, match="finite"):
        kh.Resistor(["a", "c"], ["b", "d"], [1.0, np.nan])


def test_bad_element_arguments():
    with pytest.raises(ValueError, match="shape"):
        kh.Resistor(["a", "b"], ["c", "d"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="anode"):
        kh.Resistor(["a", "b"], ["c"], 1.0)
    with pytest.raises(ValueError, match="both terminals"):
        kh.Resistor("a", "a", 1.0)
    with pytest.raises(ValueError, match="saturation_current"):
        kh.ShockleyDiode("a", "b", saturation_current=-1e-12)
    with pytest.raises(ValueError, match="finite"):
        kh.CurrentSource("a", np.inf)
    with pytest.raises(ValueError, match="non-zero"):
        kh.Amplifier("a", "b", 0.0)


def test_unknown_nodes():
    with pytest.raises(ValueError, match="unknown node 'b'"):
        kh.Circuit([kh.Ground(), kh.Resistor("a", "gnd", 1.0)], outputs=["b"])
    with pytest.raises(ValueError, match="unknown node 'x'"):
        kh.Circuit([kh.Ground(), kh.Resistor("x", "gnd", 1.0)], nodes=["gnd", "a"])
    with pytest.raises(ValueError, match="unknown node 'zz'"):
        DIODE_CIRCUIT.node_index("zz")


def test_floating_node():
    # b joins a only through a current source: nothing fixes its potential
    with pytest.raises(ValueError, match=r"\['b'\] float"):
        kh.Circuit([kh.Ground(), kh.Resistor("a", "gnd", 1.0), kh.CurrentSource("b", 1.0)])
    # an island of resistors is as bad as a lone node
    with pytest.raises(ValueError, match="float"):
        kh.Circuit([kh.Ground(), kh.Resistor(["a", "c"], ["gnd", "d"], 1.0)])


def test_circuit_without_reference():
    with pytest.raises(ValueError, match="no node is held"):
        kh.Circuit([kh.Resistor("a", "b", 1.0)])
    with pytest.raises(ValueError, match="held by two sources"):
        kh.Circuit([kh.Ground("a"), kh.VoltageSource("a", 1.0), kh.Resistor("a", "b", 1.0)])
    with pytest.raises(ValueError, match="output node 'in' is held"):
        kh.Circuit([kh.Ground(), kh.Input("in"), kh.Resistor("in", "gnd", 1.0)], outputs=["in"])


# ---- solvers refuse circuits they cannot solve -------------------------------------------
def test_solver_circuit_mismatch():
    ideal = kh.Circuit(
        [kh.Ground(), kh.Input("in"), kh.Resistor("in", "a", 1.0), kh.IdealDiode("a", "gnd")]
    )
    with pytest.raises(ValueError, match="DampedNewton: the circuit has ideal diodes"):
        NEWTON.solve(ideal, jnp.ones(1))
    with pytest.raises(ValueError, match="LBFGS: the circuit has ideal diodes"):
        kh.LBFGS().solve(ideal, jnp.ones(1))
    with pytest.raises(ValueError, match="BoxQP: the circuit has Shockley diodes"):
        QP.solve(DIODE_CIRCUIT, jnp.ones(1))
    coupled = kh.Circuit(
        [
            kh.Ground(),
            kh.Input("in"),
            kh.Resistor(["in", "b"], ["a", "gnd"], 1.0),
            kh.IdealDiode("a", "b"),
        ]
    )
    with pytest.raises(ValueError, match="joins two free nodes"):
        QP.solve(coupled, jnp.ones(1))


# ---- shapes (trace time) -----------------------------------------------------------------
def test_wrong_shapes():
    with pytest.raises(ValueError, match=r"inputs have shape \(2,\)"):
        NEWTON.solve(DIODE_CIRCUIT, jnp.ones(2))
    with pytest.raises(ValueError, match=r"inputs have shape \(2, 3, 1\)"):
        NEWTON.solve(DIODE_CIRCUIT, jnp.ones((2, 3, 1)))
    with pytest.raises(ValueError, match=r"target has shape \(3,\)"):
        NEWTON.solve(DIODE_CIRCUIT, jnp.ones(1), jnp.ones(3), 0.1)
    with pytest.raises(ValueError, match=r"target has shape \(1,\)"):
        NEWTON.solve(DIODE_CIRCUIT, jnp.ones((4, 1)), jnp.ones(1), 0.1)
    with pytest.raises(ValueError, match=r"init has shape \(5,\)"):
        NEWTON.solve(DIODE_CIRCUIT, jnp.ones(1), init=jnp.zeros(5))


def test_bad_eqprop_arguments():
    for beta in (0.0, -0.1, np.nan, np.inf, jnp.asarray(-1.0)):
        with pytest.raises(ValueError, match="beta must be finite and positive"):
            kh.eqprop_gradient(DIODE_CIRCUIT, NEWTON, jnp.ones(1), jnp.ones(1), beta)
    with pytest.raises(ValueError, match="unknown variant 'sideways'"):
        kh.eqprop_gradient(DIODE_CIRCUIT, NEWTON, jnp.ones(1), jnp.ones(1), 0.1, "sideways")


# ---- run time (inside jit) ----------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_inputs(bad):
    with pytest.raises(eqx.EquinoxRuntimeError, match="input potential is NaN or infinite"):
        NEWTON.solve(DIODE_CIRCUIT, jnp.asarray([bad]))


def test_negative_conductance_at_solve_time():
    """An update can drive a conductance negative after construction (e.g. an SGD step):
    the solve refuses it instead of returning a saddle point."""
    stepped = eqx.tree_at(lambda c: c.elements[2].conductance, DIODE_CIRCUIT, jnp.asarray([-0.1]))
    with pytest.raises(eqx.EquinoxRuntimeError, match="conductance is negative"):
        NEWTON.solve(stepped, jnp.ones(1))
    big = random_circuit(0, topology=0)
    g = big.elements[0].conductance
    stepped = eqx.tree_at(lambda c: c.elements[0].conductance, big, g.at[3].set(jnp.nan))
    with pytest.raises(eqx.EquinoxRuntimeError, match="not finite"):
        NEWTON.solve(stepped, jnp.ones(3))


def test_non_convergence_is_reported():
    one_step = kh.DampedNewton(max_steps=1)
    # example 0 starts at its equilibrium (all zero); example 1 needs several steps
    eq = one_step.solve(DIODE_CIRCUIT, jnp.asarray([[0.0], [3.0]]))
    np.testing.assert_array_equal(eq.status == kh.Status.SUCCESS, [True, False])
    np.testing.assert_array_equal(eq.status == kh.Status.MAX_STEPS, [False, True])
    np.testing.assert_array_equal(eq.converged, [True, False])
    np.testing.assert_array_equal(eq.n_steps, [0, 1])
    assert float(eq.residual[1]) > 1e-3
    assert "did not converge" in eq.messages()[1]
    strict = kh.DampedNewton(max_steps=1, throw=True)
    with pytest.raises(kh.NotConvergedError, match=r"example\(s\) \[0\] — example 0: did not"):
        strict.solve(DIODE_CIRCUIT, jnp.asarray([3.0]))
    # a batch names the examples that failed, and only those
    with pytest.raises(kh.NotConvergedError, match=r"for example\(s\) \[1\] — example 1"):
        strict.solve(DIODE_CIRCUIT, jnp.asarray([[0.0], [3.0]]))
    # under an outer jit the check runs inside the graph
    with pytest.raises(eqx.EquinoxRuntimeError, match="did not converge"):
        eqx.filter_jit(lambda x: strict.solve(DIODE_CIRCUIT, x).free)(jnp.asarray([3.0]))
    # with enough steps the same example converges (this solve is compiled above already)
    assert bool(NEWTON.solve(DIODE_CIRCUIT, jnp.asarray([3.0])).converged)
