"""Trigger image loading shared by attacks."""

import pytest
import torch

from bdcore.errors import BdbError
from bdcore.data.images import load_image, load_image_dir, random_pattern


def test_load_image_converts_and_resizes(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 4), (255, 0, 0)).save(tmp_path / "red.png")
    rgb = load_image(tmp_path / "red.png", (3, 2, 2))
    assert torch.allclose(rgb, torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 2, 2))
    gray = load_image(tmp_path / "red.png", (1, 2, 2))
    assert torch.allclose(gray, torch.full((1, 2, 2), 76 / 255))  # ITU-R 601 luma of pure red: 0.299*255 -> 76


def test_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(BdbError, match="x: .* not found"):
        load_image(tmp_path / "none.png", (1, 2, 2), "x:")
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(BdbError, match="not a readable image"):
        load_image(tmp_path / "bad.png", (1, 2, 2))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BdbError, match="holds no PNG"):
        load_image_dir(tmp_path / "empty", (1, 2, 2))
    with pytest.raises(BdbError, match="is not a directory"):
        load_image_dir(tmp_path / "missing", (1, 2, 2))


def test_random_pattern_is_seeded():
    assert torch.equal(random_pattern((1, 4, 4), 3), random_pattern((1, 4, 4), 3))
    assert not torch.equal(random_pattern((1, 4, 4), 3), random_pattern((1, 4, 4), 4))


def test_gaussian_blur_one_window_hand_computed():
    from bdcore import gaussian_blur

    # sigma 1, truncate 2 -> radius 2; 1-D weights exp(-t^2/2) / 2.4837321 for t in -2..2
    d = torch.zeros(1, 2, 9, 9)
    d[0, :, 4, 4] = 1.0
    out = gaussian_blur(d, 1.0, truncate=2.0)
    assert out[0, 0, 4, 4].item() == pytest.approx(1 / 2.4837321**2, abs=1e-6)  # 0.162103
    assert out[0, 1, 4, 5].item() == pytest.approx(0.6065307 / 2.4837321**2, abs=1e-6)  # 0.098320, every channel
    assert out[0, 0, 4, 7].item() == 0.0  # beyond the radius
    assert out.sum().item() == pytest.approx(2.0, abs=1e-5)  # the DC gain is 1
    assert torch.equal(gaussian_blur(d, 0.0), d)


def test_gaussian_blur_per_image_sigma_and_borders():
    from bdcore import gaussian_blur

    d = torch.zeros(2, 1, 9, 9)
    d[:, 0, 4, 4] = 1.0
    out = gaussian_blur(d, torch.tensor([1.0, 2.0]), truncate=2.0)
    assert out[0, 0, 4, 7].item() == 0.0 and out[1, 0, 4, 7].item() > 0.0  # radius 2 vs 4, each its own
    assert torch.allclose(out[:1], gaussian_blur(d[:1], 1.0, truncate=2.0), atol=1e-7)
    # an impulse in the corner: replicate keeps mass off the edge differently from reflect
    c = torch.zeros(1, 1, 9, 9)
    c[0, 0, 0, 0] = 1.0
    rep, ref = gaussian_blur(c, 1.0, border="replicate"), gaussian_blur(c, 1.0, border="reflect")
    assert not torch.allclose(rep, ref)
    # reflect needs the radius below the image size: a 3x3 image at radius 4 falls back to replicate
    small = torch.rand(1, 1, 3, 3)
    assert torch.allclose(gaussian_blur(small, 1.0, border="reflect"), gaussian_blur(small, 1.0, border="replicate"))
