"""EqProp for layered networks, fused for speed: the input drive is computed once and shared
by the free and nudged phases, and weight gradients are closed-form matmuls over the batch."""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp

from .._layered import LayeredNetwork
from .._solver._bcd import input_drive, layer_residuals, layer_sums, run_sweeps

Variant = Literal["positive", "negative", "centered"]


class LayeredPhases(eqx.Module):
    """Per-layer potentials of the free and nudged phases (batched), and the free residual."""

    free: list
    positive: list | None
    negative: list | None
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


def _pair_gradient(net: LayeredNetwork, inputs, p, q):
    """Batch-mean of ∂E/∂θ(p) − ∂E/∂θ(q) for weights and biases, closed form."""
    b = inputs.shape[0]
    gw = []
    for k, w in enumerate(net.weights):
        wk = net.layer_weight(k + 1)
        dv2 = jnp.mean(p[k + 1] ** 2 - q[k + 1] ** 2, axis=0)
        if k == 0:
            # the sources are the same in every phase: their ½u² terms cancel, and the cross
            # term is one (n_features × batch) @ (batch × h1) product for ±x together
            xt_dv = (net.input_gain / b) * (inputs.T @ (p[1] - q[1]))
            half = (0.5 * wk) * dv2[None, :]
            g = jnp.concatenate([half - wk * xt_dv, half + wk * xt_dv], axis=0)
        else:
            a = net.drive_gain(k)
            du2 = jnp.mean(p[k] ** 2 - q[k] ** 2, axis=0)
            cross = (p[k].T @ p[k + 1] - q[k].T @ q[k + 1]) / b
            g = wk * (0.5 * a**2 * du2[:, None] + 0.5 * dv2[None, :] - a * cross)
        gw.append(g.astype(w.dtype))
    gb = [-net.layer_weight(m) * jnp.mean(p[m] - q[m], axis=0) for m in range(1, net.n_layers + 1)]
    return tuple(gw), tuple(gb)


def as_gradient(net: LayeredNetwork, gw, gb):
    """Weight and bias gradients as a pytree shaped like the trainable part of ``net``."""
    params = eqx.filter(net, net.trainable_filter())
    return eqx.tree_at(lambda n: (n.weights, n.biases), params, (tuple(gw), tuple(gb)))


def layered_phases(net, inputs, targets, beta, n_sweeps, variant: Variant = "centered"):
    """Free phase and the nudged phases the variant needs, ``n_sweeps`` sweeps each, nudged
    phases warm-started from the free one, all sharing one input drive."""
    drive = input_drive(net, inputs)
    sums = layer_sums(net)
    free = run_sweeps(net, init_layers(net, inputs), drive, targets, 0.0, n_sweeps, sums)
    pos = neg = None
    if variant in ("positive", "centered"):
        pos = run_sweeps(net, free, drive, targets, beta, n_sweeps, sums)
    if variant in ("negative", "centered"):
        neg = run_sweeps(net, free, drive, targets, -beta, n_sweeps, sums)
    res = layer_residuals(net, free, drive, targets, 0.0, sums)
    res = jnp.max(jnp.abs(jnp.concatenate(res, axis=-1)))
    return LayeredPhases(free, pos, neg, res)


def layered_eqprop_gradient(net, inputs, targets, beta, n_sweeps=4, variant: Variant = "centered"):
    """EqProp gradient of the mean loss for a LayeredNetwork with exact block coordinate
    descent; returns (gradient pytree, mean loss, phases)."""
    if variant not in ("positive", "negative", "centered"):
        raise ValueError(f"unknown EqProp variant {variant!r}")
    ph = layered_phases(net, inputs, targets, beta, n_sweeps, variant)
    if variant == "centered":
        gw, gb = _pair_gradient(net, inputs, ph.positive, ph.negative)
        scale = 1.0 / (2 * beta)
    elif variant == "positive":
        gw, gb = _pair_gradient(net, inputs, ph.positive, ph.free)
        scale = 1.0 / beta
    else:
        gw, gb = _pair_gradient(net, inputs, ph.free, ph.negative)
        scale = 1.0 / beta
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
