"""fmnist_lib.data: real files, search order, every fault, CSV layout, splits, fuzzing."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from conftest import read_raw, replace_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fmnist_lib import data

# --- the real files ----------------------------------------------------------------


def test_real_files_verify_against_published_checksums(real_ds):
    assert real_ds.x_train.shape == (60_000, 28, 28) and real_ds.x_train.dtype == np.uint8
    assert real_ds.x_test.shape == (10_000, 28, 28)
    assert real_ds.md5s() == data.OFFICIAL_MD5
    assert all(info.verified for info in real_ds.files.values())
    assert np.bincount(real_ds.y_train).tolist() == [6000] * 10


def test_caller_directory_comes_first(real_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tmp_path / "elsewhere"))
    ds = data.load_fashion_mnist(real_dir)
    assert ds.source == "argument"
    assert ds.files["train_images"].path == str(real_dir / data.FILES["train_images"])


def test_environment_variable_comes_before_debian(real_dir, monkeypatch):
    monkeypatch.setenv("FMNIST_DATA_DIR", str(real_dir))
    assert data.load_fashion_mnist().source == "FMNIST_DATA_DIR"


def test_keras_cache_is_used_after_debian(real_dir, monkeypatch, tmp_path):
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    cache = tmp_path / "kh" / "datasets"
    cache.mkdir(parents=True)
    (cache / "fashion-mnist").symlink_to(real_dir)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert data.load_fashion_mnist().source == "keras-cache"


def test_download_fallback_failure_is_a_data_error(monkeypatch, tmp_path):
    import keras

    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    calls = []

    def offline():
        calls.append(1)
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(data.DataError, match="download failed: network is unreachable"):
        data.load_fashion_mnist()
    assert calls == [1]
    with pytest.raises(data.DataError, match="not found"):
        data.load_fashion_mnist(allow_download=False)
    assert calls == [1]


# --- faults, each named with its file ----------------------------------------------


def test_missing_file_is_named(real_dir):
    (real_dir / data.FILES["test_labels"]).unlink()
    with pytest.raises(data.DataError, match="missing data file.*t10k-labels-idx1-ubyte.gz"):
        data.load_fashion_mnist(real_dir)


def test_checksum_mismatch_names_the_corrupt_file(real_dir, real_ds):
    raw = bytearray(read_raw(real_ds.files["test_labels"].path))
    raw[100] = (raw[100] + 1) % 10  # still a valid label: only the checksum can tell
    replace_file(real_dir, "test_labels", bytes(raw))
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte\.gz: checksum mismatch"):
        data.load_fashion_mnist(real_dir)


def test_wrong_magic(real_dir, real_ds):
    raw = bytearray(read_raw(real_ds.files["test_labels"].path))
    raw[3] = 0x03
    replace_file(real_dir, "test_labels", bytes(raw))
    with pytest.raises(data.DataError, match="t10k-labels.*wrong magic number 0x00000803"):
        data.load_fashion_mnist(real_dir)


def test_truncated_file(real_dir, real_ds):
    raw = read_raw(real_ds.files["test_labels"].path)
    replace_file(real_dir, "test_labels", raw[:-7])
    with pytest.raises(data.DataError, match="t10k-labels.*truncated: header promises 10000"):
        data.load_fashion_mnist(real_dir)


def test_not_gzip(real_dir):
    path = real_dir / data.FILES["test_images"]
    path.unlink()
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(data.DataError, match="t10k-images.*not a readable gzip"):
        data.load_fashion_mnist(real_dir)


def test_label_out_of_range(tiny_dir):
    data.write_idx_gz(tiny_dir / data.FILES["test_labels"], np.array([0] * 9 + [10]))
    with pytest.raises(data.DataError, match="t10k-labels.*label 10 at index 9 is outside 0..9"):
        data.load_idx_dir(tiny_dir, "test", verify=False)


def test_image_label_count_mismatch(tiny_dir):
    data.write_idx_gz(tiny_dir / data.FILES["train_labels"], np.arange(19) % 10)
    with pytest.raises(data.DataError, match="train-labels.*19 labels for 20 images"):
        data.load_idx_dir(tiny_dir, "test", verify=False)


def test_wrong_image_dimensions(tmp_path):
    raw = (0x803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (1, 27, 28))
    with pytest.raises(data.DataError, match=r"image dimensions \[27, 28\]"):
        data.parse_idx(raw + bytes(27 * 28), kind="images", source="x")


def test_trailing_bytes_are_not_ignored():
    raw = (0x801).to_bytes(4, "big") + (2).to_bytes(4, "big") + bytes([1, 2, 3])
    with pytest.raises(data.DataError, match="1 unexpected bytes"):
        data.parse_idx(raw, kind="labels")


def test_synthetic_round_trip(tiny_dir):
    ds = data.load_idx_dir(tiny_dir, "test", verify=False)
    assert ds.x_train.shape == (20, 28, 28) and ds.y_test.tolist() == list(range(10))
    assert not any(info.verified for info in ds.files.values())


# --- CSV layout ----------------------------------------------------------------------


def _csv(tmp_path: Path, rows: list[str], header: str | None = None) -> Path:
    path = tmp_path / "f.csv"
    path.write_text("\n".join([header or ",".join(data.CSV_HEADER), *rows]) + "\n")
    return path


def _row(label: str = "3", pixel: str = "7") -> list[str]:
    return [label] + ["0"] * 783 + [pixel]


def test_csv_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 7).astype(np.uint8)
    data.write_csv(tmp_path / "a.csv", x, y)
    x2, y2 = data.read_csv(tmp_path / "a.csv")
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    header = (tmp_path / "a.csv").read_text().splitlines()[0]
    assert header.startswith("label,pixel1,pixel2") and header.endswith("pixel784")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 4),
    pixels=st.integers(0, 255),
    labels=st.lists(st.integers(0, 9), min_size=4, max_size=4),
    dtype=st.sampled_from(["uint8", "int64", "float64"]),
    flat=st.booleans(),
)
def test_write_csv_round_trips_every_valid_input(tmp_path_factory, n, pixels, labels, dtype, flat):
    rng = np.random.default_rng(pixels)
    x = rng.integers(0, pixels + 1, (n, 28, 28)).astype(dtype)
    y = np.asarray(labels[:n]).astype(dtype)
    path = tmp_path_factory.mktemp("w") / "x.csv"
    data.write_csv(path, x.reshape(n, 784) if flat else x, y)
    x2, y2 = data.read_csv(path)
    assert np.array_equal(x2, x) and np.array_equal(y2, y)


BAD_WRITES = {
    "float pixels in [0, 1]": (np.full((2, 28, 28), 0.5), [1, 2], "not an integer"),
    "pixel 300": (np.full((2, 28, 28), 300), [1, 2], "pixel value 300 is outside 0..255"),
    "pixel -1": (np.full((2, 28, 28), -1), [1, 2], "pixel value -1 is outside 0..255"),
    "label 12": (np.zeros((2, 28, 28), np.uint8), [1, 12], "label value 12 is outside 0..9"),
    "NaN pixel": (np.full((1, 28, 28), np.nan), [1], "not an integer"),
    "32x32 images": (np.zeros((2, 32, 32), np.uint8), [1, 2], r"shaped \(n, 28, 28\)"),
    "length mismatch": (np.zeros((3, 28, 28), np.uint8), [1, 2], "3 images need 3 labels"),
    "no images": (np.zeros((0, 28, 28), np.uint8), [], "no images"),
    "text labels": (np.zeros((1, 28, 28), np.uint8), ["3"], "must be integers"),
    "boolean pixels": (np.ones((1, 28, 28), bool), [3], "must be integers"),
}


@pytest.mark.parametrize("case", list(BAD_WRITES))
def test_write_csv_refuses_what_read_csv_would_refuse(tmp_path, case):
    images, labels, message = BAD_WRITES[case]
    path = tmp_path / "bad.csv"
    with pytest.raises(data.DataError, match=message):
        data.write_csv(path, images, np.asarray(labels))
    assert not path.exists()  # refused before a byte is written


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-1000, 1000)),
    where=st.sampled_from(["pixel", "label"]),
)
def test_write_csv_either_round_trips_or_refuses(tmp_path_factory, value, where):
    x = np.zeros((1, 28, 28), dtype=np.float64)
    y = np.zeros(1, dtype=np.float64)
    (x.reshape(-1) if where == "pixel" else y)[0] = value
    path = tmp_path_factory.mktemp("e") / "x.csv"
    try:
        data.write_csv(path, x, y)
    except data.DataError:
        assert not path.exists()
        high = 255 if where == "pixel" else 9
        assert not (float(value).is_integer() and 0 <= value <= high)
        return
    x2, y2 = data.read_csv(path)
    assert np.array_equal(x2, x) and np.array_equal(y2, y)


def test_csv_real_rows_match_idx(tmp_path, real_ds):
    data.write_csv(tmp_path / "real.csv", real_ds.x_test[:50], real_ds.y_test[:50])
    x, y = data.read_csv(tmp_path / "real.csv")
    assert np.array_equal(x, real_ds.x_test[:50]) and np.array_equal(y, real_ds.y_test[:50])


@pytest.mark.parametrize(
    ("row", "header", "message"),
    [
        (_row(), "label,pixel1,pixel2", "wrong header"),
        (_row()[:-1], None, "line 3 has 784 columns, expected 785"),
        (_row() + ["1"], None, "line 3 has 786 columns"),
        (_row(pixel="1.5"), None, "column pixel784: non-integer '1.5'"),
        (_row(pixel="abc"), None, "column pixel784: non-integer 'abc'"),
        (_row(pixel="NaN"), None, "column pixel784: NaN"),
        (_row(pixel=""), None, "column pixel784: NaN"),
        (_row(pixel="256"), None, "pixel784: value 256 is outside 0..255"),
        (_row(pixel="-1"), None, "pixel784: value -1 is outside 0..255"),
        (_row(label="10"), None, "label 10 is outside 0..9"),
        (_row(label="2.0"), None, "column label: non-integer '2.0'"),
    ],
)
def test_csv_faults_name_file_and_place(tmp_path, row, header, message):
    path = _csv(tmp_path, [",".join(_row()), ",".join(row)], header)
    with pytest.raises(data.DataError, match=message) as info:
        data.read_csv(path)
    assert str(path) in str(info.value)


def test_csv_missing_and_empty(tmp_path):
    with pytest.raises(data.DataError, match="file not found"):
        data.read_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(data.DataError, match="empty file"):
        data.read_csv(tmp_path / "empty.csv")


# --- fuzzing: load correctly or raise DataError, nothing else --------------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(raw=st.binary(max_size=64), kind=st.sampled_from(["images", "labels"]))
def test_fuzz_idx_bytes(raw, kind):
    try:
        out = data.parse_idx(raw, kind=kind)
    except data.DataError:
        return
    assert out.dtype == np.uint8


@FUZZ
@given(
    magic=st.sampled_from([0x801, 0x803, 0x802, 0]),
    dims=st.lists(st.integers(0, 40), min_size=1, max_size=3),
    body=st.binary(max_size=2000),
)
def test_fuzz_idx_headers(magic, dims, body):
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + body
    for kind in ("images", "labels"):
        try:
            out = data.parse_idx(raw, kind=kind)
        except data.DataError:
            continue
        assert out.shape[0] == dims[0]
        if kind == "labels":
            assert out.max(initial=0) <= 9


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_gzip_files(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fz") / "x.gz"
    path.write_bytes(blob if blob[:2] != b"\x1f\x8b" else gzip.compress(blob))
    try:
        data.read_idx_gz(path, "labels")
    except data.DataError:
        pass


cells = st.one_of(
    st.integers(-5, 300).map(str),
    st.sampled_from(["", "nan", "1.0", "x", " 3", "1e2", "-0", "+1"]),
)


@FUZZ
@given(
    rows=st.lists(st.lists(cells, min_size=784, max_size=786), min_size=0, max_size=3),
    header_ok=st.booleans(),
)
def test_fuzz_csv(tmp_path_factory, rows, header_ok):
    path = tmp_path_factory.mktemp("fz") / "x.csv"
    header = ",".join(data.CSV_HEADER if header_ok else data.CSV_HEADER[:-1])
    path.write_text("\n".join([header, *(",".join(r) for r in rows)]))
    try:
        x, y = data.read_csv(path)
    except data.DataError:
        return
    assert x.shape == (len(rows), 28, 28) and y.max() <= 9


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_csv_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fz") / "x.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        data.read_csv(path)
    except data.DataError:
        pass


# --- splits --------------------------------------------------------------------------


def test_stratified_split_is_seeded_disjoint_and_stratified():
    labels = np.repeat(np.arange(10), 100)
    tr, va = data.stratified_split(labels, 0.1, seed=3)
    tr2, va2 = data.stratified_split(labels, 0.1, seed=3)
    _, va3 = data.stratified_split(labels, 0.1, seed=4)
    assert np.array_equal(va, va2) and not np.array_equal(va, va3)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 1000
    assert np.bincount(labels[va]).tolist() == [10] * 10


def test_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="VAL_FRACTION"):
        data.stratified_split(np.zeros(10, int), 1.5, seed=0)


def test_subsample_keeps_all_when_zero():
    labels = np.repeat(np.arange(10), 10)
    assert len(data.subsample(labels, 0, 0)) == 100
    assert np.bincount(labels[data.subsample(labels, 50, 0)]).tolist() == [5] * 10
