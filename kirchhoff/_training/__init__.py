"""Training layer: configuration and recipes, the training step, the loop, run directories."""

from ._config import ALGORITHMS as ALGORITHMS
from ._config import ON_UNCONVERGED as ON_UNCONVERGED
from ._config import TrainConfig as TrainConfig
from ._config import build_model as build_model
from ._config import build_optimizer as build_optimizer
from ._recipes import RECIPE_VERSIONS as RECIPE_VERSIONS
from ._recipes import RECIPES as RECIPES
from ._rundir import RunDirectoryError as RunDirectoryError
from ._rundir import load_checkpoint as load_checkpoint
from ._rundir import read_metrics as read_metrics
from ._rundir import save_checkpoint as save_checkpoint
from ._step import StepInfo as StepInfo
from ._step import evaluate as evaluate
from ._step import make_train_step as make_train_step
from ._step import predict as predict
from ._train import train as train
