"""A new element is one class: a cubic conductance (dissipative), a differential input (held)
and a clamp with a forward drop (bounded), each defined here, outside the package, solve, match
their closed forms, and differentiate."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kirchhoff as kh


class CubicConductance(kh.AbstractDissipative):
    """i = g·u + k·u³ (a monotone, smooth nonlinearity), both coefficients trainable."""

    conductance: jax.Array
    cubic: jax.Array
    trainable_fields: ClassVar[tuple[str, ...]] = ("conductance", "cubic")

    def __init__(self, anode, cathode, conductance, cubic):
        self.anode, self.cathode = (anode,), (cathode,)
        self.conductance = jnp.atleast_1d(jnp.asarray(conductance, float))
        self.cubic = jnp.atleast_1d(jnp.asarray(cubic, float))

    def current(self, voltage_drop):
        return self.conductance * voltage_drop + self.cubic * voltage_drop**3

    def co_content(self, voltage_drop):
        return 0.5 * self.conductance * voltage_drop**2 + 0.25 * self.cubic * voltage_drop**4


def _circuit(g=0.5, k=2.0):
    return kh.Circuit(
        [
            kh.Ground("gnd"),
            kh.Input("in"),
            CubicConductance("in", "a", g, k),
            kh.Resistor("a", "gnd", 1.5),
            kh.Resistor("a", "out", 0.7),
            kh.Resistor("out", "gnd", 0.9),
        ],
        outputs=["out"],
    )


@pytest.mark.offload  # slow and self-contained: the background process runs it
def test_a_cubic_conductance_defined_outside_the_package_solves_and_trains():
    circuit = _circuit()
    x = jnp.asarray([[0.3], [1.0], [-2.0]])
    eq = kh.DampedNewton().solve(circuit, x)
    assert np.all(np.asarray(eq.converged))
    # closed form: a and out satisfy KCL with the cubic's current, the divider's out = a·0.7/1.6
    pot = np.asarray(jax.vmap(circuit.potentials)(eq.free, x))
    idx = {n: circuit.node_index(n) for n in ("in", "a", "out")}
    a, out, vin = pot[:, idx["a"]], pot[:, idx["out"]], pot[:, idx["in"]]
    u = vin - a
    through_cubic = 0.5 * u + 2.0 * u**3
    to_ground = 1.5 * a + 0.7 * (a - out)
    # to the solver's tolerance: rtol 1e-10 of the currents meeting at the node (up to ~20 A)
    np.testing.assert_allclose(through_cubic, to_ground, rtol=0, atol=1e-8)
    np.testing.assert_allclose(out, a * 0.7 / 1.6, rtol=1e-10)
    assert np.all(np.abs(u) > 0.01)  # the cubic term matters at these drops
    # it trains: EqProp on its two coefficients agrees with implicit autodiff
    y = jnp.asarray([[0.05], [0.1], [-0.2]])
    g_ep = kh.eqprop_gradient(circuit, kh.DampedNewton(), x, y, beta=1e-4).gradient
    g_ad = kh.implicit_gradient(circuit, kh.DampedNewton(), x, y)
    cubic_ep, cubic_ad = g_ep.elements[2], g_ad.elements[2]
    for field in ("conductance", "cubic"):
        want = np.asarray(getattr(cubic_ad, field))
        assert np.all(want != 0)
        np.testing.assert_allclose(getattr(cubic_ep, field), want, rtol=1e-6)


def test_an_element_without_a_spice_card_is_refused_by_the_exporter():
    with pytest.raises(ValueError, match="no SPICE card for the element CubicConductance"):
        kh.to_netlist(_circuit())


class DifferentialInput(kh.AbstractHeld):
    """Holds ``pos`` at +s·x and ``neg`` at −s·x from one input x per pair; s trainable."""

    pos: tuple = eqx.field(static=True)
    neg: tuple = eqx.field(static=True)
    scale: jax.Array
    trainable_fields: ClassVar[tuple[str, ...]] = ("scale",)

    def __init__(self, pos, neg, scale):
        self.pos, self.neg = (pos,), (neg,)
        self.scale = jnp.atleast_1d(jnp.asarray(scale, float))

    @property
    def size(self):
        return 1

    def terminal_names(self):
        return (self.pos, self.neg)

    def input_names(self):
        return self.pos

    def held_potentials(self, inputs):
        return jnp.stack([self.scale * inputs, -self.scale * inputs])


def test_a_held_element_defined_outside_the_package_solves_and_trains():
    # p at +s·x, n at −s·x: a = s·x·(g1 − g2)/(g1 + g2 + g3)
    g1, g2, g3, s = 1.5, 0.5, 1.0, 0.8
    circuit = kh.Circuit(
        [
            kh.Ground("gnd"),
            DifferentialInput("p", "n", s),
            kh.Resistor(["p", "a", "a"], ["a", "n", "gnd"], [g1, g2, g3]),
        ],
        outputs=["a"],
    )
    assert circuit.input_names == ("p",) and circuit.n_free == 1
    x, y = jnp.asarray([[0.5], [-1.2]]), jnp.asarray([[0.3], [0.1]])
    eq = kh.DampedNewton().solve(circuit, x)
    pot = np.asarray(jax.vmap(circuit.potentials)(eq.free, x))
    out = s * x[:, 0] * (g1 - g2) / (g1 + g2 + g3)
    np.testing.assert_allclose(pot[:, circuit.node_index("n")], -s * x[:, 0], rtol=1e-15)
    np.testing.assert_allclose(pot[:, circuit.node_index("a")], out, rtol=1e-10)
    # d/ds of mean ½(a − y)²: the held potentials' parameter trains like any other
    want = np.mean((out - y[:, 0]) * x[:, 0] * (g1 - g2) / (g1 + g2 + g3))
    g_ad = kh.implicit_gradient(circuit, kh.DampedNewton(), x, y).elements[1].scale
    g_ep = kh.eqprop_gradient(circuit, kh.DampedNewton(), x, y, beta=1e-4).gradient
    np.testing.assert_allclose(g_ad, [want], rtol=1e-9)
    np.testing.assert_allclose(g_ep.elements[1].scale, [want], rtol=1e-6)


class ClampDiode(kh.AbstractBounded):
    """An ideal diode that conducts past a forward drop: u ≤ ``forward_voltage``."""

    forward_voltage: float = eqx.field(static=True)

    def __init__(self, anode, cathode, forward_voltage):
        self.anode, self.cathode = (anode,), (cathode,)
        self.forward_voltage = float(forward_voltage)

    def max_drop(self):
        return (self.forward_voltage,)


def test_a_bounded_element_defined_outside_the_package_clamps_and_differentiates():
    # a = x·g1/(g1 + g2) clamped to [−0.2, 0.1 + 0.2] by the two clamps
    g1, g2 = 1.0, 3.0
    circuit = kh.Circuit(
        [
            kh.Ground("gnd"),
            kh.VoltageSource("rail", 0.1),
            kh.Input("x"),
            kh.Resistor(["x", "a"], ["a", "gnd"], [g1, g2]),
            ClampDiode("a", "rail", 0.2),
            ClampDiode("gnd", "a", 0.2),
        ],
        outputs=["a"],
    )
    with pytest.raises(ValueError, match="co-content is a constraint"):  # smooth solvers refuse
        kh.DampedNewton().solve(circuit, jnp.zeros((1, 1)))
    x, y = jnp.asarray([[0.4], [2.0], [-2.0]]), jnp.asarray([[0.0], [0.0], [0.0]])
    eq = kh.BoxQP().solve(circuit, x)
    assert np.all(np.asarray(eq.converged))
    a = np.asarray(jax.vmap(circuit.output_potentials)(eq.free, x))[:, 0]
    np.testing.assert_allclose(a, [0.1, 0.3, -0.2], rtol=0, atol=1e-9)
    # only the unclamped example moves with the conductances: d a/d g1 = x·g2/(g1 + g2)²
    grad = kh.implicit_gradient(circuit, kh.BoxQP(), x, y).elements[3].conductance
    want = 0.1 * 0.4 * g2 / (g1 + g2) ** 2 / 3, -0.1 * 0.4 * g1 / (g1 + g2) ** 2 / 3
    np.testing.assert_allclose(grad, want, rtol=1e-6)
