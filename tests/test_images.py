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
