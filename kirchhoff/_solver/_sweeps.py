"""Exact block coordinate descent sweeps for layered networks (Scellier 2024).

Given its two neighbouring layers, the energy is separable over a layer's nodes, so each
layer has a closed-form minimiser: v = clip((Σ g·v_nbr + I)/Σ g, lo, hi) for ideal diodes,
a safeguarded 1-D Newton solve per node for Shockley diodes. Sweeping odd layers then even
layers is exact coordinate descent on the (strictly convex) energy.

The resistors' terms S and R (``layer_terms``) are closed forms of the energy's gradient
in a layer's potentials: ``tests/test_layered.py`` proves them equal to autodiff of
``LayeredNetwork.energy``, and ``benchmarks/throughput.py`` measures them beside the
autodiff-derived sweep (see ``layer_terms``). The diodes' currents and conductances are
derived from their co-content by autodiff (``LayeredNetwork.layer_diode_current``)."""

import jax
import jax.numpy as jnp

from .._layered import LayeredNetwork


def input_drive(net: LayeredNetwork, inputs):
    """The constant input contribution Σ_i g_ij·v_i into the first hidden layer (…, h1):
    computed once per example and shared by all sweeps and phases. The sources are ±γx, so
    this is γ·x @ (W₊ − W₋): one (n_features × h1) product, half the work of the 2n sources."""
    n = net.n_inputs
    w = net.weights[0]
    return net.input_gain * (inputs @ (w[:n] - w[n:]))


def layer_sums(net: LayeredNetwork):
    """Σ g over each free node's resistors, per layer (constant across sweeps and phases)."""
    out = []
    for m in range(1, net.n_layers + 1):
        s = jnp.sum(net.weights[m - 1], axis=0)
        if m < net.n_layers:
            s = s + jnp.sum(net.weights[m], axis=1)
        out.append(s)
    return out


def layer_terms(net: LayeredNetwork, layers, m, drive, target, beta, sums=None):
    """Total conductance S and injected current R at layer m (per unit of its energy weight):
    KCL at layer m reads S·v − R (+ diode currents) = 0. ``sums`` caches ``layer_sums``.

    Closed form of ∂E/∂v_m = w_m·(S·v_m − R), kept for speed: the training step with these
    terms and ``_pair_gradient``'s runs 1.9× (DRN-1H) and 2.2× (DRN-XS) faster at batch 64
    (1.35–2.3× over batches 4–256) than the same step with every derivative taken from
    ``LayeredNetwork.energy`` by autodiff (``benchmarks/throughput.py``, ``closed_forms``);
    ``tests/test_layered.py`` proves them equal."""
    L1 = net.n_layers
    w_in = net.weights[m - 1]
    s = layer_sums(net)[m - 1] if sums is None else sums[m - 1]
    r = drive if m == 1 else net.drive_gain(m - 1) * (layers[m - 1] @ w_in)
    if m < L1:
        w_out = net.weights[m]
        r = r + (layers[m + 1] @ w_out.T) / net.drive_gain(m)
    r = r + net.biases[m - 1]
    if m == L1:
        scale = beta / net.layer_weight(m)
        s = s + scale
        r = r + scale * target
    return s, r


def layer_kcl(net: LayeredNetwork, m, s, r, v):
    """KCL residual of layer m's nodes at potentials ``v`` given its terms S, R: S·v − R plus
    the Shockley diodes' currents; for ideal diodes, projected onto their bounds."""
    if m == net.n_layers:
        return s * v - r
    if net.diode == "ideal":
        return s * (v - jnp.clip(r / s, net.lower[m - 1], net.upper[m - 1]))
    return s * v - r + net.layer_diode_current(v, m)


