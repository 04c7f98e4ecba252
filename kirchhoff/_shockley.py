"""The Shockley diode's current, co-content and co-content increment as plain functions of the
voltage drop: shared by [`ShockleyDiode`][kirchhoff.ShockleyDiode] and the layered networks."""

import jax
import jax.numpy as jnp


def shockley_current(u, saturation_current, ideality, thermal_voltage, max_exponent=40.0):
    """I_s (exp(u / n V_T) − 1), the exponential continued linearly past ``max_exponent``."""
    x = u / (ideality * thermal_voltage)
    # where, not minimum: at x == max_exponent jnp.minimum splits the derivative in half
    e = jnp.exp(jnp.where(x > max_exponent, max_exponent, x))
    # linear continuation of exp beyond the threshold: C1 current, C2 co-content
    ex = jnp.where(x > max_exponent, e * (1.0 + (x - max_exponent)), e)
    return saturation_current * (ex - 1.0)


def shockley_co_content(u, saturation_current, ideality, thermal_voltage, max_exponent=40.0):
    """∫₀ᵘ of ``shockley_current``."""
    nvt = ideality * thermal_voltage
    x = u / nvt
    e = jnp.exp(jnp.where(x > max_exponent, max_exponent, x))
    # ∫0^x (exp(s) - 1) ds, with exp continued as e^xm (1 + (s - xm)) past xm
    d = jnp.maximum(x - max_exponent, 0.0)
    integral = jnp.where(x > max_exponent, e * (1.0 + d + 0.5 * d**2), e) - 1.0 - x
    return saturation_current * nvt * integral


@jax.custom_jvp
def _exp_remainder(x):
    """``exp(x) − 1 − x`` without cancellation (a series near 0); its derivative is expm1."""
    small = jnp.abs(x) < 0.5
    xs = jnp.where(small, x, 0.0)
    series = jnp.zeros_like(xs)
    for k in range(17, 1, -1):  # Σ_{k=2}^{17} x^k/k!: truncation < 1e-20 relative for |x| < ½
        series = (series + 1.0) * xs / k
    series = series * xs
    return jnp.where(small, series, jnp.expm1(jnp.where(small, 1.0, x)) - x)


@_exp_remainder.defjvp
def _exp_remainder_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return _exp_remainder(x), jnp.expm1(x) * dx


def shockley_co_content_increment(
    u, du, saturation_current, ideality, thermal_voltage, max_exponent=40.0
):
    """``E(u + Δu) − E(u) − i(u)·Δu`` for ``shockley_co_content``, accurate for tiny Δu:
    I_s·nV_T·e^x·(e^{Δx} − 1 − Δx) on the exponential branch, ½·I_s·nV_T·e^{x_m}·Δx² on the
    linear continuation, and the plain difference where a step crosses the threshold."""
    nvt = ideality * thermal_voltage
    x, dx = u / nvt, du / nvt
    below = (x <= max_exponent) & (x + dx <= max_exponent)
    above = (x > max_exponent) & (x + dx > max_exponent)
    xb = jnp.where(below, x, 0.0)
    exp_branch = jnp.exp(xb) * _exp_remainder(jnp.where(below, dx, 0.0))
    lin_branch = jnp.exp(max_exponent) * 0.5 * jnp.where(above, dx, 0.0) ** 2
    args = (saturation_current, ideality, thermal_voltage, max_exponent)
    crossing = (
        shockley_co_content(u + du, *args)
        - shockley_co_content(u, *args)
        - shockley_current(u, *args) * du
    )
    return jnp.where(
        below,
        saturation_current * nvt * exp_branch,
        jnp.where(above, saturation_current * nvt * lin_branch, crossing),
    )


# ---- a series resistance R_s: V = I·R_s + n·V_T·ln(1 + I/I_s) ------------------------------
# In the junction's own variable y = ln(1 + I/I_s) (its voltage over n·V_T) the element is
#   y + a·(e^y − 1) = x,   x = V/(n·V_T),   a = I_s·R_s/(n·V_T),
# with I = I_s·(e^y − 1). Everything below is written in y: its co-content
#   F(V) = ½·R_s·I² + n·V_T·I_s·(e^y − 1 − y)
# (= V·I − ∫I dV over the content, simplified with V = I·R_s + n·V_T·y) is a sum of two
# non-negative terms, and its Bregman increment has the same form in the junction's change Δy,
# which solves the same equation with a' = a·e^y: nothing cancels, at any Δv.


def _log_omega_guess(z):
    """About ln ω(z), ω the Wright omega function (ω + ln ω = z): asymptotic forms for large
    and very negative z, a Taylor polynomial about z = 1 between; within 2 % in ω."""
    zc = jnp.maximum(z, 1.0)
    lz = jnp.log(zc)
    big = jnp.log(zc - lz + lz / zc)
    zs = jnp.minimum(z, -2.0)
    small = zs - jnp.exp(zs)  # ln ω = z − ω, and ω ≈ e^z
    d = jnp.clip(z, -2.0, 1.0) - 1.0
    mid = jnp.log(1.0 + d / 2 + d**2 / 16 - d**3 / 192)
    return jnp.where(z > 1.0, big, jnp.where(z < -2.0, small, mid))


