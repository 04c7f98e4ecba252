"""The jit-compiled training step, and prediction and evaluation with a trained network."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._cost import squared_error
from .._data import Dataset
from .._data._errors import InvalidInputError, InvalidInputTypeError
from .._layered import LayeredNetwork
from .._layered._checks import check_int
from .._layered._network import _replaced
from .._layered._power import eqprop_phase_powers, phase_power
from .._learning._autodiff import implicit_gradient
from .._learning._clamped import layered_contrastive_gradient, layered_coupled_gradient
from .._learning._layered import (
    check_batch,
    init_layers,
    layered_backprop_gradient,
    layered_eqprop_gradient,
)
from .._solver._base import Status
from .._solver._bcd import BlockCoordinateDescent
from .._solver._sweeps import input_drive, layer_terms, run_sweeps
from ._config import TrainConfig
from ._parallel import batch_sharded, data_mesh, replicated, to_sharding


def _variant(algorithm):
    return "centered" if algorithm in ("eqprop", "eqprop-centered") else algorithm.split("-")[1]


class StepInfo(eqx.Module):
    """What a training step reports besides the new parameters (batched over examples).

    Each phase's status and residual are rows of one array (one device buffer each, not one
    per phase: a small step's dispatch cost grows with its outputs); ``phases`` names the
    rows: ``("free", "positive", "negative")`` for centered EqProp, ``("free", "positive")``
    or ``("free", "negative")`` for the one-sided variants, ``("free", "clamped")`` for
    coupled and contrastive learning, ``("free",)`` for backprop and implicit.

    Attributes:
        loss: the mean loss ½‖v_out − y‖² (volts²) of the examples trained on (without those
            ``on_unconverged="skip"`` left out), a scalar.
        outputs: the free phase's output potentials (volts), shape ``(batch, n_outputs)``.
        status: each phase's [`Status`][kirchhoff.Status] per example, shape
            ``(phase, batch)``.
        residual: each phase's largest KCL residual per example (amperes; for a swept phase
            a certified upper bound), shape ``(phase, batch)``.
        converged: ``status == Status.SUCCESS``, booleans of shape ``(phase, batch)``
            (computed in the step, so the loop reads booleans rather than dispatching a
            comparison per step).
        phases: the rows' phase names (static).
        power: watts dissipated per example in each phase, shape ``(phase, batch)``, when
            the config sets ``phase_duration``; else None.
    """

    loss: jax.Array  # mean loss of the examples trained on
    outputs: jax.Array  # free-phase output potentials (batch, n_outputs)
    status: Status  # (phase, batch): each phase's Status per example
    residual: jax.Array  # (phase, batch): max |KCL| per example, amperes (a bound; see phases)
    # (phase, batch): status == SUCCESS, computed in the step, so the loop reads booleans
    # rather than dispatching a comparison per step
    converged: jax.Array
    phases: tuple[str, ...] = eqx.field(static=True)  # the rows' phase names
    power: jax.Array | None = None  # (phase, batch): watts dissipated per example, or None

    def phase(self, name: str):
        """``(status, residual)`` of one phase, each of shape ``(batch,)``.

        Args:
            name: one of ``phases`` (``"free"``, ``"positive"``, ``"negative"``,
                ``"clamped"``); another raises ValueError.

        Returns:
            The phase's [`Status`][kirchhoff.Status] per example and its residual (amperes).
        """
        i = self.phases.index(name)
        return jax.tree.map(lambda s: s[i], self.status), self.residual[i]


def make_train_step(cfg: TrainConfig, static, optimizer, donate: bool = False, devices=None):
    """A jit-compiled training step on a batch, as [`train`][kirchhoff.train] runs it.

    The step is ``step(params, opt_state, x, y, key=None) → (params, opt_state, info)``:
    ``params`` the network's trainable part (``eqx.partition(net, net.trainable_filter())``),
    ``opt_state`` the optimiser's state for them, ``x`` a batch of inputs
    ``(batch, n_inputs)``, ``y`` its targets ``(batch, n_outputs)`` (one-hot rows,
    [`one_hot`][kirchhoff.one_hot]), ``key`` a JAX PRNG key, and ``info`` a
    [`StepInfo`][kirchhoff.StepInfo] with every phase's status. The phases see the
    conductances the network's device reads (``key`` split between the read and the write;
    None only for a device that draws nothing: no read or write noise, no stochastic
    rounding), the rule's gradient (``cfg.algorithm``) goes through the optimiser (scaled by
    ``cfg.layer_lr``), and its update, in conductance, is programmed into the state by the
    device (the ideal device: add, clip to [0, g_max]).

    Args:
        cfg: the [`TrainConfig`][kirchhoff.TrainConfig]: the algorithm, ``beta``, ``eta``,
            ``n_sweeps``, ``phase_rtol``, ``on_unconverged``, ``layer_lr`` and
            ``phase_duration`` are read from it.
        static: the network's non-trainable part, the second half of
            ``eqx.partition(net, net.trainable_filter())``; it is closed over (compiled in).
        optimizer: an ``optax.GradientTransformation``, e.g. from
            [`build_optimizer`][kirchhoff.build_optimizer].
        donate: reuse the buffers of the ``params`` and ``opt_state`` it is given for the
            ones it returns ([`train`][kirchhoff.train] does: 1.2× the examples/s of DRN-1H
            at batch 4, ``benchmarks/throughput.py``); those arrays, and any network that
            shares them, are then deleted: use it only in a loop that carries the returned
            state.
        devices: None: compile for one device, as JAX places the arrays. An int n (the
            first n of ``jax.devices()``) or a list of devices: data-parallel, the batch's
            rows split across them (``x``'s first dimension must be a multiple of their
            number) and ``params`` and ``opt_state`` replicated on each; the step returns
            them replicated, and ``info`` whole. The numbers are the unsharded step's up to
            floating-point summation order. Across hosts (after
            ``jax.distributed.initialize()``), every process calls the step with the same
            global batch.

    Returns:
        The compiled step function described above.

    Raises:
        InvalidInputError: ``devices`` more than JAX sees, or a batch that does not split
            over them.
    """
    skip = cfg.on_unconverged == "skip"

    # what devices drew per device (variation, stuck cells) is passed to the compiled step, not
    # closed over: a closed-over array is embedded in the program as a constant
    cells = static.cells if any(c is not None for c in static.cells) else None
    if cells is not None:
        static = _replaced(static, cells=(None,) * len(cells))

    def step(params, opt_state, x, y, key=None, cells=None):
        if cells is None:
            state = eqx.combine(params, static)
        else:  # the trainable part carries the cells' (empty) structure: put them back
            blank = (None,) * len(cells)
            state = _replaced(eqx.combine(_replaced(params, cells=blank), static), cells=cells)
        read_key, write_key = (None, None) if key is None else jax.random.split(key)
        net = state.read(read_key)
        ph = None  # the phases' potentials, for the rules that keep them
        if cfg.algorithm.startswith("eqprop"):
            # the phases read the state themselves: afresh for each phase with read noise
            grads, loss, ph = layered_eqprop_gradient(
                state,
                x,
                y,
                cfg.beta,
                cfg.n_sweeps,
                _variant(cfg.algorithm),
                rtol=cfg.phase_rtol,
                skip_unconverged=skip,
                key=read_key,
            )
            phases, out = ph.equilibria(), ph.free[-1]
        elif cfg.algorithm in ("coupled", "contrastive"):
            rule = dict(rtol=cfg.phase_rtol, skip_unconverged=skip, key=read_key)
            if cfg.algorithm == "coupled":
                grads, loss, ph = layered_coupled_gradient(
                    state, x, y, cfg.eta, cfg.n_sweeps, **rule
                )
            else:
                grads, loss, ph = layered_contrastive_gradient(state, x, y, cfg.n_sweeps, **rule)
            phases, out = ph.equilibria(), ph.free[-1]
        elif cfg.algorithm == "backprop":
            grads, loss, eq = layered_backprop_gradient(net, x, y, cfg.n_sweeps, cfg.phase_rtol)
            phases, out = {"free": eq}, net.output_potentials(eq.free, x)
        else:  # implicit differentiation of the converged equilibrium
            solver = BlockCoordinateDescent()
            grads = implicit_gradient(net, solver, x, y)
            eq = solver.solve(net, x)
            out = net.output_potentials(eq.free, x)
            loss = jnp.mean(squared_error(out, y))
            phases = {"free": eq}
        power = None
        if cfg.phase_duration is not None:
            powers = _phase_powers(cfg, net, x, y, ph, phases)
            power = jnp.stack([powers[name].dissipated for name in phases])
        # the gradient in conductance, shaped like the state's trainable part
        grads = eqx.tree_at(lambda p: (p.weights, p.biases), params, (grads.weights, grads.biases))
        updates, opt_state = optimizer.update(grads, opt_state, params)
        if cfg.layer_lr is not None:
            updates = eqx.tree_at(
                lambda u: (u.weights, u.biases),
                updates,
                (
                    tuple(s * u for s, u in zip(cfg.layer_lr, updates.weights, strict=True)),
                    tuple(s * u for s, u in zip(cfg.layer_lr, updates.biases, strict=True)),
                ),
            )
        params, _ = eqx.partition(state.programmed(updates, write_key), state.trainable_filter())
        info = StepInfo(
            loss=loss,
            outputs=out,
            status=jax.tree.map(lambda *s: jnp.stack(s), *(eq.status for eq in phases.values())),
            residual=jnp.stack([eq.residual for eq in phases.values()]),
            converged=jnp.stack([eq.status == Status.SUCCESS for eq in phases.values()]),
            phases=tuple(phases),
            power=power,
        )
        return params, opt_state, info

    donated = (0, 1) if donate else ()
    if devices is not None:
        return _data_parallel(step, cells, donated, data_mesh(devices))
    # jax.jit with the static part closed over: less per-call dispatch work than filter_jit
    jitted = jax.jit(step, donate_argnums=donated)
    if cells is None:
        return jitted
    return lambda params, opt_state, x, y, key=None: jitted(params, opt_state, x, y, key, cells)


def _data_parallel(step, cells, donated, mesh):
    """``step`` compiled for a batch sharded over ``mesh`` and everything else replicated."""
    rep, rows = replicated(mesh), batch_sharded(mesh)
    n = mesh.devices.size
    jitted = jax.jit(
        step,
        in_shardings=(rep, rep, rows, rows, rep, rep),
        out_shardings=rep,
        donate_argnums=donated,
    )
    cells = to_sharding(cells, rep)

    def sharded_step(params, opt_state, x, y, key=None):
        if np.shape(x)[0] % n:
            raise InvalidInputError(
                f"make_train_step: a batch of {np.shape(x)[0]} does not split over {n} devices"
            )
        params, opt_state, key = to_sharding((params, opt_state, key), rep)
        x, y = to_sharding((x, y), rows)
        return jitted(params, opt_state, x, y, key, cells)

    return sharded_step


def _phase_powers(cfg, net, x, y, ph, phases) -> dict:
    """Each phase's power budget (``_power``), by phase name, at the
    conductances ``net`` presents (one read: with read noise each phase saw its own, and its
    power differs from this by the noise's share)."""
    if cfg.algorithm.startswith("eqprop"):
        return eqprop_phase_powers(net, x, y, cfg.beta, ph.free[1:], ph.positive, ph.negative)
    if cfg.algorithm in ("coupled", "contrastive"):
        layers = [v + d for v, d in zip(ph.free[1:], ph.clamped, strict=True)]
        # the clamps inject what holds the outputs: the outputs' KCL residual S·v − R
        s, r = layer_terms(net, [None, *layers], net.n_layers, None, y, 0.0)
        held = s * layers[-1] - r
        return {
            "free": phase_power(net, x, ph.free[1:]),
            "clamped": phase_power(net, x, layers, held),
        }
    return {"free": phase_power(net, x, net.split(phases["free"].free))}


def predict(net: LayeredNetwork, x, n_sweeps: int, key=None):
    """Output potentials of the free phase after ``n_sweeps`` sweeps, with the conductances
    ``net.read(key)`` presents.

    The sweeps start from every free node at 0 V (within its diodes' bounds), as a training
    step's free phase does, so the result approaches the equilibrium as ``n_sweeps`` grows;
    the predicted class is the largest output.

    Args:
        net: a [`LayeredNetwork`][kirchhoff.LayeredNetwork].
        x: inputs, shape ``(batch, n_inputs)`` or ``(n_inputs,)`` (features, e.g. pixels in
            [0, 1]; the sources apply ±``input_gain``·x volts).
        n_sweeps: block-coordinate sweeps, ≥ 1.
        key: a JAX PRNG key for a device with read noise; None: read without noise.

    Returns:
        The output potentials (volts), shape ``(batch, n_outputs)`` (``(n_outputs,)`` for
            one example).

    Raises:
        InvalidInputError: ``x`` of the wrong shape or not finite, or ``n_sweeps`` < 1.
    """
    x, _ = check_batch("predict", net, x, batched=False)
    check_int("predict", "n_sweeps", n_sweeps, at_least=1)
    net = net.read(key)
    layers = run_sweeps(
        net,
        init_layers(net, x),
        input_drive(net, x),
        jnp.zeros((*x.shape[:-1], net.n_outputs), x.dtype),
        0.0,
        n_sweeps,
    )
    return layers[-1]


_predict_jit = eqx.filter_jit(predict)


def _check_evaluation(net, data, n_sweeps, batch_size) -> None:
    who = "evaluate"
    if not isinstance(net, LayeredNetwork):
        raise InvalidInputTypeError(
            f"{who}: net must be a LayeredNetwork; got {type(net).__name__}."
        )
    if not isinstance(data, Dataset):
        raise InvalidInputTypeError(
            f"{who}: data must be a kirchhoff Dataset (load_dataset(...)); got "
            f"{type(data).__name__}."
        )
    check_int(who, "n_sweeps", n_sweeps, at_least=1)
    check_int(who, "batch_size", batch_size, at_least=1)
    if len(data) == 0:
        raise InvalidInputError(f"{who}: the dataset {data.name} ({data.split}) is empty.")
    if data.images.shape[1] != net.n_inputs:
        raise InvalidInputError(
            f"{who}: the network takes {net.n_inputs} features, but {data.name} has "
            f"{data.images.shape[1]} per example."
        )
    top = int(np.max(data.labels))
    if top >= net.n_outputs:
        raise InvalidInputError(
            f"{who}: {data.name} has labels up to {top}, but the network has only "
            f"{net.n_outputs} outputs (one per class)."
        )


def evaluate(net: LayeredNetwork, data: Dataset, n_sweeps: int = 8, batch_size: int = 1000) -> dict:
    """Mean loss and classification error of ``net`` on ``data``, in batches.

    Each example's output is [`predict`][kirchhoff.predict]'s after ``n_sweeps`` sweeps
    (without read noise); its loss is ½‖v_out − y‖² against the one-hot target y, and it is
    wrong when its largest output is not its label.

    Args:
        net: a [`LayeredNetwork`][kirchhoff.LayeredNetwork] with ``n_inputs`` equal to the
            data's features and at least one output per class.
        data: a [`Dataset`][kirchhoff.Dataset] (e.g. from
            [`load_dataset`][kirchhoff.load_dataset]), not empty.
        n_sweeps: sweeps of the free phase, ≥ 1.
        batch_size: examples per compiled call, ≥ 1 (memory, not the result).

    Returns:
        ``{"loss": mean loss (volts²), "error_percent": the percentage misclassified}``.

    Raises:
        InvalidInputError: data that does not fit the network, an empty dataset, or a bad
            count (an [`InvalidInputTypeError`][kirchhoff.InvalidInputTypeError] for a
            ``net`` or ``data`` of the wrong type).
    """
    _check_evaluation(net, data, n_sweeps, batch_size)
    dtype = net.weights[0].dtype
    wrong, loss, n = 0, 0.0, len(data)
    for start in range(0, n, batch_size):
        x = jnp.asarray(data.images[start : start + batch_size], dtype)
        labels = data.labels[start : start + batch_size]
        out = np.asarray(_predict_jit(net, x, n_sweeps))
        y = np.eye(net.n_outputs)[labels]
        loss += float(np.sum(squared_error(out, y)))
        wrong += int(np.sum(np.argmax(out, -1) != labels))
    return {"loss": loss / n, "error_percent": 100.0 * wrong / n}
