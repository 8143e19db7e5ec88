"""LF: the reference's smoothing (window rule, hand-computed taps, zero borders), the rescale to [0, 0.2],
targeted DeepFool, the universal loop's update and stop rules, and the backdoor in miniature."""

import json
import math

import torch

from bdb_attack_lf.attack import (RawInput, deepfool_to_target, gaussian_kernel, low_pass, pick_images, project,
                                  rescale, universal_low_frequency, whole_levels, window_size)
from bdb_attack_lf.config import LFConfig
from bdcore.testing import SHORT_EPOCHS as EPOCHS

# the miniature: the 5-epoch surrogate of the other surrogate attacks (quick recipe lr 0.1, shared through
# the artifact cache); the pattern search itself runs at the reference's settings (100 images, 200 DeepFool
# iterations, up to 50 passes, sigma 6, rescale to [0, 0.2])
MINI = {"surrogate_epochs": 5, "surrogate_lr": 0.1}


def _attack(shape=(1, 28, 28), **settings):
    from bdcore.testing import attack_context, spec_of

    ctx = attack_context(shape=shape)
    return spec_of("attack", "lf").load()(LFConfig(**settings), ctx)


def test_reference_window_rule_and_taps():
    # gauss_smooth(sig=6): size_denom 5, window sig * 5 = 30 taps whatever the image size; the grid
    # (i - 14.5) * 5 over a std of 30 is (i - 14.5) / 6: a Gaussian of std 6 px, centred between taps 14, 15
    assert window_size(6.0) == 30 and window_size(1.0) == 5 and window_size(6.0, 3) == 3
    assert LFConfig().sigma == 6.0 and LFConfig().kernel_size is None
    k = gaussian_kernel(30, 6.0)
    # unnormalised taps exp(-(i - 14.5)^2 / 72): centre exp(-1/288) = 0.996534, ends exp(-841/288) = 0.053926,
    # their sum 14.854507
    s = 14.854507
    assert math.isclose(float(k[14]), 0.996534 / s, rel_tol=1e-5) and float(k[14]) == float(k[15])  # 0.067086
    assert math.isclose(float(k[0]), 0.053926 / s, rel_tol=1e-4) and float(k[0]) == float(k[29])  # 0.0036303
    assert math.isclose(float(k[10]), math.exp(-(4.5**2) / 72) / s, rel_tol=1e-5)  # 0.050816
    assert math.isclose(float(k.sum()), 1.0, rel_tol=1e-12)
    # the old filter stays reachable: window 3, sigma 1: exp(-1/2), 1, exp(-1/2) over 1 + 2 exp(-1/2)
    a, b = math.exp(-0.5) / (1 + 2 * math.exp(-0.5)), 1 / (1 + 2 * math.exp(-0.5))  # 0.274069, 0.451863
    assert torch.allclose(gaussian_kernel(3, 1.0), torch.tensor([a, b, a], dtype=torch.float64))


def test_smoothing_with_zero_borders_and_the_half_pixel_centre():
    k = gaussian_kernel(30, 6.0)
    # an impulse spreads into the outer product of the taps, centred half a pixel before it (the reference
    # pads 14 before and 15 after): output j sums tap t times input j + t - 14
    x = torch.zeros(1, 1, 32, 32)
    x[..., 16, 16] = 1.0
    y = low_pass(x, 30, 6.0)
    assert math.isclose(float(y[0, 0, 16, 16]), float(k[14] ** 2), rel_tol=1e-5)  # 0.0045006
    assert torch.allclose(y[0, 0, 15, 15], y[0, 0, 16, 16]) and torch.allclose(y[0, 0, 15, 16], y[0, 0, 16, 16])
    assert math.isclose(float(y[0, 0, 2, 16]), float(k[28] * k[14]), rel_tol=1e-5)  # j = 2: t = 28
    # zero padding: a constant image keeps its value only where the whole window lies inside (rows 14-16 of
    # 32); the first corner sees taps 14..29 in each direction, 0.5 + k[14] = 0.567086, squared 0.321587,
    # the last taps 0..14, exactly half, squared 0.25
    one = torch.ones(2, 3, 32, 32)
    z = low_pass(one, 30, 6.0)
    assert torch.allclose(z[:, :, 14:17, 14:17], torch.ones(2, 3, 3, 3), atol=1e-6)
    assert math.isclose(float(z[0, 0, 0, 0]), 0.567086**2, rel_tol=1e-5)
    assert math.isclose(float(z[1, 2, 31, 31]), 0.25, rel_tol=1e-5)
    # at 28x28 the 30-tap window is wider than the image: no pixel keeps full gain; the best (j = 13)
    # misses the two end taps, 1 - 2 k[0] = 0.992739 per direction
    z28 = low_pass(torch.ones(1, 1, 28, 28), 30, 6.0)
    assert math.isclose(float(z28.max()), 0.992739**2, rel_tol=1e-5) and float(z28[0, 0, 13, 13]) == float(z28.max())
    # replicated borders (the old filter's) keep a constant image
    assert torch.allclose(low_pass(one, 30, 6.0, "replicate"), one, atol=1e-6)
    assert torch.allclose(low_pass(one, 3, 1.0, "replicate"), one)
    assert torch.equal(low_pass(x, 1, 1.0), x)


