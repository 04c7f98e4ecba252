"""What the SPICE exporter, importer and runner agree on: physical constants, the ideal-diode
model, the default ngspice options and the annotation comments that carry kirchhoff's names."""

import math
import re

import numpy as np

# ngspice-39's constants (src/include/ngspice/const.h, CODATA 2014): its thermal voltage is
# CONSTKoverQ · (temp + CONSTCtoK) with CONSTKoverQ = CONSTboltz / CHARGE
BOLTZMANN = 1.38064852e-23
ELEMENTARY_CHARGE = 1.6021766208e-19
K_OVER_Q = BOLTZMANN / ELEMENTARY_CHARGE
CELSIUS_TO_KELVIN = 273.15
SPICE_DEFAULT_CELSIUS = 27.0

# An ideal diode is exported as this steep Shockley diode, and a diode of this model name is
# imported as an IdealDiode: n·V_T ≈ 26 µV, so it drops < 1 mV up to amperes of forward
# current and leaks 1 pA in reverse
IDEAL_DIODE_MODEL = "kirchhoff_ideal"
IDEAL_DIODE_IS = 1e-12
IDEAL_DIODE_N = 1e-3

DEFAULT_OPTIONS: dict[str, float | int] = {
    "reltol": 1e-9,  # relative tolerance on node voltages and device currents
    "abstol": 1e-15,  # amperes
    "vntol": 1e-12,  # volts
    "gmin": 1e-15,  # siemens, ngspice's conductance across every pn junction
    "itl1": 1000,  # Newton iterations for an operating point
    "itl2": 1000,  # Newton iterations per point of a DC sweep
}
"""The ngspice ``.options`` used by default: tight tolerances, so that ngspice's operating point
agrees with kirchhoff's to well under a microvolt."""

ANNOTATION = "*@kirchhoff"
"""Prefix of the comment lines in which an exported netlist keeps kirchhoff's node names, inputs,
outputs and element groups; SPICE simulators read them as comments."""

GROUND = "0"
GROUND_ALIASES = ("0", "gnd")  # ngspice reads both as its reference node


def thermal_voltage(celsius: float) -> float:
    """ngspice's thermal voltage k·T/q at ``celsius`` degrees, in volts."""
    return K_OVER_Q * (celsius + CELSIUS_TO_KELVIN)


def celsius_for(thermal_volts: float) -> float:
    """The temperature (°C) at which ngspice's thermal voltage is ``thermal_volts``: the shortest
    decimal that maps back to exactly the same float when there is one."""
    guess = thermal_volts / K_OVER_Q - CELSIUS_TO_KELVIN
    for digits in range(0, 18):
        t = round(guess, digits)
        if thermal_voltage(t) == thermal_volts:
            return t
    for direction in (math.inf, -math.inf):
        t = guess
        for _ in range(256):
            if thermal_voltage(t) == thermal_volts:
                return t
            t = math.nextafter(t, direction)
    return guess


def format_value(x: float) -> str:
    """A float as SPICE reads it, with every digit needed to read back the same float."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"kirchhoff SPICE export: cannot write the value {x!r} in a netlist.")
    return repr(x)


def concrete(x, what: str) -> np.ndarray:
    """An element parameter as a NumPy array; an error under jit, where it has no value yet."""
    try:
        return np.asarray(x, dtype=np.float64)
    except Exception:  # a tracer
        raise ValueError(
            f"kirchhoff SPICE export: {what} is traced (inside jit/vmap/grad); export a circuit "
            "whose parameters are concrete arrays."
        ) from None


_UNSAFE = re.compile(r"[^a-z0-9_]")


def _flat(name) -> str:
    if isinstance(name, tuple):
        return "_".join(_flat(n) for n in name)
    return str(name)


def sanitize(name) -> str:
    """A SPICE-safe spelling of a kirchhoff node name: lower case, letters, digits and '_'
    (a tuple's parts joined by '_')."""
    text = re.sub("_+", "_", _UNSAFE.sub("_", _flat(name).lower())).strip("_")
    return text or "n"
