"""SAU settings (reference defaults: CATALOG.md and the paper's reference implementation)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class SAUConfig(MethodConfig):
    """Shared adversarial examples by PGD, then unlearning them with Adam."""

    rounds: int = Field(100, ge=1, description="passes over the clean reserve (one PGD + one model step per batch; reference n_rounds 100)")
    batch_size: int = Field(256, ge=1, description="mini-batch size (the reference's 256)")
    lr: float = Field(1e-4, gt=0, description="Adam learning rate of the model")
    eps: float = Field(0.2, gt=0, description="L-inf bound of the perturbation in [0, 1] pixel units (the reference "
                                              "adds it to the de-normalised image; trigger_norm 0.2)")
    pgd_steps: int = Field(5, ge=1, description="PGD steps of the inner maximisation")
    pgd_step_size: float = Field(0.2, gt=0, description="signed-gradient PGD step, in pixel units (reference adv_lr 0.2)")
    pgd_init: Literal["max", "zero", "min"] = Field("max", description="PGD start: +eps everywhere (reference), 0, or -eps")
    beta1: float = Field(0.01, ge=0, description="weight of the adversarial term (fool both models) in the PGD objective")
    beta2: float = Field(1.0, ge=0, description="weight of the shared term (JS divergence between the two models' "
                                                "predictions) in the PGD objective")
    clean_weight: float = Field(1.0, ge=0, description="lambda_1: weight of the clean cross-entropy")
    adv_weight: float = Field(0.0, ge=0, description="lambda_2: weight of plain adversarial training on the perturbed "
                                                     "images (0 in the paper's SAU)")
    shared_weight: float = Field(1.0, ge=0, description="lambda_3: weight of the shared adversarial risk")
    augment: bool = Field(False, description="random crop/flip of the reserve batches (the reference uses none)")
