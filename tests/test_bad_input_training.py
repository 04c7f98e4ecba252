"""Bad input to the command line, the training configuration, the layered models, their
learning rules and the data: each is refused before anything is computed, with an error that
names the problem and the offending value (InvalidInputError, a ValueError; its TypeError
sibling for a wrong type), and on the command line as one line on stderr with exit status 2.
Nothing here trains beyond a step."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kirchhoff as kh
from kirchhoff import TrainConfig
from kirchhoff.__main__ import main
from kirchhoff._data import InvalidInputError, InvalidInputTypeError


# ---- the command line ----------------------------------------------------------------------
def _cli_error(capsys, argv) -> str:
    """Run the CLI; assert a user error (status 2, one line on stderr, no traceback)."""
    capsys.readouterr()
    rc = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert rc == 2, (rc, captured.out, captured.err)
    assert len(err) == 1, err
    assert err[0].startswith("kirchhoff: error: ")
    assert "Traceback" not in captured.err
    return err[0]


def _train(tmp_path, *flags):
    return ["train", *flags, "--out", str(tmp_path / "run"), "--no-progress"]


@pytest.mark.parametrize(
    "flags, names",
    [
        # zero or negative counts, which used to train nothing or a wrong subset silently
        (["--train-limit", "0"], ["train_limit", "got 0"]),
        (["--train-limit", "-3990"], ["train_limit", "-3990"]),
        (["--train-limit", "10"], ["train_limit=10", "batch_size=16", "no step"]),
        (["--train-limit", "100", "--val-size", "90"], ["val_size=90", "10 training"]),
        (["--epochs", "-1"], ["epochs", "-1"]),
        (["--batch-size", "0"], ["batch_size", "got 0"]),
        (["--batch-size", "-4"], ["batch_size", "-4"]),
        (["--n-sweeps", "0"], ["n_sweeps", "got 0"]),
        (["--val-size", "-1"], ["val_size", "-1"]),
        (["--seed", "-1"], ["seed", "-1"]),
        (["--seed", str(2**32)], ["seed", str(2**32)]),
        # real numbers: zero, negative, NaN, infinite
        (["--beta", "0"], ["beta", "> 0", "got 0"]),
        (["--beta", "-0.5"], ["beta", "-0.5"]),
        (["--beta", "nan"], ["beta", "finite", "nan"]),
        (["--beta", "inf"], ["beta", "finite", "inf"]),
        (["--lr", "0"], ["lr", "got 0"]),
        (["--lr", "nan"], ["lr", "nan"]),
        (["--lr", "inf"], ["lr", "inf"]),
        (["--phase-rtol", "0"], ["phase_rtol", "got 0"]),
        (["--phase-rtol", "nan"], ["phase_rtol", "nan"]),
        (["--input-gain", "-1"], ["input_gain", "-1"]),
        (["--model", "seed", "--amp-gain", "nan"], ["amp_gain", "nan"]),
        (["--model", "seed", "--amp-gain", "-2"], ["amp_gain", "-2"]),
        (["--amp-gain", "2"], ["amp_gain", "drn-xs"]),
        (["--layer-lr", "1", "2", "3"], ["layer_lr", "has 2", "has 3"]),
        (["--layer-lr", "-1", "1"], ["layer_lr[0]", "-1"]),
        (["--layer-lr", "nan", "1"], ["layer_lr[0]", "nan"]),
        # models: a zero-width layer, outputs that do not match the classes, unknown names
        (["--model", "drn:784-0-10"], ["drn:784-0-10", "positive integers", "'0'"]),
        (["--model", "drn:784-5-3"], ["3 outputs", "10 classes"]),
        (["--model", "drn:100-5-10"], ["100 features", "784 features"]),
        (["--model", "drn:784-10"], ["at least three layer sizes"]),
        (["--model", "nope"], ["unknown model", "'nope'"]),
        (["--dataset", "cifar"], ["unknown dataset", "'cifar'"]),
        (["--data-dir", "/nonexistent/kirchhoff-data"], ["data_dir", "/nonexistent", "not exist"]),
    ],
)
def test_cli_bad_flag_is_one_line_and_status_2(tmp_path, capsys, flags, names):
    line = _cli_error(capsys, _train(tmp_path, *flags))
    for name in names:
        assert name in line, (name, line)


def test_cli_batch_larger_than_the_data_is_refused(tmp_path, capsys):
    # no --train-limit: only the loaded data says so (the check in train())
    line = _cli_error(capsys, _train(tmp_path, "--batch-size", "5000"))
    assert "batch_size 5000" in line and "4000" in line


@pytest.mark.parametrize(
    "flags",
    [
        ["--algorithm", "magic"],
        ["--diode", "zener"],
        ["--optimizer", "lion"],
        ["--beta", "strong"],
        ["--epochs", "2.5"],
        ["--data-dir"],
    ],
)
def test_cli_argparse_errors_exit_2(tmp_path, capsys, flags):
    with pytest.raises(SystemExit) as exit_info:
        main(_train(tmp_path, *flags))
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cli_epochs_0_says_it_did_nothing(tmp_path, capsys):
    rc = main(_train(tmp_path, "--epochs", "0"))
    out = capsys.readouterr().out
    assert rc == 0
    assert "nothing to do" in out and "--epochs 0" in out
    assert "checkpoint" not in out  # there is none: it must not talk of one
    assert not (tmp_path / "run").exists()


def test_cli_evaluate_a_directory_that_is_not_a_run(tmp_path, capsys):
    line = _cli_error(capsys, ["evaluate", str(tmp_path)])
    assert str(tmp_path) in line and "checkpoint.eqx" in line and "not a training run" in line
    line = _cli_error(capsys, ["evaluate", str(tmp_path / "missing")])
    assert "does not exist" in line and "missing" in line


def test_cli_resume_of_a_finished_run_and_evaluate_errors(tmp_path, capsys):
    # one training step (20 examples, batch 20) on a small network
    tiny = [
        "--model",
        "drn:784-16-10",
        "--train-limit",
        "20",
        "--batch-size",
        "20",
        "--epochs",
        "1",
    ]
    assert main(_train(tmp_path, *tiny, "--resume")) == 0
    out = capsys.readouterr().out
    assert "no checkpoint" in out and "starting a new run" in out
    # resuming a run that already covers the epochs asked for says so, and trains nothing
    assert main(_train(tmp_path, *tiny, "--resume")) == 0
    out = capsys.readouterr().out
    assert "nothing to do" in out and "at epoch 1 of 1" in out and "larger --epochs" in out
    run = str(tmp_path / "run")
    line = _cli_error(capsys, ["evaluate", run, "--dataset", "cifar"])
    assert "unknown dataset" in line.lower() and "cifar" in line
    checkpoint = tmp_path / "run" / "checkpoint.eqx"
    data = bytearray(checkpoint.read_bytes())
    data[-5] ^= 0xFF  # one byte of the weights flipped: the checksum no longer matches
    checkpoint.write_bytes(bytes(data))
    line = _cli_error(capsys, _train(tmp_path, *tiny, "--resume"))
    assert "damaged" in line and "checkpoint.eqx" in line


def test_cli_bugs_keep_their_traceback(tmp_path, capsys, monkeypatch):
    import kirchhoff._training as training

    def index_bug(*args, **kwargs):
        return [][1]

    def numpy_bug(*args, **kwargs):
        return np.reshape(np.zeros(3), (2, 2))  # a ValueError from inside numpy

    def user_error(*args, **kwargs):
        raise InvalidInputError("a bad value, named")

    argv = _train(tmp_path, "--epochs", "1")
    monkeypatch.setattr(training, "train", index_bug)
    with pytest.raises(IndexError):
        main(argv)
    monkeypatch.setattr(training, "train", numpy_bug)
    with pytest.raises(ValueError, match="reshape"):
        main(argv)
    monkeypatch.setattr(training, "train", user_error)
    assert "a bad value, named" in _cli_error(capsys, argv)


# ---- TrainConfig (the Python API gets the CLI's checks) ------------------------------------
@pytest.mark.parametrize(
    "fields, error, names",
    [
        (dict(epochs=-1), InvalidInputError, ["epochs", "-1"]),
        (dict(epochs=2.5), TypeError, ["epochs", "2.5"]),
        (dict(epochs=True), TypeError, ["epochs"]),
        (dict(batch_size=0), InvalidInputError, ["batch_size", "0"]),
        (dict(n_sweeps=0), InvalidInputError, ["n_sweeps"]),
        (dict(eval_sweeps=-2), InvalidInputError, ["eval_sweeps", "-2"]),
        (dict(beta=math.nan), InvalidInputError, ["beta", "nan"]),
        (dict(beta=0.0), InvalidInputError, ["beta", "0"]),
        (dict(beta="1"), TypeError, ["beta", "'1'"]),
        (dict(lr=math.inf), InvalidInputError, ["lr", "inf"]),
        (dict(momentum=1.0), InvalidInputError, ["momentum", "1"]),
        (dict(momentum=-0.1), InvalidInputError, ["momentum", "-0.1"]),
        (dict(init_scale=0.0), InvalidInputError, ["init_scale"]),
        (dict(max_conductance=-1.0), InvalidInputError, ["max_conductance", "-1"]),
        (dict(phase_rtol=math.inf), InvalidInputError, ["phase_rtol", "inf"]),
        (dict(seed=-1), InvalidInputError, ["seed", "-1"]),
        (dict(train_limit=0), InvalidInputError, ["train_limit", "0"]),
        (dict(test_limit=-5), InvalidInputError, ["test_limit", "-5"]),
        (dict(train_limit=8), InvalidInputError, ["train_limit=8", "batch_size=16"]),
        (dict(val_size=-1), InvalidInputError, ["val_size", "-1"]),
        (dict(layer_lr=(1.0,)), InvalidInputError, ["layer_lr", "has 2", "has 1"]),
        (dict(layer_lr=1.0), TypeError, ["layer_lr"]),
        (dict(model="drn:784-0-10"), InvalidInputError, ["'0'"]),
        (dict(model="drn:784-a-10"), InvalidInputError, ["'a'"]),
        (dict(model=3), TypeError, ["model", "3"]),
        (dict(dataset="cifar"), InvalidInputError, ["dataset", "'cifar'"]),
        (dict(lr_schedule="step"), InvalidInputError, ["lr_schedule", "'step'"]),
        (dict(dtype="float16"), InvalidInputError, ["dtype", "float16"]),
        (dict(recipe="nope"), InvalidInputError, ["recipe", "'nope'"]),
        (dict(out=3), TypeError, ["out", "3"]),
    ],
)
def test_train_config_refuses_bad_fields(fields, error, names):
    with pytest.raises(error) as info:
        TrainConfig(**fields)
    assert isinstance(info.value, InvalidInputError)  # the CLI's one-line family
    for name in names:
        assert name in str(info.value), (name, str(info.value))


def test_train_config_normalises_and_checks_the_model_against_the_data():
    cfg = TrainConfig(epochs=np.int64(3), layer_lr=[1, 0.5], beta=np.float32(0.5))
    assert type(cfg.epochs) is int and cfg.layer_lr == (1.0, 0.5) and type(cfg.beta) is float
    TrainConfig(model="drn:784-5-10").check_data(784, 10)
    with pytest.raises(InvalidInputError, match=r"3 outputs.*10 classes"):
        TrainConfig(model="drn:784-5-3").check_data(784, 10)
    with pytest.raises(InvalidInputError, match="unknown recipe"):
        TrainConfig.from_recipe("seed-cifar")


# ---- models --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sizes, error, names",
    [
        ((6, 0, 3), InvalidInputError, ["sizes[1]", "got 0"]),
        ((6, -2, 3), InvalidInputError, ["sizes[1]", "-2"]),
        ((6, 4, 0), InvalidInputError, ["sizes[2]", "got 0"]),
        ((6, 2.5, 3), TypeError, ["sizes[1]", "2.5"]),
        ((6, 3), InvalidInputError, ["at least 3", "(6, 3)"]),
        (6, TypeError, ["sizes", "6"]),
    ],
)
def test_drn_bad_sizes(key, sizes, error, names):
    with pytest.raises(error) as info:
        kh.drn(key, sizes)
    for name in names:
        assert name in str(info.value)


@pytest.mark.parametrize(
    "kwargs, names",
    [
        (dict(init_scale=math.nan), ["init_scale", "nan"]),
        (dict(input_gain=math.inf), ["drn: input_gain", "inf"]),
        (dict(input_gain=0.0), ["input_gain", "0"]),
        (dict(amp_gains=(math.nan,)), ["amp_gains[0]", "nan"]),
        (dict(amp_gains=(1.0, 2.0)), ["1 amplifier gain", "got 2"]),
        (dict(diode="zener"), ["drn: unknown diode", "'zener'"]),
        (dict(dtype=jnp.int32), ["dtype", "int32"]),
    ],
)
def test_drn_bad_settings(key, kwargs, names):
    with pytest.raises(InvalidInputError) as info:
        kh.drn(key, (6, 4, 3), **kwargs)
    for name in names:
        assert name in str(info.value)


def test_models_by_name_and_the_seed_network(key):
    with pytest.raises(TypeError, match="PRNG key"):
        kh.drn(0, (6, 4, 3))
    with pytest.raises(InvalidInputError, match=r"'drn:784-0-10'.*'0'"):
        kh.make_model("drn:784-0-10", key)
    with pytest.raises(InvalidInputError, match="unknown model 'resnet'"):
        kh.make_model("resnet", key)
    with pytest.raises(InvalidInputError, match="n_hidden.*got 0"):
        kh.seed_network(key, n_hidden=0)
    with pytest.raises(InvalidInputError, match="amp_gain.*-2"):
        kh.seed_network(key, amp_gain=-2.0)


@pytest.fixture
def net(key):
    return kh.drn(key, (6, 4, 3))


def _layers(net, **change):
    parts = dict(
        weights=[np.asarray(w) for w in net.weights],
        biases=list(net.biases),
        lower=list(net.lower),
        upper=list(net.upper),
    )
    parts.update(change)
    return parts


def test_layered_network_bad_conductances_and_layers(net):
    w0, w1 = (np.array(w) for w in net.weights)
    with pytest.raises(
        InvalidInputError,
        match=r"weights\[1\] holds \d+ conductance\(s\) that are negative.*is -0\.",
    ):
        kh.LayeredNetwork(**_layers(net, weights=[w0, -w1]))
    w0[1, 2] = np.nan
    with pytest.raises(InvalidInputError, match=r"weights\[0\].*\(1, 2\), is nan"):
        kh.LayeredNetwork(**_layers(net, weights=[w0, w1]))
    with pytest.raises(InvalidInputError, match=r"weights\[0\].*2-D.*got shape \(3,\)"):
        kh.LayeredNetwork(**_layers(net, weights=[w1[0], w1]))
    with pytest.raises(InvalidInputError, match="even number of rows; got 3"):
        kh.LayeredNetwork(**_layers(net, weights=[np.ones((3, 4)), w1]))
    with pytest.raises(TypeError, match="floating-point conductances; got dtype int32"):
        kh.LayeredNetwork(**_layers(net, weights=[np.ones((12, 4), np.int32), w1]))
    with pytest.raises(InvalidInputError, match=r"biases\[0\].*nan"):
        kh.LayeredNetwork(**_layers(net, biases=[jnp.full(4, jnp.nan), jnp.zeros(3)]))
    with pytest.raises(InvalidInputError, match="lower ≤ upper"):
        kh.LayeredNetwork(**_layers(net, lower=list(net.upper), upper=list(net.lower)))
    rails = dict(lower=[jnp.full(4, 1.0)], upper=[jnp.full(4, -1.0)])
    kh.LayeredNetwork(**_layers(net, **rails), diode="shockley")  # crossed rails: physical
    with pytest.raises(InvalidInputError, match="never NaN; node 2 has lower nan"):
        kh.LayeredNetwork(**_layers(net, lower=[jnp.zeros(4).at[2].set(jnp.nan)]))
    with pytest.raises(InvalidInputError, match=r"biases must have shapes"):
        kh.LayeredNetwork(**_layers(net, biases=[jnp.zeros(4)]))


# ---- the learning rules, predict and evaluate ------------------------------------------------
@pytest.fixture
def batch():
    return jnp.ones((2, 6)), jnp.zeros((2, 3))


@pytest.mark.parametrize(
    "entry", ["layered_eqprop_gradient", "layered_phases", "layered_backprop_gradient"]
)
def test_learning_rules_refuse_bad_batches(net, batch, entry):
    x, y = batch
    f = getattr(kh, entry)
    args = (
        (lambda x, y: (net, x, y, 0.1, 2))
        if entry != "layered_backprop_gradient"
        else (lambda x, y: (net, x, y, 2))
    )
    cases = [
        (
            jnp.ones((2, 5)),
            y,
            InvalidInputError,
            r"inputs has shape \(2, 5\); expected \(batch, 6\)",
        ),
        (jnp.ones(6), y, InvalidInputError, r"inputs has shape \(6,\)"),
        (
            x,
            jnp.zeros((2, 4)),
            InvalidInputError,
            r"targets have shape \(2, 4\); expected \(2, 3\)",
        ),
        (x, jnp.zeros((3, 3)), InvalidInputError, r"targets have shape \(3, 3\)"),
        (x.at[1, 2].set(jnp.nan), y, InvalidInputError, r"inputs holds 1 NaN.*\(1, 2\)"),
        (x, y.at[0, 0].set(jnp.inf), InvalidInputError, r"targets holds 1 NaN.*inf"),
        (jnp.ones((2, 6), jnp.int32), y, TypeError, "floating-point.*int32"),
        (x.tolist(), y, TypeError, "numpy or JAX array; got list"),
        (jnp.ones((0, 6)), jnp.zeros((0, 3)), InvalidInputError, "empty batch"),
    ]
    for xi, yi, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            f(*args(xi, yi))
    with pytest.raises(TypeError, match="LayeredNetwork"):
        f("net", *args(x, y)[1:])


@pytest.mark.parametrize("entry", ["layered_eqprop_gradient", "layered_phases"])
@pytest.mark.parametrize(
    "beta, n_sweeps, names",
    [
        (0.0, 2, ["beta", "> 0", "got 0"]),
        (-0.1, 2, ["beta", "-0.1"]),
        (math.nan, 2, ["beta", "nan"]),
        (math.inf, 2, ["beta", "inf"]),
        (0.1, 0, ["n_sweeps", "got 0"]),
        (0.1, -3, ["n_sweeps", "-3"]),
        (0.1, 2.0, ["n_sweeps", "integer"]),
    ],
)
def test_learning_rules_refuse_bad_settings(net, batch, entry, beta, n_sweeps, names):
    with pytest.raises(InvalidInputError) as info:
        getattr(kh, entry)(net, *batch, beta, n_sweeps)
    for name in names:
        assert name in str(info.value)


def test_learning_rules_other_settings(net, batch):
    with pytest.raises(InvalidInputError, match="variant 'both'"):
        kh.layered_phases(net, *batch, 0.1, 2, variant="both")
    with pytest.raises(InvalidInputError, match="rtol.*nan"):
        kh.layered_eqprop_gradient(net, *batch, 0.1, 2, rtol=math.nan)
    with pytest.raises(InvalidInputError, match="n_sweeps.*got 0"):
        kh.layered_backprop_gradient(net, *batch, n_sweeps=0)


def test_checks_are_made_while_tracing_and_cost_nothing_under_jit(net, batch):
    # shapes are checked at trace time; values of traced arrays are not pulled to the host
    grad = jax.jit(lambda x, y: kh.layered_eqprop_gradient(net, x, y, 0.1, 2)[1])
    assert np.isfinite(float(grad(*batch)))
    with pytest.raises(InvalidInputError, match=r"inputs has shape \(2, 5\)"):
        grad(jnp.ones((2, 5)), batch[1])


def test_predict_refuses_bad_inputs(net, batch):
    x = batch[0]
    assert kh.predict(net, x[0], 2).shape == (3,)  # one example without a batch axis is fine
    with pytest.raises(InvalidInputError, match=r"predict: inputs has shape \(2, 5\)"):
        kh.predict(net, jnp.ones((2, 5)), 2)
    with pytest.raises(InvalidInputError, match=r"inputs holds 1 NaN.*\(0, 0\)"):
        kh.predict(net, x.at[0, 0].set(jnp.nan), 2)
    with pytest.raises(InvalidInputError, match="n_sweeps.*got 0"):
        kh.predict(net, x, 0)
    with pytest.raises(TypeError, match="LayeredNetwork"):
        kh.predict(object(), x, 2)


def _data(n=5, labels=None):
    labels = np.arange(n) % 10 if labels is None else labels
    return kh.Dataset(
        np.zeros((n, 784), np.float32), np.asarray(labels, np.int32), "toy", "test", "idx"
    )


def test_evaluate_refuses_a_network_that_does_not_fit_the_data(key):
    small = kh.drn(key, (6, 4, 3))
    with pytest.raises(InvalidInputError, match="takes 6 features, but toy has 784"):
        kh.evaluate(small, _data())
    three = kh.drn(key, (784, 4, 3))
    with pytest.raises(InvalidInputError, match="labels up to 4.*only 3 outputs"):
        kh.evaluate(three, _data())
    ten = kh.drn(key, (784, 4, 10))
    with pytest.raises(InvalidInputError, match="empty"):
        kh.evaluate(ten, _data(0))
    with pytest.raises(TypeError, match="Dataset"):
        kh.evaluate(ten, np.zeros((5, 784), np.float32))
    with pytest.raises(InvalidInputError, match="n_sweeps.*got 0"):
        kh.evaluate(ten, _data(), n_sweeps=0)
    with pytest.raises(InvalidInputError, match="batch_size.*-1"):
        kh.evaluate(ten, _data(), batch_size=-1)


# ---- data ----------------------------------------------------------------------------------
def test_dataset_refuses_bad_pixels_and_labels():
    labels = np.zeros(2, np.int32)
    nan = np.zeros((2, 784), np.float32)
    nan[1, 7] = np.nan
    with pytest.raises(InvalidInputError, match="image 1 has nan at pixel 7"):
        kh.Dataset(nan, labels, "x", "train", "idx")
    with pytest.raises(InvalidInputError, match=r"\[0, 1\].*255"):
        kh.Dataset(np.full((2, 784), 255, np.float32), labels, "x", "train", "idx")
    with pytest.raises(InvalidInputError, match=r"labels.*\[0, 12\]"):
        _data(2, [0, 12])
    with pytest.raises(TypeError, match="numpy arrays"):
        kh.Dataset([[0.0] * 784], labels[:1], "x", "train", "idx")


def test_load_dataset_refuses_bad_names_and_directories(tmp_path):
    with pytest.raises(InvalidInputError, match="Unknown dataset 'cifar'"):
        kh.load_dataset("cifar")
    with pytest.raises(InvalidInputError, match="Unknown split 'validation'"):
        kh.load_dataset("mnist_subset", "validation")
    with pytest.raises(InvalidInputError, match="data_dir .*missing.* does not exist"):
        kh.load_dataset("mnist", data_dir=tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidInputError, match="is not a directory"):
        kh.load_dataset("mnist", data_dir=tmp_path / "file")
    with pytest.raises(InvalidInputTypeError, match="data_dir must be a path"):
        kh.load_dataset("mnist", data_dir=3)


def test_batches_and_one_hot_refuse_bad_arguments():
    with pytest.raises(InvalidInputError, match="batch_size.*0"):
        kh.batches(_data(), 0, 0)
    with pytest.raises(InvalidInputError, match=r"\[0, 3\)"):
        kh.one_hot(np.array([0, 5]), 3)
    with pytest.raises(InvalidInputError, match="n_val"):
        kh.split_validation(_data(), 5)
    with pytest.raises(TypeError, match="key_or_seed"):
        kh.batches(_data(), 2, "seed")
    with pytest.raises(TypeError, match="batches: dataset must be a kirchhoff Dataset"):
        kh.batches(np.zeros((4, 784), np.float32), 2, 0)


def test_a_bad_flag_writes_nothing(tmp_path, capsys):
    _cli_error(capsys, _train(tmp_path, "--beta", "nan"))
    assert not (tmp_path / "run").exists()
