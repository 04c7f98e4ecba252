"""How far physical learning survives real devices: test error against each non-ideality's
strength, and for every published preset, for EqProp, the other physical rules and the
autodiff baseline trained through the same devices (the same reads in every phase it runs,
the same pulses in every write).

Per device setting it also measures, at initialisation on one batch of 64, the cosine between
the update the device actually writes (pulses, rounding, noise, bounds) and the ideal update
−lr·∇L (∇L by autodiff through 40 sweeps of the noiseless network): how much of the gradient
reaches the conductances.

DRN-XS on the offline MNIST subset (train 4,000 of its 5,000 training images, validation the
other 1,000, test 1,000), 3 epochs, the DRN-XS settings of ``train_accuracy.py`` (SGD, lr 0.05,
β 1, batch 16; chosen there on a validation split, not retuned per device). DRN-1H on
Fashion-MNIST for two presets and the ideal device (10,000 training images, 1 epoch).

    python benchmarks/nonidealities.py            # full: ~30 min on 2 cores
    python benchmarks/nonidealities.py --quick    # smoke run, results/nonidealities_quick.json

Writes results/nonidealities.json and results/nonidealities.png (quick runs write *_quick
files and never overwrite the full ones)."""

import argparse
import json
import pathlib
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import kirchhoff as kh
from kirchhoff._learning._layered import layered_backprop_gradient, layered_eqprop_gradient
from kirchhoff._training import ALGORITHMS

RESULTS = pathlib.Path(__file__).resolve().parent / "results"

SWEEPS = {
    "levels": ("device_levels", [4, 16, 64, 256]),
    "write_noise": ("write_noise", [1.0, 3.0, 10.0]),
    "read_noise": ("read_noise", [1e-4, 1e-3, 1e-2]),
    "asymmetry": ("asymmetry", [0.2, 0.5, 0.9]),
    "d2d": ("d2d", [0.2, 0.6]),
    "stuck_fraction": ("stuck_fraction", [0.02, 0.1, 0.3]),
}
QUICK_SWEEPS = {"levels": ("device_levels", [8, 256]), "read_noise": ("read_noise", [1e-3])}
XS = dict(model="drn-xs", dataset="mnist_subset", lr=0.05, beta=1.0, batch_size=16)
# coupled learning's estimate is larger than EqProp's (the output error weighted by the
# conductances the outputs see): lr 0.05 diverges; on 1,000 validation images after one epoch
# lr 0.01 gave 20.5 % (η = 0.5; η = 0.1 / 1: 21.9 / 20.4 %) and lr 0.002 25.2 %
LR = {"coupled": 0.01}
PHASE_DURATION = 1e-6  # seconds per phase, for the energy per training step


def _algorithms():
    wanted = ["eqprop", "coupled", "backprop"]
    return [a for a in wanted if a in ALGORITHMS]


def _train(fields, epochs, limits):
    """Train one configuration in a scratch directory; its final metrics."""
    with tempfile.TemporaryDirectory() as out:
        cfg = kh.TrainConfig(
            epochs=epochs,
            out=out,
            on_unconverged="warn",
            val_size=limits["val"],
            phase_duration=PHASE_DURATION,
            **fields,
        )
        cfg.train_limit = limits["train"] + limits["val"]
        cfg.test_limit = limits["test"]
        t = time.perf_counter()
        result = kh.train(cfg, progress=False)
        final = result["final"]
        return {
            "test_error_percent": final["test_error_percent"],
            "val_error_percent": final.get("val_error_percent"),
            "train_loss": final["train_loss"],
            "converged_fraction": min(p["converged_fraction"] for p in final["phases"].values()),
            "energy_per_step_joules": final.get("energy_per_step_joules"),
            "seconds": time.perf_counter() - t,
        }


def _update_cosine(fields, n_keys=3):
    """Cosine between the update the device writes at initialisation (EqProp's gradient,
    times −lr, through the device's pulses) and −lr·∇L (autodiff, noiseless network)."""
    cfg = kh.TrainConfig(**fields)
    net = kh.build_model(cfg)
    data = kh.load_dataset(cfg.dataset, "train")
    x = jnp.asarray(data.images[:64], jnp.float32)
    y = jnp.asarray(np.eye(10)[data.labels[:64]], jnp.float32)
    ideal, _, _ = layered_backprop_gradient(net.read(), x, y, n_sweeps=40)
    ideal = jnp.concatenate([w.ravel() for w in ideal.weights])
    cosines, ideal_cosines = [], []
    for k in range(n_keys):
        key = jax.random.PRNGKey(100 + k)
        k_read, k_write = jax.random.split(key)
        grad, _, _ = layered_eqprop_gradient(net, x, y, cfg.beta, cfg.n_sweeps, key=k_read)
        updates = jax.tree.map(lambda g: -cfg.lr * g, grad)
        written = net.programmed(updates, k_write)
        moved = jnp.concatenate(
            [(a - b).ravel() for a, b in zip(written.weights, net.weights, strict=True)]
        )
        want = jnp.concatenate([u.ravel() for u in updates.weights])
        cos = lambda a, b: float(a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b) + 1e-30))
        cosines.append(cos(moved, -ideal))
        ideal_cosines.append(cos(want, -ideal))
    return float(np.mean(cosines)), float(np.mean(ideal_cosines))


