"""What a training run depends on: its configuration, the model and optimiser it builds."""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from .._devices import IdealDevice
from .._layered import LayeredNetwork, make_model
from .._solver._phase import PHASE_RTOL
from ._recipes import recipe_fields

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
            raise ValueError("a cosine schedule needs the number of steps per epoch")
        lr = optax.cosine_decay_schedule(cfg.lr, cfg.epochs * steps_per_epoch)
    if cfg.optimizer == "adam":
        return optax.adam(lr)
    return optax.sgd(lr, momentum=cfg.momentum or None)
