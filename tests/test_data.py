"""The data module: digits, image folders (directory and tar), the decode cache, .npz files."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from PIL import Image

from archsearch.data import DataError, Dataset, load_dataset
from archsearch.data import imagefolder as imagefolder_module

TarMode = Literal["w", "w:xz", "w:gz"]
CIFAR = Path(__file__).parents[1].parent / "shared/datasets/cifar10-jpeg.tar.xz"

# Each class is a flat colour, so a decoded image tells which class it came from.
COLOURS = {"cat": (220, 20, 20), "dog": (20, 220, 20), "eel": (20, 20, 220)}
TRAIN = {"cat": 3, "dog": 2, "eel": 2}
TEST = {"cat": 1, "dog": 2, "eel": 1}
HEIGHT, WIDTH = 5, 7


def _image(colour: tuple[int, int, int], size: tuple[int, int] = (HEIGHT, WIDTH)) -> Image.Image:
    return Image.new("RGB", (size[1], size[0]), colour)


def make_folder(root: Path, fmt: str = "PNG", test: bool = True) -> Path:
    """train/<class>/*.png and test/<class>/*.png under root."""
    suffix = ".png" if fmt == "PNG" else ".jpg"
    splits = {"train": TRAIN, "test": TEST} if test else {"train": TRAIN}
    for split, counts in splits.items():
        for cls, n in counts.items():
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                _image(COLOURS[cls]).save(folder / f"{i:03d}{suffix}", fmt)
    return root


def make_tar(folder: Path, archive: Path, mode: TarMode, wrap: str | None = None) -> Path:
    with tarfile.open(archive, mode) as tar:
        for split in ("train", "test"):
            if (folder / split).exists():
                arcname = f"{wrap}/{split}" if wrap else split
                tar.add(folder / split, arcname=arcname)
    return archive


def check_folder_dataset(data: Dataset, channels: int = 3) -> None:
    assert data.classes == ("cat", "dog", "eel")
    assert data.x_train.shape == (sum(TRAIN.values()), channels, HEIGHT, WIDTH)
    assert data.x_test.shape == (sum(TEST.values()), channels, HEIGHT, WIDTH)
    assert data.x_train.dtype == np.uint8 and data.x_test.dtype == np.uint8
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert data.modality == "image"
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        for image, label in zip(x, y, strict=True):
            expected = np.array(COLOURS[data.classes[label]], dtype=float)
            if channels == 1:
                expected = expected.mean(keepdims=True)  # roughly the luminance
            assert np.abs(image.mean(axis=(1, 2)) - expected).max() < 80
    assert np.bincount(data.y_train).tolist() == list(TRAIN.values())
    assert np.bincount(data.y_test).tolist() == list(TEST.values())


def one_line_error(excinfo: pytest.ExceptionInfo[DataError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


# --- digits -----------------------------------------------------------------------------


def test_digits() -> None:
    data = load_dataset("digits")
    assert data.name == "digits"
    assert data.classes == tuple(str(i) for i in range(10))
    assert data.x_train.dtype == np.float32 and data.x_test.dtype == np.float32
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert data.x_train.shape[1:] == (1, 8, 8) and data.input_shape == (1, 8, 8)
    assert len(data.x_train) + len(data.x_test) == 1797
    assert 0.18 < len(data.x_test) / 1797 < 0.22
    assert data.x_train.min() >= 0.0 and data.x_train.max() == 1.0
    assert set(data.y_test.tolist()) == set(range(10))  # stratified
    again = load_dataset("digits")
    np.testing.assert_array_equal(data.x_test, again.x_test)
    np.testing.assert_array_equal(data.y_train, again.y_train)


# --- image folders ----------------------------------------------------------------------


def test_image_folder_directory(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "pets")
    calls: list[tuple[int, int]] = []
    data = load_dataset(
        str(folder), cache_dir=tmp_path / "cache", progress=lambda d, t: calls.append((d, t))
    )
    assert data.name == "pets"
    check_folder_dataset(data)
    total = sum(TRAIN.values()) + sum(TEST.values())
    assert calls[0] == (0, total) and calls[-1] == (total, total)


@pytest.mark.parametrize(
    ("mode", "suffix", "wrap"),
    [("w", ".tar", None), ("w:xz", ".tar.xz", "pets"), ("w:gz", ".tar.gz", None)],
)
def test_image_folder_archive(tmp_path: Path, mode: TarMode, suffix: str, wrap: str | None) -> None:
    folder = make_folder(tmp_path / "src")
    archive = make_tar(folder, tmp_path / f"pets{suffix}", mode, wrap)
    data = load_dataset(archive, cache_dir=tmp_path / "cache")
    assert data.name == "pets"
    check_folder_dataset(data)
    direct = load_dataset(folder, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(data.x_train, direct.x_train)
    np.testing.assert_array_equal(data.y_test, direct.y_test)


def test_image_folder_jpeg(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "pets", fmt="JPEG")
    check_folder_dataset(load_dataset(folder, cache_dir=tmp_path / "cache"))


def test_grayscale_folder_has_one_channel_and_mixed_has_three(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "pets")
    for path in folder.rglob("*.png"):
        Image.open(path).convert("L").save(path)
    check_folder_dataset(load_dataset(folder, cache_dir=tmp_path / "c1"), channels=1)
    _image(COLOURS["cat"]).save(folder / "train" / "cat" / "rgb.png")
    data = load_dataset(folder, cache_dir=tmp_path / "c2")
    assert data.x_train.shape[1] == 3
    gray = data.x_train[0]  # 000.png of cat, grayscale, repeated into three channels
    assert (gray[0] == gray[1]).all() and (gray[1] == gray[2]).all()


def test_folder_without_test_is_split(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "pets", test=False)
    data = load_dataset(folder, cache_dir=tmp_path / "cache")
    assert len(data.x_train) + len(data.x_test) == sum(TRAIN.values())
    assert set(data.y_test.tolist()) == {0, 1, 2} and set(data.y_train.tolist()) == {0, 1, 2}


def test_tar_ignores_members_outside_the_layout(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "src")
    archive = make_tar(folder, tmp_path / "pets.tar", "w")
    png = io.BytesIO()
    _image((0, 0, 0)).save(png, "PNG")
    with tarfile.open(archive, "a") as tar:
        for name in (
            "../evil/train/cat/x.png",
            "/abs/train/cat/x.png",
            "train/.hidden.png",
            "train/cat/.x.png",
            "train/loose.png",
            "README.png",
            "other/cat/y.png",
        ):
            info = tarfile.TarInfo(name)
            info.size = len(png.getvalue())
            tar.addfile(info, io.BytesIO(png.getvalue()))
    check_folder_dataset(load_dataset(archive, cache_dir=tmp_path / "cache"))
    assert not (tmp_path / "evil").exists()


def test_resize_makes_mixed_sizes_loadable(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "pets")
    odd = folder / "train" / "dog" / "big.png"
    _image(COLOURS["dog"], size=(12, 9)).save(odd)
    with pytest.raises(DataError) as excinfo:
        load_dataset(folder, cache_dir=tmp_path / "cache")
    message = one_line_error(excinfo)
    assert "train/dog/big.png" in message and "same size" in message
    data = load_dataset(folder, cache_dir=tmp_path / "cache", image_size=(4, 3))
    assert data.x_train.shape == (sum(TRAIN.values()) + 1, 3, 4, 3)
    assert load_dataset(folder, cache_dir=tmp_path / "cache", image_size=6).input_shape == (3, 6, 6)


# --- cache ------------------------------------------------------------------------------


def test_cache_hit_skips_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_tar(make_folder(tmp_path / "src"), tmp_path / "pets.tar.xz", "w:xz")
    cache = tmp_path / "cache"
    first = load_dataset(archive, cache_dir=cache)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1 and files[0].name.startswith("pets-")
    assert not [p for p in cache.iterdir() if p.suffix == ".tmp"]

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded although the cache is current")

    monkeypatch.setattr(imagefolder_module, "decode_image", no_decoding)
    second = load_dataset(archive, cache_dir=cache)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
        assert getattr(first, field).dtype == getattr(second, field).dtype
    assert second.classes == first.classes and second.name == first.name

    # A changed source misses the cache.
    later = time.time() + 10
    os.utime(archive, (later, later))
    with pytest.raises(AssertionError, match="decoded although"):
        load_dataset(archive, cache_dir=cache)


def test_directory_cache_sees_new_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_folder(tmp_path / "pets")
    cache = tmp_path / "cache"
    load_dataset(folder, cache_dir=cache)
    _image(COLOURS["eel"]).save(folder / "test" / "eel" / "new.png")
    data = load_dataset(folder, cache_dir=cache)
    assert len(data.x_test) == sum(TEST.values()) + 1
    assert len(list(cache.glob("*.npz"))) == 2


def test_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "pets")
    cache = tmp_path / "cache"
    load_dataset(folder, cache_dir=cache)
    (cached,) = cache.glob("*.npz")
    cached.write_bytes(b"not a zip")
    check_folder_dataset(load_dataset(folder, cache_dir=cache))
    assert np.load(cached, allow_pickle=False)["x_train"].shape[0] == sum(TRAIN.values())


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHSEARCH_CACHE", str(tmp_path / "root"))
    load_dataset(make_folder(tmp_path / "pets"))
    assert len(list((tmp_path / "root" / "datasets").glob("pets-*.npz"))) == 1


# --- npz --------------------------------------------------------------------------------


def test_npz_with_test_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "blobs.npz"
    x, x_test = rng.normal(size=(30, 4)), rng.normal(size=(9, 4))
    y, y_test = np.repeat([10, 3, 7], 10), np.repeat([3, 7, 10], 3)
    np.savez(path, x=x, y=y, x_test=x_test, y_test=y_test)
    data = load_dataset(str(path))
    assert data.name == "blobs" and data.classes == ("3", "7", "10")
    assert data.modality == "vector" and data.input_shape == (4,)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_allclose(data.x_train, x.astype(np.float32))
    assert data.y_train.tolist() == [2] * 10 + [0] * 10 + [1] * 10
    assert data.y_test.tolist() == [0] * 3 + [1] * 3 + [2] * 3


def test_npz_without_test_arrays_is_split(tmp_path: Path) -> None:
    path = tmp_path / "pics.npz"
    x = np.arange(40 * 3 * 3, dtype=np.uint8).reshape(40, 3, 3)  # (N, H, W) grayscale
    y = np.repeat(np.array([True, False]), 20)
    np.savez(path, x=x, y=y)
    data = load_dataset(path)
    assert data.classes == ("False", "True")
    assert data.x_train.shape == (32, 1, 3, 3) and data.x_test.shape == (8, 1, 3, 3)
    assert data.x_train.dtype == np.uint8
    assert np.bincount(data.y_test).tolist() == [4, 4]
    again = load_dataset(path)
    np.testing.assert_array_equal(data.x_test, again.x_test)
    # Every example ends up on exactly one side.
    seen = np.concatenate([data.x_train[:, 0, 0, 0], data.x_test[:, 0, 0, 0]])
    assert sorted(seen.tolist()) == sorted(x[:, 0, 0].tolist())


def test_npz_float_images_become_float32(tmp_path: Path) -> None:
    path = tmp_path / "f.npz"
    np.savez(path, x=np.zeros((6, 2, 4, 4), dtype=np.float64), y=np.arange(6) % 2)
    data = load_dataset(path)
    assert data.x_train.dtype == np.float32 and data.x_train.shape[1:] == (2, 4, 4)


# --- bad inputs -------------------------------------------------------------------------


def _npz(tmp_path: Path, **arrays: object) -> Path:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        ({"x": np.zeros((4, 2)), "y": np.array([0.0, 1.0, 0.0, 1.0])}, ["y", "float64", "integer"]),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0])}, ["3 labels", "4 examples"]),
        ({"x": np.zeros((4, 1, 2, 2, 2)), "y": np.arange(4)}, ["shape (4, 1, 2, 2, 2)", "(N, F)"]),
        ({"x": np.zeros(4), "y": np.arange(4)}, ["shape (4,)", "expected"]),
        ({"x": np.zeros((4, 2)), "y": np.zeros((4, 1), dtype=int)}, ["y", "1-D"]),
        ({"x": np.array(["a", "b"]), "y": np.arange(2)}, ["x", "expected numbers"]),
        ({"x": np.zeros((4, 2))}, ["no array 'y'", "found: x"]),
        ({"x": np.zeros((4, 2)), "y": np.arange(4), "x_test": np.zeros((1, 2))}, ["y_test"]),
        (
            {
                "x": np.zeros((4, 2)),
                "y": np.arange(4) % 2,
                "x_test": np.zeros((2, 2)),
                "y_test": np.array([0, 5]),
            },
            ["never occur", "5"],
        ),
        (
            {
                "x": np.zeros((4, 2)),
                "y": np.arange(4) % 2,
                "x_test": np.zeros((2, 3)),
                "y_test": np.array([0, 1]),
            },
            ["x_test", "must match"],
        ),
        ({"x": np.full((4, 2), np.nan), "y": np.arange(4) % 2}, ["NaN"]),
        ({"x": np.zeros((0, 2)), "y": np.zeros(0, dtype=int)}, ["empty"]),
    ],
)
def test_bad_npz(tmp_path: Path, arrays: dict[str, np.ndarray], words: list[str]) -> None:
    path = _npz(tmp_path, **arrays)
    with pytest.raises(DataError) as excinfo:
        load_dataset(path)
    message = one_line_error(excinfo)
    assert "bad.npz" in message
    for word in words:
        assert word in message


def test_npz_with_objects_is_never_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object), y=np.arange(2))
    with pytest.raises(DataError) as excinfo:
        load_dataset(path)
    assert "'x'" in one_line_error(excinfo)


def test_missing_and_unknown_paths(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(tmp_path / "nowhere"))
    message = one_line_error(excinfo)
    assert "no dataset at" in message and "nowhere" in message and "digits" in message
    (tmp_path / "table.csv").write_text("a,b\n")
    with pytest.raises(DataError) as excinfo:
        load_dataset(tmp_path / "table.csv")
    assert "unknown dataset format" in one_line_error(excinfo)
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError) as excinfo:
        load_dataset(tmp_path / "plain", cache_dir=tmp_path / "cache")
    assert "train/<class>/<image>" in one_line_error(excinfo)
    (tmp_path / "broken.tar.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError) as excinfo:
        load_dataset(tmp_path / "broken.tar.gz", cache_dir=tmp_path / "cache")
    assert "cannot read archive" in one_line_error(excinfo)
    with pytest.raises(DataError, match="image_size"):
        load_dataset("digits", image_size=16)


def test_empty_class_folder(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "pets")
    (folder / "test" / "owl").mkdir()
    (folder / "train" / "owl").mkdir()
    (folder / "train" / "owl" / "notes.txt").write_text("no images here")
    for source in (folder, make_tar(folder, tmp_path / "pets.tar", "w")):
        with pytest.raises(DataError) as excinfo:
            load_dataset(source, cache_dir=tmp_path / "cache")
        message = one_line_error(excinfo)
        assert "empty class folder" in message and "/owl" in message


def test_test_class_without_train_folder(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "pets")
    (folder / "test" / "owl").mkdir()
    _image((0, 0, 0)).save(folder / "test" / "owl" / "a.png")
    with pytest.raises(DataError) as excinfo:
        load_dataset(folder, cache_dir=tmp_path / "cache")
    assert "owl" in one_line_error(excinfo)


def test_undecodable_image_is_named(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "pets")
    (folder / "train" / "cat" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError) as excinfo:
        load_dataset(folder, cache_dir=tmp_path / "cache")
    assert "train/cat/broken.png" in one_line_error(excinfo)


# --- the real CIFAR-10 archive (slow: opt in) ---------------------------------------------


@pytest.mark.skipif(
    os.environ.get("ARCHSEARCH_TEST_CIFAR") != "1" or not CIFAR.exists(),
    reason="set ARCHSEARCH_TEST_CIFAR=1 (and have ../shared/datasets) to decode CIFAR-10",
)
def test_cifar10_archive(tmp_path: Path) -> None:
    data = load_dataset(CIFAR, cache_dir=tmp_path)
    assert data.x_train.shape == (50000, 3, 32, 32) and data.x_test.shape == (10000, 3, 32, 32)
    assert data.x_train.dtype == np.uint8 and len(data.classes) == 10
    assert data.classes[0] == "airplane" and data.classes[-1] == "truck"
    assert np.bincount(data.y_train).tolist() == [5000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    cached = load_dataset(CIFAR, cache_dir=tmp_path)
    np.testing.assert_array_equal(cached.x_test, data.x_test)
