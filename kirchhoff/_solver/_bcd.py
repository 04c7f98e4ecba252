"""Exact block coordinate descent for layered networks (Scellier 2024).

Given its two neighbouring layers, the energy is separable over a layer's nodes, so each
layer has a closed-form minimiser: v = clip((Σ g·v_nbr + I)/Σ g, lo, hi) for ideal diodes,
a safeguarded 1-D Newton solve per node for Shockley diodes. Sweeping odd layers then even
layers is exact coordinate descent on the (strictly convex) energy."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp

from .._layered import LayeredNetwork
from ._base import AbstractSolver
from ._jaxopt import linear_solve


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
    KCL at layer m reads S·v − R (+ diode currents) = 0. ``sums`` caches :func:`layer_sums`."""
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


def _shockley_layer(net, s, r, lo, hi, n_iter):
    """Root of S·v − R − i(lo − v) + i(v − hi) per node: Newton kept inside a bracket."""
    has_lo, has_hi = jnp.isfinite(lo), jnp.isfinite(hi)
    v_hat = r / s
    a = jnp.minimum(v_hat, jnp.where(has_lo, lo, v_hat))
    b = jnp.maximum(v_hat, jnp.where(has_hi, hi, v_hat))

    def g_and_dg(v):
        f = lambda v: (
            s * v
            - r
            - jnp.where(has_lo, net.diode_current(lo - v), 0.0)
            + jnp.where(has_hi, net.diode_current(v - hi), 0.0)
        )
        return jax.jvp(f, (v,), (jnp.ones_like(v),))

    def body(_, carry):
        v, a, b = carry
        g, dg = g_and_dg(v)
        a = jnp.where(g <= 0, v, a)
        b = jnp.where(g >= 0, v, b)
        newton = v - g / dg
        # inclusive: at convergence the step rounds onto the bracket end it came from, and
        # bisecting then would throw the converged value away
        inside = (newton >= a) & (newton <= b) & jnp.isfinite(newton)
        v = jnp.where(inside, newton, 0.5 * (a + b))
        return v, a, b

    # start on the far side of the root where the diode alone would carry the excess current:
    # Newton then converges monotonically on the convex (concave) branch, in a few steps
    nvt = net.ideality * net.thermal_voltage
    i_s = net.saturation_current
    above = has_hi & (v_hat > hi)
    below = has_lo & (v_hat < lo)
    guess_hi = hi + nvt * jnp.log1p(jnp.where(above, s * (v_hat - hi), 0.0) / i_s)
    guess_lo = lo - nvt * jnp.log1p(jnp.where(below, s * (lo - v_hat), 0.0) / i_s)
    v0 = jnp.where(
        above, jnp.minimum(v_hat, guess_hi), jnp.where(below, jnp.maximum(v_hat, guess_lo), v_hat)
    )
    v0 = jnp.clip(v0, a, b)
    v, _, _ = jax.lax.fori_loop(0, n_iter, body, (v0, a, b))
    return v


def update_layer(net: LayeredNetwork, layers, m, drive, target, beta, n_newton=12, sums=None):
    s, r = layer_terms(net, layers, m, drive, target, beta, sums)
    if m == net.n_layers:
        return r / s
    lo, hi = net.lower[m - 1], net.upper[m - 1]
    if net.diode == "ideal":
        return jnp.clip(r / s, lo, hi)
    return _shockley_layer(net, s, r, lo, hi, n_newton)


def sweep(net: LayeredNetwork, layers, drive, target, beta, sums=None):
    """One sweep: odd layers (independent given the even ones), then even layers.
    ``layers`` is [inputs, h1, …, out]; index 0 is never updated."""
    layers = list(layers)
    sums = layer_sums(net) if sums is None else sums
    for parity in (1, 0):
        for m in range(1, net.n_layers + 1):
            if m % 2 == parity:
                layers[m] = update_layer(net, layers, m, drive, target, beta, sums=sums)
    return layers


def layer_residuals(net: LayeredNetwork, layers, drive, target, beta, sums=None):
    """Per-layer KCL residual in amperes (projected onto the diode bounds for ideal diodes)."""
    out = []
    sums = layer_sums(net) if sums is None else sums
    for m in range(1, net.n_layers + 1):
        s, r = layer_terms(net, layers, m, drive, target, beta, sums)
        v = layers[m]
        if m == net.n_layers:
            out.append(s * v - r)
        elif net.diode == "ideal":
            out.append(s * (v - jnp.clip(r / s, net.lower[m - 1], net.upper[m - 1])))
        else:
            lo, hi = net.lower[m - 1], net.upper[m - 1]
            out.append(
                s * v
                - r
                - jnp.where(jnp.isfinite(lo), net.diode_current(lo - v), 0.0)
                + jnp.where(jnp.isfinite(hi), net.diode_current(v - hi), 0.0)
            )
    return out


