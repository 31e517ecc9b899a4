"""Load Fashion-MNIST from the official IDX files or the Kaggle CSV layout, verified.

Search order for the IDX files: a directory given by the caller, `$FMNIST_DATA_DIR`,
Debian's `dataset-fashion-mnist` package, the Keras cache, and only then a download
through `keras.datasets.fashion_mnist`. Every fault raises `DataError` naming the file.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (28, 28)
N_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]

FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# MD5 of the decompressed files, as published with the data set. Debian re-compressed
# the .gz files, so the content is what we verify, never the .gz bytes.
OFFICIAL_MD5: dict[str, str] = {
    "train_images": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train_labels": "9018921c3c673c538a1fc5bad174d6f9",
    "test_images": "8181f5470baa50b63fa0f6fddb340f0a",
    "test_labels": "15d484375f8d13e6eb1aabb0c3f46965",
}
SPLIT_SIZES = {"train": 60_000, "test": 10_000}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
IDX_IMAGE_HEADER = 16  # magic and three dimensions, 4 bytes each
MAX_DEFLATE_RATIO = 1032  # deflate's largest expansion: no gzip file holds more per byte
MAX_TRAILING = 1 << 20  # bytes read past the promised images, to report over-long data
CSV_HEADER = ["label", *(f"pixel{i}" for i in range(1, N_PIXELS + 1))]
CSV_PIXEL_HEADER = CSV_HEADER[1:]  # the unlabelled CSV form


class DataError(ValueError):
    """A data file is missing, corrupt or not what it claims to be."""


@dataclass(frozen=True)
class FileInfo:
    """Where one data file came from and what it contained."""

    path: str
    md5: str  # MD5 of the decompressed content
    verified: bool  # True when `md5` matched the official checksum


@dataclass(frozen=True)
class FashionMNIST:
    """The four arrays plus their provenance."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    files: dict[str, FileInfo] = field(default_factory=dict)

    def provenance(self) -> dict:
        """Source, path and MD5 of each file, as recorded in `run.json`."""
        return {
            "source": self.source,
            "files": {k: vars(v) for k, v in self.files.items()},
        }

    def md5s(self) -> dict[str, str]:
        """MD5 of each file's decompressed content."""
        return {k: v.md5 for k, v in self.files.items()}


# --- IDX -------------------------------------------------------------------------


def _read_gz(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc})") from exc


def parse_idx(raw: bytes, *, kind: str, source: str = "<bytes>") -> np.ndarray:
    """Parse decompressed IDX bytes of `kind` "images" or "labels", validating the header.

    Raises:
        DataError: wrong magic number, wrong dimensions, truncated or over-long data,
            or a label outside 0..9.
    """
    magic, ndim = (IDX_IMAGES_MAGIC, 3) if kind == "images" else (IDX_LABELS_MAGIC, 1)
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{source}: truncated header ({len(raw)} bytes, need {header_len})")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(
            f"{source}: wrong magic number 0x{found:08x}, expected 0x{magic:08x} for IDX {kind}"
        )
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if kind == "images" and tuple(dims[1:]) != IMAGE_SHAPE:
        raise DataError(f"{source}: image dimensions {dims[1:]}, expected {list(IMAGE_SHAPE)}")
    expected = header_len + int(np.prod(dims))
    if len(raw) < expected:
        raise DataError(
            f"{source}: truncated: header promises {dims[0]} items ({expected} bytes), "
            f"file has {len(raw)} bytes"
        )
    if len(raw) > expected:
        raise DataError(f"{source}: {len(raw) - expected} unexpected bytes after the last item")
    data = np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)
    if kind == "labels":
        _check_labels(data, source)
    return data.copy()


def _check_labels(labels: np.ndarray, source: str) -> None:
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DataError(
            f"{source}: label {int(labels[bad[0]])} at index {int(bad[0])} is outside 0..9"
        )


def read_idx_gz(path: Path, kind: str, expected_md5: str | None = None) -> tuple[np.ndarray, str]:
    """Read one gzip-compressed IDX file; return the array and the content MD5."""
    raw = _read_gz(path)
    data = parse_idx(raw, kind=kind, source=str(path))
    md5 = hashlib.md5(raw).hexdigest()
    if expected_md5 is not None and md5 != expected_md5:
        raise DataError(
            f"{path}: checksum mismatch: decompressed MD5 {md5}, expected {expected_md5}; "
            "the file is corrupt or not the official release"
        )
    return data, md5


