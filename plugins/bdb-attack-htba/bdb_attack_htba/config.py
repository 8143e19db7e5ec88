"""HTBA settings (reference defaults: CATALOG.md and the paper)."""

from pydantic import Field

from bdcore import MethodConfig


class HTBAConfig(MethodConfig):
    """z = argmin_{|z - t|_inf <= eps} ||f(z) - f(s~)||^2, t a target image, s~ a source image with the patch pasted
    at a random place, f a clean surrogate's penultimate features; poisons keep their (target) label."""

    eps: float = Field(16.0, gt=0, le=255, description="L-inf bound of the poison perturbation (of 255)")
    iterations: int = Field(5000, ge=1, description="optimisation steps per batch of poisons")
    lr: float = Field(0.01, gt=0, description="initial step size of the projected gradient descent")
    lr_decay: float = Field(0.95, gt=0, le=1, description="the step size is multiplied by this ...")
    decay_every: int = Field(2000, ge=1, description="... every this many steps")
    batch_size: int = Field(100, ge=1, description="poisons optimised together (K), each against K patched sources")
    patch_size: int = Field(8, ge=1, le=32, description="side of the square patch trigger on the 32x32 reference")
    pattern_seed: int = Field(0, description="seed of the patch's random pattern")
    test_location: str = Field("random", pattern="^(random|bottom-right)$",
                               description="where the patch is pasted on test images: a random place per image "
                                           "(the paper) or the bottom-right corner")
    surrogate_model: str | None = Field(None, description="surrogate architecture (default: the victim's model)")
    surrogate_epochs: int = Field(100, ge=1, description="surrogate training epochs (default: the reference victim recipe)")
    surrogate_lr: float = Field(0.01, gt=0, description="surrogate peak learning rate (SGD, cosine, wd 5e-4, batch 128)")
    surrogate_seed: int = Field(0, description="seed of the surrogate's init and data order (shared across runs)")
