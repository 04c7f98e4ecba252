"""Layered (deep) resistive networks: the seed paper's analog network and Scellier's DRNs."""

from ._models import MODELS as MODELS
from ._models import drn as drn
from ._models import make_model as make_model
from ._models import model_sizes as model_sizes
from ._models import seed_network as seed_network
from ._network import DiodeKind as DiodeKind
from ._network import LayeredNetwork as LayeredNetwork
