"""Published device parameter sets, as presets of ``PulsedDevice``.

Each preset records what its source publishes, checked against that source (cited beside
it; see ``notes`` for what was found where). Conductances are relative: a preset fixes the
on/off ratio g_max/g_min, the response (levels, nonlinearity, asymmetry) and the noise, and
``device_preset`` places it at the g_max the network needs (the circuit's potentials do not
change when every conductance, bias and nudge is scaled by one factor).

Conversions, so that one definition of each non-ideality serves every preset:
- NeuroSim's cycle-to-cycle σ is a fraction of (G_max − G_min) per √pulse; ``PulsedDevice``
  takes the write noise relative to a pulse's step, so σ_w = σ_CtoC·P_max (the same spread
  for a nominal step, range/P_max; smaller where a nonlinear step is smaller);
- NeuroSim draws its device-to-device variation on NL; here it is on the step and bounds;
- aihwkit's ``dw_min_std`` is already relative to the step (σ_w = dw_min_std), its
  ``dw_min_dtod`` the device-to-device spread of the step (``d2d_step``); aihwkit's weights
  [w_min, w_max] map linearly onto [g_min, g_max] with g_min = 0 (aihwkit models no off state).
"""

import dataclasses
from collections.abc import Callable

from .._data._errors import InvalidInputError
from ._pulsed import PulsedDevice
from ._responses import ExpStepResponse, NeuroSimResponse, SoftBoundsResponse


@dataclasses.dataclass(frozen=True)
class Preset:
    """A published device: its response, on/off ratio (inf: g_min = 0), noise and spread
    in ``PulsedDevice``'s terms, and where each number comes from."""

    response: Callable[[], object]
    on_off: float
    source: str
    write_noise: float = 0.0
    read_noise: float = 0.0
    d2d_step: float = 0.0
    d2d_bounds: float = 0.0
    stuck_fraction: float = 0.0
    max_pulses: int | None = None
    notes: str = ""


_NEUROSIM = "NeuroSim V3.0 user manual, Table II (benchmark at 32 nm); MLP_NeuroSim V3.0 Cell.cpp"
_AIHWKIT = "aihwkit src/aihwkit/simulator/presets/devices.py (IBM/aihwkit 4545f11)"

DEVICE_PRESETS: dict[str, Preset] = {
    "epiram": Preset(
        response=lambda: NeuroSimResponse(64, 64, 0.5, -0.5),
        on_off=1.2346e-5 / 2.459e-7,
        write_noise=0.02 * 64,
        source=f"EpiRAM (SiGe epitaxial RAM): {_NEUROSIM}: 64 levels, NL 0.5/−0.5, "
        "G 1.2346e-5/2.459e-7 S, cycle-to-cycle 2 %",
    ),
    "ag-a-si": Preset(
        response=lambda: NeuroSimResponse(97, 100, 2.4, -4.88),
        on_off=3.8462e-8 / 3.0769e-9,
        write_noise=0.035 * 97,
        source=f"Ag:a-Si: {_NEUROSIM} (Cell.cpp's RealDevice defaults): 97/100 levels, NL "
        "2.4/−4.88, G 3.8462e-8/3.0769e-9 S, cycle-to-cycle 3.5 %",
    ),
    "alox-hfo2": Preset(
        response=lambda: NeuroSimResponse(40, 40, 1.94, -0.61),
        on_off=5.917e-5 / 1.336e-5,
        write_noise=0.05 * 40,
        source=f"AlOx/HfO2: {_NEUROSIM}: 40 levels, NL 1.94/−0.61, G 5.917e-5/1.336e-5 S, "
        "cycle-to-cycle 5 %",
    ),
    "taox-hfox": Preset(
        response=lambda: NeuroSimResponse(128, 128, 0.04, -0.63),
        on_off=1e-5 / 1e-6,
        write_noise=0.037 * 128,
        source=f"TaOx/HfOx: {_NEUROSIM}: 128 levels, NL 0.04/−0.63, G 1e-5/1e-6 S, "
        "cycle-to-cycle 3.7 %",
    ),
    "reram-es": Preset(
        response=lambda: ExpStepResponse(
            dw_min=0.00135,
            up_down=0.259359,
            a_up=-1.18445,
            a_down=-0.081404,
            gamma_up=5.0,
            gamma_down=5.0,
            a=-0.5,
            b=-0.5,
        ),
        on_off=float("inf"),
        write_noise=5.0,
        d2d_step=0.2,
        d2d_bounds=0.15,
        source="ReRamESPresetDevice, exponential step fit to Gong et al., Nat. Commun. 9, "
        f"2102 (2018): {_AIHWKIT}",
        notes="w_max_dtod 0.3 on a weight span of 2 is 0.15 of g_max; aihwkit's "
        "write_noise_std 75 (a non-accumulating noise on the displayed weight) and "
        "up_down_dtod 0.05 are not modelled",
    ),
    "reram-sb": Preset(
        response=lambda: SoftBoundsResponse(dw_min=0.002, up_down=0.0, w_min=-0.75, w_max=1.25),
        on_off=float("inf"),
        write_noise=3.75,
        d2d_step=0.3,
        d2d_bounds=0.15,
        source=f"ReRamSBPresetDevice, soft bounds loosely fit to Gong et al. 2018: {_AIHWKIT}",
        notes="aihwkit's cycle-to-cycle noise here is additive (not proportional to the "
        "step); write_noise_std 56 and the reference device are not modelled",
    ),
    "reram-om": Preset(
        response=lambda: SoftBoundsResponse(dw_min=0.0949, w_min=-1.0, w_max=1.0),
        on_off=float("inf"),
        write_noise=0.4158,
        d2d_step=0.7829,
        d2d_bounds=0.17,
        source="ReRamArrayOMPresetDevice (Gong & Rasch et al., IEDM 2022, optimised "
        f"material array): {_AIHWKIT}",
        notes="dw_min_dtod log-normal; corrupt (stuck) devices 13.48 % measured but off in "
        "aihwkit's preset (off here too: set stuck_fraction to use it)",
    ),
    "reram-hfo2": Preset(
        response=lambda: SoftBoundsResponse(dw_min=0.4622, w_min=-1.0, w_max=1.0),
        on_off=float("inf"),
        write_noise=0.2174,
        d2d_step=0.7125,
        d2d_bounds=0.21,
        source="ReRamArrayHfO2PresetDevice (Gong & Rasch et al., IEDM 2022, baseline HfO2 "
        f"array): {_AIHWKIT}",
        notes="dw_min_dtod log-normal; corrupt devices 9.77 % measured, off in the preset",
    ),
}
"""The published devices [`device_preset`][kirchhoff.device_preset] builds, by name:

- NeuroSim V3.0's benchmark devices (nonlinear pulse response,
  [`NeuroSimResponse`][kirchhoff.NeuroSimResponse]; cycle-to-cycle write noise): ``"epiram"``,
  ``"ag-a-si"``, ``"alox-hfo2"``, ``"taox-hfox"``;
- aihwkit's ReRAM presets, with device-to-device variation: ``"reram-es"`` (exponential step,
  [`ExpStepResponse`][kirchhoff.ExpStepResponse]), ``"reram-sb"``, ``"reram-om"``,
  ``"reram-hfo2"`` (soft bounds, [`SoftBoundsResponse`][kirchhoff.SoftBoundsResponse]).

Each value records, in [`PulsedDevice`][kirchhoff.PulsedDevice]'s terms, what its source
publishes: ``response`` (a function that builds the pulse response), ``on_off`` (the ratio
g_max/g_min; inf for g_min = 0), ``write_noise``, ``read_noise``, ``d2d_step``,
``d2d_bounds``, ``stuck_fraction``, ``max_pulses``, and ``source`` and ``notes``: where each
number comes from and what is not modelled. Conductances are relative: a preset fixes the
on/off ratio, the response and the noise, not g_max.
"""
_LOGNORMAL = {"reram-om", "reram-hfo2"}


