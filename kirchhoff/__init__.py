"""kirchhoff: analog neural networks in JAX — nonlinear resistive circuits as energy-based
models, at equilibrium by minimising co-content, trained by Equilibrium Propagation."""

from ._circuit import AbstractCircuit as AbstractCircuit
from ._circuit import Circuit as Circuit
from ._cost import squared_error as squared_error
from ._crossbar import CrossbarSolution as CrossbarSolution
from ._crossbar import crossbar_circuit as crossbar_circuit
from ._crossbar import crossbar_column_currents as crossbar_column_currents
from ._crossbar import ideal_column_currents as ideal_column_currents
from ._data import Dataset as Dataset
from ._data import DatasetNotFoundError as DatasetNotFoundError
from ._data import IdxFormatError as IdxFormatError
from ._data import InvalidInputError as InvalidInputError
from ._data import InvalidInputTypeError as InvalidInputTypeError
from ._data import available_datasets as available_datasets
from ._data import batches as batches
from ._data import load_dataset as load_dataset
from ._data import one_hot as one_hot
from ._data import read_idx as read_idx
from ._data import split_validation as split_validation
from ._data import train_test as train_test
from ._data import write_idx as write_idx
from ._devices import DEVICE_PRESETS as DEVICE_PRESETS
from ._devices import AbstractDevice as AbstractDevice
from ._devices import AbstractResponse as AbstractResponse
from ._devices import ExpStepResponse as ExpStepResponse
from ._devices import IdealDevice as IdealDevice
from ._devices import LinearResponse as LinearResponse
from ._devices import NeuroSimResponse as NeuroSimResponse
from ._devices import PulsedDevice as PulsedDevice
from ._devices import SoftBoundsResponse as SoftBoundsResponse
from ._devices import TableResponse as TableResponse
from ._devices import device_preset as device_preset
from ._elements import AbstractBounded as AbstractBounded
from ._elements import AbstractDissipative as AbstractDissipative
from ._elements import AbstractDriven as AbstractDriven
from ._elements import AbstractElement as AbstractElement
from ._elements import AbstractHeld as AbstractHeld
from ._elements import AbstractSource as AbstractSource
from ._elements import Amplifier as Amplifier
from ._elements import CurrentSource as CurrentSource
from ._elements import Ground as Ground
from ._elements import IdealDiode as IdealDiode
from ._elements import Input as Input
from ._elements import Resistor as Resistor
from ._elements import ShockleyDiode as ShockleyDiode
from ._elements import VoltageSource as VoltageSource
from ._layered import MODELS as MODELS
from ._layered import LayeredNetwork as LayeredNetwork
from ._layered import PhasePower as PhasePower
from ._layered import drn as drn
from ._layered import eqprop_phase_powers as eqprop_phase_powers
from ._layered import make_model as make_model
from ._layered import nudge_current as nudge_current
from ._layered import phase_power as phase_power
from ._layered import seed_network as seed_network
from ._layered import step_energy as step_energy
from ._learning._autodiff import finite_difference_gradient as finite_difference_gradient
from ._learning._autodiff import implicit_gradient as implicit_gradient
from ._learning._autodiff import mean_loss as mean_loss
from ._learning._autodiff import unrolled_gradient as unrolled_gradient
from ._learning._clamped import RULES as RULES
from ._learning._clamped import ClampedPhases as ClampedPhases
from ._learning._clamped import layered_clamped_phases as layered_clamped_phases
from ._learning._clamped import layered_contrastive_gradient as layered_contrastive_gradient
from ._learning._clamped import layered_coupled_gradient as layered_coupled_gradient
from ._learning._eqprop import VARIANTS as VARIANTS
from ._learning._eqprop import EqPropResult as EqPropResult
from ._learning._eqprop import energy_gradient as energy_gradient
from ._learning._eqprop import eqprop_gradient as eqprop_gradient
from ._learning._eqprop import local_conductance_gradient as local_conductance_gradient
from ._learning._eqprop import local_conductance_gradients as local_conductance_gradients
from ._learning._layered import LayeredPhases as LayeredPhases
from ._learning._layered import layered_backprop_gradient as layered_backprop_gradient
from ._learning._layered import layered_eqprop_gradient as layered_eqprop_gradient
from ._learning._layered import layered_phases as layered_phases
from ._solver import LBFGS as LBFGS
from ._solver import AbstractSolver as AbstractSolver
from ._solver import BlockCoordinateDescent as BlockCoordinateDescent
from ._solver import BoxQP as BoxQP
from ._solver import DampedNewton as DampedNewton
from ._solver import Equilibrium as Equilibrium
from ._solver import NotConvergedError as NotConvergedError
from ._solver import SparseNewton as SparseNewton
from ._solver import Status as Status
from ._spice import NetlistError as NetlistError
from ._spice import NgspiceConvergenceError as NgspiceConvergenceError
from ._spice import NgspiceError as NgspiceError
from ._spice import NgspiceNotFoundError as NgspiceNotFoundError
from ._spice import from_netlist as from_netlist
from ._spice import netlist_inputs as netlist_inputs
from ._spice import ngspice_potentials as ngspice_potentials
from ._spice import spice_node_names as spice_node_names
from ._spice import to_netlist as to_netlist
from ._training import RECIPE_VERSIONS as RECIPE_VERSIONS
from ._training import RECIPES as RECIPES
from ._training import RunDirectoryError as RunDirectoryError
from ._training import StepInfo as StepInfo
from ._training import TrainConfig as TrainConfig
from ._training import build_model as build_model
from ._training import build_optimizer as build_optimizer
from ._training import evaluate as evaluate
from ._training import load_checkpoint as load_checkpoint
from ._training import make_train_step as make_train_step
from ._training import predict as predict
from ._training import read_metrics as read_metrics
from ._training import train as train

__version__ = "0.1.0"


def __getattr__(name):
    # ``kh.plot`` without importing matplotlib and schemdraw on ``import kirchhoff``
    if name == "plot":
        import importlib

        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'kirchhoff' has no attribute {name!r}")
