"""Input-Aware Dynamic Backdoor: losses and blend on hand numbers, the hook's batch and generator
step, state round trip, and the backdoor in miniature."""

import pytest
import torch
import torch.nn.functional as F

from bdcore import SmallCNN, StepInfo, TrainSet
from bdcore.testing import attack_context

from bdb_attack_inputaware.attack import (
    InputAware, architecture, batch_counts, blend, diversity_loss, norm_loss, threshold,
)
from bdb_attack_inputaware.config import InputAwareConfig


EPOCHS = 12
"""Victim epochs of this module's miniature: the miniature recipe trains 15, and at 12 this backdoor and the
clean accuracy hold (measured, session 9: at 10 the ASR is 0.826) for a fifth less of the suite's time."""


def _attack(seed=0, pratio=0.1, shape=(1, 28, 28), **settings):
    ctx = attack_context(shape=shape, pratio=pratio, seed=seed, dataset="x", model="y")
    return InputAware(InputAwareConfig(**{"channels": 4, **settings}), ctx)


class _Data:
    """What prepare reads of a dataset (mask_epochs=0: no pre-training)."""

    def __init__(self, n=4000, shape=(1, 28, 28)):
        g = torch.Generator().manual_seed(0)
        self.x_train = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
        self.y_train = torch.randint(0, 10, (n,), generator=g)
        self.hflip = False


def test_norm_loss_by_hand():
    # relu(m - 0.032) = [0, 0.068, 0, 0.968] -> mean 1.036 / 4 = 0.259
    mask = torch.tensor([[[[0.032, 0.1], [0.0, 1.0]]]])
    assert torch.isclose(norm_loss(mask, 0.032), torch.tensor(0.259))


def test_diversity_loss_by_hand():
    # pair 1: images differ by 1 everywhere (rms 1), outputs by 0.5 (rms 0.5) -> 2
    # pair 2: images differ by 2 (rms 2), outputs by 0.25 (rms 0.25) -> 8;  mean 5
    x1 = torch.zeros(2, 3, 2, 2)
    x2 = torch.stack([torch.ones(3, 2, 2), torch.full((3, 2, 2), 2.0)])
    g1 = torch.zeros(2, 1, 2, 2)
    g2 = torch.stack([torch.full((1, 2, 2), 0.5), torch.full((1, 2, 2), 0.25)])
    assert torch.isclose(diversity_loss(x1, x2, g1, g2), torch.tensor(5.0), rtol=1e-5)


def test_blend_and_threshold_by_hand():
    x = torch.tensor([0.2, 0.4, 0.6])
    pattern = torch.tensor([1.0, 0.0, 0.5])
    mask = torch.tensor([1.0, 0.5, 0.0])
    # x + m (p - x): 0.2 + 1 * 0.8 = 1.0; 0.4 + 0.5 * (-0.4) = 0.2; 0.6 unchanged
    assert torch.allclose(blend(x, pattern, mask), torch.tensor([1.0, 0.2, 0.6]))
    # tanh(20 m - 10) / (2 + eps) + 0.5: a soft step at 0.5
    t = threshold(torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(t, torch.tensor([0.0, 0.5, 1.0]), atol=1e-6)


def test_architecture_defaults_fit_the_image():
    cfg = InputAwareConfig()
    assert architecture(cfg, (1, 28, 28)) == (16, 2)  # the authors' MNIST networks
    assert architecture(cfg, (3, 32, 32)) == (32, 3)  # the authors' CIFAR-10 networks
    assert architecture(cfg, (3, 8, 8)) == (16, 2)
    assert architecture(InputAwareConfig(steps=3), (1, 28, 28)) == (16, 2)  # 28 is not divisible by 8


def test_trigger_is_the_blend_and_input_specific():
    a = _attack()
    x = torch.rand(4, 1, 28, 28)
    out = a.apply_trigger(x, train=False)
    with torch.no_grad():
        expected = blend(x, a.generator.eval()(x), threshold(a.mask_net.eval()(x)))
    assert torch.equal(out, expected)
    assert a.masks(x).shape == (4, 1, 28, 28)
    assert not torch.allclose(out[0] - x[0], out[1] - x[1])  # each image its own trigger


def test_hook_builds_backdoor_cross_and_clean_samples_and_steps_the_generator():
    torch.manual_seed(0)
    a = _attack(pratio=0.1)
    model = SmallCNN(10, 1, 28, width=4)
    hook = a.train_hook()
    hook.on_train_start(model, TrainSet(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.long)))
    x, y = torch.rand(40, 1, 28, 28), torch.randint(1, 10, (40,))
    step = StepInfo(0, 0, 1, torch.Generator().manual_seed(0))
    x2, y2 = hook.on_batch(x, y, step)
    # int(40 * 0.1) = 4 backdoor samples (target 0), 4 cross samples and 32 clean ones keep their labels
    assert hook.counts(40, torch.Generator()) == (4, 4) and hook.poisoned == 8
    assert torch.equal(y2[:4], torch.zeros(4, dtype=torch.long)) and torch.equal(y2[4:], y[4:])
    assert torch.equal(x2[8:], x[8:])
    other = x.roll(20, 0)[4:8]  # the cross samples carry the pattern and mask of another image
    with torch.no_grad():
        g = a.generator.train()
        assert torch.allclose(x2[:4], blend(x[:4], g(x[:4]), a.masks(x[:4])), atol=1e-6)
        assert torch.allclose(x2[4:8], blend(x[4:8], g(other), a.masks(other)), atol=1e-6)
    loss = hook.loss(model, x2, y2, step)
    assert hook.div is not None and torch.isclose(loss, F.cross_entropy(model(x2), y2) + hook.div)
    before = [p.detach().clone() for p in a.generator.parameters()]
    mask_before = [p.detach().clone() for p in a.mask_net.parameters()]
    loss.backward()
    hook.after_step(model, step)
    assert any(not torch.equal(b, p) for b, p in zip(before, a.generator.parameters()))
    assert all(torch.equal(b, p) for b, p in zip(mask_before, a.mask_net.parameters()))  # M is frozen
    assert all(p.grad is None for p in a.generator.parameters())


