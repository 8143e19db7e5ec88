"""Super-Fine-Tuning: the two-phase cyclic schedule, and the defense in miniature."""

import pytest
import torch
from torch import nn

from bdcore import TrainRecipe
from bdcore import TrainSet
from bdcore import lr_at

import bdb_defense_sft.defense as sft_module
from bdb_defense_sft.config import SFTConfig


def test_two_phases_of_triangular_cycles(monkeypatch):
    from bdcore import DefenseInputs
    from bdcore.testing import defense_context

    seen = []

    def fake_train(model, data, recipe, *, seed, **kw):
        seen.append(recipe)
        total = recipe.epochs * -(-len(data) // recipe.batch_size)
        seen.append([lr_at(recipe, s, total) for s in range(total)])

        class Stats:
            steps = total
        return Stats()

    monkeypatch.setattr(sft_module, "train", fake_train)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    data = TrainSet(torch.zeros(64, 1, 2, 2, dtype=torch.uint8), torch.zeros(64, dtype=torch.long))
    ctx = defense_context(num_classes=2, shape=(1, 2, 2))
    cfg = SFTConfig(batch_size=16)  # 4 steps per epoch, 3 + 3 epochs
    sft_module.SuperFineTuning(cfg, ctx).run(DefenseInputs(model, data, data, None, TrainRecipe(), lambda: None))
    forget, lrs1, recover, lrs2 = seen
    assert forget.schedule == recover.schedule == "cyclic" and forget.lr_min == recover.lr_min == 3e-4
    assert (forget.epochs, forget.lr, recover.epochs, recover.lr) == (3, 0.1, 3, 1e-3)
    assert len(lrs1) == len(lrs2) == 12
    assert lrs1[0] == 3e-4 and max(lrs1) == lrs1[6] == pytest.approx(0.1)  # ramps to the high peak ...
    assert lrs1[11] < 0.02 and lrs1 == sorted(lrs1[:7]) + sorted(lrs1[7:], reverse=True)  # ... anneals
    assert max(lrs2) == pytest.approx(1e-3) and lrs2[0] == 3e-4


def test_sft_against_badnet(backdoored_run, defended_run):
    # The reference batch of 256 gives one step per epoch on the 160-image reserve (6 steps in all:
    # ASR stays 0.993), so the miniature uses batch 32 and 10 + 5 epochs (50 + 25 steps), peak 0.1.
    # measured (mnist5k, small-cnn, seed 0): before C-ACC 0.972 ASR 0.998; after 0.948 / 0.088,
    # RA 0.872, DER 0.943.
    attack = backdoored_run("badnet")
    run = defended_run("sft", attack.run_id, settings={"batch_size": 32, "forget_epochs": 10, "recover_epochs": 5})
    m = run.metrics
    # re-measured under the reference protocol (poison drawn from all samples, uint8 poison, whole 5% reserve): C-ACC 0.968 -> 0.925, ASR 0.989 -> 0.048, RA 0.886, DER 0.949
    assert m["asr"] <= 0.2 and m["before"]["asr"] >= 0.95
    assert m["cacc"] >= m["before"]["cacc"] - 0.07
    assert m["ra"] >= 0.8


def test_sft_against_blended_needs_a_high_peak(backdoored_run, defended_run):
    # Blended survives peak 0.1 (ASR 0.993) and 0.3 (0.721) in miniature; peak 0.5 removes it:
    # measured before C-ACC 0.970 ASR 1.000; after (peak 0.5) C-ACC 0.903, ASR 0.036, DER 0.949.
    # That the peak learning rate is what erases the backdoor is the paper's point.
    attack = backdoored_run("blended")
    base = {"batch_size": 32, "forget_epochs": 10, "recover_epochs": 5}
    high = defended_run("sft", attack.run_id, settings={**base, "lr_max1": 0.5}).metrics
    assert high["before"]["asr"] >= 0.95
    # re-measured under the reference protocol (poison drawn from all samples, uint8 poison, whole 5% reserve): peak 0.5: C-ACC 0.973 -> 0.845, ASR 1.000 -> 0.051, DER 0.91; peak 0.1: ASR 0.841
    assert high["asr"] <= 0.25  # 0.051-0.153 over kernel sets and seeds
    assert high["cacc"] >= high["before"]["cacc"] - 0.16
    low = defended_run("sft", attack.run_id, settings=base).metrics
    assert low["asr"] >= 0.7


def test_sft_on_preact_resnet18(backdoored_run, defended_run):
    # digits, 3 epochs of PreAct-ResNet18 with Blended: before C-ACC 0.861, ASR 0.725; SFT (batch 32,
    # 10 + 5 epochs on the 58-image reserve): C-ACC 0.778, ASR 0.049. Peak 0.5 collapses it (C-ACC 0.14).
    attack = backdoored_run("blended", dataset="digits", model="preact-resnet18", epochs=3)
    run = defended_run("sft", attack.run_id, settings={"batch_size": 32, "forget_epochs": 10, "recover_epochs": 5})
    # re-measured under the reference protocol (poison drawn from all samples, uint8 poison, whole 5% reserve) (72 images): before C-ACC 0.833, ASR 0.522; after C-ACC 0.469, ASR 0.000. The backdoor goes
    # but this 3-epoch PreAct-ResNet18 loses half its accuracy: a smoke test of the architecture, not a result.
    # Re-measured in session 5 (one thread): before C-ACC 0.861, ASR 0.657; after C-ACC 0.231, ASR 0.000: the
    # 72-image reserve is too small to recover this under-trained PreAct-ResNet18 (above chance, 0.1, only).
    # session 12 (the reserve drawn from never-poisoned images; AVX-512 seeds 0-2, AVX2 seed 0): victim ASR
    # 0.522-0.707, after SFT C-ACC 0.481-0.569, ASR 0.000-0.231 (0.231 at AVX-512 seed 0)
    assert run.metrics["cacc"] >= 0.2  # 0.269-0.469 over kernel sets and seeds: well above chance (0.1), far below 0.86
    assert run.metrics["asr"] <= 0.3
