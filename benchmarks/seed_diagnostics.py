"""Why the seed paper's network did or did not learn: its state at initialisation and after
one epoch, under the old defaults and under the ``seed-mnist`` recipe.

For each setting, on 256 training digits: the fraction of hidden nodes driven past a rail
(where a diode carries more current than the node's resistors), the spread of the outputs
over examples (zero when the outputs do not depend on the input), the loss, and per weight
layer the norm of the centered EqProp gradient, the norm of the implicit-autodiff gradient of
the same loss, and their relative difference.

Writes benchmarks/results/seed_diagnostics.json and prints a table."""

import dataclasses
import json
import pathlib

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from kirchhoff import (
    BlockCoordinateDescent,
    TrainConfig,
    batches,
    build_model,
    build_optimizer,
    implicit_gradient,
    layered_eqprop_gradient,
    load_dataset,
    make_train_step,
)

RESULTS = pathlib.Path(__file__).parent / "results"
SETTINGS = {
    # what `--model seed` did before the recipe: the CLI's defaults (ideal diodes then,
    # here the paper's Shockley diodes), input gain 1 (seed_network's old default), A = 4
    "old defaults (gain 1, A 4, SGD 0.05, beta 1)": dict(
        model="seed", diode="shockley", input_gain=1.0, amp_gain=4.0, beta=1.0, lr=0.05
    ),
    "old defaults at gain 100": dict(
        model="seed", diode="shockley", input_gain=100.0, amp_gain=4.0, beta=1.0, lr=0.05
    ),
    "recipe seed-mnist": dict(recipe="seed-mnist"),
}


def state(net, cfg, x, y):
    grads, loss, ph = layered_eqprop_gradient(net, x, y, cfg.beta, 16, "centered")
    ref = implicit_gradient(net, BlockCoordinateDescent(), x, y)
    h, out = ph.free[1], ph.free[-1]
    rail = net.upper[0]
    layers = []
    for k in range(len(net.weights)):
        g, r = grads.weights[k], ref.weights[k]
        layers.append(
            {
                "eqprop_norm": float(jnp.linalg.norm(g)),
                "autodiff_norm": float(jnp.linalg.norm(r)),
                "relative_difference": float(
                    jnp.linalg.norm(g - r) / jnp.maximum(jnp.linalg.norm(r), 1e-30)
                ),
                "mean_conductance": float(jnp.mean(net.weights[k])),
            }
        )
    return {
        "loss": float(loss),
        "fraction_hidden_beyond_rails": float(jnp.mean(jnp.abs(h) > rail)),
        "max_abs_hidden_volts": float(jnp.max(jnp.abs(h))),
        "output_spread_over_examples_volts": float(jnp.mean(jnp.std(out, axis=0))),
        "layers": layers,
    }


def main():
    train = load_dataset("mnist_subset", "train")
    x = jnp.asarray(train.images[:256])
    y = jnp.asarray(np.eye(10, dtype=np.float32)[train.labels[:256]])
    report = {}
    for name, fields in SETTINGS.items():
        recipe = fields.pop("recipe", None)
        cfg = TrainConfig.from_recipe(recipe) if recipe else TrainConfig(**fields)
        cfg = dataclasses.replace(cfg, epochs=1)
        net = build_model(cfg)
        rows = {"initialisation": state(net, cfg, x, y)}
        params, static = eqx.partition(net, net.trainable_filter())
        optimizer = build_optimizer(cfg, len(train) // cfg.batch_size)
        opt_state = optimizer.init(params)
        step = make_train_step(cfg, static, optimizer)
        eye = np.eye(10, dtype=np.float32)
        for xb, lb in batches(train, cfg.batch_size, np.random.default_rng([cfg.seed, 1])):
            params, opt_state, *_ = step(params, opt_state, jnp.asarray(xb), jnp.asarray(eye[lb]))
        rows["after one epoch"] = state(eqx.combine(params, static), cfg, x, y)
        report[name] = {"config": dataclasses.asdict(cfg), **rows}
        for when, r in rows.items():
            norms = ", ".join(
                f"W{k} {lay['eqprop_norm']:.3g} (autodiff {lay['autodiff_norm']:.3g}, "
                f"rel. diff {lay['relative_difference']:.1e})"
                for k, lay in enumerate(r["layers"])
            )
            print(
                f"{name} | {when}: loss {r['loss']:.3f}, hidden beyond rails "
                f"{100 * r['fraction_hidden_beyond_rails']:.1f} %, output spread "
                f"{r['output_spread_over_examples_volts']:.3g} V; {norms}",
                flush=True,
            )
    (RESULTS / "seed_diagnostics.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
