"""Image-space tools on a tiny BadNets run; Grad-CAM and frequency saliency pinned on hand-made
models; the Fréchet distance pinned on hand-computed Gaussians and FID run on a random Inception-v3."""

import sys

import numpy as np
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


def test_shap_puts_the_attribution_on_the_badnets_patch(attack, bdb_store, tmp_path):
    pytest.importorskip("shap", reason="the analysis extra (shap) is not installed: pip install 'bdcore[analysis]'")
    nums = check_analysis("shap", attack.run_id, bdb_store, tmp_path, n=6,
                          settings={"nsamples": 20, "background": 16, "images": 3})
    pred, target = nums["predicted_class"], nums["target_class"]
    # measured: 0.40 of the triggered inputs' attribution on the patch (1.1% of the pixels); 0 on the
    # same pixels of the clean inputs (black there, like every background image: expected gradients
    # give a pixel that equals the background no attribution)
    assert pred["triggered"] > 0.2 > 10 * nums["trigger_area"]
    assert pred["triggered"] > pred["clean"] + 0.2 and target["triggered"] > target["clean"] + 0.2


def test_shap_without_its_extra_names_it(attack, bdb_store, tmp_path, monkeypatch):
    from bdcore import BdbError

    monkeypatch.setitem(sys.modules, "shap", None)  # import shap -> ImportError
    with pytest.raises(BdbError, match=r"pip install 'bdcore\[analysis\]'"):
        check_analysis("shap", attack.run_id, bdb_store, tmp_path, n=4)


def test_frechet_distance_of_hand_computed_gaussians():
    from bdb_analysis_images.fid import frechet_distance, frechet_distance_of_features, gaussian

    assert frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3)) == pytest.approx(0.0, abs=1e-12)
    assert frechet_distance([0.0], [[1.0]], [3.0], [[1.0]]) == pytest.approx(9.0)
    # |mu1 - mu2|^2 + sum_i (s1_i + s2_i - 2 sqrt(s1_i s2_i)) = 1 + (1 + 4 - 4) + (4 + 9 - 12) = 3
    assert frechet_distance([0.0, 0.0], np.diag([1.0, 4.0]), [1.0, 0.0], np.diag([4.0, 9.0])) == pytest.approx(3.0)
    # the exact low-rank route (fewer samples than dimensions) agrees with scipy's sqrtm on covariances
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 8)), 2 * rng.normal(size=(4, 8)) + 1
    assert frechet_distance_of_features(a, b) == pytest.approx(frechet_distance(*gaussian(a), *gaussian(b)), rel=1e-6)
    a, b = rng.normal(size=(30, 3)), rng.normal(size=(20, 3)) * 2
    assert frechet_distance_of_features(a, b) == pytest.approx(frechet_distance(*gaussian(a), *gaussian(b)), rel=1e-9)
    assert frechet_distance_of_features(a, a) == pytest.approx(0.0, abs=1e-9)


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """A randomly initialised torchvision Inception-v3 state dict saved as a local file."""
    from torchvision.models import inception_v3

    path = tmp_path_factory.mktemp("fid") / "inception.pth"
    torch.manual_seed(0)
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), path)
    return path


def test_fid_runs_on_local_inception_weights(attack, bdb_store, tmp_path, inception_weights):
    from bdb_analysis_images.fid import frechet_distance_of_features, inception_features, load_inception

    feats = inception_features(load_inception(inception_weights), torch.rand(2, 1, 28, 28))
    assert feats.shape == (2, 2048) and np.isfinite(feats).all()
    assert frechet_distance_of_features(feats, feats) == pytest.approx(0.0, abs=1e-9)
    nums = check_analysis("quality", attack.run_id, bdb_store, tmp_path, n=2,
                          settings={"fid_weights": str(inception_weights)})
    assert set(nums["fid"]) == {"bd-train", "bd-test"} and all(v >= 0 for v in nums["fid"].values())
    assert nums["bd-train"]["fid"] == nums["fid"]["bd-train"] and "inception_v3" in nums["fid_note"]


def test_fid_weights_that_are_missing_or_not_a_state_dict_fail_in_one_line(attack, bdb_store, tmp_path):
    from bdcore import BdbError

    bad = tmp_path / "junk.pth"
    bad.write_bytes(b"not a state dict")
    for path, why in ((tmp_path / "missing.pth", "no file"), (bad, "not a state dict of torchvision's inception_v3")):
        with pytest.raises(BdbError, match=why) as info:
            check_analysis("quality", attack.run_id, bdb_store, tmp_path, n=2, settings={"fid_weights": str(path)})
        assert "\n" not in str(info.value)
