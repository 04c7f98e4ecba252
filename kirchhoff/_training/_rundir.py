"""A run directory: per-epoch metrics, checkpoints, the learning-curve plot."""

import dataclasses
import json
import os
import pathlib

import equinox as eqx

from ._config import TrainConfig, build_model, build_optimizer


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
