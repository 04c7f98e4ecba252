"""The equilibrium-solver interface: a solve returns potentials plus per-example status."""

import abc
import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._circuit import AbstractCircuit
from .._cost import check_inputs, squared_error
from .._custom_types import Array, Float, check_real_dtype
from ._checks import check_beta, check_settings
from ._equilibrium import (
    Equilibrium,
    NotConvergedError,
    Status,
    select_status,
    status_messages,
)
from ._jaxopt import implicit_diff, linear_solve
from ._nudged import _Deviation, _nudged_energy, _nudged_hessian, bound_multipliers

__all__ = [
    "AbstractSolver",
    "check_beta",
    "Equilibrium",
    "NotConvergedError",
    "Status",
    "select_status",
    "status_messages",
]


# under an outer jit, a throw names the first failing example up to this index
_NAMED_EXAMPLES = 64


def iterate_until_converged(step, ratio, state, max_steps):
    """Apply ``step`` to ``state`` until ``ratio(state)`` (max error/tolerance) is ≤ 1, is
    NaN, or ``max_steps`` steps are spent; returns (steps taken, state, final ratio)."""

    def cond(carry):
        n, _, r = carry
        return (n < max_steps) & (r > 1) & ~jnp.isnan(r)

    def body(carry):
        n, state, _ = carry
        state = step(state)
        return n + 1, state, ratio(state)

    return jax.lax.while_loop(cond, body, (jnp.array(0), state, ratio(state)))


def _max_ratio(err, tol):
    """max err/tol, 0 where both vanish (a node no current reaches yet, with atol = 0)."""
    return jnp.max(jnp.where(err == 0, 0.0, err / tol), initial=0.0)


def structural_status(circuit, inputs, status):
    """DISCONNECTED where open elements (zero conductances) cut a sub-network off, INFEASIBLE
    where ideal diodes contradict: causes that the other statuses would only echo, so they
    take precedence. One label propagation over the edges, one comparison of the bounds."""
    cut = circuit.cut_off()
    if cut is not None:
        status = select_status(jnp.any(cut), Status.DISCONNECTED, status)
    if circuit.has_ideal_diodes:
        status = select_status(circuit.infeasible(inputs), Status.INFEASIBLE, status)
    return status


def _status(free, err, tol, beta):
    """SUCCESS when every node's KCL error is within its own tolerance."""
    finite = jnp.all(jnp.isfinite(free)) & jnp.all(jnp.isfinite(err)) & jnp.isfinite(beta)
    converged = select_status(jnp.all(err <= tol), Status.SUCCESS, Status.MAX_STEPS)
    return select_status(~finite, Status.NONFINITE, converged)


