"""Label-Consistent: the checkerboard on hand-computed pixels, PGD's ball and loss, the adversarial
cache, and the backdoor in miniature."""

import json

import numpy as np
import torch
from PIL import Image

from bdb_attack_lc.attack import add_delta, sign_image, trigger_delta
from bdb_attack_lc.config import LCConfig
from bdcore import pgd_linf
from bdcore.testing import SHORT_EPOCHS as EPOCHS

# the reference's "all-corners" annotation (Turner et al.'s code): (row, col) -> +1 white / -1 black
REFERENCE_ALL_CORNERS = {
    (0, 0): 1, (0, 1): -1, (0, 2): -1, (1, 0): -1, (1, 1): 1, (1, 2): -1, (2, 0): 1, (2, 1): -1, (2, 2): 1,
    (-1, 0): 1, (-1, 1): -1, (-1, 2): 1, (-2, 0): -1, (-2, 1): 1, (-2, 2): -1, (-3, 0): 1, (-3, 1): -1, (-3, 2): -1,
    (0, -1): 1, (0, -2): -1, (0, -3): -1, (1, -1): -1, (1, -2): 1, (1, -3): -1, (2, -1): 1, (2, -2): -1, (2, -3): 1,
    (-1, -1): 1, (-1, -2): -1, (-1, -3): 1, (-2, -1): -1, (-2, -2): 1, (-2, -3): -1, (-3, -1): 1, (-3, -2): -1,
    (-3, -3): -1,
}

# the miniature: a 5-epoch standard surrogate (quick recipe lr 0.1; the one lc, lf, trojannn, narcissus and htba
# tests share) and the reference PGD (8/255, 1.5/255, 100 steps). The paper's robust surrogate (PGD-7 adversarial
# training at 8/255, the default) costs about 6x and gives the same miniature (C-ACC 0.878, ASR 0.483; README).
MINI = {"surrogate_epochs": 5, "surrogate_lr": 0.1, "surrogate_adv_eps": 0}


class MemoryCache:
    """An in-memory stand-in for the run store's artifact cache (same get_or_build contract)."""

    def __init__(self):
        self.store, self.used = {}, []

    def get_or_build(self, name, key, build):
        k = (name, json.dumps(key, sort_keys=True))
        built = k not in self.store
        if built:
            self.store[k] = {n: t.detach().cpu().clone() for n, t in build().items()}
        self.used.append({"name": name, "built": built})
        return self.store[k]


def _attack(shape=(1, 28, 28), artifacts=None, **settings):
    from bdcore.testing import attack_context, spec_of

    ctx = attack_context(shape=shape, artifacts=artifacts)
    return spec_of("attack", "lc").load()(LCConfig(**settings), ctx)


def test_checkerboard_at_32x32_is_the_references_four_corners():
    s = sign_image()
    expected = torch.zeros(32, 32, dtype=torch.int8)
    for (r, c), v in REFERENCE_ALL_CORNERS.items():
        expected[r, c] = v
    assert torch.equal(s, expected)
    assert int((s != 0).sum()) == 36
    for mode in ("bilinear", "nearest"):
        assert torch.equal(trigger_delta((3, 32, 32), mode), expected.float().expand(3, 32, 32))


def test_full_amplitude_overwrites_with_white_and_black():
    # the reference adds +-255 and clips: every trigger pixel becomes 255 or 0 whatever it was
    x = torch.rand(2, 3, 32, 32)
    out = add_delta(x, trigger_delta((3, 32, 32)))
    assert torch.all(out[:, :, 0, 0] == 1.0) and torch.all(out[:, :, 0, 1] == 0.0) and torch.all(out[:, :, -1, -1] == 1.0)
    assert torch.equal(out[:, :, 3:-3], x[:, :, 3:-3]) and torch.equal(out[:, :, :, 3:-3], x[:, :, :, 3:-3])


def test_checkerboard_at_28x28_is_pillows_bilinear_of_the_white_and_black_parts():
    d = trigger_delta((1, 28, 28), "bilinear")[0]
    white = np.zeros((32, 32), np.uint8)
    black = np.zeros((32, 32), np.uint8)
    s = sign_image().numpy()
    white[s > 0] = 255
    black[s < 0] = 255
    rw = np.asarray(Image.fromarray(white, mode="L").resize((28, 28), Image.BILINEAR)).astype(np.float64)
    rb = np.asarray(Image.fromarray(black, mode="L").resize((28, 28), Image.BILINEAR)).astype(np.float64)
    assert np.allclose(d.numpy(), (rw - rb) / 255, atol=1e-6)
    # by hand: shrinking 32 -> 28, output pixel 0 reads source pixels 0 and 1 with triangle weights
    # 15/16 and 3/16, normalised to 5/6 and 1/6, in each direction. Corner (0, 0): the white part has
    # 255 at (0, 0) and (1, 1): 255 (25/36 + 1/36) = 184.2 -> 184; the black part has 255 at (0, 1) and
    # (1, 0): 255 (5/36 + 5/36) = 70.8 -> 71; so delta = (184 - 71) / 255 = 113/255. (27, 27) mirrors it.
    assert round(float(d[0, 0]) * 255) == 113 and round(float(d[27, 27]) * 255) == 113
    assert d[4:24, 4:24].abs().sum() == 0 and d[:, 4:24].abs().sum() == 0