def read_idx_images(path: str | os.PathLike[str], max_images: int | None = None) -> np.ndarray:
    """Read an IDX image file (idx3), gzip-compressed (`.gz`) or raw, as uint8 (n, 28, 28).

    The header is read first: a `.gz` whose header promises more bytes than deflate can
    expand a file of its size to, or a count over `max_images`, is refused before the images
    are read, and never more is read than the header promises (and `MAX_TRAILING` bytes, to
    tell over-long data).

    Raises:
        DataError: a missing or unreadable file, a label file (idx1), a corrupt header or
            body, or one promising too many images.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    gz = path.suffix == ".gz"
    try:
        size = path.stat().st_size
        with gzip.open(path, "rb") if gz else path.open("rb") as fh:
            head = fh.read(IDX_IMAGE_HEADER)
            count = _promised_images(head, path)
            if count is not None:
                body = count * N_PIXELS
                if gz and body > size * MAX_DEFLATE_RATIO:  # a raw file: `truncated` below
                    raise DataError(
                        f"{path}: the header promises {count:,} images ({body:,} bytes), more "
                        f"than a gzip file of {size:,} bytes can hold: a damaged or crafted file"
                    )
                if max_images is not None and count > max_images:
                    raise DataError(
                        f"{path}: the header promises {count:,} images; at most "
                        f"{max_images:,} are read from one file: split it"
                    )
                head += fh.read(body + MAX_TRAILING)
            else:
                head += fh.read(MAX_TRAILING)  # a short or foreign header: parse_idx says what
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        what = "not a readable gzip file" if gz else "unreadable file"
        raise DataError(f"{path}: {what} ({getattr(exc, 'strerror', None) or exc})") from None
    if int.from_bytes(head[:4], "big") == IDX_LABELS_MAGIC and len(head) >= 4:
        raise DataError(f"{path}: an IDX label file (idx1), not images: pass an idx3 image file")
    if count is not None and len(head) - IDX_IMAGE_HEADER - count * N_PIXELS >= MAX_TRAILING:
        raise DataError(
            f"{path}: at least {MAX_TRAILING:,} unexpected bytes after the {count:,} images "
            "the header promises"
        )
    return parse_idx(head, kind="images", source=str(path))


def _promised_images(head: bytes, path: Path) -> int | None:
    """The image count of a complete idx3 header of 28x28 images; None for anything else."""
    if len(head) < IDX_IMAGE_HEADER or int.from_bytes(head[:4], "big") != IDX_IMAGES_MAGIC:
        return None
    dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(3)]
    return dims[0] if tuple(dims[1:]) == IMAGE_SHAPE else None


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array of images (n, 28, 28) or labels (n,) as gzip IDX."""
    array = np.asarray(array, dtype=np.uint8)
    magic = IDX_IMAGES_MAGIC if array.ndim == 3 else IDX_LABELS_MAGIC
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.tobytes())


def load_idx_dir(directory: Path, source: str, verify: bool = True) -> FashionMNIST:
    """Load the four official files from one directory."""
    directory = Path(directory)
    missing = [name for name in FILES.values() if not (directory / name).is_file()]
    if missing:
        raise DataError(f"{directory}: missing data file(s): {', '.join(missing)}")
    arrays: dict[str, np.ndarray] = {}
    infos: dict[str, FileInfo] = {}
    for key, name in FILES.items():
        expected = OFFICIAL_MD5[key] if verify else None
        kind = "images" if key.endswith("images") else "labels"
        arrays[key], md5 = read_idx_gz(directory / name, kind, expected)
        infos[key] = FileInfo(str(directory / name), md5, md5 == OFFICIAL_MD5[key])
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise DataError(
                f"{directory / FILES[f'{split}_labels']}: {n_lab} labels for {n_img} images"
            )
    return FashionMNIST(
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
        source=source,
        files=infos,
    )


def keras_cache_dir() -> Path:
    """Where `keras.datasets.fashion_mnist` keeps its files."""
    keras_home = os.environ.get("KERAS_HOME", str(Path.home() / ".keras"))
    return Path(keras_home) / "datasets" / "fashion-mnist"


def candidate_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, Path, bool]]:
    """The search order as (source, directory, explicit) triples."""
    found: list[tuple[str, Path, bool]] = []
    if data_dir:
        found.append(("argument", Path(data_dir), True))
    if os.environ.get("FMNIST_DATA_DIR"):
        found.append(("FMNIST_DATA_DIR", Path(os.environ["FMNIST_DATA_DIR"]), True))
    found.append(("debian", DEBIAN_DIR, False))
    found.append(("keras-cache", keras_cache_dir(), False))
    return found


