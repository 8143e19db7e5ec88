"""Cognitive Distillation settings (reference defaults: CATALOG.md and the paper)."""

from pydantic import Field

from bdcore import MethodConfig


class CDConfig(MethodConfig):
    """Per-image mask optimisation; small masks are backdoor patterns."""

    lr: float = Field(0.1, gt=0, description="Adam learning rate of the mask (reference: 0.1; Adam betas 0.1, 0.1)")
    p: int = Field(1, ge=1, description="the mask's norm order in the sparsity penalty (reference: 1)")
    gamma: float = Field(0.01, ge=0, description="weight of the mask norm penalty (reference: 0.01)")
    beta: float = Field(10.0, ge=0, description="weight of the mask's total-variation penalty (reference: 10)")
    steps: int = Field(100, ge=1, description="optimisation steps per image (reference: 100)")
    k: float = Field(1.0, ge=0, description="flag a training image whose mask L1 norm is below mean - k * std of the "
                                            "clean reserve's mask norms (1: the paper's mean minus one std)")
    batch_size: int = Field(256, ge=1, description="images optimised together (speed and memory only: every image has "
                                                   "its own mask)")
