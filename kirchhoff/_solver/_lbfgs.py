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
    """jaxopt's L-BFGS minimising the energy; matrix-free, so it suits large smooth circuits
    where a dense Newton step is too costly. Converges more slowly than DampedNewton."""

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
