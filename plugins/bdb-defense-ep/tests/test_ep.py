"""EP: the entropy estimator on known distributions, and the defense in miniature (mnist5k, small-cnn)."""

import math

import torch

from bdb_defense_ep.defense import histogram_entropy, outliers_below, standardise
from bdcore.testing import check_defense_acts


def test_histogram_entropy_of_a_gaussian_is_half_log_2_pi_e():
    z = torch.randn(1, 200_000, generator=torch.Generator().manual_seed(0))
    h = histogram_entropy(z, 0.01)
    assert abs(float(h[0]) - 0.5 * math.log(2 * math.pi * math.e)) < 0.03  # 1.419


def test_a_separated_mixture_has_lower_standardised_entropy_than_a_gaussian():
    # a backdoor neuron: 90% benign around 0, 10% poisoned far away; both rows standardised as EP does
    g = torch.Generator().manual_seed(0)
    gauss = torch.randn(20_000, generator=g)
    mix = torch.cat([torch.randn(18_000, generator=g), 8 + torch.randn(2_000, generator=g)])
    h = histogram_entropy(standardise(torch.stack([gauss, mix])), 0.01)
    assert float(h[1]) < float(h[0]) - 0.3


def test_a_dead_neuron_is_a_point_mass_not_a_huge_grid():
    # float32 pre-activations of a dead neuron (the value seen on a 1-epoch BadNets model): its float32 mean
    # is off by 6e-8 and its std is 0, so dividing by the clamped std put it at 59,605 standard units and the
    # layer's shared histogram grid over millions of bins (3 CPU minutes)
    f = torch.cat([torch.full((1, 4000), 0.7173774242401123), torch.tensor([[0.0, 1.0, 2.0, 3.0] * 1000])])
    z = standardise(f)
    assert float(z.max() - z.min()) < 3
    assert z.dtype == torch.float64 and torch.equal(z[0], torch.zeros(4000, dtype=torch.float64))
    # the live row: values 0..3 in equal shares, mean 1.5, std sqrt(1.25 * 4000 / 3999)
    assert torch.allclose(z[1, :4], (torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64) - 1.5)
                          / math.sqrt(1.25 * 4000 / 3999))
    h = histogram_entropy(z, 0.01)
    assert float(h[0]) == math.log(0.01)  # all mass in one bin: -1 * log 1 + log w
    assert torch.equal(standardise(torch.zeros(2, 5)), torch.zeros(2, 5, dtype=torch.float64))


def test_outliers_below_mean_minus_u_std():
    assert outliers_below(torch.tensor([1.0] * 20 + [-9.0]), 3.0).tolist() == [20]


def test_reference_setting_fails_in_miniature(backdoored_run, defended_run, bdb_store):
    # measured (seed 0, 1 thread): before C-ACC 0.972 / ASR 0.998; after u=3 over all BN layers: C-ACC 0.913,
    # ASR 0.998, 8 neurons pruned (2 threads: 0.970 / 0.997 -> 0.847 / 1.000, 7 pruned).
    # session 8, dead neurons standardised to a point mass (victim 0.969 / 0.996): 7 pruned (1 + 1 + 5),
    # C-ACC 0.961, ASR 0.974.
    # EP ranks the last layer's backdoor neurons well, but with 32/64/128 neurons per layer mean - 3 std flags
    # only 4-5 of the ~15 backdoor neurons there, and it also prunes early-layer neurons with degenerate
    # (non-backdoor) distributions, which costs clean accuracy. A genuine failure of the reference setting here.
    run = backdoored_run("badnet")
    d = defended_run("ep", run.run_id)
    check_defense_acts("ep", bdb_store, d, allow_unchanged=False)  # it acted; the backdoor stays
    info = d.metrics["info"]
    assert info["data"] == "train" and info["samples"] == 4000
    # 5-6 neurons pruned (in the first layer at seed 0, not at seed 2) and the backdoor survives (0.952-0.998)
    assert d.metrics["asr"] >= 0.9


def test_last_layer_with_lower_u_weakens_badnets(backdoored_run, defended_run):
    # measured (seed 0, 1 thread): u=1.5 on the last BN layer prunes 14 of its 128 neurons: C-ACC 0.952,
    # ASR 0.109, RA 0.868 (2 threads: 13 pruned, C-ACC 0.941, ASR 0.084).
    # re-measured under the reference protocol (poison drawn from all samples, uint8 poison, whole 5% reserve of 200): 10 pruned, C-ACC 0.968 -> 0.944, ASR 0.989 -> 0.657, RA 0.339: a partial removal now.
    # re-measured in session 5 (victim 0.969 / 0.996: the BadNets miniature moved since; one torch thread, which
    # the suite had not always had, see bdcore.nn.runtime.keep_threads): C-ACC 0.969 -> 0.880, ASR 0.996 -> 0.360, RA 0.564.
    run = backdoored_run("badnet")
    d = defended_run("ep", run.run_id, settings={"u": 1.5, "layers": "last"})
    assert d.metrics["info"]["pruned_count"] <= 20
    assert d.metrics["asr"] <= run.metrics["asr"] - 0.25  # ASR 0.16-0.66 from 0.99 over kernel sets and seeds
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.12


def test_clean_reserve_alone_does_not_expose_the_backdoor(backdoored_run, defended_run, bdb_store):
    # the paper measures the training set, where poisoned samples make backdoor neurons bimodal. On the clean
    # reserve alone there is nothing to detect: measured (seed 0, 1 thread) with the setting that works above,
    # 8 neurons pruned, C-ACC 0.961, ASR 0.998.
    run = backdoored_run("badnet")
    d = defended_run("ep", run.run_id, settings={"u": 1.5, "layers": "last", "data": "reserve"})
    check_defense_acts("ep", bdb_store, d, allow_unchanged=False)  # it acted; the backdoor stays
    assert d.metrics["info"]["samples"] == 200  # the whole 5% reserve
    assert d.metrics["asr"] >= 0.9


def test_blended_survives_even_the_miniature_setting(backdoored_run, defended_run, bdb_store):
    # measured (seed 0, 1 thread): blended before C-ACC 0.970 / ASR 1.000; u=1.5, last layer: C-ACC 0.954,
    # ASR 1.000 (14 neurons pruned; 2 threads: 0.974 -> 0.951, ASR 1.000).
    # The whole-image blend shifts many neurons a little instead of a few a lot: EP finds no backdoor neurons.
    run = backdoored_run("blended")
    d = defended_run("ep", run.run_id, settings={"u": 1.5, "layers": "last"})
    check_defense_acts("ep", bdb_store, d, allow_unchanged=False)  # it acted; the backdoor stays
    assert d.metrics["asr"] >= 0.9
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.05


def test_runs_on_preact_resnet18(backdoored_run, defended_run, bdb_store):
    run = backdoored_run("badnet", dataset="digits", model="preact-resnet18", epochs=3)
    d = defended_run("ep", run.run_id)
    check_defense_acts("ep", bdb_store, d)  # a changed model, or the reason why not
    assert d.metrics["info"]["neurons"] == 3904  # the 17 BN layers of PreAct-ResNet18
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.1
