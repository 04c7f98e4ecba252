"""Training layered analog networks with EqProp (or an autodiff baseline) on image data."""

import dataclasses
import json
import os
import pathlib
import time
import warnings
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._data import Dataset, batches, load_dataset, split_validation
from .._layered import LayeredNetwork, make_model
from .._learning._autodiff import implicit_gradient
from .._learning._layered import (
    init_layers,
    layered_backprop_gradient,
    layered_eqprop_gradient,
)
from .._solver._base import NotConvergedError, Status
from .._solver._bcd import PHASE_RTOL, BlockCoordinateDescent, input_drive, run_sweeps

ON_UNCONVERGED = ("error", "skip", "warn")
ALGORITHMS = (
    "eqprop",
    "eqprop-centered",
    "eqprop-positive",
    "eqprop-negative",
    "backprop",
    "implicit",
)


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on (saved beside its checkpoints)."""

    model: str = "drn-xs"
    dataset: str = "mnist_subset"
    algorithm: str = "eqprop"
    epochs: int = 10
    batch_size: int = 16
    beta: float = 1.0
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.0
    lr_schedule: str = "constant"
    layer_lr: tuple[float, ...] | None = None  # per weight layer multipliers of lr (biases too)
    n_sweeps: int = 4
    eval_sweeps: int = 8
    phase_rtol: float = PHASE_RTOL  # a phase converged: max |r|/S ≤ phase_rtol·(its scale)
    on_unconverged: str = "error"  # an example whose phase did not converge: error/skip/warn
    input_gain: float = 100.0
    init_scale: float = 1.0
    max_conductance: float | None = None
    diode: str | None = None  # None: the model's own (Shockley for seed, ideal for DRNs)
    amp_gain: float | None = None  # the seed network's amplifier gain (None: its default)
    seed: int = 0
    dtype: str = "float32"
    train_limit: int | None = None
    test_limit: int | None = None
    val_size: int = 0  # examples held out of the training split to choose settings on
    data_dir: str | None = None
    out: str = "runs/default"
    recipe: str | None = None  # the recipe these settings started from, for the record

    @classmethod
    def from_recipe(cls, name: str, **overrides) -> "TrainConfig":
        """The configuration of recipe ``name`` (see ``kirchhoff._training.RECIPES``), with
        ``overrides`` applied on top."""
        from ._recipes import recipe_fields

        return cls(**{**recipe_fields(name), **overrides})

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; choose one of {ALGORITHMS}.")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose 'sgd' or 'adam'.")
        if self.epochs < 0 or self.batch_size < 1 or self.n_sweeps < 1:
            raise ValueError("epochs must be ≥ 0, batch_size and n_sweeps ≥ 1.")
        if self.on_unconverged not in ON_UNCONVERGED:
            raise ValueError(
                f"unknown on_unconverged {self.on_unconverged!r}; choose one of {ON_UNCONVERGED}."
            )
        if not self.phase_rtol > 0:
            raise ValueError("phase_rtol must be positive.")
        if self.val_size < 0:
            raise ValueError("val_size must be ≥ 0.")
        if self.diode not in (None, "ideal", "shockley"):
            raise ValueError(f"unknown diode {self.diode!r}; choose 'ideal' or 'shockley'.")
        if self.amp_gain is not None and (self.model != "seed" or not self.amp_gain > 0):
            raise ValueError("amp_gain is the seed network's amplifier gain: > 0, model 'seed'.")
        if not self.input_gain > 0:
            raise ValueError("input_gain must be positive.")
        if not self.beta > 0 or not self.lr > 0:
            raise ValueError("beta and lr must be positive.")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError("lr_schedule must be 'constant' or 'cosine'.")
        if self.layer_lr is not None:
            self.layer_lr = tuple(float(x) for x in self.layer_lr)
        if self.dtype not in ("float32", "float64"):
            raise ValueError("dtype must be 'float32' or 'float64'.")
        if jax.dtypes.canonicalize_dtype(jnp.dtype(self.dtype)) != jnp.dtype(self.dtype):
            # the library never flips JAX's x64 switch behind the user's back
            raise ValueError(
                "dtype 'float64' needs JAX's 64-bit mode: set JAX_ENABLE_X64=1 in the "
                "environment (or call jax.config.update('jax_enable_x64', True) first)."
            )


def build_model(cfg: TrainConfig) -> LayeredNetwork:
    kwargs: dict[str, Any] = dict(input_gain=cfg.input_gain, dtype=jnp.dtype(cfg.dtype))
    if cfg.diode is not None:
        kwargs["diode"] = cfg.diode
    if cfg.model != "seed":
        kwargs["init_scale"] = cfg.init_scale
    elif cfg.amp_gain is not None:
        kwargs["amp_gain"] = cfg.amp_gain
    return make_model(cfg.model, jax.random.PRNGKey(cfg.seed), **kwargs)


def build_optimizer(
    cfg: TrainConfig, steps_per_epoch: int | None = None
) -> optax.GradientTransformation:
    lr = cfg.lr
    if cfg.lr_schedule == "cosine":
        if not steps_per_epoch:
            raise ValueError("a cosine schedule needs the number of steps per epoch")
        lr = optax.cosine_decay_schedule(cfg.lr, cfg.epochs * steps_per_epoch)
    if cfg.optimizer == "adam":
        return optax.adam(lr)
    return optax.sgd(lr, momentum=cfg.momentum or None)


def project(params, max_conductance=None):
    """Keep conductances physical: clip to [0, max_conductance] after each update."""
    return eqx.tree_at(
        lambda p: p.weights,
        params,
        tuple(jnp.clip(w, 0.0, max_conductance) for w in params.weights),
    )


def _variant(algorithm):
    return "centered" if algorithm in ("eqprop", "eqprop-centered") else algorithm.split("-")[1]


class StepInfo(eqx.Module):
    """What a training step reports besides the new parameters (batched over examples)."""

    loss: jax.Array  # mean loss of the examples trained on
    outputs: jax.Array  # free-phase output potentials (batch, n_outputs)
    status: dict  # phase name → Status per example (free; positive/negative for EqProp)
    residual: dict  # phase name → max |KCL| per example, amperes


def make_train_step(cfg: TrainConfig, static, optimizer):
    """A jit-compiled training step on a batch: (params, opt_state, x, y) → (params,
    opt_state, :class:`StepInfo`), every phase's status included."""
    skip = cfg.on_unconverged == "skip"

    def step(params, opt_state, x, y):
        net = eqx.combine(params, static)
        if cfg.algorithm.startswith("eqprop"):
            grads, loss, ph = layered_eqprop_gradient(
                net,
                x,
                y,
                cfg.beta,
                cfg.n_sweeps,
                _variant(cfg.algorithm),
                rtol=cfg.phase_rtol,
                skip_unconverged=skip,
            )
            phases, out = ph.equilibria(), ph.free[-1]
        elif cfg.algorithm == "backprop":
            grads, loss, eq = layered_backprop_gradient(net, x, y, cfg.n_sweeps, cfg.phase_rtol)
            phases, out = {"free": eq}, net.output_potentials(eq.free, x)
        else:  # implicit differentiation of the converged equilibrium
            solver = BlockCoordinateDescent()
            grads = implicit_gradient(net, solver, x, y)
            eq = solver.solve(net, x)
            out = net.output_potentials(eq.free, x)
            loss = jnp.mean(0.5 * jnp.sum((out - y) ** 2, -1))
            phases = {"free": eq}
        updates, opt_state = optimizer.update(grads, opt_state, params)
        if cfg.layer_lr is not None:
            updates = eqx.tree_at(
                lambda u: (u.weights, u.biases),
                updates,
                (
                    tuple(s * u for s, u in zip(cfg.layer_lr, updates.weights, strict=True)),
                    tuple(s * u for s, u in zip(cfg.layer_lr, updates.biases, strict=True)),
                ),
            )
        params = project(optax.apply_updates(params, updates), cfg.max_conductance)
        info = StepInfo(
            loss=loss,
            outputs=out,
            status={k: eq.status for k, eq in phases.items()},
            residual={k: eq.residual for k, eq in phases.items()},
        )
        return params, opt_state, info

    # jax.jit with the static part closed over: less per-call dispatch work than filter_jit
    return jax.jit(step)


