"""What a training run depends on: its configuration, the model and optimiser it builds."""

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from .._data import available_datasets
from .._data._errors import InvalidInputError, InvalidInputTypeError
from .._devices import (
    IdealDevice,
    LinearResponse,
    NeuroSimResponse,
    PulsedDevice,
    device_preset,
)
from .._layered import LayeredNetwork, make_model, model_sizes
from .._layered._checks import check_choice, check_int, check_real
from .._solver._phase import PHASE_RTOL
from ._recipes import RECIPES, recipe_fields

_WHO = "TrainConfig"

ON_UNCONVERGED = ("error", "skip", "warn")
ALGORITHMS = (
    "eqprop",
    "eqprop-centered",
    "eqprop-positive",
    "eqprop-negative",
    "backprop",
    "implicit",
    "coupled",
    "contrastive",
)


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on, checked on construction and saved beside its
    checkpoints.

    Every field is validated when the config is made (here, not when training starts), so the
    Python API and the command line (``python -m kirchhoff``) share one set of checks; a bad
    value is an [`InvalidInputError`][kirchhoff.InvalidInputError] (an
    [`InvalidInputTypeError`][kirchhoff.InvalidInputTypeError] for a wrong type) naming the
    field and the value. Numbers given as ints are stored as floats. Conductances, and so
    ``beta``, ``lr`` and ``max_conductance``, are in siemens; potentials in volts.

    Args:
        model: the network, as [`make_model`][kirchhoff.make_model] names it: a key of
            [`MODELS`][kirchhoff.MODELS] (``"drn-xs"``, ``"drn-1h"``, ``"drn-2h"``,
            ``"drn-3h"``), ``"seed"`` (the seed paper's network,
            [`seed_network`][kirchhoff.seed_network]), or a custom deep resistive network
            ``"drn:784-H1-...-10"``. Its first size must be the dataset's 784 features and its
            last the 10 classes (checked when training loads the data).
        dataset: one of [`available_datasets`][kirchhoff.available_datasets]
            (``"mnist"``, ``"fashion_mnist"``, ``"kmnist"``, ``"mnist_subset"``), loaded by
            [`load_dataset`][kirchhoff.load_dataset].
        algorithm: how the gradient is estimated: ``"eqprop"`` or ``"eqprop-centered"``
            (centered Equilibrium Propagation: nudges of +β and −β),
            ``"eqprop-positive"`` (one +β nudged phase), ``"eqprop-negative"`` (one −β
            phase), all by [`layered_eqprop_gradient`][kirchhoff.layered_eqprop_gradient];
            ``"coupled"`` (coupled learning, outputs clamped a fraction ``eta`` of the way to
            the targets, [`layered_coupled_gradient`][kirchhoff.layered_coupled_gradient]);
            ``"contrastive"`` (outputs clamped at the targets,
            [`layered_contrastive_gradient`][kirchhoff.layered_contrastive_gradient]);
            ``"backprop"`` (truncated backpropagation through the ``n_sweeps`` sweeps,
            [`layered_backprop_gradient`][kirchhoff.layered_backprop_gradient], a software
            baseline); ``"implicit"`` (implicit differentiation of the equilibrium
            [`BlockCoordinateDescent`][kirchhoff.BlockCoordinateDescent] converges to,
            [`implicit_gradient`][kirchhoff.implicit_gradient]; it ignores ``n_sweeps`` and
            ``phase_rtol``).
        epochs: passes over the training split, ≥ 0 (0: nothing is trained).
        batch_size: examples per training step, ≥ 1; the last partial batch of an epoch is
            dropped.
        beta: the EqProp nudge strength β in siemens, > 0: the nudged phases inject a
            current β·(y − v_out) into each output. Used by the ``"eqprop*"`` algorithms only.
        eta: coupled learning's clamp, a fraction in (0, 1]: the clamped phase holds the
            outputs at v⁰_out + η·(y − v⁰_out). Used by ``"coupled"`` only.
        lr: the learning rate, > 0. Updates are in conductance (siemens): plain SGD moves a
            conductance by ``lr`` times its gradient, Adam by about ``lr`` siemens per step.
        optimizer: ``"sgd"`` (optax's SGD, with ``momentum``) or ``"adam"``.
        momentum: SGD's momentum, in [0, 1) (0: none); Adam ignores it.
        lr_schedule: ``"constant"``, or ``"cosine"`` (``lr`` decays to 0 along a cosine over
            all ``epochs`` of steps).
        layer_lr: per weight layer, a multiplier ≥ 0 of each update (weights and biases of
            that layer), one per weight layer of ``model``; None: 1 for every layer.
        n_sweeps: block-coordinate sweeps per phase of a training step, ≥ 1.
        eval_sweeps: sweeps of the free phase when evaluating (validation and test), ≥ 1.
        phase_rtol: a phase converged when the correction one more update of any node would
            make is at most this fraction of the phase's potential scale (max |v| of the free
            phase, max |δ| of a nudged one); > 0, default 1e-3.
        on_unconverged: what an example whose phase did not converge within ``n_sweeps``
            does: ``"error"`` stops training with a
            [`NotConvergedError`][kirchhoff.NotConvergedError] naming the step, example and
            phase; ``"skip"`` leaves it out of the gradient and loss (the EqProp, coupled and
            contrastive rules; ``"backprop"`` and ``"implicit"`` train on it); ``"warn"``
            trains on it. Both of the latter count such examples and warn once per epoch.
        input_gain: the input sources' gain, > 0: each feature x (a pixel in [0, 1]) drives
            a pair of sources at ±input_gain·x volts.
        init_scale: the DRNs' initial conductances are uniform in
            [0, init_scale·√(1/fan_in)) siemens; > 0. The seed network ignores it (its scale
            is 1).
        max_conductance: the devices' upper conductance limit g_max in siemens (> 0), for
            every weight layer; None: no limit for the ideal device, ``device_range`` times
            each layer's initial bound for the others.
        device: the trainable conductances' device: ``"ideal"``
            ([`IdealDevice`][kirchhoff.IdealDevice]: a write adds the update and clips to
            [0, g_max]), ``"pulsed"`` (a [`PulsedDevice`][kirchhoff.PulsedDevice] of equal
            steps, ``device_levels`` levels), or a key of
            [`DEVICE_PRESETS`][kirchhoff.DEVICE_PRESETS] (a measured memristor,
            [`device_preset`][kirchhoff.device_preset]); a non-ideal one is made per weight
            layer. The fields from ``device_levels`` to ``stochastic_rounding`` override its
            non-idealities (None: the device's own) and are refused for ``"ideal"``.
        device_levels: ``"pulsed"`` only: the number of conductance levels, ≥ 2 (None: 256).
        nonlinearity: ``"pulsed"`` only: NeuroSim's nonlinearity NL ≥ 0 of the response
            (NL for potentiation, −NL for depression,
            [`NeuroSimResponse`][kirchhoff.NeuroSimResponse]); None or 0: linear steps.
        asymmetry: aihwkit's ``up_down``, in (−1, 1): the weaker direction's step is
            (1 − |asymmetry|) times the nominal one (depression for asymmetry > 0).
        write_noise: cycle-to-cycle write noise σ_w ≥ 0, relative to each pulse's step.
        read_noise: read noise σ_r ≥ 0, relative: a read presents g·(1 + σ_r·ε), drawn
            afresh in every phase.
        d2d: device-to-device spread σ in [0, 1) of each device's step size and bounds
            (relative), drawn once when the network is built.
        stuck_fraction: the fraction of devices, in [0, 1), that ignore every write, stuck
            at g_min or g_max.
        stochastic_rounding: round an update's pulse count up or down at random (unbiased)
            rather than to the nearest whole pulse.
        device_range: without ``max_conductance``, a non-ideal device's g_max is this (> 0)
            times its layer's initial bound init_scale·√(1/fan_in), so each layer's array is
            sized to the conductances it starts with. The ideal device ignores it.
        diode: the hidden layers' diodes: None (the model's own: Shockley for ``"seed"``,
            ideal for the DRNs), ``"ideal"`` or ``"shockley"``.
        diode_series_resistance: each Shockley diode's series resistance in ohms, ≥ 0
            (0: none). Needs Shockley diodes ([`build_model`][kirchhoff.build_model] refuses
            it with ideal ones).
        saturation_spread: σ ≥ 0 of ln I_s across the Shockley diodes (log-normal saturation
            currents; 0: all alike). Needs Shockley diodes, as ``diode_series_resistance``.
        amp_gain: the seed network's amplifier gain A (> 0); None: its default, 2. Refused
            for other models.
        phase_duration: seconds each phase is held, > 0. With it, every epoch's record logs
            the mean power dissipated per example in each phase (watts) and the energy per
            training step (joules); None: not computed (they cost 13–39 % of a step).
        devices: train data-parallel on this many devices (≥ 1; the first of
            ``jax.devices()``, every process's after ``jax.distributed.initialize()``): each
            step's batch is split across them and the network and optimiser state are
            replicated; ``batch_size`` must be a multiple of it. The result is the same as on
            one device up to floating-point summation order. None: one device, as JAX places
            it. Evaluation runs on one device.
        seed: the PRNG seed, an integer in [0, 2³²): the initial conductances, the devices'
            variation and noise, and the order of the batches.
        dtype: ``"float32"`` or ``"float64"`` (which needs JAX's 64-bit mode:
            ``JAX_ENABLE_X64=1``).
        train_limit: use only the first this many (≥ 1) examples of the training split,
            before ``val_size`` are held out of them; None: all.
        test_limit: use only the first this many (≥ 1) test examples; None: all.
        val_size: examples held out of the training split for validation, ≥ 0 (drawn by
            [`split_validation`][kirchhoff.split_validation] with its fixed seed 0, whatever
            ``seed`` is); each epoch is evaluated on them. 0: no validation split.
        patience: early stopping: stop after this many (≥ 1) epochs without a lower
            validation error; needs ``val_size``. None: train all ``epochs``.
        data_dir: the directory [`load_dataset`][kirchhoff.load_dataset] reads the data from
            (None: its default places).
        out: the run directory (created if missing) that holds the checkpoint, metrics,
            learning curve and result; see [`train`][kirchhoff.train].
        recipe: the key of [`RECIPES`][kirchhoff.RECIPES] these settings started from, for
            the record (set by [`from_recipe`][kirchhoff.TrainConfig.from_recipe]); None:
            settings not taken from a recipe.

    Raises:
        InvalidInputError: a field out of its range, an unknown name, or settings that do
            not go together (e.g. ``patience`` without ``val_size``, a non-ideality with
            ``device="ideal"``, a ``train_limit`` that leaves less than one batch).

    Examples:
        >>> import kirchhoff as kh
        >>> cfg = kh.TrainConfig.from_recipe("drn-xs-mnist-subset", epochs=5, out="runs/xs")
        >>> print(cfg.model, cfg.algorithm, cfg.lr, cfg.epochs, cfg.val_size)
        drn-xs eqprop-centered 0.05 5 500
    """

    model: str = "drn-xs"
    dataset: str = "mnist_subset"
    algorithm: str = "eqprop"
    epochs: int = 10
    batch_size: int = 16
    beta: float = 1.0
    eta: float = 0.5  # coupled learning: outputs clamped this fraction of the way to the target
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
    max_conductance: float | None = None  # the device's upper limit (siemens), every layer
    # the trainable conductances' device: "ideal", "pulsed" (equal steps), or a preset
    # (kirchhoff.DEVICE_PRESETS); the fields below override its non-idealities (None: its own)
    device: str = "ideal"
    device_levels: int | None = None  # "pulsed": number of conductance levels (256)
    nonlinearity: float | None = None  # "pulsed": NeuroSim NL of both branches (0)
    asymmetry: float | None = None  # aihwkit's up_down: the weaker direction (1 − |a|)× nominal
    write_noise: float | None = None  # cycle-to-cycle, relative to each pulse's step
    read_noise: float | None = None  # relative, drawn afresh in every phase
    d2d: float | None = None  # device-to-device spread of step size and bounds (relative)
    stuck_fraction: float | None = None  # devices stuck at g_min or g_max
    stochastic_rounding: bool = False  # an update's pulse count rounded at random, unbiased
    device_range: float = 3.0  # without max_conductance: g_max = this × a layer's init bound
    diode: str | None = None  # None: the model's own (Shockley for seed, ideal for DRNs)
    diode_series_resistance: float = 0.0  # ohms, each Shockley diode's series resistance
    saturation_spread: float = 0.0  # σ of ln I_s across the Shockley diodes (log-normal)
    amp_gain: float | None = None  # the seed network's amplifier gain (None: its default)
    # seconds each phase is held: with it, each step's power per phase and energy are logged
    # (None: not computed, as they cost 13–39 % of a step: benchmarks/nonidealities.py sets it)
    phase_duration: float | None = None
    devices: int | None = None  # data-parallel over this many devices (None: one, as JAX puts it)
    seed: int = 0
    dtype: str = "float32"
    train_limit: int | None = None
    test_limit: int | None = None
    val_size: int = 0  # examples held out of the training split to choose settings on
    patience: int | None = None  # early stopping: epochs without a better validation error
    data_dir: str | None = None
    out: str = "runs/default"
    recipe: str | None = None  # the recipe these settings started from, for the record

    @classmethod
    def from_recipe(cls, name: str, **overrides) -> "TrainConfig":
        """The configuration of a named recipe, with ``overrides`` applied on top.

        Args:
            name: a key of [`RECIPES`][kirchhoff.RECIPES], e.g. ``"drn-xs-mnist-subset"``.
            **overrides: any [`TrainConfig`][kirchhoff.TrainConfig] fields, replacing the
                recipe's values (``out``, ``epochs``, ``data_dir``, ...).

        Returns:
            The checked [`TrainConfig`][kirchhoff.TrainConfig], its ``recipe`` set to ``name``
                (unless ``overrides`` set it).

        Raises:
            InvalidInputError: an unknown recipe, or an override out of its range (a keyword
                that is not a field is a TypeError).
        """
        check_choice(_WHO, "recipe", name, tuple(sorted(RECIPES)))
        return cls(**{**recipe_fields(name), **overrides})

    def __post_init__(self):
        # every field checked here, so the Python API and the command line share one set of
        # checks, each naming the field and the offending value (InvalidInputError)
        self._check_choices()
        self._check_numbers()
        self._check_counts()
        self._check_device()
        check_choice(_WHO, "dtype", self.dtype, ("float32", "float64"))
        if jax.dtypes.canonicalize_dtype(jnp.dtype(self.dtype)) != jnp.dtype(self.dtype):
            # the library never flips JAX's x64 switch behind the user's back
            raise InvalidInputError(
                "dtype 'float64' needs JAX's 64-bit mode: set JAX_ENABLE_X64=1 in the "
                "environment (or call jax.config.update('jax_enable_x64', True) first)."
            )

    def _check_choices(self) -> None:
        check_choice(_WHO, "algorithm", self.algorithm, ALGORITHMS)
        check_choice(_WHO, "optimizer", self.optimizer, ("sgd", "adam"))
        check_choice(_WHO, "on_unconverged", self.on_unconverged, ON_UNCONVERGED)
        check_choice(_WHO, "lr_schedule", self.lr_schedule, ("constant", "cosine"))
        check_choice(_WHO, "diode", self.diode, (None, "ideal", "shockley"))
        check_choice(_WHO, "dataset", self.dataset, available_datasets())
        if self.recipe is not None:
            check_choice(_WHO, "recipe", self.recipe, tuple(sorted(RECIPES)))
        sizes = model_sizes(self.model)  # the model's name, checked without building it
        if self.amp_gain is not None and self.model != "seed":
            raise InvalidInputError(
                f"{_WHO}: amp_gain is the seed network's amplifier gain; model {self.model!r} "
                f"has none (got amp_gain={self.amp_gain})."
            )
        if self.layer_lr is not None:
            if isinstance(self.layer_lr, str) or not isinstance(self.layer_lr, Sequence):
                raise InvalidInputTypeError(
                    f"{_WHO}: layer_lr must be a sequence of numbers; got {self.layer_lr!r}."
                )
            self.layer_lr = tuple(
                float(check_real(_WHO, f"layer_lr[{k}]", x, at_least=0))
                for k, x in enumerate(self.layer_lr)
            )
            if len(self.layer_lr) != len(sizes) - 1:
                raise InvalidInputError(
                    f"{_WHO}: layer_lr needs one multiplier per weight layer: model "
                    f"{self.model!r} has {len(sizes) - 1}, layer_lr has {len(self.layer_lr)} "
                    f"{self.layer_lr}."
                )
        for name in ("data_dir", "out"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str | os.PathLike):
                raise InvalidInputTypeError(f"{_WHO}: {name} must be a path; got {value!r}.")
        if not str(self.out):
            raise InvalidInputError(f"{_WHO}: out must name a directory; got {self.out!r}.")

    def _check_device(self) -> None:
        from .._devices import DEVICE_PRESETS

        check_choice(_WHO, "device", self.device, ("ideal", "pulsed", *sorted(DEVICE_PRESETS)))
        for name in ("write_noise", "read_noise", "d2d", "stuck_fraction", "nonlinearity"):
            if getattr(self, name) is not None:
                value = check_real(_WHO, name, getattr(self, name), at_least=0)
                setattr(self, name, float(value))
        for name in ("d2d", "stuck_fraction"):
            if getattr(self, name) is not None and not getattr(self, name) < 1:
                raise InvalidInputError(f"{_WHO}: {name} must be < 1; got {getattr(self, name)}.")
        if self.asymmetry is not None:
            self.asymmetry = float(check_real(_WHO, "asymmetry", self.asymmetry))
            if not -1 < self.asymmetry < 1:
                raise InvalidInputError(
                    f"{_WHO}: asymmetry must lie in (−1, 1); got {self.asymmetry}."
                )
        if self.device_levels is not None:
            self.device_levels = check_int(_WHO, "device_levels", self.device_levels, at_least=2)
        self.device_range = float(check_real(_WHO, "device_range", self.device_range, above=0))
        if not isinstance(self.stochastic_rounding, bool):
            raise InvalidInputTypeError(
                f"{_WHO}: stochastic_rounding must be True or False; got "
                f"{self.stochastic_rounding!r}."
            )
        given = [
            name
            for name in (
                "device_levels",
                "nonlinearity",
                "asymmetry",
                "write_noise",
                "read_noise",
                "d2d",
                "stuck_fraction",
            )
            if getattr(self, name) is not None
        ]
        if self.device == "ideal" and (given or self.stochastic_rounding):
            what = ", ".join(given + ["stochastic_rounding"] * self.stochastic_rounding)
            raise InvalidInputError(
                f"{_WHO}: the ideal device has no {what}; choose device='pulsed' or a preset."
            )
        own = [n for n in ("device_levels", "nonlinearity") if n in given]
        if self.device not in ("ideal", "pulsed") and own:
            raise InvalidInputError(
                f"{_WHO}: {', '.join(own)} set(s) the 'pulsed' device's response; preset "
                f"{self.device!r} has its own (measured) levels and nonlinearity."
            )

    def _check_numbers(self) -> None:
        for name in ("beta", "lr", "input_gain", "init_scale", "phase_rtol"):
            setattr(self, name, float(check_real(_WHO, name, getattr(self, name), above=0)))
        self.momentum = float(check_real(_WHO, "momentum", self.momentum, at_least=0))
        for name in ("diode_series_resistance", "saturation_spread"):
            setattr(self, name, float(check_real(_WHO, name, getattr(self, name), at_least=0)))
        self.eta = float(check_real(_WHO, "eta", self.eta, above=0))
        if not self.eta <= 1:
            raise InvalidInputError(f"{_WHO}: eta is a fraction in (0, 1]; got {self.eta:g}.")
        if not self.momentum < 1:
            raise InvalidInputError(f"{_WHO}: momentum must be < 1; got {self.momentum:g}.")
        for name in ("max_conductance", "amp_gain", "phase_duration"):
            if getattr(self, name) is not None:
                setattr(self, name, float(check_real(_WHO, name, getattr(self, name), above=0)))

    def _check_counts(self) -> None:
        self.epochs = check_int(_WHO, "epochs", self.epochs, at_least=0)
        self.batch_size = check_int(_WHO, "batch_size", self.batch_size, at_least=1)
        self.n_sweeps = check_int(_WHO, "n_sweeps", self.n_sweeps, at_least=1)
        self.eval_sweeps = check_int(_WHO, "eval_sweeps", self.eval_sweeps, at_least=1)
        # a PRNGKey folds a seed ≥ 2³² onto a smaller one (2³² gives seed 0's key)
        self.seed = check_int(_WHO, "seed", self.seed, at_least=0, below=2**32)
        self.val_size = check_int(_WHO, "val_size", self.val_size, at_least=0)
        if self.patience is not None:
            self.patience = check_int(_WHO, "patience", self.patience, at_least=1)
            if not self.val_size:
                raise InvalidInputError(
                    f"{_WHO}: patience={self.patience} stops on the validation error, but no "
                    "validation split is held out: give val_size too (the test set is never "
                    "used to choose)."
                )
        if self.devices is not None:
            self.devices = check_int(_WHO, "devices", self.devices, at_least=1)
            if self.batch_size % self.devices:
                raise InvalidInputError(
                    f"{_WHO}: batch_size={self.batch_size} does not split over "
                    f"devices={self.devices}: give a batch size that is a multiple of it."
                )
        for name in ("train_limit", "test_limit"):
            if getattr(self, name) is not None:
                setattr(self, name, check_int(_WHO, name, getattr(self, name), at_least=1))
        if self.train_limit is not None:
            left = self.train_limit - self.val_size
            if left < self.batch_size:
                held = f" after holding out val_size={self.val_size}" if self.val_size else ""
                raise InvalidInputError(
                    f"{_WHO}: train_limit={self.train_limit} leaves {max(left, 0)} training "
                    f"example(s){held}, fewer than one batch of batch_size={self.batch_size}: "
                    "no step would run."
                )

    def check_data(self, n_features: int, n_classes: int) -> None:
        """Raise [`InvalidInputError`][kirchhoff.InvalidInputError] unless ``model`` takes
        ``n_features`` features and has ``n_classes`` outputs (one per class).

        Args:
            n_features: features per example of the data (784 for every dataset here).
            n_classes: the data's number of classes.
        """
        sizes = model_sizes(self.model)
        if sizes[0] != n_features or sizes[-1] != n_classes:
            raise InvalidInputError(
                f"model {self.model!r} takes {sizes[0]} features and has {sizes[-1]} outputs, "
                f"but {self.dataset} has {n_features} features and {n_classes} classes; use "
                f"e.g. 'drn:{n_features}-100-{n_classes}'."
            )


def build_devices(cfg: TrainConfig):
    """The configured device: an [`IdealDevice`][kirchhoff.IdealDevice], or one pulsed device
    per weight layer whose g_max is ``max_conductance`` or ``device_range`` times the layer's
    initial bound (init_scale·√(1/fan-in): each layer's array sized to the conductances it
    starts with)."""
    if cfg.device == "ideal":
        return IdealDevice(cfg.max_conductance)
    sizes = model_sizes(cfg.model)
    fan_in = [2 * sizes[0], *sizes[1:-1]]
    init_scale = 1.0 if cfg.model == "seed" else cfg.init_scale
    overrides = {
        "write_noise": cfg.write_noise,
        "read_noise": cfg.read_noise,
        "d2d_step": cfg.d2d,
        "d2d_bounds": cfg.d2d,
        "stuck_fraction": cfg.stuck_fraction,
        "up_down": cfg.asymmetry,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    devices = []
    for n in fan_in:
        g_max = cfg.max_conductance or cfg.device_range * init_scale * (1.0 / n) ** 0.5
        if cfg.device == "pulsed":
            levels = cfg.device_levels or 256
            nl = cfg.nonlinearity or 0.0
            response = NeuroSimResponse(levels, levels, nl, -nl) if nl else LinearResponse(levels)
            device = PulsedDevice(g_max, response=response, seed=cfg.seed, **overrides)
        else:
            device = device_preset(cfg.device, g_max, seed=cfg.seed, **overrides)
        devices.append(device.with_options(stochastic_rounding=cfg.stochastic_rounding))
    return tuple(devices)


def build_model(cfg: TrainConfig) -> LayeredNetwork:
    """The network a configuration describes, freshly initialised from ``cfg.seed``.

    [`make_model`][kirchhoff.make_model] builds ``cfg.model`` with the configured input
    gain, dtype, diodes (``diode``, ``diode_series_resistance``, ``saturation_spread``),
    ``init_scale`` (DRNs) or ``amp_gain`` (the seed network), and the configured devices:
    one per weight layer (``device``, sized by ``max_conductance`` or ``device_range``), or
    an [`IdealDevice`][kirchhoff.IdealDevice]. [`train`][kirchhoff.train] starts from it.

    Args:
        cfg: the [`TrainConfig`][kirchhoff.TrainConfig].

    Returns:
        A [`LayeredNetwork`][kirchhoff.LayeredNetwork] of dtype ``cfg.dtype``; the same
            ``cfg`` always gives the same network.

    Raises:
        InvalidInputError: settings the network refuses, e.g. ``diode_series_resistance``
            or ``saturation_spread`` with ideal diodes.
    """
    kwargs: dict[str, Any] = dict(
        input_gain=cfg.input_gain,
        dtype=jnp.dtype(cfg.dtype),
        device=build_devices(cfg),
    )
    if cfg.diode is not None:
        kwargs["diode"] = cfg.diode
    if cfg.diode_series_resistance:
        kwargs["series_resistance"] = cfg.diode_series_resistance
    if cfg.saturation_spread:
        kwargs["saturation_spread"] = cfg.saturation_spread
    if cfg.model != "seed":
        kwargs["init_scale"] = cfg.init_scale
    elif cfg.amp_gain is not None:
        kwargs["amp_gain"] = cfg.amp_gain
    return make_model(cfg.model, jax.random.PRNGKey(cfg.seed), **kwargs)


def build_optimizer(
    cfg: TrainConfig, steps_per_epoch: int | None = None
) -> optax.GradientTransformation:
    """The optax optimiser a configuration describes: ``optax.sgd`` (with ``cfg.momentum``,
    if any) or ``optax.adam`` at rate ``cfg.lr``, constant or on a cosine decay to 0.

    The updates it produces are in conductance (siemens); ``cfg.layer_lr`` is not part of it
    (the training step from [`make_train_step`][kirchhoff.make_train_step] applies it).

    Args:
        cfg: the [`TrainConfig`][kirchhoff.TrainConfig].
        steps_per_epoch: training steps per epoch (training examples // batch size): a
            cosine schedule decays over ``cfg.epochs × steps_per_epoch`` steps. Needed only
            with ``lr_schedule="cosine"``.

    Returns:
        An ``optax.GradientTransformation``.

    Raises:
        InvalidInputError: a cosine schedule without ``steps_per_epoch``.
    """
    lr = cfg.lr
    if cfg.lr_schedule == "cosine":
        if not steps_per_epoch:
            raise InvalidInputError("a cosine schedule needs the number of steps per epoch")
        lr = optax.cosine_decay_schedule(cfg.lr, cfg.epochs * steps_per_epoch)
    if cfg.optimizer == "adam":
        return optax.adam(lr)
    return optax.sgd(lr, momentum=cfg.momentum or None)
