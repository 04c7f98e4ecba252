"""Accuracy benchmark: DRN-1H with centered EqProp on full Fashion-MNIST (target: at most
Scellier 2024's 10.38 % test error) and DRN-XS on the offline MNIST subset.

Writes benchmarks/results/train_accuracy.json (epochs, batch size, hyperparameters, wall
time, per-epoch curves) and a learning-curve PNG per run under benchmarks/results/runs/."""

import argparse
import json
import pathlib
import shutil
import time

from kirchhoff import TrainConfig, read_metrics, train

RESULTS = pathlib.Path(__file__).parent / "results"
TARGET_FASHION_DRN1H = 10.38  # % test error, Scellier 2024, centered EqProp


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=40, help="epochs for DRN-1H on Fashion-MNIST")
    ap.add_argument(
        "--xs-epochs", type=int, default=30, help="epochs for DRN-XS on the MNIST subset"
    )
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.1, help="DRN-1H's learning rate")
    ap.add_argument(
        "--layer-lr", default="1,4", help="per-layer lr multipliers (input layer first)"
    )
    ap.add_argument("--lr-schedule", default="cosine", choices=("constant", "cosine"))
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--input-gain", type=float, default=100.0)
    ap.add_argument("--n-sweeps", type=int, default=4)
    ap.add_argument(
        "--quick", action="store_true", help="1 epoch on 5,000 examples each (smoke run)"
    )
    ap.add_argument("--only", choices=("drn-1h", "drn-xs"), default=None)
    args = ap.parse_args()

    runs = []
    tuned_1h = dict(
        lr=args.lr,
        layer_lr=tuple(float(v) for v in args.layer_lr.split(",")),
        lr_schedule=args.lr_schedule,
    )
    # DRN-XS: the CLI's defaults (plain SGD, one learning rate), which suit it better than the
    # settings tuned for DRN-1H (12.1 % vs 5.9 % test error on the subset)
    tuned_xs = dict(lr=0.05, layer_lr=None, lr_schedule="constant")
    plan = [
        ("drn-1h", "fashion_mnist", args.epochs, TARGET_FASHION_DRN1H, tuned_1h),
        ("drn-xs", "mnist_subset", args.xs_epochs, None, tuned_xs),
    ]
    for model, dataset, epochs, target, tuned in plan:
        if args.only and model != args.only:
            continue
        cfg = TrainConfig(
            model=model,
            dataset=dataset,
            algorithm="eqprop",
            epochs=1 if args.quick else epochs,
            batch_size=args.batch_size,
            beta=args.beta,
            **tuned,
            n_sweeps=args.n_sweeps,
            input_gain=args.input_gain,
            train_limit=5000 if args.quick else None,
            # quick runs never overwrite a full run's directory
            out=str(RESULTS / ("runs_quick" if args.quick else "runs") / f"{model}_{dataset}"),
        )
        shutil.rmtree(cfg.out, ignore_errors=True)  # a fresh run: train() refuses to mix two
        t0 = time.perf_counter()
        result = train(cfg, progress=True)
        wall = time.perf_counter() - t0
        curve = read_metrics(cfg.out)
        final = result["final"]
        runs.append(
            {
                "model": model,
                "dataset": dataset,
                "algorithm": "eqprop (centered)",
                "epochs": cfg.epochs,
                "batch_size": cfg.batch_size,
                "hyperparameters": {
                    "beta": cfg.beta,
                    "lr": cfg.lr,
                    "layer_lr": cfg.layer_lr,
                    "lr_schedule": cfg.lr_schedule,
                    "optimizer": cfg.optimizer,
                    "n_sweeps": cfg.n_sweeps,
                    "eval_sweeps": cfg.eval_sweeps,
                    "input_gain": cfg.input_gain,
                    "init_scale": cfg.init_scale,
                    "dtype": cfg.dtype,
                    "seed": cfg.seed,
                },
                "train_examples": result["train_examples"],
                "test_examples": result["test_examples"],
                "data_source": result["data_source"],
                "final_test_error_percent": final["test_error_percent"],
                "best_test_error_percent": result["best_test_error_percent"],
                "target_test_error_percent": target,
                "meets_target": None if target is None else final["test_error_percent"] <= target,
                "wall_seconds": wall,
                "curve": curve,
            }
        )
        out = RESULTS / ("train_accuracy_quick.json" if args.quick else "train_accuracy.json")
        kept = []
        if args.only and out.exists():  # keep the other model's last result
            kept = [r for r in json.loads(out.read_text())["runs"] if r["model"] != args.only]
        out.write_text(json.dumps({"quick": args.quick, "runs": kept + runs}, indent=2))
    print(
        "train_accuracy: "
        + "; ".join(
            f"{r['model']} on {r['dataset']}: {r['final_test_error_percent']:.2f}% test error after "
            f"{r['epochs']} epochs ({r['wall_seconds']:.0f} s)"
            + (
                ""
                if r["target_test_error_percent"] is None
                else f", target ≤ {r['target_test_error_percent']}%"
            )
            for r in runs
        )
    )


if __name__ == "__main__":
    main()
