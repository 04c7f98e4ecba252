"""Checks of a solve's settings and of β, shared by every solver and by EqProp."""

import jax
import numpy as np

from .._custom_types import check_real_dtype


def check_beta(beta, positive: bool = False, who: str = "kirchhoff") -> None:
    """Raise on a β that is not a real scalar (TypeError for complex, string or bool values),
    or, when concrete, not finite (or, with ``positive``, not > 0); a traced β is checked
    inside instead, by a NONFINITE status."""
    check_real_dtype(beta, f"{who}: beta")
    if np.ndim(beta) != 0:
        raise ValueError(f"{who}: beta must be a scalar, got shape {np.shape(beta)}.")
    if isinstance(beta, jax.core.Tracer):
        return
    value = float(np.asarray(beta))
    if not np.isfinite(value) or (positive and not value > 0):
        need = "finite and positive" if positive else "finite"
        raise ValueError(f"{who}: beta must be {need}, got {value}.")


def check_settings(solver) -> None:
    """ValueError naming a solver setting out of its range (called by every constructor)."""
    who = type(solver).__name__
    counts = (
        "max_steps",
        "n_halvings",
        "history_size",
        "n_sweeps",
        "dense_limit",
        "cg_max_steps",
        "block_elements",
    )
    for name in (*counts, "atol", "rtol", "vtol", "throw", "cg_rtol"):
        if not hasattr(solver, name):
            continue
        v = getattr(solver, name)
        if name == "throw":
            ok, need = isinstance(v, bool | np.bool_), "True or False"
        elif v is None and name in ("vtol", "n_sweeps", "cg_max_steps", "block_elements"):
            continue
        elif name in counts:
            ok = isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1
            optional = name in ("n_sweeps", "cg_max_steps", "block_elements")
            need = "an integer ≥ 1" + (" (or None)" if optional else "")
        else:
            real = isinstance(v, int | float | np.integer | np.floating)
            ok = real and not isinstance(v, bool) and bool(np.isfinite(v) and v >= 0)
            need = "a finite number ≥ 0" + (" (or None)" if name == "vtol" else "")
        if not ok:
            raise ValueError(f"{who}: `{name}` = {v!r}; it must be {need}.")
