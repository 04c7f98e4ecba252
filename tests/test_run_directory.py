"""A training run is never lost or silently mixed: a run killed at any point resumes to the
uninterrupted run bit for bit; a second trainer on the same directory refuses; a damaged
checkpoint, a changed configuration, a directory with a run's files but no checkpoint, and
an existing run without --resume are refused with a message naming the problem; a torn
last line of metrics.jsonl is dropped."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import equinox as eqx
import jax
import numpy as np
import pytest

from kirchhoff import TrainConfig, load_checkpoint, read_metrics, train
from kirchhoff.__main__ import main
from kirchhoff._training._rundir import RunDirectoryError, RunLock, config_changes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A subprocess that runs `kirchhoff train` (the CLI's main) and, at a chosen point, writes
# a marker file and waits there to be killed: mode "batch" after drawing its N-th batch;
# "partial" with the N-th checkpoint write half done (beside the checkpoint, uncommitted);
# "committed" right after the N-th checkpoint is committed, before the summary, metrics and
# plot that follow it.
_PAUSING_TRAINER = r"""
import os, pathlib, sys, time

mode, n, marker = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])

def pause():
    marker.write_text(str(os.getpid()))
    time.sleep(600)

import kirchhoff._training._rundir as rundir
import kirchhoff._training._train as loop

count = 0
if mode == "batch":
    draw = loop.batches

    def batches(*args, **kwargs):
        global count
        for batch in draw(*args, **kwargs):
            count += 1
            if count == n:
                pause()
            yield batch

    loop.batches = batches
else:
    write = rundir._atomic_write

    def atomic_write(path, data):
        global count
        if path.name == rundir.CHECKPOINT:
            count += 1
            if count == n and mode == "partial":
                path.with_name(path.name + ".tmp").write_bytes(data[: len(data) // 2])
                pause()
            if count == n and mode == "committed":
                write(path, data)
                pause()
        write(path, data)

    rundir._atomic_write = atomic_write

from kirchhoff.__main__ import main

sys.exit(main(sys.argv[4:]))
"""


def _cli_args(out, *extra):
    return [
        "train",
        "--model",
        "drn:784-16-10",
        "--dataset",
        "mnist_subset",
        "--train-limit",
        "400",
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--epochs",
        "3",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The subprocesses' environment: one JAX compilation cache, so that only the first of
    them compiles the step (the same executable for all: the runs stay bit-equal)."""
    cache = tmp_path_factory.mktemp("jax-cache")
    return {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def _popen(env, *args):
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _pause_at(env, tmp_path, mode, n, argv):
    """A trainer subprocess, once it waits at the point ``mode``/``n`` (see above)."""
    marker = tmp_path / f"paused-{mode}-{n}-{time.monotonic_ns()}"
    proc = _popen(env, "-c", _PAUSING_TRAINER, mode, str(n), str(marker), *argv)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"the trainer ended before {mode} {n}:\n{proc.communicate()[0]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the trainer never reached {mode} {n}:\n{proc.communicate()[0]}")
        time.sleep(0.02)
    return proc


def _sigkill(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def _leaves(net):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_inexact_array))]


def _summary(out):
    return json.loads((out / "checkpoint.json").read_text())


def test_sigkill_at_any_point_then_resume_is_bit_equal(env, tmp_path):
    ref_dir, run = tmp_path / "uninterrupted", tmp_path / "killed"
    # killed in the middle of epoch 2 (25 steps an epoch): epoch 1 is the checkpoint
    _sigkill(_pause_at(env, tmp_path, "batch", 25 + 12, _cli_args(run)))
    # the uninterrupted run, alongside the rest (the step compiled: it is in the cache)
    reference = _popen(env, "-m", "kirchhoff", *_cli_args(ref_dir))
    assert load_checkpoint(run)[3] == 1 and [r["epoch"] for r in read_metrics(run)] == [1]
    # killed half-way through writing the checkpoint of epoch 2: still epoch 1's
    _sigkill(_pause_at(env, tmp_path, "partial", 1, _cli_args(run, "--resume")))
    assert (run / "checkpoint.eqx.tmp").exists() and load_checkpoint(run)[3] == 1
    # killed right after committing epoch 2's checkpoint, before its summary and metrics
    _sigkill(_pause_at(env, tmp_path, "committed", 1, _cli_args(run, "--resume")))
    assert load_checkpoint(run)[3] == 2
    assert _summary(run)["epoch"] == 1 and [r["epoch"] for r in read_metrics(run)] == [1]
    # the last resume, by the plain command line, finishes the run
    finish = _popen(env, "-m", "kirchhoff", *_cli_args(run, "--resume"))
    for proc in (finish, reference):
        output = proc.communicate(timeout=120)[0]
        assert proc.returncode == 0, output

    _, net_ref, _, epoch_ref, step_ref = load_checkpoint(ref_dir)
    _, net, _, epoch, step = load_checkpoint(run)
    assert (epoch, step) == (epoch_ref, step_ref) == (3, 75)
    a, b = _leaves(net_ref), _leaves(net)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    keys = ("epoch", "step", "train_loss", "train_error_percent")
    ma, mb = read_metrics(ref_dir), read_metrics(run)
    assert len({r["train_loss"] for r in ma}) == 3  # the weights moved every epoch
    assert [[r[k] for k in keys] for r in ma] == [[r[k] for k in keys] for r in mb]
    # the test set, looked at once at the run's end, gives the same figures
    assert ma[-1]["test_loss"] == mb[-1]["test_loss"]
    assert (run / "metrics.jsonl").read_bytes().endswith(b"}\n")
    assert not (run / "checkpoint.eqx.tmp").exists()
    summary = _summary(run)
    assert summary["epoch"] == 3
    # the resumes that committed a checkpoint are recorded, each with where it started
    assert [r["epoch"] for r in summary["resumes"]] == [1, 2]
    assert all(r["changes"] == {} for r in summary["resumes"])


