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
    """How programming pulses move a device's conductance: the pulse response of a
    [`PulsedDevice`][kirchhoff.PulsedDevice].

    A response acts on the normalised state x = (g − g_lo)/(g_hi − g_lo) ∈ [0, 1] of each
    device (g_lo, g_hi its own bounds), so it holds no conductances. A subclass must provide
    ``apply`` (the state after n pulses) and ``nominal_step`` (the mean change of x per pulse,
    what a controller that knows only the datasheet divides an update by to count pulses); it
    may override ``quantise`` (the identity by default, for a response without a grid).
    """

    def apply(self, x, n, scale=1.0):
        """The normalised state after ``n`` pulses.

        Args:
            x: The normalised states in [0, 1], any shape.
            n: The signed whole numbers of pulses (as floats), shaped like ``x``: positive
                potentiate (up), negative depress (down), 0 leaves ``x`` as it is.
            scale: Each pulse's size relative to the nominal one (the device-to-device
                variation of the step): a scalar or one per device; 1 for a nominal device.

        Returns:
            The new normalised states in [0, 1], shaped like ``x``.
        """
        raise NotImplementedError

    def nominal_step(self) -> tuple[float, float]:
        """The mean change of x per pulse over the range, (up, down), both positive."""
        raise NotImplementedError

    def quantise(self, x):
        """The nearest state the device reaches by whole pulses from its lower bound (the
        identity for responses without a grid).

        Args:
            x: The normalised states in [0, 1], any shape.

        Returns:
            The reachable states nearest to ``x``, shaped like it.
        """
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
    """``n_levels`` equally spaced conductances: every pulse moves the normalised state x by
    1/(n_levels − 1), up or down (the ideal device quantised). The default response of a
    [`PulsedDevice`][kirchhoff.PulsedDevice], with 256 levels.

    Args:
        n_levels: The number of conductance levels, bottom and top included (an integer
            ≥ 2): n_levels − 1 pulses cross the range.

    Raises:
        kirchhoff.InvalidInputError: If ``n_levels`` is not an integer ≥ 2.
    """

    n_levels: int = eqx.field(static=True)

    def __init__(self, n_levels: int):
        self.n_levels = _check_levels("LinearResponse", "n_levels", n_levels)

    @property
    def pulses(self):
        """Full-range pulse counts (up, down): n_levels − 1 each."""
        return self.n_levels - 1, self.n_levels - 1

    def up(self, p):
        """The normalised state after ``p`` pulses up from the bottom: p/(n_levels − 1)."""
        return p / (self.n_levels - 1)

    def up_inverse(self, x):
        """The pulse count up from the bottom that reaches the normalised state ``x``."""
        return x * (self.n_levels - 1)

    def down(self, q):
        """The normalised state after ``q`` pulses down from the top: 1 − q/(n_levels − 1)."""
        return 1.0 - q / (self.n_levels - 1)

    def down_inverse(self, x):
        """The pulse count down from the top that reaches the normalised state ``x``."""
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
    IEEE TCAD 2018).

    Each branch is one curve in the pulse count P ∈ [0, P_max],
    G(P) = B·(1 − e^{−P/A}) + G_min with B = (G_max − G_min)/(1 − e^{−P_max/A}), and its
    curvature A is set by the nonlinearity label NL: A/P_max is the curvature whose normalised
    curve lies at most 0.07·√2·|NL| above the straight line (the rule NeuroSim's table
    ``getParamA`` follows, solved here for any NL rather than looked up on its 0.01 grid).
    Potentiation climbs the LTP curve; depression walks the LTD curve backwards. With
    NeuroSim's signs (NL_LTP > 0, NL_LTD < 0) both curves are steep where the pulse starts
    moving away from a bound and flat as it nears the other: each step shrinks as G nears the
    bound it moves towards.

    Args:
        pulses_up: Pulses from the bottom of the range to the top (NeuroSim's
            maxNumLevelLTP; an integer ≥ 1).
        pulses_down: Pulses from the top to the bottom (maxNumLevelLTD; an integer ≥ 1).
        nl_up: The nonlinearity label NL of potentiation (0 < |NL| ≤ 10, NeuroSim's sign
            convention: > 0), or 0 for a linear branch.
        nl_down: The nonlinearity label of depression (0 < |NL| ≤ 10, usually < 0), or 0
            for a linear branch.

    Raises:
        kirchhoff.InvalidInputError: For a pulse count below 1 or an NL out of range.
    """

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
        """Full-range pulse counts (``pulses_up``, ``pulses_down``)."""
        return self.pulses_up, self.pulses_down

    def up(self, p):
        """The normalised state after ``p`` pulses up from the bottom (the LTP curve)."""
        n, a = self.pulses_up, self.a_up
        return p / n if a is None else _saturating(p, a, n)

    def up_inverse(self, x):
        """The pulse count on the LTP curve that reaches the normalised state ``x``."""
        n, a = self.pulses_up, self.a_up
        return x * n if a is None else _saturating_inverse(x, a, n)

    def down(self, q):
        """The normalised state after ``q`` pulses down from the top (the LTD curve)."""
        # q depressing pulses from the top: the LTD curve at P = P_max − q
        n, a = self.pulses_down, self.a_down
        p = n - q
        return p / n if a is None else _saturating(p, a, n)

    def down_inverse(self, x):
        """The pulse count down from the top on the LTD curve that reaches ``x``."""
        n, a = self.pulses_down, self.a_down
        return n - (x * n if a is None else _saturating_inverse(x, a, n))


class TableResponse(AbstractPulseCoordinate):
    """A device given by measurements: the conductance after each number of pulses, one table
    per direction. Between pulses the state is interpolated linearly in the pulse count.

    Only the tables' shapes matter: each branch is normalised to [0, 1], its ends mapped onto
    the device's g_min and g_max (its own bounds, with device-to-device variation).
    ``TableResponse.from_csv`` reads the tables from a file.

    Args:
        up: The conductances after 0, 1, 2, … potentiating pulses from the bottom of the range
            (siemens), a 1-D sequence of at least two, strictly increasing.
        down: The conductances after 0, 1, 2, … depressing pulses from the top (siemens), a
            1-D sequence of at least two, strictly decreasing.

    Raises:
        kirchhoff.InvalidInputError: If a branch is not 1-D, has fewer than two values, holds
            a NaN or infinite value, or is not strictly monotone.
    """

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
        siemens; a branch shorter than the other leaves its cells empty.

        Args:
            path: The CSV file (a string or path).

        Returns:
            The [`TableResponse`][kirchhoff.TableResponse] of its two columns.

        Raises:
            kirchhoff.InvalidInputError: If the file cannot be read, lacks the columns, or
                holds a value that is not a number.
        """
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
        """Full-range pulse counts (up, down): one fewer than each table's length."""
        return len(self.up_table) - 1, len(self.down_table) - 1

    def up(self, p):
        """The normalised state after ``p`` pulses up from the bottom (the ``up`` table)."""
        return jnp.interp(p, np.arange(len(self.up_table), dtype=float), np.array(self.up_table))

    def up_inverse(self, x):
        """The pulse count up from the bottom that reaches the normalised state ``x``."""
        return jnp.interp(x, np.array(self.up_table), np.arange(len(self.up_table), dtype=float))

    def down(self, q):
        """The normalised state after ``q`` pulses down from the top (the ``down`` table)."""
        t = np.array(self.down_table)
        return jnp.interp(q, np.arange(t.size, dtype=float), t)

    def down_inverse(self, x):
        """The pulse count down from the top that reaches the normalised state ``x``."""
        # interp needs increasing abscissae: the down branch read backwards
        t = np.array(self.down_table)
        return jnp.interp(x, t[::-1], np.arange(t.size, dtype=float)[::-1])