def test_batch_counts_follow_the_reference_rule_below_one_sample_per_batch_too():
    assert batch_counts(128, 0.1, 1.0, 0.99) == (12, 12)  # int(12.8); as many cross samples
    assert batch_counts(32, 0.1, 1.0, 0.0) == (3, 3)  # the last, partial batch
    assert batch_counts(128, 0.1, 0.5, 0.0) == (12, 6) and batch_counts(128, 0.1, 0.0, 0.0) == (12, 0)
    # pratio * B = 0.64 < 1: one backdoor sample (and one cross) with probability 0.64, else none
    assert batch_counts(128, 0.005, 1.0, 0.63) == (1, 1) and batch_counts(128, 0.005, 1.0, 0.65) == (0, 0)
    assert batch_counts(4, 0.5, 3.0, 0.0) == (2, 2)  # cross samples: at most the rest of the batch


def test_a_low_ratio_still_poisons_in_training():
    # pratio 0.002 with batches of 128: int(0.256) is 0, yet about a quarter of the batches get one sample
    a = _attack(pratio=0.002)
    hook = a.train_hook()
    hook.on_train_start(SmallCNN(10, 1, 28, width=4), TrainSet(torch.zeros(4, 1, 28, 28, dtype=torch.uint8),
                                                             torch.zeros(4, dtype=torch.long)))
    gen = torch.Generator().manual_seed(0)
    made = [sum(hook.counts(128, gen)) for _ in range(400)]
    assert set(made) == {0, 2} and 0.2 < made.count(2) / 400 < 0.32


def test_materialised_poison_is_one_pass_of_the_batch_rule_with_cross_samples():
    data = _Data()
    a = _attack(mask_epochs=0)
    a.prepare(data)
    pidx = a.poison_indices(data.y_train, torch.Generator().manual_seed(0))
    # 4000 = 31 batches of 128 (12 + 12 each) and one of 32 (3 + 3): 375 backdoor + 375 cross samples
    assert len(pidx) == 750 and len(a.cross_idx) == 375 and len(pidx.unique()) == 750
    assert torch.isin(a.cross_idx, pidx).all()
    y = data.y_train[pidx]
    y2 = a.poison_y(y, pidx)
    cross = torch.isin(pidx, a.cross_idx)
    assert torch.equal(y2[cross], y[cross]) and torch.all(y2[~cross] == 0)  # cross keep their labels
    x = data.x_train[pidx[:64]].float() / 255
    out = a.poison_x(x, pidx[:64])
    own = a.apply_trigger(x, train=True)
    c = cross[:64]
    assert torch.equal(out[~c], own[~c]) and c.any()
    pos = torch.searchsorted(a.cross_idx, pidx[:64][c])
    other = a.cross_other[pos].float() / 255
    assert not torch.equal(a.cross_other[pos], data.x_train[pidx[:64][c]])  # another image
    with torch.no_grad():
        assert torch.allclose(out[c], blend(x[c], a.generator.eval()(other), a.masks(other)))
    # the same sample gets the same poison in any batch
    assert torch.allclose(a.poison_x(x[c][:1], pidx[:64][c][:1]), out[c][:1], atol=1e-6)
    # below one sample per batch the pass still poisons: pratio 0.002 (int(0.256) = 0)
    low = _attack(pratio=0.002, mask_epochs=0)
    low.prepare(data)
    lidx = low.poison_indices(data.y_train, torch.Generator().manual_seed(0))
    assert 0 < len(lidx) < 32 and len(lidx) == 2 * len(low.cross_idx)
    # state keeps the cross samples and their other images
    b = _attack(mask_epochs=0)
    b.load_state(a.state())
    assert torch.equal(b.poison_x(x, pidx[:64]), out) and torch.equal(b.poison_y(y, pidx), y2)


