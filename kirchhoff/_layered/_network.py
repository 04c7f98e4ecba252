"""Layered (deep) resistive networks: the seed paper's analog network and Scellier's DRNs.

Node layers 0 … L+1: layer 0 holds the inputs (each pixel x as two sources, +γx and −γx,
γ the input gain), layers 1 … L are hidden nodes with diodes (half excitatory, clipped to
[0, ∞); half inhibitory, clipped to (−∞, 0]; or diodes to bias rails), layer L+1 is the
linear output layer. Conductances join adjacent layers only, so given its neighbours each
layer's nodes are independent: the structure exact block coordinate descent exploits.
"""

import dataclasses
from collections.abc import Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._circuit import AbstractCircuit, Circuit
from .._custom_types import Array, Float
from .._data._errors import InvalidInputError, InvalidInputTypeError
from .._devices import AbstractDevice, IdealDevice
from .._elements import (
    shockley_co_content,
    shockley_co_content_increment,
    shockley_current,
)
from .._shockley import (
    series_shockley_co_content,
    series_shockley_co_content_increment,
    series_shockley_current,
)
from ._checks import check_choice, check_finite, check_real, is_traced
from ._export import layered_to_circuit

DiodeKind = Literal["ideal", "shockley"]


def _elementwise_derivative(f, x):
    """f'(x) for an elementwise f (one forward-mode pass)."""
    return jax.jvp(f, (x,), (jnp.ones_like(x),))[1]


