"""Damped Newton on the energy: Hessian = weighted graph Laplacian + diode terms."""

import equinox as eqx
import jax
import jax.numpy as jnp

from .._circuit import Circuit
from ._base import AbstractSolver, check_beta, iterate_until_converged
from ._nudged import _Deviation, _nudged_energy, _nudged_energy_change, _nudged_hessian
from ._sparse import SparseNewton, uses_linear_block


def _newton_step(circuit, free, inputs, target, beta, n_halvings, vectorised=True):
    """One damped Newton step with a backtracking (Armijo) line search: all halvings tried at
    once (``vectorised``, a fixed graph that reverse mode can unroll) or one at a time until
    one is accepted (cheaper: usually the full step is)."""
    g = jax.grad(_nudged_energy, argnums=1)(circuit, free, inputs, target, beta)
    h = _nudged_hessian(circuit, free, inputs, target, beta)
    newton = -jnp.linalg.solve(h, g)
    # a diode far in forward bias (a cold start against volt-sized inputs) can make the
    # Hessian numerically singular, above all in float32: then the Newton direction is
    # non-finite or uphill, and the Jacobi-scaled gradient is the safe way down
    diag = jnp.abs(jnp.diag(h))
    scaled_gradient = -g / jnp.where(diag > 0, diag, 1.0)
    use_newton = jnp.all(jnp.isfinite(newton)) & (jnp.dot(g, newton) < 0)
    direction = jnp.where(use_newton, newton, scaled_gradient)
    slope = jnp.dot(g, direction)

    # the energy's change along the step, computed as such (not as a difference of two
    # energies): near the minimum it stays far above round-off, in float32 too
    def f(a):
        return _nudged_energy_change(circuit, free, a * direction, inputs, target, beta, g)

    def accept(a, change):
        return jnp.isfinite(change) & (change <= 1e-4 * a * slope)

    if vectorised:
        alphas = 0.5 ** jnp.arange(n_halvings, dtype=free.dtype)
        trial = jax.vmap(f)(alphas)
        ok = accept(alphas, trial)
        first = jnp.argmax(ok)
        # no acceptable step: stay put (the status then reports non-convergence) rather than
        # step into a non-finite or higher-energy point
        alpha = jnp.where(jnp.any(ok), alphas[first], 0.0)
    else:
        one = jnp.ones((), free.dtype)

        def cond(carry):
            k, a, ok = carry
            return (~ok) & (k < n_halvings)

        def body(carry):
            k, a, _ = carry
            a = 0.5 * a
            return k + 1, a, accept(a, f(a))

        _, a, ok = jax.lax.while_loop(cond, body, (jnp.array(1), one, accept(one, f(one))))
        alpha = jnp.where(ok, a, 0.0)
    return free + alpha * direction, jnp.max(jnp.abs(g / circuit.node_weight_free()), initial=0.0)


