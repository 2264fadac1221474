"""Every image case the loader promises to handle, generated here."""
import io

import numpy as np
import pytest
from helpers import write_image
from PIL import Image

from resnet_gui.core import images
from resnet_gui.core.errors import ImageLoadError
from resnet_gui.core.images import list_images, load_image


@pytest.mark.parametrize("ext,fmt", [("jpg", "JPEG"), ("png", "PNG"), ("bmp", "BMP"), ("gif", "GIF"),
                                     ("tif", "TIFF"), ("webp", "WEBP")])
def test_allowed_formats_load_as_rgb(tmp_path, ext, fmt):
    f = write_image(tmp_path / f"a.{ext}", size=(20, 10), color=(200, 30, 40), fmt=fmt)
    img = load_image(f)
    assert img.mode == "RGB" and img.size == (20, 10)
    r, g, b = img.getpixel((5, 5))
    assert abs(r - 200) < 30 and g < 80 and b < 80


def test_disallowed_format_is_rejected(tmp_path):
    f = tmp_path / "a.png"  # a PPM wearing a PNG name
    Image.new("RGB", (4, 4)).save(f, format="PPM")
    with pytest.raises(ImageLoadError, match=r"a.png: an image in a format this app does not read \(PPM\)"):
        load_image(f)


def test_a_text_file_named_like_an_image_is_called_not_an_image(tmp_path):
    f = tmp_path / "notes.jpg"
    f.write_text("shopping list: eggs, flour")
    with pytest.raises(ImageLoadError, match=r"notes.jpg: not an image \(its contents are not a picture") as caught:
        load_image(f)
    assert "supported format" not in str(caught.value) and "JPEG" not in str(caught.value)


def test_rgba_is_composited_on_white(tmp_path):
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 255
    arr[:, :2, 3] = 0      # left half fully transparent
    arr[:, 2:, 3] = 255    # right half opaque red
    f = tmp_path / "rgba.png"
    Image.fromarray(arr, "RGBA").save(f)
    img = load_image(f)
    assert img.getpixel((0, 0)) == (255, 255, 255)
    assert img.getpixel((3, 0)) == (255, 0, 0)


def test_la_and_palette_transparency(tmp_path):
    la = Image.new("LA", (2, 2), (0, 0))
    la.save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png").getpixel((0, 0)) == (255, 255, 255)
    p = Image.new("P", (2, 2), 1)
    p.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    p.info["transparency"] = 1
    p.save(tmp_path / "p.png", transparency=1)
    assert load_image(tmp_path / "p.png").getpixel((0, 0)) == (255, 255, 255)
    p2 = Image.new("P", (2, 2), 1)
    p2.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    p2.save(tmp_path / "p2.gif")
    assert load_image(tmp_path / "p2.gif").getpixel((0, 0)) == (10, 20, 30)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    arr = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    f = tmp_path / "g16.png"
    Image.fromarray(arr).save(f)
    img = load_image(f)
    values = [img.getpixel((x, 0))[0] for x in range(4)]
    assert values == [0, 4, 128, 255]


def test_cmyk_one_bit_and_grey(tmp_path):
    Image.new("CMYK", (3, 3), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    r, g, b = load_image(tmp_path / "c.jpg").getpixel((1, 1))
    assert r > 200 and g < 60 and b < 60
    one = Image.new("1", (3, 3), 1)
    one.save(tmp_path / "one.png")
    assert load_image(tmp_path / "one.png").getpixel((0, 0)) == (255, 255, 255)
    Image.new("L", (3, 3), 77).save(tmp_path / "l.png")
    assert load_image(tmp_path / "l.png").getpixel((0, 0)) == (77, 77, 77)


def test_float_tiff_is_scaled(tmp_path):
    arr = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    Image.fromarray(arr, "F").save(tmp_path / "f.tif")
    img = load_image(tmp_path / "f.tif")
    assert [img.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg").size == (20, 40)


def test_multi_frame_uses_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    r, g, b = load_image(tmp_path / "anim.gif").getpixel((4, 4))
    assert r > 200 and b < 50
    frames[0].save(tmp_path / "multi.tif", save_all=True, append_images=frames[1:])
    assert load_image(tmp_path / "multi.tif").getpixel((4, 4))[0] > 200


def test_truncated_image(tmp_path):
    f = write_image(tmp_path / "full.jpg", size=(256, 256), fmt="JPEG")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(f.read_bytes()[:2000])
    with pytest.raises(ImageLoadError, match="cut.jpg: cannot decode the image.*truncated"):
        load_image(cut)


def test_decompression_bomb_error(tmp_path, monkeypatch):
    f = write_image(tmp_path / "big.png", size=(100, 100))
    monkeypatch.setattr(images, "MAX_DECODE_BYTES", 1000)
    with pytest.raises(ImageLoadError, match="big.png: image too large to open safely"):
        load_image(f)


@pytest.mark.parametrize("content,reason", [(None, "file not found"), (b"hello", "not an image"),
                                            (b"", "not an image")])
def test_missing_and_non_image_files(tmp_path, content, reason):
    f = tmp_path / "x.png"
    if content is not None:
        f.write_bytes(content)
    with pytest.raises(ImageLoadError, match=f"x.png: {reason}"):
        load_image(f)


def test_bytes_source_for_pasted_images():
    buf = io.BytesIO()
    Image.new("RGB", (5, 5), (1, 2, 3)).save(buf, format="PNG")
    assert load_image(buf.getvalue(), name="clipboard").getpixel((0, 0)) == (1, 2, 3)
    with pytest.raises(ImageLoadError, match="clipboard"):
        load_image(b"junk", name="clipboard")


def test_list_images_recurses_and_skips_hidden_and_non_images(tmp_path):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "sub" / "b.JPG", fmt="JPEG")
    (tmp_path / "notes.txt").write_text("x")
    write_image(tmp_path / ".hidden" / "c.png")
    assert [p.name for p in list_images([tmp_path])] == ["a.png", "b.JPG"]
