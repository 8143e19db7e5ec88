"""Fine-Pruning: the pruning schedule and stopping rule, and the defense in miniature."""

import torch
from torch import nn

from bdb_defense_fp.defense import choose_pruning, pruning_schedule


def test_schedule_prunes_one_percent_per_step_and_keeps_one_channel():
    assert pruning_schedule(128, 0.01, 1.0) == list(range(1, 128))  # 1.28 channels -> 1 per step
    s = pruning_schedule(512, 0.01, 1.0)
    assert s[:3] == [5, 10, 15] and s[-1] == 510  # 5.12 -> 5 per step, never all 512
    assert pruning_schedule(100, 0.01, 0.3)[-1] == 30


def test_stops_before_a_ten_percent_relative_drop_of_validation_accuracy():
    # 4 classes; units 0-3 carry the class (unit k -> class k), units 4-7 carry nothing
    head = nn.Linear(8, 4)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[:, :4] = torch.eye(4)
        head.weight[:, 4:] = 0.01
        head.bias.copy_(torch.tensor([0.0, 0.1, 0.1, 0.1]))  # a class whose unit is gone is lost
    y = torch.arange(4).repeat(10)
    feats = torch.zeros(40, 8)
    feats[torch.arange(40), y] = 1.0
    order = torch.tensor([4, 5, 6, 7, 0, 1, 2, 3])  # dormant units first
    n, base, acc, trace = choose_pruning(head, order, feats, y, list(range(1, 8)), acc_drop=0.1)
    assert base == 1.0 and n == 4 and acc == 1.0  # pruning unit 0 would cost a quarter: stop before
    assert trace[-1][0] == 5 and trace[-1][1] < 0.9


def test_fine_pruning_against_badnet(backdoored_run, defended_run, bdb_store):
    # measured (mnist5k, small-cnn, seed 0): before C-ACC 0.972 ASR 0.998; pruning alone (epochs=0):
    # 41 of 128 channels (32%), C-ACC 0.804 ASR 0.201; prune + 20 epochs fine-tuning: C-ACC 0.953,
    # ASR 0.347, RA 0.636, DER 0.816. Fine-tuning alone (ft, same schedule) leaves ASR at 0.989.
    attack = backdoored_run("badnet")
    assert attack.metrics["asr"] >= 0.95
    pruned_only = defended_run("fp", attack.run_id, settings={"epochs": 0})
    info = pruned_only.metrics["info"]
    assert info["channels"] == 128 and info["step"] == 1
    assert 0.15 <= info["pruned_ratio"] <= 0.5
    assert info["val_acc_pruned"] >= 0.9 * info["val_acc_unpruned"]  # the validation-bounded stop
    assert info["stopped_acc"] < 0.9 * info["val_acc_unpruned"]
    # pruning alone: ASR 0.144 (AVX-512) and 0.218 (AVX2) at seed 0, but 0.764 at seed 1 (the stop comes at 23%
    # of the channels), so it is not asserted

    run = defended_run("fp", attack.run_id)
    m = run.metrics
    assert m["info"]["pruned"] == info["pruned"]
    assert m["asr"] <= 0.5 and m["asr"] <= m["before"]["asr"] - 0.45
    # re-measured under the reference protocol (poison drawn from all samples, uint8 poison, whole 5% reserve of 200): 52 of 128 pruned, C-ACC 0.968 -> 0.922, ASR 0.989 -> 0.436, DER 0.754
    assert m["cacc"] >= m["before"]["cacc"] - 0.07
    assert m["der"] >= 0.7
    # the pruned channels stay pruned through fine-tuning
    w = bdb_store.load_tensors(run, "model.safetensors")["net.fc.weight"]
    assert int((w.abs().sum(0) == 0).sum()) == m["info"]["pruned"]


def test_fine_pruning_runs_on_preact_resnet18(backdoored_run, defended_run, bdb_store):
    # digits (8x8), 3 epochs of PreAct-ResNet18 with Blended: C-ACC 0.861, ASR 0.725. FP prunes 115 of
    # 512 channels (step 5) and fine-tunes: C-ACC 0.944. The under-trained backdoor is *not* removed
    # here (ASR 0.938): fine-tuning this 3-epoch model on 58 clean images strengthens every feature.
    attack = backdoored_run("blended", dataset="digits", model="preact-resnet18", epochs=3)
    run = defended_run("fp", attack.run_id)
    m = run.metrics
    assert m["info"]["channels"] == 512 and m["info"]["step"] == 5
    assert m["info"]["pruned"] >= 5
    assert m["cacc"] >= 0.85
    w = bdb_store.load_tensors(run, "model.safetensors")["net.linear.weight"]
    assert int((w.abs().sum(0) == 0).sum()) == m["info"]["pruned"]
