"""Layered (deep) resistive networks: the seed paper's analog network and Scellier's DRNs."""

from ._models import MODELS as MODELS
from ._models import drn as drn
from ._models import make_model as make_model
from ._models import model_sizes as model_sizes
from ._models import seed_network as seed_network
from ._network import DiodeKind as DiodeKind
from ._network import LayeredNetwork as LayeredNetwork
from ._power import PhasePower as PhasePower
from ._power import eqprop_phase_powers as eqprop_phase_powers
from ._power import nudge_current as nudge_current
from ._power import phase_power as phase_power
from ._power import step_energy as step_energy