def _check_phases(info: StepInfo, log: dict, cfg: TrainConfig, epoch: int, step: int) -> None:
    """Tally each phase's statuses into ``log``; under the default policy, stop at the first
    example whose phase did not converge, naming the step, the example and the phase."""
    for name, status in info.status.items():
        status = np.asarray(status)
        residual = np.asarray(info.residual[name])
        ok = status == Status.SUCCESS
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
                f"(example {first}: {Status.messages[int(status[first])]}, KCL residual "
                f"{residual[first]:.3g} A, tolerance phase_rtol={cfg.phase_rtol:g}). Raise "
                "n_sweeps, or choose on_unconverged='skip' (leave such examples out of the "
                "gradient) or 'warn' (train on them and count them)."
            )


def predict(net: LayeredNetwork, x, n_sweeps: int):
    """Output potentials of the free phase after ``n_sweeps`` sweeps (batched)."""
    layers = run_sweeps(
        net,
        init_layers(net, x),
        input_drive(net, x),
        jnp.zeros((*x.shape[:-1], net.n_outputs), x.dtype),
        0.0,
        n_sweeps,
    )
    return layers[-1]


_predict_jit = eqx.filter_jit(predict)


def evaluate(net: LayeredNetwork, data: Dataset, n_sweeps: int = 8, batch_size: int = 1000) -> dict:
    """Mean loss and classification error (%) of ``net`` on ``data`` (one-hot targets)."""
    dtype = net.weights[0].dtype
    wrong, loss, n = 0, 0.0, len(data)
    for start in range(0, n, batch_size):
        x = jnp.asarray(data.images[start : start + batch_size], dtype)
        labels = data.labels[start : start + batch_size]
        out = np.asarray(_predict_jit(net, x, n_sweeps))
        y = np.eye(net.n_outputs)[labels]
        loss += float(np.sum(0.5 * np.sum((out - y) ** 2, -1)))
        wrong += int(np.sum(np.argmax(out, -1) != labels))
    return {"loss": loss / n, "error_percent": 100.0 * wrong / n}