class DampedNewton(AbstractSolver):
    """Damped Newton's method on the energy, for smooth circuits (resistors, Shockley diodes).

    Each step solves with the dense Hessian (the weighted graph Laplacian plus the diodes'
    terms) and backtracks along the Newton direction until the energy falls (Armijo); where
    the Hessian is numerically singular (a diode far in forward bias from a cold start) it
    steps along the Jacobi-scaled gradient instead. It converges quadratically near the
    solution, at the cost of a dense n³ solve per step ([`LBFGS`][kirchhoff.LBFGS] where
    that is too costly).
    [`solve_unrolled`][kirchhoff.DampedNewton.solve_unrolled] runs exactly ``max_steps``
    steps with ``lax.scan`` so that gradients can flow through the iterations (the
    unrolled-differentiation reference, [`unrolled_gradient`][kirchhoff.unrolled_gradient]).

    Construct it with the fields below as keyword arguments, each optional (e.g.
    ``DampedNewton(max_steps=100, throw=True)``); they are static, so a new setting is a new
    compilation.

    Attributes:
        max_steps: The most Newton steps per example; past them the status is MAX_STEPS.
        atol: Absolute KCL tolerance per node, amperes.
        rtol: KCL tolerance relative to the currents that meet at each node (the nudge's
            included); raised to 4 machine epsilons of the dtype where it asks for less.
        throw: Raise [`NotConvergedError`][kirchhoff.NotConvergedError] from a solve where
            an example's status is not SUCCESS (default: report it in the status only).
        vtol: Potentials must be pinned within ``vtol``·(the largest |potential|) by a
            first-order error bound for SUCCESS (else ILL_CONDITIONED); at least 32 ulps of
            the dtype; None skips the check.
        n_halvings: The most step lengths the line search tries (1, ½, ¼, …); where none
            lowers the energy, the iterate stays put.
        dense_limit: Above this many free nodes, a [`Circuit`][kirchhoff.Circuit] is solved
            as [`SparseNewton`][kirchhoff.SparseNewton] solves it (conjugate gradients,
            memory linear in the elements; the same settings), since the dense n×n Hessian
            would not fit: 2048 free nodes hold 32 MiB of it per example in float64.
        block_elements: A Circuit with at least this many resistors, few free nodes and
            most resistors reaching held nodes (a network's input layer: SparseNewton's
            dense linear block, where a step here would pass over every resistor twice) is
            solved as SparseNewton solves it too; None never hands it over.

    Raises:
        ValueError: A setting out of its range (here, at construction); from a solve, a
            circuit with ideal diodes (use [`BoxQP`][kirchhoff.BoxQP]).
    """

    max_steps: int = eqx.field(static=True, default=60)
    atol: float = eqx.field(static=True, default=1e-12)
    rtol: float = eqx.field(static=True, default=1e-10)
    throw: bool = eqx.field(static=True, default=False)
    vtol: float | None = eqx.field(static=True, default=1e-6)
    n_halvings: int = eqx.field(static=True, default=30)
    dense_limit: int = eqx.field(static=True, default=2048)
    block_elements: int | None = eqx.field(static=True, default=10_000)

    def _sparse(self, circuit):
        """The solver this one hands a large Circuit to (None: solve densely)."""
        base = circuit.base if isinstance(circuit, _Deviation) else circuit
        if not isinstance(base, Circuit):
            return None
        block = (
            self.block_elements is not None
            and base.n_linear_elements() >= self.block_elements
            and uses_linear_block(base)
        )
        if base.n_free > self.dense_limit or block:
            return SparseNewton(
                max_steps=self.max_steps,
                atol=self.atol,
                rtol=self.rtol,
                throw=self.throw,
                vtol=self.vtol,
                n_halvings=self.n_halvings,
            )
        return None

    def _error_and_scale(self, circuit, free, inputs, target, beta):
        sparse = self._sparse(circuit)
        solver = super() if sparse is None else sparse
        return solver._error_and_scale(circuit, free, inputs, target, beta)

    def potential_error_bound(self, circuit, free, inputs, target, beta, err, scale):
        """As the dense solvers' bound
        ([`AbstractSolver.potential_error_bound`][kirchhoff.AbstractSolver.potential_error_bound]);
        above ``dense_limit`` free nodes, [`SparseNewton`][kirchhoff.SparseNewton]'s."""
        sparse = self._sparse(circuit)
        solver = super() if sparse is None else sparse
        return solver.potential_error_bound(circuit, free, inputs, target, beta, err, scale)

    def linear_solve(self, circuit):
        """Dense LU for implicit differentiation; conjugate gradients above ``dense_limit``."""
        sparse = self._sparse(circuit)
        return super().linear_solve(circuit) if sparse is None else sparse.linear_solve(circuit)

    def _check_circuit(self, circuit):
        if circuit.has_ideal_diodes:
            raise ValueError(
                "DampedNewton: the circuit has ideal diodes, whose co-content is a constraint; "
                "use kirchhoff.BoxQP (or block coordinate descent for layered networks)."
            )

    def _run(self, circuit, init, inputs, target, beta):
        sparse = self._sparse(circuit)
        if sparse is not None:
            return sparse._run(circuit, init, inputs, target, beta)

        def step(free):
            new, _ = _newton_step(
                circuit, free, inputs, target, beta, self.n_halvings, vectorised=False
            )
            return new

        # the tolerance follows the iterate: its current scale depends on the diodes' bias
        ratio = lambda free: self.error_ratio(circuit, free, inputs, target, beta)
        n_steps, free, r = iterate_until_converged(step, ratio, init, self.max_steps)
        return free, (n_steps, r)

    def solve_unrolled(self, circuit, inputs, target=None, beta=0.0, init=None):
        """Potentials after exactly ``max_steps`` Newton steps, differentiable by unrolling
        (reverse mode through the iterations, no implicit function theorem). One example; no
        status, no tolerance check, not compiled here (wrap it in ``jit``).

        Args:
            circuit: The circuit (smooth: no ideal diodes).
            inputs: The input potentials of one example, volts, shape ``(n_inputs,)``.
            target: The output targets, volts, shape ``(n_outputs,)``; None: zeros.
            beta: The nudge strength β, siemens, a scalar (0: the free phase).
            init: The starting potentials, volts, ``(n_free,)``; None: zero.

        Returns:
            The free potentials after the steps, volts, shape ``(n_free,)``.

        Raises:
            ValueError: Batched inputs, a bad shape or β, or ideal diodes.
        """
        check_beta(beta)
        inputs, target = self._prepare(circuit, inputs, target)
        if inputs.ndim != 1:
            raise ValueError(f"solve_unrolled: one example, not inputs of shape {inputs.shape}.")
        if init is None:
            init = self.init_free(circuit, inputs)

        def body(free, _):
            new, _ = _newton_step(circuit, free, inputs, target, beta, self.n_halvings)
            return new, None

        free, _ = jax.lax.scan(body, init, None, length=self.max_steps)
        return free
