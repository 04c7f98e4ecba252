"""Shape-annotated array aliases shared across kirchhoff."""

from collections.abc import Hashable, Sequence
from typing import TypeAlias

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

NodeRef: TypeAlias = Hashable
"""A node is named by a ``str`` (``"gnd"``), an ``int`` (numpy integers become ints) or a
tuple of these (``("h", 3)``). Bools and floats are refused: ``True == 1 == 1.0`` would make
them one node with the int."""

Scalar: TypeAlias = Float[Array, ""]
FreePotentials: TypeAlias = Float[Array, " free"]
Potentials: TypeAlias = Float[Array, " nodes"]
Inputs: TypeAlias = Float[Array, " inputs"]
Targets: TypeAlias = Float[Array, " outputs"]
BatchInputs: TypeAlias = Float[Array, "batch inputs"]
BatchTargets: TypeAlias = Float[Array, "batch outputs"]


def node_name(n) -> NodeRef:
    """``n`` as a node name: a str, an int or a tuple of them (numpy scalars become Python
    ones); TypeError for anything else, bools and floats above all (``True == 1 == 1.0``)."""
    if isinstance(n, np.generic):
        n = n.item()
    if isinstance(n, tuple):
        try:
            return tuple(node_name(x) for x in n)
        except TypeError as error:
            raise TypeError(f"kirchhoff: node name {n!r}: {error}") from None
    if isinstance(n, bool) or not isinstance(n, str | int):
        raise TypeError(
            f"kirchhoff: node name {n!r} is a {type(n).__name__}; name nodes by str, int or "
            "tuples of them (a bool or a float would be the same node as an equal int)."
        )
    return n


def as_names(nodes: NodeRef | Sequence[NodeRef]) -> tuple[NodeRef, ...]:
    """One node name (a str or an int) or a sequence (or array) of them, as a tuple of names."""
    if isinstance(nodes, str | int | np.generic):
        return (node_name(nodes),)
    if isinstance(nodes, np.ndarray):
        return tuple(node_name(n) for n in nodes.reshape(-1))
    if isinstance(nodes, Sequence):
        return tuple(node_name(n) for n in nodes)
    return (node_name(nodes),)


def check_real_dtype(x, what: str):
    """The dtype of ``x`` (an array, a scalar or nested lists); TypeError naming ``what`` and
    the dtype unless it holds real numbers (ints or floats): complex, string, bool and object
    values are refused rather than cast (a cast would drop an imaginary part silently)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(x).dtype
        except (TypeError, ValueError) as error:
            raise TypeError(f"{what} is not an array of numbers ({error}).") from None
    real = jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    if not real or dtype == np.bool_:
        raise TypeError(
            f"{what} has dtype {dtype}; give real numbers (floats or ints): "
            "complex, string, bool and object values are not cast."
        )
    return dtype


__all__ = [
    "as_names",
    "check_real_dtype",
    "node_name",
    "Array",
    "ArrayLike",
    "Bool",
    "Float",
    "Int",
    "NodeRef",
    "Scalar",
    "FreePotentials",
    "Potentials",
    "Inputs",
    "Targets",
    "BatchInputs",
    "BatchTargets",
]
