"""Narcissus: the synthesised trigger's bound and purpose, train/test amplitudes, and the backdoor in miniature."""

import json

import pytest
import torch
import torch.nn.functional as F

from bdb_attack_narcissus.attack import synthesise
from bdb_attack_narcissus.config import NarcissusConfig
from bdcore.testing import SHORT_EPOCHS as EPOCHS

# the miniature: a 5-epoch surrogate (quick recipe lr 0.1), 20 synthesis rounds
MINI = {"surrogate_epochs": 5, "surrogate_lr": 0.1, "rounds": 20}


def _attack(shape=(1, 28, 28), **settings):
    from bdcore.testing import attack_context, spec_of

    ctx = attack_context(shape=shape)
    return spec_of("attack", "narcissus").load()(NarcissusConfig(**settings), ctx)


def test_trigger_stays_within_16_of_255_and_lowers_the_target_loss():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.rand(40, 3, 8, 8)
    delta = synthesise(model, x, 3, eps=16 / 255, rounds=30, lr=0.01, batch_size=16,
                       gen=torch.Generator().manual_seed(0), hflip=True)
    assert delta.shape == (3, 8, 8)
    assert delta.abs().max() <= 16 / 255 + 1e-7
    assert delta.abs().max() > 15 / 255  # a linear model drives it to the bound
    y = torch.full((40,), 3)
    assert F.cross_entropy(model((x + delta).clamp(0, 1)), y) < F.cross_entropy(model(x), y) - 0.05
    again = synthesise(model, x, 3, eps=16 / 255, rounds=30, lr=0.01, batch_size=16,
                       gen=torch.Generator().manual_seed(0), hflip=True)
    assert torch.equal(delta, again)  # reproducible for a seed


def test_training_poison_adds_the_trigger_and_test_time_magnifies_it_three_times():
    a = _attack()
    a.trigger = torch.full((1, 28, 28), 0.05)
    x = torch.full((2, 1, 28, 28), 0.5)
    assert torch.allclose(a.poison_x(x, torch.arange(2)), x + 0.05)
    assert torch.allclose(a.test_trigger(x, torch.arange(2)), x + 0.15)
    assert torch.equal(a.apply_trigger(torch.ones(1, 1, 28, 28), train=False), torch.ones(1, 1, 28, 28))  # clipped
    b = _attack()
    b.load_state(a.state())
    assert torch.equal(b.trigger, a.trigger)
    assert NarcissusConfig().test_magnification == 3.0 and NarcissusConfig().eps == 16.0


def test_backdoor_in_miniature(backdoored_run, clean_run_short):
    # measured (mnist5k, small-cnn, 15 epochs, lr 0.1, seed 0, pratio 0.1 = all 400 target images;
    # surrogate 5 epochs lr 0.1, 20 rounds): C-ACC 0.960, ASR 1.000, RA 0.000, PSNR 36.9, SSIM 0.968;
    # clean model C-ACC 0.977
    # at SHORT_EPOCHS = 10 (session 9, one thread): C-ACC 0.955, ASR 0.998, RA 0.001;
    # clean model at 10 epochs: C-ACC 0.967 (at 15: 0.977)
    run = backdoored_run("narcissus", settings=MINI, epochs=EPOCHS)
    assert run.metrics["poisoned"] == 400
    assert run.metrics["asr"] >= 0.95
    assert run.metrics["cacc"] >= clean_run_short.metrics["cacc"] - 0.04


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="2 poisoned images (the paper's 0.05% of mnist5k) form no backdoor in the miniature (README)")
def test_backdoor_at_the_papers_budget(backdoored_run):
    # the paper's 0.05% of the training set: round(0.0005 * 4000) = 2 poisoned target images on mnist5k (the
    # smallest count above zero); the surrogate and the trigger are the cached ones of the test above, so this
    # costs one SHORT_EPOCHS victim (~30 s on one idle thread). Measured (issue 26; clean 10-epoch model 0.968-0.971):
    #   AVX-512 seed 0 / 1 / 2: C-ACC 0.971 / 0.973 / 0.973, ASR 0.011 / 0.023 / 0.014, PSNR 36.9 / 36.9 / 36.5
    #   AVX2 seed 0: C-ACC 0.969, ASR 0.011, PSNR 36.7
    # i.e. no backdoor (the clean model's ASR is 0.003): two images carrying a 16/255 trigger among 4,000 teach
    # a from-scratch 10-epoch victim nothing; "forms" means ASR >= 0.5.
    run = backdoored_run("narcissus", pratio=0.0005, settings=MINI, epochs=EPOCHS)
    assert run.metrics["poisoned"] == 2
    assert run.metrics["asr"] >= 0.5


def test_second_run_reuses_the_surrogate(backdoored_run):
    backdoored_run("narcissus", settings=MINI, epochs=EPOCHS)
    again = backdoored_run("narcissus", settings=MINI, pratio=0.05, epochs=1)
    meta = json.loads(again.file("meta.json").read_text())
    assert [(u["name"], u["built"]) for u in meta["artifacts"]] == [("surrogate", False), ("narcissus-trigger", False)]
