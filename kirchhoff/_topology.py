"""Circuit topology, compiled once from the elements: node numbering, held, driven and free
nodes, the energy weight of each amplifier domain, floating-node checks, and bounded elements
(ideal diodes) as bounds. A pure function of the elements' terminals and roles; no parameter
values are read except static ones (amplifier gains, bounds' maximum drops)."""

import dataclasses
from collections.abc import Hashable, Sequence

import jax.numpy as jnp
import numpy as np

from ._custom_types import NodeRef
from ._elements import (
    AbstractBounded,
    AbstractDissipative,
    AbstractDriven,
    AbstractElement,
    AbstractHeld,
    AbstractSource,
)

# the roles that put terms in the energy, and those whose elements join two nodes into one
# energy domain (no amplifier between them) or give a node a path to a held one
ENERGY_ROLES = (AbstractDissipative, AbstractSource)
_DOMAIN_ROLES = (AbstractDissipative, AbstractBounded)
_ANCHOR_ROLES = (AbstractDissipative, AbstractDriven)


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
    bounds: tuple  # (node, ref, scale, offset, upper) lists: bounded elements to held nodes
    coupled: bool  # a bounded element joins two free nodes


def held_order(elements: Sequence[AbstractElement]) -> list[tuple[int, AbstractHeld]]:
    """(index, element) of the held elements in the order of their slots: those that take
    inputs (in element order, sharing out the inputs vector), then the others."""
    held = [(i, e) for i, e in enumerate(elements) if isinstance(e, AbstractHeld)]
    return [h for h in held if h[1].input_names()] + [h for h in held if not h[1].input_names()]


def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _union(parent, i, j):
    ri, rj = _find(parent, i), _find(parent, j)
    if ri != rj:
        parent[max(ri, rj)] = min(ri, rj)


def _pairs(elements, terminals, roles):
    """(element, first terminal node, second terminal node) of the elements of ``roles``."""
    for e, t in zip(elements, terminals, strict=True):
        if isinstance(e, roles):
            for a, c in zip(t[0], t[1], strict=True):
                yield e, int(a), int(c)


def _number_nodes(elements, nodes) -> dict[Hashable, int]:
    names: dict[Hashable, int] = {}
    if nodes is None:
        for e in elements:
            for term in e.terminal_names():
                for n in term:
                    names.setdefault(n, len(names))
        return names
    for n in nodes:
        if n in names:
            raise ValueError(f"Circuit: node {n!r} is listed twice in `nodes`.")
        names[n] = len(names)
    return names


def _index(names, n, what) -> int:
    try:
        return names[n]
    except (KeyError, TypeError):
        raise ValueError(
            f"Circuit: {what} refers to unknown node {n!r}; known nodes are "
            f"{list(names)[:20]}{'...' if len(names) > 20 else ''}."
        ) from None


def _terminals(elements, names) -> list[np.ndarray]:
    out = []
    for e in elements:
        rows = e.terminal_names()
        idx = [[_index(names, n, type(e).__name__) for n in term] for term in rows]
        out.append(np.array(idx, dtype=np.int64).reshape(len(rows), e.size))
    return out


def _held_nodes(elements, terminals, names) -> tuple[dict[int, int], list]:
    """Held node → its slot (in :func:`held_order`), and the input names in input order."""
    node_names = list(names)
    held_slot: dict[int, int] = {}
    input_names = []
    for i, e in held_order(elements):
        for n in terminals[i].reshape(-1):
            if int(n) in held_slot:
                raise ValueError(f"Circuit: node {node_names[n]!r} is held by two sources.")
            held_slot[int(n)] = len(held_slot)
        input_names.extend(e.input_names())
    if not held_slot:
        raise ValueError(
            "Circuit: no node is held by a source; add a Ground (VoltageSource at 0 V) so "
            "that potentials are defined."
        )
    return held_slot, input_names


def _driven_nodes(elements, terminals, held_slot, names) -> dict[int, tuple[int, float]]:
    """Driven node → (its source node, the gain)."""
    driven: dict[int, tuple[int, float]] = {}
    for e, t in zip(elements, terminals, strict=True):
        if not isinstance(e, AbstractDriven):
            continue
        for s, d, a in zip(t[0], t[1], e.gain, strict=True):
            d = int(d)
            if d in held_slot or d in driven:
                raise ValueError(
                    f"Circuit: node {list(names)[d]!r} is driven by an amplifier and also "
                    "held or driven elsewhere."
                )
            driven[d] = (int(s), a)
    return driven


