"""The Shockley diode's current, co-content and co-content increment as plain functions of the
voltage drop: shared by :class:`~kirchhoff.ShockleyDiode` and the layered networks."""

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
    """∫₀ᵘ of :func:`shockley_current`."""
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
    """``E(u + Δu) − E(u) − i(u)·Δu`` for :func:`shockley_co_content`, accurate for tiny Δu:
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
