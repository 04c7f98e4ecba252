"""Equilibrium solvers: all batched, jit-compiled and implicitly differentiable."""

from ._base import AbstractSolver as AbstractSolver
from ._base import Equilibrium as Equilibrium
from ._base import NotConvergedError as NotConvergedError
from ._base import Status as Status
from ._base import check_beta as check_beta
from ._bcd import BlockCoordinateDescent as BlockCoordinateDescent
from ._lbfgs import LBFGS as LBFGS
from ._newton import DampedNewton as DampedNewton
from ._qp import BoxQP as BoxQP
from ._sparse import SparseNewton as SparseNewton
