"""The device seam: how trainable state becomes conductance, and how an update is written back.

Every conductance a layered network's phases use is ``device.read(state, key)`` of its
trainable state, and every update goes back through ``device.program(state, update, key)``:
the one place where a real device's behaviour (discrete levels, read and write noise, a
nonlinear or asymmetric pulse response, a measured table) enters, inside every phase and in
every update. The ideal device reads the state as it is and writes by adding the update and
clipping to the physical range [0, g_max].
"""

import equinox as eqx
import jax.numpy as jnp

from ._custom_types import Array, Float


class AbstractDevice(eqx.Module):
    """A programmable conductance. ``read`` and ``program`` act elementwise on arrays of
    states; ``key`` is a JAX PRNG key (or None) for devices with noise."""

    def read(self, state: Float[Array, "..."], key=None) -> Float[Array, "..."]:
        """The conductances (siemens) that the state presents to the circuit."""
        raise NotImplementedError

    def program(self, state: Float[Array, "..."], update: Float[Array, "..."], key=None):
        """The state after writing ``update`` (an optimiser's step, in siemens) to it."""
        raise NotImplementedError

    @property
    def is_identity_read(self) -> bool:
        """Whether ``read`` returns the state unchanged (lets callers skip a copy)."""
        return False


class IdealDevice(AbstractDevice):
    """A perfect memristor: reads its state exactly; a write adds the update and clips to
    [0, ``g_max``] (no upper limit when ``g_max`` is None)."""

    g_max: float | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.g_max is not None and not self.g_max > 0:
            raise ValueError(f"IdealDevice: g_max must be positive or None, not {self.g_max}.")

    def read(self, state, key=None):
        del key
        return state

    def program(self, state, update, key=None):
        del key
        return jnp.clip(state + update, 0.0, self.g_max)

    @property
    def is_identity_read(self) -> bool:
        return True
