"""The seed paper's comparison, side by side (Kendall et al. 2020): its analog network trained
by centered EqProp against an equal-size software network trained by backprop.

Systems, each trained on the same examples (the training split less a validation split held
out by a fixed permutation) for the same number of epochs, with validation and test error
after every epoch and wall time:

- ``seed (EqProp)``: the paper's network — 784×2 input sources, 100 hidden nodes with
  Shockley diodes to ±1 V rails, bidirectional amplifiers, 10 linear outputs — with the
  ``seed-mnist`` / ``seed-fashion-mnist`` recipe;
- ``seed, ideal diodes (EqProp)``: the same network and recipe with ideal diodes;
- ``DRN-XS (EqProp)``: 784×2-100-10 with ideal diodes to ground (Scellier 2024), the CLI's
  defaults;
- ``software 784-100-10 (backprop)``: ReLU hidden layer, softmax cross-entropy, Adam (optax),
  signed unconstrained weights.

Then ngspice's operating point of the trained seed network for a few test examples against
kirchhoff's equilibrium (target ≤ 1 µV at every node).

Writes benchmarks/results/seed_paper.json and seed_paper.png (``--quick``: *_quick.*, never
the full results). Every setting was chosen on the validation split; the test error is
reported, never used to choose."""

import argparse
import dataclasses
import json
import pathlib
import shutil
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import kirchhoff as kh
from kirchhoff import TrainConfig, batches, load_dataset, read_metrics, split_validation, train

RESULTS = pathlib.Path(__file__).parent / "results"
DATASETS = {"mnist": "mnist_subset", "fashion": "fashion_mnist"}
RECIPE = {"mnist": "seed-mnist", "fashion": "seed-fashion-mnist"}
VAL_SIZE = {"mnist": 500, "fashion": 5000}
# what the issue asks of the paper's network: test error within this many points of the
# software network's, and (on the MNIST subset) below 8 %
MARGIN = {"mnist": 1.5, "fashion": 2.0}
CEILING = {"mnist": 8.0, "fashion": None}
MICROVOLT = 1e-6