def run_sweeps(net, layers, drive, target, beta, n_sweeps: int, sums=None):
    """Exactly ``n_sweeps`` sweeps (lax.scan: differentiable by unrolling)."""
    sums = layer_sums(net) if sums is None else sums

    def body(free_layers, _):
        new = sweep(net, [layers[0], *free_layers], drive, target, beta, sums)
        return new[1:], None

    # unrolled: a handful of sweeps of small ops, which XLA fuses better without a loop
    free_layers, _ = jax.lax.scan(
        body, list(layers[1:]), None, length=n_sweeps, unroll=n_sweeps if n_sweeps <= 8 else 1
    )
    return [layers[0], *free_layers]


class BlockCoordinateDescent(AbstractSolver):
    """Exact layered block coordinate descent for :class:`LayeredNetwork`.

    With ``n_sweeps`` set, runs exactly that many sweeps (training mode, as Scellier's 4);
    otherwise sweeps until the KCL residual is below tolerance or ``max_steps`` sweeps."""

    max_steps: int = eqx.field(static=True, default=5000)
    atol: float = eqx.field(static=True, default=1e-12)
    rtol: float = eqx.field(static=True, default=1e-12)
    throw: bool = eqx.field(static=True, default=False)
    n_sweeps: int | None = eqx.field(static=True, default=None)

    def _check_circuit(self, circuit):
        if not isinstance(circuit, LayeredNetwork):
            raise ValueError(
                "BlockCoordinateDescent solves LayeredNetwork models; for a general Circuit use "
                "DampedNewton, LBFGS or BoxQP (or build the network with kirchhoff.drn)."
            )

    def optimality(self, circuit, free, inputs, target, beta):
        layers = [inputs, *circuit.split(free)]
        return circuit.join(
            layer_residuals(circuit, layers, input_drive(circuit, inputs), target, beta)
        )

    def residual(self, circuit, free, inputs, target, beta):
        return jnp.max(jnp.abs(self.optimality(circuit, free, inputs, target, beta)), initial=0.0)

    def tolerance(self, circuit, free, inputs):
        s = jnp.concatenate(
            [jnp.sum(w, 0) for w in circuit.weights] + [jnp.sum(w, 1) for w in circuit.weights[1:]]
        )
        v_scale = jnp.maximum(
            circuit.input_gain * jnp.max(jnp.abs(inputs), initial=0.0),
            jnp.max(jnp.abs(free), initial=0.0),
        )
        rtol = jnp.maximum(self.rtol, 64 * jnp.finfo(free.dtype).eps)
        return self.atol + rtol * jnp.max(s) * jnp.maximum(v_scale, 1.0)

    def linear_solve(self, circuit):
        if circuit.n_free <= 512:
            return linear_solve.solve_lu
        return functools.partial(linear_solve.solve_gmres, tol=1e-10, maxiter=500)

    def _run(self, circuit, init, inputs, target, beta):
        drive = input_drive(circuit, inputs)
        layers = [inputs, *circuit.split(init)]
        if self.n_sweeps is not None:
            layers = run_sweeps(circuit, layers, drive, target, beta, self.n_sweeps)
            return circuit.join(layers[1:]), (jnp.array(self.n_sweeps), jnp.array(0.0))
        tol = self.tolerance(circuit, init, inputs)
        sums = layer_sums(circuit)

        def res(free_layers):
            r = layer_residuals(circuit, [inputs, *free_layers], drive, target, beta, sums)
            return jnp.max(jnp.abs(circuit.join(r)), initial=0.0)

        def cond(carry):
            step, _, r = carry
            return (step < self.max_steps) & (r > tol) & jnp.isfinite(r)

        def body(carry):
            step, free_layers, _ = carry
            new = sweep(circuit, [inputs, *free_layers], drive, target, beta, sums)[1:]
            return step + 1, new, res(new)

        free_layers = layers[1:]
        n, free_layers, r = jax.lax.while_loop(
            cond, body, (jnp.array(0), free_layers, res(free_layers))
        )
        return circuit.join(free_layers), (n, r)
