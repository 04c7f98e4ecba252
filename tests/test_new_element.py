"""A new element is one class: a cubic conductance defined here, outside the package, solves,
matches its closed form, and trains (EqProp against implicit autodiff)."""

from typing import ClassVar

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
