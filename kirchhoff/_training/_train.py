"""The training loop: epochs of steps, validation and test evaluation, checkpoints."""

import dataclasses
import hashlib
import pathlib
import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._data import N_CLASSES, Dataset, InvalidInputError, batches, load_dataset, split_validation
from .._solver._base import NotConvergedError, status_messages
from ._config import TrainConfig, build_model, build_optimizer
from ._recipes import RECIPE_VERSIONS
from ._rundir import (
    CHECKPOINT,
    CURVE,
    RunDirectoryError,
    RunLock,
    append_metrics,
    open_run,
    plot_learning_curve,
    restore_state,
    resume_entry,
    save_checkpoint,
    write_metrics,
    write_result,
    write_summary,
)
from ._step import StepInfo, evaluate, make_train_step


def _check_phases(info: StepInfo, host: dict, log: dict, cfg: TrainConfig, epoch, step) -> None:
    """Tally each phase's statuses into ``log`` (``host``: the step's report fetched to the
    host); under the default policy, stop at the first example whose phase did not converge,
    naming the step, the example and the phase."""
    for name, ok, residual in zip(info.phases, host["converged"], host["residual"], strict=True):
        entry = log.setdefault(name, [0, 0, 0.0])
        entry[0] += int(np.sum(ok))
        entry[1] += int(ok.size)
        finite = residual[np.isfinite(residual)]
        entry[2] = max(entry[2], float(np.max(finite, initial=0.0)))
        if cfg.on_unconverged == "error" and not np.all(ok):
            bad = np.flatnonzero(~ok)
            first = int(bad[0])
            raise NotConvergedError(
                f"training step {step} (epoch {epoch}): the {name} phase of example(s) "
                f"{bad.tolist()} of the batch did not converge within {cfg.n_sweeps} sweeps "
                f"(example {first}: {status_messages(info.phase(name)[0])[first]}, KCL residual "
                f"{residual[first]:.3g} A, tolerance phase_rtol={cfg.phase_rtol:g}). Raise "
                "n_sweeps, or choose on_unconverged='skip' (leave such examples out of the "
                "gradient) or 'warn' (train on them and count them)."
            )


def _subset(data: Dataset, limit):
    if limit is None or limit >= len(data):
        return data
    return dataclasses.replace(data, images=data.images[:limit], labels=data.labels[:limit])


def _load_splits(cfg: TrainConfig):
    """(train, validation or None, test) datasets, limited as the config says."""
    train_data = _subset(load_dataset(cfg.dataset, "train", data_dir=cfg.data_dir), cfg.train_limit)
    test_data = _subset(load_dataset(cfg.dataset, "test", data_dir=cfg.data_dir), cfg.test_limit)
    val_data = None
    if cfg.val_size:
        if cfg.val_size >= len(train_data):
            raise InvalidInputError(
                f"val_size {cfg.val_size} leaves no training examples out of {len(train_data)}."
            )
        train_data, val_data = split_validation(train_data, cfg.val_size)
    # every dataset here has N_CLASSES classes (Dataset refuses other labels)
    cfg.check_data(train_data.images.shape[1], N_CLASSES)
    if len(train_data) // cfg.batch_size == 0:
        raise InvalidInputError(
            f"batch_size {cfg.batch_size} is larger than the {len(train_data)} training examples."
        )
    return train_data, val_data, test_data


def _fingerprint(*splits) -> str:
    """SHA-256 of the examples a run trains, validates and tests on (None: no split)."""
    h = hashlib.sha256()
    for data in splits:
        for array in () if data is None else (data.images, data.labels):
            h.update(f"{array.dtype}{array.shape}".encode())
            h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()


