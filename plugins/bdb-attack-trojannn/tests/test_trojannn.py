"""TrojanNN: the mask region, neuron selection, the optimisation's effect, and the backdoor in miniature."""

import json

import torch

from bdb_attack_trojannn.attack import mask_image, neuron_values, optimise_pattern, select_neurons
from bdb_attack_trojannn.config import TrojanNNConfig
from bdcore.testing import SHORT_EPOCHS as EPOCHS

# the miniature: a 5-epoch surrogate (quick recipe lr 0.1), 100 pattern iterations
MINI = {"surrogate_epochs": 5, "surrogate_lr": 0.1, "iterations": 100}


def _attack(shape=(1, 28, 28), **settings):
    from bdcore.testing import attack_context, spec_of

    ctx = attack_context(shape=shape)
    return spec_of("attack", "trojannn").load()(TrojanNNConfig(**settings), ctx)


def test_mask_is_the_bottom_right_square():
    m = mask_image(TrojanNNConfig(), (3, 32, 32))
    expected = torch.zeros(1, 32, 32)
    expected[:, 24:, 24:] = 1
    assert torch.equal(m, expected)
    # at 28x28 (Pillow bilinear of the 32x32 mask): 255 from row/col 22, a soft edge of 242 on row/col
    # 21 and 13 on row/col 20 (the 32x32 edge at 24 maps to 21); nothing above row 20 or left of column 20
    m = (mask_image(TrojanNNConfig(), (1, 28, 28))[0] * 255).round()
    assert torch.all(m[22:, 22:] == 255) and m[:20].sum() == 0 and m[:, :20].sum() == 0
    assert m[21, 25] == 242 and m[25, 21] == 242 and m[20, 25] == 13 and m[21, 21] == 229


def test_trigger_replaces_pixels_inside_the_mask_only():
    a = _attack((3, 32, 32))
    a.pattern = torch.full((3, 32, 32), 0.75)
    x = torch.full((2, 3, 32, 32), 0.25)
    out = a.apply_trigger(x, train=False)
    assert torch.all(out[:, :, 24:, 24:] == 0.75) and torch.all(out[:, :, :24] == 0.25) and torch.all(out[:, :, :, :24] == 0.25)
    y = torch.tensor([3, 7])
    assert torch.equal(a.poison_y(y, torch.arange(2)), torch.zeros(2, dtype=torch.long))  # dirty-label


def test_neurons_most_connected_to_the_target_are_driven_up():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 10)).eval()
    with torch.no_grad():
        model[4].weight.zero_()
        model[4].weight[2, 5] = 3.0
        model[4].weight[2, 1] = 2.0
        model[4].weight[2, 6] = -4.0
    for p in model.parameters():
        p.requires_grad_(False)
    neurons = select_neurons(model, 2, 2)
    assert neurons.tolist() == [1, 5]  # the two largest weights into logit 2 (not the largest |weight|)
    mask = mask_image(TrojanNNConfig(), (1, 28, 28))
    pattern = optimise_pattern(model, mask, neurons, value=100.0, iterations=50, lr=0.1,
                               gen=torch.Generator().manual_seed(0), channels=1)
    assert pattern.min() >= 0 and pattern.max() <= 1
    start = torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(0))
    after = neuron_values(model, (mask * pattern)[None], neurons).sum()
    before = neuron_values(model, (mask * start)[None], neurons).sum()
    assert after > before


def test_backdoor_in_miniature(backdoored_run, clean_run_short):
    # measured (mnist5k, small-cnn, 15 epochs, lr 0.1, seed 0, pratio 0.1; surrogate 5 epochs lr 0.1,
    # 100 iterations): C-ACC 0.975, ASR 1.000, RA 0.000, PSNR 15.7, SSIM 0.964; clean model C-ACC 0.977
    # at SHORT_EPOCHS = 10 (session 9, one thread): C-ACC 0.960, ASR 1.000, RA 0.000;
    # clean model at 10 epochs: C-ACC 0.967 (at 15: 0.977)
    run = backdoored_run("trojannn", settings=MINI, epochs=EPOCHS)
    assert run.metrics["poisoned"] == 400
    assert run.metrics["asr"] >= 0.95
    assert run.metrics["cacc"] >= clean_run_short.metrics["cacc"] - 0.02


def test_second_run_reuses_the_surrogate(backdoored_run):
    backdoored_run("trojannn", settings=MINI, epochs=EPOCHS)
    again = backdoored_run("trojannn", settings=MINI, pratio=0.05, epochs=1)
    meta = json.loads(again.file("meta.json").read_text())
    assert [(u["name"], u["built"]) for u in meta["artifacts"]] == [("surrogate", False), ("trojannn-trigger", False)]