def device_preset(name: str, g_max: float, seed: int = 0, **overrides) -> PulsedDevice:
    """A published device as a [`PulsedDevice`][kirchhoff.PulsedDevice], with its range's top
    at ``g_max``.

    A preset fixes what is relative: the on/off ratio (so g_min = g_max / on_off), the pulse
    response, the noise and the device-to-device spread. ``g_max`` places it at the
    conductances the network needs (a circuit's potentials do not change when every
    conductance, bias current and nudge is scaled by one factor).

    Args:
        name: The device, a key of [`DEVICE_PRESETS`][kirchhoff.DEVICE_PRESETS] (e.g.
            ``"epiram"``, ``"reram-sb"``).
        g_max: The top of the conductance range (siemens, > 0).
        seed: The integer seed the device-to-device variation is drawn from.

    Keyword Args:
        **overrides: Replace any other [`PulsedDevice`][kirchhoff.PulsedDevice] field, e.g.
            ``write_noise=0.0`` to switch one non-ideality off.

    Returns:
        The device, a [`PulsedDevice`][kirchhoff.PulsedDevice] named ``name``.

    Raises:
        kirchhoff.InvalidInputError: For an unknown ``name`` or a field value out of range.
        TypeError: For an override that is not a field of
            [`PulsedDevice`][kirchhoff.PulsedDevice].

    Examples:
        Four nominal pulses up move a nonlinear device further near the bottom of its range
        than near the top:

        >>> import jax.numpy as jnp
        >>> import kirchhoff as kh
        >>> dev = kh.device_preset("epiram", g_max=1e-3, write_noise=0.0)
        >>> print(f"{dev.g_min:.3g}")  # g_max / on-off ratio, siemens
        1.99e-05
        >>> g = dev.initial_state(jnp.array([dev.g_min, 5e-4, 9e-4]))
        >>> four = 4 * (dev.g_max - dev.g_min) / 64  # 64 pulses cross the range
        >>> dg = dev.program(g, jnp.full(3, four)) - g
        >>> print(" ".join(f"{1e6 * float(d):.0f}" for d in dg))  # microsiemens
        73 62 52
    """
    if name not in DEVICE_PRESETS:
        raise InvalidInputError(
            f"unknown device preset {name!r}: choose one of {sorted(DEVICE_PRESETS)}."
        )
    p = DEVICE_PRESETS[name]
    fields = dict(
        g_min=0.0 if p.on_off == float("inf") else g_max / p.on_off,
        response=p.response(),
        write_noise=p.write_noise,
        read_noise=p.read_noise,
        d2d_step=p.d2d_step,
        d2d_bounds=p.d2d_bounds,
        stuck_fraction=p.stuck_fraction,
        d2d_lognormal=name in _LOGNORMAL,
        max_pulses=p.max_pulses,
        seed=seed,
        name=name,
    )
    return PulsedDevice(g_max, **{**fields, **overrides})
