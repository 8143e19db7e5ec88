"""Fréchet Inception Distance (Heusel et al., NeurIPS 2017) on torchvision's Inception-v3, from a
state dict the user has locally (bdb downloads nothing): the Fréchet distance between Gaussians
fitted to the 2048-d pool features of two image sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bdcore import BdbError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)): the squared 2-Wasserstein
    distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    from scipy.linalg import sqrtm

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise BdbError(f"Fréchet distance of mismatched Gaussians: means {mu1.shape}, {mu2.shape}, "
                       f"covariances {s1.shape}, {s2.shape}")
    root = sqrtm(s1 @ s2)
    if not np.isfinite(root).all():  # singular product: the usual jitter on the diagonal
        eps = 1e-6 * np.eye(len(s1))
        root = sqrtm((s1 + eps) @ (s2 + eps))
    root = np.real(root)
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(root), 0.0))


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased) of features (N, D)."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise BdbError("FID needs at least 2 images per set; raise --n")
    return f.mean(0), np.cov(f, rowvar=False)


def load_inception(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """torchvision's Inception-v3 with the state dict in `path` (a .pth/.pt file read without
    unpickling objects, or .safetensors), its classifier removed: the model maps ImageNet-normalised
    299x299 images to the 2048-d pool features."""
    from torchvision.models import inception_v3

    p = Path(path).expanduser()
    if not p.is_file():
        raise BdbError(f"fid_weights: no file {str(p)!r}; give a local state dict of torchvision's inception_v3 "
                       "or leave fid_weights unset to skip FID")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(f"holds a {type(state).__name__}, not a state dict")
        model = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
        model.load_state_dict(state)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BdbError(f"fid_weights {str(p)!r} is not a state dict of torchvision's inception_v3 "
                       f"({type(exc).__name__}: {first[:160]})") from None
    model.fc = nn.Identity()
    return model.to(device).eval()


@torch.no_grad()
def inception_features(model: nn.Module, x: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    """2048-d pool features (N, 2048) of images x (N, C, H, W) in [0, 1]: grey images repeated to 3
    channels, resized to 299x299 (bilinear), ImageNet-normalised (the model's transform_input maps
    that to the scaling its weights expect)."""
    dev = next(model.parameters()).device
    mean = torch.tensor(IMAGENET_MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=dev).view(1, 3, 1, 1)
    out = []
    for s in range(0, len(x), batch_size):
        b = x[s:s + batch_size].to(dev).float()
        if b.shape[1] == 1:
            b = b.repeat(1, 3, 1, 1)
        elif b.shape[1] != 3:
            raise BdbError(f"FID needs 1- or 3-channel images, not {b.shape[1]} channels")
        b = F.interpolate(b, size=(299, 299), mode="bilinear", align_corners=False)
        out.append(model((b - mean) / std).float().cpu())
    return torch.cat(out).numpy() if out else np.empty((0, 2048))


def frechet_distance_of_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets (N1, D) and (N2, D).

    With fewer samples than dimensions (the usual case for a poison set: a few hundred images,
    2048 features) the covariances have rank < D and the D x D square root is both slow (a minute
    on one core) and ill-conditioned; it is then computed exactly from the samples: with centred
    A, B, tr (S1 S2)^(1/2) is the sum of the singular values of A B^T / sqrt((N1 - 1)(N2 - 1))
    (S1 S2 = A^T A B^T B / c has the non-zero eigenvalues of (A B^T)(A B^T)^T / c). Otherwise
    `frechet_distance` on the covariances."""
    m1, s1 = gaussian(f1)
    m2, s2 = gaussian(f2)
    n1, n2, d = len(f1), len(f2), np.shape(f1)[1]
    if min(n1, n2) >= d:
        return frechet_distance(m1, s1, m2, s2)
    a = np.asarray(f1, np.float64) - m1
    b = np.asarray(f2, np.float64) - m2
    cross = np.linalg.svd(a @ b.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = m1 - m2
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * cross, 0.0))


def fid(model: nn.Module, a: torch.Tensor, b: torch.Tensor) -> float:
    """FID between image sets a and b (each (N, C, H, W) in [0, 1])."""
    return frechet_distance_of_features(inception_features(model, a), inception_features(model, b))