def _initial_state(cfg: TrainConfig, out, opened, optimizer, n_features: int, data_sha256: str):
    """(net, opt_state, epoch, step, records, resumes): from the checkpoint ``opened`` (see
    ``open_run``) when resuming, else a new network."""
    if opened is not None:
        header, weights, accepted = opened
        if header.get("data_sha256") != data_sha256:
            raise RunDirectoryError(
                f"cannot resume the run in {out}: the {cfg.dataset} examples loaded now "
                f"(data_dir {cfg.data_dir!r}) differ from those it was trained on (data_dir "
                f"{header['config'].get('data_dir')!r}); point --data-dir at the same data, "
                "or train into another --out."
            )
        net, opt_state = restore_state(cfg, header, weights, out / CHECKPOINT)
        # the checkpoint's records are the run's: metrics.jsonl and checkpoint.json are
        # rewritten from it (dropping a torn line, records past it, a stale summary)
        records = header["records"]
        write_metrics(out, records)
        write_summary(out, header)
        resumes = [*header.get("resumes", []), resume_entry(header, accepted)]
        return net, opt_state, header["epoch"], header["step"], records, resumes
    net = build_model(cfg)
    if net.n_inputs != n_features:
        raise InvalidInputError(
            f"model {cfg.model} takes {net.n_inputs} features, data has {n_features}."
        )
    opt_state = optimizer.init(eqx.filter(net, net.trainable_filter()))
    return net, opt_state, 0, 0, [], []


def _phase_summary(phase_log: dict, cfg: TrainConfig, epoch: int) -> dict:
    """Per phase, the epoch's converged fraction, unconverged count and worst residual; warns
    about unconverged examples unless the policy stopped at the first."""
    phases = {
        k: {
            "converged_fraction": ok / max(n, 1),
            "unconverged_examples": n - ok,
            "max_residual_amps": worst,
        }
        for k, (ok, n, worst) in phase_log.items()
    }
    unconverged = {k: v["unconverged_examples"] for k, v in phases.items()}
    if cfg.on_unconverged != "error" and any(unconverged.values()):
        what = "left out of the gradient" if cfg.on_unconverged == "skip" else "trained on"
        warnings.warn(
            f"epoch {epoch}: examples whose phase did not converge within {cfg.n_sweeps} "
            f"sweeps (per phase: {unconverged}) were {what}.",
            stacklevel=3,
        )
    return phases


class _Run:
    """The state one training call carries from epoch to epoch."""

    def __init__(self, cfg, params, static, opt_state, step, progress):
        self.cfg, self.params, self.static, self.opt_state = cfg, params, static, opt_state
        self.step, self.progress = step, progress
        self.base_key = jax.random.PRNGKey(cfg.seed)
        self.step_keys = jax.jit(jax.vmap(jax.random.fold_in, in_axes=(None, 0)))

    def epoch(self, step_fn, train_data, epoch: int, n_batches: int, eye, dtype):
        """One epoch of steps; returns (losses, wrong, seen, phase_log)."""
        # the plain text bar: tqdm.auto's notebook bar needs ipywidgets, and without them it
        # warns in every notebook that trains, even with the bar disabled
        from tqdm import tqdm

        cfg = self.cfg
        it = batches(train_data, cfg.batch_size, np.random.default_rng([cfg.seed, epoch]))
        bar = tqdm(
            it,
            total=n_batches,
            desc=f"epoch {epoch}/{cfg.epochs}",
            disable=not self.progress,
            leave=False,
            mininterval=2.0,
        )
        self.losses, self.wrong, self.seen = [], 0, 0
        self.phase_log: dict[str, list] = {}  # phase → [converged, examples, worst residual]
        self.power_log: dict[str, list] = {}  # phase → [Σ watts per example, examples]
        self.step_energies: list[float] = []
        # one key per step, folded from the step count (a resumed run draws the same keys);
        # the epoch's keys in one call, as a fold_in per step costs ~0.25 ms of dispatch
        keys = np.asarray(
            self.step_keys(self.base_key, np.arange(self.step, self.step + n_batches))
        )
        x_dtype = np.dtype(dtype)
        for i, (xb, lb) in enumerate(bar):
            # numpy arrays straight to the compiled step (it transfers them) and the report
            # back in one device_get: per step, the host's share was ~1 ms, on 2 cores shared
            # with the step itself (this loop: 1.2–1.3× the examples/s of one jnp.asarray and
            # one transfer per array, DRN-XS batch 16 and DRN-1H batch 64, medians of 3)
            self.params, self.opt_state, info = step_fn(
                self.params, self.opt_state, np.asarray(xb, x_dtype), eye[lb], keys[i]
            )
            self.step += 1
            # read at once: reading the reports a few steps behind the device (so a step is
            # dispatched while the last runs) measured no faster on CPU (3,547 vs 3,945
            # examples/s, DRN-1H batch 64, medians of 3)
            self._check_report(self.step, epoch, info, lb)
            if self.step % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(self.losses[-20:]):.4f}")
        return self.losses, self.wrong, self.seen, self.phase_log

    def _check_report(self, step: int, epoch: int, info, labels) -> None:
        """Tally one step's report; stop at a phase that did not converge (the default
        policy) or a loss that is not finite."""
        host = jax.device_get(
            {
                "loss": info.loss,
                "outputs": info.outputs,
                "converged": info.converged,
                "residual": info.residual,
                "power": info.power,
            }
        )
        _check_phases(info, host, self.phase_log, self.cfg, epoch, step)
        if host["power"] is not None:
            self._log_power(info.phases, host["power"])
        self.losses.append(float(host["loss"]))
        self.wrong += int(np.sum(np.argmax(host["outputs"], -1) != labels))
        self.seen += len(labels)
        if not np.isfinite(self.losses[-1]):
            raise FloatingPointError(
                f"training diverged at step {step} (loss {self.losses[-1]}); lower --lr or --beta."
            )

    def _log_power(self, phases, watts) -> None:
        watts = np.asarray(watts, dtype=np.float64)
        for name, row in zip(phases, watts, strict=True):
            entry = self.power_log.setdefault(name, [0.0, 0])
            entry[0] += float(np.sum(row))
            entry[1] += row.size
        self.step_energies.append(float(np.sum(watts)) * self.cfg.phase_duration)

    def power_summary(self) -> dict:
        """Mean watts dissipated per example in each phase and joules per training step (Σ
        over the phases and the batch of power × phase_duration), over the epoch."""
        if not self.step_energies:
            return {}
        return {
            "power_watts": {k: s / max(n, 1) for k, (s, n) in self.power_log.items()},
            "energy_per_step_joules": float(np.mean(self.step_energies)),
            "phase_duration_seconds": self.cfg.phase_duration,
        }


