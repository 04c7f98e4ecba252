"""Newton with conjugate gradients for large circuits: the linear elements' Laplacian built
once per solve as COO entries, the nonlinear elements' terms matrix-free, memory linear in the
number of elements.

The energy splits as E(v) = ½·vᵀLv + g₀ᵀv + E_nl(v) + const: L, the Hessian of the linear
elements (resistors) and g₀, the gradient of their energy and the sources' at v = 0, do not
change from step to step, so a step costs one pass over the nonlinear elements (diodes) and
a few sparse products with L — not a pass over every resistor. Each Newton direction solves
H·d = −g by conjugate gradients preconditioned by H's diagonal (H = L + the diodes' terms +
the nudge's, symmetric positive definite), and a backtracking line search on the energy's
accurate change (linear part exact, diodes by their increments) accepts the step.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.sparse.linalg import cg

from .._circuit import Circuit
from .._cost import squared_error
from ._base import AbstractSolver, _max_ratio
from ._jaxopt import linear_solve
from ._nudged import _Deviation

_DENSE_BOUND_LIMIT = 2048  # free nodes up to which the dense |H⁻¹| bound is affordable


class _Split(NamedTuple):
    """One example's problem in the split form (see the module docstring)."""

    rows: jax.Array
    cols: jax.Array
    vals: jax.Array
    diag_lin: jax.Array
    g0: jax.Array
    n: int
    dense: jax.Array | None  # L as an n×n array, for few free nodes

    def lmatvec(self, p):
        if self.dense is not None:
            return self.dense @ p
        padded = jnp.concatenate([p, jnp.zeros(1, p.dtype)])
        out = jax.ops.segment_sum(self.vals * padded[self.cols], self.rows, self.n + 1)
        return out[: self.n]


def _base_of(problem):
    return problem.base if isinstance(problem, _Deviation) else problem


def _split(problem, inputs) -> _Split:
    """L (COO), its diagonal and g₀ for a Circuit or the deviation problem of one."""
    base = _base_of(problem)
    rows, cols, vals = base.linear_laplacian()
    n = base.n_free
    diag = jax.ops.segment_sum(jnp.where(rows == cols, vals, 0.0), rows, n + 1)[:n]
    zero = jnp.zeros(n, base.dtype)
    if isinstance(problem, _Deviation):
        # the deviation's linear part is ½·δᵀLδ exactly (resistors' increments), plus λ·δ
        g0 = problem.multiplier
    else:
        g0 = jax.grad(lambda z: base.energy_of_potentials(base.potentials(z, inputs), linear=True))(
            zero
        )
    dense = None
    if n * n <= vals.shape[0]:
        # fewer n² than COO entries (few free nodes, many resistors to held nodes, whose
        # entries carry index n and drop out): one scatter per batch, and each product is n²
        # instead of a pass over every entry
        dense = jnp.zeros((n + 1, n + 1), vals.dtype).at[rows, cols].add(vals)[:n, :n]
    return _Split(rows, cols, vals, diag, g0, n, dense)


def _nonlinear_energy(problem, free, inputs):
    if isinstance(problem, _Deviation):
        return problem.base.energy_increment_of(problem.free0, free, inputs, linear=False)
    return problem.energy_of_potentials(problem.potentials(free, inputs), linear=False)


def _nonlinear_increment(problem, free, step, inputs):
    """E_nl(free + step) − E_nl(free) − ∇E_nl(free)·step, from the diodes' accurate
    increments (for the deviation problem: the base's, from free0 + free)."""
    if isinstance(problem, _Deviation):
        return problem.base.energy_increment_of(problem.free0 + free, step, inputs, linear=False)
    return problem.energy_increment_of(free, step, inputs, linear=False)


def _nonlinear_diagonal(problem, free, inputs):
    if isinstance(problem, _Deviation):
        return problem.base.hessian_diagonal(problem.free0 + free, inputs, linear=False)
    return problem.hessian_diagonal(free, inputs, linear=False)


def _cost(problem, free, inputs, target):
    return squared_error(problem.output_potentials(free, inputs), target)


def _split_gradient(problem, split, free, inputs, target, beta):
    """∂(E + β·C)/∂v at ``free`` from the split: L·v + g₀ plus the diodes' and the nudge's
    gradients (no pass over the resistors)."""
    g_nl = jax.grad(_nonlinear_energy, argnums=1)(problem, free, inputs)
    g_cost = jax.grad(_cost, argnums=1)(problem, free, inputs, target)
    return split.lmatvec(free) + split.g0 + g_nl + beta * g_cost


def _output_diagonal(problem):
    """diag(Pᵀ_out P_out): each output's gain² at its free node (held outputs: none)."""
    base = _base_of(problem)
    n = base.n_free
    nodes = base.output_nodes
    root = jnp.where(base.node_root[nodes] < n, base.node_root[nodes], n)
    gain = base.node_gain[nodes]
    return jnp.zeros(n + 1, base.dtype).at[root].add(gain * gain)[:n]


