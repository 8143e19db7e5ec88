"""NPD settings (reference defaults: CATALOG.md and the paper's reference implementation)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class NPDConfig(MethodConfig):
    """Train a neural polarizer layer on the clean reserve with targeted adversarial examples."""

    placement: Literal["block-input", "stage-output"] = Field(
        "block-input", description="where the polarizer sits: 'block-input' = it filters the input of the last "
                                   "block's first convolution (the reference's layer4.1.conv1 pre-hook; in a plain "
                                   "conv stack such as small-cnn the input of the last convolution); 'stage-output' "
                                   "= it filters the last spatial feature map, after the last block (this plugin's "
                                   "rule until session 12)")
    layer: str | None = Field(None, description="dotted name of the module whose input ('block-input') or output "
                                                "('stage-output') the polarizer filters; None: found by `placement`")
    epochs: int = Field(50, ge=1, description="training epochs of the polarizer over the clean reserve (reference 50)")
    lr: float = Field(0.01, gt=0, description="SGD learning rate of the polarizer")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(5e-4, ge=0, description="weight decay of the polarizer")
    batch_size: int = Field(128, ge=1, description="mini-batch size")
    trigger_norm: float = Field(3.0, gt=0, description="L2 bound of the targeted perturbation (pixel units in [0, 1])")
    pgd_steps: int = Field(2, ge=1, description="signed-gradient steps of the targeted perturbation (the "
                                                "reference's inner_steps 2)")
    pgd_step_size: float = Field(0.1, gt=0, description="PGD step size (pixel units)")
    pgd_stop: float = Field(0.6, ge=0, le=1, description="stop PGD once this share of the batch reaches its target")
    lambda_clean: float = Field(1.0, ge=0, description="weight of the clean cross-entropy (loss 1)")
    lambda_consistent: float = Field(0.4, ge=0, description="weight of the cross-entropy of perturbed images against "
                                                            "the clean prediction (loss 2)")
    lambda_confusion: float = Field(0.4, ge=0, description="weight of -log(1 - p) of the top non-label class on "
                                                           "perturbed images (loss 3)")
    lambda_target: float = Field(0.4, ge=0, description="weight of -log(1 - p) of the estimated target class on "
                                                        "perturbed images (loss 4)")
    augment: bool = Field(False, description="random crop/flip of the reserve batches (the reference uses none)")