def _subset(data: Dataset, limit):
    if limit is None or limit >= len(data):
        return data
    return dataclasses.replace(data, images=data.images[:limit], labels=data.labels[:limit])


def read_metrics(out) -> list[dict]:
    """The per-epoch records of the run in directory ``out`` (its ``metrics.jsonl``)."""
    text = (pathlib.Path(out) / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line]


def _atomic_write(path: pathlib.Path, write):
    tmp = path.with_suffix(path.suffix + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(
    out: pathlib.Path,
    params,
    opt_state,
    epoch: int,
    step: int,
    cfg: TrainConfig,
    steps_per_epoch: int = 0,
):
    """Atomically write params + optimizer state (equinox serialisation) and the run state."""
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(
        out / "checkpoint.eqx", lambda p: eqx.tree_serialise_leaves(p, (params, opt_state))
    )
    meta = {
        "epoch": epoch,
        "step": step,
        "steps_per_epoch": steps_per_epoch,
        "config": dataclasses.asdict(cfg),
    }
    _atomic_write(out / "checkpoint.json", lambda p: p.write_text(json.dumps(meta, indent=2)))


def load_checkpoint(out: pathlib.Path, cfg: TrainConfig | None = None):
    """(config, network, opt_state, epoch, step) from a run directory."""
    meta = json.loads((out / "checkpoint.json").read_text())
    saved = TrainConfig(**meta["config"])
    cfg = cfg or saved
    net = build_model(cfg)
    optimizer = build_optimizer(cfg, meta.get("steps_per_epoch") or 1)
    params, static = eqx.partition(net, net.trainable_filter())
    opt_state = optimizer.init(params)
    params, opt_state = eqx.tree_deserialise_leaves(out / "checkpoint.eqx", (params, opt_state))
    return cfg, eqx.combine(params, static), opt_state, meta["epoch"], meta["step"]


def plot_learning_curve(records: list[dict], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in records]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].plot(ep, [r["train_loss"] for r in records], "o-", label="train (running)")
    if "val_loss" in records[-1]:
        ax[0].plot(ep, [r["val_loss"] for r in records], "^-", label="validation")
        ax[1].plot(ep, [r["val_error_percent"] for r in records], "^-", label="validation")
    ax[0].plot(ep, [r["test_loss"] for r in records], "s-", label="test")
    ax[0].set_xlabel("epoch"), ax[0].set_ylabel("loss ½‖v_out − y‖²"), ax[0].legend()
    ax[1].plot(ep, [r["train_error_percent"] for r in records], "o-", label="train (running)")
    ax[1].plot(ep, [r["test_error_percent"] for r in records], "s-", label="test")
    ax[1].set_xlabel("epoch"), ax[1].set_ylabel("error (%)"), ax[1].legend()
    fig.suptitle(f"{records[-1]['model']} on {records[-1]['dataset']} ({records[-1]['algorithm']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train(
    cfg: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    stop_after_epoch: int | None = None,
) -> dict:
    """Train, evaluating and checkpointing after every epoch. Writes ``metrics.jsonl``,
    ``checkpoint.eqx/json``, ``learning_curve.png`` and ``result.json`` under ``cfg.out``.
    ``resume=True`` continues from the checkpoint there, reproducing the uninterrupted run."""
    from tqdm.auto import tqdm

    out = pathlib.Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    dtype = jnp.dtype(cfg.dtype)
    train_data, test_data = (
        _subset(load_dataset(cfg.dataset, "train", data_dir=cfg.data_dir), cfg.train_limit),
        _subset(load_dataset(cfg.dataset, "test", data_dir=cfg.data_dir), cfg.test_limit),
    )
    val_data = None
    if cfg.val_size:
        if cfg.val_size >= len(train_data):
            raise ValueError(
                f"val_size {cfg.val_size} leaves no training examples out of {len(train_data)}."
            )
        train_data, val_data = split_validation(train_data, cfg.val_size)
    steps_per_epoch = len(train_data) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"batch_size {cfg.batch_size} is larger than the {len(train_data)} training examples."
        )
    optimizer = build_optimizer(cfg, steps_per_epoch)
    if resume and (out / "checkpoint.json").exists():
        _, net, opt_state, start_epoch, step = load_checkpoint(out, cfg)
        params, static = eqx.partition(net, net.trainable_filter())
        records = read_metrics(out)
        records = [r for r in records if r["epoch"] <= start_epoch]
    else:
        net = build_model(cfg)
        params, static = eqx.partition(net, net.trainable_filter())
        opt_state = optimizer.init(params)
        start_epoch, step, records = 0, 0, []
        if net.n_inputs != train_data.images.shape[1]:
            raise ValueError(
                f"model {cfg.model} takes {net.n_inputs} features, data has {train_data.images.shape[1]}."
            )
    step_fn = make_train_step(cfg, static, optimizer)
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    eye = np.eye(net.n_outputs, dtype=dtype)
    t_start = time.perf_counter()
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        losses, wrong, seen = [], 0, 0
        n_batches = len(train_data) // cfg.batch_size
        it = batches(train_data, cfg.batch_size, np.random.default_rng([cfg.seed, epoch]))
        bar = tqdm(
            it,
            total=n_batches,
            desc=f"epoch {epoch}/{cfg.epochs}",
            disable=not progress,
            leave=False,
            mininterval=2.0,
        )
        phase_log: dict[str, list] = {}  # phase → [converged, examples, worst residual]
        for xb, lb in bar:
            x = jnp.asarray(xb, dtype)
            y = jnp.asarray(eye[lb])
            params, opt_state, info = step_fn(params, opt_state, x, y)
            step += 1
            _check_phases(info, phase_log, cfg, epoch, step)
            losses.append(float(info.loss))
            wrong += int(np.sum(np.argmax(np.asarray(info.outputs), -1) != lb))
            seen += len(lb)
            if not np.isfinite(losses[-1]):
                raise FloatingPointError(
                    f"training diverged at step {step} (loss {losses[-1]}); lower --lr or --beta."
                )
            if step % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
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
                stacklevel=2,
            )
        net = eqx.combine(params, static)
        ev = evaluate(net, test_data, cfg.eval_sweeps)
        val = {}
        if val_data is not None:
            ev_val = evaluate(net, val_data, cfg.eval_sweeps)
            val = {"val_loss": ev_val["loss"], "val_error_percent": ev_val["error_percent"]}
        rec = {
            "epoch": epoch,
            "step": step,
            "model": cfg.model,
            "dataset": cfg.dataset,
            "algorithm": cfg.algorithm,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "train_error_percent": 100.0 * wrong / max(seen, 1),
            "test_loss": ev["loss"],
            "test_error_percent": ev["error_percent"],
            **val,
            "max_free_residual_amps": phases["free"]["max_residual_amps"] if phases else 0.0,
            "phases": phases,
            "epoch_seconds": time.perf_counter() - t0,
            "examples_per_second": seen / (time.perf_counter() - t0),
        }
        records.append(rec)
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        save_checkpoint(out, params, opt_state, epoch, step, cfg, steps_per_epoch)
        plot_learning_curve(records, out / "learning_curve.png")
        if progress:
            print(
                f"epoch {epoch}: train loss {rec['train_loss']:.4f}, train error "
                f"{rec['train_error_percent']:.2f}%, test error {rec['test_error_percent']:.2f}% "
                f"({rec['epoch_seconds']:.1f} s)",
                flush=True,
            )
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
    net = eqx.combine(params, static)
    result = {
        "config": dataclasses.asdict(cfg),
        "epochs_run": len(records),
        "final": records[-1] if records else None,
        "best_test_error_percent": min((r["test_error_percent"] for r in records), default=None),
        "best_val_error_percent": min(
            (r["val_error_percent"] for r in records if "val_error_percent" in r), default=None
        ),
        "wall_seconds_this_call": time.perf_counter() - t_start,
        "train_examples": len(train_data),
        "val_examples": 0 if val_data is None else len(val_data),
        "test_examples": len(test_data),
        "data_source": train_data.source,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    result["network"] = net
    return result
