"""Ideal-diode circuits as box-constrained quadratic programs (jaxopt's BoxCDQP)."""

import equinox as eqx
import jax
import jax.numpy as jnp

from ._base import AbstractSolver
from ._jaxopt import jaxopt
from ._nudged import _nudged_energy


class BoxQP(AbstractSolver):
    """Coordinate-descent box QP for circuits of resistors, ideal diodes and sources: the energy
    is quadratic and a diode to a held node bounds one free potential."""

    max_steps: int = eqx.field(static=True, default=20000)
    atol: float = eqx.field(static=True, default=1e-12)
    rtol: float = eqx.field(static=True, default=1e-10)
    throw: bool = eqx.field(static=True, default=False)
    vtol: float | None = eqx.field(static=True, default=1e-6)

    def _check_circuit(self, circuit):
        if not circuit.is_quadratic:
            raise ValueError(
                "BoxQP: the circuit has Shockley diodes (or another nonlinear element), so its "
                "energy is not quadratic; use DampedNewton (or model the diodes as ideal)."
            )
        if getattr(circuit, "coupled_ideal_diodes", False):
            raise ValueError(
                "BoxQP: an ideal diode joins two free nodes, which is a general linear "
                "constraint, not a bound; only diodes to held (or amplifier-driven) nodes are "
                "supported."
            )

    def _quadratic(self, circuit, inputs, target, beta, n):
        f = lambda z: _nudged_energy(circuit, z, inputs, target, beta)
        zero = jnp.zeros(n, inputs.dtype)
        return jax.hessian(f)(zero), jax.grad(f)(zero)

    def optimality(self, circuit, free, inputs, target, beta):
        """Scaled natural residual D·(z − clip(z − D⁻¹∇F, lo, hi)): zero exactly at the KKT point."""
        q, c = self._quadratic(circuit, inputs, target, beta, free.shape[0])
        d = jnp.diag(q)
        lo, hi = circuit.free_bounds(inputs)
        g = q @ free + c
        return d * (free - jnp.clip(free - g / d, lo, hi))

    def _run(self, circuit, init, inputs, target, beta):
        q, c = self._quadratic(circuit, inputs, target, beta, init.shape[0])
        lo, hi = circuit.free_bounds(inputs)
        tol = self.tolerance(circuit, init, inputs, target, beta)
        # BoxCDQP stops on ‖x − T(x)‖ in volts; ask for a volt tolerance tighter than ours in
        # amps at every node (node i's residual is about diag(q)_i/w_i times its volt error)
        v_tol = jnp.min(tol / (jnp.diag(q) / circuit.node_weight_free())) * 1e-2
        solver = jaxopt.BoxCDQP(maxiter=self.max_steps, tol=v_tol, implicit_diff=False)
        free, state = solver.run(init, params_obj=(q, c), params_ineq=(lo, hi))
        return free, (state.iter_num, state.error)
