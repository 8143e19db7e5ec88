"""I-BAU: the implicit hypergradient against its closed form, and the defense in miniature (mnist5k, small-cnn)."""

import torch
from torch import nn

from bdb_defense_i_bau.config import IBAUConfig
from bdb_defense_i_bau.defense import implicit_hypergradient, inner_objective, project
from bdcore.testing import check_defense_acts


def test_projection_onto_the_norm_balls():
    d = torch.full((1, 1, 2, 2), 3.0)  # L2 norm 6
    assert torch.allclose(project(d, "l2", 3.0).norm(), torch.tensor(3.0))
    assert torch.equal(project(d, "l2", 10.0), d)
    assert project(d, "linf", 0.5).abs().max() == 0.5
    assert torch.equal(project(d, "none", 0.5), d)


def test_fixed_point_hypergradient_matches_the_dense_formula():
    """grad psi = d_theta H + (d_theta Phi)^T sum_{k<K} (d_delta Phi^T)^k d_delta H, with dense Jacobians."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=True), nn.Tanh(), nn.Linear(3, 3))
    params = list(model.parameters())
    x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 1, 0])
    delta = 0.3 * torch.randn(1, 1, 2, 2)
    c = IBAUConfig(K=4, fp_step=0.5, ridge=0.05)
    carries = torch.ones(5, 1, 1, 1)
    got = implicit_hypergradient(model, params, x, y, delta, carries, c)

    flat = torch.cat([p.detach().flatten() for p in params])
    shapes = [p.shape for p in params]

    def unflat(v):
        out, i = [], 0
        for s in shapes:
            n = torch.Size(s).numel()
            out.append(v[i:i + n].view(s))
            i += n
        return out

    def run(theta, d):
        return torch.func.functional_call(model, dict(zip([n for n, _ in model.named_parameters()], unflat(theta))), (x + d,))

    def H(d, theta):
        return nn.functional.cross_entropy(run(theta, d), y)

    def phi(d, theta):
        g = torch.func.grad(lambda dd: -nn.functional.cross_entropy(run(theta, dd), y) + c.ridge * dd.pow(2).sum())(d)
        return (d - c.fp_step * g).flatten()

    d0 = delta.clone()
    g_d = torch.func.grad(H, 0)(d0, flat).flatten()
    g_t = torch.func.grad(H, 1)(d0, flat)
    J_dd = torch.func.jacrev(phi, 0)(d0, flat).reshape(4, 4)       # d Phi / d delta
    J_dt = torch.func.jacrev(phi, 1)(d0, flat)                       # d Phi / d theta, (4, P)
    v = torch.zeros(4)
    for _ in range(c.K):
        v = J_dd.T @ v + g_d
    expected = g_t + J_dt.T @ v
    assert torch.allclose(torch.cat([g.flatten() for g in got]), expected, atol=1e-5)
    # the implicit term is not negligible here: it is not plain adversarial training
    assert (J_dt.T @ v).norm() > 0.05 * g_t.norm()


def test_inner_objective_is_negative_loss_plus_ridge():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x, y, d = torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 0]), torch.full((1, 1, 2, 2), 0.5)
    ce = nn.functional.cross_entropy(model(x + d), y)
    assert torch.allclose(inner_objective(model, x, y, d, 0.1), -ce + 0.1 * 4 * 0.25)


def test_i_bau_weakens_badnets(backdoored_run, defended_run):
    # reference settings (5 rounds, K 5, Adam 1e-4, L2 radius 10, the paper's H on every outer sample).
    # measured (seed 0, 1 thread): before C-ACC 0.972 / ASR 0.998; after C-ACC 0.829, ASR 0.154, RA 0.808
    # (2 threads: 0.970 / 0.997 -> C-ACC 0.848, ASR 0.220, RA 0.752).
    # The clean-accuracy cost is the target class: the universal perturbation sends every reserve image to
    # class 0, and unlearning it also erodes class 0 (its test accuracy falls to 0.00, other classes 0.78-0.99).
    # Re-measured in session 5 (victim 0.969 / 0.996, one thread): C-ACC 0.890, ASR 0.467, RA 0.514: the backdoor
    # is halved, not removed.
    run = backdoored_run("badnet")
    d = defended_run("i-bau", run.run_id)
    # ASR 0.372 (AVX-512) and 0.566 (AVX2) at seed 0, 0.122 at seed 1: a drop of at least 0.42 everywhere
    assert d.metrics["asr"] <= run.metrics["asr"] - 0.35
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.2
    rounds = d.metrics["info"]["rounds"]
    assert len(rounds) == 5 and rounds[0]["delta_norm"] <= 10.0 + 1e-4


def test_runs_on_preact_resnet18(backdoored_run, defended_run, bdb_store):
    run = backdoored_run("badnet", dataset="digits", model="preact-resnet18", epochs=3)
    d = defended_run("i-bau", run.run_id, settings={"rounds": 1})
    check_defense_acts("i-bau", bdb_store, d)  # a changed model, or the reason why not
    assert d.metrics["cacc"] >= run.metrics["cacc"] - 0.1


def test_blended_survives_in_miniature(backdoored_run, defended_run, bdb_store):
    # measured (seed 0, 1 thread): blended before C-ACC 0.970 / ASR 1.000; after C-ACC 0.801, ASR 1.000
    # (2 threads: 0.974 -> 0.919, ASR 1.000; also 1.000 with inner_passes=5). The inner maximisation finds a universal perturbation that fools the model (validation
    # accuracy under it 0.1-0.3) but not the blend trigger's direction, so unlearning it leaves the backdoor:
    # the paper's Blended result does not reproduce in miniature (README).
    # Re-measured in session 5 (one thread; the session-3 'regression' was runs trained with 2 threads after
    # umap-learn reset the worker's thread count): C-ACC -> 0.600, ASR 1.000: the backdoor stays and accuracy goes.
    run = backdoored_run("blended")
    d = defended_run("i-bau", run.run_id)
    check_defense_acts("i-bau", bdb_store, d, allow_unchanged=False)  # it acted; the backdoor stays
    assert d.metrics["asr"] >= 0.9
