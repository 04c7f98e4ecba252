"""Costs on output potentials; the nudged phases add ``beta * cost`` to the energy."""

import jax.numpy as jnp

from ._custom_types import Array, Float, Scalar


def squared_error(outputs: Float[Array, " outputs"], target: Float[Array, " outputs"]) -> Scalar:
    """``C = ½‖v_out − y‖²`` (volts²)."""
    return 0.5 * jnp.sum((outputs - target) ** 2)
