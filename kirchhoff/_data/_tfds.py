"""The tensorflow-datasets loader: array_record data sources need no TensorFlow, but
preparing one downloads the data, so the download host is probed first."""

import os
import socket
import urllib.parse

import numpy as np

from ._dataset import IMAGE_SIDE, Dataset
from ._errors import DatasetNotFoundError, IdxFormatError
from ._idx import _as_float_images, _checked_labels

_PROBE_TIMEOUT_S = 3.0


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
