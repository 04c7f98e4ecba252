"""A run directory: one training run's checkpoint, per-epoch metrics, plot and result.

The directory ``out`` of a run holds

- ``checkpoint.eqx``: the checkpoint, one file replaced atomically after every epoch. A
  first line ``kirchhoff-checkpoint/1 <sha256> <n>`` is followed by an ``n``-byte JSON
  header (epoch, step, steps per epoch, the configuration, every epoch's record, the
  resumes so far, a fingerprint of the data) and the parameters and optimiser state in
  equinox's serialisation; the SHA-256 covers header and weights, and is checked on every
  load. It is the run's only source of truth: resuming reads nothing else.
- ``checkpoint.json``: the header, readable (a summary for people and scripts; rewritten
  from the checkpoint when a run resumes, never read to resume).
- ``metrics.jsonl``: one JSON record per epoch, appended after the checkpoint is written, so
  it never runs ahead of it; a last line cut short by a kill (no newline) is dropped on read,
  and a resume rewrites the file from the checkpoint's records.
- ``learning_curve.png``, ``result.json`` (replaced atomically);
- ``run.lock``: locked (``flock``) by the process training in the directory, so a second
  trainer refuses; the kernel drops the lock when the process ends, however it ends.

Files ending ``.tmp`` are writes that never completed; they hold nothing committed and are
removed by the next run that trains in the directory. What resuming accepts and refuses:
``config_changes``; what a directory must hold to be trained in: ``open_run``.
"""

import dataclasses
import datetime
import hashlib
import io
import json
import os
import pathlib

import equinox as eqx

from .._data._errors import InvalidInputError
from ._config import TrainConfig, build_model, build_optimizer

try:
    import fcntl
except ImportError:  # no flock (Windows): runs are not locked there
    fcntl = None

CHECKPOINT = "checkpoint.eqx"
SUMMARY = "checkpoint.json"
METRICS = "metrics.jsonl"
CURVE = "learning_curve.png"
RESULT = "result.json"
LOCK = "run.lock"
# the files that make a directory a run directory (the lock alone does not)
RUN_FILES = (CHECKPOINT, SUMMARY, METRICS, RESULT, CURVE)

_MAGIC = b"kirchhoff-checkpoint/1"
# configuration fields that may change when a run resumes: where the run and its data live
# and the recipe's name are not part of the trajectory (the data's content is checked by its
# fingerprint); epochs may change unless a schedule spans them
# fields that do not change the trajectory (patience only decides where the run stops; the
# device count changes it only by the order of floating-point sums)
_FREE_FIELDS = ("out", "data_dir", "recipe", "phase_duration", "patience", "devices")


class RunDirectoryError(InvalidInputError):
    """Raised when a run directory cannot be used as asked: its checkpoint is damaged or
    missing, it already holds a run (and [`train`][kirchhoff.train] was not asked to resume
    it), the configuration differs from its run's in a field that changes the training, its
    data differ from the run's, or another process is training in it.

    Raised by [`train`][kirchhoff.train], [`load_checkpoint`][kirchhoff.load_checkpoint] and
    [`read_metrics`][kirchhoff.read_metrics]. It is an
    [`InvalidInputError`][kirchhoff.InvalidInputError] (so a ValueError); the message names
    the directory or file and says what to do."""


# --------------------------------------------------------------------------- file writes


