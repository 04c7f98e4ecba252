"""L-BFGS (jaxopt) on the energy, for smooth circuits."""

import equinox as eqx
import jax.numpy as jnp

from ._base import AbstractSolver, _nudged_energy
from ._jaxopt import jaxopt


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
        tol = self.tolerance(circuit, init, inputs)
        w = circuit.node_weight_free()
        # scale the energy so its gradient is in units of the tolerance: jaxopt's stopping
        # test is on ‖∇f‖₂, ours on max |KCL residual|
        scale = 2.0 / tol

        def fun(z):
            return scale * _nudged_energy(circuit, z, inputs, target, beta)

        del w
        solver = jaxopt.LBFGS(
            fun=fun,
            maxiter=self.max_steps,
            tol=1.0,
            history_size=self.history_size,
            implicit_diff=False,
            linesearch="zoom",
            maxls=40,
        )
        free, state = solver.run(init)
        return free, (state.iter_num, state.error)
