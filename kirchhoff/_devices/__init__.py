"""The device seam and the device models behind it (see ``_base``)."""

from ._base import AbstractDevice as AbstractDevice
from ._base import IdealDevice as IdealDevice
from ._presets import DEVICE_PRESETS as DEVICE_PRESETS
from ._presets import device_preset as device_preset
from ._pulsed import Cells as Cells
from ._pulsed import PulsedDevice as PulsedDevice
from ._responses import AbstractResponse as AbstractResponse
from ._responses import ExpStepResponse as ExpStepResponse
from ._responses import LinearResponse as LinearResponse
from ._responses import NeuroSimResponse as NeuroSimResponse
from ._responses import SoftBoundsResponse as SoftBoundsResponse
from ._responses import TableResponse as TableResponse