class AbstractSolver(eqx.Module):
    """The equilibrium-solver interface: finds the minimiser of ``E + beta·C`` over the free
    potentials, batched and jit-compiled, differentiable implicitly (jaxopt's custom_root on
    the optimality condition).

    Convergence is judged node by node: each free node's KCL residual against
    ``atol + rtol·(the currents that meet at that node)``, so a node behind nanosiemens is held
    to the same relative standard as one behind kilosiemens. ``rtol`` is raised to a few
    machine epsilons of the circuit's dtype where it asks for less than round-off allows.

    A subclass provides the fields below (with its defaults) and ``_run(circuit, init,
    inputs, target, beta)``: one example's iteration from ``init`` (no implicit
    differentiation there), returning (free potentials, (steps taken, final error ratio)).
    It may override [`optimality`][kirchhoff.AbstractSolver.optimality] (the residual whose
    zero is the equilibrium, which implicit differentiation differentiates),
    [`linear_solve`][kirchhoff.AbstractSolver.linear_solve] and ``_check_circuit`` (raise on
    a circuit it cannot solve). Batching, compilation, statuses, ``throw`` and
    [`solve_nudged`][kirchhoff.AbstractSolver.solve_nudged] come from this class. The
    concrete solvers are [`DampedNewton`][kirchhoff.DampedNewton],
    [`LBFGS`][kirchhoff.LBFGS], [`BoxQP`][kirchhoff.BoxQP] and
    [`BlockCoordinateDescent`][kirchhoff.BlockCoordinateDescent].

    Attributes:
        max_steps: The iteration budget per example; past it the status is MAX_STEPS.
        atol: Absolute KCL tolerance per node, amperes.
        rtol: Tolerance relative to the currents that meet at each node (the nudge's
            included), raised to 4 machine epsilons of the dtype where it asks for less.
        throw: Whether a solve raises [`NotConvergedError`][kirchhoff.NotConvergedError]
            where an example's status is not SUCCESS.
        vtol: SUCCESS also needs every potential within ``vtol``·(the circuit's potential
            scale, its largest |potential|) by a first-order error bound — for a nudged
            phase's deviation, within ``vtol``·max|δ|; raised to 32 ulps of the dtype
            (3.8e-6 in float32); None skips the check.
    """

    max_steps: eqx.AbstractVar[int]
    atol: eqx.AbstractVar[float]
    rtol: eqx.AbstractVar[float]
    throw: eqx.AbstractVar[bool]
    vtol: eqx.AbstractVar[float | None]

    def __check_init__(self):
        check_settings(self)

    @abc.abstractmethod
    def _run(self, circuit, init, inputs, target, beta) -> tuple[Array, tuple[Array, Array]]:
        """One example: returns (free potentials, (n_steps, reached)) — no implicit diff here."""

    def _check_circuit(self, circuit: AbstractCircuit) -> None:
        del circuit

    def optimality(self, circuit, free, inputs, target, beta):
        """Zero at equilibrium: the gradient of the nudged energy (smooth circuits).

        Like the other helpers below, for one example: ``free`` the free potentials (volts,
        ``(n_free,)``), ``inputs`` ``(n_inputs,)`` and ``target`` ``(n_outputs,)`` in volts,
        ``beta`` a scalar in siemens. Returns ∂(E + β·C)/∂v, shape ``(n_free,)``: per node
        the net current leaving it times the node's energy weight (amperes without
        amplifiers). Implicit differentiation differentiates this condition."""
        return jax.grad(_nudged_energy, argnums=1)(circuit, free, inputs, target, beta)

    def kcl_error(self, circuit, free, inputs, target, beta) -> Float[Array, " free"]:
        """|KCL residual| of each free node, amperes, shape ``(n_free,)``, for one example
        (projected, with ideal diodes)."""
        g = self.optimality(circuit, free, inputs, target, beta)
        return jnp.abs(g / circuit.node_weight_free())

    def residual(self, circuit, free, inputs, target, beta) -> Float[Array, ""]:
        """Max |KCL residual| over the free nodes of one example, amperes, a scalar (what
        [`Equilibrium.residual`][kirchhoff.Equilibrium] holds)."""
        return jnp.max(self.kcl_error(circuit, free, inputs, target, beta), initial=0.0)

    def effective_rtol(self, dtype):
        """``rtol`` as used for ``dtype``: raised to 4 machine epsilons where it asks for less
        (a scalar array of that dtype)."""
        # a few epsilons: what a KCL sum of a handful of rounded currents can resolve
        return jnp.maximum(jnp.asarray(self.rtol, dtype), 4 * jnp.finfo(dtype).eps)

    def current_scale(self, circuit, free, inputs, target, beta) -> Float[Array, " free"]:
        """Per free node of one example, the size of the currents meeting there, the nudge's
        included: amperes, shape ``(n_free,)``."""
        nudge = jax.grad(
            lambda z: beta * squared_error(circuit.output_potentials(z, inputs), target)
        )(free)
        return circuit.current_scale(free, inputs) + jnp.abs(nudge) / circuit.node_weight_free()

    def tolerance(self, circuit, free, inputs, target, beta) -> Float[Array, " free"]:
        """Per free node of one example: atol + rtol·(currents meeting there, the nudge's
        included), amperes, shape ``(n_free,)``."""
        scale = self.current_scale(circuit, free, inputs, target, beta)
        return self.atol + self.effective_rtol(free.dtype) * scale

    def potential_error_bound(self, circuit, free, inputs, target, beta, err, scale):
        """A bound on the error of each free potential of one example (volts, shape
        ``(n_free,)``), from the KCL residual ``err`` plus one rounding unit of the currents
        ``scale`` at each node (both amperes, ``(n_free,)``), mapped through |H⁻¹|: a node
        that only a weak link pins (a cluster joined by kilosiemens, held by nanosiemens) is
        uncertain far beyond its residual, and this says so. Nodes on an ideal-diode bound
        are pinned there (bound 0)."""
        h = _nudged_hessian(circuit, free, inputs, target, beta)
        lo, hi = circuit.free_bounds(inputs)
        pinned = (free <= lo) | (free >= hi)
        h = jnp.where(pinned[:, None] | pinned[None, :], jnp.eye(free.shape[0], dtype=h.dtype), h)
        unit = 0.5 * jnp.finfo(free.dtype).eps
        t = jnp.where(pinned, 0.0, (err + unit * scale) * circuit.node_weight_free())
        return jnp.abs(jnp.linalg.inv(h)) @ t

    def _bounds_potentials(self, circuit) -> bool:
        """Whether this solve checks its potentials against ``vtol`` (a dense n³ bound)."""
        del circuit
        return self.vtol is not None

    def error_ratio(self, circuit, free, inputs, target, beta) -> Float[Array, ""]:
        """Max over one example's free nodes of |KCL residual| / tolerance, a scalar: ≤ 1
        means converged."""
        err = self.kcl_error(circuit, free, inputs, target, beta)
        tol = self.tolerance(circuit, free, inputs, target, beta)
        return _max_ratio(err, tol)

    def linear_solve(self, circuit):
        """The linear solver for implicit differentiation (dense LU: exact, small circuits):
        a jaxopt ``linear_solve`` function."""
        del circuit
        return linear_solve.solve_lu

    def init_free(self, circuit, inputs):
        """The cold start for one example: zero potentials clipped into the ideal diodes'
        bounds, volts, shape ``(n_free,)``."""
        lo, hi = circuit.free_bounds(inputs)
        return jnp.clip(jnp.zeros(circuit.n_free, circuit.dtype), lo, hi)

    def _prepare(self, circuit, inputs, target):
        """Checks and dtype casts shared by the solves; the circuit's dtype rules."""
        self._check_circuit(circuit)
        check_inputs(circuit, inputs)
        if target is not None:
            check_real_dtype(target, "kirchhoff: target")
        inputs = jnp.asarray(inputs, dtype=circuit.dtype)
        if target is None:
            target = jnp.zeros((*inputs.shape[:-1], circuit.n_outputs), inputs.dtype)
        target = jnp.asarray(target, inputs.dtype)
        if target.shape != (*inputs.shape[:-1], circuit.n_outputs):
            raise ValueError(
                f"kirchhoff: target has shape {target.shape}; expected "
                f"{(*inputs.shape[:-1], circuit.n_outputs)} for inputs of shape {inputs.shape}."
            )
        return inputs, target

    def solve(
        self,
        circuit: AbstractCircuit,
        inputs,
        target=None,
        beta=0.0,
        init=None,
    ) -> Equilibrium:
        """The equilibrium of ``circuit`` for a batch of inputs: the free potentials that
        minimise ``E + beta·½‖v_out − target‖²``, with a status per example.

        Computed in the circuit's dtype (``circuit.dtype``); inputs are cast to it. Batched
        over the first axis and compiled on the first call for a circuit's structure and the
        arguments' shapes; differentiable with respect to the circuit's parameters by
        implicit differentiation. To find a nudged phase next to a free one,
        [`solve_nudged`][kirchhoff.AbstractSolver.solve_nudged] is exact where this is not.

        Args:
            circuit: The circuit to solve (e.g. a [`Circuit`][kirchhoff.Circuit]); the
                solver must support its elements.
            inputs: The input potentials, volts, shape ``(batch, n_inputs)``, or
                ``(n_inputs,)`` for one example.
            target: The output targets y, volts, shape ``(batch, n_outputs)`` (like
                ``inputs``); only needed when ``beta`` ≠ 0.
            beta: The nudge strength β, siemens, a scalar: the outputs are pulled towards
                ``target`` by a current source β·(y − v_out) into each output (β·A²·(y −
                v_out) behind amplifiers of total gain A). 0 (the default) is the free phase.
            init: Potentials to start from (a warm start), volts, shaped like the result's
                ``free``: ``(batch, n_free)``; clipped into the ideal diodes' bounds. None
                starts from zero.

        Returns:
            An [`Equilibrium`][kirchhoff.Equilibrium]: the free potentials and each example's
            status, step count and residual.

        Raises:
            ValueError: A shape that does not fit the circuit, a non-finite β, a nonzero β
                without ``target``, a bad ``init``, or a circuit this solver cannot solve
                (e.g. ideal diodes for [`DampedNewton`][kirchhoff.DampedNewton]).
            TypeError: Complex, boolean or non-numeric inputs, target, init or β.
            NotConvergedError: With ``throw=True``, where an example's status is not SUCCESS
                (the message names them); under an outer ``jit``, Equinox's runtime error
                raised inside the graph instead.

        Examples:
            A voltage divider: 1 S from the input to ``out``, 2 S from ``out`` to ground, so
            v_out = x/3.

            >>> import jax.numpy as jnp
            >>> import kirchhoff as kh
            >>> circuit = kh.Circuit(
            ...     [
            ...         kh.Ground("gnd"),
            ...         kh.Input("in"),
            ...         kh.Resistor("in", "out", 1.0),
            ...         kh.Resistor("out", "gnd", 2.0),
            ...     ],
            ...     outputs=["out"],
            ... )
            >>> eq = kh.DampedNewton().solve(circuit, jnp.array([[3.0], [6.0]]))
            >>> eq.free.shape  # (batch, n_free)
            (2, 1)
            >>> print([f"{float(v):.3f}" for v in eq.free[:, 0]])
            ['1.000', '2.000']
            >>> eq.messages()
            ['converged', 'converged']
        """
        check_beta(beta)
        if target is None and not isinstance(beta, jax.core.Tracer) and float(beta) != 0:
            raise ValueError(f"kirchhoff: beta = {float(beta)} nudges the outputs, but no target.")
        inputs, target = self._prepare(circuit, inputs, target)
        batched = inputs.ndim == 2
        if init is None:
            # zeros (clipped into the diode bounds in _solve_one): always passing an array
            # lets a cold and a warm-started solve share one compilation
            init = jnp.zeros((*inputs.shape[:-1], circuit.n_free), inputs.dtype)
        check_real_dtype(init, "kirchhoff: init")
        init = jnp.asarray(init, inputs.dtype)
        if init.shape != (*inputs.shape[:-1], circuit.n_free):
            raise ValueError(
                f"kirchhoff: init has shape {init.shape}; expected "
                f"{(*inputs.shape[:-1], circuit.n_free)}."
            )
        beta = jnp.asarray(beta, inputs.dtype)
        run = self._host_throw(circuit, inputs, target, beta, init)
        eq = _solve_jit(run, circuit, inputs, target, beta, init, batched)
        return self._raise_naming_examples(eq) if run is not self else eq

    def solve_nudged(
        self, circuit: AbstractCircuit, inputs, target, beta, free: Equilibrium
    ) -> Equilibrium:
        """The nudged phase at ``beta`` next to the free phase ``free``, solved for its
        deviation from it.

        Solved for the deviation δ = v^β − v⁰ (returned as ``deviation``; ``free`` holds
        v⁰ + δ), stopping when every node's KCL residual is small next to the currents the
        nudge sets flowing. The free phase's own residual is left out, so δ is the response
        to the nudge alone, accurate relative to itself at small β in float32 too: what
        [`eqprop_gradient`][kirchhoff.eqprop_gradient] forms its estimates from.

        Args:
            circuit: The circuit, as for [`solve`][kirchhoff.AbstractSolver.solve].
            inputs: The input potentials, volts, shape ``(batch, n_inputs)`` or
                ``(n_inputs,)``: those the free phase was solved for.
            target: The output targets y, volts, shape ``(batch, n_outputs)``.
            beta: The nudge strength β, siemens, a scalar of either sign (−β for EqProp's
                negative phase): a current source β·(y − v_out) into each output.
            free: The free phase: the [`Equilibrium`][kirchhoff.Equilibrium] that
                [`solve`][kirchhoff.AbstractSolver.solve] returned for these inputs, or its
                potentials, volts, shape ``(batch, n_free)``.

        Returns:
            An [`Equilibrium`][kirchhoff.Equilibrium] of the nudged phase, with
            ``deviation`` set; its ``residual`` and ``status`` are the deviation problem's.

        Raises:
            ValueError: Shapes that do not fit the circuit, or a non-finite β.
            TypeError: Complex, boolean or non-numeric arguments.
            NotConvergedError: With ``throw=True``, as for
                [`solve`][kirchhoff.AbstractSolver.solve].
        """
        check_beta(beta)
        inputs, target = self._prepare(circuit, inputs, target)
        check_real_dtype(
            free.free if isinstance(free, Equilibrium) else free, "kirchhoff: the free phase"
        )
        free0 = jnp.asarray(free.free if isinstance(free, Equilibrium) else free, inputs.dtype)
        if free0.shape != (*inputs.shape[:-1], circuit.n_free):
            raise ValueError(
                f"kirchhoff: the free phase has shape {free0.shape}; expected "
                f"{(*inputs.shape[:-1], circuit.n_free)}."
            )
        beta = jnp.asarray(beta, inputs.dtype)
        run = self._host_throw(circuit, inputs, target, beta, free0)
        eq = _nudged_jit(run, circuit, inputs, target, beta, free0, inputs.ndim == 2)
        return self._raise_naming_examples(eq, "nudged ") if run is not self else eq

    def _host_throw(self, *args):
        """With ``throw`` and concrete arguments: the same solver without the in-graph check,
        so that the host can raise naming the examples; under an outer jit (traced
        arguments) the solver itself, whose check runs inside the graph."""
        leaves = jax.tree_util.tree_leaves(eqx.filter(args, eqx.is_array))
        if not self.throw or any(isinstance(x, jax.core.Tracer) for x in leaves):
            return self
        return dataclasses.replace(self, throw=False)

    def _raise_naming_examples(self, eq: Equilibrium, phase: str = "") -> Equilibrium:
        ok = np.atleast_1d(np.asarray(eq.status == Status.SUCCESS))
        bad = np.flatnonzero(~ok)
        if bad.size:
            words = eq.messages()
            shown = "; ".join(f"example {i}: {words[i]}" for i in bad[:5])
            more = f" (and {bad.size - 5} more)" if bad.size > 5 else ""
            raise NotConvergedError(
                f"kirchhoff: the {phase}equilibrium solve did not converge to a trusted answer "
                f"for example(s) {bad.tolist()[:20]}{'…' if bad.size > 20 else ''} — {shown}"
                f"{more}. Raise max_steps (n_sweeps), loosen atol/rtol/vtol, use float64, or "
                "check the circuit's parameters."
            )
        return eq

    def _raise_in_graph(self, eq: Equilibrium, phase: str = "") -> Equilibrium:
        """With ``throw`` under an outer jit, a runtime error inside the graph where a status
        is not SUCCESS, naming the first failing example and its status (called from the host,
        ``solve`` raises [`NotConvergedError`][kirchhoff.NotConvergedError] naming every
        example instead)."""
        if not self.throw:
            return eq
        codes = jnp.reshape(eq.status._value, (-1,))
        bad = codes != Status.SUCCESS._value
        first = jnp.argmax(bad)
        words = Status._index_to_message
        batched = eq.free.ndim == 2
        named = _NAMED_EXAMPLES if batched else 1

        def which(i):
            if not batched:
                return ""
            at = f"example {i}" if i < named - 1 else f"an example ≥ {i}"
            return f" for {at} (the first that failed)"

        messages = [
            f"kirchhoff: the {phase}equilibrium solve did not converge to a trusted answer"
            f"{which(i)}: {word}. Equilibrium.status says which "
            "examples failed (solve without throw); raise max_steps, loosen atol/rtol/vtol, "
            "use float64, or check the circuit's parameters."
            for i in range(named)
            for word in words
        ]
        index = jnp.minimum(first, named - 1) * len(words) + codes[first]
        free = eqx.branched_error_if(eq.free, jnp.any(bad), index, messages)
        return eqx.tree_at(lambda e: e.free, eq, free)

    def _flag_ill_conditioned(self, circuit, free, inputs, target, beta, err, scale, status):
        """SUCCESS becomes ILL_CONDITIONED where a small residual does not pin the potentials
        within vtol (the circuit is too ill-conditioned for its dtype); ``scale`` is the
        currents meeting at each node (``current_scale``)."""
        if not self._bounds_potentials(circuit):
            return status
        bound = self.potential_error_bound(circuit, free, inputs, target, beta, err, scale)
        # the bound is first-order and pessimistic (worst-case rounding at every node): a
        # floor of 32 ulps keeps well-conditioned float32 solves from being flagged
        vtol = jnp.maximum(self.vtol, 32 * jnp.finfo(free.dtype).eps)
        resolved = jnp.max(bound, initial=0.0) <= vtol * circuit.potential_scale(free, inputs)
        return select_status((status == Status.SUCCESS) & ~resolved, Status.ILL_CONDITIONED, status)

    def _error_and_scale(self, circuit, free, inputs, target, beta):
        """``kcl_error`` and ``current_scale`` of one example, which a solver may compute
        together."""
        return (
            self.kcl_error(circuit, free, inputs, target, beta),
            self.current_scale(circuit, free, inputs, target, beta),
        )

    def _finish(self, circuit, free, n_steps, inputs, target, beta):
        """Status and residual of a solution (no gradient flows into them)."""
        free_ng = jax.lax.stop_gradient(free)
        err, scale = self._error_and_scale(circuit, free_ng, inputs, target, beta)
        tol = self.atol + self.effective_rtol(free_ng.dtype) * scale
        status = _status(free_ng, err, tol, beta)
        status = self._flag_ill_conditioned(
            circuit, free_ng, inputs, target, beta, err, scale, status
        )
        status = structural_status(circuit, inputs, status)
        res = jnp.max(err, initial=0.0)
        return Equilibrium(free=free, status=status, n_steps=n_steps, residual=res)

    def _solve_one(self, circuit, inputs, target, beta, init):
        inputs = circuit.validate(inputs)
        # a start (cold or warm) must satisfy the diode bounds
        lo, hi = circuit.free_bounds(inputs)
        init = jnp.clip(init, lo, hi)

        # the whole circuit is an argument (not a closure): custom_vjp must not close over
        # tracers, and integer leaves get float0 cotangents
        def optimality(free, circuit, inputs, target, beta):
            return self.optimality(circuit, free, inputs, target, beta)

        def run(init, circuit, inputs, target, beta):
            return self._run(circuit, init, inputs, target, beta)

        free, (n_steps, _) = implicit_diff.custom_root(
            optimality, has_aux=True, solve=self.linear_solve(circuit)
        )(run)(init, circuit, inputs, target, beta)
        return self._finish(circuit, free, n_steps, inputs, target, beta)

    def _solve_nudged_one(self, circuit, inputs, target, beta, free0):
        """One example's nudged phase through the deviation problem (any solver)."""
        free0 = jax.lax.stop_gradient(free0)
        multiplier = bound_multipliers(circuit, free0, inputs)
        problem = _Deviation(circuit, free0, multiplier)
        shifted = target - circuit.output_potentials(free0, inputs)
        init = jnp.zeros_like(free0)
        eq = self._solve_one(problem, inputs, shifted, beta, init)
        return Equilibrium(
            free=free0 + eq.free,
            status=eq.status,
            n_steps=eq.n_steps,
            residual=eq.residual,
            deviation=eq.free,
        )


@eqx.filter_jit
def _nudged_jit(solver, circuit, inputs, target, beta, free0, batched):
    one = solver._solve_nudged_one
    if batched:
        one = jax.vmap(one, in_axes=(None, 0, 0, None, 0))
    return solver._raise_in_graph(one(circuit, inputs, target, beta, free0), "nudged ")


@eqx.filter_jit
def _solve_jit(solver, circuit, inputs, target, beta, init, batched):
    one = solver._solve_one
    if batched:
        one = jax.vmap(one, in_axes=(None, 0, 0, None, 0))
    return solver._raise_in_graph(one(circuit, inputs, target, beta, init))