def software_mlp(train_data, val_data, test_data, epochs, batch_size, lr, seed, hidden=100):
    """784-hidden-10 ReLU network, softmax cross-entropy, Adam: the software baseline."""
    k0, k1 = jax.random.split(jax.random.PRNGKey(seed))
    n_in = train_data.images.shape[1]
    params = {
        "w0": jax.random.normal(k0, (n_in, hidden)) * np.sqrt(2.0 / n_in),
        "b0": jnp.zeros(hidden),
        "w1": jax.random.normal(k1, (hidden, 10)) * np.sqrt(1.0 / hidden),
        "b1": jnp.zeros(10),
    }

    def logits(p, x):
        return jax.nn.relu(x @ p["w0"] + p["b0"]) @ p["w1"] + p["b1"]

    def loss(p, x, labels):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits(p, x), labels))

    steps = epochs * (len(train_data) // batch_size)
    opt = optax.adam(optax.cosine_decay_schedule(lr, max(steps, 1)))
    state = opt.init(params)

    @jax.jit
    def step(p, s, x, labels):
        value, g = jax.value_and_grad(loss)(p, x, labels)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, value

    error = jax.jit(lambda p, x, labels: 100.0 * jnp.mean(jnp.argmax(logits(p, x), -1) != labels))
    curve = []
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        losses = []
        for xb, lb in batches(train_data, batch_size, np.random.default_rng([seed, epoch])):
            params, state, value = step(params, state, jnp.asarray(xb), jnp.asarray(lb))
            losses.append(float(value))
        curve.append(
            {
                "epoch": epoch,
                "train_loss": float(np.mean(losses)),
                "val_error_percent": float(error(params, val_data.images, val_data.labels)),
            }
        )
    # the test set once, at the end, as kirchhoff.train does for the analog networks
    curve[-1]["test_error_percent"] = float(error(params, test_data.images, test_data.labels))
    return curve, time.perf_counter() - t0


def _first(data, n):
    """The first ``n`` examples of ``data`` (all of them for None), as TrainConfig's limits."""
    return dataclasses.replace(data, images=data.images[:n], labels=data.labels[:n])


def analog_run(name, cfg: TrainConfig):
    shutil.rmtree(cfg.out, ignore_errors=True)  # a fresh run, never a resumed one
    t0 = time.perf_counter()
    result = train(cfg, progress=True)
    wall = time.perf_counter() - t0
    curve = read_metrics(cfg.out)
    keep = ("epoch", "train_loss", "val_error_percent", "test_error_percent", "epoch_seconds")
    return {
        "system": name,
        "config": dataclasses.asdict(cfg),
        # (test error: the last record only, where the run's end evaluated it)
        "curve": [{k: r[k] for k in keep if k in r} for r in curve],
        "wall_seconds": wall,
    }, result["network"]


def spice_check(net, test_data, n_examples):
    """Max |ngspice − kirchhoff| over all nodes for the first test examples (volts), both in
    float64: the trained network as a general Circuit, solved by damped Newton."""

    jax.config.update("jax_enable_x64", True)  # the benchmark's last step: training is done
    circuit = net.astype(jnp.float64).to_circuit()
    x = np.asarray(test_data.images[:n_examples], np.float64)
    inputs = jnp.asarray(np.asarray(net.circuit_inputs(x)), jnp.float64)
    eq = kh.DampedNewton(max_steps=200).solve(circuit, inputs)
    ours = np.asarray(jax.vmap(circuit.potentials)(eq.free, inputs))
    spice = kh.ngspice_potentials(circuit, np.asarray(inputs))
    err = float(np.max(np.abs(spice - ours)))
    return {
        "examples": n_examples,
        "nodes": int(circuit.n_nodes),
        "kirchhoff_status": eq.messages(),
        "max_abs_difference_volts": err,
        "target_volts": MICROVOLT,
        "holds": err <= MICROVOLT,
    }


def summary(run):
    last = run["curve"][-1]
    return {
        "final_val_error_percent": last["val_error_percent"],
        "final_test_error_percent": last["test_error_percent"],
        "wall_seconds": run["wall_seconds"],
    }


def plot(report, path):
    from matplotlib.figure import Figure

    from kirchhoff.plot import error_curves

    blocks = report["datasets"]
    fig = Figure(figsize=(6 * len(blocks), 4))
    axes = fig.subplots(1, len(blocks), squeeze=False)[0]
    for ax, block in zip(axes, blocks.values(), strict=True):
        error_curves({run["system"]: run["curve"] for run in block["runs"]}, ax=ax, log=True)
        ax.set_title(f"{block['dataset']} ({block['train_examples']} train)")
    fig.suptitle("Kendall et al. 2020's network (EqProp) vs an equal-size software network")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["mnist", "fashion"])
    ap.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--spice-examples", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mlp-lr", type=float, default=1e-3)
    ap.add_argument("--quick", action="store_true", help="2 epochs on 2,000 examples (smoke run)")
    args = ap.parse_args()

    tag = "_quick" if args.quick else ""
    report = {"quick": args.quick, "datasets": {}}
    for_spice = None
    for key in args.datasets:
        dataset = DATASETS[key]
        base = TrainConfig.from_recipe(RECIPE[key], seed=args.seed)
        epochs = 2 if args.quick else (args.epochs or base.epochs)
        limit = 2000 if args.quick else None
        common = dict(epochs=epochs, val_size=VAL_SIZE[key], train_limit=limit, test_limit=limit)
        runs_dir = RESULTS / "runs" / f"seed_paper{tag}"
        systems = [
            ("seed (EqProp)", base),
            ("seed, ideal diodes (EqProp)", dataclasses.replace(base, diode="ideal")),
            ("DRN-XS (EqProp)", TrainConfig(model="drn-xs", dataset=dataset, seed=args.seed)),
        ]
        runs, trained = [], {}
        for name, cfg in systems:
            slug = name.split(" (")[0].replace(", ", "-").replace(" ", "-").lower()
            cfg = dataclasses.replace(cfg, **common, out=str(runs_dir / f"{key}_{slug}"))
            run, net = analog_run(name, cfg)
            runs.append(run)
            trained[name] = net
            print(f"{key}: {name}: {summary(run)}", flush=True)

        # the same examples as the analog runs: the first `limit`, then the same held-out split
        train_all = _first(load_dataset(dataset, "train"), limit)
        test_data = _first(load_dataset(dataset, "test"), limit)
        train_data, val_data = split_validation(train_all, VAL_SIZE[key])
        curve, wall = software_mlp(
            train_data, val_data, test_data, epochs, base.batch_size, args.mlp_lr, args.seed
        )
        runs.append(
            {
                "system": "software 784-100-10 (backprop)",
                "config": {
                    "hidden": 100,
                    "activation": "relu",
                    "loss": "softmax cross-entropy",
                    "optimizer": "adam",
                    "lr": args.mlp_lr,
                    "lr_schedule": "cosine",
                    "batch_size": base.batch_size,
                    "epochs": epochs,
                    "seed": args.seed,
                },
                "curve": curve,
                "wall_seconds": wall,
            }
        )
        print(f"{key}: software: {summary(runs[-1])}", flush=True)

        seed_err = runs[0]["curve"][-1]["test_error_percent"]
        soft_err = runs[-1]["curve"][-1]["test_error_percent"]
        claim = {
            "seed_test_error_percent": seed_err,
            "software_test_error_percent": soft_err,
            "gap_points": seed_err - soft_err,
            "allowed_gap_points": MARGIN[key],
            "ceiling_percent": CEILING[key],
            "holds": seed_err - soft_err <= MARGIN[key]
            and (CEILING[key] is None or seed_err < CEILING[key]),
        }
        if key == "mnist":
            for_spice = (trained["seed (EqProp)"], test_data)
        report["datasets"][key] = {
            "dataset": dataset,
            "train_examples": len(train_data),
            "val_examples": len(val_data),
            "test_examples": len(test_data),
            "epochs": epochs,
            "runs": runs,
            "summary": {r["system"]: summary(r) for r in runs},
            "claim": claim,
        }
    out = RESULTS / f"seed_paper{tag}.json"
    if for_spice is not None and args.spice_examples > 0:
        report["spice"] = spice_check(*for_spice, args.spice_examples)
        print(f"ngspice vs kirchhoff, trained seed network: {report['spice']}", flush=True)
    if out.exists():  # keep the other dataset's last result (and its SPICE check)
        old = json.loads(out.read_text())
        report["datasets"] = {**old.get("datasets", {}), **report["datasets"]}
        if "spice" not in report and "spice" in old:
            report["spice"] = old["spice"]
    out.write_text(json.dumps(report, indent=2))
    plot(report, RESULTS / f"seed_paper{tag}.png")
    for key, block in report["datasets"].items():
        c = block["claim"]
        print(
            f"seed_paper {key}: paper's network {c['seed_test_error_percent']:.2f} % vs software "
            f"{c['software_test_error_percent']:.2f} % (gap {c['gap_points']:+.2f} points, "
            f"allowed {c['allowed_gap_points']}): {'holds' if c['holds'] else 'does not hold'}"
        )


if __name__ == "__main__":
    main()