def test_rescale_to_0_02_and_whole_levels():
    v = torch.tensor([[[-0.3, 0.1], [0.5, 0.0]]])
    r = rescale(v, 0.2)
    assert torch.allclose(r, torch.tensor([[[0.0, 0.1], [0.2, 0.075]]]))  # (v + 0.3) / 0.8 * 0.2
    assert float(r.min()) == 0.0 and math.isclose(float(r.max()), 0.2, rel_tol=1e-6)
    assert torch.equal(rescale(torch.full((1, 2, 2), 0.7), 0.2), torch.zeros(1, 2, 2))  # the reference: 0 / 0
    # 0-51 grey levels, floor(255 v): 0.075 -> 19.125 -> 19
    assert torch.equal(whole_levels(r) * 255, torch.tensor([[[0.0, 25.0], [51.0, 19.0]]]))
    assert torch.equal(project(torch.tensor([0.3, -0.05]), "inf", 0.1), torch.tensor([0.1, -0.05]))
    assert torch.allclose(project(torch.tensor([3.0, 4.0]), "2", 1.0), torch.tensor([0.6, 0.8]))


def _linear(weight, bias):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(len(weight[0]), len(weight))).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor(weight))
        model[1].bias.copy_(torch.tensor(bias))
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def test_deepfool_step_and_the_fixed_initial_class():
    # two classes: one step of |f_1 - f_0| / ||w|| along w / ||w|| reaches the boundary, the overshoot
    # (the point tested is x + 1.02 r) carries the image past it
    model = _linear([[0.0, 0.0], [2.0, 1.0]], [0.0, -1.0])
    x = torch.tensor([[[[0.1, 0.2]]], [[[0.9, 0.1]]]])  # f_1 - f_0 = -0.6 (class 0), +0.9 (the target)
    r, steps = deepfool_to_target(model, x, 1, overshoot=0.02, max_iter=200)
    assert steps.tolist() == [1, 0] and torch.all(r[1] == 0)
    assert torch.allclose(r[0].flatten(), 1.02 * 0.6 * torch.tensor([2.0, 1.0]) / 5)  # |df| w / ||w||^2
    assert int(model(x[:1] + r[:1]).argmax()) == 1
    # three classes: k stays the initial top class (0) although class 1 takes over after the first step,
    # so every step follows w = W_2 - W_0 = (1, 0) with length |f_2 - f_0| at the current point:
    # x1 = -1 -> 0.02 -> 0.0404 -> 0.0816 -> 0.165 -> 0.333 -> 0.673, where f_2 = x1 beats f_1 = x1 / 2 + 0.3
    model = _linear([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]], [0.0, 0.3, 0.0])
    x = torch.tensor([[[[-1.0, 0.0]]]])
    r, steps = deepfool_to_target(model, x, 2, overshoot=0.02, max_iter=200)
    assert int(steps[0]) == 6 and float(r[0, 0, 0, 1]) == 0.0  # (k = the current class would take 2)
    assert int(model(x + r).argmax()) == 2 and 1.6 < float(r[0, 0, 0, 0]) < 1.7
    # it stops after max_iter steps
    _, steps = deepfool_to_target(model, x, 2, overshoot=0.02, max_iter=3)
    assert int(steps[0]) == 3


def _sum_model(threshold: float, n: int):
    """Two classes on 1x8x8 images: the target 1 once the mean intensity exceeds threshold."""
    return _linear([[0.0] * n, [1.0 / n] * n], [0.0, -threshold])


