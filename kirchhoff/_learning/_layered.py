"""EqProp for layered networks, fused for speed: the input drive is computed once and shared
by the free and nudged phases, and weight gradients are closed-form matmuls over the batch."""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp

from .._layered import LayeredNetwork
from .._solver._bcd import (
    DeviationProblem,
    input_drive,
    layer_residuals,
    layer_sums,
    run_sweeps,
)

Variant = Literal["positive", "negative", "centered"]


class LayeredPhases(eqx.Module):
    """Per-layer potentials of the free phase and the deviations of the nudged phases from it
    (batched), and the free residual."""

    free: list
    positive: list | None  # deviations δ⁺ = v^β − v⁰ per free layer [h1, …, out]
    negative: list | None  # deviations δ⁻ = v^{−β} − v⁰
    free_residual: jax.Array  # max |KCL| over the batch, amperes


def init_layers(net: LayeredNetwork, inputs):
    batch = inputs.shape[:-1]
    out = [inputs]
    for m, n in enumerate(net.sizes[1:], start=1):
        z = jnp.zeros((*batch, n), inputs.dtype)
        if m < net.n_layers and net.diode == "ideal":
            z = jnp.clip(z, net.lower[m - 1], net.upper[m - 1])
        out.append(z)
    return out


def _pair_gradient(net: LayeredNetwork, inputs, free, da, db):
    """Batch-mean of ∂E/∂θ(v⁰ + δa) − ∂E/∂θ(v⁰ + δb) for weights and biases, in closed form
    and from the deviations: for a conductance ½(u+Δa)² − ½(u+Δb)² = (Δa − Δb)·ū with ū the
    mean drop u + (Δa + Δb)/2, so that nothing cancels. ``da``/``db`` list [h1, …, out]."""
    b = inputs.shape[0]
    gw = []
    d = [None, *(x - y for x, y in zip(da, db, strict=True))]  # Δa − Δb per layer
    mean = [None, *(v + 0.5 * (x + y) for v, x, y in zip(free[1:], da, db, strict=True))]
    for k, w in enumerate(net.weights):
        wk = net.layer_weight(k + 1)
        # (Δa − Δb)·ū = (D_u − D_v)(ū − v̄) per (i, j): row and column terms plus two products
        col = jnp.mean(d[k + 1] * mean[k + 1], axis=0)
        if k == 0:
            # the sources are the same in every phase (D_u = 0): one (n_features × batch) @
            # (batch × h1) product for ±x together
            xt_dv = (net.input_gain / b) * (inputs.T @ d[1])
            g = jnp.concatenate([col[None, :] - xt_dv, col[None, :] + xt_dv], axis=0)
        else:
            a = net.drive_gain(k)
            row = jnp.mean(d[k] * mean[k], axis=0)
            cross = (d[k].T @ mean[k + 1] + mean[k].T @ d[k + 1]) / b
            g = a**2 * row[:, None] + col[None, :] - a * cross
        gw.append((wk * g).astype(w.dtype))
    gb = [-net.layer_weight(m) * jnp.mean(d[m], axis=0) for m in range(1, net.n_layers + 1)]
    return tuple(gw), tuple(gb)


def as_gradient(net: LayeredNetwork, gw, gb):
    """Weight and bias gradients as a pytree shaped like the trainable part of ``net``."""
    params = eqx.filter(net, net.trainable_filter())
    return eqx.tree_at(lambda n: (n.weights, n.biases), params, (tuple(gw), tuple(gb)))


def layered_phases(net, inputs, targets, beta, n_sweeps, variant: Variant = "centered"):
    """Free phase and the nudged phases the variant needs, ``n_sweeps`` sweeps each; the
    nudged phases are solved for their deviations from the free one (see
    :class:`DeviationProblem`), and all phases share one input drive."""
    drive = input_drive(net, inputs)
    sums = layer_sums(net)
    free = run_sweeps(net, init_layers(net, inputs), drive, targets, 0.0, n_sweeps, sums)
    zeros = [jnp.zeros_like(v) for v in free[1:]]
    nudged = DeviationProblem.at_free_state(net, free, drive, targets, beta, sums)
    pos = neg = None
    if variant in ("positive", "centered"):
        pos = nudged.run(zeros, n_sweeps)
    if variant in ("negative", "centered"):
        neg = nudged.with_beta(-beta).run(zeros, n_sweeps)
    res = layer_residuals(net, free, drive, targets, 0.0, sums)
    res = jnp.max(jnp.abs(jnp.concatenate(res, axis=-1)))
    return LayeredPhases(free, pos, neg, res)


def layered_eqprop_gradient(net, inputs, targets, beta, n_sweeps=4, variant: Variant = "centered"):
    """EqProp gradient of the mean loss for a LayeredNetwork with exact block coordinate
    descent; returns (gradient pytree, mean loss, phases)."""
    if variant not in ("positive", "negative", "centered"):
        raise ValueError(f"unknown EqProp variant {variant!r}")
    ph = layered_phases(net, inputs, targets, beta, n_sweeps, variant)
    zeros = [jnp.zeros_like(v) for v in ph.free[1:]]
    if variant == "centered":
        da, db, scale = ph.positive, ph.negative, 1.0 / (2 * beta)
    elif variant == "positive":
        da, db, scale = ph.positive, zeros, 1.0 / beta
    else:
        da, db, scale = zeros, ph.negative, 1.0 / beta
    gw, gb = _pair_gradient(net, inputs, ph.free, da, db)
    gw = [g * scale for g in gw]
    gb = [g * scale for g in gb]
    out = ph.free[-1]
    loss = jnp.mean(0.5 * jnp.sum((out - targets) ** 2, axis=-1))
    return as_gradient(net, gw, gb), loss, ph


def layered_backprop_gradient(net, inputs, targets, n_sweeps=4):
    """Truncated backprop baseline: differentiate the loss through ``n_sweeps`` sweeps;
    returns (gradient pytree, mean loss, output potentials of that free phase)."""
    params, static = eqx.partition(net, net.trainable_filter())

    def loss(p):
        n = eqx.combine(p, static)
        layers = run_sweeps(
            n, init_layers(n, inputs), input_drive(n, inputs), targets, 0.0, n_sweeps
        )
        return jnp.mean(0.5 * jnp.sum((layers[-1] - targets) ** 2, axis=-1)), layers[-1]

    (value, outputs), grad = jax.value_and_grad(loss, has_aux=True)(params)
    return grad, value, outputs
