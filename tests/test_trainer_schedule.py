"""Learning-rate schedules of the shared trainer (`bdcore.nn.trainer.lr_at`)."""

import math

import pytest
from pydantic import ValidationError

from bdcore.config import AttackRunConfig, TrainRecipe
from bdcore.nn.trainer import lr_at


def test_cosine_and_constant_unchanged():
    r = TrainRecipe(lr=0.1, schedule="cosine")
    assert lr_at(r, 0, 100) == 0.1
    assert lr_at(r, 50, 100) == pytest.approx(0.05)
    assert lr_at(r, 25, 100) == 0.1 * 0.5 * (1 + math.cos(math.pi * 0.25))
    c = TrainRecipe(lr=0.1, schedule="constant")
    assert [lr_at(c, s, 10) for s in range(10)] == [0.1] * 10


def test_cyclic_one_cycle_ramps_to_peak_and_back():
    # total 8 steps, one cycle: base at 0, peak at 4, linear in between, back near base at 7
    r = TrainRecipe(lr=0.1, lr_min=0.01, cycles=1, schedule="cyclic")
    lrs = [lr_at(r, s, 8) for s in range(8)]
    expected = [0.01 + 0.09 * h for h in (0, 0.25, 0.5, 0.75, 1.0, 0.75, 0.5, 0.25)]
    assert lrs == pytest.approx(expected)
    assert max(lrs) == pytest.approx(0.1) and lrs.index(max(lrs)) == 4


def test_cyclic_several_cycles_repeat():
    r = TrainRecipe(lr=1.0, lr_min=0.0, cycles=2, schedule="cyclic")
    lrs = [lr_at(r, s, 8) for s in range(8)]
    assert lrs == pytest.approx([0, 0.5, 1, 0.5, 0, 0.5, 1, 0.5])


def test_cyclic_fields_only_dumped_with_cyclic_schedule():
    # existing recipes dump (and hash into run ids) exactly as before the cyclic fields existed
    assert "lr_min" not in TrainRecipe().model_dump() and "cycles" not in TrainRecipe().model_dump()
    before = AttackRunConfig(attack="badnet", train=TrainRecipe(epochs=15, lr=0.1)).run_id()
    assert before == AttackRunConfig(attack="badnet", train=TrainRecipe(epochs=15, lr=0.1, lr_min=0.5)).run_id()
    cyc = TrainRecipe(schedule="cyclic", lr_min=0.001, cycles=3)
    dumped = cyc.model_dump(mode="json")
    assert dumped["lr_min"] == 0.001 and dumped["cycles"] == 3
    assert TrainRecipe.model_validate(dumped) == cyc


def test_unknown_schedule_rejected():
    with pytest.raises(ValidationError):
        TrainRecipe(schedule="triangular")


def test_plateau_schedule_matches_reduce_lr_on_plateau_defaults():
    from bdcore.nn.trainer import Plateau

    p = Plateau(0.1)
    lrs = [p.epoch_end(loss) for loss in [1.0, 0.9] + [0.89995] * 11 + [0.5]]
    # 0.89995 is not a 1e-4 relative improvement on 0.9: the 11th such epoch (> patience 10) cuts the lr
    assert lrs[:12] == [0.1] * 12 and lrs[12] == pytest.approx(0.01) and lrs[13] == pytest.approx(0.01)
    import torch

    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))
    ref_lrs = []
    for loss in [1.0, 0.9] + [0.89995] * 11 + [0.5]:
        ref.step(loss)
        ref_lrs.append(ref.optimizer.param_groups[0]["lr"])
    assert lrs == pytest.approx(ref_lrs)


def test_reference_preset_per_dataset():
    from bdcore.bench.presets import victim_recipe

    assert victim_recipe("reference", "cifar10")["epochs"] == 100
    assert victim_recipe("reference", "gtsrb")["epochs"] == 50
    tiny = victim_recipe("reference", "tiny-imagenet")
    assert (tiny["epochs"], tiny["schedule"]) == (200, "plateau")
