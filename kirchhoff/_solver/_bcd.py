"""Exact block coordinate descent as a solver: sweeps (``_sweeps``) until the KCL
residual is within tolerance, free phase and nudged deviations (``_deviation``) alike."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp

from .._layered import LayeredNetwork
from ._base import AbstractSolver, Equilibrium, _max_ratio, _status, iterate_until_converged
from ._deviation import DeviationProblem
from ._jaxopt import linear_solve
from ._nudged import _Deviation, bound_multipliers
from ._sweeps import input_drive, layer_residuals, layer_sums, run_sweeps, sweep


class BlockCoordinateDescent(AbstractSolver):
    """Exact layered block coordinate descent for [`LayeredNetwork`][kirchhoff.LayeredNetwork].

    Conductances join adjacent layers only, so given its neighbours each layer's nodes are
    independent: a sweep updates the odd layers, then the even ones, each node to its exact
    minimiser (a clip for ideal diodes, a scalar Newton solve for Shockley diodes).
    With ``n_sweeps`` set, runs exactly that many sweeps (training mode, as Scellier's 4);
    otherwise sweeps until the KCL residual is below tolerance or ``max_steps`` sweeps.
    Nudged phases ([`solve_nudged`][kirchhoff.AbstractSolver.solve_nudged]) are swept in the
    deviation from the free phase.

    Construct it with the fields below as keyword arguments, each optional (e.g.
    ``BlockCoordinateDescent(n_sweeps=4)``); they are static, so a new setting is a new
    compilation.

    Attributes:
        max_steps: The most sweeps per example when ``n_sweeps`` is None; past them the
            status is MAX_STEPS.
        atol: Absolute KCL tolerance per node, amperes.
        rtol: KCL tolerance relative to the currents that meet at each node (the nudge's
            included); raised to 4 machine epsilons of the dtype where it asks for less.
        throw: Raise [`NotConvergedError`][kirchhoff.NotConvergedError] from a solve where
            an example's status is not SUCCESS (default: report it in the status only).
        vtol: Potentials must be pinned within ``vtol``·(the largest |potential|) by a
            first-order error bound for SUCCESS (else ILL_CONDITIONED); at least 32 ulps of
            the dtype; None skips the check. As for every solver, but checked only up to
            512 free nodes: the bound needs the dense layered Hessian (by autodiff), too
            costly per example beyond that.
        n_sweeps: Exactly this many sweeps per solve (an integer ≥ 1), the status then
            judging where they got to; None (the default) sweeps to the tolerance.

    Raises:
        ValueError: A setting out of its range (here, at construction); from a solve, a
            circuit that is not a LayeredNetwork, or
            ([`InvalidInputError`][kirchhoff.InvalidInputError]) a network whose weights are
            a device's state rather than conductances (pass ``net.read(key)``).
    """

    max_steps: int = eqx.field(static=True, default=5000)
    atol: float = eqx.field(static=True, default=1e-12)
    rtol: float = eqx.field(static=True, default=1e-12)
    throw: bool = eqx.field(static=True, default=False)
    vtol: float | None = eqx.field(static=True, default=1e-6)
    # checked up to 512 free nodes only (see the class docstring)
    n_sweeps: int | None = eqx.field(static=True, default=None)

    def _check_circuit(self, circuit):
        if not isinstance(circuit, LayeredNetwork):
            raise ValueError(
                "BlockCoordinateDescent solves LayeredNetwork models; for a general Circuit use "
                "DampedNewton, LBFGS or BoxQP (or build the network with kirchhoff.drn)."
            )
        circuit.require_read("BlockCoordinateDescent")

    def optimality(self, circuit, free, inputs, target, beta):
        """The layers' KCL residuals, joined: zero at equilibrium. One example, shape
        ``(n_free,)``, as for [`AbstractSolver.optimality`][kirchhoff.AbstractSolver.optimality]."""
        layers = [inputs, *circuit.split(free)]
        return circuit.join(
            layer_residuals(circuit, layers, input_drive(circuit, inputs), target, beta)
        )

    def _bounds_potentials(self, circuit):
        return self.vtol is not None and circuit.n_free <= 512

    def linear_solve(self, circuit):
        """The linear solver for implicit differentiation: dense LU up to 512 free nodes,
        GMRES (tolerance 1e-10, at most 500 iterations) beyond."""
        if circuit.n_free <= 512:
            return linear_solve.solve_lu
        return functools.partial(linear_solve.solve_gmres, tol=1e-10, maxiter=500)

    def _run(self, circuit, init, inputs, target, beta):
        drive = input_drive(circuit, inputs)
        layers = [inputs, *circuit.split(init)]
        if self.n_sweeps is not None:
            layers = run_sweeps(circuit, layers, drive, target, beta, self.n_sweeps)
            return circuit.join(layers[1:]), (jnp.array(self.n_sweeps), jnp.array(0.0))
        sums = layer_sums(circuit)

        def ratio(free_layers):
            r = layer_residuals(circuit, [inputs, *free_layers], drive, target, beta, sums)
            err = jnp.abs(circuit.join(r))
            tol = self.tolerance(circuit, circuit.join(free_layers), inputs, target, beta)
            return _max_ratio(err, tol)

        def step(free_layers):
            return sweep(circuit, [inputs, *free_layers], drive, target, beta, sums)[1:]

        n, free_layers, r = iterate_until_converged(step, ratio, layers[1:], self.max_steps)
        return circuit.join(free_layers), (n, r)

    def _solve_nudged_one(self, circuit, inputs, target, beta, free0):
        inputs = circuit.validate(inputs)
        free0 = jax.lax.stop_gradient(free0)
        drive = input_drive(circuit, inputs)
        sums = layer_sums(circuit)
        problem = DeviationProblem.at_free_state(
            circuit, [inputs, *circuit.split(free0)], drive, target, beta, sums
        )
        zeros = [jnp.zeros_like(v) for v in problem.free[1:]]
        if self.n_sweeps is not None:
            deltas = problem.run(zeros, self.n_sweeps)
            n = jnp.array(self.n_sweeps)
        else:
            ratio = lambda d: _max_ratio(problem.error(d), problem.tolerance(self, d))
            n, deltas, _ = iterate_until_converged(problem.sweep, ratio, zeros, self.max_steps)
        err = problem.error(deltas)
        scale = problem.current_scale(deltas)
        tol = self.atol + self.effective_rtol(err.dtype) * scale
        delta = circuit.join(deltas)
        status = _status(delta, err, tol, beta)
        # the same deviation problem as the general solvers see, for the potentials' bound
        general = _Deviation(circuit, free0, bound_multipliers(circuit, free0, inputs))
        shifted = target - circuit.output_potentials(free0, inputs)
        status = self._flag_ill_conditioned(
            general, delta, inputs, shifted, beta, err, scale, status
        )
        return Equilibrium(
            free=free0 + delta,
            status=status,
            n_steps=n,
            residual=jnp.max(err, initial=0.0),
            deviation=delta,
        )
