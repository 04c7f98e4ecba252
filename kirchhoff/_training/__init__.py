"""Training layer: optimisers, the training loop, checkpoints, metrics, plots, recipes."""

from ._recipes import RECIPES as RECIPES
from ._train import StepInfo as StepInfo
from ._train import TrainConfig as TrainConfig
from ._train import build_model as build_model
from ._train import build_optimizer as build_optimizer
from ._train import evaluate as evaluate
from ._train import load_checkpoint as load_checkpoint
from ._train import make_train_step as make_train_step
from ._train import predict as predict
from ._train import read_metrics as read_metrics
from ._train import train as train
