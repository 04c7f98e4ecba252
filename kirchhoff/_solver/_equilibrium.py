"""What a solve returns: potentials with a per-example ``Status`` and residual."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._custom_types import Array, Float, Int


class Status(eqx.Enumeration):
    """Per-example outcome of a solve or a training phase.

    An ``eqx.Enumeration``: compare with ``eq.status == Status.SUCCESS`` (a bool per example;
    [`Equilibrium.converged`][kirchhoff.Equilibrium.converged] is the same), choose per
    example with ``jnp.where(eq.converged, …)``, read the words with ``Status[item]`` or
    [`Equilibrium.messages`][kirchhoff.Equilibrium.messages]. Each member's value below is
    those words. Only SUCCESS is a result to trust; DISCONNECTED and INFEASIBLE name a
    cause in the circuit itself and take precedence over the others."""

    SUCCESS = "converged"
    MAX_STEPS = "did not converge within the step budget"
    NONFINITE = "produced a NaN or infinite potential (or beta was not finite and positive)"
    ILL_CONDITIONED = (
        "KCL holds to round-off, but the circuit is too ill-conditioned for its dtype to pin "
        "the potentials within vtol; solve it in float64"
    )
    DISCONNECTED = (
        "a sub-network is cut off from every held node by open elements (zero "
        "conductances), so its potentials are undefined; give those conductances a positive "
        "value (Circuit.cut_off() marks the free nodes cut off)"
    )
    INFEASIBLE = (
        "the ideal diodes contradict: some node's lower bound is above its upper bound, so no "
        "potential satisfies them (check the diodes' orientation, rails and inputs)"
    )


def select_status(pred, a: Status, b: Status) -> Status:
    """Elementwise ``a`` where ``pred``, else ``b`` (``Status.where`` takes only a scalar
    predicate; training phases are batched without vmap)."""
    return jax.tree.map(lambda x, y: jnp.where(pred, x, y), a, b)


def status_messages(status) -> list[str]:
    """Host side: each example's ``Status`` as words (a list, batched or not)."""
    codes = np.atleast_1d(np.asarray(status._value))
    return [Status._index_to_message[int(c)] for c in codes.ravel()]


class Equilibrium(eqx.Module):
    """The outcome of an equilibrium solve, every field batched like the inputs.

    Returned by [`AbstractSolver.solve`][kirchhoff.AbstractSolver.solve] and
    [`AbstractSolver.solve_nudged`][kirchhoff.AbstractSolver.solve_nudged], and as the
    phases of [`EqPropResult`][kirchhoff.EqPropResult] and the layered learning rules. The
    shapes below are for inputs of shape ``(batch, n_inputs)``; for one example of shape
    ``(n_inputs,)`` the batch axis is absent (``free`` is ``(n_free,)``, the rest scalars).

    Attributes:
        free: The free nodes' potentials, volts, shape ``(batch, n_free)``, in the circuit's
            order of free nodes. For a nudged phase, the nudged potentials v^β = v⁰ + δ.
        status: The [`Status`][kirchhoff.Status] of each example, shape ``(batch,)``:
            SUCCESS only where every node's KCL residual is within the solver's tolerance
            and the potentials are pinned within ``vtol``.
        n_steps: Iterations each example took (int, shape ``(batch,)``): Newton steps,
            L-BFGS iterations, QP or block-coordinate sweeps; for a training phase run for
            a fixed number of sweeps, that number.
        residual: Max |KCL residual| over the free nodes, amperes, shape ``(batch,)``; the
            projected optimality residual with ideal diodes. For a nudged phase, that of
            the deviation problem (the free phase's own residual left out); for a training
            phase, a certified bound where it suffices, else the exact value.
        deviation: For a nudged phase, ``free`` minus the free phase's potentials, δ = v^β −
            v⁰, volts, shape ``(batch, n_free)``, solved for as its own variable (so accurate
            relative to itself, far below the potentials' round-off); None for a free
            phase.
    """

    free: Float[Array, "*batch free"]
    status: Status  # per example
    n_steps: Int[Array, "*batch"]
    residual: Float[Array, "*batch"]
    # amperes; projected optimality residual with ideal diodes (see the class docstring)
    deviation: Float[Array, "*batch free"] | None = None
    # nudged phases only: free − the free phase's potentials

    @property
    def converged(self):
        """Per example, whether ``status`` is SUCCESS: a bool array shaped like ``residual``."""
        return self.status == Status.SUCCESS

    def messages(self) -> list[str]:
        """Host side: each example's status as words.

        Returns:
            A list of strings, one per example (one entry for an unbatched solve), the
            [`Status`][kirchhoff.Status] member's message ("converged" for SUCCESS).
        """
        return status_messages(self.status)


class NotConvergedError(RuntimeError):
    """Raised when a solve or a training phase did not reach a trusted answer.

    [`AbstractSolver.solve`][kirchhoff.AbstractSolver.solve] and
    [`AbstractSolver.solve_nudged`][kirchhoff.AbstractSolver.solve_nudged] raise it, called
    from the host with ``throw=True``, where any example's status is not SUCCESS (under an
    outer ``jit`` the check runs inside the graph and raises Equinox's runtime error
    instead); [`train`][kirchhoff.train] raises it when a phase of a training step did not
    converge under [`TrainConfig`][kirchhoff.TrainConfig]'s default
    ``on_unconverged="error"``. The message names the examples and their
    statuses (and, in training, the step and the phase)."""
