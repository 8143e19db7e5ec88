"""WaNet settings (reference defaults: CATALOG.md, the paper's CIFAR-10/MNIST/GTSRB setting)."""

from pydantic import Field

from bdcore import MethodConfig


class WaNetConfig(MethodConfig):
    """Warping field from a random k x k control grid; backdoor and noise-mode shares per batch."""

    k: int = Field(4, ge=2, le=64, description="side of the random control grid of the warping field")
    s: float = Field(0.5, gt=0, description="warping strength (offsets are s * field / image size)")
    cross_ratio: float = Field(
        2.0, ge=0, description="noise-mode samples per backdoor sample in each batch (paper: rho_n = 2 rho_a)"
    )
    field_seed: int | None = Field(
        None, description="seed of the random control grid; default: derived from the run's attack seed"
    )