def _fsync_dir(path: pathlib.Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # a platform without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either its old content or all of
    ``data``, whenever the process dies (written beside it, flushed, then renamed over it)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _remove_unfinished_writes(out: pathlib.Path) -> None:
    for name in RUN_FILES:
        (out / (name + ".tmp")).unlink(missing_ok=True)


# --------------------------------------------------------------------------- the lock


class RunLock:
    """An exclusive lock on a run directory (``flock`` on its ``run.lock``), held while a
    process trains there; raises [`RunDirectoryError`][kirchhoff.RunDirectoryError] when
    another process holds it. The operating system releases it when the process exits or is
    killed."""

    def __init__(self, out):
        self.out = pathlib.Path(out)
        self._fd = None

    def __enter__(self):
        if fcntl is None:
            return self
        path = self.out / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f" (process {holder})" if holder.isdigit() else ""
            raise RunDirectoryError(
                f"the run directory {self.out} is in use: another training run{who} holds "
                f"its lock ({path}). Wait for it to finish, or train into another --out."
            ) from error
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# --------------------------------------------------------------------------- metrics


def read_metrics(out) -> list[dict]:
    """The per-epoch records of the run in directory ``out`` (its ``metrics.jsonl``).

    A last line without its newline (a write cut short) is dropped; a damaged complete line
    is a [`RunDirectoryError`][kirchhoff.RunDirectoryError]. The file may be read while the
    run trains. [`plot.learning_curve`][kirchhoff.plot.learning_curve] and
    [`plot.error_curves`][kirchhoff.plot.error_curves] draw the records.

    Args:
        out: the run directory (``cfg.out`` of [`train`][kirchhoff.train]), a path.

    Returns:
        One dict per finished epoch, in order, with ``epoch``, ``step``, ``model``,
            ``dataset``, ``algorithm``, ``train_loss`` and ``train_error_percent`` (running
            means over the epoch's steps), ``max_free_residual_amps``, ``phases`` (per phase:
            ``converged_fraction``, ``unconverged_examples``, ``max_residual_amps``),
            ``epoch_seconds``, ``train_seconds``, ``eval_seconds``, ``examples_per_second``;
            ``val_loss`` and ``val_error_percent`` with a validation split; ``test_loss`` and
            ``test_error_percent`` (and ``early_stopped``) on the run's last epoch;
            ``power_watts``, ``energy_per_step_joules`` and ``phase_duration_seconds`` when the
            config sets ``phase_duration``. Losses are in volts², errors in percent.

    Raises:
        RunDirectoryError: a complete line that is not JSON.
        FileNotFoundError: ``out`` holds no ``metrics.jsonl``.
    """
    path = pathlib.Path(out) / METRICS
    *lines, _torn = path.read_bytes().split(b"\n")  # _torn: b"" unless the last write was cut
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as error:
            raise RunDirectoryError(
                f"{path} is damaged: line {number} is not a JSON record ({error})."
            ) from error
    return records


def _records_text(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def write_metrics(out: pathlib.Path, records: list[dict]) -> None:
    """Replace ``metrics.jsonl`` with ``records`` (atomically)."""
    _atomic_write(out / METRICS, _records_text(records))


def append_metrics(out: pathlib.Path, record: dict) -> None:
    """Append one record to ``metrics.jsonl`` as one write of one newline-ended line."""
    with open(out / METRICS, "ab") as f:
        f.write(_records_text([record]))
        f.flush()
        os.fsync(f.fileno())


# --------------------------------------------------------------------------- checkpoints


def _encode(header: dict, payload: bytes) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    digest = hashlib.sha256(head + payload).hexdigest()
    return b"%s %s %d\n" % (_MAGIC, digest.encode(), len(head)) + head + payload


def _decode(path: pathlib.Path) -> tuple[dict, bytes]:
    """(header, weights) of the checkpoint file ``path``, its checksum verified."""
    data = path.read_bytes()

    def damaged(why: str) -> RunDirectoryError:
        return RunDirectoryError(
            f"the checkpoint {path} is damaged ({why}); it was not loaded. Restore the file "
            f"from a copy, or start over: delete {path.parent} or train into another --out."
        )

    first, newline, body = data.partition(b"\n")
    fields = first.split(b" ")
    if not newline or len(fields) != 3 or fields[0] != _MAGIC:
        raise damaged(
            f"it does not start with a {_MAGIC.decode()} line; a checkpoint written before "
            "checkpoints carried a checksum cannot be resumed either"
        )
    try:
        n_header = int(fields[2])
    except ValueError:
        raise damaged("its first line is garbled") from None
    digest = hashlib.sha256(body).hexdigest()
    if digest.encode() != fields[1]:
        raise damaged(f"SHA-256 {digest} of its content, {fields[1].decode()} when written")
    try:
        header = json.loads(body[:n_header])
    except ValueError as error:
        raise damaged(f"its header is not JSON: {error}") from None
    return header, body[n_header:]


def read_checkpoint(out) -> tuple[dict, bytes] | None:
    """(header, weights) of the checkpoint in run directory ``out``, verified; None when it
    has none. A damaged checkpoint is a [`RunDirectoryError`][kirchhoff.RunDirectoryError]
    naming the file."""
    path = pathlib.Path(out) / CHECKPOINT
    if not path.is_file():
        return None
    return _decode(path)


def _summary(header: dict) -> bytes:
    keep = ("epoch", "step", "steps_per_epoch", "config", "resumes", "data_sha256")
    summary = {k: header[k] for k in keep if k in header}
    summary["note"] = (
        f"a readable copy of {CHECKPOINT}'s header; {CHECKPOINT} alone is read to resume"
    )
    return json.dumps(summary, indent=2).encode()


def write_summary(out: pathlib.Path, header: dict) -> None:
    """Rewrite ``checkpoint.json`` from a checkpoint's header."""
    _atomic_write(out / SUMMARY, _summary(header))


def save_checkpoint(
    out: pathlib.Path,
    params,
    opt_state,
    epoch: int,
    step: int,
    cfg: TrainConfig,
    steps_per_epoch: int = 0,
    *,
    records: list[dict] | tuple = (),
    resumes: list[dict] | tuple = (),
    data_sha256: str | None = None,
) -> dict:
    """Write the checkpoint of epoch ``epoch`` (params + optimiser state, the run's state and
    ``records``, its per-epoch records) to ``out/checkpoint.eqx`` atomically, then its
    readable summary ``checkpoint.json``; returns the header."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = io.BytesIO()
    eqx.tree_serialise_leaves(weights, (params, opt_state))
    header = {
        "format": 1,
        "epoch": epoch,
        "step": step,
        "steps_per_epoch": steps_per_epoch,
        "config": json.loads(json.dumps(dataclasses.asdict(cfg))),
        "records": list(records),
        "resumes": list(resumes),
        "data_sha256": data_sha256,
    }
    _atomic_write(out / CHECKPOINT, _encode(header, weights.getvalue()))
    write_summary(out, header)
    return header


def restore_state(cfg: TrainConfig, header: dict, weights: bytes, path: pathlib.Path):
    """(network, opt_state) of a checkpoint, built for ``cfg`` (one compatible with it)."""
    net = build_model(cfg)
    optimizer = build_optimizer(cfg, header.get("steps_per_epoch") or 1)
    params, static = eqx.partition(net, net.trainable_filter())
    opt_state = optimizer.init(params)
    try:
        params, opt_state = eqx.tree_deserialise_leaves(io.BytesIO(weights), (params, opt_state))
    except Exception as error:  # weights that do not fit the model the header names
        raise RunDirectoryError(
            f"the checkpoint {path} does not hold the weights of the model its configuration "
            f"names ({cfg.model}): {type(error).__name__}: {error}"
        ) from error
    return eqx.combine(params, static), opt_state


def load_checkpoint(out: pathlib.Path, cfg: TrainConfig | None = None):
    """The state saved in the checkpoint of run directory ``out``, its checksum verified.

    The checkpoint is written after every epoch of [`train`][kirchhoff.train], so this is the
    network as of the last finished epoch, e.g. to [`evaluate`][kirchhoff.evaluate] it or
    continue with a loop of one's own.

    Args:
        out: the run directory (``cfg.out`` of the run), a path.
        cfg: the [`TrainConfig`][kirchhoff.TrainConfig] to build the network and optimiser
            from; it must be compatible with the run's (only ``epochs`` where no cosine
            schedule spans them, ``out``, ``data_dir``, ``recipe``, ``phase_duration`` and
            ``patience`` may differ). None: the run's own configuration.

    Returns:
        ``(config, network, opt_state, epoch, step)``: the
            [`TrainConfig`][kirchhoff.TrainConfig] used, the trained
            [`LayeredNetwork`][kirchhoff.LayeredNetwork], the optimiser's state, the number of
            epochs finished and of steps taken.

    Raises:
        RunDirectoryError: no checkpoint in ``out``, a damaged one, one whose configuration
            this version of kirchhoff does not know or that differs from ``cfg``, or weights
            that do not fit the model it names.
    """
    out = pathlib.Path(out)
    found = read_checkpoint(out)
    if found is None:
        raise RunDirectoryError(f"{out} holds no checkpoint ({CHECKPOINT}).")
    header, weights = found
    if cfg is None:
        try:
            cfg = TrainConfig(**header["config"])
        except TypeError as error:
            raise RunDirectoryError(
                f"the checkpoint {out / CHECKPOINT} has a configuration this kirchhoff does "
                f"not know: {error}"
            ) from error
    else:
        check_compatible(out, header, cfg)
    net, opt_state = restore_state(cfg, header, weights, out / CHECKPOINT)
    return cfg, net, opt_state, header["epoch"], header["step"]


# --------------------------------------------------------------------------- resuming


def config_changes(saved: dict, cfg: TrainConfig) -> tuple[dict, dict]:
    """(accepted, refused): the fields in which ``cfg`` differs from a run's saved
    configuration, each as ``{field: (saved, requested)}``. Refused: any change to the
    training trajectory or its record (model, data, optimiser, dtype, seed, phases, ...);
    accepted: where the run and its data live, the recipe's name, and ``epochs`` unless a
    learning-rate schedule spans them."""
    now = json.loads(json.dumps(dataclasses.asdict(cfg)))
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    accepted, refused = {}, {}
    for name in sorted(set(saved) | set(now)):
        # a field added since the run was saved is its default there
        old = saved.get(name, defaults.get(name, "(absent)"))
        new = now.get(name, "(absent)")
        if old == new:
            continue
        free = name in _FREE_FIELDS or (
            name == "epochs" and saved.get("lr_schedule") == now.get("lr_schedule") == "constant"
        )
        (accepted if free else refused)[name] = (old, new)
    return accepted, refused


def check_compatible(out: pathlib.Path, header: dict, cfg: TrainConfig) -> dict:
    """The accepted changes of ``cfg`` from the run in ``out`` (see ``config_changes``);
    [`RunDirectoryError`][kirchhoff.RunDirectoryError] naming every refused one with both values."""
    accepted, refused = config_changes(header["config"], cfg)
    if refused:
        listed = "; ".join(
            f"{name}: {old!r} in the run, {new!r} now" for name, (old, new) in refused.items()
        )
        why = ""
        if "epochs" in refused:
            why = " (the cosine learning-rate schedule spans the run's epochs)"
        raise RunDirectoryError(
            f"cannot resume the run in {out} (at epoch {header['epoch']}) with a different "
            f"configuration: {listed}{why}. These change the training, so the run would mix "
            f"two; resume with the run's values ({out / SUMMARY} lists them), or train into "
            "another --out."
        )
    return accepted


def open_run(out: pathlib.Path, cfg: TrainConfig, resume: bool):
    """What training in ``out`` starts from, under its lock: None for a new run, else
    ``(header, weights, accepted_changes)`` of the checkpoint to resume. Refuses
    ([`RunDirectoryError`][kirchhoff.RunDirectoryError]) a damaged checkpoint, a directory
    with a run's files but no checkpoint, an existing run without ``resume``, and an
    incompatible configuration."""
    found = read_checkpoint(out)
    if found is None:
        present = [name for name in RUN_FILES if (out / name).exists()]
        if present:
            raise RunDirectoryError(
                f"{out} holds files of a training run ({', '.join(present)}) but no "
                f"checkpoint ({CHECKPOINT}): there is nothing to resume, and they are not "
                f"overwritten. Train into another --out, or delete {out} to start over."
            )
        _remove_unfinished_writes(out)
        return None
    header, weights = found
    if not resume:
        saved = header["config"]
        raise RunDirectoryError(
            f"{out} already holds a training run ({saved.get('model')} on "
            f"{saved.get('dataset')}, at epoch {header['epoch']} of {saved.get('epochs')}). "
            "Continue it with --resume (train(cfg, resume=True); a larger --epochs trains it "
            f"further), train into another --out, or delete {out} to start over."
        )
    accepted = check_compatible(out, header, cfg)
    _remove_unfinished_writes(out)
    return header, weights, accepted


def resume_entry(header: dict, accepted: dict) -> dict:
    """The record of one resume: where it started and the accepted changes."""
    return {
        "epoch": header["epoch"],
        "step": header["step"],
        "changes": {name: list(values) for name, values in accepted.items()},
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------- outputs


def write_result(out: pathlib.Path, result: dict) -> None:
    _atomic_write(out / RESULT, json.dumps(result, indent=2).encode())


def plot_learning_curve(records: list[dict], path: pathlib.Path) -> None:
    # a Figure of its own, outside pyplot: training inside a notebook must not switch the
    # notebook's backend (matplotlib.use) or leave figures for it to display
    from matplotlib.figure import Figure

    from ..plot import learning_curve

    fig = Figure(figsize=(9, 3.5))
    learning_curve(records, axes=fig.subplots(1, 2))
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    _atomic_write(pathlib.Path(path), png.getvalue())
