"""SPICE round trip: export a Circuit as a netlist, run ngspice on it, import netlists."""

from ._export import spice_node_names as spice_node_names
from ._export import to_netlist as to_netlist
from ._import import from_netlist as from_netlist
from ._import import netlist_inputs as netlist_inputs
from ._lex import NetlistError as NetlistError
from ._ngspice import NgspiceConvergenceError as NgspiceConvergenceError
from ._ngspice import NgspiceError as NgspiceError
from ._ngspice import NgspiceNotFoundError as NgspiceNotFoundError
from ._ngspice import ngspice_potentials as ngspice_potentials