def load_fashion_mnist(
    data_dir: str | os.PathLike[str] | None = None, *, allow_download: bool = True
) -> FashionMNIST:
    """Load and verify Fashion-MNIST from the first location that has it.

    Args:
        data_dir: a directory holding the four official `.gz` files; it must be complete.
        allow_download: fall back to `keras.datasets.fashion_mnist` (network) when no
            local copy is found.

    Returns:
        The arrays with their provenance (source, path and MD5 of each file).

    Raises:
        DataError: a file is missing or corrupt, or no copy can be found.
    """
    for source, directory, explicit in candidate_dirs(data_dir):
        present = [n for n in FILES.values() if (directory / n).is_file()]
        if explicit or present:  # partial local copies are errors, not skipped
            return load_idx_dir(directory, source)
    if not allow_download:
        raise DataError(_not_found_message())
    try:
        import keras

        keras.datasets.fashion_mnist.load_data()
    except Exception as exc:  # network errors come in many types
        raise DataError(f"{_not_found_message()}; download failed: {exc}") from exc
    return load_idx_dir(keras_cache_dir(), "keras-download")


def _not_found_message() -> str:
    places = ", ".join(str(d) for _, d, _ in candidate_dirs())
    return (
        f"Fashion-MNIST not found (looked in {places}). Install Debian's "
        "`dataset-fashion-mnist`, set FMNIST_DATA_DIR to a folder with the four official "
        ".gz files, or allow the Keras download"
    )


# --- CSV (Kaggle layout: label,pixel1..pixel784) ----------------------------------

_INT = re.compile(r"\d+")
_NOT_INT_CHARS = re.compile(r"[^0-9,\n -]")


def write_csv(path: str | os.PathLike[str], images: np.ndarray, labels: np.ndarray) -> None:
    """Write images and labels in the Kaggle CSV layout, one row per image.

    Raises:
        DataError: anything `read_csv` would refuse, before a byte is written: images not
            shaped (n, 28, 28) or (n, 784), no images, labels not one per image, or a value
            that is not an integer (pixels 0..255, labels 0..9). Nothing is coerced.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim not in (2, 3) or images.shape[1:] not in (IMAGE_SHAPE, (784,)):
        raise DataError(
            f"{path}: images must be shaped (n, 28, 28) or (n, 784), not {images.shape}"
        )
    if len(images) == 0:
        raise DataError(f"{path}: no images to write; a CSV without rows cannot be read back")
    if labels.shape != (len(images),):
        raise DataError(
            f"{path}: {len(images)} images need {len(images)} labels, got shape {labels.shape}"
        )
    _check_integers(path, "pixel", images, 255)
    _check_integers(path, "label", labels, NUM_CLASSES - 1)
    flat = images.reshape(len(images), -1).astype(np.int64)
    table = np.column_stack([labels.astype(np.int64), flat])
    with open(path, "w", newline="") as fh:
        fh.write(",".join(CSV_HEADER) + "\n")
        np.savetxt(fh, table, fmt="%d", delimiter=",")


def _check_integers(path, what: str, values: np.ndarray, high: int) -> None:
    """Every value a whole number in 0..high; booleans, NaN, fractions and text refused."""
    kind = values.dtype.kind
    if kind not in "iuf":
        raise DataError(f"{path}: {what} values must be integers, got dtype {values.dtype}")
    if kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            raise DataError(f"{path}: {what} value {values[bad][0].item()!r} is not an integer")
    outside = (values < 0) | (values > high)
    if outside.any():
        raise DataError(f"{path}: {what} value {values[outside][0].item()!r} is outside 0..{high}")


def read_csv(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read the Kaggle CSV layout into uint8 images (n, 28, 28) and labels (n,).

    Raises:
        DataError: wrong header or column count, a non-integer, NaN or out-of-range
            pixel (not 0..255), or a label outside 0..9. Nothing is coerced.
    """
    path = Path(path)
    lines = _csv_lines(path)
    header = _csv_header(lines)
    if header != CSV_HEADER:
        raise DataError(
            f"{path}: wrong header: expected 'label,pixel1,...,pixel784' "
            f"({len(CSV_HEADER)} columns), found {len(header)} columns starting "
            f"{','.join(header[:3])!r}"
        )
    images, labels = _csv_rows(path, lines[1:], CSV_HEADER)
    assert labels is not None  # the labelled header
    return images, labels


