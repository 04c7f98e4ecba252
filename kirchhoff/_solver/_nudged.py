"""The nudged problem every general solver sees: the nudged energy F = E + β·C, its accurate
change and Hessian, and a nudged phase as its own circuit in the deviation from the free
state (``_Deviation``), with the ideal diodes' multipliers held."""

import jax
import jax.numpy as jnp

from .._circuit import AbstractCircuit
from .._cost import squared_error
from .._custom_types import Array, Float


def _nudged_energy(circuit: AbstractCircuit, free, inputs, target, beta):
    e = circuit.energy(free, inputs)
    return e + beta * squared_error(circuit.output_potentials(free, inputs), target)


def _nudged_energy_change(circuit: AbstractCircuit, free, step, inputs, target, beta, grad):
    """``F(z + step) − F(z)`` for the nudged energy F, ``grad`` = ∇F(z): the circuit's accurate
    energy increment plus the linear and (exact) quadratic parts, so that a line search can
    still tell downhill from uphill when the change is far below the energy's round-off."""
    out_change = jax.jvp(lambda z: circuit.output_potentials(z, inputs), (free,), (step,))[1]
    return (
        circuit.energy_increment(free, step, inputs)
        + 0.5 * beta * jnp.sum(out_change**2)
        + jnp.dot(grad, step)
    )


def _nudged_hessian(circuit: AbstractCircuit, free, inputs, target, beta):
    cost = lambda z: beta * squared_error(circuit.output_potentials(z, inputs), target)
    return circuit.energy_hessian(free, inputs) + jax.hessian(cost)(free)


class _Deviation(AbstractCircuit):
    """The nudged-phase problem in the deviation δ = v − v⁰ from a free state v⁰.

    Its energy is the circuit's energy increment ``E(v⁰+δ) − E(v⁰) − ∇E(v⁰)·δ`` plus
    ``λ·δ``, λ the part of ∇E(v⁰) held by active ideal-diode bounds (their currents). The rest
    of ∇E(v⁰), the free phase's own small residual, is dropped: v⁰ is then the exact
    equilibrium of the energy nudged, and δ responds to the nudge alone. Solved for δ, with
    every term accurate relative to δ itself, a nudged phase resolves nudges far below the
    round-off of the potentials (float32 included)."""

    base: AbstractCircuit
    free0: Float[Array, " free"]
    multiplier: Float[Array, " free"]

    @property
    def n_free(self):
        return self.base.n_free

    @property
    def n_inputs(self):
        return self.base.n_inputs

    @property
    def n_outputs(self):
        return self.base.n_outputs

    @property
    def dtype(self):
        return self.base.dtype

    @property
    def has_ideal_diodes(self):
        return self.base.has_ideal_diodes

    @property
    def is_quadratic(self):
        return self.base.is_quadratic

    @property
    def coupled_ideal_diodes(self):
        return getattr(self.base, "coupled_ideal_diodes", False)

    def cut_off(self):
        return self.base.cut_off()

    def infeasible(self, inputs):
        return self.base.infeasible(inputs)

    def energy(self, free, inputs):
        return self.base.energy_increment(self.free0, free, inputs) + jnp.dot(self.multiplier, free)

    def energy_hessian(self, free, inputs):
        return self.base.energy_hessian(self.free0 + free, inputs)

    def energy_increment(self, free, change, inputs):
        # the multiplier term is linear: only the base circuit's increment remains
        return self.base.energy_increment(self.free0 + free, change, inputs)

    def output_potentials(self, free, inputs):
        # output potentials are linear in the free ones: this is their exact change
        out = lambda z: self.base.output_potentials(z, inputs)
        return jax.jvp(out, (self.free0,), (free,))[1]

    def node_weight_free(self):
        return self.base.node_weight_free()

    def free_bounds(self, inputs):
        lo, hi = self.base.free_bounds(inputs)
        return lo - self.free0, hi - self.free0

    def current_scale(self, free, inputs, change=None):
        del change
        return (
            self.base.current_scale(self.free0, inputs, change=free)
            + jnp.abs(self.multiplier) / self.node_weight_free()
        )

    def potential_scale(self, free, inputs):
        del inputs
        return jnp.max(jnp.abs(free), initial=0.0)

    def trainable_filter(self):
        raise NotImplementedError("a nudged phase's deviation problem has no parameters")

    def validate(self, inputs):
        return self.base.validate(inputs)


def bound_multipliers(circuit: AbstractCircuit, free, inputs):
    """The part of ∇E at ``free`` that pushes nodes sitting on an ideal-diode bound outward
    (the diodes' currents, times the domain weight); 0 elsewhere."""
    g = jax.grad(circuit.energy)(free, inputs)
    lo, hi = circuit.free_bounds(inputs)
    held = ((free <= lo) & (g > 0)) | ((free >= hi) & (g < 0))
    return jnp.where(held, g, 0.0)