def test_second_trainer_on_the_same_directory_refuses(env, tmp_path, capsys):
    run = tmp_path / "shared"
    first = _pause_at(env, tmp_path, "batch", 1, _cli_args(run))  # holds the lock, mid-epoch 1
    try:
        for extra in ((), ("--resume",)):
            assert main(_cli_args(run, *extra)) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("kirchhoff: error:")
            assert str(run) in err[0] and "in use" in err[0]
            assert f"process {first.pid}" in err[0]
        with pytest.raises(RunDirectoryError, match="in use"), RunLock(run):
            pass
    finally:
        _sigkill(first)
    # a killed trainer leaves no stale lock
    with RunLock(run):
        pass


# --------------------------------------------------------------------------- in-process


def _cfg(out, **kw):
    base = dict(
        model="drn:784-16-10",
        dataset="mnist_subset",
        epochs=2,
        batch_size=16,
        lr=0.01,
        train_limit=400,
        test_limit=100,
        out=str(out),
    )
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished two-epoch run (copy it before changing it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    train(_cfg(out), progress=False)
    return out


@pytest.fixture
def run(finished_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    return out


def _snapshot(out):
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "run.lock"}


def test_corrupted_checkpoint_is_refused(run):
    path = run / "checkpoint.eqx"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # one bit of the weights
    path.write_bytes(bytes(data))
    before = _snapshot(run)
    for call in (
        lambda: train(_cfg(run, epochs=3), resume=True, progress=False),
        lambda: train(_cfg(run, epochs=3), progress=False),
        lambda: load_checkpoint(run),
    ):
        with pytest.raises(RunDirectoryError, match="damaged") as info:
            call()
        assert str(path) in str(info.value) and "SHA-256" in str(info.value)
    assert _snapshot(run) == before  # never trained on, never overwritten
    path.write_bytes(bytes(data[: len(data) // 2]))  # cut short
    with pytest.raises(RunDirectoryError, match="damaged"):
        load_checkpoint(run)
    path.write_bytes(b"")
    with pytest.raises(RunDirectoryError, match=f"{path}.*damaged"):
        train(_cfg(run, epochs=3), resume=True, progress=False)


def test_incompatible_config_change_is_refused_naming_each_field(run):
    before = _snapshot(run)
    changed = dict(
        model="drn:784-32-10",
        lr=0.02,
        optimizer="adam",
        train_limit=320,
        seed=3,
        beta=0.5,
        epochs=5,  # alone this one is fine
    )
    if jax.config.jax_enable_x64:  # (float64 needs it: KIRCHHOFF_TEST_X64=0 turns it off)
        changed["dtype"] = "float64"
    with pytest.raises(RunDirectoryError) as info:
        train(_cfg(run, **changed), resume=True, progress=False)
    message = str(info.value)
    assert str(run) in message and "cannot resume" in message
    for line in (
        "model: 'drn:784-16-10' in the run, 'drn:784-32-10' now",
        "lr: 0.01 in the run, 0.02 now",
        "optimizer: 'sgd' in the run, 'adam' now",
        "train_limit: 400 in the run, 320 now",
        "seed: 0 in the run, 3 now",
        "beta: 1.0 in the run, 0.5 now",
    ):
        assert line in message
    assert "epochs" not in message
    if "dtype" in changed:
        assert "dtype: 'float32' in the run, 'float64' now" in message
    assert _snapshot(run) == before  # the saved configuration is not overwritten
    # the CLI: one line, exit status 2, naming the field
    assert main(_cli_args(run, "--resume", "--lr", "0.05")) == 2
    # a cosine schedule spans the run's epochs: more epochs would change it
    saved = dataclasses.asdict(_cfg(run, lr_schedule="cosine"))
    accepted, refused = config_changes(saved, _cfg(run, lr_schedule="cosine", epochs=4))
    assert refused == {"epochs": (2, 4)} and accepted == {}
    accepted, refused = config_changes(saved, _cfg(run, lr_schedule="cosine", data_dir="/d"))
    assert accepted == {"data_dir": (None, "/d")} and refused == {}


def test_other_data_is_refused(run, monkeypatch):
    # another --data-dir is accepted only if it holds the same examples (their SHA-256)
    import kirchhoff._training._train as loop

    monkeypatch.setattr(loop, "_fingerprint", lambda *splits: "0" * 64)
    with pytest.raises(RunDirectoryError, match="differ from those it was trained on") as info:
        train(_cfg(run, data_dir=str(run)), resume=True, progress=False)
    assert str(run) in str(info.value) and "mnist_subset" in str(info.value)


def test_more_epochs_is_accepted_and_recorded(run, finished_run):
    result = train(_cfg(run, epochs=3), resume=True, progress=False)
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2, 3]
    summary = _summary(run)
    assert summary["epoch"] == 3 and summary["config"]["epochs"] == 3
    # the directory was copied: its path changed too, and both changes are recorded
    (entry,) = summary["resumes"]
    assert entry["epoch"] == 2 and entry["step"] == 50
    assert entry["changes"] == {"epochs": [2, 3], "out": [str(finished_run), str(run)]}
    assert result["resumes"] == summary["resumes"]
    assert json.loads((run / "result.json").read_text())["resumes"] == summary["resumes"]


def test_torn_metrics_line_is_dropped(run):
    records = read_metrics(run)
    assert [r["epoch"] for r in records] == [1, 2]
    path = run / "metrics.jsonl"
    beyond = {**records[-1], "epoch": 3, "step": 75}  # a record past the checkpoint
    with open(path, "a") as f:
        f.write(json.dumps(beyond) + "\n" + json.dumps(beyond)[:40])  # ... and a torn one
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2, 3]  # the torn line dropped
    # resuming rewrites the file from the checkpoint: no torn line, nothing past it
    result = train(_cfg(run), resume=True, progress=False)
    assert result["epochs_run"] == 2
    assert read_metrics(run) == records
    assert path.read_bytes().endswith(b"}\n")
    # a damaged line that is not the last is an error naming the file and the line
    path.write_text("{}\n{not json\n{}\n")
    with pytest.raises(RunDirectoryError, match="line 2") as info:
        read_metrics(run)
    assert str(path) in str(info.value)


def test_missing_checkpoint_is_not_overwritten(run):
    (run / "checkpoint.eqx").unlink()
    before = _snapshot(run)
    for resume in (True, False):
        with pytest.raises(RunDirectoryError, match="no checkpoint") as info:
            train(_cfg(run), resume=resume, progress=False)
        message = str(info.value)
        assert str(run) in message and "metrics.jsonl" in message and "checkpoint.json" in message
        assert "another --out" in message and f"delete {run}" in message
    assert _snapshot(run) == before
    # metrics alone (a run whose checkpoint was never written or was lost) are kept too
    for name in ("checkpoint.json", "result.json", "learning_curve.png"):
        (run / name).unlink()
    with pytest.raises(RunDirectoryError, match="metrics.jsonl"):
        train(_cfg(run), resume=True, progress=False)


def test_missing_summary_is_rewritten_from_the_checkpoint(run):
    (run / "checkpoint.json").unlink()
    train(_cfg(run), resume=True, progress=False)  # at epoch 2 of 2: nothing to train
    assert _summary(run)["epoch"] == 2


def test_unfinished_writes_alone_are_not_a_run(tmp_path):
    out = tmp_path / "fresh"
    out.mkdir()
    (out / "checkpoint.eqx.tmp").write_bytes(b"half a checkpoint")
    (out / "run.lock").write_text("")
    result = train(_cfg(out, epochs=0), resume=True, progress=False)
    assert result["epochs_run"] == 0 and not (out / "checkpoint.eqx.tmp").exists()


def test_plain_run_into_an_existing_run_refuses_naming_resume(run, capsys):
    before = _snapshot(run)
    with pytest.raises(RunDirectoryError, match="already holds a training run") as info:
        train(_cfg(run, epochs=3), progress=False)
    assert str(run) in str(info.value) and "--resume" in str(info.value)
    assert "epoch 2 of 2" in str(info.value)
    assert main(_cli_args(run)) == 2
    err = capsys.readouterr().err
    assert "already holds a training run" in err and "--resume" in err and str(run) in err
    assert _snapshot(run) == before
