"""Checks of the values given to the layered models, their learning rules and training, made
before anything is computed: each raises ``InvalidInputError`` (a ValueError) or
``InvalidInputTypeError`` (also a TypeError) naming the argument and the offending value.

Array checks look at shapes and dtypes (known while tracing, so free inside ``jit``) and at
values only when the array is concrete: a traced value is never pulled to the host."""

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from .._data._errors import InvalidInputError, InvalidInputTypeError


def is_traced(x) -> bool:
    """Whether ``x`` is a JAX tracer (its value unknown until the computation runs)."""
    return isinstance(x, jax.core.Tracer)


def _is_real_scalar(value) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, numbers.Real):
        return True
    dtype = getattr(value, "dtype", None)
    return (
        getattr(value, "shape", None) == ()
        and dtype is not None
        and (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer))
    )


def check_real(who: str, name: str, value, *, above=None, at_least=None, finite=True):
    """``value``, checked to be a real number (finite unless ``finite=False``), > ``above``
    and ≥ ``at_least`` where given. A traced value passes unchecked."""
    if is_traced(value):
        return value
    if not _is_real_scalar(value):
        raise InvalidInputTypeError(
            f"{who}: {name} must be a real number; got {value!r} ({type(value).__name__})."
        )
    v = float(value)
    if math.isnan(v) or (finite and math.isinf(v)):
        raise InvalidInputError(f"{who}: {name} must be a finite number; got {v}.")
    if above is not None and not v > above:
        raise InvalidInputError(f"{who}: {name} must be > {above:g}; got {v:g}.")
    if at_least is not None and not v >= at_least:
        raise InvalidInputError(f"{who}: {name} must be ≥ {at_least:g}; got {v:g}.")
    return value


def check_int(who: str, name: str, value, *, at_least=None, below=None) -> int:
    """``value`` as a Python int, checked to be an integer ≥ ``at_least`` and < ``below``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise InvalidInputTypeError(
            f"{who}: {name} must be an integer; got {value!r} ({type(value).__name__})."
        )
    v = int(value)
    if at_least is not None and v < at_least:
        raise InvalidInputError(f"{who}: {name} must be ≥ {at_least}; got {v}.")
    if below is not None and v >= below:
        raise InvalidInputError(f"{who}: {name} must be < {below}; got {v}.")
    return v


def check_choice(who: str, name: str, value, choices):
    """``value``, checked to be one of ``choices``."""
    if not isinstance(value, str | type(None)) or value not in choices:
        raise InvalidInputError(
            f"{who}: unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}."
        )
    return value


def check_finite(who: str, name: str, x) -> None:
    """Raise unless every entry of the (concrete) array ``x`` is finite, naming the first
    bad entry; a traced array is not checked."""
    if is_traced(x):
        return
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        return
    a = np.asarray(x)
    ok = np.isfinite(a)
    if not np.all(ok):
        bad = np.argwhere(~ok)
        first = tuple(int(i) for i in bad[0])
        raise InvalidInputError(
            f"{who}: {name} holds {len(bad)} NaN or infinite value(s); the first, at index "
            f"{first}, is {a[first]}."
        )


def check_array(who: str, name: str, x, *, ndims, last=None, floating=True):
    """The shape of array ``x``, checked: ``ndims`` (allowed numbers of dimensions), a last
    axis of size ``last`` where given, a floating dtype where ``floating``; then its values
    are finite (when concrete)."""
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    if shape is None or dtype is None:
        raise InvalidInputTypeError(
            f"{who}: {name} must be a numpy or JAX array; got {type(x).__name__} "
            "(wrap it in jnp.asarray)."
        )
    if not (jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_)):
        raise InvalidInputTypeError(f"{who}: {name} must be numeric; got dtype {dtype}.")
    if floating and not jnp.issubdtype(dtype, jnp.floating):
        raise InvalidInputTypeError(
            f"{who}: {name} must be a floating-point array (e.g. float32); got dtype {dtype}."
        )
    if len(shape) not in ndims or (last is not None and shape[-1] != last):
        forms = {1: f"({last},)", 2: f"(batch, {last})"} if last is not None else {}
        want = " or ".join(forms.get(n, f"{n} dimension(s)") for n in ndims)
        raise InvalidInputError(f"{who}: {name} has shape {tuple(shape)}; expected {want}.")
    check_finite(who, name, x)
    return tuple(shape)
