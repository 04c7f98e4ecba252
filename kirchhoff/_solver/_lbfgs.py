"""L-BFGS (jaxopt) on the energy, for smooth circuits."""

import equinox as eqx
import jax
import jax.numpy as jnp

from ._base import AbstractSolver
from ._jaxopt import jaxopt
from ._nudged import _nudged_energy, _nudged_hessian

# L-BFGS steps per round: in float32 round-off can keep jaxopt's own test from ever
# holding where ours (checked between rounds) already does
_ROUND_STEPS = 100


class LBFGS(AbstractSolver):
    """jaxopt's L-BFGS minimising the energy, for smooth circuits (resistors, Shockley
    diodes); matrix-free, so it suits large smooth circuits where a dense Newton step is too
    costly. Converges more slowly than [`DampedNewton`][kirchhoff.DampedNewton].

    It runs in Jacobi-scaled coordinates (conductances spanning many decades look alike
    there), in rounds of up to 100 iterations, rescaled between rounds, until every node's
    KCL residual is within tolerance or the budget is spent. Implicit differentiation
    (through the solve) uses a dense LU of the Hessian, as for every solver: the
    matrix-free saving is the forward solve's.

    Construct it with the fields below as keyword arguments, each optional (e.g.
    ``LBFGS(history_size=10)``); they are static, so a new setting is a new compilation.

    Attributes:
        max_steps: The L-BFGS iteration budget per example (checked between rounds, so a
            run may exceed it by less than one round); past it the status is MAX_STEPS.
        atol: Absolute KCL tolerance per node, amperes.
        rtol: KCL tolerance relative to the currents that meet at each node (the nudge's
            included); raised to 4 machine epsilons of the dtype where it asks for less.
        throw: Raise [`NotConvergedError`][kirchhoff.NotConvergedError] from a solve where
            an example's status is not SUCCESS (default: report it in the status only).
        vtol: Potentials must be pinned within ``vtol``·(the largest |potential|) by a
            first-order error bound for SUCCESS (else ILL_CONDITIONED); at least 32 ulps of
            the dtype; None skips the check (and its dense n³ bound).
        history_size: How many recent (step, gradient change) pairs L-BFGS keeps for its
            curvature estimate.

    Raises:
        ValueError: A setting out of its range (here, at construction); from a solve, a
            circuit with ideal diodes (use [`BoxQP`][kirchhoff.BoxQP]).
    """

    max_steps: int = eqx.field(static=True, default=5000)
    atol: float = eqx.field(static=True, default=1e-12)
    rtol: float = eqx.field(static=True, default=1e-10)
    throw: bool = eqx.field(static=True, default=False)
    vtol: float | None = eqx.field(static=True, default=1e-6)
    history_size: int = eqx.field(static=True, default=20)

    def _check_circuit(self, circuit):
        if circuit.has_ideal_diodes:
            raise ValueError(
                "LBFGS: the circuit has ideal diodes, whose co-content is a constraint; use "
                "kirchhoff.BoxQP (or block coordinate descent for layered networks)."
            )

    def _run(self, circuit, init, inputs, target, beta):
        # L-BFGS runs in Jacobi-scaled coordinates y = √d·z (d the Hessian's diagonal at the
        # round's start), where conductances spanning many decades look alike; the energy is
        # scaled so that jaxopt's global test ‖∇‖₂ ≤ 1 implies ours, node by node
        def fun(y, args):
            root_d, scale = args
            return scale * _nudged_energy(circuit, y / root_d, inputs, target, beta)

        solver = jaxopt.LBFGS(
            fun=fun,
            maxiter=min(self.max_steps, _ROUND_STEPS),
            tol=1.0,
            history_size=self.history_size,
            implicit_diff=False,
            linesearch="zoom",
            maxls=40,
        )

        def scaling(z):
            d = jnp.abs(jnp.diag(_nudged_hessian(circuit, z, inputs, target, beta)))
            root_d = jnp.sqrt(jnp.where(d > 0, d, 1.0))
            # ∂(scale·f)/∂y_i = scale·g_i/√d_i ≤ 1 ⇒ |g_i|/w_i ≤ √d_i/(scale·w_i) ≤ tol_i/2
            tol = self.tolerance(circuit, z, inputs, target, beta) * circuit.node_weight_free()
            # a node no current reaches yet (atol = 0) sets no scale
            top = jnp.max(tol)
            tol = jnp.where(tol > 0, tol, jnp.where(top > 0, top, 1.0))
            return root_d, 2 * jnp.max(root_d / tol)

        # jaxopt's tolerance is fixed for a run, ours depends on the point (a diode's
        # conductance on its bias): rerun from where the last run stopped, rescaled there,
        # until ours holds or the step budget is spent
        def cond(carry):
            rounds, steps, _, ratio = carry
            del rounds
            return (steps < self.max_steps) & (ratio > 1) & ~jnp.isnan(ratio)

        def body(carry):
            rounds, steps, z, _ = carry
            root_d, scale = scaling(z)
            y, state = solver.run(z * root_d, (root_d, scale))
            z = y / root_d
            ratio = self.error_ratio(circuit, z, inputs, target, beta)
            return rounds + 1, steps + state.iter_num, z, ratio

        ratio0 = self.error_ratio(circuit, init, inputs, target, beta)
        _, n_steps, free, ratio = jax.lax.while_loop(
            cond, body, (jnp.array(0), jnp.array(0), init, ratio0)
        )
        return free, (n_steps, ratio)