class SoftBoundsResponse(AbstractResponse):
    """aihwkit's soft-bounds device (SoftBoundsDevice, ``rpu_linearstep_device``): each step
    shrinks linearly to zero at the bound it moves towards.

    It works in aihwkit's weights w ∈ [w_min, w_max] (w_min < 0 < w_max), mapped linearly onto
    the device's conductance range. A pulse up changes w by s_up·(1 − w/w_max), a pulse down
    by −s_down·(1 − w/w_min); s_up and s_down are ``dw_min``, the weaker one shrunk by
    |up_down|. n pulses in closed form: w_max − (w_max − w)·(1 − α)^n with α = s_up/w_max
    (likewise down).

    Args:
        dw_min: The step at w = 0, in weight units (> 0, smaller than each bound).
        up_down: The up/down asymmetry, in (−1, 1): > 0 weakens depression, < 0
            potentiation (aihwkit's convention); 0 for none.
        w_min: The lower bound of the weight (< 0; default −1).
        w_max: The upper bound of the weight (> 0; default 1).

    Raises:
        kirchhoff.InvalidInputError: For a value out of its range.
    """

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
        """``dw_min`` over the weight span, (up, down) alike."""
        span = self.w_max - self.w_min
        return self.dw_min / span, self.dw_min / span

    def apply(self, x, n, scale=1.0):
        """The normalised state after ``n`` pulses, in closed form (see
        [`AbstractResponse.apply`][kirchhoff.AbstractResponse.apply] for the arguments)."""
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
    """aihwkit's exponential-step device (ExpStepDevice, ``rpu_expstep_device``).

    It works in weights w ∈ [w_min, w_max], mapped linearly onto the conductance range. With
    z = 2·a·w/(w_max − w_min) + b, a pulse up changes w by s_up·max(1 − A_up·e^{γ_up·z}, 0)
    and a pulse down by −s_down·max(1 − A_down·e^{−γ_down·z}, 0), then w is clipped to its
    bounds; s_up and s_down are ``dw_min``, the weaker one shrunk by |up_down| (as in
    [`SoftBoundsResponse`][kirchhoff.SoftBoundsResponse]). There is no closed form: n pulses
    are applied one at a time, at most ``max_pulses`` of them (more are dropped).

    Args:
        dw_min: The nominal step, in weight units (> 0).
        up_down: The up/down asymmetry (> 0 weakens depression, < 0 potentiation; 0: none).
        a_up: A_up, the amplitude of the exponential term of a pulse up (0: a constant
            step).
        a_down: A_down, the amplitude of the exponential term of a pulse down.
        gamma_up: γ_up, the exponential's rate in z for a pulse up.
        gamma_down: γ_down, the exponential's rate in z for a pulse down.
        a: The slope a of z in the weight.
        b: The offset b of z.
        w_min: The lower bound of the weight (default −1; below ``w_max``).
        w_max: The upper bound of the weight (default 1).
        max_pulses: The most pulses one update applies (an integer ≥ 1; default 31): the
            length of the loop that applies them, whatever the update asks.

    Raises:
        kirchhoff.InvalidInputError: For a value out of its range.
    """

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
        """``dw_min`` over the weight span, (up, down) alike."""
        span = self.w_max - self.w_min
        return self.dw_min / span, self.dw_min / span

    def pulse(self, w, up, scale=1.0):
        """The weight after one pulse, clipped to the bounds.

        Args:
            w: The weights, in [w_min, w_max], any shape.
            up: True where the pulse potentiates, False where it depresses (a boolean array
                broadcastable to ``w``).
            scale: Each device's step relative to the nominal one (a scalar or one per
                device).

        Returns:
            The new weights, shaped like ``w``.
        """
        z = 2.0 * self.a * w / (self.w_max - self.w_min) + self.b
        grow = jnp.maximum(1.0 - self.a_up * jnp.exp(self.gamma_up * z), 0.0)
        shrink = jnp.maximum(1.0 - self.a_down * jnp.exp(-self.gamma_down * z), 0.0)
        f_up, f_down = asymmetry_factors(self.up_down)
        dw = self.dw_min * scale * jnp.where(up, f_up * grow, -f_down * shrink)
        return jnp.clip(w + dw, self.w_min, self.w_max)

    def apply(self, x, n, scale=1.0):
        """The normalised state after ``n`` pulses, applied one at a time (at most
        ``max_pulses``; see [`AbstractResponse.apply`][kirchhoff.AbstractResponse.apply] for
        the arguments)."""
        span = self.w_max - self.w_min
        w = self.w_min + x * span
        k = jnp.minimum(jnp.abs(n), self.max_pulses)
        up = n > 0

        def body(i, w):
            return jnp.where(i < k, self.pulse(w, up, scale), w)

        w = jax.lax.fori_loop(0, self.max_pulses, body, w)
        return jnp.where(n == 0, x, (w - self.w_min) / span)