_JUNCTION_NEWTON_STEPS = 5


@jax.custom_jvp
def _junction(x, a):
    """y with y + a·(e^y − 1) = x, for a ≥ 0 (increasing and convex in y).

    Start from the Wright-omega estimate (y = ln ω(x + a + ln a) − ln a), kept inside the
    bracket [x, min(0, x − a·(e^x − 1))] for x < 0 or [0, min(x, ln(1 + x/a))] for x ≥ 0;
    from the left of the root one Newton step lands right of it (convexity); from there Newton
    descends monotonically. Measured over x in ±[1e-8, 1e5], a in [1e-14, 1e4]: four steps
    reach float64 round-off (1e-15 relative), three float32's; five are taken."""
    lo = jnp.where(x < 0, x, 0.0)
    hi = jnp.where(
        x < 0,
        jnp.minimum(0.0, x - a * jnp.expm1(jnp.minimum(x, 0.0))),
        jnp.minimum(x, jnp.log1p(jnp.maximum(x, 0.0) / a)),
    )
    # a underflows to 0 deep in reverse bias (a·e^y of an increment's junction): then y = x
    has_a = a > 0
    log_a = jnp.log(jnp.where(has_a, a, 1.0))

    def newton(y):
        g = y + a * jnp.expm1(y) - x
        return y - g / (1.0 + a * jnp.exp(y)), g

    guess = jnp.where(has_a, _log_omega_guess(x + a + log_a) - log_a, x)
    y = jnp.clip(guess, lo, hi)
    step, g = newton(y)
    y = jnp.where(g < 0, jnp.minimum(step, hi), y)
    # a loop, not unrolled: the solve sits inside the sweeps' own Newton loops and scans
    return jax.lax.fori_loop(
        0, _JUNCTION_NEWTON_STEPS, lambda _, y: jnp.maximum(newton(y)[0], lo), y
    )


@_junction.defjvp
def _junction_jvp(primals, tangents):
    (x, a), (dx, da) = primals, tangents
    y = _junction(x, a)
    # implicit function theorem on y + a·(e^y − 1) − x = 0
    return y, (dx - jnp.expm1(y) * da) / (1.0 + a * jnp.exp(y))


def _series_scales(saturation_current, ideality, thermal_voltage, series_resistance):
    nvt = ideality * thermal_voltage
    return nvt, saturation_current * series_resistance / nvt


def series_shockley_current(u, saturation_current, ideality, thermal_voltage, series_resistance):
    """Current of a Shockley diode behind a series resistance R_s > 0: the root I of
    u = I·R_s + n·V_T·ln(1 + I/I_s). Its derivative is exact (implicit differentiation):
    dI/du = 1/(R_s + n·V_T/(I + I_s)). No overflow: the current grows as u/R_s."""
    nvt, a = _series_scales(saturation_current, ideality, thermal_voltage, series_resistance)
    return saturation_current * jnp.expm1(_junction(u / nvt, a))


def series_shockley_co_content(u, saturation_current, ideality, thermal_voltage, series_resistance):
    """∫₀ᵘ of ``series_shockley_current``: ½·R_s·I² + n·V_T·I_s·(e^y − 1 − y), y the
    junction's voltage over n·V_T (its derivative in u is the current, by autodiff)."""
    nvt, a = _series_scales(saturation_current, ideality, thermal_voltage, series_resistance)
    y = _junction(u / nvt, a)
    current = saturation_current * jnp.expm1(y)
    return 0.5 * series_resistance * current**2 + nvt * saturation_current * _exp_remainder(y)


def series_shockley_co_content_increment(
    u, du, saturation_current, ideality, thermal_voltage, series_resistance
):
    """``E(u + Δu) − E(u) − i(u)·Δu`` for ``series_shockley_co_content``, exact in closed
    form: with c = I_s·e^y = I(u) + I_s and the junction's change Δy (the root of
    Δy + a·e^y·(e^Δy − 1) = Δu/nV_T), the current change is ΔI = c·(e^Δy − 1) and the
    increment ½·R_s·ΔI² + n·V_T·c·(e^Δy − 1 − Δy): two non-negative terms, accurate to
    round-off relative to themselves however small Δu (its derivative in Δu is ΔI)."""
    nvt, a = _series_scales(saturation_current, ideality, thermal_voltage, series_resistance)
    y = _junction(u / nvt, a)
    growth = jnp.exp(y)
    dy = _junction(du / nvt, a * growth)
    c = saturation_current * growth
    change = c * jnp.expm1(dy)
    return 0.5 * series_resistance * change**2 + nvt * c * _exp_remainder(dy)
