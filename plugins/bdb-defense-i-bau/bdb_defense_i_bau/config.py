"""I-BAU settings (reference defaults: CATALOG.md, the paper and its reference implementation)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class IBAUConfig(MethodConfig):
    """Minimax unlearning with an implicit hypergradient (fixed-point solver)."""

    rounds: int = Field(5, ge=1, description="unlearning rounds: a new universal perturbation, then one pass of "
                                              "outer updates over the reserve")
    K: int = Field(5, ge=1, description="fixed-point iterations of the implicit hypergradient's linear solve")
    lr: float = Field(1e-4, gt=0, description="Adam learning rate of the outer (model) updates")
    batch_size: int = Field(100, ge=1, description="mini-batch size of the inner and outer steps")
    norm: Literal["l2", "linf", "none"] = Field("l2", description="norm ball of the universal perturbation "
                                                                "('none': bounded by the ridge term only)")
    radius: float = Field(10.0, gt=0, description="radius C of the norm ball (image scale [0, 1])")
    inner_lr: float = Field(10.0, gt=0, description="SGD step size of the inner maximisation, per mini-batch")
    inner_labels: Literal["predicted", "true"] = Field(
        "predicted", description="labels of the inner maximisation's loss: the model's predictions on the clean "
                                 "images (the reference implementation) or the reserve's true labels")
    project_every_step: bool = Field(False, description="project on the norm ball after every inner step (False: "
                                                        "once after each pass, as the reference implementation)")
    inner_passes: int = Field(1, ge=1, description="passes over the reserve of the inner maximisation, per round")
    ridge: float = Field(1e-3, ge=0, description="lambda of the inner objective -L(x + delta) + lambda * ||delta||^2")
    fp_step: float = Field(0.1, gt=0, description="step of the fixed-point map delta -> delta - step * grad of the "
                                                 "inner objective, whose Jacobians give the hypergradient")
    outer_fraction: float = Field(1.0, gt=0, le=1, description="share of each outer mini-batch that carries the "
                                                              "perturbation (1 = the paper's H(delta, theta); the "
                                                              "reference code uses 0.01)")