def bracketed_newton(f_and_df, x0, a, b, n_iter):
    """Root of an increasing function per node: Newton steps kept inside the bracket [a, b]
    (shrunk as signs are seen), bisection where a step would leave it."""

    def body(_, carry):
        x, a, b = carry
        f, df = f_and_df(x)
        a = jnp.where(f <= 0, x, a)
        b = jnp.where(f >= 0, x, b)
        newton = x - f / df
        # inclusive: at convergence the step rounds onto the bracket end it came from, and
        # bisecting then would throw the converged value away
        inside = (newton >= a) & (newton <= b) & jnp.isfinite(newton)
        return jnp.where(inside, newton, 0.5 * (a + b)), a, b

    x, _, _ = jax.lax.fori_loop(0, n_iter, body, (jnp.clip(x0, a, b), a, b))
    return x


def _shockley_layer(net, m, s, r, n_iter):
    """Root of layer m's KCL (``layer_kcl``) per node: Newton kept inside a bracket."""
    lo, hi = net.lower[m - 1], net.upper[m - 1]
    has_lo, has_hi = jnp.isfinite(lo), jnp.isfinite(hi)
    v_hat = r / s
    # f ≤ 0 at the smallest and ≥ 0 at the largest of v̂ and the rails: the root lies between
    lo_or, hi_or = jnp.where(has_lo, lo, v_hat), jnp.where(has_hi, hi, v_hat)
    a = jnp.minimum(v_hat, jnp.minimum(lo_or, hi_or))
    b = jnp.maximum(v_hat, jnp.maximum(lo_or, hi_or))

    def f_and_df(v):
        return jax.jvp(lambda v: layer_kcl(net, m, s, r, v), (v,), (jnp.ones_like(v),))

    # start on the far side of the root where the diode alone would carry the excess current:
    # Newton then converges monotonically on the convex (concave) branch, in a few steps
    # (a series resistance keeps the diode's current convex: it adds I·R_s to the drop)
    nvt = net.ideality * net.thermal_voltage
    i_lo, i_hi = net.rail_saturation_currents(m)
    above = has_hi & (v_hat > hi)
    below = has_lo & (v_hat < lo)
    excess_hi = jnp.where(above, s * (v_hat - hi), 0.0)
    excess_lo = jnp.where(below, s * (lo - v_hat), 0.0)
    guess_hi = hi + nvt * jnp.log1p(excess_hi / i_hi)
    guess_lo = lo - nvt * jnp.log1p(excess_lo / i_lo)
    if net.series_resistance != 0.0:
        guess_hi = guess_hi + net.series_resistance * excess_hi
        guess_lo = guess_lo - net.series_resistance * excess_lo
    v0 = jnp.where(
        above, jnp.minimum(v_hat, guess_hi), jnp.where(below, jnp.maximum(v_hat, guess_lo), v_hat)
    )
    return bracketed_newton(f_and_df, v0, a, b, n_iter)


def update_layer(net: LayeredNetwork, layers, m, drive, target, beta, n_newton=12, sums=None):
    """Layer m's new potentials given its neighbours; and, for a Shockley layer, its KCL
    residual right after the update (Newton's own error; None where the update is exact)."""
    s, r = layer_terms(net, layers, m, drive, target, beta, sums)
    if m == net.n_layers:
        return r / s, None
    if net.diode == "ideal":
        return jnp.clip(r / s, net.lower[m - 1], net.upper[m - 1]), None
    v = _shockley_layer(net, m, s, r, n_newton)
    return v, (layer_kcl(net, m, s, r, v), s)


def update_error(errors, batch_shape, dtype):
    """Per example, (max |f|/S, max |f|) over the (f, S) KCL residuals right after a sweep's
    Newton updates (zeros when every update was exact)."""
    if not errors:
        zero = jnp.zeros(batch_shape, dtype)
        return zero, zero
    volts = [jnp.max(jnp.abs(f) / s, axis=-1) for f, s in errors]
    amps = [jnp.max(jnp.abs(f), axis=-1) for f, _ in errors]
    return jnp.max(jnp.stack(volts), 0), jnp.max(jnp.stack(amps), 0)