def _scores(net, cfg: TrainConfig, data, split: str) -> dict:
    """``{split}_loss`` and ``{split}_error_percent`` of ``net`` on ``data`` (nothing for no
    data: a run without a validation split)."""
    if data is None:
        return {}
    ev = evaluate(net, data, cfg.eval_sweeps)
    return {f"{split}_loss": ev["loss"], f"{split}_error_percent": ev["error_percent"]}


def _picked(records: list[dict]) -> dict:
    """The epoch validation picks (the lowest validation error; the earliest of ties) and its
    figures, or None where no epoch was validated."""
    validated = [r for r in records if "val_error_percent" in r]
    if not validated:
        return {"picked_epoch": None, "best_val_error_percent": None}
    best = min(validated, key=lambda r: (r["val_error_percent"], r["epoch"]))
    return {"picked_epoch": best["epoch"], "best_val_error_percent": best["val_error_percent"]}


def _stalled(records: list[dict], patience: int | None) -> bool:
    """Early stopping: the validation error has not improved on its best for ``patience``
    epochs."""
    if patience is None or not records or "val_error_percent" not in records[-1]:
        return False
    picked = _picked(records)["picked_epoch"]
    return records[-1]["epoch"] - picked >= patience


def _result(cfg, records, t_start, train_data, val_data, test_data) -> dict:
    final = records[-1] if records else None
    return {
        "config": dataclasses.asdict(cfg),
        "recipe_version": RECIPE_VERSIONS.get(cfg.recipe) if cfg.recipe else None,
        "epochs_run": len(records),
        "final": final,
        # the test set is evaluated once, when the run ends: its error is the reported one
        "test_error_percent": None if final is None else final.get("test_error_percent"),
        **_picked(records),
        "early_stopped": bool(final and final.get("early_stopped")),
        "wall_seconds_this_call": time.perf_counter() - t_start,
        "train_examples": len(train_data),
        "val_examples": 0 if val_data is None else len(val_data),
        "test_examples": len(test_data),
        "trained_on": "the training split"
        + ("" if val_data is None else f" less {len(val_data)} validation examples"),
        "data_source": train_data.source,
    }


