"""kirchhoff: analog neural networks in JAX — nonlinear resistive circuits as energy-based
models, at equilibrium by minimising co-content, trained by Equilibrium Propagation."""

from ._circuit import AbstractCircuit as AbstractCircuit
from ._circuit import Circuit as Circuit
from ._cost import squared_error as squared_error
from ._data import Dataset as Dataset
from ._data import DatasetNotFoundError as DatasetNotFoundError
from ._data import IdxFormatError as IdxFormatError
from ._data import available_datasets as available_datasets
from ._data import batches as batches
from ._data import load_dataset as load_dataset
from ._data import one_hot as one_hot
from ._data import read_idx as read_idx
from ._data import train_test as train_test
from ._data import write_idx as write_idx
from ._elements import AbstractElement as AbstractElement
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
from ._layered import drn as drn
from ._layered import make_model as make_model
from ._layered import seed_network as seed_network
from ._learning._autodiff import finite_difference_gradient as finite_difference_gradient
from ._learning._autodiff import implicit_gradient as implicit_gradient
from ._learning._autodiff import mean_loss as mean_loss
from ._learning._autodiff import unrolled_gradient as unrolled_gradient
from ._learning._eqprop import VARIANTS as VARIANTS
from ._learning._eqprop import EqPropResult as EqPropResult
from ._learning._eqprop import energy_gradient as energy_gradient
from ._learning._eqprop import eqprop_gradient as eqprop_gradient
from ._learning._eqprop import local_conductance_gradient as local_conductance_gradient
from ._learning._eqprop import local_conductance_gradients as local_conductance_gradients
from ._solver import LBFGS as LBFGS
from ._solver import AbstractSolver as AbstractSolver
from ._solver import BlockCoordinateDescent as BlockCoordinateDescent
from ._solver import BoxQP as BoxQP
from ._solver import DampedNewton as DampedNewton
from ._solver import Equilibrium as Equilibrium
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

__version__ = "0.1.0"