def _roots(n_nodes, held_slot, driven):
    """Free nodes, and per node its root (free index or n_free + held slot) and gain."""
    free = [i for i in range(n_nodes) if i not in held_slot and i not in driven]
    n_free = len(free)
    root = np.zeros(n_nodes, dtype=np.int64)
    gain = np.ones(n_nodes)
    for k, n in enumerate(free):
        root[n] = k
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
    return free, root, gain


def _node_weights(elements, terminals, held_slot, driven, names) -> np.ndarray:
    """Per node, the energy weight of its domain (amplifiers rescale downstream by 1/A²)."""
    n_nodes = len(names)
    parent = list(range(n_nodes))
    for _, a, c in _pairs(elements, terminals, _DOMAIN_ROLES):
        if a not in held_slot and c not in held_slot:
            _union(parent, a, c)
    # domains containing no driven node have weight 1
    driven_domains = {_find(parent, d) for d in driven}
    dom_weight = {
        _find(parent, n): 1.0
        for n in range(n_nodes)
        if n not in held_slot and _find(parent, n) not in driven_domains
    }
    pending = dict(driven)
    for _ in range(len(pending) + 1):
        progressed = False
        for d, (s, a) in list(pending.items()):
            w_src = 1.0 if s in held_slot else dom_weight.get(_find(parent, s))
            if w_src is None:
                continue
            w, rd = w_src / a**2, _find(parent, d)
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
    return np.array(
        [1.0 if n in held_slot else dom_weight[_find(parent, n)] for n in range(n_nodes)]
    )


def _energy_weights(elements, terminals, held_slot, node_weight) -> list:
    out = []
    for e, t in zip(elements, terminals, strict=True):
        w = np.ones(e.size)
        if isinstance(e, ENERGY_ROLES):
            # an element's domain is that of any of its non-held terminals
            for row in t:
                w = np.where([int(x) not in held_slot for x in row], node_weight[row], w)
        out.append(jnp.asarray(w))
    return out


def _check_anchored(elements, terminals, held_slot, free, out_idx, names) -> None:
    """Every free node needs a conducting path to a held node; outputs must not be held."""
    node_names = list(names)
    anchor = list(range(len(names)))
    for _, a, c in _pairs(elements, terminals, _ANCHOR_ROLES):
        _union(anchor, a, c)
    anchored = {_find(anchor, n) for n in held_slot}
    floating = [node_names[n] for n in free if _find(anchor, n) not in anchored]
    if floating:
        raise ValueError(
            f"Circuit: node(s) {floating[:10]} float: no path of resistors or diodes joins "
            "them to a held node (ground, a rail or an input), so their potential is undefined."
        )
    for n in out_idx:
        if int(n) in held_slot:
            raise ValueError(f"Circuit: output node {node_names[n]!r} is held by a source.")


def _bounds(elements, terminals, root, gain, n_free) -> tuple[tuple, bool]:
    """Bounded elements as bounds ``z ≤ scale·ref + offset`` (or ≥) on free potentials."""
    rows, coupled = [], False  # (node, ref, scale, offset, upper) per bound
    for e, t in zip(elements, terminals, strict=True):
        if not isinstance(e, AbstractBounded):
            continue
        caps = np.broadcast_to(np.asarray(e.max_drop(), dtype=float), (e.size,))
        for a, c, m in zip(t[0], t[1], caps, strict=True):
            ra, rc, ga, gc = root[a], root[c], gain[a], gain[c]
            a_free, c_free = ra < n_free, rc < n_free
            if a_free and c_free:
                coupled = True
            elif a_free:  # ga·z ≤ gc·ref + m
                rows.append((ra, rc, gc / ga, m / ga, ga > 0))
            elif c_free:  # ga·ref − m ≤ gc·z
                rows.append((rc, ra, ga / gc, -m / gc, gc < 0))
    return tuple(list(col) for col in zip(*rows, strict=True)) or ([], [], [], [], []), coupled


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
    names = _number_nodes(elements, nodes)
    terminals = _terminals(elements, names)
    outputs = tuple(outputs)
    out_idx = np.array([_index(names, n, "outputs") for n in outputs], dtype=np.int64)
    held_slot, input_names = _held_nodes(elements, terminals, names)
    driven = _driven_nodes(elements, terminals, held_slot, names)
    free, root, gain = _roots(len(names), held_slot, driven)
    node_weight = _node_weights(elements, terminals, held_slot, driven, names)
    energy_weights = _energy_weights(elements, terminals, held_slot, node_weight)
    _check_anchored(elements, terminals, held_slot, free, out_idx, names)
    bounds, coupled = _bounds(elements, terminals, root, gain, len(free))
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
        bounds,
        coupled,
    )