class SparseNewton(AbstractSolver):
    """Damped Newton with preconditioned conjugate gradients, for large circuits.

    The resistors' Laplacian is assembled once per solve as sparse (COO) entries and never
    as a dense matrix; the diodes' terms are applied matrix-free; every Newton direction is a
    conjugate-gradient solve preconditioned by the Hessian's diagonal, and implicit
    differentiation solves with conjugate gradients too. Memory grows linearly with the
    number of elements, so circuits of 10⁵ free nodes solve where the dense n² Hessian of
    [`DampedNewton`][kirchhoff.DampedNewton] cannot be stored (it hands circuits above its
    ``dense_limit`` to this solver). On small circuits the dense solver is faster: the
    status checks still pass over every element once per step. Statuses are judged as by
    the other solvers; the bound on the potentials' error (``vtol``) comes from one more
    conjugate-gradient solve, H·b = t with t ≥ 0, which is |H⁻¹|·t exactly when H is an
    M-matrix (positive conductances and amplifier gains), and no bound at all (so no
    SUCCESS) when that solve does not reach its tolerance.

    Smooth circuits only (resistors, Shockley diodes, sources, amplifiers; a
    [`Circuit`][kirchhoff.Circuit]); ideal diodes need [`BoxQP`][kirchhoff.BoxQP].

    Attributes:
        max_steps: The most Newton steps per example; past them the status is MAX_STEPS.
        atol: Absolute KCL tolerance per node, amperes.
        rtol: KCL tolerance relative to the currents that meet at each node; raised to 4
            machine epsilons of the dtype where it asks for less.
        throw: Raise [`NotConvergedError`][kirchhoff.NotConvergedError] where an example's
            status is not SUCCESS.
        vtol: Potentials must be pinned within ``vtol``·(the largest |potential|) for
            SUCCESS (else ILL_CONDITIONED); None skips the check.
        n_halvings: The most step lengths the line search tries (1, ½, ¼, …).
        cg_rtol: Each Newton direction's conjugate-gradient tolerance, relative to the
            gradient's norm (an inexact Newton step; the KCL check decides convergence).
        cg_max_steps: The most conjugate-gradient iterations per direction (None: the
            number of free nodes).

    Raises:
        ValueError: A setting out of its range; from a solve, a circuit that is not a
            [`Circuit`][kirchhoff.Circuit] or has ideal diodes.
    """

    max_steps: int = eqx.field(static=True, default=60)
    atol: float = eqx.field(static=True, default=1e-12)
    rtol: float = eqx.field(static=True, default=1e-10)
    throw: bool = eqx.field(static=True, default=False)
    vtol: float | None = eqx.field(static=True, default=1e-6)
    n_halvings: int = eqx.field(static=True, default=30)
    cg_rtol: float = eqx.field(static=True, default=1e-4)
    cg_max_steps: int | None = eqx.field(static=True, default=None)

    def _check_circuit(self, circuit):
        base = _base_of(circuit)
        if not isinstance(base, Circuit):
            raise ValueError(
                f"SparseNewton solves a kirchhoff.Circuit; got {type(base).__name__} (a "
                "LayeredNetwork: BlockCoordinateDescent, or its to_circuit())."
            )
        if base.has_ideal_diodes:
            raise ValueError(
                "SparseNewton: the circuit has ideal diodes, whose co-content is a "
                "constraint; use kirchhoff.BoxQP."
            )

    def _cg_steps(self, n):
        return n if self.cg_max_steps is None else self.cg_max_steps

    def _operators(self, problem, split, free, inputs, target, beta):
        """The gradient at ``free``, and the Hessian's product and diagonal there."""
        g = _split_gradient(problem, split, free, inputs, target, beta)

        def hvp(p):
            nl = jax.jvp(
                lambda z: jax.grad(_nonlinear_energy, argnums=1)(problem, z, inputs), (free,), (p,)
            )[1]
            out = jax.jvp(lambda z: problem.output_potentials(z, inputs), (free,), (p,))[1]
            cost = jax.vjp(lambda z: problem.output_potentials(z, inputs), free)[1](out)[0]
            return split.lmatvec(p) + nl + beta * cost

        diag = (
            split.diag_lin
            + _nonlinear_diagonal(problem, free, inputs)
            + beta * _output_diagonal(problem)
        )
        return g, hvp, diag

    def _step(self, problem, split, free, inputs, target, beta):
        g, hvp, diag = self._operators(problem, split, free, inputs, target, beta)
        safe = jnp.where(diag > 0, diag, 1.0)
        newton, _ = cg(
            hvp,
            -g,
            tol=self.cg_rtol,
            maxiter=self._cg_steps(free.shape[0]),
            M=lambda r: r / safe,
        )
        scaled_gradient = -g / safe
        use_newton = jnp.all(jnp.isfinite(newton)) & (jnp.dot(g, newton) < 0)
        direction = jnp.where(use_newton, newton, scaled_gradient)
        slope = jnp.dot(g, direction)
        ld = split.lmatvec(direction)
        out_dir = jax.jvp(lambda z: problem.output_potentials(z, inputs), (free,), (direction,))[1]

        def change(a):
            # F(free + a·d) − F(free): the linear part and the nudge exactly, the diodes by
            # their accurate increments (far above round-off near the minimum)
            quadratic = 0.5 * a * a * (jnp.dot(direction, ld) + beta * jnp.sum(out_dir**2))
            return (
                a * slope + quadratic + _nonlinear_increment(problem, free, a * direction, inputs)
            )

        def accept(a, c):
            return jnp.isfinite(c) & (c <= 1e-4 * a * slope)

        one = jnp.ones((), free.dtype)

        def cond(carry):
            k, a, ok = carry
            return (~ok) & (k < self.n_halvings)

        def body(carry):
            k, a, _ = carry
            a = 0.5 * a
            return k + 1, a, accept(a, change(a))

        _, a, ok = jax.lax.while_loop(cond, body, (jnp.array(1), one, accept(one, change(one))))
        return free + jnp.where(ok, a, 0.0) * direction

    def _run(self, circuit, init, inputs, target, beta):
        split = _split(circuit, inputs)
        weight = circuit.node_weight_free()

        def step(free):
            return self._step(circuit, split, free, inputs, target, beta)

        def split_error(free):
            """|KCL error| per node from the split gradient: no pass over the resistors."""
            g = _split_gradient(circuit, split, free, inputs, target, beta)
            return jnp.abs(g) / weight

        def check(free, tol):
            """(tolerance, ratio): the exact test (a pass over every element for the current
            scales, another for the KCL error) only once the split error is within 10× the
            last tolerance; the loop stops on the exact ratio alone."""
            err = split_error(free)

            def exact(_):
                t = self.tolerance(circuit, free, inputs, target, beta)
                e = self.kcl_error(circuit, free, inputs, target, beta)
                return t, _max_ratio(e, t)

            def estimate(_):
                return tol, _max_ratio(err, tol)

            near = jnp.all(err <= 10 * tol)  # False for a NaN: its estimate says NaN
            return jax.lax.cond(near, exact, estimate, None)

        def cond(carry):
            n, _, _, r = carry
            return (n < self.max_steps) & (r > 1) & ~jnp.isnan(r)

        def body(carry):
            n, free, tol, _ = carry
            free = step(free)
            tol, r = check(free, tol)
            return n + 1, free, tol, r

        tol0 = self.tolerance(circuit, init, inputs, target, beta)
        _, r0 = check(init, tol0)
        n_steps, free, _, r = jax.lax.while_loop(cond, body, (jnp.array(0), init, tol0, r0))
        return free, (n_steps, r)

    def potential_error_bound(self, circuit, free, inputs, target, beta, err, scale):
        """As the dense bound, |H⁻¹|·t (volts, ``(n_free,)``), by one conjugate-gradient solve
        H·b = t: exact for an M-matrix H (positive gains), where H⁻¹ ≥ 0 elementwise."""
        split = _split(circuit, inputs)
        _, hvp, diag = self._operators(circuit, split, free, inputs, target, beta)
        unit = 0.5 * jnp.finfo(free.dtype).eps
        t = (err + unit * scale) * circuit.node_weight_free()
        safe = jnp.where(diag > 0, diag, 1.0)
        b, _ = cg(hvp, t, tol=1e-3, maxiter=self._cg_steps(free.shape[0]), M=lambda r: r / safe)
        # a solve that did not reach its tolerance bounds nothing: then no potential is
        # certified (the status says ILL_CONDITIONED rather than a SUCCESS not earned)
        reached = jnp.linalg.norm(t - hvp(b)) <= 1e-2 * jnp.linalg.norm(t)
        bound = jnp.where(reached & jnp.all(jnp.isfinite(b)), jnp.abs(b), jnp.inf)
        # an inverting amplifier (a negative gain) breaks the M-matrix property: there, the
        # dense bound where it is affordable, else none
        inverting = jnp.any(_base_of(circuit).node_gain < 0)
        if free.shape[0] <= _DENSE_BOUND_LIMIT:
            dense = lambda: super(SparseNewton, self).potential_error_bound(
                circuit, free, inputs, target, beta, err, scale
            )
            return jax.lax.cond(inverting, dense, lambda: bound)
        return jnp.where(inverting, jnp.inf, bound)

    def linear_solve(self, circuit):
        """Conjugate gradients (matrix-free) for implicit differentiation."""
        n = _base_of(circuit).n_free
        return lambda matvec, b: linear_solve.solve_cg(matvec, b, tol=1e-10, maxiter=10 * n)
