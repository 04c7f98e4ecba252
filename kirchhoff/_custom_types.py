"""Shape-annotated array aliases shared across kirchhoff."""

from collections.abc import Hashable
from typing import TypeAlias

from jaxtyping import Array, ArrayLike, Bool, Float, Int

NodeRef: TypeAlias = Hashable
"""A node is named by any hashable: a string such as ``"gnd"`` or an integer."""

Scalar: TypeAlias = Float[Array, ""]
FreePotentials: TypeAlias = Float[Array, " free"]
Potentials: TypeAlias = Float[Array, " nodes"]
Inputs: TypeAlias = Float[Array, " inputs"]
Targets: TypeAlias = Float[Array, " outputs"]
BatchInputs: TypeAlias = Float[Array, "batch inputs"]
BatchTargets: TypeAlias = Float[Array, "batch outputs"]

__all__ = [
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
