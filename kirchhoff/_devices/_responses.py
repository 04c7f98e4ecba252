"""Pulse responses: how a signed number of programming pulses moves a device's conductance.

A response acts on the normalised state x = (g − g_lo)/(g_hi − g_lo) ∈ [0, 1] of each device
(g_lo, g_hi its own bounds). ``apply(x, n, scale)`` gives the state after ``n`` pulses
(positive: potentiation, up; negative: depression, down), each pulse ``scale`` times the
nominal one (device-to-device variation of the step; 1 for a nominal device).
``nominal_step`` is the change of x one pulse makes on average over the range, up and down:
what a controller that knows only the datasheet divides an update by to count pulses.

Two families:
- **pulse-coordinate** responses (linear, NeuroSim's exponential, measured tables) give x as a
  monotone function of a pulse count P ∈ [0, L] on each branch; n pulses move P by n (clipped
  to [0, L]) and read x back, so any number of pulses is exact and cheap;
- **per-pulse** responses (aihwkit's soft bounds and exponential step) give the change one
  pulse makes from the present state; n pulses are applied one at a time (up to
  ``max_pulses``) except where a closed form exists (soft bounds).
"""

import csv
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._data._errors import InvalidInputError


def _check_levels(who, name, n):
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise InvalidInputError(f"{who}: {name} must be an integer ≥ 2 (states); got {n!r}.")
    return int(n)


def _check_number(who, name, x, *, above=None, at_least=None):
    try:
        value = float(x)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{who}: {name} must be a real number; got {x!r}.") from None
    if not np.isfinite(value):
        raise InvalidInputError(f"{who}: {name} must be finite; got {value}.")
    if above is not None and not value > above:
        raise InvalidInputError(f"{who}: {name} must be > {above}; got {value}.")
    if at_least is not None and not value >= at_least:
        raise InvalidInputError(f"{who}: {name} must be ≥ {at_least}; got {value}.")
    return value


def asymmetry_factors(up_down: float) -> tuple[float, float]:
    """(up, down) step factors of an up/down asymmetry as aihwkit defines it
    (``rpu_pulsed_device.cpp``): the weaker direction's step shrinks by |up_down|, the other
    keeps its nominal size: up_down > 0 weakens depression, < 0 potentiation."""
    return 1.0 + min(up_down, 0.0), 1.0 - max(up_down, 0.0)


class AbstractResponse(eqx.Module):
    """How pulses move a device's normalised state (module docstring)."""

    def apply(self, x, n, scale=1.0):
        raise NotImplementedError

    def nominal_step(self) -> tuple[float, float]:
        """The mean change of x per pulse, (up, down), both positive."""
        raise NotImplementedError

    def quantise(self, x):
        """The nearest state the device reaches by whole pulses from its lower bound (the
        identity for responses without a grid)."""
        return x


class AbstractPulseCoordinate(AbstractResponse):
    """A response given by x_up(P) (increasing, 0 → 1) and x_down(Q) (decreasing, 1 → 0) for
    pulse counts P, Q ∈ [0, L_up], [0, L_down]; subclasses give them and their inverses."""

    def up(self, p):
        raise NotImplementedError

    def up_inverse(self, x):
        raise NotImplementedError

    def down(self, q):
        raise NotImplementedError

    def down_inverse(self, x):
        raise NotImplementedError

    @property
    def pulses(self) -> tuple[int, int]:
        """Full-range pulse counts (L_up, L_down): one fewer than the levels."""
        raise NotImplementedError

    def nominal_step(self):
        up, down = self.pulses
        return 1.0 / up, 1.0 / down

    def apply(self, x, n, scale=1.0):
        l_up, l_down = self.pulses
        moved = n * scale
        p = jnp.clip(self.up_inverse(x) + moved, 0.0, l_up)
        q = jnp.clip(self.down_inverse(x) - moved, 0.0, l_down)
        new = jnp.where(n > 0, self.up(p), self.down(q))
        return jnp.where(n == 0, x, new)

    def quantise(self, x):
        l_up, _ = self.pulses
        return self.up(jnp.clip(jnp.round(self.up_inverse(x)), 0.0, l_up))