def test_universal_loop_updates_only_while_the_prediction_is_unchanged():
    torch.manual_seed(0)
    x = torch.rand(12, 1, 8, 8) * 0.1  # mean ~0.05: class 0
    x_rate = torch.rand(6, 1, 8, 8) * 0.1
    model = _sum_model(0.08, 64)
    cfg = LFConfig(sigma=1.0, kernel_size=5, max_iter_df=3)
    v, rate, passes = universal_low_frequency(model, x, x_rate, 1, cfg, torch.Generator().manual_seed(0))
    # the first image's DeepFool step points along (1, ..., 1) and after the first update v moves every image
    # to the target, so no other image updates: v = rescale(S(0 + S(step))), whatever the image
    expected = rescale(low_pass(low_pass(torch.ones(1, 8, 8), 5, 1.0), 5, 1.0), 0.2)
    assert torch.allclose(v, expected, atol=1e-6)
    assert float(v.min()) == 0.0 and math.isclose(float(v.max()), 0.2, rel_tol=1e-5)
    assert (rate, passes) == (1.0, 1)  # every rate image changed: >= 0.2 stops the loop
    again = universal_low_frequency(model, x, x_rate, 1, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(v, again[0])


def test_universal_loop_drops_unconverged_steps_and_stops_on_a_plateau():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 8, 8) * 0.1
    model = _sum_model(0.08, 64)
    # with max_iter_df 2 a step must take < 1 iteration: none counts, v stays 0, the rate stays 0 and the
    # last 5 rates are equal: the loop ends after 5 passes of the 50
    cfg = LFConfig(sigma=1.0, kernel_size=5, max_iter_df=2)
    v, rate, passes = universal_low_frequency(model, x, x, 1, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(v, torch.zeros(1, 8, 8)) and (rate, passes) == (0.0, 5)
    v, _, passes = universal_low_frequency(model, x, x, 1, cfg.model_copy(update={"plateau": 0, "max_iter_uni": 7}),
                                           torch.Generator().manual_seed(0))
    assert passes == 7
    # images the surrogate already gives the target keep the zero step: v is never set (0 / 0 in the reference)
    v, rate, passes = universal_low_frequency(_sum_model(-1.0, 64), x, x, 1, cfg.model_copy(update={"max_iter_df": 3}),
                                              torch.Generator().manual_seed(0))
    assert torch.equal(v, torch.zeros(1, 8, 8)) and passes == 5


def test_search_images_and_rate_images():
    y = torch.arange(10).repeat(30)
    search, rate = pick_images(y, 100, 10, torch.Generator().manual_seed(0))
    assert len(search) == 100 and len(rate) == 100
    assert not set(search.tolist()) & set(rate.tolist())
    assert torch.equal(torch.bincount(y[rate]), torch.full((10,), 10))
    search, rate = pick_images(y, None, 10, torch.Generator().manual_seed(0))
    assert len(search) == 300 and len(rate) == 0


def test_raw_input_feeds_the_inner_model_unnormalised_images():
    inner = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)).eval()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    m, s = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)

    class Normalised(torch.nn.Module):
        def forward(self, x):
            return inner((x - m) / s)

    x = torch.rand(4, 3, 2, 2)
    assert torch.allclose(RawInput(Normalised(), mean, std)(x), inner(x), atol=1e-5)


def test_trigger_is_added_and_clipped_and_labels_go_to_the_target():
    a = _attack()
    a.trigger = torch.full((1, 28, 28), 51 / 255)
    x = torch.full((2, 1, 28, 28), 0.95)
    assert torch.all(a.apply_trigger(x, train=True) == 1.0)
    assert torch.allclose(a.apply_trigger(x - 0.5, train=False), x - 0.5 + 51 / 255)
    assert torch.equal(a.poison_y(torch.tensor([3, 7]), torch.arange(2)), torch.zeros(2, dtype=torch.long))
    b = _attack()
    b.load_state(a.state())
    assert torch.equal(b.trigger, a.trigger)
    d = LFConfig()
    assert (d.samples, d.max_iter_uni, d.max_iter_df, d.overshoot, d.fooling_rate, d.scale) == (100, 50, 200, 0.02,
                                                                                                 0.2, 0.2)


def test_backdoor_in_miniature(backdoored_run, clean_run_short):
    # measured (mnist5k, small-cnn, SHORT_EPOCHS = 10, lr 0.1, pratio 0.1; MINI; one thread) over AVX-512 seeds
    # 0, 1, 2 and AVX2 seed 0: C-ACC 0.972 / 0.967 / 0.965 / 0.970 against the clean model's 0.971 / 0.968 /
    # 0.972 / 0.968 (drop -0.002..0.007), ASR 1.000 everywhere, RA 0.000, PSNR 19.73-19.79 (SSIM 0.69-0.70);
    # the surrogate: 1 pass, fooling rate 0.64-0.70, pattern 0-51 levels, RMS 28.7
    run = backdoored_run("lf", settings=MINI, epochs=EPOCHS)
    assert run.metrics["poisoned"] == 400
    assert run.metrics["asr"] >= 0.95
    assert run.metrics["cacc"] >= clean_run_short.metrics["cacc"] - 0.03
    # the 0-51 pattern (the old L-inf 10/255 trigger gave 28.6)
    assert 18.5 <= run.metrics["psnr"] <= 21.0


def test_second_run_reuses_the_surrogate_and_the_trigger(backdoored_run):
    backdoored_run("lf", settings=MINI, epochs=EPOCHS)
    again = backdoored_run("lf", settings=MINI, pratio=0.05, epochs=1)
    meta = json.loads(again.file("meta.json").read_text())
    assert [(u["name"], u["built"]) for u in meta["artifacts"]] == [("surrogate", False), ("lf-trigger", False)]
