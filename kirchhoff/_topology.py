"""Circuit topology, compiled once from the elements: node numbering, held, driven and free
nodes, the energy weight of each amplifier domain, floating-node checks, and ideal diodes as
bounds. A pure function of the elements' terminals and kinds (no parameter values are read
except the amplifiers' gains)."""

import dataclasses
from collections.abc import Hashable, Sequence

import jax.numpy as jnp
import numpy as np

from ._custom_types import NodeRef
from ._elements import (
    AbstractDissipative,
    AbstractElement,
    Amplifier,
    CurrentSource,
    IdealDiode,
    Input,
    VoltageSource,
)


@dataclasses.dataclass(frozen=True)
class Topology:
    """What :class:`Circuit` needs to know about its graph (numpy arrays, host side)."""

    elements: tuple
    terminals: list  # per element: int array (terminals, k) of node indices
    energy_weights: list  # per element: the 1/A² weight of its amplifier domain, (k,)
    names: dict  # node name → index
    input_names: list
    outputs: tuple
    out_idx: np.ndarray
    free: list  # free node indices, in order
    root: np.ndarray  # per node: its free index, or n_free + held slot (driven: its source's)
    gain: np.ndarray  # per node: the amplifier gain from its root
    node_weight: np.ndarray
    bounds: tuple  # (node, ref, scale, upper) lists: ideal diodes to held nodes
    coupled: bool  # an ideal diode joins two free nodes


def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _union(parent, i, j):
    ri, rj = _find(parent, i), _find(parent, j)
    if ri != rj:
        parent[max(ri, rj)] = min(ri, rj)


