"""Time to accuracy: each training recipe run as ``python -m kirchhoff train --recipe NAME``
would run it, timed from the call to the result.

A recipe holds out a validation split of its training set (``val_size``): every epoch is
evaluated on it, the epoch of the lowest validation error is the one validation picks, and
the test set is evaluated once, after the last epoch. Targets (this 2-core machine):
DRN-1H on Fashion-MNIST at most 10.38 % test error (Scellier 2024's centered EqProp) within
10 minutes; DRN-XS on the offline MNIST subset at most 5.5 % within 1 minute.

Writes benchmarks/results/train_accuracy.json (per recipe: its version and settings,
validation error per epoch and the picked epoch, the final test error, wall-clock seconds of
the whole run — data loading, compilation, training and evaluation — and the curve) and
train_accuracy.png. ``--quick`` (1 epoch on 2,000 examples each) writes
train_accuracy_quick.* and runs_quick/, never the full results."""

import argparse
import json
import pathlib
import shutil
import time

import numpy as np

from kirchhoff import RECIPE_VERSIONS, TrainConfig, read_metrics, train

RESULTS = pathlib.Path(__file__).parent / "results"

# recipe → (target test error %, target wall-clock seconds, where the target comes from)
TARGETS = {
    "drn-1h-fashion-mnist": (10.38, 600.0, "Scellier 2024, DRN-1H centered EqProp: 10.38 %"),
    "drn-xs-mnist-subset": (5.5, 60.0, "an equal-size software MLP gets 5.6–6.1 % there"),
}


def run_recipe(name: str, quick: bool) -> dict:
    """Train recipe ``name`` into a fresh run directory and summarise the run."""
    overrides = dict(train_limit=2000, epochs=1, val_size=500) if quick else {}
    out = RESULTS / ("runs_quick" if quick else "runs") / name
    cfg = TrainConfig.from_recipe(name, out=str(out), **overrides)
    shutil.rmtree(out, ignore_errors=True)  # a fresh run: train() refuses to mix two
    t0 = time.perf_counter()
    result = train(cfg, progress=True)
    wall = time.perf_counter() - t0
    curve = read_metrics(out)
    target_error, target_seconds, source = TARGETS.get(name, (None, None, None))
    test = result["test_error_percent"]
    return {
        "recipe": name,
        "recipe_version": RECIPE_VERSIONS[name],
        "model": cfg.model,
        "dataset": cfg.dataset,
        "algorithm": cfg.algorithm,
        "config": {k: v for k, v in result["config"].items() if k not in ("out", "data_dir")},
        "train_examples": result["train_examples"],
        "val_examples": result["val_examples"],
        "test_examples": result["test_examples"],
        "trained_on": result["trained_on"],
        "data_source": result["data_source"],
        "epochs_run": result["epochs_run"],
        "picked_epoch": result["picked_epoch"],
        "best_val_error_percent": result["best_val_error_percent"],
        "final_val_error_percent": curve[-1].get("val_error_percent"),
        "final_test_error_percent": test,
        "wall_seconds": wall,
        "train_seconds": sum(r["train_seconds"] for r in curve),
        "eval_seconds": sum(r["eval_seconds"] for r in curve),
        "target_test_error_percent": target_error,
        "target_wall_seconds": target_seconds,
        "target_source": source,
        "meets_error_target": None if target_error is None else test <= target_error,
        "meets_time_target": None if target_seconds is None else wall <= target_seconds,
        "curve": [
            {
                k: r.get(k)
                for k in (
                    "epoch",
                    "train_loss",
                    "train_error_percent",
                    "val_error_percent",
                    "test_error_percent",
                    "train_seconds",
                    "eval_seconds",
                    "examples_per_second",
                )
            }
            for r in curve
        ],
    }


def plot(runs: list[dict], path: pathlib.Path) -> None:
    from matplotlib.figure import Figure

    from kirchhoff.plot import error_curves

    fig = Figure(figsize=(4.8 * len(runs), 3.6))
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    for ax, run in zip(axes, runs, strict=True):
        c = run["curve"]
        # the run's clock at each epoch's end (compilation and loading apart)
        elapsed = np.cumsum([r["train_seconds"] + r["eval_seconds"] for r in c]) / 60
        ax.plot(elapsed, [r["train_error_percent"] for r in c], "-", color="C7", label="train")
        # (the last record carries the test error, evaluated once at the run's end)
        error_curves(
            {"validation": c}, ax=ax, x="minutes", picked={"validation": run["picked_epoch"]}
        )
        if run["target_test_error_percent"] is not None:
            ax.axhline(run["target_test_error_percent"], ls=":", color="k", label="target")
        if run["target_wall_seconds"] is not None:
            ax.axvline(run["target_wall_seconds"] / 60, ls=":", color="grey")
        top = max(r["val_error_percent"] for r in c)
        ax.set_ylim(0, min(3 * run["final_test_error_percent"], top + 2))
        ax.set_ylabel("error (%); test once, at the end (square)")
        ax.set_title(f"{run['recipe']}: {run['final_test_error_percent']:.2f} % test", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--only", nargs="+", choices=sorted(TARGETS), help="run only these recipes (all)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="1 epoch on 2,000 examples each (a smoke run)"
    )
    args = ap.parse_args()
    name = "train_accuracy_quick" if args.quick else "train_accuracy"
    out = RESULTS / f"{name}.json"
    kept = []
    if args.only and out.exists():  # keep the other recipes' last results
        kept = [r for r in json.loads(out.read_text())["runs"] if r["recipe"] not in args.only]
    runs = []
    for recipe in args.only or sorted(TARGETS):
        runs.append(run_recipe(recipe, args.quick))
        everything = sorted(kept + runs, key=lambda r: r["recipe"])
        out.write_text(json.dumps({"quick": args.quick, "runs": everything}, indent=2))
    plot(everything, RESULTS / f"{name}.png")
    print(
        "train_accuracy: "
        + "; ".join(
            f"{r['recipe']}: {r['final_test_error_percent']:.2f}% test error (validation "
            f"{r['final_val_error_percent']:.2f}%, picked epoch {r['picked_epoch']} of "
            f"{r['epochs_run']}) in {r['wall_seconds']:.0f} s"
            + (
                ""
                if r["target_test_error_percent"] is None
                else f" (target ≤ {r['target_test_error_percent']}% in "
                f"≤ {r['target_wall_seconds']:.0f} s: "
                f"{'met' if r['meets_error_target'] and r['meets_time_target'] else 'NOT met'})"
            )
            for r in runs
        )
    )


if __name__ == "__main__":
    main()
