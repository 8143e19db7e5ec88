"""RNP: the scale-only neuron mask, the unlearning stop, pruning by mask threshold, and the defense in miniature."""

import copy
import math

import pytest

import torch

from bdcore import BdbError, ChannelMask, SmallCNN, batchnorms, zero_bn_scale
from bdcore.testing import spec_of
from bdb_defense_rnp.defense import GradientAscent, ScaledLoss, prune_below, prune_smallest


def _model():
    torch.manual_seed(0)
    m = SmallCNN(10, 1, 28).eval()
    for _, bn in batchnorms(m):
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    return m


def test_reference_defaults_match_the_paper():
    cfg = spec_of("defense", "rnp").config_model()()
    assert (cfg.unlearn_lr, cfg.clean_threshold, cfg.mask_lr, cfg.mask_epochs, cfg.threshold) == (0.01, 0.2, 0.2, 20, 0.7)
    assert (cfg.alpha, cfg.pruning_by) == (0.2, "threshold")  # reference --alpha 0.2, --pruning_by threshold
    assert cfg.batch_size == 256  # config.yaml, both stages
    assert cfg.data_fraction == 0.2  # 1% of the training set = 20% of the 5% reserve


def test_mask_acts_on_the_bn_scale_only():
    m, x = _model(), torch.rand(3, 1, 28, 28)
    mask = ChannelMask(m, bn_scale=True)
    with mask.attached(m):
        assert torch.allclose(m(x), _model()(x), atol=1e-6)  # masks of 1: the model unchanged
        name = batchnorms(m)[1][0]
        mask.mask_of(name).data[[2, 5]] = 0.0
        masked = m(x)
    pruned = _model()
    zero_bn_scale(batchnorms(pruned)[1][1], [2, 5])  # gamma 0, beta kept
    assert torch.allclose(masked, pruned(x), atol=1e-6)


def test_prune_below_threshold_prunes_the_original_model():
    m = _model()
    mask = ChannelMask(m, bn_scale=True)
    first = batchnorms(m)[0][0]
    mask.mask_of(first).data[:4] = torch.tensor([0.69, 0.7, 0.2, 0.95])
    original = copy.deepcopy(m)
    pruned = prune_below(m, mask, 0.7)
    assert pruned[first] == [0, 2]  # strictly below 0.7
    assert sum(len(v) for v in pruned.values()) == 2
    bn, bn0 = batchnorms(m)[0][1], batchnorms(original)[0][1]
    assert bn.weight[0] == 0 and bn.weight[2] == 0 and bn.weight[1] == bn0.weight[1]
    assert torch.equal(bn.bias, bn0.bias)


def test_prune_smallest_prunes_the_n_lowest_masks_across_layers():
    m = _model()
    mask = ChannelMask(m, bn_scale=True)
    (n0, _), (n1, _) = batchnorms(m)[:2]
    mask.mask_of(n0).data[:3] = torch.tensor([0.3, 0.05, 0.3])
    mask.mask_of(n1).data[:2] = torch.tensor([0.1, 0.2])
    pruned = prune_smallest(m, mask, 4)
    assert pruned[n0] == [0, 1] and pruned[n1] == [0, 1]  # 0.05, 0.1, 0.2, then the first 0.3 (layer order)
    assert sum(len(v) for v in pruned.values()) == 4
    assert batchnorms(m)[0][1].weight[2] != 0
    with pytest.raises(BdbError, match="exceeds"):
        prune_smallest(_model(), ChannelMask(_model(), bn_scale=True), 10_000)


def test_recovery_loss_is_alpha_times_the_cross_entropy():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([0.0, 0.0]))  # p = (1/2, 1/2): CE = log 2
    loss = ScaledLoss(0.2).loss(model, torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 0]), None)
    assert torch.allclose(loss, torch.tensor(0.2 * math.log(2)))


def test_unlearning_stops_once_accuracy_is_low():
    class Info:
        stop = False

    hook, info = GradientAscent(0.2), Info()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([1.0, 0.0]))  # always predicts class 0
    x = torch.rand(5, 1, 2, 2)
    loss = hook.loss(model, x, torch.tensor([0, 0, 0, 1, 1]), info)
    assert loss < 0  # gradient ascent: the negated cross-entropy
    hook.on_epoch_end(model, 0)
    assert hook.epoch_acc == [0.6] and not info.stop
    hook.loss(model, x, torch.tensor([1, 1, 1, 1, 0]), info)
    hook.on_epoch_end(model, 1)
    assert hook.epoch_acc == [0.6, 0.2] and info.stop


def test_rnp_cuts_badnets_at_an_accuracy_cost(backdoored_run, defended_run):
    # quick preset: the paper's settings (alpha 0.2, mask lr 0.2, unlearning stop 0.2) with the whole 200-image
    # reserve and threshold 0.1 instead of 0.7 (0.7 prunes 79-107 of 224 neurons: C-ACC 0.10-0.40, README).
    # Batch 256 (the reference's, session 12): one batch of 200 per epoch, so the unlearning takes 13-15 epochs
    # and fewer masks fall (11-19 pruned). Measured (AVX-512 seeds 0, 1, 2 and AVX2 seed 0, 1 thread): C-ACC
    # 0.477-0.793, ASR 0.037-0.401 (victims 0.968-0.974 / 0.987-0.998; seed 2 is the one that removes it, at
    # C-ACC 0.477). At batch 128 (session 11, 4 recordings): C-ACC 0.404-0.646, ASR 0.000-0.099.
    run = backdoored_run("badnet")
    d = defended_run("rnp", run.run_id)
    info = d.metrics["info"]
    assert d.metrics["asr"] <= 0.45
    assert d.metrics["cacc"] >= 0.45
    assert 5 <= info["pruned_count"] <= 40
    assert info["unlearn_epoch_acc"][-1] <= 0.2 < info["unlearn_epoch_acc"][-2]


def test_rnp_on_wanet_keeps_most_accuracy(backdoored_run, defended_run):
    # Batch 256 (session 12): the WaNet backdoor is removed at seeds 0 and 2 (ASR 0.000-0.001, C-ACC
    # 0.918-0.962) but not at seed 1 (ASR 0.998, C-ACC 0.841: 20 single-batch unlearning epochs never reach the
    # 0.2 stop, 3 neurons pruned), so the ASR is not asserted (spec caveat). At batch 128 (session 11): ASR 0.000
    # on every recording, C-ACC 0.509-0.666.
    w = defended_run("rnp", backdoored_run("wanet").run_id)
    assert w.metrics["cacc"] >= 0.82
    assert w.metrics["info"]["pruned_count"] >= 1
