"""Named layered models: DRNs (Scellier 2024) and the seed paper's network (Kendall 2020)."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._devices import AbstractDevice
from ._network import DiodeKind, LayeredNetwork


def drn(
    key,
    sizes: Sequence[int],
    input_gain: float = 1.0,
    diode: DiodeKind = "ideal",
    init_scale: float = 1.0,
    amp_gains: Sequence[float] | None = None,
    dtype=None,
    device: AbstractDevice | None = None,
) -> LayeredNetwork:
    """A deep resistive network (Scellier 2024) with ``sizes = (n_features, h1, …, n_out)``:
    hidden units alternate excitatory ([0, ∞)) and inhibitory ((−∞, 0]); conductances are drawn
    uniformly in [0, init_scale·√(1/fan_in)) (He-like, non-negative); biases start at 0."""
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 3:
        raise ValueError("drn: sizes needs (n_features, hidden..., n_outputs), at least 3 entries.")
    dtype = dtype or jnp.result_type(float)
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
        weights, biases, lower, upper, input_gain, amp_gains, diode, device=device
    )


MODELS: dict[str, tuple[int, ...]] = {
    "drn-xs": (784, 100, 10),
    "drn-1h": (784, 1024, 10),
    "drn-2h": (784, 1024, 1024, 10),
    "drn-3h": (784, 1024, 1024, 1024, 10),
}


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
) -> LayeredNetwork:
    """The seed paper's network (Kendall et al. 2020): pixels as ±v sources, one hidden layer
    whose nodes have diodes to bias rails at ±rail_volts, bidirectional amplifiers of gain
    ``amp_gain`` between the hidden and output layers, linear outputs.

    Conductances start uniform in [0, √(1/fan_in)). The defaults are the ones that train
    (the ``seed-mnist`` recipe): with input gain 1 every hidden node stays within ±21 mV, no
    diode conducts and the network is linear; at 100 the hidden nodes reach the rails. The
    output layer's energy carries 1/amp_gain², so the nudge's strength is β·A²/Σg at an
    output: at A = 8 or 16 a β that suits A = 2 clamps the outputs and training stays at
    chance."""
    dtype = dtype or jnp.result_type(float)
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
        device=device,
    )


def make_model(name: str, key, **kwargs) -> LayeredNetwork:
    """Build a named model: drn-xs, drn-1h, drn-2h, drn-3h, seed (Kendall 2020), or a custom
    DRN as 'drn:784-256-10'."""
    name = name.lower()
    if name == "seed":
        return seed_network(key, **kwargs)
    if name in MODELS:
        return drn(key, MODELS[name], **kwargs)
    if name.startswith("drn:"):
        try:
            sizes = tuple(int(s) for s in name[4:].split("-"))
        except ValueError:
            sizes = ()
        if len(sizes) >= 3:
            return drn(key, sizes, **kwargs)
    raise ValueError(
        f"unknown model {name!r}: choose one of {sorted(MODELS)}, 'seed', or 'drn:784-H1-...-10'."
    )