def test_checkerboard_at_28x28_nearest_picks_reference_pixels():
    # nearest: row/col i of 28 reads floor(i * 32 / 28) of 32: 0->0, 1->1, 2->2, 25->28, 26->29, 27->30
    d = trigger_delta((1, 28, 28), "nearest")[0]
    s = sign_image().float()
    assert d[0, 0] == s[0, 0] and d[2, 2] == s[2, 2] and d[27, 27] == s[30, 30] and d[26, 25] == s[29, 28]
    assert set(d.unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_pgd_stays_in_the_ball_and_raises_the_loss():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10)).eval()
    x = torch.rand(16, 3, 8, 8)
    y = torch.randint(0, 10, (16,))
    adv = pgd_linf(model, x, y, 8 / 255, 1.5 / 255, 10)
    assert (adv - x).abs().max() <= 8 / 255 + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    loss = torch.nn.functional.cross_entropy
    assert loss(model(adv), y) > loss(model(x), y) + 0.1
    assert torch.equal(pgd_linf(model, x, y, 8 / 255, 1.5 / 255, 0), x)


def test_training_poison_is_the_adversarial_image_and_test_trigger_only_stamps(mnist5k):
    cache = MemoryCache()
    a = _attack(mnist5k.shape, cache, surrogate_epochs=1, surrogate_lr=0.1, surrogate_adv_steps=1, steps=5)
    a.prepare(mnist5k)
    # the default surrogate is adversarially trained (PGD at 8/255), and its cache key says so
    (skey,) = [json.loads(k) for name, k in cache.store if name == "surrogate"]
    assert skey["adversarial"] == {"eps": 8 / 255, "step_size": 2 / 255, "steps": 1}
    idx = torch.nonzero(mnist5k.y_train == 0).flatten()
    assert torch.equal(a.adv_index, idx)
    x = mnist5k.x_train[idx[:8]].float() / 255
    adv = a.adv[:8].float() / 255
    # 5 steps of 1.5/255 reach 7.5/255; truncation to uint8 levels can take a lowered pixel to 8/255 = eps
    assert (adv - x).abs().max() <= 8 / 255 + 1e-6 and (adv - x).abs().max() > 0
    delta = trigger_delta(mnist5k.shape)
    assert torch.allclose(a.poison_x(x, idx[:8]), add_delta(adv, delta))
    assert torch.allclose(a.test_trigger(x, idx[:8]), add_delta(x, delta))
    # a second attack with the same settings reuses both the surrogate and the adversarial images
    cache.used.clear()
    b = _attack(mnist5k.shape, cache, surrogate_epochs=1, surrogate_lr=0.1, surrogate_adv_steps=1, steps=5)
    b.prepare(mnist5k)
    assert [u["built"] for u in b.ctx.artifacts.used] == [False, False]
    assert torch.equal(b.adv, a.adv)
    # state holds what rebuilds the poison without the surrogate
    a.poison_indices(mnist5k.y_train, torch.Generator().manual_seed(0))
    c = _attack(mnist5k.shape)
    c.load_state(a.state())
    assert torch.equal(c.poison_x(x, idx[:8]), a.poison_x(x, idx[:8]))


def test_backdoor_in_miniature_with_the_references_trigger(backdoored_run):
    # The reference's LC transform (nearest-neighbour mask, full +-255 checkerboards at 28x28) and the
    # reference PGD against the 5-epoch surrogate; pratio 0.1 poisons every target-class image, so clean
    # zeros lose their class as in the reference (its LC C-ACC on CIFAR-10 is 84.6 against BadNets' 91.3).
    # Measured (session 6, seed 0, 1 thread): C-ACC 0.881, ASR 0.498, RA 0.462. The bilinear trigger
    # (corner +113/255, faint on MNIST's black corners) gives ASR 0.097; without PGD (steps 0) ASR is 0.721,
    # with eps 16 it is 0.076: PGD against a normally trained surrogate adds noise the victim learns as
    # "zero" (the paper perturbs against an adversarially trained model). README, "Measured".
    # at SHORT_EPOCHS = 10 (session 9, one thread): C-ACC 0.871, ASR 0.601, RA 0.351;
    # clean model at 10 epochs: C-ACC 0.967 (at 15: 0.977)
    run = backdoored_run("lc", settings=MINI, epochs=EPOCHS)
    assert run.metrics["asr"] >= 0.4
    assert run.metrics["cacc"] >= 0.85


def test_second_run_reuses_surrogate_and_adversarial_images(backdoored_run, bdb_store):
    run = backdoored_run("lc", settings=MINI, epochs=EPOCHS)  # the miniature's run
    again = backdoored_run("lc", settings=MINI, seed=1, epochs=1)
    meta = json.loads(again.file("meta.json").read_text())
    assert [(u["name"], u["built"]) for u in meta["artifacts"]] == [("surrogate", False), ("lc-adversarial", False)]
    pidx = torch.tensor(json.loads(run.file("poison_indices.json").read_text()))
    from bdcore.testing import load_attack_run, poison_train_set

    _, _, data, attack, _, _ = load_attack_run(run.run_id, bdb_store)
    ts = poison_train_set(data.x_train, data.y_train, attack, pidx)
    assert torch.equal(ts.y, data.y_train)  # no label changed
