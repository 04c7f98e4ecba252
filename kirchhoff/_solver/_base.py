"""The equilibrium-solver interface: a solve returns potentials plus per-example status."""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .._circuit import AbstractCircuit
from .._cost import squared_error
from .._custom_types import Array, Float, Int
from ._jaxopt import implicit_diff, linear_solve


class Status:
    """Per-example outcome codes of a solve."""

    SUCCESS: ClassVar[int] = 0
    MAX_STEPS: ClassVar[int] = 1
    NONFINITE: ClassVar[int] = 2
    messages: ClassVar[dict[int, str]] = {
        0: "converged",
        1: "did not converge within the step budget",
        2: "produced a NaN or infinite potential",
    }


class Equilibrium(eqx.Module):
    """The outcome of an equilibrium solve (every field batched like the inputs)."""

    free: Float[Array, "*batch free"]
    status: Int[Array, "*batch"]
    n_steps: Int[Array, "*batch"]
    residual: Float[Array, "*batch"]
    """Max |KCL residual| (amps) over free nodes; projected optimality residual with ideal diodes."""

    @property
    def converged(self):
        return self.status == Status.SUCCESS


class NotConvergedError(RuntimeError):
    pass


def _nudged_energy(circuit: AbstractCircuit, free, inputs, target, beta):
    e = circuit.energy(free, inputs)
    return e + beta * squared_error(circuit.output_potentials(free, inputs), target)


def _nudged_hessian(circuit: AbstractCircuit, free, inputs, target, beta):
    cost = lambda z: beta * squared_error(circuit.output_potentials(z, inputs), target)
    return circuit.energy_hessian(free, inputs) + jax.hessian(cost)(free)


class AbstractSolver(eqx.Module):
    """Finds the minimiser of ``E + beta·C`` over the free potentials, batched and jit-compiled,
    differentiable implicitly (jaxopt's custom_root on the optimality condition)."""

    max_steps: eqx.AbstractVar[int]
    atol: eqx.AbstractVar[float]
    rtol: eqx.AbstractVar[float]
    throw: eqx.AbstractVar[bool]

    @abc.abstractmethod
    def _run(self, circuit, init, inputs, target, beta) -> tuple[Array, tuple[Array, Array]]:
        """One example: returns (free potentials, (n_steps, reached)) — no implicit diff here."""

    def _check_circuit(self, circuit: AbstractCircuit) -> None:
        del circuit

    def optimality(self, circuit, free, inputs, target, beta):
        """Zero at equilibrium: the gradient of the nudged energy (smooth circuits)."""
        return jax.grad(_nudged_energy, argnums=1)(circuit, free, inputs, target, beta)

    def residual(self, circuit, free, inputs, target, beta) -> Float[Array, ""]:
        """Max KCL residual in amperes."""
        g = self.optimality(circuit, free, inputs, target, beta)
        return jnp.max(jnp.abs(g / circuit.node_weight_free()), initial=0.0)

    def tolerance(self, circuit, free, inputs) -> Float[Array, ""]:
        """atol + rtol·(a current scale of the circuit at ``free``) in amperes."""
        # the scale is taken at the given point, not at zero potentials: there a diode facing
        # a volt-sized input is far into forward bias and its conductance is absurdly large
        h = circuit.energy_hessian(free, inputs)
        g_scale = jnp.max(jnp.abs(jnp.diag(h)) / circuit.node_weight_free(), initial=0.0)
        v_scale = jnp.maximum(
            jnp.max(jnp.abs(inputs), initial=0.0), jnp.max(jnp.abs(free), initial=0.0)
        )
        eps = jnp.finfo(free.dtype).eps
        rtol = jnp.maximum(self.rtol, 64 * eps)
        return self.atol + rtol * g_scale * jnp.maximum(v_scale, 1.0)

    def linear_solve(self, circuit):
        """The linear solver for implicit differentiation (dense LU: exact, small circuits)."""
        del circuit
        return linear_solve.solve_lu

    def init_free(self, circuit, inputs):
        lo, hi = circuit.free_bounds(inputs)
        return jnp.clip(jnp.zeros(circuit.n_free, jnp.result_type(float)), lo, hi)

    def solve(
        self,
        circuit: AbstractCircuit,
        inputs,
        target=None,
        beta=0.0,
        init=None,
    ) -> Equilibrium:
        """Equilibrium of ``circuit`` for ``inputs`` of shape (n_inputs,) or (batch, n_inputs),
        nudged by ``beta·½‖v_out − target‖²`` when beta ≠ 0; ``init`` warm-starts it."""
        self._check_circuit(circuit)
        check = getattr(circuit, "check_inputs_shape", None)
        if check is not None:
            check(inputs)
        inputs = jnp.asarray(inputs, dtype=jnp.result_type(float))
        batched = inputs.ndim == 2
        if target is None:
            target = jnp.zeros((*inputs.shape[:-1], circuit.n_outputs), inputs.dtype)
        target = jnp.asarray(target, inputs.dtype)
        if target.shape != (*inputs.shape[:-1], circuit.n_outputs):
            raise ValueError(
                f"kirchhoff: target has shape {target.shape}; expected "
                f"{(*inputs.shape[:-1], circuit.n_outputs)} for inputs of shape {inputs.shape}."
            )
        if init is None:
            # zeros (clipped into the diode bounds in _solve_one): always passing an array
            # lets a cold and a warm-started solve share one compilation
            init = jnp.zeros((*inputs.shape[:-1], circuit.n_free), inputs.dtype)
        init = jnp.asarray(init, inputs.dtype)
        if init.shape != (*inputs.shape[:-1], circuit.n_free):
            raise ValueError(
                f"kirchhoff: init has shape {init.shape}; expected "
                f"{(*inputs.shape[:-1], circuit.n_free)}."
            )
        return _solve_jit(
            self, circuit, inputs, target, jnp.asarray(beta, inputs.dtype), init, batched
        )

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
        free_ng = jax.lax.stop_gradient(free)
        res = self.residual(circuit, free_ng, inputs, target, beta)
        tol = self.tolerance(circuit, free_ng, inputs)
        status = jnp.where(
            ~jnp.all(jnp.isfinite(free_ng)) | ~jnp.isfinite(res),
            Status.NONFINITE,
            jnp.where(res <= tol, Status.SUCCESS, Status.MAX_STEPS),
        )
        if self.throw:
            free = eqx.error_if(
                free,
                status != Status.SUCCESS,
                "kirchhoff: the equilibrium solve did not converge (residual above tolerance "
                "or non-finite potentials); raise max_steps, loosen atol/rtol, or check the "
                "circuit's parameters.",
            )
        return Equilibrium(free=free, status=status, n_steps=n_steps, residual=res)


@eqx.filter_jit
def _solve_jit(solver, circuit, inputs, target, beta, init, batched):
    if batched:
        return jax.vmap(solver._solve_one, in_axes=(None, 0, 0, None, 0))(
            circuit, inputs, target, beta, init
        )
    return solver._solve_one(circuit, inputs, target, beta, init)
