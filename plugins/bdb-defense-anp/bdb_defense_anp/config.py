"""ANP settings (reference defaults: CATALOG.md and the paper's CIFAR-10 setting)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class ANPConfig(MethodConfig):
    """Mask optimisation under adversarial neuron perturbation, then pruning by threshold."""

    eps: float = Field(0.4, ge=0, description="perturbation budget: relative weight/bias perturbations "
                                               "delta, xi lie in [-eps, eps]")
    perturb_steps: int = Field(1, ge=1, description="ascent steps of the inner maximisation (step size eps / steps)")
    perturb_update: Literal["sign", "gradient"] = Field(
        "sign", description="inner ascent step: 'sign' = step * sign(grad) (FGSM-style), 'gradient' = step * grad")
    alpha: float = Field(0.2, ge=0, le=1, description="trade-off: alpha * clean loss + (1 - alpha) * perturbed loss")
    iterations: int = Field(2000, ge=1, description="mask optimisation iterations (mini-batches of the reserve)")
    lr: float = Field(0.2, gt=0, description="SGD learning rate of the masks")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum of the masks")
    batch_size: int = Field(128, ge=1, description="mini-batch size")
    augment: bool = Field(True, description="random crop/flip of the reserve batches, as in victim training")
    bn_mode: Literal["train", "eval"] = Field(
        "train", description="BN statistics during mask optimisation: 'train' = batch statistics (reference "
                             "implementation; running statistics are restored afterwards), 'eval' = running statistics")
    threshold: float = Field(0.2, ge=0, le=1, description="prune neurons whose mask is below this value")
    selection: Literal["threshold", "val"] = Field(
        "threshold", description="'threshold' = prune by `threshold` (paper); 'val' = the largest of `val_thresholds` "
                                 "whose validation accuracy stays within `max_val_drop` of the unpruned model")
    val_thresholds: list[float] = Field(
        [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        description="candidate thresholds for selection='val'")
    max_val_drop: float = Field(0.05, ge=0, le=1, description="tolerated validation-accuracy drop for selection='val'")
