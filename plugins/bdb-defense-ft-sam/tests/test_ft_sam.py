"""FT-SAM: the label-smoothed loss by hand, the reference settings, and the defense in miniature (mnist5k, small-cnn)."""

import math

import torch

from bdcore.testing import spec_of
from bdb_defense_ft_sam.defense import smoothed_cross_entropy


def test_reference_defaults_match_the_paper():
    cfg = spec_of("defense", "ft-sam").config_model()()
    assert (cfg.rho, cfg.adaptive, cfg.eta, cfg.label_smoothing) == (2.0, True, 0.0, 0.1)
    assert (cfg.lr, cfg.batch_size, cfg.epochs) == (0.01, 256, 100)


def test_label_smoothing_by_hand():
    # 3 classes, uniform logits: loss = -(0.9 + 0.05 + 0.05) * log(1/3) = log 3 whatever the label
    logits = torch.zeros(2, 3)
    assert torch.allclose(smoothed_cross_entropy(logits, torch.tensor([0, 2]), 0.1), torch.tensor(math.log(3)))
    # logits (0, log 2, 0): p = (1/4, 1/2, 1/4); label 1 -> -(0.9 log 1/2 + 0.1 log 1/4)
    logits = torch.tensor([[0.0, math.log(2), 0.0]])
    expected = -(0.9 * math.log(0.5) + 0.1 * math.log(0.25))
    assert torch.allclose(smoothed_cross_entropy(logits, torch.tensor([1]), 0.1), torch.tensor(expected))


def test_ft_sam_more_than_halves_badnets_asr(backdoored_run, defended_run):
    # quick preset: the paper's lr 0.01, rho 2 adaptive, label smoothing 0.1, 20 epochs at batch 64 (4 steps an
    # epoch on the 200-image reserve; at the paper's batch 256 an epoch is 1 step: 0.906 / 0.426, README).
    # measured (seed 0, 1 thread): before C-ACC 0.969 / ASR 0.996; after C-ACC 0.963, ASR 0.232, RA 0.748, DER 0.879
    # (plain fine-tuning at the same lr leaves ASR at 0.99, bdb-defense-ft)
    run = backdoored_run("badnet")
    d = defended_run("ft-sam", run.run_id)
    assert d.metrics["asr"] <= 0.5  # 0.154-0.171 at seed 0, 0.453 at seed 1 (THRESHOLDS.md)
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.03
    assert d.metrics["der"] >= 0.72  # 0.766-0.912


# WaNet is not asserted: ASR after FT-SAM 0.076 (AVX-512) and 0.038 (AVX2) at seed 0, 0.439 at seed 1, 0.757 at
# seed 2 (AVX2), C-ACC kept within 0.01 (tests/THRESHOLDS.md; the spec's caveat).