class LinearResponse(AbstractPulseCoordinate):
    """``n_levels`` equally spaced conductances: every pulse moves x by 1/(n_levels − 1), up
    or down (the ideal device quantised)."""

    n_levels: int = eqx.field(static=True)

    def __init__(self, n_levels: int):
        self.n_levels = _check_levels("LinearResponse", "n_levels", n_levels)

    @property
    def pulses(self):
        return self.n_levels - 1, self.n_levels - 1

    def up(self, p):
        return p / (self.n_levels - 1)

    def up_inverse(self, x):
        return x * (self.n_levels - 1)

    def down(self, q):
        return 1.0 - q / (self.n_levels - 1)

    def down_inverse(self, x):
        return (1.0 - x) * (self.n_levels - 1)


def _saturating(p, a, n):
    """(1 − e^{−p/a})/(1 − e^{−n/a}): 0 at p = 0, 1 at p = n, concave for a > 0 (steps shrink
    as p grows) and convex for a < 0; the line p/n as a → ±∞."""
    return jnp.expm1(-p / a) / np.expm1(-n / a)


def _saturating_inverse(x, a, n):
    return -a * jnp.log1p(x * np.expm1(-n / a))


def neurosim_a(nl: float) -> float:
    """NeuroSim's curvature A for a nonlinearity label NL, in units of the branch's pulse
    count, signed like NL. NeuroSim looks A up in a table over NL = 0.01 … 9 (``getParamA``,
    MLP_NeuroSim V3.0 ``formula.cpp``); every entry of that table is the A whose normalised
    curve g(p) = (1 − e^{−p/A})/(1 − e^{−1/A}), p ∈ [0, 1], lies at most 0.07·√2·|NL| above the
    line g = p. Solved here for that A directly (bisection in log A), so any NL in (0, 9] works,
    not only the table's 0.01 grid."""
    target = 0.07 * np.sqrt(2.0) * abs(float(nl))
    if not 0 < abs(float(nl)) <= 10:
        raise InvalidInputError(
            f"NeuroSim nonlinearity must satisfy 0 < |NL| ≤ 10 (its table spans 0.01 … 9); "
            f"got {nl}."
        )

    def gap(a):  # max_p g(p) − p, at p* = −a·ln(a·(1 − e^{−1/a}))
        p = -a * np.log(a * -np.expm1(-1.0 / a))
        return np.expm1(-p / a) / np.expm1(-1.0 / a) - p

    lo, hi = np.log(1e-4), np.log(1e4)  # gap falls from ~1 to ~0 as A grows
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if gap(np.exp(mid)) > target else (lo, mid)
    return float(np.sign(nl) * np.exp(0.5 * (lo + hi)))


