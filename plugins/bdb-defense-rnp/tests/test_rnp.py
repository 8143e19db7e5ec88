"""RNP: the scale-only neuron mask, the unlearning stop, pruning by mask threshold, and the defense in miniature."""

import copy

import torch

from bdcore import ChannelMask, SmallCNN, batchnorms, zero_bn_scale
from bdcore.testing import spec_of
from bdb_defense_rnp.defense import GradientAscent, prune_below


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


def test_rnp_removes_badnets_at_an_accuracy_cost(backdoored_run, defended_run):
    # quick preset with threshold 0.01 (the paper's 0.7 prunes 90 of 224 neurons here: C-ACC 0.10, README).
    # measured (seed 0, 1 thread): before C-ACC 0.968 / ASR 0.989; after C-ACC 0.623, ASR 0.014, RA 0.590,
    # 29 neurons pruned (their recovered masks are 0); unlearning stops after 7 epochs.
    run = backdoored_run("badnet")
    d = defended_run("rnp", run.run_id, settings={"threshold": 0.01})
    info = d.metrics["info"]
    assert d.metrics["asr"] <= 0.1
    assert d.metrics["cacc"] >= 0.5
    assert 10 <= info["pruned_count"] <= 50
    assert info["unlearn_epoch_acc"][-1] <= 0.2 < info["unlearn_epoch_acc"][-2]
