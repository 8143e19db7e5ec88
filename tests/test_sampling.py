"""Per-sample randomness and cover samples shared by attacks."""

import torch

from bdcore.api.attack import CoverSampleAttack
from bdcore.testing import attack_context
from bdcore.data.sampling import mix_int, mix32, sample_uniforms


def test_uniforms_depend_only_on_seed_index_and_stream():
    idx = torch.tensor([5, 1, 9, 5])
    u = sample_uniforms(7, idx, 3)
    assert u.shape == (4, 3) and u.dtype == torch.float64 and (u >= 0).all() and (u < 1).all()
    assert torch.equal(u[0], u[3])  # same index, same numbers, wherever it sits in the batch
    assert torch.equal(sample_uniforms(7, torch.tensor([9]), 3)[0], u[2])
    assert not torch.equal(sample_uniforms(8, idx, 3), u)
    many = sample_uniforms(0, torch.arange(20000), 1)
    assert abs(many.mean().item() - 0.5) < 0.01


def test_int_and_tensor_hashes_agree():
    vals = [0, 1, 12345, 2**32 - 1]
    assert mix32(torch.tensor(vals)).tolist() == [mix_int(v) for v in vals]


class _Cfg:
    cover_ratio = None


class _Stamp(CoverSampleAttack):
    def apply_trigger(self, x, *, train, idx=None):
        return x


def test_cover_samples_keep_labels_and_payload_gets_target():
    ctx = attack_context(shape=(1, 4, 4), dataset="d", model="m", poison_pool="non-target")
    a = _Stamp(_Cfg(), ctx)
    y = torch.arange(100) % 10
    idx = a.poison_indices(y, torch.Generator().manual_seed(0))
    assert len(idx) == 20 and len(a.cover_idx) == 10 and set(a.cover_idx.tolist()) <= set(idx.tolist())
    payload = torch.tensor(sorted(set(idx.tolist()) - set(a.cover_idx.tolist())))
    assert (y[payload] != 0).all()
    out = a.poison_y(y[idx], idx)
    is_cover = torch.isin(idx, a.cover_idx)
    assert torch.equal(out[is_cover], y[idx][is_cover]) and (out[~is_cover] == 0).all()


def test_poison_pool_all_draws_target_class_samples_too():
    # the reference draws dirty-label poison from all N samples; 'non-target' only from the others
    y = torch.arange(1000) % 10
    picks = {}
    for pool in ("all", "non-target"):
        ctx = attack_context(shape=(1, 4, 4), pratio=0.5, dataset="d", model="m", poison_pool=pool)
        a = _Stamp(_Cfg(), ctx)
        idx = a.poison_indices(y, torch.Generator().manual_seed(0))
        picks[pool] = idx[~torch.isin(idx, a.cover_idx)]  # the payload
    assert (y[picks["all"]] == 0).any() and not (y[picks["non-target"]] == 0).any()