class NeuroSimResponse(AbstractPulseCoordinate):
    """NeuroSim's nonlinear pulse response (MLP_NeuroSim V3.0, ``Cell.cpp``; Chen, Peng, Yu,
    IEEE TCAD 2018). Each branch is one curve in the pulse count P ∈ [0, P_max],
    G(P) = B·(1 − e^{−P/A}) + G_min with B = (G_max − G_min)/(1 − e^{−P_max/A}), and its
    curvature A = :func:`neurosim_a` (NL)·P_max. Potentiation climbs the LTP curve; depression
    walks the LTD curve backwards. With NeuroSim's signs (NL_LTP > 0, NL_LTD < 0) both curves
    are steep where the pulse starts moving away from a bound and flat as it nears the other:
    each step shrinks as G nears the bound it moves towards. ``pulses_up``/``pulses_down`` are
    NeuroSim's maxNumLevelLTP/LTD: pulses from one end of the range to the other. NL = 0 is a
    linear branch."""

    pulses_up: int = eqx.field(static=True)
    pulses_down: int = eqx.field(static=True)
    nl_up: float = eqx.field(static=True)
    nl_down: float = eqx.field(static=True)
    a_up: float | None = eqx.field(static=True)
    a_down: float | None = eqx.field(static=True)

    def __init__(self, pulses_up: int, pulses_down: int, nl_up: float, nl_down: float):
        who = "NeuroSimResponse"
        self.pulses_up = _check_levels(who, "pulses_up", pulses_up + 1) - 1
        self.pulses_down = _check_levels(who, "pulses_down", pulses_down + 1) - 1
        self.nl_up = _check_number(who, "nl_up", nl_up)
        self.nl_down = _check_number(who, "nl_down", nl_down)
        self.a_up = None if self.nl_up == 0 else neurosim_a(self.nl_up) * self.pulses_up
        self.a_down = None if self.nl_down == 0 else neurosim_a(self.nl_down) * self.pulses_down

    @property
    def pulses(self):
        return self.pulses_up, self.pulses_down

    def up(self, p):
        n, a = self.pulses_up, self.a_up
        return p / n if a is None else _saturating(p, a, n)

    def up_inverse(self, x):
        n, a = self.pulses_up, self.a_up
        return x * n if a is None else _saturating_inverse(x, a, n)

    def down(self, q):
        # q depressing pulses from the top: the LTD curve at P = P_max − q
        n, a = self.pulses_down, self.a_down
        p = n - q
        return p / n if a is None else _saturating(p, a, n)

    def down_inverse(self, x):
        n, a = self.pulses_down, self.a_down
        return n - (x * n if a is None else _saturating_inverse(x, a, n))


