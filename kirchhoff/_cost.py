"""Costs on output potentials; the nudged phases add ``beta * cost`` to the energy."""

import jax
import jax.numpy as jnp

from ._custom_types import Array, Float, Scalar


def squared_error(
    outputs: Float[Array, "*batch outputs"], target: Float[Array, "*batch outputs"]
) -> Scalar:
    """``C = ½‖v_out − y‖²`` (volts²) over the last axis: a scalar for one example, one value
    per example for a batch. The one definition of the cost; everything else calls it."""
    return 0.5 * jnp.sum((outputs - target) ** 2, axis=-1)


def mean_cost(circuit, free, inputs, targets) -> Scalar:
    """The cost of a circuit's output potentials at ``free``: for a batch (2-D inputs), the
    mean of :func:`squared_error` over the examples."""
    if inputs.ndim == 2:
        out = jax.vmap(circuit.output_potentials)(free, inputs)
        return jnp.mean(squared_error(out, targets))
    return squared_error(circuit.output_potentials(free, inputs), targets)
