"""Label-Consistent settings (reference defaults: CATALOG.md)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class LCConfig(MethodConfig):
    """PGD (L-inf) on target-class training images against a clean surrogate, then the checkerboard."""

    eps: float = Field(8.0, ge=0, le=255, description="L-inf radius of the adversarial perturbation (of 255)")
    step_size: float = Field(1.5, gt=0, le=255, description="PGD step size (of 255)")
    steps: int = Field(100, ge=0, description="PGD steps (0: no adversarial perturbation, trigger only)")
    amplitude: float = Field(1.0, ge=0, le=1, description="trigger amplitude: +-amplitude*255 added at the "
                             "checkerboard's white/black pixels, then clipped (1: full amplitude, the reference)")
    resize: Literal["nearest", "bilinear"] = Field(
        "nearest", description="how the 32x32 trigger is scaled to other sizes: nearest neighbour on the mask (the "
        "reference's LC transform: full +-255 checkerboards) or Pillow bilinear on its white and black parts "
        "(the protocol's rule for trigger images, faint at 28x28)")
    surrogate_model: str | None = Field(None, description="surrogate architecture (default: the victim's model)")
    surrogate_epochs: int = Field(100, ge=1, description="surrogate training epochs (default: the reference victim recipe)")
    surrogate_lr: float = Field(0.01, gt=0, description="surrogate peak learning rate (SGD, cosine, wd 5e-4, batch 128)")
    surrogate_seed: int = Field(0, description="seed of the surrogate's init and data order (shared across runs)")
    surrogate_adv_eps: float = Field(8.0, ge=0, le=255, description="the surrogate is adversarially trained (PGD, "
                                     "Madry et al.) within this L-inf radius (of 255), as the paper's; 0: standard "
                                     "training")
    surrogate_adv_step_size: float = Field(2.0, gt=0, le=255, description="step of the surrogate's training PGD "
                                           "(of 255)")
    surrogate_adv_steps: int = Field(7, ge=1, description="steps of the surrogate's training PGD (random start)")
