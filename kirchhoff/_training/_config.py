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
from .._devices import IdealDevice
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
    max_conductance: float | None = None  # the ideal device's upper limit (siemens)
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
        check_choice(_WHO, "recipe", name, tuple(sorted(RECIPES)))
        return cls(**{**recipe_fields(name), **overrides})

    def __post_init__(self):
        # every field checked here, so the Python API and the command line share one set of
        # checks, each naming the field and the offending value (InvalidInputError)
        self._check_choices()
        self._check_numbers()
        self._check_counts()
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

    def _check_numbers(self) -> None:
        for name in ("beta", "lr", "input_gain", "init_scale", "phase_rtol"):
            setattr(self, name, float(check_real(_WHO, name, getattr(self, name), above=0)))
        self.momentum = float(check_real(_WHO, "momentum", self.momentum, at_least=0))
        if not self.momentum < 1:
            raise InvalidInputError(f"{_WHO}: momentum must be < 1; got {self.momentum:g}.")
        for name in ("max_conductance", "amp_gain"):
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
        """Raise unless the model fits data of ``n_features`` features and ``n_classes``
        classes (one output per class)."""
        sizes = model_sizes(self.model)
        if sizes[0] != n_features or sizes[-1] != n_classes:
            raise InvalidInputError(
                f"model {self.model!r} takes {sizes[0]} features and has {sizes[-1]} outputs, "
                f"but {self.dataset} has {n_features} features and {n_classes} classes; use "
                f"e.g. 'drn:{n_features}-100-{n_classes}'."
            )


def build_model(cfg: TrainConfig) -> LayeredNetwork:
    kwargs: dict[str, Any] = dict(
        input_gain=cfg.input_gain,
        dtype=jnp.dtype(cfg.dtype),
        device=IdealDevice(cfg.max_conductance),
    )
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
            raise InvalidInputError("a cosine schedule needs the number of steps per epoch")
        lr = optax.cosine_decay_schedule(cfg.lr, cfg.epochs * steps_per_epoch)
    if cfg.optimizer == "adam":
        return optax.adam(lr)
    return optax.sgd(lr, momentum=cfg.momentum or None)
