"""Poison Ink: Canny edges on hand-made images, hysteresis, the coloured trigger, the hiding loss, and the
attack in miniature."""

import json

import torch

from bdb_attack_poison_ink.attack import InkLoss, InkNet, canny, color_of, edge_trigger, hysteresis
from bdb_attack_poison_ink.config import PoisonInkConfig
from bdcore.testing import SHORT_EPOCHS as EPOCHS

# the miniature: white edges (MNIST is grey), networks of width 8 trained 2 epochs (batches of 64, Adam 1e-3)
MINI = {"color": [1.0, 1.0, 1.0], "epochs": 2, "batch_size": 64, "lr": 1e-3, "width": 8}


def _attack(shape=(1, 28, 28), **settings):
    from bdcore.testing import attack_context, spec_of

    ctx = attack_context(shape=shape)
    return spec_of("attack", "poison-ink").load()(PoisonInkConfig(**settings), ctx)


def test_canny_finds_a_straight_edge_as_one_line_in_its_direction():
    # a step from 0 to 1 centred on column 4 (0 | 0.5 | 1): the gradient peaks on column 4 only
    x = torch.zeros(1, 1, 9, 9)
    x[..., 4] = 0.5
    x[..., 5:] = 1.0
    expected = torch.zeros(9, 9)
    expected[:, 4] = 1
    assert torch.equal(canny(x)[0, 0], expected)
    assert torch.equal(canny(x.transpose(-1, -2))[0, 0], expected.t())  # the horizontal edge: row 4
    assert torch.equal(canny(x * 0.1)[0, 0], expected)  # thresholds are relative to the image's largest gradient
    assert canny(torch.full((2, 3, 9, 9), 0.4)).sum() == 0  # no structure, no edges
    rgb = torch.zeros(1, 3, 9, 9)
    rgb[:, 1, :, 4] = 0.5
    rgb[:, 1, :, 5:] = 1.0  # the same edge in green only: found through the luma
    assert torch.equal(canny(rgb)[0, 0], expected)


def test_hysteresis_keeps_weak_edges_connected_to_strong_ones():
    weak = torch.tensor([[1, 1, 1, 0, 1, 1],
                         [0, 0, 0, 1, 0, 0],
                         [1, 0, 0, 0, 0, 0]], dtype=torch.bool)[None, None]
    strong = torch.zeros_like(weak)
    strong[..., 0, 0] = True
    out = hysteresis(weak, strong)[0, 0].int()
    # the chain (0,0)-(0,1)-(0,2)-(1,3)-(0,4)-(0,5) is 8-connected; (2,0) touches no kept pixel
    assert out.tolist() == [[1, 1, 1, 0, 1, 1], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]]
    assert hysteresis(weak, torch.zeros_like(weak)).sum() == 0


def test_trigger_is_the_edge_map_in_the_trigger_colour():
    x = torch.zeros(1, 3, 9, 9)
    x[..., 4] = 0.5
    x[..., 5:] = 1.0
    t = edge_trigger(x, PoisonInkConfig(color=[0.0, 1.0, 0.0]))
    assert torch.equal(t[0, 1], canny(x)[0, 0]) and t[0, 0].sum() == 0 and t[0, 2].sum() == 0
    assert torch.allclose(color_of(PoisonInkConfig(color=[0.0, 1.0, 0.0]), 1), torch.tensor([0.587]))  # BT.601 luma
    assert torch.equal(color_of(PoisonInkConfig(color=[0.3]), 3), torch.tensor([0.3, 0.3, 0.3]))
    import pytest

    from bdcore import BdbError

    with pytest.raises(BdbError, match="give 1 value"):
        _attack(color=[1.0, 0.0])  # before any training


def test_hiding_loss_on_hand_set_networks():
    # an injection network that outputs 0 and an extractor that outputs 1/2 everywhere: the loss is
    # w_e * (mean (1/2 - T)^2 + 1/4)
    net = InkNet(1, 4)
    for p in net.inject.out.parameters():
        torch.nn.init.zeros_(p)
    for p in net.extract.out.parameters():
        torch.nn.init.zeros_(p)  # sigmoid(0) = 1/2
    x = torch.zeros(1, 1, 9, 9)
    x[..., 4] = 0.5
    x[..., 5:] = 1.0
    cfg = PoisonInkConfig(color=[1.0, 1.0, 1.0], extract_weight=2.0)
    t = edge_trigger(x, cfg)  # 9 edge pixels of value 1 out of 81
    expected = 2.0 * (((9 * 0.25) + (72 * 0.25)) / 81 + 0.25)
    loss = InkLoss(cfg).loss(net.train(), x, torch.zeros(1, dtype=torch.long), None)
    assert abs(loss.item() - expected) < 1e-6 and float(t.sum()) == 9


def test_container_is_the_image_plus_the_injected_residual():
    a = _attack(color=[1.0, 1.0, 1.0])
    x = torch.rand(3, 1, 28, 28)
    out = a.apply_trigger(x, train=True)
    r = a.net.residual(x, edge_trigger(x, a.config))
    assert torch.allclose(out, (x + r).clamp(0, 1), atol=1e-6)
    assert torch.equal(a.poison_y(torch.tensor([3, 7]), torch.arange(2)), torch.zeros(2, dtype=torch.long))
    b = _attack(color=[1.0, 1.0, 1.0], network_seed=5)
    b.load_state(a.state())
    assert torch.equal(b.apply_trigger(x, train=False), out)


def test_backdoor_in_miniature(backdoored_run, clean_run_short):
    # measured (mnist5k, small-cnn, 15 epochs, lr 0.1, seed 0, pratio 0.1; MINI): C-ACC 0.973, ASR 1.000,
    # RA 0.000, PSNR 29.1, SSIM 0.952; clean model C-ACC 0.977
    # at SHORT_EPOCHS = 10 (session 9, one thread): C-ACC 0.961, ASR 0.987, RA 0.013, PSNR 29.2;
    # clean model at 10 epochs: C-ACC 0.967 (at 15: 0.977)
    run = backdoored_run("poison-ink", settings=MINI, epochs=EPOCHS)
    assert run.metrics["poisoned"] == 400
    assert run.metrics["asr"] >= 0.95
    assert run.metrics["cacc"] >= clean_run_short.metrics["cacc"] - 0.02
    assert run.metrics["psnr"] >= 27  # 29.1


def test_second_run_reuses_the_trained_networks(backdoored_run):
    backdoored_run("poison-ink", settings=MINI, epochs=EPOCHS)
    again = backdoored_run("poison-ink", settings=MINI, pratio=0.05, epochs=1)
    meta = json.loads(again.file("meta.json").read_text())
    assert [(u["name"], u["built"]) for u in meta["artifacts"]] == [("poison-ink-networks", False)]
