"""PSNR/SSIM against hand-computed values, and the preview image."""

import json

import pytest
import torch
from typer.testing import CliRunner

from bdcore.lib.stealth import psnr, ssim, stealth
from bdcore_cli.main import app


def test_psnr_of_a_uniform_shift_of_0_1_is_20_db():
    x = torch.rand(3, 1, 8, 8) * 0.8
    assert torch.allclose(psnr(x, x + 0.1), torch.full((3,), 20.0), atol=1e-4)
    assert torch.isinf(psnr(x, x)).all()


def test_ssim_of_constant_images_is_the_luminance_term():
    # constant a vs b: SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = 0.01^2 -> 0.6001 / 0.6101
    a, b = torch.full((1, 1, 16, 16), 0.5), torch.full((1, 1, 16, 16), 0.6)
    assert ssim(a, b).item() == pytest.approx(0.6001 / 0.6101, rel=1e-5)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim(x, x), torch.ones(2))


def test_stealth_skips_unchanged_images():
    x = torch.zeros(2, 1, 8, 8)
    y = x.clone()
    y[1] += 0.1
    s = stealth(x, y)
    assert s["psnr"] == pytest.approx(20.0, abs=1e-4) and s["ssim"] < 1
    assert stealth(x, x)["psnr"] is None


def test_preview_writes_a_png_and_reports_stealth(tmp_path):
    out = tmp_path / "p.png"
    res = CliRunner().invoke(app, ["preview", "badnet", "--dataset", "digits", "--n", "4", "--out", str(out),
                                   "--runs", str(tmp_path)])
    assert res.exit_code == 0, res.stderr
    from PIL import Image

    img = Image.open(out)
    # 3 rows of 64x64 tiles (8x8 upscaled x8) with 2-pixel padding
    assert img.mode == "RGB" and img.size == (4 * 64 + 5 * 2, 3 * 64 + 4 * 2)
    assert "PSNR" in res.stdout
    bad = CliRunner().invoke(app, ["preview", "badnet", "--out", str(tmp_path / "x.jpg")])
    assert bad.exit_code == 2 and "must end in .png" in bad.stderr


def test_attack_runs_record_psnr_and_ssim(tmp_path):
    res = CliRunner().invoke(app, ["attack", "blended", "--dataset", "digits", "--epochs", "1", "--json",
                                   "--runs", str(tmp_path)])
    m = json.loads(res.stdout)
    # blended alpha 0.2 over uniform noise on 8x8 digits
    assert 14 < m["psnr"] < 26 and 0 < m["ssim"] < 0.99  # measured 19.78 dB, 0.959
    rows = json.loads(CliRunner().invoke(app, ["results", "--json", "--runs", str(tmp_path)]).stdout)
    assert rows[0]["psnr"] == m["psnr"]
