"""bdcore.lib.reverse: trigger stamping, the MAD anomaly index, and both trigger searches on a hand-made model."""

import math

import torch
from torch import nn

from bdcore.data.trainset import TrainSet
from bdcore.lib.reverse import (
    MaskPatternTrigger,
    anomaly_index,
    flag_outliers,
    reverse_engineer,
    stamp,
    worst_case_trigger,
)


class CornerOrMean(nn.Module):
    """Hand-made 3-class 'model' on 1x6x6 images.

    class 0: constant logit 1 (every dark image lands here);
    class 1: fires when the bottom-right pixel is bright (a one-pixel 'backdoor');
    class 2: fires when the whole image is bright on average (needs a large trigger).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corner = x[:, 0, 5, 5]
        mean = x.flatten(1).mean(1)
        return torch.stack([torch.ones_like(mean), 20 * corner - 8, 20 * mean - 8], 1)


def dark_images(n: int = 64) -> TrainSet:
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 1, 6, 6, generator=gen) * 60).to(torch.uint8)  # pixels <= 60/255: all class 0
    return TrainSet(x, torch.zeros(n, dtype=torch.long))


def test_stamp_blends_by_mask():
    x = torch.full((2, 3, 2, 2), 0.2)
    m = torch.tensor([[1.0, 0.5], [0.0, 0.25]]).view(1, 1, 2, 2)
    p = torch.full((1, 3, 2, 2), 1.0)
    out = stamp(x, m, p)
    expected = torch.tensor([[1.0, 0.6], [0.2, 0.4]])
    assert torch.allclose(out, expected.expand(2, 3, 2, 2))


def test_trigger_stack_shapes_range_and_bound():
    trig = MaskPatternTrigger(4, (3, 5, 5), gen=torch.Generator().manual_seed(0), bound=2.0)
    with torch.no_grad():
        m, p = trig.masks(), trig.patterns()
    assert m.shape == (4, 1, 5, 5) and p.shape == (4, 3, 5, 5)
    assert float(m.min()) >= 0 and float(m.max()) <= 1 and float(p.min()) >= 0 and float(p.max()) <= 1
    assert torch.all(trig.norms() <= 2.0 + 1e-5)  # random masks (L1 ~ 12.5) are scaled to the bound
    x = torch.rand(7, 3, 5, 5)
    out = trig(x, torch.tensor([1, 3]))
    assert out.shape == (14, 3, 5, 5)
    assert torch.allclose(out[7:], stamp(x, m[3:4], p[3:4]))


def test_anomaly_index_matches_hand_computation():
    # median 3, |v - 3| = 2, 1, 0, 1, 97 -> median 1 -> MAD 1.4826
    idx = anomaly_index(torch.tensor([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert torch.allclose(idx, torch.tensor([2, 1, 0, 1, 97], dtype=torch.float64) / 1.4826)
    # an even count averages the two middle values (as numpy does): median 2.5, deviations 1.5, .5, .5, 1.5
    idx = anomaly_index(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert torch.allclose(idx, torch.tensor([1.5, 0.5, 0.5, 1.5], dtype=torch.float64) / (1.4826 * 1.0))
    assert anomaly_index(torch.tensor([5.0, 5.0, 5.0]))[0] == 0


def test_flag_outliers_only_flags_small_norms():
    norms = torch.tensor([1.0, 20.0, 21.0, 22.0, 19.0, 20.5, 60.0])
    # index of 1.0: |1 - 20.5| / (1.4826 * 1.0) = 13.2; of 60: 26.6 but above the median
    assert flag_outliers(norms).nonzero().flatten().tolist() == [0]
    assert not flag_outliers(torch.tensor([18.0, 20.0, 22.0, 21.0, 19.0])).any()


def test_reverse_engineer_finds_the_one_pixel_trigger():
    heard = []
    rev = reverse_engineer(CornerOrMean(), dark_images(), [1, 2], epochs=150, batch_size=32, patience=3,
                           early_stop_patience=10, seed=0, report=lambda *a: heard.append(a))
    assert rev.found.tolist() == [True, True]
    # progress: one report per epoch run, saying how many classes still search (what `bdb defend nc` shows)
    assert heard[0] == ("reversing triggers: 2 of 2 classes searching", 0, 150)
    assert len(heard) == int(rev.epochs.max()) and heard[-1][1] == len(heard) - 1
    assert rev.success.min() >= 0.99
    m1 = rev.masks[0, 0]
    # measured: class 1 norm 0.46, all of it on the bottom-right pixel; class 2 norm 13.6 of 36
    assert rev.norms[0] < 1.0 and float(m1[5, 5]) / float(m1.sum()) > 0.9
    assert rev.norms[1] > 8 * rev.norms[0]
    assert rev.epochs.max() < 150  # early stopping ended both searches (measured: 62 and 47 epochs)


def test_worst_case_trigger_flips_within_its_bound():
    data = dark_images()
    x, y = data.batch(torch.arange(len(data)))
    trig = worst_case_trigger(CornerOrMean(), data, bound=1.0, steps=100, batch_size=32, lr=0.1,
                              gen=torch.Generator().manual_seed(0))
    assert float(trig.norms()[0].detach()) <= 1.0 + 1e-5
    pred = CornerOrMean()(trig(x)).argmax(1)
    assert float((pred != y).float().mean()) > 0.95  # measured: 1.0, all to class 1 through the corner pixel
    assert not math.isnan(float(trig.patterns().detach().sum()))
