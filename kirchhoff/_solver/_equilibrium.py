"""What a solve returns: potentials with a per-example :class:`Status` and residual."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._custom_types import Array, Float, Int


class Status(eqx.Enumeration):
    """Per-example outcome of a solve or a training phase (an ``eqx.Enumeration``: compare
    with ``eq.status == Status.SUCCESS``, choose per example with :func:`select_status`,
    read the words with ``Status[item]`` or :meth:`Equilibrium.messages`)."""

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
    """Host side: each example's :class:`Status` as words (a list, batched or not)."""
    codes = np.atleast_1d(np.asarray(status._value))
    return [Status._index_to_message[int(c)] for c in codes.ravel()]


class Equilibrium(eqx.Module):
    """The outcome of an equilibrium solve (every field batched like the inputs)."""

    free: Float[Array, "*batch free"]
    status: Status  # per example
    n_steps: Int[Array, "*batch"]
    residual: Float[Array, "*batch"]
    """Max |KCL residual| (amps) over free nodes; projected optimality residual with ideal diodes."""
    deviation: Float[Array, "*batch free"] | None = None
    """For a nudged phase, ``free`` minus the free phase's potentials, solved for as its own
    variable (so accurate relative to itself, far below the potentials' round-off)."""

    @property
    def converged(self):
        return self.status == Status.SUCCESS

    def messages(self) -> list[str]:
        """Host side: each example's status as words."""
        return status_messages(self.status)


class NotConvergedError(RuntimeError):
    """A solve (``throw=True``) or a training phase did not reach its tolerance; the message
    names the examples (and, in training, the step and the phase)."""
