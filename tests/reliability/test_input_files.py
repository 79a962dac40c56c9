"""Bad input files: deep images, decompression bombs, symbolic-link loops and CSV lists that are not
UTF-8 or name an image twice give one clear error (or, for a folder met twice, one warning), never a
traceback or a silently wrong image or list."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mbf.cli import main
from mbf.data import build_dataset, build_test_set, read_image
from mbf.data.io import to_rgb
from mbf.errors import DatasetError
from mbf.retrieval import list_images

from ..engine.conftest import TINY_CONFIG

RNG = np.random.default_rng(0)


def pixels(path) -> np.ndarray:
    return np.asarray(read_image(path), dtype=np.int16)


def cli_error(code: int, capsys) -> str:
    """The one line a failed command printed (exit status 2, no traceback)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "it/s]" not in line]  # not tqdm's bars
    assert code == 2 and len(lines) == 1 and lines[0].startswith("mbf "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------------------------ images
def test_a_16_bit_png_is_scaled_not_clipped(tmp_path):
    deep = RNG.integers(0, 65536, (24, 12), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")  # written as a 16-bit grey PNG
    Image.fromarray(np.rint(deep / 257).astype(np.uint8)).save(tmp_path / "copy.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    got, want = pixels(tmp_path / "deep.png"), pixels(tmp_path / "copy.png")
    assert got.shape == (24, 12, 3) and np.abs(got - want).max() <= 1
    assert got.min() < 64 and got.max() > 192  # not the all-white image convert("RGB") gives


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I;16N", "I", "F"])
def test_every_deep_grey_mode_is_scaled_from_its_sample_range(mode):
    grey = RNG.integers(0, 256, (6, 5)).astype(np.uint8)
    if mode == "F":
        img = Image.fromarray(grey / np.float32(255)).convert("F")
    else:  # 16-bit values; an "I" image that declares no sample type holds 16-bit data (a PGM, say)
        img = Image.fromarray(grey.astype(np.uint16) * 257).convert("I")
        img = img if mode == "I" else Image.frombytes(mode, img.size, np.asarray(img).astype(
            {"I;16B": ">u2"}.get(mode, "<u2")).tobytes())
    assert img.mode == mode
    rgb = to_rgb(img)
    assert rgb.mode == "RGB" and np.array_equal(np.asarray(rgb), np.repeat(grey[..., None], 3, axis=2))


def test_integer_tiffs_are_scaled_from_the_sample_type_they_declare(tmp_path):
    tifffile = pytest.importorskip("tifffile")  # writes the sample types Pillow cannot
    grey = RNG.integers(0, 256, (6, 5)).astype(np.uint8)
    cases = {"u32.tif": grey.astype(np.uint32) * 16843009, "i32.tif": grey.astype(np.int32) * 8421504,
             "i16.tif": grey.astype(np.int16) * 128}  # 2^32-1, 2^31-1 and 2^15-1 are 255 x those (about)
    for name, data in cases.items():
        tifffile.imwrite(tmp_path / name, data)
        assert np.abs(pixels(tmp_path / name)[..., 0] - grey).max() <= 1, name


def test_16_bit_colour_reads_as_its_8_bit_copy(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    deep = RNG.integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "rgb16.tif", deep, photometric="rgb")
    assert np.abs(pixels(tmp_path / "rgb16.tif") - np.rint(deep / 257)).max() <= 1  # Pillow keeps the high byte


@pytest.mark.parametrize("data, mode, found", [
    (np.linspace(0, 3, 30, dtype=np.float32).reshape(6, 5), "F", "0..3"),
    (np.linspace(-1, 1, 30, dtype=np.float32).reshape(6, 5), "F", "-1..1"),
    (np.full((6, 5), np.nan, np.float32), "F", "nan..nan"),
    (np.arange(-15, 15, dtype=np.int32).reshape(6, 5), "I", "-15..14"),
])
def test_deep_values_outside_the_rule_are_one_error_naming_file_mode_and_range(tmp_path, data, mode, found):
    path = tmp_path / "odd.tif"
    Image.fromarray(data).save(path)
    with pytest.raises(DatasetError) as err:
        read_image(path)
    message = str(err.value)
    assert str(path) in message and f"mode {mode}" in message and found in message and "expected 0.." in message


@pytest.mark.parametrize("mode, ext", [("L", "png"), ("LA", "png"), ("P", "png"), ("RGBA", "png"), ("CMYK", "jpg"),
                                       ("CMYK", "tif"), ("1", "png"), ("RGB", "bmp")])
def test_ordinary_modes_keep_reading_as_8_bit_rgb(tmp_path, mode, ext):
    path = tmp_path / f"x.{ext}"
    Image.fromarray(RNG.integers(0, 256, (16, 8, 3), dtype=np.uint8)).convert(mode).save(path)
    got = read_image(path)
    assert got.mode == "RGB" and got.size == (8, 16)
    with Image.open(path) as img:
        assert img.mode == mode and np.array_equal(np.asarray(got), np.asarray(img.convert("RGB")))


def test_a_decompression_bomb_is_one_error_naming_the_file_its_size_and_the_limit(tmp_path, monkeypatch, recwarn):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's limit, lowered so that the bombs stay tiny
    for side, size in ((40, "1,600"), (50, "2,500")):  # over the limit (Pillow warns) and twice over (it raises)
        path = tmp_path / f"bomb{side}.png"
        Image.new("L", (side, side)).save(path)
        with pytest.raises(DatasetError) as err:
            read_image(path)
        assert str(path) in str(err.value) and f"{size} pixels" in str(err.value) and "limit of 1,000" in str(err.value)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
    Image.new("L", (20, 20)).save(tmp_path / "fine.png")
    assert read_image(tmp_path / "fine.png").size == (20, 20)


def test_extract_refuses_a_decompression_bomb_in_one_line_and_writes_nothing(tiny, monkeypatch, capsys):
    weights = tiny.weights()
    tiny.images("gallery", 2)
    Image.new("RGB", (100, 100)).save(tiny.tmp / "gallery" / "0009_c1s1_000001_01.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)  # the crops are 80 x 40
    out = tiny.tmp / "g.npz"
    line = cli_error(tiny.extract(weights, tiny.tmp / "gallery", out), capsys)
    assert "0009_c1s1_000001_01.png" in line and "10,000 pixels" in line and "limit of 4,000" in line
    assert not out.exists() and not list(tiny.tmp.glob("g.npz.parts/shard-*"))


def test_a_symlink_loop_where_an_image_should_be_is_one_error_naming_it(tmp_path):
    loop = tmp_path / "0001_c1s1_000001_01.jpg"
    loop.symlink_to(loop.name)
    with pytest.raises(DatasetError, match=re.escape(f"{loop}: it is a symbolic link that loops")):
        read_image(loop)


# ------------------------------------------------------------------------------------ folders
def _crop(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, (16, 8, 3), dtype=np.uint8)).save(path)
    return path


def test_a_link_to_its_own_parent_folder_is_walked_once_with_a_warning(tmp_path, mbf_log):
    images = [_crop(tmp_path / "g" / "0001_c1s1_000001_01.jpg"), _crop(tmp_path / "g" / "a" / "0002_c2s1_000001_01.jpg")]
    (tmp_path / "g" / "a" / "up").symlink_to("..")  # g/a/up/a/up/... would never end
    (tmp_path / "g" / "again").symlink_to("a")  # a second way to g/a: its images would be listed twice
    (tmp_path / "g" / "b").mkdir()
    (tmp_path / "g" / "b" / "self").symlink_to(".")
    assert list_images(tmp_path / "g") == sorted(str(p) for p in images)
    warned = " ".join(r.getMessage() for r in mbf_log.records if r.levelno == logging.WARNING)
    assert all(str(tmp_path / "g" / link) in warned for link in ("a/up", "again", "b/self"))


def test_a_linked_folder_of_images_is_listed_like_a_real_one(tmp_path):
    image = _crop(tmp_path / "elsewhere" / "0001_c1s1_000001_01.jpg")
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "cam1").symlink_to(tmp_path / "elsewhere")
    assert list_images(tmp_path / "g") == [str(tmp_path / "g" / "cam1" / image.name)]


def test_extract_names_an_image_that_is_a_symlink_loop_in_one_line(tiny, capsys):
    tiny.images("gallery", 2)
    (tiny.tmp / "gallery" / "x.jpg").symlink_to("x.jpg")
    (tiny.tmp / "gallery" / "sub" / "up").symlink_to("..")
    out = tiny.tmp / "g.npz"
    line = cli_error(tiny.extract(str(tiny.tmp / "model.pth"), tiny.tmp / "gallery", out), capsys)
    assert f"{tiny.tmp / 'gallery' / 'x.jpg'}: it is a symbolic link that loops" in line
    assert not out.exists() and sorted(p.name for p in tiny.tmp.iterdir()) == ["gallery"]
    (tiny.tmp / "loop").symlink_to("loop")
    assert "loop: it is a symbolic link that loops" in cli_error(tiny.extract("m.pth", tiny.tmp / "loop", out), capsys)


def test_a_dataset_folder_with_an_image_link_loop_is_one_error_naming_it(own_synthetic_root):
    query = own_synthetic_root / "Synthetic_Occluded" / "query"
    (query / "0001_c1s1_000001_99.jpg").symlink_to("0001_c1s1_000001_99.jpg")
    with pytest.raises(DatasetError, match=r"query/0001_c1s1_000001_99\.jpg: it is a symbolic link that loops"):
        build_dataset("synthetic_occ", str(own_synthetic_root), verbose=False)
    (query / "0001_c1s1_000001_99.jpg").unlink()
    (query / "0001_c1s1_000001_98.jpg").symlink_to("gone.jpg")
    with pytest.raises(DatasetError, match=r"0001_c1s1_000001_98\.jpg: it is a symbolic link to gone\.jpg, which does"):
        build_dataset("synthetic_occ", str(own_synthetic_root), verbose=False)


def test_a_dataset_of_person_folders_lists_a_folder_met_twice_once(tmp_path, mbf_log):
    base = tmp_path / "Occluded_REID"
    for folder in ("occluded_body_images", "whole_body_images"):
        for pid in (1, 2):
            _crop(base / folder / f"{pid:03d}" / f"{pid:03d}_01.tif")
    whole = base / "whole_body_images"
    (whole / "loop").symlink_to(".")  # the folder itself, as if it were a person's
    (whole / "000").symlink_to("002")  # a second way to person 2 (sorted first)
    ds = build_test_set("occ_reid", str(tmp_path), verbose=False)
    assert [Path(item.path).name for item in ds.gallery] == ["001_01.tif", "002_01.tif"]
    warned = " ".join(r.getMessage() for r in mbf_log.records if r.levelno == logging.WARNING)
    assert str(whole / "loop") in warned and str(whole / "000") in warned


# ------------------------------------------------------------------------------------ CSV lists
ROWS = ["imgs/a.jpg,1,0", "imgs/b.jpg,2,1", "imgs/c.jpg,2,0"]


def custom_lists(root: Path, gallery: list[str] = ROWS) -> Path:
    folder = root / "custom"
    for name in ("a", "b", "c"):
        _crop(folder / "imgs" / f"{name}.jpg")
    for split, rows in (("train", ROWS), ("query", ROWS[:1]), ("gallery", gallery)):
        (folder / f"{split}.csv").write_text("path,pid,camid\n" + "".join(f"{row}\n" for row in rows), encoding="utf-8")
    return folder


def test_a_csv_list_that_is_not_utf8_is_one_line_naming_the_file_and_line(tmp_path, capsys):
    folder = custom_lists(tmp_path)
    _crop(folder / "imgs" / "caf\u00e9.jpg")
    (folder / "train.csv").write_bytes("path,pid,camid\nimgs/a.jpg,1,0\nimgs/caf\u00e9.jpg,2,0\n".encode("latin-1"))
    code = main(["train", "--config_file", str(TINY_CONFIG), "MODEL.DEVICE", "cpu", "DATASETS.NAMES", "('custom')",
                 "DATASETS.ROOT_DIR", str(tmp_path), "OUTPUT_DIR", str(tmp_path / "run")])
    line = cli_error(code, capsys)
    assert f"{folder / 'train.csv'} line 3 is not UTF-8" in line and "saved as UTF-8" in line
    assert not (tmp_path / "run").exists()


def test_a_csv_list_with_a_byte_order_mark_and_crlf_lines_is_read(tmp_path):
    folder = custom_lists(tmp_path)
    text = (folder / "gallery.csv").read_text(encoding="utf-8")
    (folder / "gallery.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    ds = build_dataset("custom", str(tmp_path), verbose=False)
    assert [Path(item.path).name for item in ds.gallery] == ["a.jpg", "b.jpg", "c.jpg"]


@pytest.mark.parametrize("again", ["imgs/b.jpg,2,1", "./imgs/b.jpg,2,1", "imgs/../imgs/b.jpg,7,0", "{abs},2,1"])
def test_a_csv_list_naming_one_image_twice_is_refused_with_both_lines(tmp_path, again):
    folder = custom_lists(tmp_path)
    again = again.format(abs=folder / "imgs" / "b.jpg")
    custom_lists(tmp_path, ROWS + [again])
    with pytest.raises(DatasetError, match=r"gallery\.csv lines 3 and 5 both name the image .*b\.jpg; list each"):
        build_dataset("custom", str(tmp_path), verbose=False)


def test_a_csv_list_holding_every_row_twice_does_not_double_the_gallery(tmp_path):
    custom_lists(tmp_path, ROWS + ROWS)
    with pytest.raises(DatasetError, match=r"gallery\.csv lines 2 and 5 both name the image .*a\.jpg"):
        build_test_set("custom", str(tmp_path), verbose=False)


def test_a_msmt17_list_naming_one_image_twice_or_not_utf8_is_refused(tmp_path):
    base = tmp_path / "msmt17" / "MSMT17_V1"
    lines = {"list_train.txt": ["0000/0000_000_01_0303morning_0015_0.jpg 0"],
             "list_val.txt": ["0001/0001_000_02_0303morning_0016_0.jpg 1"],
             "list_query.txt": ["0000/0000_001_03_0303morning_0017_0.jpg 0"],
             "list_gallery.txt": ["0000/0000_002_04_0303morning_0018_0.jpg 0",
                                  "0000/0000_002_04_0303morning_0018_0.jpg 0"]}
    for name, rows in lines.items():
        sub = "train" if "train" in name or "val" in name else "test"
        for row in rows:
            (base / sub / row.split()[0]).parent.mkdir(parents=True, exist_ok=True)
            (base / sub / row.split()[0]).touch()
        (base / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"list_gallery\.txt lines 1 and 2 both name the image"):
        build_test_set("msmt17", str(tmp_path), verbose=False)
    (base / "list_gallery.txt").write_bytes(b"0000/0000_002_04_0303morning_0018_0.jpg 0\n0000/caf\xe9.jpg 0\n")
    with pytest.raises(DatasetError, match=r"list_gallery\.txt line 2 is not UTF-8"):
        build_test_set("msmt17", str(tmp_path), verbose=False)
