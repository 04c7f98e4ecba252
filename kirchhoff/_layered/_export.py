"""A layered network as a general Circuit: the cross-check against the general solvers and
the way to SPICE."""

import jax.numpy as jnp
import numpy as np

from .._circuit import Circuit
from .._elements import (
    Amplifier,
    CurrentSource,
    Ground,
    IdealDiode,
    Input,
    Resistor,
    ShockleyDiode,
    VoltageSource,
)


def layered_to_circuit(net) -> Circuit:
    """``net`` as a general ``Circuit``: see ``LayeredNetwork.to_circuit``."""
    net.require_read("LayeredNetwork.to_circuit")
    n_in = net.sizes[0]
    names = [[f"in+{i}" for i in range(n_in)] + [f"in-{i}" for i in range(n_in)]]
    for m in range(1, net.n_layers):
        names.append([f"h{m}_{j}" for j in range(net.sizes[m])])
    names.append([f"out{j}" for j in range(net.n_outputs)])
    free_names = [n for layer in names[1:] for n in layer]
    elements: list = [Ground("gnd"), Input(names[0])]
    rails: dict[float, str] = {0.0: "gnd"}

    def rail(value):
        value = float(value)
        if value not in rails:
            rails[value] = f"rail{value:g}"
            elements.append(VoltageSource(rails[value], value))
        return rails[value]

    for k, w in enumerate(net.weights):
        src = names[k]
        if k > 0 and net.drive_gain(k) != 1.0:
            drive = [f"{n}'" for n in src]
            elements.append(Amplifier(src, drive, net.drive_gain(k)))
            src = drive
        wn = np.asarray(w)
        ii, jj = np.nonzero(np.ones_like(wn, dtype=bool))
        elements.append(
            Resistor([src[i] for i in ii], [names[k + 1][j] for j in jj], jnp.asarray(wn[ii, jj]))
        )
    for m, b in enumerate(net.biases, start=1):
        elements.append(CurrentSource(names[m], b))
    # all diodes in one group (one vectorised co-content, one compile), whatever their rails
    anodes, cathodes, saturation = [], [], []
    for m in range(1, net.n_layers):
        lo, hi = np.asarray(net.lower[m - 1]), np.asarray(net.upper[m - 1])
        i_lo, i_hi = (np.broadcast_to(i_s, lo.shape) for i_s in net.rail_saturation_currents(m))
        for j, node in enumerate(names[m]):
            if np.isfinite(lo[j]):
                anodes.append(rail(lo[j]))
                cathodes.append(node)
                saturation.append(i_lo[j])
            if np.isfinite(hi[j]):
                anodes.append(node)
                cathodes.append(rail(hi[j]))
                saturation.append(i_hi[j])
    if anodes:
        i_s = net.saturation_current if net.saturation_currents is None else np.array(saturation)
        r_s = net.series_resistance if net.series_resistance > 0 else None
        elements.append(
            IdealDiode(anodes, cathodes)
            if net.diode == "ideal"
            else ShockleyDiode(
                anodes,
                cathodes,
                i_s,
                net.ideality,
                net.thermal_voltage,
                series_resistance=r_s,
            )
        )
    nodes = ["gnd", *names[0], *free_names]
    known = set(nodes)
    for e in elements:  # amplifier outputs and rails come after the free nodes
        for term in e.terminal_names():
            for n in term:
                if n not in known:
                    known.add(n)
                    nodes.append(n)
    return Circuit(elements, outputs=names[-1], nodes=nodes)