class TableResponse(AbstractPulseCoordinate):
    """A device given by measurements: ``up`` the conductances after 0, 1, 2, … potentiating
    pulses from the bottom of the range, ``down`` after 0, 1, 2, … depressing pulses from the
    top (siemens). Between pulses the state is interpolated linearly in the pulse count.
    The branches must be strictly monotone (increasing, decreasing); their ends set the range
    the device's g_min/g_max are mapped onto (each branch normalised to [0, 1])."""

    up_table: tuple[float, ...] = eqx.field(static=True)  # normalised to [0, 1], hashable
    down_table: tuple[float, ...] = eqx.field(static=True)

    def __init__(self, up, down):
        self.up_table = self._normalised("up", up, increasing=True)
        self.down_table = self._normalised("down", down, increasing=False)

    @staticmethod
    def _normalised(name, table, increasing):
        who = "TableResponse"
        try:
            t = np.asarray(table, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{who}: the {name} branch must be numbers.") from None
        if t.ndim != 1 or t.size < 2:
            raise InvalidInputError(
                f"{who}: the {name} branch needs at least two conductances (a 1-D table); got "
                f"shape {t.shape}."
            )
        if not np.all(np.isfinite(t)):
            raise InvalidInputError(f"{who}: the {name} branch holds a NaN or infinite value.")
        steps = np.diff(t) if increasing else -np.diff(t)
        bad = np.flatnonzero(steps <= 0)
        if bad.size:
            i = int(bad[0])
            way = "increase" if increasing else "decrease"
            raise InvalidInputError(
                f"{who}: the {name} branch must {way} strictly with the pulse count; pulse "
                f"{i + 1} gives {t[i + 1]:g} after {t[i]:g} (a non-monotonic table)."
            )
        lo, hi = (t[0], t[-1]) if increasing else (t[-1], t[0])
        return tuple(float(v) for v in (t - lo) / (hi - lo))

    @classmethod
    def from_csv(cls, path) -> "TableResponse":
        """Read a table from a CSV file with a header naming the columns ``up`` and ``down``
        (any others, e.g. ``pulse``, are ignored): one row per pulse count, conductances in
        siemens; a branch shorter than the other leaves its cells empty."""
        path = pathlib.Path(path)
        try:
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as e:
            raise InvalidInputError(f"TableResponse: cannot read {path}: {e.strerror}.") from None
        if not rows or not {"up", "down"} <= set(rows[0]):
            raise InvalidInputError(
                f"TableResponse: {path} needs a header with columns 'up' and 'down' and at "
                "least one row."
            )
        columns = {}
        for name in ("up", "down"):
            cells = [r[name].strip() if r[name] else "" for r in rows]
            while cells and not cells[-1]:
                cells.pop()
            try:
                columns[name] = [float(c) for c in cells]
            except ValueError:
                raise InvalidInputError(
                    f"TableResponse: {path}: column {name!r} holds a value that is not a "
                    "number (or an empty cell before its end)."
                ) from None
        return cls(columns["up"], columns["down"])

    @property
    def pulses(self):
        return len(self.up_table) - 1, len(self.down_table) - 1

    def up(self, p):
        return jnp.interp(p, np.arange(len(self.up_table), dtype=float), np.array(self.up_table))

    def up_inverse(self, x):
        return jnp.interp(x, np.array(self.up_table), np.arange(len(self.up_table), dtype=float))

    def down(self, q):
        t = np.array(self.down_table)
        return jnp.interp(q, np.arange(t.size, dtype=float), t)

    def down_inverse(self, x):
        # interp needs increasing abscissae: the down branch read backwards
        t = np.array(self.down_table)
        return jnp.interp(x, t[::-1], np.arange(t.size, dtype=float)[::-1])


class SoftBoundsResponse(AbstractResponse):
    """aihwkit's soft-bounds device, in weights w ∈ [w_min, w_max] (w_min < 0 < w_max, mapped
    linearly onto the device's conductance range): a pulse up changes w by
    s_up·(1 − w/w_max), a pulse down by −s_down·(1 − w/w_min), so the step shrinks linearly
    to zero at each bound; s_up, s_down are dw_min with the weaker one shrunk by |up_down|
    (:func:`asymmetry_factors`). n pulses in closed form: w_max − (w_max − w)·(1 − α)^n with
    α = s_up/w_max (likewise down). aihwkit's SoftBoundsDevice (``rpu_linearstep_device``)."""

    dw_min: float = eqx.field(static=True)
    up_down: float = eqx.field(static=True)
    w_min: float = eqx.field(static=True)
    w_max: float = eqx.field(static=True)

    def __init__(
        self, dw_min: float, up_down: float = 0.0, w_min: float = -1.0, w_max: float = 1.0
    ):
        who = "SoftBoundsResponse"
        self.dw_min = _check_number(who, "dw_min", dw_min, above=0)
        self.up_down = _check_number(who, "up_down", up_down)
        if not -1 < self.up_down < 1:
            raise InvalidInputError(f"{who}: up_down must lie in (−1, 1); got {self.up_down}.")
        self.w_min = _check_number(who, "w_min", w_min)
        self.w_max = _check_number(who, "w_max", w_max)
        if not self.w_min < 0 < self.w_max:
            raise InvalidInputError(
                f"{who}: need w_min < 0 < w_max; got w_min={self.w_min}, w_max={self.w_max}."
            )
        f_up, f_down = asymmetry_factors(self.up_down)
        for name, bound, step in (
            ("w_max", self.w_max, self.dw_min * f_up),
            ("w_min", -self.w_min, self.dw_min * f_down),
        ):
            if not step < bound:
                raise InvalidInputError(f"{who}: one pulse ({step:g}) must be smaller than {name}.")

    def nominal_step(self):
        span = self.w_max - self.w_min
        return self.dw_min / span, self.dw_min / span

    def apply(self, x, n, scale=1.0):
        span = self.w_max - self.w_min
        w = self.w_min + x * span
        f_up, f_down = asymmetry_factors(self.up_down)
        up = self.dw_min * f_up * scale / self.w_max
        down = self.dw_min * f_down * scale / -self.w_min
        k = jnp.abs(n)
        w_up = self.w_max - (self.w_max - w) * (1 - jnp.minimum(up, 1.0)) ** k
        w_down = self.w_min + (w - self.w_min) * (1 - jnp.minimum(down, 1.0)) ** k
        new = jnp.where(n > 0, w_up, w_down)
        return jnp.where(n == 0, x, (new - self.w_min) / span)


class ExpStepResponse(AbstractResponse):
    """aihwkit's exponential-step device, in weights w ∈ [w_min, w_max] mapped linearly onto
    the conductance range: with z = 2·a·w/(w_max − w_min) + b, a pulse up changes w by
    s_up·max(1 − A_up·e^{γ_up·z}, 0) and a pulse down by −s_down·max(1 − A_down·e^{−γ_down·z}, 0),
    then w is clipped to its bounds (s_up, s_down as in :class:`SoftBoundsResponse`).
    aihwkit's ExpStepDevice (``rpu_expstep_device``).
    No closed form: n pulses are applied one at a time (at most ``max_pulses``, the
    device's cap on one update)."""

    dw_min: float = eqx.field(static=True)
    up_down: float = eqx.field(static=True)
    a_up: float = eqx.field(static=True)
    a_down: float = eqx.field(static=True)
    gamma_up: float = eqx.field(static=True)
    gamma_down: float = eqx.field(static=True)
    a: float = eqx.field(static=True)
    b: float = eqx.field(static=True)
    w_min: float = eqx.field(static=True)
    w_max: float = eqx.field(static=True)
    max_pulses: int = eqx.field(static=True)

    def __init__(
        self,
        dw_min: float,
        up_down: float = 0.0,
        a_up: float = 0.0,
        a_down: float = 0.0,
        gamma_up: float = 0.0,
        gamma_down: float = 0.0,
        a: float = 0.0,
        b: float = 0.0,
        w_min: float = -1.0,
        w_max: float = 1.0,
        max_pulses: int = 31,
    ):
        who = "ExpStepResponse"
        self.dw_min = _check_number(who, "dw_min", dw_min, above=0)
        self.up_down = _check_number(who, "up_down", up_down)
        self.a_up = _check_number(who, "a_up", a_up)
        self.a_down = _check_number(who, "a_down", a_down)
        self.gamma_up = _check_number(who, "gamma_up", gamma_up)
        self.gamma_down = _check_number(who, "gamma_down", gamma_down)
        self.a = _check_number(who, "a", a)
        self.b = _check_number(who, "b", b)
        self.w_min = _check_number(who, "w_min", w_min)
        self.w_max = _check_number(who, "w_max", w_max)
        if not self.w_min < self.w_max:
            raise InvalidInputError(f"{who}: need w_min < w_max; got {self.w_min}, {self.w_max}.")
        if isinstance(max_pulses, bool) or not isinstance(max_pulses, int) or max_pulses < 1:
            raise InvalidInputError(
                f"{who}: max_pulses must be an integer ≥ 1; got {max_pulses!r}."
            )
        self.max_pulses = max_pulses

    def nominal_step(self):
        span = self.w_max - self.w_min
        return self.dw_min / span, self.dw_min / span

    def pulse(self, w, up, scale=1.0):
        """The weight after one pulse (``up`` a boolean array), clipped to the bounds."""
        z = 2.0 * self.a * w / (self.w_max - self.w_min) + self.b
        grow = jnp.maximum(1.0 - self.a_up * jnp.exp(self.gamma_up * z), 0.0)
        shrink = jnp.maximum(1.0 - self.a_down * jnp.exp(-self.gamma_down * z), 0.0)
        f_up, f_down = asymmetry_factors(self.up_down)
        dw = self.dw_min * scale * jnp.where(up, f_up * grow, -f_down * shrink)
        return jnp.clip(w + dw, self.w_min, self.w_max)

    def apply(self, x, n, scale=1.0):
        span = self.w_max - self.w_min
        w = self.w_min + x * span
        k = jnp.minimum(jnp.abs(n), self.max_pulses)
        up = n > 0

        def body(i, w):
            return jnp.where(i < k, self.pulse(w, up, scale), w)

        w = jax.lax.fori_loop(0, self.max_pulses, body, w)
        return jnp.where(n == 0, x, (w - self.w_min) / span)