def train(
    cfg: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    stop_after_epoch: int | None = None,
) -> dict:
    """Train the network ``cfg`` describes, checkpointing after every epoch in the run
    directory ``cfg.out``.

    The directory receives ``checkpoint.eqx`` (atomic, checksummed) and its readable summary
    ``checkpoint.json``, ``metrics.jsonl`` (one record per epoch:
    [`read_metrics`][kirchhoff.read_metrics]), ``learning_curve.png`` and ``result.json``.
    It is locked while training: a second trainer there refuses.

    Model selection never looks at the test set: with ``cfg.val_size`` examples held out of
    the training split, every epoch is evaluated on them (``val_error_percent``; the result's
    ``picked_epoch`` is the epoch of the lowest, and ``cfg.patience`` stops training when it
    has not improved for that many epochs); the test set is evaluated once, when the run ends
    (its last epoch, or an early stop), and that record's ``test_error_percent`` is the
    result's.

    A directory that already holds a run is never overwritten: without ``resume`` that is a
    [`RunDirectoryError`][kirchhoff.RunDirectoryError] (a ValueError), as is a directory with
    a run's files but no checkpoint. ``resume=True`` continues from the checkpoint there,
    reproducing the uninterrupted run bit for bit; it refuses a configuration that would
    change the training (naming each differing field), accepts a new ``epochs`` (unless a
    cosine schedule spans them), ``out``, ``data_dir``, ``recipe``, ``phase_duration`` or
    ``patience`` and records them in the checkpoint's ``resumes``, and starts a new run when
    the directory holds none.

    Across hosts (after ``jax.distributed.initialize()``, with ``cfg.devices`` the global
    device count) every process runs this same call: each holds the whole run (the
    replicated network, the same batches, the same evaluations), process 0 writes ``cfg.out``
    and process i > 0 its own copy, ``cfg.out + ".process-i"``, so that no two write one file
    and each can resume from its own checkpoint.

    Args:
        cfg: the [`TrainConfig`][kirchhoff.TrainConfig] (e.g.
            [`TrainConfig.from_recipe`][kirchhoff.TrainConfig.from_recipe]); its dataset is
            loaded with [`load_dataset`][kirchhoff.load_dataset].
        resume: continue the run in ``cfg.out`` from its checkpoint (see above); without it
            ``cfg.out`` must hold no run.
        progress: show a progress bar during each epoch and print one line per epoch.
        stop_after_epoch: stop after this epoch (counted over the whole run, resumes
            included; a run already past it stops after one more) though ``cfg.epochs`` is
            not reached, leaving a checkpoint to resume later; the test set is evaluated
            only if that epoch ends the run anyway. None: train to the end.

    Returns:
        The result, as written to ``result.json``, plus the trained network: a dict with
            ``config`` (the fields), ``recipe_version``, ``epochs_run``, ``final`` (the last
            epoch's record), ``test_error_percent`` (None if the run has not ended),
            ``picked_epoch`` and ``best_val_error_percent`` (None without validation),
            ``early_stopped``, ``wall_seconds_this_call``, ``train_examples``,
            ``val_examples``, ``test_examples``, ``trained_on``, ``data_source``, ``resumes``,
            and ``network``: the trained [`LayeredNetwork`][kirchhoff.LayeredNetwork] (not in
            the file).

    Raises:
        RunDirectoryError: ``cfg.out`` holds a run (without ``resume``), a damaged
            checkpoint, a run of a different configuration or data, or another trainer.
        InvalidInputError: a model that does not fit the data, a ``val_size`` or
            ``batch_size`` the training split cannot hold.
        DatasetNotFoundError: no source has the dataset.
        NotConvergedError: with ``on_unconverged="error"``, a phase of an example did not
            converge within ``cfg.n_sweeps`` sweeps.
        FloatingPointError: the training loss stopped being finite (lower ``lr`` or
            ``beta``).
    """
    cfg = dataclasses.replace(cfg, out=process_run_dir(cfg.out))
    out = pathlib.Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out):
        return _train_locked(cfg, out, resume, progress, stop_after_epoch)


def process_run_dir(out) -> str:
    """The run directory this process writes: ``out`` itself, except for process i > 0 of a
    multi-process (multi-host) run, whose copy is ``out + ".process-i"``."""
    if jax.process_count() > 1 and jax.process_index() > 0:
        return f"{out}.process-{jax.process_index()}"
    return str(out)


