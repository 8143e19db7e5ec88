"""NPD: the polarizer starts as the identity, the L2 projection, the insertion point, and the defense in miniature."""

import pytest
import torch

from bdcore import SmallCNN, last_feature_map
from bdcore.testing import spec_of
from bdb_defense_npd.defense import insert_polarizer, project_l2


def test_reference_defaults_match_the_catalog():
    cfg = spec_of("defense", "npd").config_model()()
    assert (cfg.lambda_clean, cfg.lambda_consistent, cfg.lambda_confusion, cfg.lambda_target) == (1.0, 0.4, 0.4, 0.4)
    assert cfg.trigger_norm == 3.0


def test_polarizer_goes_after_the_last_block_and_starts_as_identity():
    torch.manual_seed(0)
    m = SmallCNN(10, 1, 28).eval()
    x = torch.rand(3, 1, 28, 28)
    name, _ = last_feature_map(m, x)
    assert name == "features"  # the conv trunk, before global pooling
    before = m(x)
    wrapped = insert_polarizer(m, name, 128)
    assert m.features is wrapped
    assert torch.allclose(m(x), before, atol=1e-6)
    assert {k for k in m.state_dict() if "polarizer" in k} == {"features.polarizer.weight", "features.polarizer.bias"}


def test_l2_projection_by_hand():
    d = torch.zeros(2, 1, 2, 2)
    d[0] = 3.0  # norm 6 -> scaled to 3
    d[1, 0, 0, 0] = 1.0  # norm 1 -> kept
    p = project_l2(d, 3.0)
    assert torch.allclose(p[0], torch.full((1, 2, 2), 1.5))
    assert torch.equal(p[1], d[1])


@pytest.mark.parametrize("attack,max_asr,max_drop", [("wanet", 0.1, 0.17)])
def test_npd_removes_wanet_at_some_accuracy_cost(attack, max_asr, max_drop, backdoored_run, defended_run):
    # BadNets is not asserted: its ASR after NPD is 0.19 (AVX-512) and 0.38 (AVX2) at seed 0 and 0.95 at seed 1
    # (tests/THRESHOLDS.md; the spec's caveat). WaNet: ASR 0.000-0.013, C-ACC drop up to 0.133.
    # quick preset (20 epochs at batch 64: 80 steps on the 200-image reserve). Measured (seed 0, 1 thread), C-ACC / ASR:
    # BadNets 0.969 / 0.996 -> 0.917 / 0.057; WaNet 0.973 / 0.974 -> 0.871 / 0.013. At batch 128 (40 steps, the old
    # quick preset): BadNets 0.954 / 0.488, WaNet 0.959 / 0.001. Blended survives every setting (README).
    run = backdoored_run(attack)
    d = defended_run("npd", run.run_id)
    assert d.metrics["asr"] <= max_asr
    assert d.metrics["cacc"] >= run.metrics["cacc"] - max_drop
    assert d.metrics["info"]["layer"].endswith("features")
