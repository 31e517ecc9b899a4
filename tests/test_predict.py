"""fmnist_lib.predict and `python -m fmnist_lib predict`: refusals, preparation, reproduction."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fmnist_lib import config, data, predict, preprocess
from fmnist_lib.__main__ import main
from fmnist_lib.parameters import ParameterError
from fmnist_lib.pipeline import RunError

CLI = [sys.executable, "-m", "fmnist_lib"]
NAMES = np.array(data.CLASS_NAMES)


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [*CLI, *args],
        cwd=config.PROJ_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def garment(seed: int = 0) -> np.ndarray:
    """A light blob on black, like the data set's images: uint8 (28, 28)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((28, 28), dtype=np.uint8)
    img[4:24, 6:22] = rng.integers(120, 256, (20, 16))
    return img


def save_png(path: Path, pixels: np.ndarray, **kwargs) -> Path:
    Image.fromarray(pixels).save(path, **kwargs)
    return path


def idx_bytes(array: np.ndarray) -> bytes:
    """Uncompressed IDX: images (n, h, w) or labels (n,)."""
    magic = data.IDX_IMAGES_MAGIC if array.ndim == 3 else data.IDX_LABELS_MAGIC
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def fake_run(tmp_path: Path) -> Path:
    """A run folder with the records `predict` reads; its model.keras is never loaded."""
    run = tmp_path / "run"
    (run / "models" / "mlp").mkdir(parents=True)
    (run / "models" / "mlp" / "model.keras").write_bytes(b"not loaded by these tests")
    split = {k: np.arange(3) for k in ("train", "val", "test")}
    preprocess.save_split(run, split, preprocess.Standardizer(0.25, 0.5))
    metrics = {"training": {"mlp": {"accuracy": 0.8, "parameters": {"TTA": True}}}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


# --- which model ---------------------------------------------------------------------


def test_best_model_prefers_the_results_choice_then_accuracy():
    training = {"mlp": {"accuracy": 0.9}, "cnn": {"accuracy": 0.92}, "resnet50": {}}
    assert predict.best_model({"training": training}) == "cnn"
    assert predict.best_model({"training": training, "results": {"best_model": "mlp"}}) == "mlp"
    assert predict.best_model({"training": {}}) is None


def test_choose_model_reads_the_run_records(fake_run):
    served = predict.choose_model(fake_run)
    assert (served.name, served.tta) == ("mlp", True)
    assert served.path == fake_run / "models" / "mlp" / "model.keras"
    assert served.standardizer == preprocess.Standardizer(0.25, 0.5)


def _break_run(run: Path, fault: str) -> None:
    if fault == "no metrics.json":
        (run / "metrics.json").unlink()
    elif fault == "broken metrics.json":
        (run / "metrics.json").write_text("{not json")
    elif fault == "nothing trained":
        (run / "metrics.json").write_text('{"preprocessing": {}}')
    elif fault == "no model.keras":
        (run / "models" / "mlp" / "model.keras").unlink()
    elif fault == "no split.npz":
        (run / preprocess.SPLIT_FILE).unlink()


@pytest.mark.parametrize(
    ("fault", "args", "message"),
    [
        ("no run folder", ["--run", "{tmp}/nope"], "nope: run folder not found"),
        ("no metrics.json", [], "metrics.json not found: not a run folder"),
        ("broken metrics.json", [], "metrics.json: unreadable run record"),
        ("nothing trained", [], "no trained model recorded in metrics.json"),
        (
            "unknown model",
            ["--model", "cnn"],
            "no trained model 'cnn' in metrics.json (trained: mlp)",
        ),
        ("no model.keras", [], "model.keras not found"),
        ("no split.npz", [], "split.npz not found"),
    ],
)
def test_run_faults_are_one_line_errors(fake_run, tmp_path, capsys, fault, args, message):
    _break_run(fake_run, fault)
    png = save_png(tmp_path / "ok.png", garment())
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--run" not in args:
        args = ["--run", str(fake_run), *args]
    assert main(["predict", *args, str(png)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fmnist: error: ") and err.count("\n") == 1
    assert message in err


# --- input files ---------------------------------------------------------------------


def _bad_file(tmp_path: Path, case: str) -> Path:
    """Write the bad input `case` and return its path."""
    img = garment()
    p = tmp_path / case
    if case == "missing.png":
        return p
    if case == "folder.png":
        p.mkdir()
    elif case == "image.bmp":
        save_png(p, img, format="BMP")
    elif case == "notes.txt":
        p.write_text("hello")
    elif case == "big.png":
        save_png(p, np.zeros((32, 32), dtype=np.uint8))
    elif case == "colour.png":
        save_png(p, np.stack([img] * 3, axis=-1))
    elif case == "alpha.png":
        save_png(p, np.stack([img, img], axis=-1))
    elif case == "deep.png":
        save_png(p, img.astype(np.uint16) * 257)
    elif case == "inverted.png":
        save_png(p, 255 - img)
    elif case == "png.jpg":
        save_png(p, img, format="PNG")
    elif case == "jpeg.png":
        save_png(p, img, format="JPEG")
    elif case == "text.png":
        p.write_text("not an image")
    elif case == "truncated.png":
        save_png(p, img)
        p.write_bytes(p.read_bytes()[:60])
    elif case == "labels-idx1-ubyte.gz":
        p.write_bytes(gzip.compress(idx_bytes(np.arange(5) % 10)))
    elif case == "labels-idx1-ubyte":
        p.write_bytes(idx_bytes(np.arange(5) % 10))
    elif case == "truncated-idx3-ubyte":
        p.write_bytes(idx_bytes(np.stack([img, img]))[:-10])
    elif case == "wide-idx3-ubyte.gz":
        p.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 28, 32)))))
    elif case == "empty-idx3-ubyte.gz":
        p.write_bytes(gzip.compress(idx_bytes(np.zeros((0, 28, 28)))))
    elif case == "plain-idx3-ubyte.gz":
        p.write_bytes(idx_bytes(np.stack([img])))
    elif case == "bomb-idx3-ubyte.gz":  # a valid header promising 3 million images
        header = idx_bytes(np.zeros((0, 28, 28)))[:4] + b"".join(
            n.to_bytes(4, "big") for n in (3_000_000, 28, 28)
        )
        p.write_bytes(gzip.compress(header + img.tobytes() * 2))
    elif case == "long-idx3-ubyte.gz":  # one image, then 8 MiB more (8 KiB compressed)
        p.write_bytes(gzip.compress(idx_bytes(np.stack([img])) + bytes(8 << 20)))
    elif case == "animated.png":
        frames = [Image.fromarray(img), Image.fromarray(255 - img)]
        frames[0].save(p, format="PNG", save_all=True, append_images=frames[1:])
    elif case == "bom.csv":
        row = ",".join(str(v) for v in img.ravel())
        p.write_bytes(b"\xef\xbb\xbf" + (",".join(data.CSV_PIXEL_HEADER) + "\n" + row).encode())
    elif case == "header.csv":
        p.write_text("a,b,c\n1,2,3\n")
    elif case == "only-header.csv":
        p.write_text(",".join(data.CSV_PIXEL_HEADER) + "\n")
    elif case in ("short-row.csv", "bad-pixel.csv"):
        row = [str(v) for v in img.ravel()]
        row = row[:-1] if case == "short-row.csv" else [*row[:-1], "256"]
        p.write_text(",".join(data.CSV_PIXEL_HEADER) + "\n" + ",".join(row) + "\n")
    return p


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing.png", "file not found"),
        ("folder.png", "not a file"),
        ("image.bmp", "unknown file type .bmp"),
        ("notes.txt", "unknown file type .txt"),
        ("deep.png", "(mode I;16), expected 8-bit"),
        ("jpeg.png", "a JPEG image, not a PNG"),
        ("png.jpg", "a PNG image, not a JPEG"),
        ("text.png", "not a readable PNG file"),
        ("truncated.png", "not a readable PNG file"),
        ("labels-idx1-ubyte.gz", "an IDX label file (idx1), not images"),
        ("labels-idx1-ubyte", "an IDX label file (idx1), not images"),
        ("truncated-idx3-ubyte", "truncated: header promises 2 items"),
        ("wide-idx3-ubyte.gz", "image dimensions [28, 32], expected [28, 28]"),
        ("empty-idx3-ubyte.gz", "holds no images"),
        ("plain-idx3-ubyte.gz", "not a readable gzip file"),
        ("header.csv", "wrong header: expected 'label,pixel1,...,pixel784' (labelled"),
        ("only-header.csv", "header only, no image rows"),
        ("short-row.csv", "line 2 has 783 columns, expected 784"),
        ("bad-pixel.csv", "line 2, column pixel784: value 256 is outside 0..255"),
        # Issue 23: read whole (a MemoryError under a limit), classified silently, no "BOM".
        (
            "bomb-idx3-ubyte.gz",
            "the header promises 3,000,000 images (2,352,000,000 bytes), more than a gzip file",
        ),
        ("long-idx3-ubyte.gz", "at least 1,048,576 unexpected bytes after the 1 images"),
        ("animated.png", "an animated PNG of 2 frames, expected one image"),
        ("bom.csv", "starts with a UTF-8 byte-order mark (BOM, bytes ef bb bf)"),
    ],
)
def test_bad_input_files_are_refused_by_name(tmp_path, case, message):
    path = _bad_file(tmp_path, case)
    with pytest.raises(data.DataError) as info:
        predict.read_images(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_an_idx_file_promising_more_images_than_predict_reads_is_refused(tmp_path):
    path = tmp_path / "three-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.stack([garment(i) for i in range(3)]))))
    with pytest.raises(data.DataError, match="promises 3 images; at most 2 are read from one"):
        data.read_idx_images(path, max_images=2)
    assert len(data.read_idx_images(path, max_images=3)) == 3
    assert predict.MAX_FILE_IMAGES >= max(data.SPLIT_SIZES.values())


def test_the_bomb_is_refused_within_a_memory_limit(tmp_path):
    """Under a 1 GiB address-space limit, where reading it whole raised MemoryError."""
    bomb = _bad_file(tmp_path, "bomb-idx3-ubyte.gz")
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
        "from fmnist_lib import data\n"
        f"try: data.read_idx_images({str(bomb)!r})\n"
        "except data.DataError as exc: print(exc); sys.exit(2)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "more than a gzip file of" in out.stdout, out.stderr[-2000:]


def test_out_equal_to_an_input_is_refused_and_the_input_kept(fake_run, tmp_path, capsys):
    png = save_png(tmp_path / "ok.png", garment())
    csv_in = tmp_path / "in.csv"
    csv_in.write_text(",".join(data.CSV_PIXEL_HEADER) + "\n" + ",".join(["0"] * 784) + "\n")
    before = csv_in.read_bytes()
    same = tmp_path / "sub" / ".." / "in.csv"  # the same file, spelled otherwise
    (tmp_path / "sub").mkdir()
    args = ["predict", "--run", str(fake_run), "--out", str(same), str(png), str(csv_in)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == (
        f"fmnist: error: --out {same}: is the input file {csv_in}, which it would overwrite; "
        "write to another file\n"
    )
    assert csv_in.read_bytes() == before


def test_every_bad_file_is_named_at_once_before_keras(fake_run, tmp_path):
    bad = [_bad_file(tmp_path, case) for case in ("text.png", "missing.png", "short-row.csv")]
    photo = save_png(tmp_path / "photo.png", np.full((300, 200, 3), 255, np.uint8))
    files = [str(bad[0]), str(photo), *map(str, bad[1:])]
    code = (
        "import sys; from fmnist_lib.__main__ import main; "
        f"rc = main(['predict', '--run', {str(fake_run)!r}, *{files!r}]); "
        "assert 'keras' not in sys.modules, 'keras imported'; sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.splitlines()
    assert [line.split(": ")[2] for line in lines] == list(map(str, bad))
    assert all(line.startswith("fmnist: input error: ") for line in lines) and out.stdout == ""
    assert "not a readable PNG" in lines[0] and "783 columns" in lines[2]


# --- photos: converted as the data set was made ----------------------------------------


def photo(background: int = 255) -> np.ndarray:
    """A 200x300 RGB product photo: a blue 100x200 garment on a plain background."""
    img = np.full((300, 200, 3), background, np.uint8)
    img[50:250, 50:150] = [30, 60, 160]
    return img


@pytest.mark.parametrize(
    ("name", "pixels", "kwargs", "conversion"),
    [
        ("rgb.png", photo(), {}, "200×300 RGB → 28×28 grayscale, inverted (light background)"),
        ("rgb.jpg", photo(), {}, "200×300 RGB → 28×28 grayscale, inverted (light background)"),
        ("dark.png", photo(0), {}, "200×300 RGB → 28×28 grayscale"),
        (
            "rgba.png",
            np.dstack([photo(), np.full((300, 200), 255, np.uint8)]),
            {},
            "200×300 RGBA → 28×28 grayscale, inverted (light background)",
        ),
        ("big.png", np.zeros((32, 32), np.uint8), {}, "32×32 grayscale → 28×28 grayscale"),
        ("colour.png", np.stack([garment()] * 3, -1), {}, "28×28 RGB → 28×28 grayscale"),
        ("inverted.png", 255 - garment(), {}, "inverted (light background)"),
        ("alpha.png", np.stack([garment(), np.full((28, 28), 255, np.uint8)], -1), {}, None),
    ],
)
def test_photos_are_converted_and_each_conversion_is_named(
    tmp_path, name, pixels, kwargs, conversion
):
    save_png(tmp_path / name, pixels, **kwargs)
    read = predict.read_images(tmp_path / name)
    assert read.pixels.shape == (1, 28, 28) and read.pixels.dtype == np.uint8
    assert read.conversion == (conversion or "28×28 grayscale+alpha → 28×28 grayscale")
    assert predict.border_mean(read.pixels)[0] <= predict.BORDER_MAX_MEAN  # light on black


def test_a_photo_becomes_a_centred_light_garment_on_black(tmp_path):
    read = predict.read_images(save_png(tmp_path / "p.png", photo()))
    img = read.pixels[0]
    rows, cols = np.flatnonzero(img.max(1) > 0), np.flatnonzero(img.max(0) > 0)
    # Trimmed to the 100x200 garment, its height resized to 28, its width 14 centred.
    assert (rows.min(), rows.max()) == (0, 27)
    assert (cols.min(), cols.max()) == (7, 20)
    assert img[:, :6].max() == 0 and img[:, 22:].max() == 0  # the background, negated
    gray = round(0.299 * 30 + 0.587 * 60 + 0.114 * 160)  # ITU-R 601 luma of the blue
    assert abs(int(np.median(img[4:24, 9:19])) - (255 - gray)) <= 2
    # A palette copy of the same photo converts to the same pixels.
    Image.fromarray(photo()).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p8.png")
    np.testing.assert_array_equal(predict.read_images(tmp_path / "p8.png").pixels, read.pixels)


def test_a_data_set_png_is_left_as_it_is(tmp_path):
    read = predict.read_images(save_png(tmp_path / "g.png", garment(3)))
    assert read.conversion == ""
    np.testing.assert_array_equal(read.pixels[0], garment(3))


# --- --run: a folder, a run id, or latest ----------------------------------------------


def _runs(root: Path, fake_run: Path) -> dict[str, Path]:
    """Three run folders under `root`: an older and a newer finished run, and a failed one
    newest of all."""
    import shutil

    made = {}
    for name, started, status in (
        ("20250101-000000-old", "2025-01-01T00:00:00", "done"),
        ("20250301-000000-new", "2025-03-01T00:00:00", "done"),
        ("20250401-000000-failed", "2025-04-01T00:00:00", "failed"),
    ):
        shutil.copytree(fake_run, root / name)
        record = {"profile": "smoke", "status": status, "started": started}
        (root / name / "run.json").write_text(json.dumps(record))
        made[name] = root / name
    return made


def test_run_accepts_a_folder_an_id_or_latest(fake_run, tmp_path):
    root = tmp_path / "runs"
    made = _runs(root, fake_run)
    assert predict.resolve_run(str(fake_run), root) == fake_run
    assert predict.resolve_run("20250101-000000-old", root) == made["20250101-000000-old"]
    assert predict.resolve_run("latest", root) == made["20250301-000000-new"]  # not the failed
    with pytest.raises(ParameterError, match="--run latest: no finished run with a trained"):
        predict.resolve_run("latest", tmp_path / "empty")


def test_a_wrong_run_id_names_the_ids_there_and_exits_2(fake_run, tmp_path, capsys):
    root = tmp_path / "runs"
    _runs(root, fake_run)
    png = save_png(tmp_path / "ok.png", garment())
    assert main(["predict", "--runs-dir", str(root), "--run", "2025-nope", str(png)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--run 2025-nope: no run folder or run id" in err
    assert "newest: 20250401-000000-failed, 20250301-000000-new, 20250101-000000-old" in err
    # A good id resolves: the run is accepted and the bad input file is what is refused.
    missing = str(tmp_path / "missing.png")
    assert main(["predict", "--runs-dir", str(root), "--run", "latest", missing]) == 2
    assert capsys.readouterr().err == f"fmnist: input error: {missing}: file not found\n"


@pytest.mark.parametrize(
    ("where", "message"), [("missing/out.csv", "does not exist"), ("", "folder")]
)
def test_out_must_be_a_file_in_a_folder(fake_run, tmp_path, capsys, where, message):
    png = save_png(tmp_path / "ok.png", garment())
    assert main(["predict", "--run", str(fake_run), "--out", str(tmp_path / where), str(png)]) == 2
    assert message in capsys.readouterr().err
    with pytest.raises(ParameterError):
        predict.check_out(tmp_path / where)


def test_every_accepted_form_reads_the_same_pixels(tmp_path):
    images = np.stack([garment(0), garment(1)])
    data.write_idx_gz(tmp_path / "x-idx3-ubyte.gz", images)
    (tmp_path / "x-idx3-ubyte").write_bytes(
        gzip.decompress((tmp_path / "x-idx3-ubyte.gz").read_bytes())
    )
    data.write_csv(tmp_path / "labelled.csv", images, np.array([3, 7]))
    flat = images.reshape(2, -1)
    lines = [",".join(data.CSV_PIXEL_HEADER), *(",".join(map(str, r)) for r in flat)]
    (tmp_path / "unlabelled.csv").write_text("\n".join(lines) + "\n")
    for name in ("x-idx3-ubyte.gz", "x-idx3-ubyte", "labelled.csv", "unlabelled.csv"):
        read = predict.read_images(tmp_path / name)
        assert read.file == str(tmp_path / name)
        np.testing.assert_array_equal(read.pixels, images)
    _, labels = data.read_csv_images(tmp_path / "labelled.csv")
    assert data.read_csv_images(tmp_path / "unlabelled.csv")[1] is None
    np.testing.assert_array_equal(labels, [3, 7])
    png = predict.read_images(save_png(tmp_path / "one.png", images[1]))
    np.testing.assert_array_equal(png.pixels, images[1:])


def test_border_rule_accepts_every_real_image_and_refuses_every_negative(real_ds):
    for images in (real_ds.x_train, real_ds.x_test):
        assert predict.border_mean(images).max() <= predict.BORDER_MAX_MEAN
        assert predict.border_mean(255 - images).min() > predict.BORDER_MAX_MEAN


# --- preparation and output ----------------------------------------------------------


def fake_proba(x: np.ndarray) -> np.ndarray:
    """Probabilities that change when an image is mirrored."""
    left = x.reshape(len(x), x.shape[1], -1)[:, :, :14].reshape(len(x), -1).mean(1)
    logits = np.outer(left / (1 + np.abs(left).max()), np.arange(1, 11))
    return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)


class StubModel:
    """Answers `predict` with `fake_proba`; records the inputs it was given."""

    def __init__(self, input_shape: tuple) -> None:
        self.input_shape = (None, *input_shape)
        self.seen: list[np.ndarray] = []

    def predict(self, x: np.ndarray, batch_size: int, verbose: int) -> np.ndarray:
        self.seen.append(x)
        return fake_proba(x)


@pytest.mark.parametrize("tta", [False, True])
def test_inputs_are_prepared_and_mirrored_as_the_run_did(fake_run, tta):
    standardizer = preprocess.Standardizer(0.2, 0.3)
    served = predict.ServedModel(fake_run, "mlp", Path("m.keras"), tta, standardizer)
    images = np.stack([garment(0), garment(1)])
    model = StubModel((28, 28))
    proba = predict.probabilities(model, served, images)
    x = standardizer(images)
    expected = [x, x[:, :, ::-1]] if tta else [x]
    assert len(model.seen) == len(expected)
    for seen, want in zip(model.seen, expected, strict=True):
        np.testing.assert_array_equal(seen, want)
    np.testing.assert_allclose(proba, np.mean([fake_proba(e) for e in expected], axis=0))
    assert not np.allclose(fake_proba(x), fake_proba(x[:, :, ::-1]))  # the mirror matters


def test_resnet50_gets_raw_pixels_and_a_wrong_shape_is_refused(fake_run):
    served = predict.ServedModel(
        fake_run, "resnet50", Path("m.keras"), False, preprocess.Standardizer(0.2, 0.3)
    )
    images = np.stack([garment(0)])
    model = StubModel((28, 28, 1))
    predict.probabilities(model, served, images)
    assert model.seen[0].dtype == np.uint8 and model.seen[0].shape == (1, 28, 28, 1)
    with pytest.raises(RunError, match=r"takes inputs shaped \(28, 28\), but 'resnet50'"):
        predict.probabilities(StubModel((28, 28)), served, images)


def test_rows_name_the_source_and_the_top_three():
    batches = [
        predict.Images("a.gz", np.zeros((2, 28, 28), np.uint8)),
        predict.Images("b.png", np.zeros((1, 28, 28), np.uint8)),
    ]
    proba = np.full((3, 10), 0.01)
    proba[:, [9, 0, 5]] = [0.6, 0.2, 0.13]
    proba[2, [3, 4]] = [0.5, 0.31]
    rows = predict.prediction_rows(batches, proba)
    out = io.StringIO()
    predict.write_rows(rows, out)
    table = pd.read_csv(io.StringIO(out.getvalue()))
    assert list(table.columns) == predict.COLUMNS
    assert table[["file", "index"]].values.tolist() == [["a.gz", 0], ["a.gz", 1], ["b.png", 0]]
    assert table.iloc[0][["predicted", "top2", "top3"]].tolist() == [
        "Ankle boot",
        "T-shirt/top",
        "Sandal",
    ]
    assert table.iloc[2][["predicted", "top2", "top3"]].tolist() == ["Ankle boot", "Dress", "Coat"]
    assert table.iloc[0]["probability"] == pytest.approx(0.6)


# --- reproduction on a real run ------------------------------------------------------


@pytest.mark.slow
def test_predict_reproduces_the_recorded_accuracy(smoke_run, real_ds, tmp_path):
    real_run = smoke_run[0]  # the smoke profile's run: its cnn trains with flips and TTA
    recorded = json.loads((real_run / "metrics.json").read_text())["training"]["cnn"]
    assert recorded["parameters"]["TTA"] is True  # so the mirror averaging is exercised
    with np.load(real_run / "models" / "cnn" / "predictions.npz") as npz:
        index, proba = npz["test_index"], npz["proba"]
    truth = real_ds.y_test[index]
    data.write_csv(tmp_path / "test.csv", real_ds.x_test[index], truth)
    pngs = [save_png(tmp_path / f"test{i}.png", real_ds.x_test[i]) for i in index[:4]]
    idx = real_ds.files["test_images"].path
    files = [idx, str(tmp_path / "test.csv"), *map(str, pngs)]
    out = cli(
        "predict",
        "--run",
        str(real_run),
        "--model",
        "cnn",
        "--out",
        str(tmp_path / "p.csv"),
        *files,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    table = pd.read_csv(tmp_path / "p.csv")
    assert len(table) == len(real_ds.x_test) + len(index) + len(pngs)
    from_idx = table[table.file == idx].set_index("index").loc[index]
    from_csv = table[table.file == str(tmp_path / "test.csv")]
    from_png = table[table.file.str.endswith(".png")]
    for rows in (from_idx, from_csv):
        predicted = rows["predicted"].to_numpy()
        assert (predicted == NAMES[truth]).mean() == recorded["accuracy"]
        assert (predicted == NAMES[proba.argmax(1)]).all()
        np.testing.assert_allclose(rows["probability"], proba.max(1), atol=1e-5)
    assert from_png["predicted"].tolist() == NAMES[proba[: len(pngs)].argmax(1)].tolist()
    assert "warning" not in out.stderr  # the real test images do not warn


@pytest.mark.slow
def test_predict_warns_on_drift_and_records_it(smoke_run, real_ds, tmp_path):
    real_run = smoke_run[0]
    assert (real_run / "monitor.json").is_file()  # written by 04_results
    photo_file = save_png(tmp_path / "photo.png", photo())
    data.write_csv(tmp_path / "negative.csv", 255 - real_ds.x_test[:300], real_ds.y_test[:300])
    report = tmp_path / "report.json"
    args = ["--runs-dir", str(real_run.parent), "--run", real_run.name, "--report", str(report)]
    args += ["--prepare", "photo"]  # the photo-like image is classified as a product photo
    out = cli("predict", *args, str(photo_file), str(tmp_path / "negative.csv"))
    assert out.returncode == 0, out.stderr[-3000:]  # warnings are not errors
    assert len(out.stdout.splitlines()) == 1 + 1 + 300
    photo_row = next(csv.DictReader(io.StringIO(out.stdout)))
    assert photo_row["file"] == str(photo_file) and photo_row["predicted"] in data.CLASS_NAMES
    warnings = [line for line in out.stderr.splitlines() if line.startswith("fmnist: warning: ")]
    assert warnings[0] == (
        f"fmnist: warning: {photo_file}: 200×300 RGB → 28×28 grayscale, inverted (light "
        "background): not the data set's own form, so expect lower accuracy than the test set's"
    )
    assert f"{tmp_path / 'negative.csv'}: 300 of 300 images have a light background" in warnings[1]
    record = json.loads(report.read_text())
    assert record["monitoring"] == "profile from monitor.json" and record["images"] == 301
    assert [w["check"] for w in record["warnings"]][:2] == ["converted", "polarity"]
    assert record["files"][0]["conversion"].startswith("200×300 RGB")
    assert [w["message"] for w in record["warnings"]] == [
        w[len("fmnist: warning: ") :] for w in warnings
    ]


def test_prepare_photo_converts_every_picture_and_none_refuses_one_that_needs_it(tmp_path):
    """`--prepare`: `photo` treats a 28x28 picture as a photo too (trimmed, resized and
    sharpened); `none` refuses a picture that would need converting, naming the conversion."""
    path = save_png(tmp_path / "p.png", photo())
    auto = predict.read_images(path)
    assert predict.read_images(path, "photo").conversion == auto.conversion
    np.testing.assert_array_equal(predict.read_images(path, "photo").pixels, auto.pixels)
    with pytest.raises(
        predict.DataError, match=r"p\.png: not in the data set's form \(it would be"
    ):
        predict.read_images(path, "none")
    small = save_png(tmp_path / "g.png", garment(3))
    assert predict.read_images(small, "none").conversion == ""
    forced = predict.read_images(small, "photo")
    assert forced.conversion.startswith("28×28 grayscale → 28×28 grayscale")
    assert not np.array_equal(forced.pixels[0], garment(3))  # trimmed and sharpened
    with pytest.raises(ValueError, match="prepare='raw': expected one of auto, photo, none"):
        predict.read_all([small], "raw")


def test_the_command_line_takes_prepare_and_refuses_an_unknown_one(capsys):
    from fmnist_lib.__main__ import build_parser

    args = build_parser().parse_args(["predict", "--run", "latest", "--prepare", "photo", "a.png"])
    assert args.prepare == "photo"
    assert build_parser().parse_args(["predict", "--run", "latest", "a.png"]).prepare == "auto"
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["predict", "--run", "latest", "--prepare", "raw", "a.png"])
    assert stop.value.code == 2 and "invalid choice: 'raw'" in capsys.readouterr().err
