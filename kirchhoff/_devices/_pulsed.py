"""A programmable conductance written by pulses, with the non-idealities of real memristors.

``PulsedDevice`` composes, each off by default:
- bounds [g_min, g_max] and a pulse response (``_responses``): a finite number of levels,
  a nonlinear, asymmetric step, or a measured table;
- write (programming) noise, cycle to cycle: each pulse's change of conductance is multiplied
  by (1 + σ_w·ε), so an update of n pulses that moves g by Δ gets a Gaussian error of standard
  deviation σ_w·|Δ|/√|n| (n independent pulses of Δ/n each): proportional to the step;
- read noise, drawn afresh at every read (every phase of a training step reads anew): a read
  presents g·(1 + σ_r·ε), never below 0;
- device-to-device variation, fixed when a network is built, from the device's ``seed``: each
  device's step is scaled by max(1 + σ_s·ε, 0) (or e^{σ_s·ε}, ``d2d_lognormal``), and its
  bounds by (1 + σ_b·ε) each;
- up/down asymmetry as aihwkit defines it: the weaker direction's step is (1 − |up_down|)
  times the response's (depression for up_down > 0), on top of any asymmetry the response has;
- stuck devices: a fraction of the devices ignores every write, half of them stuck at their
  g_min and half at their g_max (``stuck_high`` sets the share at g_max).

An update Δg (siemens, an optimiser's step) becomes a signed whole number of pulses,
n = round(Δg / (nominal step)), the nominal step being the datasheet's mean change per pulse
((g_max − g_min)·``response.nominal_step()``), rounded to the nearest integer or, with
``stochastic_rounding``, up with probability equal to the fraction; |n| ≤ ``max_pulses``.
A hybrid chip keeps the optimiser (momentum, Adam) in software: only its step meets the device.

Conductances are in the network's units: a circuit's potentials are unchanged when every
conductance, bias current and nudge is multiplied by one factor, so a preset keeps its on/off
ratio, levels and noise (all relative) at any ``g_max``.
"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._data._errors import InvalidInputError, InvalidInputTypeError
from ._base import AbstractDevice
from ._responses import AbstractResponse, LinearResponse, _check_number, asymmetry_factors


class Cells(eqx.Module):
    """What differs from device to device in one array, drawn once: each device's step factor,
    bounds (siemens) and whether it is stuck (0: no, 1: at its g_min, 2: at its g_max)."""

    scale: jax.Array
    g_lo: jax.Array
    g_hi: jax.Array
    stuck: jax.Array


class PulsedDevice(AbstractDevice):
    """A memristor programmed by pulses, with the non-idealities of real devices (each off by
    default).

    The state is the conductance (siemens) in [``g_min``, ``g_max``]. A write turns an update
    Δg (an optimiser's step: a hybrid chip keeps momentum or Adam in software, and only its
    step meets the device) into a signed whole number of pulses n = Δg / (nominal step),
    rounded, with the nominal step the datasheet's mean change per pulse,
    (g_max − g_min)·``response.nominal_step()``; the ``response`` then says where n pulses
    take each device. A circuit's potentials do not change when every conductance, bias
    current and nudge is multiplied by one factor, so a device keeps its on/off ratio, levels
    and (relative) noise at any ``g_max``. The non-idealities:

    - write noise, cycle to cycle: each pulse's change is multiplied by (1 + σ_w·ε), so n
      pulses that move g by Δ get a Gaussian error of standard deviation σ_w·|Δ|/√|n|;
    - read noise, drawn afresh at every read (every phase of a training step reads anew):
      a read presents g·(1 + σ_r·ε), never below 0;
    - device-to-device variation, drawn once per weight array when a network is built
      (``sample_cells``, from ``seed``): each device's step is scaled by max(1 + σ_s·ε, 0)
      (or e^{σ_s·ε}), and each of its bounds by (1 + σ_b·ε);
    - up/down asymmetry as aihwkit defines it: the weaker direction's step is (1 − |up_down|)
      times the response's, on top of any asymmetry the response has;
    - stuck devices, which ignore every write and sit at their g_min or g_max.

    [`device_preset`][kirchhoff.device_preset] builds one from a published device.

    Args:
        g_max: The top of the conductance range (siemens, > 0).
        g_min: The bottom of the range (siemens, 0 ≤ g_min < g_max; default 0).
        response: How pulses move the normalised state, an
            [`AbstractResponse`][kirchhoff.AbstractResponse]; default: 256 equally spaced
            levels, [`LinearResponse`][kirchhoff.LinearResponse] with ``n_levels=256``.
        write_noise: σ_w, the cycle-to-cycle spread of a pulse's change, relative to that
            change (≥ 0; 0: none). Programming with it needs a PRNG key.
        read_noise: σ_r, the spread of a read relative to the conductance (≥ 0; 0: none).
            A read without a PRNG key draws none.
        d2d_step: σ_s, the device-to-device spread of the step (≥ 0; 0: none).
        d2d_bounds: σ_b, the device-to-device spread of each bound, relative to it
            (0 ≤ σ_b < 1). A device's range keeps at least a tenth of the nominal span.
        d2d_lognormal: Draw the step's factor log-normally, e^{σ_s·ε}, rather than
            max(1 + σ_s·ε, 0).
        stuck_fraction: The fraction of devices stuck (in [0, 1]; 0: none).
        stuck_high: The share of the stuck devices stuck at their g_max rather than their
            g_min (in [0, 1]; default half).
        up_down: The up/down asymmetry, in (−1, 1): > 0 weakens depression, < 0
            potentiation; 0 (the default) for none.
        stochastic_rounding: Round the number of pulses up with probability equal to its
            fraction (unbiased; needs a PRNG key) rather than to the nearest integer.
        max_pulses: The most pulses one update may send to a device (an integer ≥ 1), or None
            (the default) for enough to cross the whole range.
        seed: The integer seed, in [0, 2³²), that the device-to-device variation is drawn from.
        name: A label (a preset's name).

    Raises:
        kirchhoff.InvalidInputError: For a value out of its range (e.g. g_min ≥ g_max).
        kirchhoff.InvalidInputTypeError: If ``response`` is not a pulse response.
    """

    g_min: float = eqx.field(static=True)
    g_max: float = eqx.field(static=True)
    response: AbstractResponse
    write_noise: float = eqx.field(static=True)
    read_noise: float = eqx.field(static=True)
    d2d_step: float = eqx.field(static=True)
    d2d_bounds: float = eqx.field(static=True)
    d2d_lognormal: bool = eqx.field(static=True)
    stuck_fraction: float = eqx.field(static=True)
    stuck_high: float = eqx.field(static=True)
    up_down: float = eqx.field(static=True)
    stochastic_rounding: bool = eqx.field(static=True)
    max_pulses: int | None = eqx.field(static=True)
    seed: int = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __init__(
        self,
        g_max: float,
        g_min: float = 0.0,
        response: AbstractResponse | None = None,
        *,
        write_noise: float = 0.0,
        read_noise: float = 0.0,
        d2d_step: float = 0.0,
        d2d_bounds: float = 0.0,
        d2d_lognormal: bool = False,
        stuck_fraction: float = 0.0,
        stuck_high: float = 0.5,
        up_down: float = 0.0,
        stochastic_rounding: bool = False,
        max_pulses: int | None = None,
        seed: int = 0,
        name: str = "pulsed",
    ):
        who = "PulsedDevice"
        self.g_max = _check_number(who, "g_max", g_max, above=0)
        self.g_min = _check_number(who, "g_min", g_min, at_least=0)
        if not self.g_min < self.g_max:
            raise InvalidInputError(
                f"{who}: need 0 ≤ g_min < g_max; got g_min={self.g_min:g}, g_max={self.g_max:g}."
            )
        response = LinearResponse(256) if response is None else response
        if not isinstance(response, AbstractResponse):
            raise InvalidInputTypeError(
                f"{who}: response must be a pulse response, not {response!r}."
            )
        self.response = response
        for field in ("write_noise", "read_noise", "d2d_step", "d2d_bounds"):
            setattr(self, field, _check_number(who, field, locals()[field], at_least=0))
        self.stuck_fraction = _check_number(who, "stuck_fraction", stuck_fraction, at_least=0)
        self.stuck_high = _check_number(who, "stuck_high", stuck_high, at_least=0)
        for field in ("stuck_fraction", "stuck_high"):
            if getattr(self, field) > 1:
                raise InvalidInputError(
                    f"{who}: {field} is a fraction in [0, 1]; got {getattr(self, field)}."
                )
        self.up_down = _check_number(who, "up_down", up_down)
        if not -1 < self.up_down < 1:
            raise InvalidInputError(f"{who}: up_down must lie in (−1, 1); got {self.up_down}.")
        if self.d2d_bounds >= 1:
            raise InvalidInputError(
                f"{who}: d2d_bounds is a relative spread below 1; got {self.d2d_bounds}."
            )
        self.stochastic_rounding = bool(stochastic_rounding)
        self.d2d_lognormal = bool(d2d_lognormal)
        if max_pulses is not None and (
            isinstance(max_pulses, bool) or not isinstance(max_pulses, int) or max_pulses < 1
        ):
            raise InvalidInputError(
                f"{who}: max_pulses must be an integer ≥ 1 or None; got {max_pulses!r}."
            )
        self.max_pulses = max_pulses
        if (
            isinstance(seed, bool)
            or not isinstance(seed, int | np.integer)
            or not 0 <= seed < 2**32
        ):
            raise InvalidInputError(f"{who}: seed must be an integer in [0, 2³²); got {seed!r}.")
        self.seed = int(seed)
        self.name = str(name)

    def with_options(self, **fields) -> "PulsedDevice":
        """A copy with ``fields`` replaced (checked as in the constructor), e.g.
        ``dev.with_options(read_noise=0.0)``."""
        return dataclasses.replace(self, **fields)

    # ---- fixed per-device parameters ----------------------------------------------------------
    def sample_cells(self, shape, index):
        """What differs from device to device in one weight array, drawn once from ``seed``
        and ``index``: each device's step factor, its bounds and whether it is stuck.

        Args:
            shape: The shape of the weight array.
            index: Its position among the network's weight arrays (each draws its own).

        Returns:
            The per-device parameters (a ``Cells`` of arrays of ``shape``), or None when the
            device has no variation (``d2d_step``, ``d2d_bounds`` and ``stuck_fraction`` all
            0).
        """
        if not (self.d2d_step or self.d2d_bounds or self.stuck_fraction):
            return None
        key = jax.random.fold_in(jax.random.PRNGKey(self.seed), index)
        k_step, k_lo, k_hi, k_stuck, k_high = jax.random.split(key, 5)
        dtype = jnp.result_type(float)
        normal = lambda k: jax.random.normal(k, shape, dtype)
        if self.d2d_lognormal:
            scale = jnp.exp(self.d2d_step * normal(k_step))
        else:
            scale = jnp.maximum(1.0 + self.d2d_step * normal(k_step), 0.0)
        g_lo = self.g_min * (1.0 + self.d2d_bounds * normal(k_lo))
        g_hi = self.g_max * (1.0 + self.d2d_bounds * normal(k_hi))
        # a device's range never inverts: keep at least a tenth of the nominal span
        g_lo = jnp.clip(g_lo, 0.0, None)
        g_hi = jnp.maximum(g_hi, g_lo + 0.1 * (self.g_max - self.g_min))
        stuck = jax.random.uniform(k_stuck, shape) < self.stuck_fraction
        high = jax.random.uniform(k_high, shape) < self.stuck_high
        code = jnp.where(stuck, jnp.where(high, 2, 1), 0).astype(jnp.int8)
        return Cells(scale, g_lo, g_hi, code)

    def _bounds(self, cells, dtype):
        if cells is None:
            return jnp.asarray(self.g_min, dtype), jnp.asarray(self.g_max, dtype), 1.0
        return cells.g_lo.astype(dtype), cells.g_hi.astype(dtype), cells.scale.astype(dtype)

    def _pin_stuck(self, state, cells):
        if cells is None or not self.stuck_fraction:
            return state
        lo, hi, _ = self._bounds(cells, state.dtype)
        return jnp.where(cells.stuck == 1, lo, jnp.where(cells.stuck == 2, hi, state))

    def initial_state(self, conductance, cells=None):
        """Each device at the state of its grid nearest to the given conductance (clipped to
        its range); stuck devices at their stuck value.

        Args:
            conductance: The wanted conductances (siemens), any shape.
            cells: What ``sample_cells`` drew for this array, or None.

        Returns:
            The states (siemens), shaped like ``conductance``.
        """
        g = jnp.asarray(conductance)
        lo, hi, _ = self._bounds(cells, g.dtype)
        x = jnp.clip((g - lo) / (hi - lo), 0.0, 1.0)
        x = jnp.clip(self.response.quantise(x), 0.0, 1.0)
        return self._pin_stuck((lo + x * (hi - lo)).astype(g.dtype), cells)

    # ---- the seam -------------------------------------------------------------------------------
    @property
    def noisy_read(self) -> bool:
        """Whether reads draw noise (``read_noise`` > 0)."""
        return self.read_noise > 0

    def read(self, state, key=None, cells=None):
        """The conductances the devices present: the state, times (1 + σ_r·ε) with read noise
        and a ``key`` (never below 0).

        Args:
            state: The conductances held (siemens), any shape.
            key: A JAX PRNG key to draw the read noise from, or None (no noise).
            cells: Unused: the state already holds stuck devices at their values.

        Returns:
            The conductances read (siemens), shaped like ``state``.
        """
        del cells  # the state already holds stuck devices at their values
        if not self.read_noise or key is None:
            return state
        noise = jax.random.normal(key, state.shape, state.dtype)
        return jnp.maximum(state * (1.0 + self.read_noise * noise), 0.0)

    def pulses(self, update, key=None):
        """The signed whole number of pulses (as floats) an update Δg asks for.

        Args:
            update: The change of conductance (siemens), any shape.
            key: A JAX PRNG key; needed with ``stochastic_rounding``.

        Returns:
            The pulse counts, shaped like ``update``: Δg over the nominal step of its
            direction, rounded, with |n| at most ``max_pulses``.
        """
        up, down = self.response.nominal_step()
        span = self.g_max - self.g_min
        wanted = update / jnp.where(update >= 0, up * span, down * span).astype(update.dtype)
        if self.stochastic_rounding:
            if key is None:
                raise InvalidInputError(
                    "PulsedDevice: stochastic_rounding needs a PRNG key in program()."
                )
            n = jnp.floor(wanted + jax.random.uniform(key, wanted.shape, wanted.dtype))
        else:
            n = jnp.round(wanted)
        limit = self.max_pulses
        if limit is None:
            limit = max(round(1.0 / up), round(1.0 / down))
        return jnp.clip(n, -limit, limit)

    def program(self, state, update, key=None, cells=None):
        """The state after the pulses that ``update`` asks for: counted by ``pulses``, moved
        by the response (with this device's step factor and asymmetry), perturbed by write
        noise and clipped to the device's bounds; a device sent no pulse does not change, and
        a stuck device stays at its stuck value.

        Args:
            state: The conductances held (siemens), any shape.
            update: The change of conductance asked for (an optimiser's step, siemens),
                shaped like ``state``.
            key: A JAX PRNG key; needed with ``write_noise`` or ``stochastic_rounding``.
            cells: What ``sample_cells`` drew for this array, or None.

        Returns:
            The new conductances (siemens), shaped like ``state``.

        Raises:
            kirchhoff.InvalidInputError: If write noise or stochastic rounding has no key.
        """
        k_round, k_write = (None, None) if key is None else jax.random.split(key)
        n = self.pulses(update, k_round)
        lo, hi, scale = self._bounds(cells, state.dtype)
        if self.up_down:
            f_up, f_down = asymmetry_factors(self.up_down)
            scale = scale * jnp.where(n > 0, f_up, f_down)
        span = hi - lo
        x = jnp.clip((state - lo) / span, 0.0, 1.0)
        moved = self.response.apply(x, n, scale)
        if self.write_noise:
            if k_write is None:
                raise InvalidInputError("PulsedDevice: write_noise needs a PRNG key in program().")
            eps = jax.random.normal(k_write, state.shape, state.dtype)
            sigma = self.write_noise * jnp.abs(moved - x) / jnp.sqrt(jnp.maximum(jnp.abs(n), 1.0))
            moved = moved + sigma * eps
        g = lo + jnp.clip(moved, 0.0, 1.0) * span
        # no pulse, no change: not even the round trip through x's rounding
        g = jnp.where(n == 0, state, g.astype(state.dtype))
        return self._pin_stuck(g, cells)
