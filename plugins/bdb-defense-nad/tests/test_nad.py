"""NAD: attention maps and loss, the backbone-agnostic layer rule, and the defense in miniature."""

import pytest
import torch

from bdb_defense_nad.defense import attention_loss, attention_map, stage_outputs
from bdcore.testing import check_defense_acts


def test_attention_map_is_normalised_mean_of_powered_activations():
    f = torch.zeros(1, 2, 2, 2)
    f[0, 0] = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    f[0, 1] = torch.tensor([[-1.0, 0.0], [0.0, 2.0]])
    a = attention_map(f, 2.0)  # mean_c |F|^2 = [1, 2, 0, 2] -> / 3
    assert a.shape == (1, 4)
    assert torch.allclose(a, torch.tensor([[1.0, 2.0, 0.0, 2.0]]) / 3.0)
    assert torch.allclose(attention_map(3 * f, 2.0), a)  # scale-free


def test_attention_loss_l2_and_mse():
    fs = torch.rand(3, 4, 5, 5)
    assert attention_loss(fs, fs.clone(), 2.0, "l2") == 0 and attention_loss(fs, fs.clone(), 2.0, "mse") == 0
    ft = torch.rand(3, 4, 5, 5)
    d = attention_map(fs, 2.0) - attention_map(ft, 2.0)
    assert attention_loss(fs, ft, 2.0, "l2") == pytest.approx(float(d.norm(dim=1).mean()))
    assert attention_loss(fs, ft, 2.0, "mse") == pytest.approx(float((d ** 2).sum() / (3 * 25)))


@pytest.mark.parametrize("dataset,model,expected", [
    ("mnist5k", "small-cnn", ["net.features.2", "net.features.6", "net.features.10"]),
    ("mnist5k", "preact-resnet18", ["net.layer2.1", "net.layer3.1", "net.layer4.1"]),
    ("digits", "preact-resnet18", ["net.layer1", "net.layer2.1", "net.layer3.1"]),
    ("mnist5k", "timm:resnet18", ["net.layer1", "net.layer2.1", "net.layer3.1"]),
])
def test_stage_rule_taps_the_last_three_stages(dataset, model, expected):
    from bdcore import build_model, load_dataset

    data = load_dataset(dataset)
    net = build_model(model, data)
    assert [n for n, _ in stage_outputs(net, torch.rand(2, *data.shape))] == expected


def test_nad_against_badnet(backdoored_run, defended_run):
    # measured (mnist5k, small-cnn, seed 0, reference settings: teacher 10 epochs, student 10 epochs,
    # lr 0.1, batch 64, betas 500/1000/1000): before C-ACC 0.972 ASR 0.998; after C-ACC 0.931,
    # ASR 0.199, RA 0.769, DER 0.879 (plain fine-tuning with the same schedule: ASR 0.227).
    run = defended_run("nad", backdoored_run("badnet").run_id)
    m = run.metrics
    assert m["before"]["asr"] >= 0.95
    # re-measured under the reference protocol (poison drawn from all samples, uint8 poison, whole 5% reserve of 200): C-ACC 0.968 -> 0.829, ASR 0.989 -> 0.038, RA 0.797, DER 0.906: the backdoor goes, at a
    # larger accuracy cost than before (teacher validation accuracy 0.975).
    assert m["asr"] <= 0.35
    assert m["cacc"] >= m["before"]["cacc"] - 0.18
    assert m["info"]["layers"] == ["net.features.2", "net.features.6", "net.features.10"]
    assert m["info"]["val_acc_teacher"] >= 0.85


@pytest.mark.xfail(strict=True, reason=(
    "NAD does not erase Blended in miniature: the reserve-fine-tuned teacher keeps the blended "
    "trigger (ASR ~1), so there is no clean attention to distil; measured ASR 0.971 (0.978 with 20 epochs)"))
def test_nad_against_blended(backdoored_run, defended_run):
    run = defended_run("nad", backdoored_run("blended").run_id)
    assert run.metrics["asr"] <= 0.5


def test_nad_on_preact_resnet18(backdoored_run, defended_run, bdb_store):
    # digits (8x8), 3 epochs of PreAct-ResNet18 with Blended (C-ACC 0.861, ASR 0.725). The reference
    # lr 0.1 makes the student diverge here (C-ACC 0.100: beta 1000 on 2x2 attention maps with 58
    # images); lr 0.01 trains: C-ACC 0.919, ASR 0.957 (the under-trained backdoor is not removed).
    attack = backdoored_run("blended", dataset="digits", model="preact-resnet18", epochs=3)
    run = defended_run("nad", attack.run_id, settings={"lr": 0.01})
    check_defense_acts("nad", bdb_store, run)  # a changed model, or the reason why not
    assert run.metrics["info"]["layers"] == ["net.layer1", "net.layer2.1", "net.layer3.1"]
    assert run.metrics["cacc"] >= 0.85
