"""bdcore.lib.frequency: orthonormal DCT, blockwise DCT, coefficient bumps and the YUV transform."""

import math

import pytest
import torch

from bdcore.lib.frequency import (
    add_block_dct,
    block_dct2,
    block_idct2,
    dct2,
    dct_matrix,
    fit_window,
    idct2,
    rgb_to_yuv,
    scale_position,
    yuv_to_rgb,
)


@pytest.mark.parametrize("n", [1, 2, 7, 8, 28, 32])
def test_dct_matrix_is_orthonormal(n):
    c = dct_matrix(n, dtype=torch.float64)
    assert torch.allclose(c @ c.T, torch.eye(n, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(c.T @ c, torch.eye(n, dtype=torch.float64), atol=1e-12)


def test_dct_of_a_short_signal_by_hand():
    # x = (1, 2, 3, 4): X0 = (1+2+3+4)/sqrt(4) = 5;
    # X1 = sqrt(2/4) * sum x_n cos(pi (2n+1) / 8)
    #    = sqrt(1/2) * (cos(pi/8) + 2 cos(3pi/8) - 3 cos(3pi/8) - 4 cos(pi/8))
    #    = -sqrt(1/2) * (3 cos(pi/8) + cos(3pi/8)) = -2.230442...
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    X = dct_matrix(4, dtype=torch.float64) @ x
    assert X[0].item() == pytest.approx(5.0)
    assert X[1].item() == pytest.approx(-math.sqrt(0.5) * (3 * math.cos(math.pi / 8) + math.cos(3 * math.pi / 8)))
    assert X[1].item() == pytest.approx(-2.2304425, abs=1e-6)


def test_dct2_of_a_2x2_block_by_hand():
    # C = [[1, 1], [1, -1]] / sqrt(2); C X C^T = [[10, -2], [-4, 0]] / 2 for X = [[1, 2], [3, 4]]
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert torch.allclose(dct2(x), torch.tensor([[5.0, -1.0], [-2.0, 0.0]]), atol=1e-6)


def test_dct2_of_a_constant_image_is_its_dc_term():
    # orthonormal: DC = c * sqrt(H * W), every other coefficient 0
    c = dct2(torch.full((28, 32), 0.5, dtype=torch.float64))
    assert c[0, 0].item() == pytest.approx(0.5 * math.sqrt(28 * 32))
    c[0, 0] = 0
    assert c.abs().max().item() < 1e-12


def test_dct2_inverse_and_batch_dims():
    x = torch.rand(3, 2, 28, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(idct2(dct2(x)), x, atol=1e-12)
    # energy preserved (Parseval) per image
    assert torch.allclose(dct2(x).pow(2).sum((-2, -1)), x.pow(2).sum((-2, -1)))


def test_block_dct_layout_and_inverse():
    x = torch.rand(2, 3, 64, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    c = block_dct2(x, 32)
    assert torch.allclose(c[..., 32:, :], dct2(x[..., 32:, :]))  # block (1, 0)
    assert torch.allclose(c[..., :32, :], dct2(x[..., :32, :]))
    assert torch.allclose(block_idct2(c, 32), x, atol=1e-12)
    c8 = block_dct2(x, (8, 16))
    assert torch.allclose(c8[..., 8:16, 16:32], dct2(x[..., 8:16, 16:32]))
    with pytest.raises(ValueError):
        block_dct2(x, 24)


def test_window_and_position_scaling():
    assert fit_window(28, 28, 32) == (28, 28)
    assert fit_window(64, 8, 32) == (32, 8)
    assert [scale_position(p, 32, 28) for p in (15, 31)] == [13, 27]
    assert [scale_position(p, 32, 8) for p in (15, 31)] == [3, 7]
    assert [scale_position(p, 32, 32) for p in (0, 15, 31)] == [0, 15, 31]
    with pytest.raises(ValueError):
        scale_position(32, 32, 28)


def test_add_block_dct_sets_the_coefficients():
    x = torch.rand(2, 1, 64, 70, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = add_block_dct(x, [(15, 15), (31, 31)], 0.4, 32)
    d = block_dct2(out[..., :64, :64], 32) - block_dct2(x[..., :64, :64], 32)
    expected = torch.zeros(32, 32, dtype=torch.float64)
    expected[15, 15] = expected[31, 31] = 0.4
    assert torch.allclose(d, expected.repeat(2, 2), atol=1e-12)  # every full 32x32 window
    assert torch.equal(out[..., 64:], x[..., 64:])  # the 6 columns past the last full window
    # pixel value by hand: the (31, 31) basis at pixel (0, 0) is (2/32) cos(31 pi/64)^2
    delta = add_block_dct(torch.zeros(1, 32, 32, dtype=torch.float64), [(31, 31)], 1.0, 32)
    assert delta[0, 0, 0].item() == pytest.approx((2 / 32) * math.cos(31 * math.pi / 64) ** 2)


def test_add_block_dct_on_a_small_image_uses_scaled_positions():
    x = torch.zeros(1, 1, 28, 28, dtype=torch.float64)
    out = add_block_dct(x, [(15, 15), (31, 31)], 1.0, 32)
    c = dct2(out)[0, 0]
    assert c[13, 13].item() == pytest.approx(1.0) and c[27, 27].item() == pytest.approx(1.0)
    c[13, 13] = c[27, 27] = 0
    assert c.abs().max().item() < 1e-12


def test_yuv_values_by_hand_and_round_trip():
    rgb = torch.tensor([1.0, 1.0, 1.0]).view(1, 3, 1, 1)
    yuv = rgb_to_yuv(rgb).flatten()
    assert yuv[0].item() == pytest.approx(1.0, abs=1e-6)  # white: Y = 1
    # grey has no chroma, up to the rounding of the published coefficients (U row sums to 1e-5)
    assert yuv[1].item() == pytest.approx(0.0, abs=2e-5) and yuv[2].item() == pytest.approx(0.0, abs=2e-5)
    red = rgb_to_yuv(torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)).flatten()  # unbatched (3, H, W) works too
    assert torch.allclose(red, torch.tensor([0.299, -0.14713, 0.615]))
    x = torch.rand(4, 3, 5, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.allclose(yuv_to_rgb(rgb_to_yuv(x)), x, atol=1e-12)
    assert torch.allclose(rgb_to_yuv(yuv_to_rgb(x)), x, atol=1e-12)
    with pytest.raises(ValueError):
        rgb_to_yuv(torch.rand(2, 1, 4, 4))


def test_dtype_and_device_follow_the_input():
    x = torch.rand(2, 3, 32, 32)
    assert dct2(x).dtype == torch.float32 and rgb_to_yuv(x).dtype == torch.float32
    if torch.cuda.is_available():
        xc = x.cuda()
        assert torch.allclose(add_block_dct(rgb_to_yuv(xc), [(15, 15)], 0.1, 32).cpu(),
                              add_block_dct(rgb_to_yuv(x), [(15, 15)], 0.1, 32), atol=1e-5)


def test_opencv_ycrcb_of_a_pixel_by_hand_and_back():
    from bdcore.lib.frequency import rgb_to_ycrcb_u8, ycrcb_to_rgb_u8

    # Y = (4899*200 + 9617*100 + 1868*50 + 8192) >> 14 = 124; Cr = ((200-124)*11682 + 128<<14 + 8192) >> 14
    # = 182; Cb = ((50-124)*9241 + 128<<14 + 8192) >> 14 = 86 (floats: 124.2, 182.19, 86.26)
    rgb = torch.tensor([200, 100, 50], dtype=torch.int32).view(1, 3, 1, 1)
    ycc = rgb_to_ycrcb_u8(rgb)
    assert ycc.flatten().tolist() == [124, 182, 86]
    # back: R = 124 + (54*22987 + 8192) >> 14 = 200; G = 124 + (-42*-5636 + 54*-11698 + 8192) >> 14 = 100;
    # B = 124 + (-42*29049 + 8192) >> 14 = 50
    assert ycrcb_to_rgb_u8(ycc).flatten().tolist() == [200, 100, 50]
    # saturation: pure red has Cr = (179*11682 + 2105344) >> 14 = 256 -> 255, Y = 76, Cb = 85;
    # (255, 255, 0): G = 255 + (-128*-5636 + 127*-11698 + 8192) >> 14 = 255 - 47 = 208, B = 255 - 227 = 28
    assert rgb_to_ycrcb_u8(torch.tensor([255, 0, 0]).view(1, 3, 1, 1)).flatten().tolist() == [76, 255, 85]
    assert ycrcb_to_rgb_u8(torch.tensor([255, 255, 0]).view(1, 3, 1, 1)).flatten().tolist() == [255, 208, 28]


def test_spectral_trigger_rejects_unknown_colour_space():
    from bdcore.lib.frequency import spectral_trigger

    with pytest.raises(ValueError, match="colour space"):
        spectral_trigger(torch.zeros(1, 3, 8, 8), 30, ((1, 1),), 8, color_space="hsv")
