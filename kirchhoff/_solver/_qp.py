"""Ideal-diode circuits as box-constrained quadratic programs (jaxopt's BoxCDQP)."""

import equinox as eqx
import jax
import jax.numpy as jnp

from ._base import AbstractSolver
from ._jaxopt import jaxopt
from ._nudged import _nudged_energy


class BoxQP(AbstractSolver):
    """Coordinate-descent box QP (jaxopt's BoxCDQP) for circuits of resistors, ideal diodes
    and sources: the energy is quadratic and a diode to a held node bounds one free
    potential.

    The circuit's energy (nudge included) is formed once as a quadratic ½zᵀQz + cᵀz with
    bounds lo ≤ z ≤ hi from the diodes, and minimised by coordinate descent; the status
    judges the projected (KKT) residual node by node in amperes, like every solver's.

    Construct it with the fields below as keyword arguments, each optional (e.g.
    ``BoxQP(rtol=1e-8)``); they are static, so a new setting is a new compilation.

    Attributes:
        max_steps: The most coordinate-descent sweeps per example; past them the status is
            MAX_STEPS.
        atol: Absolute KCL tolerance per node, amperes.
        rtol: KCL tolerance relative to the currents that meet at each node (the nudge's
            included); raised to 4 machine epsilons of the dtype where it asks for less.
        throw: Raise [`NotConvergedError`][kirchhoff.NotConvergedError] from a solve where
            an example's status is not SUCCESS (default: report it in the status only).
        vtol: Potentials must be pinned within ``vtol``·(the largest |potential|) by a
            first-order error bound for SUCCESS (else ILL_CONDITIONED); at least 32 ulps of
            the dtype; None skips the check.

    Raises:
        ValueError: A setting out of its range (here, at construction); from a solve, a
            circuit that is not quadratic (Shockley diodes: use
            [`DampedNewton`][kirchhoff.DampedNewton]) or an ideal diode between two free
            nodes (a general linear constraint, not a bound).
    """

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
        """Scaled natural residual D·(z − clip(z − D⁻¹∇F, lo, hi)), D the diagonal of the
        nudged energy F's Hessian: zero exactly at the KKT point. One example, shape
        ``(n_free,)``, as for [`AbstractSolver.optimality`][kirchhoff.AbstractSolver.optimality]."""
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
