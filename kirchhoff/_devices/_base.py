"""The device seam: how trainable state becomes conductance, and how an update is written back.

Every conductance a layered network's phases use is ``device.read(state, key)`` of its
trainable state, and every update goes back through ``device.program(state, update, key)``:
the one place where a real device's behaviour (discrete levels, read and write noise, a
nonlinear or asymmetric pulse response, a measured table) enters, inside every phase and in
every update. The ideal device reads the state as it is and writes by adding the update and
clipping to the physical range [0, g_max].

What differs from one physical device to the next (device-to-device variation, stuck cells)
is fixed when the network is built: ``AbstractDevice.sample_cells`` draws it once per weight
array, from the device's own ``seed``, and the network keeps it beside the weights and passes
it back as ``cells`` to every read and write.
"""

import equinox as eqx
import jax.numpy as jnp

from .._custom_types import Array, Float


class AbstractDevice(eqx.Module):
    """A programmable conductance: how a trainable state becomes conductance, and how an update
    is written back to it.

    Every conductance a [`LayeredNetwork`][kirchhoff.LayeredNetwork]'s phases use is
    ``device.read(state, key)`` of its trainable state, and every update goes back through
    ``device.program(state, update, key)``: the one place where a real device's behaviour
    (discrete levels, read and write noise, a nonlinear or asymmetric pulse response, a measured
    table) enters. What differs from one physical device to the next (device-to-device
    variation, stuck cells) is drawn once, when the network is built, by ``sample_cells``; the
    network keeps it beside the weights and passes it back as ``cells`` to every read and write.

    A subclass must provide ``read`` and ``program``, acting elementwise on arrays of states of
    any shape (``key`` is a JAX PRNG key, or None, for devices with noise; ``cells`` is what
    ``sample_cells`` drew for this array, None for a device without variation). It may override
    ``sample_cells`` and ``initial_state`` (by default: no variation, the state is the given
    conductance), ``is_identity_read`` and ``noisy_read``.
    See [`IdealDevice`][kirchhoff.IdealDevice] and [`PulsedDevice`][kirchhoff.PulsedDevice].
    """

    def read(self, state: Float[Array, "..."], key=None, cells=None) -> Float[Array, "..."]:
        """The conductances that the state presents to the circuit.

        Args:
            state: The devices' states, any shape.
            key: A JAX PRNG key for read noise, or None (no noise is drawn).
            cells: What ``sample_cells`` drew for this array, or None.

        Returns:
            The conductances (siemens), shaped like ``state``.
        """
        raise NotImplementedError

    def program(
        self, state: Float[Array, "..."], update: Float[Array, "..."], key=None, cells=None
    ):
        """The state after writing ``update`` to it.

        Args:
            state: The devices' states, any shape.
            update: The change of conductance asked for (an optimiser's step, siemens),
                shaped like ``state``.
            key: A JAX PRNG key for write noise or stochastic rounding, or None.
            cells: What ``sample_cells`` drew for this array, or None.

        Returns:
            The new states, shaped like ``state``.
        """
        raise NotImplementedError

    def sample_cells(self, shape: tuple[int, ...], index: int):
        """The fixed per-device parameters of an array of ``shape`` devices (the ``index``-th
        weight array of a network), or None when every device is alike (the default).

        Args:
            shape: The shape of the weight array.
            index: Its position among the network's weight arrays (each array draws its own).

        Returns:
            A pytree of arrays of ``shape`` that ``read`` and ``program`` take as ``cells``,
            or None.
        """
        del shape, index
        return None

    def initial_state(self, conductance, cells=None):
        """The state nearest to the given initial conductances that the device can hold
        (default: the conductances themselves).

        Args:
            conductance: The wanted conductances (siemens), any shape.
            cells: What ``sample_cells`` drew for this array, or None.

        Returns:
            The states, shaped like ``conductance``.
        """
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
    """A perfect memristor: the state is the conductance. A read returns it exactly; a write
    adds the update and clips to [0, ``g_max``]. The default device of a
    [`LayeredNetwork`][kirchhoff.LayeredNetwork].

    Construct it as ``IdealDevice()`` or ``IdealDevice(g_max=...)``.

    Attributes:
        g_max: The largest conductance a write may reach (siemens, > 0), or None (the
            default) for no upper limit.

    Raises:
        ValueError: If ``g_max`` is not positive.
    """

    g_max: float | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.g_max is not None and not self.g_max > 0:
            raise ValueError(f"IdealDevice: g_max must be positive or None, not {self.g_max}.")

    def read(self, state, key=None, cells=None):
        """The conductances: ``state`` itself (siemens; ``key`` and ``cells`` are ignored)."""
        del key, cells
        return state

    def program(self, state, update, key=None, cells=None):
        """``state + update`` clipped to [0, ``g_max``] (siemens; ``key`` and ``cells`` are
        ignored)."""
        del key, cells
        return jnp.clip(state + update, 0.0, self.g_max)

    @property
    def is_identity_read(self) -> bool:
        """True: ``read`` returns the state unchanged."""
        return True
