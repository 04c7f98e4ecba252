"""Newton for large circuits and circuits of many resistors: the linear elements' Laplacian
built once per solve, the nonlinear elements' terms on their own ends, memory linear in the
number of elements.

The energy splits as E(v) = ½·vᵀLv + g₀ᵀv + E_nl(v) + const: L, the Hessian of the linear
elements (resistors) and g₀, the gradient of their energy and the sources' at v = 0, do not
change from step to step, so a step costs one pass over the nonlinear elements (diodes) and
a few products with L — not a pass over every resistor. Each Newton direction solves
H·d = −g (H = L + the diodes' terms + the nudge's, symmetric positive definite) by conjugate
gradients preconditioned by H's diagonal, or directly where L is small enough to hold as an
n×n array; a backtracking line search on the energy's accurate change (linear part exact,
diodes by their increments) accepts the step. Where the resistors' dense rows are cheap
(``Circuit.linear_block``: few free nodes, many resistors to held ones), the KCL checks are
matrix products too.
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
# the dense linear block is used where it has at most this many entries per resistor: an
# entry costs one fused multiply-add in a row operation, a resistor's end a gather and a
# scatter-add (several times more on a CPU)
_BLOCK_PER_ELEMENT = 4


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


def uses_linear_block(circuit) -> bool:
    """Whether the circuit's (or a deviation problem's base's) dense linear block costs no
    more than a few passes over the resistors' ends: few free nodes, many resistors to held
    ones (a network's input layer)."""
    base = _base_of(circuit)
    return base.linear_block_size() <= _BLOCK_PER_ELEMENT * base.n_linear_elements()


def _block(problem):
    """The circuit's linear block (``Circuit.linear_block``; a deviation problem's: its
    base's) where ``uses_linear_block``; None otherwise."""
    return _base_of(problem).linear_block() if uses_linear_block(problem) else None


def _split(problem, inputs, block=None) -> _Split:
    """L (COO), its diagonal and g₀ for a Circuit or the deviation problem of one."""
    base = _base_of(problem)
    rows, cols, vals = base.linear_laplacian()
    n = base.n_free
    diag = jax.ops.segment_sum(jnp.where(rows == cols, vals, 0.0), rows, n + 1)[:n]
    zero = jnp.zeros(n, base.dtype)
    if isinstance(problem, _Deviation):
        # the deviation's linear part is ½·δᵀLδ exactly (resistors' increments), plus λ·δ
        g0 = problem.multiplier
    elif block is not None:
        g0 = base.linear_block_terms(block, zero, inputs)[0]
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


class _Reduced(NamedTuple):
    """One example's nonlinear elements and outputs in free coordinates: each end's potential
    is gain·z[root] + offset (the offset the held potential, 0 at a free-rooted end; a held
    end's root is ``n``, where z is extended by a 0), so their terms cost a pass over their
    own elements and never over every node. For a nudged phase's deviation, ``free0`` is the
    free phase and the nonlinear energy is the base's increment from it."""

    groups: tuple  # (element, weight, root_a, root_b, gain_a, gain_b, offset_a, offset_b)
    out_root: jax.Array
    out_gain: jax.Array
    out_offset: jax.Array
    free0: jax.Array | None
    n: int


def _reduce(problem, inputs) -> _Reduced:
    base = _base_of(problem)
    n = base.n_free
    v0 = base.potentials(jnp.zeros(n, base.dtype), inputs)
    held = base.node_root >= n
    root = jnp.where(held, n, base.node_root)
    gain = jnp.where(held, 0.0, base.node_gain)
    groups = tuple(
        (e, w, root[t[0]], root[t[1]], gain[t[0]], gain[t[1]], v0[t[0]], v0[t[1]])
        for e, t, w in base._groups(False)
    )
    out = base.output_nodes
    deviation = isinstance(problem, _Deviation)
    offset = jnp.zeros_like(v0[out]) if deviation else v0[out]
    return _Reduced(groups, root[out], gain[out], offset, problem.free0 if deviation else None, n)


def _extend(z):
    return jnp.concatenate([z, jnp.zeros(1, z.dtype)])


def _drops(reduced, z, offsets=True):
    """Each nonlinear group's voltage drops at free potentials ``z`` (without the offsets:
    their changes for a change ``z``)."""
    ze = _extend(z)
    if not offsets:
        return [ga * ze[ra] - gb * ze[rb] for _, _, ra, rb, ga, gb, _, _ in reduced.groups]
    return [
        (ga * ze[ra] + oa) - (gb * ze[rb] + ob) for _, _, ra, rb, ga, gb, oa, ob in reduced.groups
    ]


def _nonlinear_scale(reduced, free):
    """The nonlinear elements' share of ``Circuit.current_scale`` at the free nodes (before
    the division by their energy weights), in free coordinates; for a deviation, of
    ``current_scale(free0, inputs, change=free)``."""
    d = jnp.zeros(reduced.n + 1, free.dtype)
    if reduced.free0 is not None:
        u0s, u1s = _drops(reduced, reduced.free0), _drops(reduced, reduced.free0 + free)
        xe = _extend(free)
        for (e, w, ra, rb, ga, gb, _, _), u0, u1 in zip(reduced.groups, u0s, u1s, strict=True):
            c = jnp.abs(e.differential_conductance(u1)) + jnp.abs(e.differential_conductance(u0))
            size = w * c * (jnp.abs(ga * xe[ra]) + jnp.abs(gb * xe[rb]))
            d = d.at[ra].add(jnp.abs(ga) * size).at[rb].add(jnp.abs(gb) * size)
        return d[: reduced.n]
    ze = _extend(free)
    for e, w, ra, rb, ga, gb, oa, ob in reduced.groups:
        va, vb = ga * ze[ra] + oa, gb * ze[rb] + ob
        u = va - vb
        size = w * (jnp.abs(e.differential_conductance(u)) * (jnp.abs(va) + jnp.abs(vb)))
        size = size + w * jnp.abs(e.current(u))
        d = d.at[ra].add(jnp.abs(ga) * size).at[rb].add(jnp.abs(gb) * size)
    return d[: reduced.n]


def _increment_at(reduced, z, dz):
    """Σ w·(co-content increment) of the nonlinear elements from ``z`` along ``dz``."""
    total = jnp.zeros((), z.dtype)
    for (e, w, *_), u, du in zip(
        reduced.groups, _drops(reduced, z), _drops(reduced, dz, False), strict=True
    ):
        total = total + jnp.sum(w * e.co_content_increment(u, du))
    return total


def _nonlinear_energy(reduced, free):
    if reduced.free0 is not None:
        return _increment_at(reduced, reduced.free0, free)
    total = jnp.zeros((), free.dtype)
    for (e, w, *_), u in zip(reduced.groups, _drops(reduced, free), strict=True):
        total = total + jnp.sum(w * e.co_content(u))
    return total


def _nonlinear_gradient(reduced, free):
    return jax.grad(lambda z: _nonlinear_energy(reduced, z))(free)


def _nonlinear_increment(reduced, free, step):
    """E_nl(free + step) − E_nl(free) − ∇E_nl(free)·step, from the diodes' accurate
    increments (for the deviation problem: the base's, from free0 + free)."""
    at = free if reduced.free0 is None else reduced.free0 + free
    return _increment_at(reduced, at, step)


def _nonlinear_diagonal(reduced, free):
    at = free if reduced.free0 is None else reduced.free0 + free
    d = jnp.zeros(reduced.n + 1, free.dtype)
    for (e, w, ra, rb, ga, gb, _, _), u in zip(reduced.groups, _drops(reduced, at), strict=True):
        c = w * e.differential_conductance(u)
        same = ra == rb  # both ends on one root: (ga − gb)² c
        d = d.at[ra].add(jnp.where(same, c * (ga - gb) ** 2, c * ga * ga))
        d = d.at[rb].add(jnp.where(same, 0.0, c * gb * gb))
    return d[: reduced.n]


def _output_changes(reduced, dz):
    return reduced.out_gain * _extend(dz)[reduced.out_root]


def _cost(reduced, free, target):
    return squared_error(_output_changes(reduced, free) + reduced.out_offset, target)


def _output_hvp(reduced, p):
    """Pᵀ_out P_out·p: the nudge's Hessian (times β) applied to p."""
    out = reduced.out_gain * _output_changes(reduced, p)
    return jnp.zeros(reduced.n + 1, p.dtype).at[reduced.out_root].add(out)[: reduced.n]


def _split_gradient(reduced, split, free, target, beta):
    """∂(E + β·C)/∂v at ``free`` from the split: L·v + g₀ plus the diodes' and the nudge's
    gradients (no pass over the resistors)."""
    g_cost = jax.grad(lambda z: _cost(reduced, z, target))(free)
    return split.lmatvec(free) + split.g0 + _nonlinear_gradient(reduced, free) + beta * g_cost


def _dense_hessian(reduced, split, free, beta):
    """H = L + the diodes' terms + β·Pᵀ_out P_out as an n×n array (where L is held dense)."""
    n = reduced.n
    at = free if reduced.free0 is None else reduced.free0 + free
    h = jnp.zeros((n + 1, n + 1), free.dtype)
    for (e, w, ra, rb, ga, gb, _, _), u in zip(reduced.groups, _drops(reduced, at), strict=True):
        c = w * e.differential_conductance(u)
        h = h.at[ra, ra].add(c * ga * ga).at[rb, rb].add(c * gb * gb)
        h = h.at[ra, rb].add(-c * ga * gb).at[rb, ra].add(-c * ga * gb)
    return split.dense + h[:n, :n] + jnp.diag(beta * _output_diagonal(reduced))


def _output_diagonal(reduced):
    """diag(Pᵀ_out P_out): each output's gain² at its free node (held outputs: none)."""
    gain = reduced.out_gain
    return jnp.zeros(reduced.n + 1, gain.dtype).at[reduced.out_root].add(gain * gain)[: reduced.n]


class SparseNewton(AbstractSolver):
    """Damped Newton in the split form, for large circuits and for circuits of many
    resistors.

    The resistors' Laplacian L is assembled once per solve (sparse COO entries; an n×n array
    where that is smaller) and never per step; the nonlinear elements' terms are evaluated on
    their own ends in free coordinates, without a pass over every node. Each Newton
    direction is a conjugate-gradient solve preconditioned by the Hessian's diagonal, or an
    n×n solve where L is held dense; implicit differentiation solves with conjugate
    gradients. Memory grows linearly with the number of elements, so circuits of 10⁵ free
    nodes solve where the dense n² Hessian of [`DampedNewton`][kirchhoff.DampedNewton]
    cannot be stored (it hands circuits above its ``dense_limit`` to this solver).

    Where few nodes are free and most resistors reach held nodes (the input layer of a
    network, 157,000 resistors into 110 free nodes in the seed paper's), the resistors'
    conductances are also held as dense rows, one per node that follows a free one, and
    every KCL check is a few matrix products: no pass over the resistors at all after the
    set-up (DampedNewton hands such circuits over too, from ``block_elements`` resistors).
    Its loop stops against a lower bound on each node's current scale, so a stop there
    passes the final, exact test.

    Statuses are judged as by the other solvers. The bound on the potentials' error
    (``vtol``) is |H⁻¹|·t: from the n×n Hessian where L is dense (H⁻¹·t for an M-matrix:
    positive conductances and amplifier gains), else from one more conjugate-gradient solve
    H·b = t, exact for an M-matrix, and no bound at all (so no SUCCESS) when that solve does
    not reach its tolerance or an amplifier inverts.

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

    def _operators(self, reduced, split, free, target, beta):
        """The gradient at ``free``, and the Hessian's product and diagonal there."""
        g = _split_gradient(reduced, split, free, target, beta)

        def hvp(p):
            nl = jax.jvp(lambda z: _nonlinear_gradient(reduced, z), (free,), (p,))[1]
            return split.lmatvec(p) + nl + beta * _output_hvp(reduced, p)

        diag = (
            split.diag_lin + _nonlinear_diagonal(reduced, free) + beta * _output_diagonal(reduced)
        )
        return g, hvp, diag

    def _step(self, reduced, split, free, target, beta):
        g, hvp, diag = self._operators(reduced, split, free, target, beta)
        safe = jnp.where(diag > 0, diag, 1.0)
        if split.dense is None:
            newton, _ = cg(
                hvp,
                -g,
                tol=self.cg_rtol,
                maxiter=self._cg_steps(free.shape[0]),
                M=lambda r: r / safe,
            )
        else:
            # few free nodes: the n×n Hessian is cheaper to factor than to iterate on
            newton = jnp.linalg.solve(_dense_hessian(reduced, split, free, beta), -g)
        scaled_gradient = -g / safe
        use_newton = jnp.all(jnp.isfinite(newton)) & (jnp.dot(g, newton) < 0)
        direction = jnp.where(use_newton, newton, scaled_gradient)
        slope = jnp.dot(g, direction)
        ld = split.lmatvec(direction)
        out_dir = _output_changes(reduced, direction)

        def change(a):
            # F(free + a·d) − F(free): the linear part and the nudge exactly, the diodes by
            # their accurate increments (far above round-off near the minimum)
            quadratic = 0.5 * a * a * (jnp.dot(direction, ld) + beta * jnp.sum(out_dir**2))
            return a * slope + quadratic + _nonlinear_increment(reduced, free, a * direction)

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

    def _exact(self, circuit, block, reduced, free, inputs, target, beta):
        """(tolerance, KCL error) per free node, as ``tolerance`` and ``kcl_error``: through
        the linear block where there is one (one row pass for both)."""
        if block is None:
            return (
                self.tolerance(circuit, free, inputs, target, beta),
                self.kcl_error(circuit, free, inputs, target, beta),
            )
        err, scale = self._block_terms(circuit, block, reduced, free, inputs, target, beta)
        return self.atol + self.effective_rtol(free.dtype) * scale, err

    def _block_terms(self, circuit, block, reduced, free, inputs, target, beta, exact=True):
        """|KCL error| (from ∂(E + β·C)/∂v) and the current scale (the nudge's included) per
        free node, the resistors' from the linear block, the rest element by element
        (``exact=False``: a lower bound on the scale, from matrix products alone; see
        ``Circuit.linear_block_terms``)."""
        g_nl = _nonlinear_gradient(reduced, free)
        g_cost = beta * jax.grad(lambda z: _cost(reduced, z, target))(free)
        weight = circuit.node_weight_free()
        other = _nonlinear_scale(reduced, free) + jnp.abs(g_cost)
        if isinstance(circuit, _Deviation):
            g_lin, s_lin = circuit.base.linear_block_terms(
                block, circuit.free0, inputs, change=free
            )
            g_lin = g_lin + circuit.multiplier
            other = other + jnp.abs(circuit.multiplier)
        else:
            g_lin, s_lin = circuit.linear_block_terms(block, free, inputs, exact)
        return jnp.abs(g_lin + g_nl + g_cost) / weight, s_lin + other / weight

    def _error_and_scale(self, circuit, free, inputs, target, beta):
        block = _block(circuit)
        if block is None:
            return super()._error_and_scale(circuit, free, inputs, target, beta)
        return self._block_terms(
            circuit, block, _reduce(circuit, inputs), free, inputs, target, beta
        )

    def kcl_error(self, circuit, free, inputs, target, beta):
        """As [`AbstractSolver.kcl_error`][kirchhoff.AbstractSolver.kcl_error]; the
        resistors' currents from the linear block where the circuit has one."""
        if uses_linear_block(circuit):
            return self._error_and_scale(circuit, free, inputs, target, beta)[0]
        return super().kcl_error(circuit, free, inputs, target, beta)

    def current_scale(self, circuit, free, inputs, target, beta):
        """As [`AbstractSolver.current_scale`][kirchhoff.AbstractSolver.current_scale]; the
        resistors' share from the linear block where the circuit has one."""
        if uses_linear_block(circuit):
            return self._error_and_scale(circuit, free, inputs, target, beta)[1]
        return super().current_scale(circuit, free, inputs, target, beta)

    def _run(self, circuit, init, inputs, target, beta):
        block = _block(circuit)
        split = _split(circuit, inputs, block)
        reduced = _reduce(circuit, inputs)
        weight = circuit.node_weight_free()

        def step(free):
            return self._step(reduced, split, free, target, beta)

        def split_error(free):
            """|KCL error| per node from the split gradient: no pass over the resistors."""
            g = _split_gradient(reduced, split, free, target, beta)
            return jnp.abs(g) / weight

        def block_check(free, tol):
            """(tolerance, ratio) through the linear block, against a tolerance from a lower
            bound on the current scale: no pass over the resistors, and a stop here passes
            the exact test (the status's) too."""
            del tol
            err, scale = self._block_terms(
                circuit, block, reduced, free, inputs, target, beta, exact=False
            )
            t = self.atol + self.effective_rtol(free.dtype) * scale
            return t, _max_ratio(err, t)

        def check(free, tol):
            """(tolerance, ratio): the exact test (a pass over every element for the current
            scales, another for the KCL error) only once the split error is within 10× the
            last tolerance; the loop stops on the exact ratio alone."""
            err = split_error(free)

            def exact(_):
                t, e = self._exact(circuit, block, reduced, free, inputs, target, beta)
                return t, _max_ratio(e, t)

            def estimate(_):
                return tol, _max_ratio(err, tol)

            near = jnp.all(err <= 10 * tol)  # False for a NaN: its estimate says NaN
            return jax.lax.cond(near, exact, estimate, None)

        def cond(carry):
            n, _, _, r = carry
            return (n < self.max_steps) & (r > 1) & ~jnp.isnan(r)

        if block is not None:
            check = block_check

        def body(carry):
            n, free, tol, _ = carry
            free = step(free)
            tol, r = check(free, tol)
            return n + 1, free, tol, r

        tol0 = self._exact(circuit, block, reduced, init, inputs, target, beta)[0]
        tol0, r0 = check(init, tol0)
        n_steps, free, _, r = jax.lax.while_loop(cond, body, (jnp.array(0), init, tol0, r0))
        return free, (n_steps, r)

    def potential_error_bound(self, circuit, free, inputs, target, beta, err, scale):
        """As the dense bound, |H⁻¹|·t (volts, ``(n_free,)``): where L is held dense (few
        free nodes), from the n×n Hessian; otherwise by one conjugate-gradient solve H·b = t,
        exact for an M-matrix H (positive gains), where H⁻¹ ≥ 0 elementwise."""
        split = _split(circuit, inputs, _block(circuit))
        reduced = _reduce(circuit, inputs)
        unit = 0.5 * jnp.finfo(free.dtype).eps
        t = (err + unit * scale) * circuit.node_weight_free()
        inverting = jnp.any(_base_of(circuit).node_gain < 0)
        if split.dense is not None:
            # few free nodes: from the split's n×n Hessian, H⁻¹·t (= |H⁻¹|·t for an M-matrix)
            # or, under an inverting amplifier, |H⁻¹|·t itself
            h = _dense_hessian(reduced, split, free, beta)
            return jax.lax.cond(
                inverting,
                lambda: jnp.abs(jnp.linalg.inv(h)) @ t,
                lambda: jnp.abs(jnp.linalg.solve(h, t)),
            )
        _, hvp, diag = self._operators(reduced, split, free, target, beta)
        safe = jnp.where(diag > 0, diag, 1.0)
        b, _ = cg(hvp, t, tol=1e-3, maxiter=self._cg_steps(free.shape[0]), M=lambda r: r / safe)
        # a solve that did not reach its tolerance bounds nothing: then no potential is
        # certified (the status says ILL_CONDITIONED rather than a SUCCESS not earned)
        reached = jnp.linalg.norm(t - hvp(b)) <= 1e-2 * jnp.linalg.norm(t)
        bound = jnp.where(reached & jnp.all(jnp.isfinite(b)), jnp.abs(b), jnp.inf)
        # an inverting amplifier (a negative gain) breaks the M-matrix property: there, the
        # dense bound where it is affordable, else none
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
