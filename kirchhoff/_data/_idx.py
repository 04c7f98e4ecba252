"""IDX files (the MNIST file format): `read_idx`, `write_idx`, and the loader that finds the
four files of a dataset in a directory.

IDX: a zero word, a dtype code, the number of dims, each dim as big-endian uint32, data.
"""

import gzip
import os
import pathlib
from collections.abc import Sequence

import numpy as np

from ._dataset import DATA_DIR_ENV, IMAGE_SIDE, N_CLASSES, N_PIXELS, Dataset
from ._errors import DatasetNotFoundError, IdxFormatError, InvalidInputError

_SYSTEM_DIRS: dict[str, tuple[str, ...]] = {
    "fashion_mnist": ("/usr/share/datasets/fashion-mnist",),
}
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
    """Read an IDX file (the MNIST file format) into an array.

    IDX: two zero bytes, a type code, the number of dimensions, each dimension as a
    big-endian uint32, then the data. A gzipped file is recognised by its bytes, not its
    name.

    Args:
        path: the file, a path.

    Returns:
        A numpy array of the shape the header gives and its dtype (uint8, int8, int16,
            int32, float32 or float64) in native byte order, e.g. uint8 ``(n, 28, 28)`` for an
            images file, uint8 ``(n,)`` for a labels file.

    Raises:
        IdxFormatError: not an IDX file, a damaged gzip stream, or data that do not match
            the header.
        FileNotFoundError: no file at ``path``.
    """
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
    """Write an array as an IDX file (the MNIST file format), gzipped when ``path`` ends in
    ``.gz``; [`read_idx`][kirchhoff.read_idx] reads it back.

    Args:
        path: the file to write (replaced if it exists), a path.
        array: the array (anything numpy converts) of dtype uint8, int8, int16, int32,
            float32 or float64, with at most 255 dimensions; stored big-endian.

    Raises:
        InvalidInputError: a dtype IDX cannot store, or too many dimensions.
    """
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise InvalidInputError(
            f"IDX stores uint8, int8, int16, int32, float32 or float64, not {array.dtype}."
        )
    if array.ndim > 255:
        raise InvalidInputError(f"IDX stores at most 255 dims; got {array.ndim}.")
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