# the learning curve is redrawn at most this often (and always at the run's end)
_PLOT_EVERY_S = 30.0


def _epoch_line(rec: dict) -> str:
    line = (
        f"epoch {rec['epoch']}: train loss {rec['train_loss']:.4f}, train error "
        f"{rec['train_error_percent']:.2f}%"
    )
    if "val_error_percent" in rec:
        line += f", validation error {rec['val_error_percent']:.2f}%"
    if "test_error_percent" in rec:
        stopped = " (early stop: validation no better)" if rec.get("early_stopped") else ""
        line += f", test error {rec['test_error_percent']:.2f}%{stopped}"
    return (
        line + f" ({rec['train_seconds']:.1f} s training, {rec['eval_seconds']:.1f} s evaluation)"
    )


def _train_locked(cfg: TrainConfig, out: pathlib.Path, resume, progress, stop_after_epoch):
    opened = open_run(out, cfg, resume)
    dtype = jnp.dtype(cfg.dtype)
    train_data, val_data, test_data = _load_splits(cfg)
    data_sha256 = _fingerprint(train_data, val_data, test_data)
    steps_per_epoch = len(train_data) // cfg.batch_size
    optimizer = build_optimizer(cfg, steps_per_epoch)
    n_features = train_data.images.shape[1]
    net, opt_state, start_epoch, step, records, resumes = _initial_state(
        cfg, out, opened, optimizer, n_features, data_sha256
    )
    params, static = eqx.partition(net, net.trainable_filter())
    run = _Run(cfg, params, static, opt_state, step, progress)
    # the step reuses the state's buffers: nothing else holds run.params between steps
    step_fn = make_train_step(cfg, static, optimizer, donate=True, devices=cfg.devices)
    eye = np.eye(net.n_outputs, dtype=dtype)
    t_start = plotted = time.perf_counter()
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        losses, wrong, seen, phase_log = run.epoch(
            step_fn, train_data, epoch, steps_per_epoch, eye, dtype
        )
        t_trained = time.perf_counter()
        phases = _phase_summary(phase_log, cfg, epoch)
        net = eqx.combine(run.params, static)
        rec = {
            "epoch": epoch,
            "step": run.step,
            "model": cfg.model,
            "dataset": cfg.dataset,
            "algorithm": cfg.algorithm,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "train_error_percent": 100.0 * wrong / max(seen, 1),
            **_scores(net, cfg, val_data, "val"),
            "max_free_residual_amps": phases["free"]["max_residual_amps"] if phases else 0.0,
            "phases": phases,
            **run.power_summary(),
        }
        stop = _stalled([*records, rec], cfg.patience)
        if stop:
            rec["early_stopped"] = True
        if stop or epoch == cfg.epochs:
            # the run's end: the only time the test set is looked at
            rec |= _scores(net, cfg, test_data, "test")
        t_end = time.perf_counter()
        rec |= {
            "epoch_seconds": t_end - t0,
            "train_seconds": t_trained - t0,
            "eval_seconds": t_end - t_trained,
            # the training steps' rate (evaluation apart: it is in eval_seconds)
            "examples_per_second": seen / max(t_trained - t0, 1e-12),
        }
        records.append(rec)
        # the checkpoint (holding the records) first: metrics.jsonl never runs ahead of it
        save_checkpoint(
            out,
            run.params,
            run.opt_state,
            epoch,
            run.step,
            cfg,
            steps_per_epoch,
            records=records,
            resumes=resumes,
            data_sha256=data_sha256,
        )
        append_metrics(out, rec)
        last = (
            stop
            or epoch == cfg.epochs
            or (stop_after_epoch is not None and epoch >= stop_after_epoch)
        )
        if last or time.perf_counter() - plotted >= _PLOT_EVERY_S:
            # drawing the curve costs ~0.5–1 s: over a run of 100 short epochs, a tenth of it
            plot_learning_curve(records, out / CURVE)
            plotted = time.perf_counter()
        if progress:
            print(_epoch_line(rec), flush=True)
        if last:
            break
    result = _result(cfg, records, t_start, train_data, val_data, test_data)
    result["resumes"] = resumes
    if records:  # (a new run of no epochs leaves no files: nothing was trained)
        write_result(out, result)
    result["network"] = eqx.combine(run.params, static)
    return result