def test_state_round_trip_reproduces_the_trigger():
    a, b = _attack(seed=7), _attack(seed=8)
    with torch.no_grad():
        for p in a.generator.parameters():
            p.add_(0.1)
    x = torch.rand(3, 1, 28, 28)
    assert not torch.equal(a.apply_trigger(x, train=False), b.apply_trigger(x, train=False))
    b.load_state(a.state())
    assert torch.equal(a.apply_trigger(x, train=False), b.apply_trigger(x, train=False))
    assert torch.equal(_attack(seed=7).apply_trigger(x, train=False), _attack(seed=7).apply_trigger(x, train=False))


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="with the paper's cross samples no reliable backdoor forms in the miniature (README)")
def test_backdoor_in_miniature_with_the_papers_cross_ratio(backdoored_run, clean_run):
    # The paper's attack: cross_ratio 1 (the reference's num_cross = num_bd). Measured (issue 26, mnist5k,
    # small-cnn, EPOCHS victim, 2 mask epochs; the clean 15-epoch model 0.977-0.979):
    #   AVX-512 seed 0 / 1 / 2: C-ACC 0.965 / 0.976 / 0.969, ASR 0.427 / 0.818 / 0.473, PSNR 30.0 / 15.9 / 27.6
    #   AVX2 seed 0: C-ACC 0.966, ASR 0.687, PSNR 17.3
    # In 12 epochs on 4,000 images the victim does not learn to tell an image's own trigger from another's
    # (the authors train 600 epochs on MNIST); the seed and the kernel set decide how far it gets (0.43-0.82).
    # "Forms" means ASR >= 0.9, 0.08 above the best run.
    run = backdoored_run("inputaware", settings={"mask_epochs": 2}, epochs=EPOCHS)  # cross_ratio 1, the reference's
    assert run.metrics["poisoned"] == 750  # one pass of the batch rule: 375 backdoor + 375 cross samples
    assert run.metrics["cacc"] >= clean_run.metrics["cacc"] - 0.03
    assert run.metrics["asr"] >= 0.9


def test_backdoor_in_miniature_simplified_without_cross_samples(backdoored_run, clean_run):
    # The simplified variant, cross_ratio 0: no cross samples, so the trigger need not be input-specific; another
    # attack than the paper's, kept because its backdoor forms in the miniature. Measured (issue 26; the clean
    # 15-epoch model 0.977-0.979):
    #   AVX-512 seed 0 / 1 / 2: C-ACC 0.970 / 0.971 / 0.973, ASR 0.962 / 0.969 / 0.908, PSNR 26.6 / 15.7 / 29.2
    #   AVX2 seed 0: C-ACC 0.967, ASR 0.998, PSNR 16.4
    # (before issue 26: ASR 0.962-0.998, PSNR 15.5-26.1 over AVX-512 s0/s1 and AVX2 s0/s2; the training is
    # unchanged at pratio 0.1, only the materialised set is now the 375 samples a pass of the batch rule poisons)
    run = backdoored_run("inputaware", settings={"mask_epochs": 2, "cross_ratio": 0.0}, epochs=EPOCHS)
    assert run.metrics["poisoned"] == 375  # the backdoor samples of one pass of the batch rule: 31 x 12 + 3
    assert run.metrics["asr"] >= 0.85
    assert run.metrics["cacc"] >= clean_run.metrics["cacc"] - 0.03  # drop 0.005-0.010
    assert run.metrics["psnr"] >= 12  # a sparse mask
