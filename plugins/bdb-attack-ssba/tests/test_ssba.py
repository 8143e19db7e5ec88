"""SSBA: the loss schedule and the steganography loss, the sample-specific trigger, the fixed code,
and the attack in miniature."""

import json

import torch

from bdb_attack_ssba.attack import StegaLoss, StegaNet, fixed_code, image_weight_at
from bdb_attack_ssba.config import SSBAConfig
from bdcore.testing import SHORT_EPOCHS as EPOCHS

# the miniature: a 4-bit code, encoder/decoder of width 16 trained 4 epochs (batches of 64, Adam 3e-3): the
# code alone for the first 60% of the steps, then the image loss ramps up to weight 1 over the rest
MINI = {"bits": 4, "width": 16, "epochs": 4, "batch_size": 64, "lr": 3e-3, "secret_only": 0.6, "image_ramp": 0.4,
        "image_weight": 1.0}


def _attack(shape=(1, 28, 28), **settings):
    from bdcore.testing import attack_context, spec_of

    ctx = attack_context(shape=shape)
    return spec_of("attack", "ssba").load()(SSBAConfig(**settings), ctx)


def test_image_loss_weight_schedule():
    cfg = SSBAConfig(secret_only=0.1, image_ramp=0.4, image_weight=2.0)
    # 1000 steps: 0 until step 100, then linear to 2.0 at step 500, then 2.0
    assert [image_weight_at(cfg, s, 1000) for s in (0, 99, 100, 300, 500, 900)] == [0.0, 0.0, 0.0, 1.0, 2.0, 2.0]
    d = SSBAConfig()
    assert (d.bits, d.lr, d.secret_weight, d.image_weight) == (100, 1e-4, 1.5, 2.0)
    assert abs(d.image_ramp * 140_000 - 15_000) < 100 and abs(d.secret_only * 140_000 - 1_500) < 100


def test_stega_loss_on_a_hand_set_network():
    # encoder residual 0 and decoder logits 0: BCE = log 2 for any code, image loss 0
    net = StegaNet(1, 8, (12, 12), 4)
    torch.nn.init.zeros_(net.encoder.out.weight)
    torch.nn.init.zeros_(net.encoder.out.bias)
    torch.nn.init.zeros_(net.decoder.head[-1].weight)
    torch.nn.init.zeros_(net.decoder.head[-1].bias)
    from bdcore import StepInfo

    info = StepInfo(0, 500, 1000, torch.Generator().manual_seed(0))
    cfg = SSBAConfig(bits=8, secret_weight=1.5)
    loss = StegaLoss(cfg).loss(net, torch.rand(4, 1, 12, 12), torch.zeros(4, dtype=torch.long), info)
    assert abs(loss.item() - 1.5 * torch.log(torch.tensor(2.0)).item()) < 1e-6
    # a residual of 0.1 everywhere adds image_weight(t) * 0.01
    torch.nn.init.constant_(net.encoder.out.bias, 0.1)
    info = StepInfo(0, 900, 1000, torch.Generator().manual_seed(0))
    loss = StegaLoss(cfg).loss(net, torch.rand(4, 1, 12, 12) * 0.5, torch.zeros(4, dtype=torch.long), info)
    assert abs(loss.item() - (1.5 * 0.693147 + 2.0 * 0.01)) < 1e-5


def test_trigger_is_sample_specific_and_carries_the_fixed_code():
    a = _attack(bits=8)
    assert torch.equal(a.code, fixed_code(8, 0)) and set(a.code.tolist()) <= {0.0, 1.0}
    assert not torch.equal(fixed_code(8, 0), fixed_code(8, 1))
    x = torch.rand(2, 1, 28, 28)
    out = a.apply_trigger(x, train=True)
    assert torch.allclose(out, a.net.encode(x, a.code))
    residual = out - x
    assert not torch.allclose(residual[0], residual[1])  # a different trigger per image
    assert torch.equal(a.poison_y(torch.tensor([3, 7]), torch.arange(2)), torch.zeros(2, dtype=torch.long))
    b = _attack(bits=8, code_seed=3, encoder_seed=4)
    b.load_state(a.state())
    assert torch.equal(b.apply_trigger(x, train=False), out)  # state: the encoder and the code


def test_backdoor_in_miniature(backdoored_run, clean_run_short):
    # measured (mnist5k, small-cnn, 15 epochs, lr 0.1, seed 0, pratio 0.1; MINI): C-ACC 0.973, ASR 1.000,
    # RA 0.000, PSNR 17.0, SSIM 0.682 (the decoder recovers 4/4 bits); clean model C-ACC 0.977
    # at SHORT_EPOCHS = 10 (session 9, one thread): C-ACC 0.970, ASR 1.000, RA 0.000;
    # clean model at 10 epochs: C-ACC 0.967 (at 15: 0.977)
    run = backdoored_run("ssba", settings=MINI, epochs=EPOCHS)
    assert run.metrics["poisoned"] == 400
    assert run.metrics["asr"] >= 0.95
    assert run.metrics["cacc"] >= clean_run_short.metrics["cacc"] - 0.02


def test_second_run_reuses_the_trained_encoder(backdoored_run):
    backdoored_run("ssba", settings=MINI, epochs=EPOCHS)
    again = backdoored_run("ssba", settings=MINI, seed=1, epochs=1)
    meta = json.loads(again.file("meta.json").read_text())
    assert [(u["name"], u["built"]) for u in meta["artifacts"]] == [("ssba-encoder", False)]
