"""Image-space tools on a tiny BadNets run; Grad-CAM and frequency saliency pinned on hand-made models."""

import pytest
import torch
from torch import nn

from bdcore.testing import check_analysis


@pytest.fixture(scope="module")
def attack(backdoored_run):
    return backdoored_run("badnet")


def test_quality_matches_the_runs_stored_stealth(attack, bdb_store, tmp_path):
    nums = check_analysis("quality", attack.run_id, bdb_store, tmp_path)
    # every poisoned sample (400 < 512) is measured, as the harness measured them
    assert nums["bd-train"]["n"] == attack.metrics["poisoned"]
    assert nums["bd-train"]["psnr"] == pytest.approx(attack.metrics["psnr"], rel=1e-4)
    assert nums["bd-train"]["ssim"] == pytest.approx(attack.metrics["ssim"], rel=1e-4)
    assert nums["fid"] is None


def test_grad_cam_of_a_single_pixel_detector_points_at_the_pixel():
    from bdb_analysis_images.saliency import grad_cam

    conv = nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    head = nn.Linear(1, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        head.bias.zero_()
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), head)
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 6, 6] = 1.0
    cam = grad_cam(model, conv, x, torch.tensor([int(model(x).argmax())]))
    assert cam.shape == (1, 8, 8)
    assert int(cam[0].flatten().argmax()) == 6 * 8 + 6


def test_frequency_saliency_of_a_mean_reader_is_the_dc_coefficient():
    from bdb_analysis_images.saliency import frequency_saliency

    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))
    sal = frequency_saliency(model, torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]))
    assert sal[0, 0] > 0 and float(sal.flatten()[1:].abs().max()) < 1e-6


def test_gradcam_looks_at_the_badnets_patch(attack, bdb_store, tmp_path):
    nums = check_analysis("gradcam", attack.run_id, bdb_store, tmp_path, n=100)
    assert nums["cam_on_trigger"] > 2 * nums["trigger_area"]


@pytest.mark.parametrize("tool", ["frequency-saliency", "feature-visualization"])
def test_tool_runs(tool, attack, bdb_store, tmp_path):
    settings = {"steps": 20, "neurons": 4} if tool == "feature-visualization" else {}
    check_analysis(tool, attack.run_id, bdb_store, tmp_path, n=100, settings=settings)
