"""Data parallelism: a training step's batch sharded over a mesh of devices, the network and
the optimiser's state replicated on each.

One code path for one CPU, several GPUs or TPUs, and several hosts: the step is compiled with
``jax.jit`` for the shardings below and XLA inserts the collective that averages the
per-device gradient sums (the step's losses and gradients are batch means, so the sharded
step computes the same numbers as the unsharded one, up to the order of a floating-point
sum). Across hosts (after ``jax.distributed.initialize()``) every process runs the same loop
on the same global batch — each draws the same batch order from the run's seed — and hands
the devices only the rows they hold (``jax.make_array_from_callback``).
"""

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .._data._errors import InvalidInputError

BATCH_AXIS = "batch"


def data_mesh(devices: int | Sequence[jax.Device] | None = None, who: str = "devices") -> Mesh:
    """A one-axis mesh (axis ``"batch"``) over ``devices``: None or an int n takes the first
    n of ``jax.devices()`` (every device of every process when None)."""
    available = jax.devices()
    if devices is None:
        chosen = available
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise InvalidInputError(
                f"{who}={devices}: this JAX sees {len(available)} device(s) "
                f"({available[0].platform}); give 1 … {len(available)} (on a CPU, "
                "XLA_FLAGS=--xla_force_host_platform_device_count=N splits it into N)."
            )
        chosen = available[: int(devices)]
    else:
        chosen = list(devices)
        if not chosen or not all(isinstance(d, jax.Device) for d in chosen):
            raise InvalidInputError(f"{who}: give a device count or a list of jax devices")
    return Mesh(np.asarray(chosen), (BATCH_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(BATCH_AXIS))


def to_sharding(tree, sharding: NamedSharding):
    """Every array leaf of ``tree`` as a global array with ``sharding``; a leaf that has it
    already is passed as it is (the carried state of a running loop). Each process supplies
    the rows its devices hold from its own copy of the value (all processes hold the same)."""

    def put(leaf):
        if leaf is None:
            return None
        if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
            return leaf
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(put, tree)