def sweep(net: LayeredNetwork, layers, drive, target, beta, sums=None, with_error=False):
    """One sweep: odd layers (independent given the even ones), then even layers.
    ``layers`` is [inputs, h1, …, out]; index 0 is never updated. With ``with_error``, also
    the Newton updates' own error (``update_error``)."""
    layers = list(layers)
    sums = layer_sums(net) if sums is None else sums
    errors = []
    for parity in (1, 0):
        for m in range(1, net.n_layers + 1):
            if m % 2 == parity:
                layers[m], err = update_layer(net, layers, m, drive, target, beta, sums=sums)
                errors += [] if err is None else [err]
    if not with_error:
        return layers
    return layers, update_error(errors, layers[-1].shape[:-1], layers[-1].dtype)


def layer_residuals(net: LayeredNetwork, layers, drive, target, beta, sums=None):
    """Per-layer KCL residual in amperes (projected onto the diode bounds for ideal diodes)."""
    sums = layer_sums(net) if sums is None else sums
    out = []
    for m in range(1, net.n_layers + 1):
        s, r = layer_terms(net, layers, m, drive, target, beta, sums)
        out.append(layer_kcl(net, m, s, r, layers[m]))
    return out


def scan_sweeps(sweep_fn, layers, n_sweeps: int, corrections: bool, weights=None):
    """``n_sweeps`` applications of ``sweep_fn(free, with_error)`` to a list of free layers
    (lax.scan, unrolled when short: a handful of sweeps of small ops, which XLA fuses better
    without a loop). With ``corrections``, also returns per example what
    ``_phase`` turns into a bound on the swept state's residual: the last sweep's
    largest correction max_m √w_m·|Δv_m| (``weights``: the layers' energy weights w_m), the
    largest |v|, and its Newton updates' own error (``update_error``). They are carried
    through the scan, each sweep's overwriting the last: a sweep peeled off the scan instead
    changed XLA's CPU schedule of the whole step and cost 10 % at batch 4."""
    unroll = n_sweeps if 1 <= n_sweeps <= 8 else 1
    if not corrections:
        body = lambda free, _: (sweep_fn(free, False), None)
        return jax.lax.scan(body, list(layers), None, length=n_sweeps, unroll=unroll)[0]
    if n_sweeps < 1:
        raise ValueError(f"a phase needs at least one sweep to judge it, not n_sweeps={n_sweeps}.")

    def body(carry, _):
        free = carry[0]
        new, error = sweep_fn(free, True)
        pairs = zip(free, new, weights, strict=True)
        corr = [jnp.max(jnp.abs(b - a), axis=-1) * w**0.5 for a, b, w in pairs]
        scale = [jnp.max(jnp.abs(b), axis=-1) for b in new]
        return (new, (jnp.max(jnp.stack(corr), 0), jnp.max(jnp.stack(scale), 0), *error)), None

    inf = jnp.full(layers[0].shape[:-1], jnp.inf, layers[0].dtype)
    init = (list(layers), (inf, inf, inf, inf))
    (free, sweeps), _ = jax.lax.scan(body, init, None, length=n_sweeps, unroll=unroll)
    return free, sweeps


def energy_weights(net: LayeredNetwork):
    """The energy weight w_m of each free layer m = 1 … L+1 (1/A² per upstream amplifier)."""
    return [net.layer_weight(m) for m in range(1, net.n_layers + 1)]


def run_sweeps(net, layers, drive, target, beta, n_sweeps: int, sums=None, corrections=False):
    """Exactly ``n_sweeps`` sweeps (lax.scan: differentiable by unrolling); ``layers`` is
    [inputs, h1, …, out]. With ``corrections``, returns (layers, what ``scan_sweeps``
    returns to judge the phase by)."""
    sums = layer_sums(net) if sums is None else sums

    def step(free, with_error):
        out = sweep(net, [layers[0], *free], drive, target, beta, sums, with_error)
        return (out[0][1:], out[1]) if with_error else out[1:]

    out = scan_sweeps(step, layers[1:], n_sweeps, corrections, energy_weights(net))
    if corrections:
        return [layers[0], *out[0]], out[1]
    return [layers[0], *out]
