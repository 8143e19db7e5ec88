"""Core pieces added for the second batch of defenses: the trainer's early stop, BN-scale masks,
pruning by mask threshold, and locating the last spatial feature map."""

import torch
from torch import nn

from bdcore import ChannelMask, SmallCNN, TrainHook, batchnorms, last_feature_map, prune_bn_below, train
from bdcore.config import TrainRecipe
from bdcore.data.trainset import TrainSet


class StopAfter(TrainHook):
    def __init__(self, steps):
        self.steps, self.seen = steps, 0

    def after_step(self, model, step):
        self.seen += 1
        step.stop = self.seen >= self.steps


def test_a_hook_can_stop_training():
    data = TrainSet(torch.zeros(40, 1, 4, 4, dtype=torch.uint8), torch.zeros(40, dtype=torch.long))
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    hook = StopAfter(3)
    stats = train(model, data, TrainRecipe(epochs=5, batch_size=8, augment=False, channels_last=False), seed=0,
                  hooks=[hook])
    assert (hook.seen, stats.steps, stats.epochs) == (3, 3, 1)


def test_prune_bn_below_zeroes_scales_strictly_below_the_threshold():
    torch.manual_seed(0)
    m = SmallCNN(10, 1, 28)
    layers = batchnorms(m)
    masks = [torch.ones(bn.num_features) for _, bn in layers]
    masks[0][[1, 3]] = torch.tensor([0.5, 0.69])
    masks[2][7] = 0.7
    bias = layers[0][1].bias.detach().clone()
    pruned = prune_bn_below(layers, masks, 0.7)
    assert pruned == {layers[0][0]: [1, 3], layers[1][0]: [], layers[2][0]: []}
    assert layers[0][1].weight[1] == 0 and layers[0][1].weight[3] == 0 and layers[2][1].weight[7] != 0
    assert torch.equal(layers[0][1].bias, bias)


def test_bn_scale_mask_keeps_the_shift():
    bn = nn.BatchNorm2d(2).eval()
    bn.bias.data = torch.tensor([0.5, -1.0])
    model = nn.Sequential(bn)
    mask = ChannelMask(model, bn_scale=True)
    mask.mask_of("0").data = torch.tensor([0.0, 0.5])
    x = torch.ones(1, 2, 1, 1)
    with mask.attached(model):
        out = model(x).flatten()
    scale = 1 / (1 + bn.eps) ** 0.5
    assert torch.allclose(out, torch.tensor([0.5, 0.5 * scale - 1.0]))


def test_last_feature_map_is_the_end_of_the_conv_trunk():
    m = SmallCNN(10, 1, 28).train()
    name, module = last_feature_map(m, torch.rand(2, 1, 28, 28))
    assert name == "features" and module is m.features and m.training
    seq = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    assert last_feature_map(seq, torch.rand(1, 1, 8, 8))[0] == "1"  # the ReLU; the 1x1 pooled map is not spatial