def _checked_layers(weights, biases, lower, upper, diode):
    """The layers as arrays in the weights' dtype, with their sizes; InvalidInputError naming
    what does not fit (too few layers, odd input layer, mismatched shapes, bad values)."""
    who = "LayeredNetwork"
    for name, seq in (("weights", weights), ("biases", biases), ("lower", lower), ("upper", upper)):
        if isinstance(seq, str) or not isinstance(seq, Sequence):
            raise InvalidInputTypeError(
                f"{who}: {name} must be a sequence of arrays (one per layer); got "
                f"{type(seq).__name__}."
            )
    weights = tuple(jnp.asarray(w) for w in weights)
    if len(weights) < 2:
        raise InvalidInputError(
            f"{who}: need at least one hidden layer (two weight matrices); got {len(weights)}."
        )
    for k, w in enumerate(weights):
        if w.ndim != 2 or 0 in w.shape:
            raise InvalidInputError(
                f"{who}: weights[{k}] must be a non-empty 2-D conductance matrix (nodes of "
                f"layer {k} × nodes of layer {k + 1}); got shape {w.shape}."
            )
        if not jnp.issubdtype(w.dtype, jnp.floating):
            raise InvalidInputTypeError(
                f"{who}: weights[{k}] must be floating-point conductances; got dtype {w.dtype}."
            )
    n0 = weights[0].shape[0]
    if n0 % 2:
        raise InvalidInputError(
            f"{who}: the input layer holds ±x pairs, so weights[0] needs an even number of "
            f"rows; got {n0}."
        )
    sizes = [n0 // 2] + [w.shape[1] for w in weights]
    for k in range(1, len(weights)):
        if weights[k].shape[0] != weights[k - 1].shape[1]:
            raise InvalidInputError(
                f"{who}: weights[{k}] has shape {weights[k].shape}, but layer {k} "
                f"has {weights[k - 1].shape[1]} nodes."
            )
    dtype = weights[0].dtype
    biases = tuple(jnp.asarray(b, dtype=dtype) for b in biases)
    lower = tuple(jnp.asarray(b, dtype=dtype) for b in lower)
    upper = tuple(jnp.asarray(b, dtype=dtype) for b in upper)
    if [b.shape for b in biases] != [(n,) for n in sizes[1:]]:
        raise InvalidInputError(
            f"{who}: biases must have shapes {[(n,) for n in sizes[1:]]}; got "
            f"{[b.shape for b in biases]}."
        )
    want = [(n,) for n in sizes[1:-1]]
    if [b.shape for b in lower] != want or [b.shape for b in upper] != want:
        raise InvalidInputError(
            f"{who}: give lower/upper diode bounds of shapes {want} (one per hidden layer); "
            f"got {[b.shape for b in lower]} and {[b.shape for b in upper]}."
        )
    for k, w in enumerate(weights):
        _check_conductances(f"weights[{k}]", w)
    for k, b in enumerate(biases):
        check_finite(who, f"biases[{k}]", b)
    for k, (lo, hi) in enumerate(zip(lower, upper, strict=True)):
        if is_traced(lo) or is_traced(hi):
            continue
        lo_np, hi_np = np.asarray(lo), np.asarray(hi)
        # ideal diodes clip a node to [lower, upper], which must not be empty; Shockley
        # diodes to crossed rails are an odd circuit but a physical one
        crossed = (lo_np > hi_np) if diode == "ideal" else np.zeros(lo_np.shape, bool)
        bad = np.flatnonzero(np.isnan(lo_np) | np.isnan(hi_np) | crossed)
        if bad.size:
            j = int(bad[0])
            need = "lower ≤ upper, " if diode == "ideal" else ""
            raise InvalidInputError(
                f"{who}: hidden layer {k + 1}'s diode bounds must be {need}±inf for none, never "
                f"NaN; node {j} has lower {lo_np[j]}, upper {hi_np[j]}."
            )
    return weights, biases, lower, upper, sizes


def _check_conductances(name, w):
    """Raise unless the concrete conductances ``w`` are finite and non-negative, naming the
    first bad one."""
    if is_traced(w):
        return
    wc = np.asarray(w)
    bad = np.argwhere(~(wc >= 0) | ~np.isfinite(wc))
    if bad.size:
        first = tuple(int(i) for i in bad[0])
        raise InvalidInputError(
            f"LayeredNetwork: {name} holds {len(bad)} conductance(s) that are negative or not "
            f"finite (the first, at index {first}, is {wc[first]}); conductances must be "
            "finite and non-negative."
        )


def _checked_saturation(who, saturation_current, sizes, dtype):
    """The diodes' saturation current as (a nominal float, per-layer arrays or None): a number
    for all diodes alike, or one array per hidden layer, of shape (n_m,) (a node's two diodes
    alike) or (2, n_m) (row 0 the diode from the lower rail, row 1 the one to the upper rail).
    The nominal value of arrays is their geometric mean."""
    if not isinstance(saturation_current, Sequence) or isinstance(saturation_current, str):
        if getattr(saturation_current, "ndim", 0) == 0:
            check_real(who, "saturation_current", saturation_current, above=0)
            return float(saturation_current), None
    hidden = sizes[1:-1]
    if isinstance(saturation_current, str) or not isinstance(saturation_current, Sequence):
        raise InvalidInputTypeError(
            f"{who}: saturation_current must be a number, or a sequence of {len(hidden)} "
            f"array(s), one per hidden layer; got an array of shape "
            f"{np.shape(saturation_current)}."
        )
    if len(saturation_current) != len(hidden):
        raise InvalidInputError(
            f"{who}: give {len(hidden)} saturation-current array(s), one per hidden layer; got "
            f"{len(saturation_current)}."
        )
    out, logs = [], []
    for m, (i_s, n) in enumerate(zip(saturation_current, hidden, strict=True), start=1):
        i_s = jnp.asarray(i_s, dtype)
        if i_s.shape == (n,):
            i_s = jnp.stack([i_s, i_s])
        if i_s.shape != (2, n):
            raise InvalidInputError(
                f"{who}: hidden layer {m}'s saturation currents must have shape ({n},) or "
                f"(2, {n}); got {i_s.shape}."
            )
        if not is_traced(i_s):
            v = np.asarray(i_s, np.float64)
            if not np.all(np.isfinite(v) & (v > 0)):
                raise InvalidInputError(
                    f"{who}: hidden layer {m}'s saturation currents must be finite and > 0 "
                    f"(amperes); the smallest is {np.min(v):g}."
                )
            logs.append(np.log(v).ravel())
        out.append(i_s)
    nominal = float(np.exp(np.mean(np.concatenate(logs)))) if logs else 0.0
    return nominal, tuple(out)


def _cells(c) -> dict:
    """``cells=c`` as keyword arguments, or none (devices without variation need not take it)."""
    return {} if c is None else {"cells": c}


def _replaced(net, **fields):
    """A copy of ``net`` with ``fields`` replaced (whole subtrees, of any structure)."""
    new = object.__new__(type(net))
    for f in dataclasses.fields(net):
        object.__setattr__(new, f.name, fields.get(f.name, getattr(net, f.name)))
    return new


class LayeredNetwork(AbstractCircuit):
    """A layered nonlinear resistive network (DRN): conductance matrices between adjacent
    layers, bias current sources, diode-bounded hidden nodes, optional bidirectional
    amplifiers after hidden layers.

    Node layers 0 … L+1: layer 0 holds the inputs, each raw feature x as two voltage sources,
    +γx and −γx (γ = ``input_gain``); layers 1 … L are hidden nodes with diodes; layer L+1 is
    the linear output layer. Conductances join adjacent layers only, so given its neighbours
    each layer's nodes are independent: the structure exact block coordinate descent exploits.
    A hidden node's diodes either clip it to [``lower``, ``upper``] (ideal diodes: e.g.
    [0, ∞) for an excitatory unit, (−∞, 0] for an inhibitory one) or are Shockley diodes from
    a rail at ``lower`` into the node and from the node to a rail at ``upper``. An amplifier of
    gain A after a hidden layer drives the next layer with A·v and feeds back the current it
    draws divided by A; in the energy function every layer downstream carries the weight 1/A².
    [`drn`][kirchhoff.drn], [`seed_network`][kirchhoff.seed_network] and
    [`make_model`][kirchhoff.make_model] build the usual networks.

    ``weights`` hold the programmable resistors' *state*; ``device`` says how state becomes
    conductance (``read``) and how an update is written (``programmed``). With the default
    [`IdealDevice`][kirchhoff.IdealDevice] the state is the conductance. The physics methods
    (``energy``, [`to_circuit`][kirchhoff.LayeredNetwork.to_circuit], the solvers, the power
    budget) use ``weights`` as conductances, so a network with another device is read first:
    ``net.read(key)``.

    Args:
        weights: One conductance matrix (siemens, ≥ 0) per pair of adjacent layers, L + 1 in
            all (at least one hidden layer): ``weights[0]`` of shape (2·n_features, n_1), its
            first n_features rows from the +γx sources and the rest from the −γx ones, then
            ``weights[k]`` of shape (n_k, n_{k+1}), the last (n_L, n_outputs). Floating
            point; its dtype is the network's.
        biases: One bias current source per free layer (amperes, into each node): shapes
            (n_1,), …, (n_L,), (n_outputs,).
        lower: The lower diode bound of each hidden layer's nodes (volts; −inf for none):
            shapes (n_1,), …, (n_L,).
        upper: The upper diode bound of each hidden layer's nodes (volts; inf for none),
            shaped like ``lower``. With ideal diodes, lower ≤ upper.
        input_gain: γ, the volts per unit of a raw feature at the input sources (> 0).
        amp_gains: One amplifier gain per hidden layer (> 0), or None for none (gain 1).
        diode: ``"ideal"`` (the default) or ``"shockley"``.
        saturation_current: The Shockley diodes' saturation current I_s (amperes, > 0): one
            number for all, or one array per hidden layer, of shape (n_m,) (a node's two
            diodes alike) or (2, n_m) (row 0 the diode from the lower rail, row 1 the one to
            the upper rail). Only for ``diode="shockley"``.
        ideality: The Shockley diodes' ideality factor n (> 0).
        thermal_voltage: The thermal voltage V_T (volts, > 0; the default is 300 K's).
        device: How the weights' state becomes conductance: an
            [`AbstractDevice`][kirchhoff.AbstractDevice], or a tuple of one per weight matrix;
            None for [`IdealDevice`][kirchhoff.IdealDevice]. Its device-to-device variation is
            drawn here, and each weight starts at the nearest state its device can hold.
        series_resistance: Each Shockley diode's series resistance R_s (ohms, ≥ 0; 0 for
            none). Only for ``diode="shockley"``.

    Attributes:
        sizes: The layer sizes (n_features, n_1, …, n_L, n_outputs).
        cells: Per weight matrix, what its device drew per device (None: all alike).

    Raises:
        kirchhoff.InvalidInputError: For shapes that do not fit together, negative or
            non-finite conductances, bad bounds or gains, or per-diode saturation currents or
            a series resistance with ideal diodes.
        kirchhoff.InvalidInputTypeError: For an argument of the wrong type (e.g. a device
            that is not an [`AbstractDevice`][kirchhoff.AbstractDevice]).
    """

    weights: tuple[Float[Array, "n_k n_k1"], ...]
    biases: tuple[Float[Array, " n_k1"], ...]
    lower: tuple[Float[Array, " n_k"], ...]
    upper: tuple[Float[Array, " n_k"], ...]
    sizes: tuple[int, ...] = eqx.field(static=True)
    input_gain: float = eqx.field(static=True)
    amp_gains: tuple[float, ...] = eqx.field(static=True)
    diode: str = eqx.field(static=True)
    saturation_current: float = eqx.field(static=True)  # amperes; nominal with a spread
    ideality: float = eqx.field(static=True)
    thermal_voltage: float = eqx.field(static=True)
    series_resistance: float = eqx.field(static=True)  # ohms, each Shockley diode's R_s
    device: AbstractDevice | tuple[AbstractDevice, ...]
    cells: tuple  # per weight layer, what its device drew per device (None: all alike)
    # per hidden layer (2, n_m): each node's diode from the lower rail (row 0) and to the upper
    # rail (row 1); None: every diode has ``saturation_current``. Leaves, never trainable.
    saturation_currents: tuple[Float[Array, "2 n_m"], ...] | None

    def __init__(
        self,
        weights: Sequence,
        biases: Sequence,
        lower: Sequence,
        upper: Sequence,
        input_gain: float = 1.0,
        amp_gains: Sequence[float] | None = None,
        diode: DiodeKind = "ideal",
        saturation_current: float | Sequence = 1e-6,
        ideality: float = 1.0,
        thermal_voltage: float = 0.025852,
        device: AbstractDevice | None = None,
        series_resistance: float = 0.0,
    ):
        check_choice("LayeredNetwork", "diode", diode, ("ideal", "shockley"))
        weights, biases, lower, upper, sizes = _checked_layers(weights, biases, lower, upper, diode)
        who = "LayeredNetwork"
        n_hidden = len(weights) - 1
        if amp_gains is None:
            amp_gains = (1.0,) * n_hidden
        if isinstance(amp_gains, str) or not isinstance(amp_gains, Sequence):
            raise InvalidInputTypeError(
                f"{who}: amp_gains must be a sequence of {n_hidden} gain(s); got {amp_gains!r}."
            )
        if len(amp_gains) != n_hidden:
            raise InvalidInputError(
                f"{who}: give {n_hidden} amplifier gain(s), one per hidden layer; got "
                f"{len(amp_gains)}: {tuple(amp_gains)}."
            )
        amp_gains = tuple(
            float(check_real(who, f"amp_gains[{k}]", a, above=0)) for k, a in enumerate(amp_gains)
        )
        check_real(who, "input_gain", input_gain, above=0)
        nominal, per_diode = _checked_saturation(who, saturation_current, sizes, weights[0].dtype)
        check_real(who, "ideality", ideality, above=0)
        check_real(who, "thermal_voltage", thermal_voltage, above=0)
        check_real(who, "series_resistance", series_resistance, at_least=0)
        if diode == "ideal" and (per_diode is not None or float(series_resistance) > 0):
            raise InvalidInputError(
                f"{who}: per-diode saturation currents and a series resistance describe "
                "Shockley diodes; this network has ideal diodes (diode='ideal'). Pass "
                "diode='shockley'."
            )
        self.weights, self.biases, self.lower, self.upper = weights, biases, lower, upper
        self.sizes = tuple(int(s) for s in sizes)
        self.input_gain = float(input_gain)
        self.amp_gains = amp_gains
        self.diode = diode
        self.saturation_current = nominal
        self.saturation_currents = per_diode
        self.ideality = float(ideality)
        self.thermal_voltage = float(thermal_voltage)
        self.series_resistance = float(series_resistance)
        device = IdealDevice() if device is None else device
        devices = device if isinstance(device, tuple) else (device,) * len(weights)
        if len(devices) != len(weights) or not all(isinstance(d, AbstractDevice) for d in devices):
            raise InvalidInputTypeError(
                f"LayeredNetwork: device must be an AbstractDevice, or a tuple of "
                f"{len(weights)} (one per weight layer); got {device!r}."
            )
        self.device = device
        # what differs from device to device is drawn once, here, from each device's seed;
        # the state starts at the nearest one each device can hold
        self.cells = tuple(
            d.sample_cells(w.shape, k)
            for k, (d, w) in enumerate(zip(devices, weights, strict=True))
        )
        self.weights = tuple(
            w if c is None and d.is_identity_read else d.initial_state(w, c).astype(w.dtype)
            for d, w, c in zip(devices, weights, self.cells, strict=True)
        )

    # ---- the device seam --------------------------------------------------------------------
    @property
    def devices(self) -> tuple[AbstractDevice, ...]:
        """The device of each weight layer."""
        if isinstance(self.device, tuple):
            return self.device
        return (self.device,) * len(self.weights)

    @property
    def noisy_read(self) -> bool:
        """Whether a read draws noise (the phases of a training step then read afresh)."""
        return any(d.noisy_read for d in self.devices)

    def read(self, key=None) -> "LayeredNetwork":
        """The network as its circuit sees it: ``weights`` replaced by the conductances the
        devices present (``device.read`` per weight layer, with ``key`` split across them),
        and an ideal device, so that it is never read twice. Identity for an ideal device.

        Args:
            key: A JAX PRNG key for the devices' read noise, or None (no noise drawn).

        Returns:
            A [`LayeredNetwork`][kirchhoff.LayeredNetwork] whose weights are conductances
            (siemens).
        """
        if all(d.is_identity_read for d in self.devices):
            return self
        weights = tuple(
            d.read(w, k, **_cells(c))
            for d, w, k, c in zip(
                self.devices, self.weights, self._layer_keys(key), self.cells, strict=True
            )
        )
        return _replaced(self, weights=weights, device=IdealDevice(), cells=(None,) * len(weights))

    def programmed(self, updates, key=None) -> "LayeredNetwork":
        """The network after writing ``updates``: weights through ``device.program``
        (pulses, noise and clipping to the device's range), biases (current sources, not
        devices) by addition.

        Args:
            updates: The changes, shaped like the trainable part: anything with ``weights``
                (siemens, shaped like this network's) and ``biases`` (amperes), e.g. an
                optimiser's update of a network.
            key: A JAX PRNG key for the devices' write noise or stochastic rounding, or None.

        Returns:
            The updated [`LayeredNetwork`][kirchhoff.LayeredNetwork].
        """
        weights = tuple(
            d.program(w, u, k, **_cells(c))
            for d, w, u, k, c in zip(
                self.devices,
                self.weights,
                updates.weights,
                self._layer_keys(key),
                self.cells,
                strict=True,
            )
        )
        biases = tuple(b + u for b, u in zip(self.biases, updates.biases, strict=True))
        return eqx.tree_at(lambda n: (n.weights, n.biases), self, (weights, biases))

    def _layer_keys(self, key):
        """One key per weight layer (all None without a key)."""
        n = len(self.weights)
        return [None] * n if key is None else list(jax.random.split(key, n))

    def require_read(self, who: str) -> None:
        """Raise [`InvalidInputError`][kirchhoff.InvalidInputError], naming ``who`` (the
        caller), unless this network's weights are conductances (an identity-read device)."""
        if not all(d.is_identity_read for d in self.devices):
            raise InvalidInputError(
                f"{who}: this network's device does not read its state as conductance; pass "
                "net.read(key) (the conductances it presents), not the network itself."
            )

    # ---- sizes and layout ------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """Number of free node layers (hidden layers + output layer)."""
        return len(self.weights)

    @property
    def n_free(self):
        """Number of free nodes: every hidden and output node (not the input sources)."""
        return sum(self.sizes[1:])

    @property
    def n_inputs(self):
        """Number of raw input features (each drives two sources, ±γx)."""
        return self.sizes[0]

    @property
    def n_outputs(self):
        """Number of output nodes."""
        return self.sizes[-1]

    @property
    def has_ideal_diodes(self):
        """Whether the hidden nodes' diodes are ideal (bounds on the potentials)."""
        return self.diode == "ideal"

    @property
    def is_quadratic(self):
        """Whether the energy is quadratic in the free potentials (ideal diodes)."""
        return self.diode == "ideal"

    def drive_gain(self, k: int) -> float:
        """Gain applied to layer k's potentials where they drive layer k+1 (1 for the input)."""
        return 1.0 if k == 0 else self.amp_gains[k - 1]

    def layer_weight(self, m: int) -> float:
        """Energy weight of node layer m (1/A² per amplifier upstream)."""
        w = 1.0
        for k in range(1, m):
            w /= self.amp_gains[k - 1] ** 2
        return w

    def split(self, free):
        """Free-potential vector (…, n_free) → list of per-layer arrays (…, n_m)."""
        idx = np.cumsum(self.sizes[1:])[:-1]
        return jnp.split(free, idx, axis=-1)

    def join(self, layers):
        """Per-layer arrays (…, n_m) → one free-potential vector (…, n_free): ``split``'s
        inverse."""
        return jnp.concatenate(layers, axis=-1)

    def source_potentials(self, inputs):
        """Layer-0 potentials (volts): (+γx, −γx), shape (…, 2·n_inputs) for inputs
        (…, n_inputs)."""
        g = self.input_gain
        return jnp.concatenate([g * inputs, -g * inputs], axis=-1)

    # ---- energy ---------------------------------------------------------------------------
    @property
    def dtype(self):
        """The floating dtype of the weights: every solve runs in it."""
        return self.weights[0].dtype

    def _resistor_energy(self, layers):
        """Σ over weight layers of the (energy-weighted) co-content ½·g·(u − v)²."""
        e = jnp.zeros((), layers[1].dtype)
        for k, w in enumerate(self.weights):
            u = self.drive_gain(k) * layers[k]
            v = layers[k + 1]
            pair = 0.5 * (u**2) @ jnp.sum(w, 1) + 0.5 * (v**2) @ jnp.sum(w, 0) - u @ (w @ v)
            e = e + self.layer_weight(k + 1) * pair
        return e

    def energy(self, free, inputs):
        """The network's energy function: the co-content of its resistors and Shockley diodes
        minus the bias sources' Σ b·v, each layer weighted by 1/A² per amplifier upstream.

        Args:
            free: The free potentials of one example (volts), shape (n_free,), in ``split``
                order [h1, …, out].
            inputs: The raw features of that example, shape (n_inputs,).

        Returns:
            The energy (watts), a scalar.
        """
        layers = [self.source_potentials(inputs), *self.split(free)]
        e = self._resistor_energy(layers)
        for m, b in enumerate(self.biases, start=1):
            e = e - self.layer_weight(m) * jnp.dot(b, layers[m])
        if self.diode == "shockley":
            for m in range(1, self.n_layers):
                e = e + self.layer_weight(m) * jnp.sum(self.diode_co_content(layers[m], m))
        return e

    def rail_saturation_currents(self, m):
        """(I_s of the diode from the lower rail, I_s of the diode to the upper rail) of hidden
        layer m's nodes: ``saturation_current`` for both, or arrays (n_m,) with a spread."""
        if self.saturation_currents is None:
            return self.saturation_current, self.saturation_current
        i_s = self.saturation_currents[m - 1]
        return i_s[0], i_s[1]

    def diode_co_content(self, v, m):
        """Per node of hidden layer m, the co-content of its Shockley diodes to the rails:
        the one place their physics is written; ``diode_current`` and the solvers' Newton
        derivatives are derived from it by autodiff."""
        lo, hi = self.lower[m - 1], self.upper[m - 1]
        i_lo, i_hi = self.rail_saturation_currents(m)
        return jnp.where(jnp.isfinite(lo), self._co(lo - v, i_lo), 0.0) + jnp.where(
            jnp.isfinite(hi), self._co(v - hi, i_hi), 0.0
        )

    def rail_diode_currents(self, v, m):
        """Per node of hidden layer m: the current its lower rail's diode carries into it and
        the current its upper rail's diode carries out of it (amperes; 0 where no diode)."""
        lo, hi = self.lower[m - 1], self.upper[m - 1]
        lo_ok, hi_ok = jnp.isfinite(lo), jnp.isfinite(hi)
        i_lo, i_hi = self.rail_saturation_currents(m)
        into = jnp.where(lo_ok, self.diode_current(jnp.where(lo_ok, lo, 0.0) - v, i_lo), 0.0)
        out = jnp.where(hi_ok, self.diode_current(v - jnp.where(hi_ok, hi, 0.0), i_hi), 0.0)
        return into, out

    def layer_diode_current(self, v, m):
        """Per node of hidden layer m, the current its Shockley diodes draw from it (amperes
        per unit energy weight): ∂/∂v of ``diode_co_content`` (elementwise, so one jvp)."""
        return _elementwise_derivative(lambda v: self.diode_co_content(v, m), v)

    def layer_diode_current_change(self, v, dv, m):
        """Per node, i(v + Δv) − i(v) for hidden layer m's diodes, accurate for tiny Δv: ∂/∂Δv
        of the co-content increment (``diode_increment``)."""
        return _elementwise_derivative(lambda d: self.diode_increment(v, d, m), dv)

    def energy_increment(self, free, change, inputs):
        """``E(v + δ) − E(v) − ∇E(v)·δ``, computed without cancellation (the resistors' part
        is exactly quadratic): what the nudged phases minimise to resolve tiny deviations.

        Args:
            free: The free potentials v of one example (volts), shape (n_free,).
            change: The deviation δ (volts), shape (n_free,).
            inputs: The raw features, shape (n_inputs,).

        Returns:
            The increment (watts), a scalar.
        """
        # the resistor energy is quadratic: its increment is itself evaluated at the change
        # with the sources fixed (a zero change); the bias terms are linear and drop out
        changes = self.split(change)
        e = self._resistor_energy([jnp.zeros_like(self.source_potentials(inputs)), *changes])
        if self.diode == "shockley":
            for m, (v, dv) in enumerate(zip(self.split(free), changes, strict=True), start=1):
                if m < self.n_layers:
                    e = e + self.layer_weight(m) * jnp.sum(self.diode_increment(v, dv, m))
        return e

    def diode_increment(self, v, dv, m):
        """Per node, E(v + Δv) − E(v) − i(v)·Δv of hidden layer m's diodes (no cancellation)."""
        lo, hi = self.lower[m - 1], self.upper[m - 1]
        i_lo, i_hi = self.rail_saturation_currents(m)
        lo_ok, hi_ok = jnp.isfinite(lo), jnp.isfinite(hi)
        u_lo = jnp.where(lo_ok, lo - v, 0.0)
        u_hi = jnp.where(hi_ok, v - hi, 0.0)
        return jnp.where(lo_ok, self._increment(u_lo, -dv, i_lo), 0.0) + jnp.where(
            hi_ok, self._increment(u_hi, dv, i_hi), 0.0
        )

    def potential_scale(self, free, inputs):
        """The size of the potentials (volts), against which their accuracy is judged: the
        largest |free potential| or |source potential| (±γx, not the raw features)."""
        # the sources hold ±γx, not the raw features
        return jnp.maximum(
            jnp.max(jnp.abs(free), initial=0.0),
            jnp.max(jnp.abs(self.source_potentials(inputs)), initial=0.0),
        )

    def current_scale(self, free, inputs, change=None):
        """Per free node, the size of the currents that meet there (amperes), summed element
        by element: the scale its KCL residual is judged against. With ``change``, the same
        for the deviation problem at ``free + change``.

        Args:
            free: The free potentials (volts), shape (n_free,).
            inputs: The raw features, shape (n_inputs,).
            change: A deviation from ``free`` (volts), shape (n_free,), or None.

        Returns:
            The current scale per free node (amperes), shape (n_free,).
        """
        layers = [self.source_potentials(inputs), *self.split(free)]
        if change is None:
            xs = [jnp.abs(x) for x in layers]
        else:
            xs = [jnp.zeros_like(layers[0]), *(jnp.abs(d) for d in self.split(change))]
        scale = [jnp.zeros_like(x) for x in layers]
        for k, w in enumerate(self.weights):
            a = self.drive_gain(k)
            xu, xv = a * xs[k], xs[k + 1]
            # at layer k+1: Σ g·(|v| + |u|); at layer k (through the amplifier's 1/A)
            scale[k + 1] = scale[k + 1] + xv * jnp.sum(w, 0) + xu @ w
            if k > 0:
                scale[k] = scale[k] + (xu * jnp.sum(w, 1) + xv @ w.T) / a
        if change is None:
            for m, b in enumerate(self.biases, start=1):
                scale[m] = scale[m] + jnp.abs(b)
        if self.diode == "shockley":
            for m in range(1, self.n_layers):
                v, lo, hi = layers[m], self.lower[m - 1], self.upper[m - 1]
                i_lo, i_hi = self.rail_saturation_currents(m)
                at = [v] if change is None else [v, v + self.split(change)[m - 1]]
                for z in at:
                    for ok, u, rail, i_s in (
                        (jnp.isfinite(lo), lo - z, lo, i_lo),
                        (jnp.isfinite(hi), z - hi, hi, i_hi),
                    ):
                        current = lambda u, i_s=i_s: self.diode_current(u, i_s)
                        c = jax.jvp(current, (u,), (jnp.ones_like(u),))[1]
                        x = xs[m] + (jnp.abs(rail) if change is None else 0.0)
                        i = jnp.abs(current(u)) if change is None else 0.0
                        scale[m] = scale[m] + jnp.where(ok, c * x + i, 0.0)
        return self.join(scale[1:])

    def _diode_args(self, saturation_current):
        i_s = self.saturation_current if saturation_current is None else saturation_current
        return (i_s, self.ideality, self.thermal_voltage)

    def _co(self, u, saturation_current=None):
        u = jnp.where(jnp.isfinite(u), u, 0.0)
        args = self._diode_args(saturation_current)
        if self.series_resistance == 0.0:  # the plain diode: exactly its own code path
            return shockley_co_content(u, *args)
        return series_shockley_co_content(u, *args, self.series_resistance)

    def _increment(self, u, du, saturation_current):
        args = self._diode_args(saturation_current)
        if self.series_resistance == 0.0:
            return shockley_co_content_increment(u, du, *args)
        return series_shockley_co_content_increment(u, du, *args, self.series_resistance)

    def diode_current(self, u, saturation_current=None):
        """Current of one Shockley diode at drop ``u`` (amperes), with the network's I_s or
        ``saturation_current`` (a spread's per-diode values) and series resistance."""
        u = jnp.where(jnp.isfinite(u), u, 0.0)
        args = self._diode_args(saturation_current)
        if self.series_resistance == 0.0:
            return shockley_current(u, *args)
        return series_shockley_current(u, *args, self.series_resistance)

    def output_potentials(self, free, inputs):
        """The output nodes' potentials (volts), shape (…, n_outputs): the last n_outputs
        entries of ``free`` (…, n_free); ``inputs`` is not used."""
        del inputs
        return free[..., self.n_free - self.n_outputs :]

    def node_weight_free(self):
        """Each free node's energy weight (1/A² per amplifier upstream; 1 without
        amplifiers), shape (n_free,): an energy gradient divided by it is a current."""
        return jnp.concatenate(
            [
                jnp.full(n, self.layer_weight(m), self.dtype)
                for m, n in enumerate(self.sizes[1:], start=1)
            ]
        )

    def free_bounds(self, inputs):
        """(lower, upper) bounds on the free potentials (volts), each shape (n_free,): the
        hidden nodes' ``lower``/``upper`` with ideal diodes, ±inf elsewhere (outputs, and
        every node with Shockley diodes); ``inputs`` is not used."""
        del inputs
        dtype = self.weights[0].dtype
        inf = jnp.full(self.n_outputs, jnp.inf, dtype)
        if self.diode != "ideal":
            return -jnp.full(self.n_free, jnp.inf, dtype), jnp.full(self.n_free, jnp.inf, dtype)
        return jnp.concatenate([*self.lower, -inf]), jnp.concatenate([*self.upper, inf])

    def trainable_filter(self):
        """A pytree of bools shaped like the network: True on the weights and biases, the
        trainable parameters."""
        spec = jax.tree_util.tree_map(lambda _: False, self)
        return eqx.tree_at(
            lambda n: (n.weights, n.biases),
            spec,
            (tuple(True for _ in self.weights), tuple(True for _ in self.biases)),
        )

    def validate(self, inputs):
        """Checks that run inside ``jit``: ``inputs`` returned with an error attached
        (``equinox.error_if``) that raises if an input is NaN or infinite, or a conductance
        negative or not finite."""
        inputs = eqx.error_if(
            inputs, ~jnp.all(jnp.isfinite(inputs)), "kirchhoff: an input is NaN or infinite."
        )
        bad = jnp.array(False)
        for w in self.weights:
            bad = bad | jnp.any(w < 0) | ~jnp.all(jnp.isfinite(w))
        return eqx.error_if(
            inputs,
            bad,
            "kirchhoff: a conductance is negative or not finite; keep conductances ≥ 0.",
        )

    def check_inputs_shape(self, inputs) -> None:
        """Raise [`InvalidInputError`][kirchhoff.InvalidInputError] unless ``inputs`` has
        shape (n_inputs,) or (batch, n_inputs)."""
        shape = np.shape(inputs)
        if len(shape) not in (1, 2) or shape[-1] != self.n_inputs:
            raise InvalidInputError(
                f"kirchhoff: inputs have shape {shape}; this network takes {self.n_inputs} "
                f"features per example: shape ({self.n_inputs},) or (batch, {self.n_inputs})."
            )

    # ---- the equivalent general circuit ---------------------------------------------------
    def circuit_inputs(self, inputs):
        """Inputs of ``to_circuit`` for raw ``inputs`` (…, n_inputs): the 2·n_inputs source
        potentials (volts), +γx then −γx."""
        return self.source_potentials(jnp.asarray(inputs))

    def to_circuit(self) -> Circuit:
        """The same network as a general [`Circuit`][kirchhoff.Circuit]: the cross-check
        against the general solvers and the way to SPICE.

        Its nodes are named ``in+i``, ``in-i`` (the sources), ``h{m}_{j}`` (hidden),
        ``out{j}`` (outputs), ``h{m}_{j}'`` (amplifier outputs) and ``rail{value}`` (diode
        rails other than ground). Its inputs are ``circuit_inputs(x)``, and its free
        potentials are in ``split`` order [h1, …, out], so that it has the same energy at the
        same free potentials.

        Returns:
            The [`Circuit`][kirchhoff.Circuit], with the output nodes as its outputs.

        Raises:
            kirchhoff.InvalidInputError: If the device does not read its state as
                conductance: export ``net.read(key).to_circuit()`` instead.
        """
        return layered_to_circuit(self)