def compile_topology(
    elements: Sequence[AbstractElement],
    outputs: Sequence[NodeRef] = (),
    nodes: Sequence[NodeRef] | None = None,
) -> Topology:
    """The topology of ``elements`` (see :class:`Topology`); raises ValueError naming the node
    or element for a circuit without an energy function or with undefined potentials."""
    elements = tuple(elements)
    for e in elements:
        if not isinstance(e, AbstractElement):
            raise ValueError(f"Circuit: {e!r} is not a kirchhoff element.")
    # 1. nodes
    if nodes is None:
        names: dict[Hashable, int] = {}
        for e in elements:
            for term in e.terminal_names():
                for n in term:
                    names.setdefault(n, len(names))
    else:
        names = {}
        for n in nodes:
            if n in names:
                raise ValueError(f"Circuit: node {n!r} is listed twice in `nodes`.")
            names[n] = len(names)

    def index(n, what):
        try:
            return names[n]
        except (KeyError, TypeError):
            raise ValueError(
                f"Circuit: {what} refers to unknown node {n!r}; known nodes are "
                f"{list(names)[:20]}{'...' if len(names) > 20 else ''}."
            ) from None

    n_nodes = len(names)
    terminals = []
    for e in elements:
        terminals.append(
            np.array(
                [[index(n, type(e).__name__) for n in term] for term in e.terminal_names()],
                dtype=np.int64,
            ).reshape(len(e.terminal_names()), e.size)
        )
    outputs = tuple(outputs)
    out_idx = np.array([index(n, "outputs") for n in outputs], dtype=np.int64)

    # 2. held nodes: inputs first, then fixed sources, in element order
    held_slot = {}
    input_names = []
    for kind in (Input, VoltageSource):
        for e, t in zip(elements, terminals, strict=True):
            if not isinstance(e, kind):
                continue
            for n in t[0]:
                if n in held_slot:
                    raise ValueError(f"Circuit: node {list(names)[n]!r} is held by two sources.")
                held_slot[int(n)] = len(held_slot)
                if kind is Input:
                    input_names.append(list(names)[n])
    if not held_slot:
        raise ValueError(
            "Circuit: no node is held by a source; add a Ground (VoltageSource at 0 V) so "
            "that potentials are defined."
        )
    # 3. amplifier-driven (dependent) nodes
    driven = {}
    for e, t in zip(elements, terminals, strict=True):
        if isinstance(e, Amplifier):
            for s, d, a in zip(t[0], t[1], e.gain, strict=True):
                d = int(d)
                if d in held_slot or d in driven:
                    raise ValueError(
                        f"Circuit: node {list(names)[d]!r} is driven by an amplifier and also "
                        "held or driven elsewhere."
                    )
                driven[d] = (int(s), a)
    # 4. free nodes
    free = [i for i in range(n_nodes) if i not in held_slot and i not in driven]
    n_free = len(free)
    free_pos = {n: k for k, n in enumerate(free)}
    root = np.zeros(n_nodes, dtype=np.int64)
    gain = np.ones(n_nodes)
    for n in free:
        root[n] = free_pos[n]
    for n, s in held_slot.items():
        root[n] = n_free + s

    def resolve(n, seen=()):
        if n in driven:
            if n in seen:
                raise ValueError("Circuit: amplifiers form a loop; an amplifier chain must end.")
            s, a = driven[n]
            r, g = resolve(s, (*seen, n))
            return r, a * g
        return root[n], gain[n]

    for n in driven:
        root[n], gain[n] = resolve(n)

    # 5. energy domains (amplifiers rescale downstream energy by 1/A²)
    parent = list(range(n_nodes))
    for e, t in zip(elements, terminals, strict=True):
        if isinstance(e, AbstractDissipative | IdealDiode):
            for a, c in zip(t[0], t[1], strict=True):
                if a not in held_slot and c not in held_slot:
                    _union(parent, int(a), int(c))
    dom_weight: dict[int, float] = {}
    pending = dict(driven)
    # domains containing no driven node have weight 1
    driven_domains = {_find(parent, d) for d in driven}
    for n in range(n_nodes):
        if n not in held_slot and _find(parent, n) not in driven_domains:
            dom_weight[_find(parent, n)] = 1.0
    for _ in range(len(pending) + 1):
        progressed = False
        for d, (s, a) in list(pending.items()):
            if s in held_slot:
                w_src = 1.0
            else:
                w_src = dom_weight.get(_find(parent, s))
            if w_src is None:
                continue
            w = w_src / a**2
            rd = _find(parent, d)
            if rd in dom_weight and not np.isclose(dom_weight[rd], w, rtol=1e-12):
                raise ValueError(
                    f"Circuit: node {list(names)[d]!r} is reached through amplifiers of "
                    "different total gain; such a circuit has no energy function."
                )
            dom_weight[rd] = w
            del pending[d]
            progressed = True
        if not progressed:
            break
    if pending:
        raise ValueError("Circuit: amplifiers feed back into their own input domain.")
    node_weight = np.array(
        [1.0 if n in held_slot else dom_weight[_find(parent, n)] for n in range(n_nodes)]
    )
    energy_weights = []
    for e, t in zip(elements, terminals, strict=True):
        if isinstance(e, AbstractDissipative | CurrentSource):
            # an element's domain is that of any of its non-held terminals
            w = np.ones(e.size)
            for row in t:
                w = np.where([int(x) not in held_slot for x in row], node_weight[row], w)
            energy_weights.append(jnp.asarray(w))
        else:
            energy_weights.append(jnp.ones(e.size))

    # 6. floating nodes: every free node needs a conducting path to a held node
    anchor = list(range(n_nodes))
    for e, t in zip(elements, terminals, strict=True):
        if isinstance(e, AbstractDissipative | Amplifier):
            for a, c in zip(t[0], t[1], strict=True):
                _union(anchor, int(a), int(c))
    anchored = {_find(anchor, n) for n in held_slot}
    floating = [list(names)[n] for n in free if _find(anchor, n) not in anchored]
    if floating:
        raise ValueError(
            f"Circuit: node(s) {floating[:10]} float: no path of resistors or diodes joins "
            "them to a held node (ground, a rail or an input), so their potential is undefined."
        )
    for n in out_idx:
        if int(n) in held_slot:
            raise ValueError(f"Circuit: output node {list(names)[n]!r} is held by a source.")

    # 7. ideal diodes as bounds on free potentials
    b_node, b_ref, b_scale, b_upper = [], [], [], []
    coupled = False
    for e, t in zip(elements, terminals, strict=True):
        if isinstance(e, IdealDiode):
            for a, c in zip(t[0], t[1], strict=True):
                ra, rc, ga, gc = root[a], root[c], gain[a], gain[c]
                a_free, c_free = ra < n_free, rc < n_free
                if a_free and c_free:
                    coupled = True
                elif a_free:  # ga·z ≤ gc·ref
                    b_node.append(ra), b_ref.append(rc), b_scale.append(gc / ga)
                    b_upper.append(ga > 0)
                elif c_free:  # ga·ref ≤ gc·z
                    b_node.append(rc), b_ref.append(ra), b_scale.append(ga / gc)
                    b_upper.append(gc < 0)
    return Topology(
        elements,
        terminals,
        energy_weights,
        names,
        input_names,
        outputs,
        out_idx,
        free,
        root,
        gain,
        node_weight,
        (b_node, b_ref, b_scale, b_upper),
        coupled,
    )
