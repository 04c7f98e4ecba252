"""Named layered models: DRNs (Scellier 2024) and the seed paper's network (Kendall 2020)."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._data._errors import InvalidInputError, InvalidInputTypeError
from .._devices import AbstractDevice
from ._checks import check_choice, check_int, check_real
from ._network import DiodeKind, LayeredNetwork


def _check_key(who: str, key) -> None:
    """Raise unless ``key`` is a JAX PRNG key (an int seed is the usual slip)."""
    if isinstance(key, int | np.integer) or not hasattr(key, "dtype"):
        raise InvalidInputTypeError(
            f"{who}: key must be a JAX PRNG key, e.g. jax.random.PRNGKey(0); got {key!r}."
        )


def _check_dtype(who: str, dtype) -> None:
    if dtype is not None and not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
        raise InvalidInputTypeError(f"{who}: dtype must be a floating-point type; got {dtype}.")


def _saturation_currents(who, key, saturation_key, sizes, saturation_current, spread, dtype):
    """``saturation_current`` for every diode alike (spread 0), or per hidden layer (2, n_m)
    values I_s·exp(σ·N(0, 1)), log-normal about it, drawn from ``saturation_key`` (by default
    from ``key``, folded so that the weights drawn from ``key`` do not change)."""
    check_real(who, "saturation_current", saturation_current, above=0)
    check_real(who, "saturation_spread", spread, at_least=0)
    if spread == 0:
        return float(saturation_current)
    if saturation_key is None:
        saturation_key = jax.random.fold_in(key, _SATURATION_STREAM)
    _check_key(who, saturation_key)
    keys = jax.random.split(saturation_key, len(sizes))
    log_i_s = float(np.log(saturation_current))
    return [
        jnp.exp(log_i_s + float(spread) * jax.random.normal(k, (2, n), dtype))
        for k, n in zip(keys, sizes, strict=True)
    ]


# the stream of a model's key that its diodes' saturation currents are drawn from
_SATURATION_STREAM = 0x15


def _checked_sizes(who: str, sizes) -> tuple[int, ...]:
    """``sizes`` as a tuple of ints: at least three (features, hidden…, outputs), all ≥ 1."""
    if isinstance(sizes, str) or not isinstance(sizes, Sequence):
        raise InvalidInputTypeError(
            f"{who}: sizes must be a sequence of layer sizes (n_features, hidden..., n_outputs); "
            f"got {sizes!r}."
        )
    if len(sizes) < 3:
        raise InvalidInputError(
            f"{who}: sizes needs (n_features, hidden..., n_outputs), at least 3 entries; got "
            f"{tuple(sizes)}."
        )
    return tuple(check_int(who, f"sizes[{k}]", n, at_least=1) for k, n in enumerate(sizes))


def drn(
    key,
    sizes: Sequence[int],
    input_gain: float = 1.0,
    diode: DiodeKind = "ideal",
    init_scale: float = 1.0,
    amp_gains: Sequence[float] | None = None,
    dtype=None,
    device: AbstractDevice | None = None,
    saturation_current: float = 1e-6,
    series_resistance: float = 0.0,
    saturation_spread: float = 0.0,
    saturation_key=None,
) -> LayeredNetwork:
    """A deep resistive network (Scellier 2024), as a
    [`LayeredNetwork`][kirchhoff.LayeredNetwork] with randomly drawn conductances.

    Hidden units alternate excitatory (even indices, diodes clip them to [0, ∞)) and
    inhibitory (odd indices, (−∞, 0]); with Shockley diodes those bounds are diodes to ground.
    Conductances are drawn uniformly in [0, init_scale·√(1/fan_in)) (He-like, non-negative;
    the first layer's fan-in is 2·n_features, one +x and one −x source per feature); biases
    start at 0.

    Args:
        key: A JAX PRNG key (``jax.random.PRNGKey(0)``; not an int) for the conductances.
        sizes: The layer sizes (n_features, n_1, …, n_outputs): at least three positive
            integers (one hidden layer or more).
        input_gain: γ, the volts per unit of a feature at the ±γx input sources (> 0).
        diode: ``"ideal"`` (the default) or ``"shockley"``.
        init_scale: The scale of the initial conductances (> 0).
        amp_gains: One amplifier gain per hidden layer, or None for none.
        dtype: The floating dtype of the parameters; None for JAX's default float.
        device: The programmable resistors' device (see
            [`LayeredNetwork`][kirchhoff.LayeredNetwork]); None for an ideal one.
        saturation_current: The Shockley diodes' saturation current I_s (amperes, > 0).
        series_resistance: Each Shockley diode's series resistance (ohms, ≥ 0).
        saturation_spread: σ ≥ 0: with σ > 0 each diode's I_s is drawn log-normally,
            ln I_s ~ N(ln saturation_current, σ²).
        saturation_key: The PRNG key the spread is drawn from; None for one derived from
            ``key`` (the same key gives the same diodes, and the conductances do not depend
            on σ).

    Returns:
        The [`LayeredNetwork`][kirchhoff.LayeredNetwork].

    Raises:
        kirchhoff.InvalidInputError: For sizes, gains or diode parameters out of range.
        kirchhoff.InvalidInputTypeError: For a ``key`` that is not a PRNG key, or a
            non-floating ``dtype``.

    Examples:
        >>> import jax
        >>> import kirchhoff as kh
        >>> net = kh.drn(jax.random.PRNGKey(0), (4, 8, 3))
        >>> net.sizes
        (4, 8, 3)
        >>> [w.shape for w in net.weights]  # the first layer has ±x sources
        [(8, 8), (8, 3)]
        >>> net.n_free  # hidden and output nodes
        11
    """
    sizes = _checked_sizes("drn", sizes)
    _check_key("drn", key)
    _check_dtype("drn", dtype)
    check_real("drn", "init_scale", init_scale, above=0)
    check_real("drn", "input_gain", input_gain, above=0)
    check_choice("drn", "diode", diode, ("ideal", "shockley"))
    dtype = dtype or jnp.result_type(float)
    i_s = _saturation_currents(
        "drn", key, saturation_key, sizes[1:-1], saturation_current, saturation_spread, dtype
    )
    fan = [2 * sizes[0], *sizes[1:]]
    keys = jax.random.split(key, len(fan) - 1)
    weights = [
        jax.random.uniform(k, (fan[i], fan[i + 1]), dtype)
        * float(init_scale * np.sqrt(1.0 / fan[i]))
        for i, k in enumerate(keys)
    ]
    biases = [jnp.zeros(n, dtype) for n in fan[1:]]
    lower, upper = [], []
    for n in sizes[1:-1]:
        exc = (np.arange(n) % 2) == 0
        lower.append(jnp.asarray(np.where(exc, 0.0, -np.inf), dtype))
        upper.append(jnp.asarray(np.where(exc, np.inf, 0.0), dtype))
    return LayeredNetwork(
        weights,
        biases,
        lower,
        upper,
        input_gain,
        amp_gains,
        diode,
        saturation_current=i_s,
        device=device,
        series_resistance=series_resistance,
    )


MODELS: dict[str, tuple[int, ...]] = {
    "drn-xs": (784, 100, 10),
    "drn-1h": (784, 1024, 10),
    "drn-2h": (784, 1024, 1024, 10),
    "drn-3h": (784, 1024, 1024, 1024, 10),
}
"""The named DRNs of [`make_model`][kirchhoff.make_model], by name: their layer sizes
(n_features, hidden…, n_outputs), for 28×28 images and 10 classes. ``"drn-xs"`` has one
hidden layer of 100 units; ``"drn-1h"``, ``"drn-2h"`` and ``"drn-3h"`` have one, two and three
of 1024."""


def seed_network(
    key,
    n_hidden: int = 100,
    n_features: int = 784,
    n_outputs: int = 10,
    rail_volts: float = 1.0,
    amp_gain: float = 2.0,
    input_gain: float = 100.0,
    diode: DiodeKind = "shockley",
    dtype=None,
    device: AbstractDevice | None = None,
    saturation_current: float = 1e-6,
    series_resistance: float = 0.0,
    saturation_spread: float = 0.0,
    saturation_key=None,
) -> LayeredNetwork:
    """The seed paper's network (Kendall et al. 2020), as a
    [`LayeredNetwork`][kirchhoff.LayeredNetwork]: pixels as ±γx sources, one hidden layer
    whose nodes have diodes to bias rails at ±``rail_volts``, bidirectional amplifiers of gain
    ``amp_gain`` between the hidden and output layers, linear outputs.

    Conductances start uniform in [0, √(1/fan_in)); biases at 0. The defaults are the ones that
    train (the ``seed-mnist`` recipe): with input gain 1 every hidden node stays within
    ±21 mV, no diode conducts and the network is linear; at 100 the hidden nodes reach the
    rails. The output layer's energy carries 1/amp_gain², so the nudge's strength is β·A²/Σg at
    an output: at A = 8 or 16 a β that suits A = 2 clamps the outputs and training stays at
    chance.

    Args:
        key: A JAX PRNG key (not an int) for the conductances.
        n_hidden: The number of hidden nodes.
        n_features: The number of input features (784: 28×28 pixels).
        n_outputs: The number of output nodes.
        rail_volts: The rails' potential V: the diodes go to rails at −V and +V (volts, > 0).
        amp_gain: The amplifiers' gain A (> 0).
        input_gain: γ, the volts per unit of a feature at the ±γx input sources (> 0).
        diode: ``"shockley"`` (the default) or ``"ideal"`` (the hidden nodes clipped to
            [−V, V]).
        dtype: The floating dtype of the parameters; None for JAX's default float.
        device: The programmable resistors' device (see
            [`LayeredNetwork`][kirchhoff.LayeredNetwork]); None for an ideal one.
        saturation_current: The Shockley diodes' saturation current I_s (amperes, > 0).
        series_resistance: Each Shockley diode's series resistance (ohms, ≥ 0).
        saturation_spread: σ ≥ 0 of a log-normal spread of I_s across diodes, as for
            [`drn`][kirchhoff.drn].
        saturation_key: The PRNG key the spread is drawn from; None for one derived from
            ``key``.

    Returns:
        The [`LayeredNetwork`][kirchhoff.LayeredNetwork], with sizes
        (n_features, n_hidden, n_outputs).

    Raises:
        kirchhoff.InvalidInputError: For a size, gain or diode parameter out of range.
        kirchhoff.InvalidInputTypeError: For a ``key`` that is not a PRNG key, or a
            non-floating ``dtype``.
    """
    who = "seed_network"
    _check_key(who, key)
    _check_dtype(who, dtype)
    for name, n in (("n_hidden", n_hidden), ("n_features", n_features), ("n_outputs", n_outputs)):
        check_int(who, name, n, at_least=1)
    check_real(who, "rail_volts", rail_volts, above=0)
    check_real(who, "amp_gain", amp_gain, above=0)
    check_real(who, "input_gain", input_gain, above=0)
    check_choice(who, "diode", diode, ("ideal", "shockley"))
    dtype = dtype or jnp.result_type(float)
    i_s = _saturation_currents(
        who, key, saturation_key, (n_hidden,), saturation_current, saturation_spread, dtype
    )
    k1, k2 = jax.random.split(key)
    w0 = jax.random.uniform(k1, (2 * n_features, n_hidden), dtype) * float(
        np.sqrt(1.0 / (2 * n_features))
    )
    w1 = jax.random.uniform(k2, (n_hidden, n_outputs), dtype) * float(np.sqrt(1.0 / n_hidden))
    return LayeredNetwork(
        [w0, w1],
        [jnp.zeros(n_hidden, dtype), jnp.zeros(n_outputs, dtype)],
        [jnp.full(n_hidden, -rail_volts, dtype)],
        [jnp.full(n_hidden, rail_volts, dtype)],
        input_gain=input_gain,
        amp_gains=(amp_gain,),
        diode=diode,
        saturation_current=i_s,
        device=device,
        series_resistance=series_resistance,
    )


def model_sizes(name: str) -> tuple[int, ...]:
    """The layer sizes (n_features, hidden…, n_outputs) of the named model (see
    ``make_model``), without building it; InvalidInputError for an unknown name or a custom
    DRN whose sizes are not positive integers."""
    if not isinstance(name, str):
        raise InvalidInputTypeError(f"model must be a name (a string); got {name!r}.")
    key = name.lower()
    if key == "seed":
        return (784, 100, 10)  # seed_network's defaults
    if key in MODELS:
        return MODELS[key]
    if key.startswith("drn:"):
        parts = key[4:].split("-")
        if len(parts) < 3:
            raise InvalidInputError(
                f"model {name!r}: a custom DRN needs at least three layer sizes, as "
                f"'drn:784-H1-...-10'; got {len(parts)}."
            )
        for k, part in enumerate(parts):
            if not (part.isascii() and part.isdigit()) or int(part) < 1:
                raise InvalidInputError(
                    f"model {name!r}: layer sizes must be positive integers; layer {k} is {part!r}."
                )
        return tuple(int(p) for p in parts)
    raise InvalidInputError(
        f"unknown model {name!r}: choose one of {sorted(MODELS)}, 'seed', or 'drn:784-H1-...-10'."
    )


def make_model(name: str, key, **kwargs) -> LayeredNetwork:
    """Build a named model: a DRN of [`MODELS`][kirchhoff.MODELS], the seed paper's network,
    or a DRN of any sizes.

    Args:
        name: ``"drn-xs"``, ``"drn-1h"``, ``"drn-2h"``, ``"drn-3h"`` (see
            [`MODELS`][kirchhoff.MODELS]), ``"seed"`` (Kendall 2020, built by
            [`seed_network`][kirchhoff.seed_network]), or a custom DRN as
            ``"drn:784-256-10"`` (its layer sizes joined by ``-``); case is ignored.
        key: A JAX PRNG key for the initial conductances.

    Keyword Args:
        **kwargs: Passed on to [`drn`][kirchhoff.drn] (for a DRN) or
            [`seed_network`][kirchhoff.seed_network] (for ``"seed"``), e.g. ``diode`` or
            ``device``.

    Returns:
        The [`LayeredNetwork`][kirchhoff.LayeredNetwork].

    Raises:
        kirchhoff.InvalidInputError: For an unknown name, or a custom DRN whose sizes are not
            positive integers.
        kirchhoff.InvalidInputTypeError: If ``name`` is not a string.
    """
    sizes = model_sizes(name)
    if name.lower() == "seed":
        return seed_network(key, **kwargs)
    return drn(key, sizes, **kwargs)