def read_csv_images(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Read either CSV form into uint8 images (n, 28, 28) and labels (None when unlabelled).

    The labelled form is Kaggle's (`label,pixel1,...,pixel784`, as `read_csv`); the unlabelled
    form drops the label column (`pixel1,...,pixel784`). Both need their header row.

    Raises:
        DataError: a header that is neither form, or any fault `read_csv` refuses.
    """
    path = Path(path)
    lines = _csv_lines(path)
    header = _csv_header(lines)
    if header not in (CSV_HEADER, CSV_PIXEL_HEADER):
        raise DataError(
            f"{path}: wrong header: expected 'label,pixel1,...,pixel784' (labelled, "
            f"{len(CSV_HEADER)} columns) or 'pixel1,...,pixel784' (unlabelled, "
            f"{len(CSV_PIXEL_HEADER)} columns), found {len(header)} columns starting "
            f"{','.join(header[:3])!r}"
        )
    return _csv_rows(path, lines[1:], header)


def _csv_lines(path: Path) -> list[str]:
    """The lines of an ASCII file, trailing blank lines dropped; refuse a missing or empty one."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    if raw.startswith(codecs.BOM_UTF8):
        raise DataError(
            f"{path}: starts with a UTF-8 byte-order mark (BOM, bytes ef bb bf), as some "
            "spreadsheet programs write; save it as plain CSV without a BOM"
        )
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not an ASCII CSV file ({exc.reason} at byte {exc.start})"
        ) from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"{path}: empty file, expected header 'label,pixel1,...,pixel784'")
    return lines


def _csv_header(lines: list[str]) -> list[str]:
    return [h.strip() for h in lines[0].split(",")]


def _csv_rows(
    path: Path, rows: list[str], columns: list[str]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate and parse the rows under `columns`: pixels, after a label when it leads."""
    if not rows:
        raise DataError(f"{path}: header only, no image rows")
    counts = np.fromiter((r.count(",") for r in rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero(counts != len(columns) - 1)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{path}: line {i + 2} has {counts[i] + 1} columns, expected {len(columns)}"
        )
    table = _parse_int_table(path, rows, columns)
    labelled = columns[0] == "label"
    labels, pixels = (table[:, 0], table[:, 1:]) if labelled else (None, table)
    if labels is not None:
        bad_label = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
        if bad_label.size:
            i = int(bad_label[0])
            raise DataError(f"{path}: line {i + 2}: label {labels[i]} is outside 0..9")
    bad_pix = np.argwhere((pixels < 0) | (pixels > 255))
    if bad_pix.size:
        i, j = (int(v) for v in bad_pix[0])
        raise DataError(
            f"{path}: line {i + 2}, column pixel{j + 1}: value {pixels[i, j]} is outside 0..255"
        )
    images = pixels.astype(np.uint8).reshape(-1, *IMAGE_SHAPE)
    return images, None if labels is None else labels.astype(np.uint8)


def _parse_int_table(path: Path, rows: list[str], columns: list[str]) -> np.ndarray:
    """Parse comma-separated non-negative or negative integers, naming the first bad cell."""
    import pandas as pd

    body = "\n".join(rows)
    try:
        if _NOT_INT_CHARS.search(body):  # pandas would accept "2.0" or "+1": refuse instead
            raise ValueError("non-integer characters")
        frame = pd.read_csv(
            io.StringIO(body),
            header=None,
            dtype=np.int64,
            na_filter=False,
            engine="c",
        )
        table = frame.to_numpy()
        if table.shape == (len(rows), len(columns)):
            return table
    except (ValueError, OverflowError, pd.errors.ParserError):
        pass
    for i, row in enumerate(rows):  # slow path: only runs to name the fault
        for j, cell in enumerate(row.split(",")):
            token = cell.strip()
            if not _INT.fullmatch(token.lstrip("-")):
                what = "NaN" if token.lower() in {"nan", ""} else f"non-integer {token!r}"
                raise DataError(f"{path}: line {i + 2}, column {columns[j]}: {what}")
    raise DataError(f"{path}: could not parse as integers")


# --- splits ----------------------------------------------------------------------


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of indices into (train, validation)."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"VAL_FRACTION must be between 0 and 1, got {val_fraction}")
    idx = np.arange(len(labels))
    train_idx, val_idx = train_test_split(
        idx, test_size=val_fraction, stratify=labels, random_state=seed
    )
    return np.sort(train_idx), np.sort(val_idx)


def subsample(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded stratified subsample of size `n` (all when n <= 0)."""
    if n <= 0 or n >= len(labels):
        return np.arange(len(labels))
    _, keep = stratified_split(labels, n / len(labels), seed)
    return keep
