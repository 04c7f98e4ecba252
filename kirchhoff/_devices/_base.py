"""The device seam: how trainable state becomes conductance, and how an update is written back.

Every conductance a layered network's phases use is ``device.read(state, key)`` of its
trainable state, and every update goes back through ``device.program(state, update, key)``:
the one place where a real device's behaviour (discrete levels, read and write noise, a
nonlinear or asymmetric pulse response, a measured table) enters, inside every phase and in
every update. The ideal device reads the state as it is and writes by adding the update and
clipping to the physical range [0, g_max].

What differs from one physical device to the next (device-to-device variation, stuck cells)
is fixed when the network is built: :meth:`AbstractDevice.sample_cells` draws it once per
weight array, from the device's own ``seed``, and the network keeps it beside the weights and
passes it back as ``cells`` to every read and write.
"""

import equinox as eqx
import jax.numpy as jnp

from .._custom_types import Array, Float


class AbstractDevice(eqx.Module):
    """A programmable conductance. ``read`` and ``program`` act elementwise on arrays of
    states; ``key`` is a JAX PRNG key (or None) for devices with noise; ``cells`` what
    :meth:`sample_cells` drew for this array (None for a device without variation)."""

    def read(self, state: Float[Array, "..."], key=None, cells=None) -> Float[Array, "..."]:
        """The conductances (siemens) that the state presents to the circuit."""
        raise NotImplementedError

    def program(
        self, state: Float[Array, "..."], update: Float[Array, "..."], key=None, cells=None
    ):
        """The state after writing ``update`` (an optimiser's step, in siemens) to it."""
        raise NotImplementedError

    def sample_cells(self, shape: tuple[int, ...], index: int):
        """The fixed per-device parameters of an array of ``shape`` devices (the ``index``-th
        array of a network), or None when every device is alike (the default)."""
        del shape, index
        return None

    def initial_state(self, conductance, cells=None):
        """The state nearest to the given initial conductances that the device can hold
        (default: the conductances themselves)."""
        del cells
        return conductance

    @property
    def is_identity_read(self) -> bool:
        """Whether ``read`` returns the state unchanged (lets callers skip a copy)."""
        return False

    @property
    def noisy_read(self) -> bool:
        """Whether two reads of one state differ (read noise): the phases of one training
        step then each read the conductances afresh."""
        return False


class IdealDevice(AbstractDevice):
    """A perfect memristor: reads its state exactly; a write adds the update and clips to
    [0, ``g_max``] (no upper limit when ``g_max`` is None)."""

    g_max: float | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.g_max is not None and not self.g_max > 0:
            raise ValueError(f"IdealDevice: g_max must be positive or None, not {self.g_max}.")

    def read(self, state, key=None, cells=None):
        del key, cells
        return state

    def program(self, state, update, key=None, cells=None):
        del key, cells
        return jnp.clip(state + update, 0.0, self.g_max)

    @property
    def is_identity_read(self) -> bool:
        return True
