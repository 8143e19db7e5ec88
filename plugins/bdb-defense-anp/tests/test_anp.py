"""ANP: the perturbed forward pass, and the defense in miniature (mnist5k, small-cnn)."""

import copy

import torch

from bdcore import SmallCNN
from bdcore import batchnorms, zero_bn_scale
from bdb_defense_anp.defense import NeuronPerturbedForward
from bdcore.testing import check_defense_acts


def _model():
    torch.manual_seed(0)
    m = SmallCNN(10, 1, 28).eval()
    for _, bn in batchnorms(m):  # non-trivial BN affine parameters and statistics
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.2, 0.2)
    return m


def test_unit_scale_and_shift_reproduce_the_model():
    m, x = _model(), torch.rand(4, 1, 28, 28)
    fwd = NeuronPerturbedForward(m)
    ones = torch.ones(fwd.n)
    assert fwd.n == 32 + 64 + 128
    assert torch.allclose(fwd(x, ones, ones), m(x), atol=1e-6)


def test_zero_mask_equals_pruning_the_bn_scale():
    m, x = _model(), torch.rand(4, 1, 28, 28)
    fwd = NeuronPerturbedForward(m)
    scale = torch.ones(fwd.n)
    scale[[3, 40, 100]] = 0  # neuron 3 of BN 1, 8 of BN 2, 4 of BN 3
    out = fwd(x, scale, torch.ones(fwd.n))
    pruned = copy.deepcopy(m)
    layers = batchnorms(pruned)
    zero_bn_scale(layers[0][1], [3])
    zero_bn_scale(layers[1][1], [8])
    zero_bn_scale(layers[2][1], [4])
    assert torch.allclose(out, pruned(x), atol=1e-6)


def test_relative_perturbation_multiplies_weight_and_bias():
    m, x = _model(), torch.rand(2, 1, 28, 28)
    fwd = NeuronPerturbedForward(m)
    s, t = torch.full((fwd.n,), 1.4), torch.full((fwd.n,), 0.6)
    scaled = copy.deepcopy(m)
    for _, bn in batchnorms(scaled):
        bn.weight.data *= 1.4
        bn.bias.data *= 0.6
    assert torch.allclose(fwd(x, s, t), scaled(x), atol=1e-5)


def test_anp_prunes_a_few_neurons_on_badnets(backdoored_run, defended_run, bdb_store):
    # 200 mask iterations instead of 2000 (the reserve is 160 images; CPU time), other settings the paper's.
    # measured (seed 0, 1 thread): before C-ACC 0.972 / ASR 0.998; after C-ACC 0.948, ASR 0.474, RA 0.524,
    # 9 of 224 neurons pruned (mask < 0.2); 2 threads: 0.970 / 0.997 -> C-ACC 0.936, ASR 0.178, 10 pruned.
    # Against Blended the same setting prunes 5 neurons and leaves ASR at 1.000 (also with 400 iterations and
    # any threshold up to 0.7): a failure in miniature, see README (not tested here to keep the suite short).
    run = backdoored_run("badnet")
    d = defended_run("anp", run.run_id, settings={"iterations": 200})
    check_defense_acts("anp", bdb_store, d, allow_unchanged=False)  # it pruned, and the model changed
    assert 1 <= d.metrics["info"]["pruned_count"] <= 30
    # Session 11 (reserve drawn from all indices): ASR 0.150-0.171 at seed 0 on both kernel sets, 0.631 at seed 1.
    # Session 12 (the reserve drawn from never-poisoned images): ASR after 0.239 (AVX2 s0), <= 0.67 (AVX-512 s0),
    # 0.984 (s1), 0.784 (s2); C-ACC 0.731 (AVX-512 s0), 0.898, 0.971, 0.967: whether 200 iterations remove the
    # backdoor depends on the victim and the reserve, so no ASR claim (spec caveat); the accuracy bar holds
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.27


def test_runs_on_preact_resnet18(backdoored_run, defended_run, bdb_store):
    # a few iterations only: PreAct-ResNet18 is slow on CPU; checks the hooks and the returned model
    run = backdoored_run("badnet", dataset="digits", model="preact-resnet18", epochs=3)
    d = defended_run("anp", run.run_id, settings={"iterations": 3, "batch_size": 32})
    check_defense_acts("anp", bdb_store, d)  # a changed model, or the reason why not
    assert d.metrics["info"]["neurons"] == 3904
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.1


def test_timm_backbone():
    # backbone-agnostic: the BN affine substitution works on a timm ResNet-18 (20 BN layers, 4,800 neurons)
    from bdcore import new_model

    torch.manual_seed(0)
    m = new_model("timm:resnet18", 10, (1, 16, 16), (0.5,), (0.5,)).eval()
    x = torch.rand(2, 1, 16, 16)
    fwd = NeuronPerturbedForward(m)
    ones = torch.ones(fwd.n)
    assert (len(fwd.layers), fwd.n) == (20, 4800)
    assert torch.allclose(fwd(x, ones, ones), m(x), atol=1e-5)