def _rounding(device):
    return {} if device == "ideal" else {"stochastic_rounding": True}


def _settings(quick):
    """(axis, value, TrainConfig fields) for every device setting of the DRN-XS study."""
    out = [("ideal", None, {"device": "ideal"})]
    for axis, (field, values) in (QUICK_SWEEPS if quick else SWEEPS).items():
        for v in values:
            # every axis on the same 256-level device, so that one non-ideality varies at a time;
            # updates rounded to pulses at random (unbiased): rounded to the nearest, an update
            # smaller than half a step is lost (64 levels: 59 % test error vs 23 %, 1 epoch)
            base = {"device": "pulsed", "stochastic_rounding": True}
            out.append((axis, v, {**base, field: v}))
    presets = ["epiram", "reram-es"] if quick else sorted(kh.DEVICE_PRESETS)
    out += [("preset", p, {"device": p, "stochastic_rounding": True}) for p in presets]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a few settings, 1 epoch (smoke run)")
    ap.add_argument("--skip-1h", action="store_true", help="leave out DRN-1H on Fashion-MNIST")
    args = ap.parse_args()
    epochs = 1 if args.quick else 3
    limits = {"train": 1000 if args.quick else 4000, "val": 500 if args.quick else 1000}
    limits["test"] = 500 if args.quick else 1000
    algorithms = _algorithms()
    rows = []
    t0 = time.perf_counter()
    for axis, value, device in _settings(args.quick):
        fields = {**XS, **device}
        cos, cos_ideal = _update_cosine(fields)
        for algorithm in algorithms:
            lr = LR.get(algorithm, fields["lr"])
            r = _train({**fields, "algorithm": algorithm, "lr": lr}, epochs, limits)
            rows.append(
                {
                    "model": "drn-xs",
                    "axis": axis,
                    "value": value,
                    "algorithm": algorithm,
                    "update_cosine": cos,
                    "ideal_update_cosine": cos_ideal,
                    **r,
                }
            )
            print(
                f"drn-xs {axis}={value} {algorithm}: test {r['test_error_percent']:.1f} % "
                f"(val {r['val_error_percent']}), update cosine {cos:.3f} "
                f"({r['seconds']:.0f} s)",
                flush=True,
            )
    if not (args.quick or args.skip_1h):
        big = dict(model="drn-1h", dataset="fashion_mnist", lr=0.05, beta=1.0, batch_size=16)
        for device in ("ideal", "taox-hfox", "reram-es"):
            for algorithm in algorithms:
                lr = LR.get(algorithm, big["lr"])
                r = _train(
                    {
                        **big,
                        **_rounding(device),
                        "device": device,
                        "algorithm": algorithm,
                        "lr": lr,
                    },
                    1,
                    {"train": 10000, "val": 2000, "test": 2000},
                )
                rows.append(
                    {
                        "model": "drn-1h",
                        "axis": "preset",
                        "value": device,
                        "algorithm": algorithm,
                        **r,
                    }
                )
                print(
                    f"drn-1h {device} {algorithm}: test {r['test_error_percent']:.1f} %", flush=True
                )
    stem = "nonidealities_quick" if args.quick else "nonidealities"
    result = {
        "description": __doc__.split("\n\n")[0],
        "settings": {"drn-xs": {**XS, "epochs": epochs, **limits}},
        "algorithms": algorithms,
        "presets": {k: p.source for k, p in kh.DEVICE_PRESETS.items()},
        "runs": rows,
        "seconds": time.perf_counter() - t0,
        "jax": jax.__version__,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1))
    _plot(rows, RESULTS / f"{stem}.png")
    print(f"wrote {RESULTS / stem}.json and .png in {result['seconds']:.0f} s")


def _plot(rows, path):
    from matplotlib.figure import Figure

    from kirchhoff.plot import nonideality_effects

    xs = [r for r in rows if r["model"] == "drn-xs"]
    n = len({r["axis"] for r in xs} - {"ideal", "preset"}) + any(r["axis"] == "preset" for r in xs)
    fig = Figure(figsize=(3.2 * n, 3.2))
    axes = nonideality_effects(xs, axes=fig.subplots(1, n, squeeze=False)[0])
    axes[0].set_ylabel("DRN-XS test error (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
