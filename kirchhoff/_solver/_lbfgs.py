"""L-BFGS (jaxopt) on the energy, for smooth circuits."""

import equinox as eqx
import jax
import jax.numpy as jnp

from ._base import AbstractSolver, _nudged_energy
from ._jaxopt import jaxopt

_MAX_ROUNDS = 8


class LBFGS(AbstractSolver):
    """jaxopt's L-BFGS minimising the energy; matrix-free, so it suits large smooth circuits
    where a dense Newton step is too costly. Converges more slowly than DampedNewton."""

    max_steps: int = eqx.field(static=True, default=5000)
    atol: float = eqx.field(static=True, default=1e-12)
    rtol: float = eqx.field(static=True, default=1e-10)
    throw: bool = eqx.field(static=True, default=False)
    history_size: int = eqx.field(static=True, default=20)

    def _check_circuit(self, circuit):
        if circuit.has_ideal_diodes:
            raise ValueError(
                "LBFGS: the circuit has ideal diodes, whose co-content is a constraint; use "
                "kirchhoff.BoxQP (or block coordinate descent for layered networks)."
            )

    def _run(self, circuit, init, inputs, target, beta):
        # scale the energy so its gradient is in units of the tolerance: jaxopt's stopping
        # test is on ‖∇f‖₂, ours on max |KCL residual|
        def fun(z, scale):
            return scale * _nudged_energy(circuit, z, inputs, target, beta)

        solver = jaxopt.LBFGS(
            fun=fun,
            maxiter=self.max_steps,
            tol=1.0,
            history_size=self.history_size,
            implicit_diff=False,
            linesearch="zoom",
            maxls=40,
        )

        # jaxopt's tolerance is fixed for a run, but ours depends on the point (a diode's
        # conductance on its bias; at the starting point it may be far too large): rerun from
        # where the last run stopped, with the tolerance taken there, until it holds there
        def cond(carry):
            rounds, steps, _, res, tol = carry
            more = (rounds < _MAX_ROUNDS) & (steps < self.max_steps)
            return more & (res > tol) & jnp.isfinite(res)

        def body(carry):
            rounds, steps, z, _, tol = carry
            z, state = solver.run(z, 2.0 / tol)
            res = self.residual(circuit, z, inputs, target, beta)
            return rounds + 1, steps + state.iter_num, z, res, self.tolerance(circuit, z, inputs)

        res0 = self.residual(circuit, init, inputs, target, beta)
        tol0 = self.tolerance(circuit, init, inputs)
        carry = (jnp.array(0), jnp.array(0), init, res0, tol0)
        _, n_steps, free, res, _ = jax.lax.while_loop(cond, body, carry)
        return free, (n_steps, res)
