"""Neural Cleanse settings (reference defaults: the paper and its released code; CATALOG.md)."""

from pydantic import Field

from bdcore import MethodConfig


class NCConfig(MethodConfig):
    """Per-class trigger reverse engineering, MAD outlier test on the mask norms, unlearning."""

    epochs: int = Field(1000, ge=1, description="maximum reverse-engineering epochs (passes over the reserve) per class; early stopping usually ends sooner")
    batch_size: int = Field(32, ge=1, description="mini-batch size of the trigger optimisation")
    lr: float = Field(0.1, gt=0, description="Adam learning rate of the trigger optimisation (betas 0.5, 0.9)")
    init_cost: float = Field(1e-3, gt=0, description="weight of the mask L1 norm once the attack first succeeds (the cost starts at 0)")
    cost_multiplier_up: float = Field(2.0, gt=1, description="cost multiplier after `patience` epochs at or above the success threshold")
    cost_multiplier_down: float = Field(2.0, gt=1, description="cost divisor after `patience` epochs below the success threshold")
    patience: int = Field(5, ge=1, description="epochs before the cost is changed")
    success_threshold: float = Field(0.99, gt=0, le=1, description="attack success rate a reversed trigger must reach")
    early_stop_patience: int = Field(25, ge=1, description="epochs without a smaller successful mask before a class stops (once its cost went up and down)")
    early_stop_threshold: float = Field(1.0, gt=0, le=1, description="a new best norm counts as progress only below this factor of the previous best")
    anomaly_threshold: float = Field(2.0, gt=0, description="flag classes whose norm is below the median with anomaly index above this")
    unlearn_share: float = Field(0.2, gt=0, lt=1, description="share of every unlearning batch stamped with a flagged reversed trigger (labels kept)")
    unlearn_epochs: int = Field(20, ge=1, description="unlearning (fine-tuning) epochs over the reserve")
    unlearn_lr: float = Field(0.01, gt=0, description="peak learning rate of the unlearning fine-tune (SGD, cosine)")
    unlearn_batch_size: int = Field(256, ge=1, description="mini-batch size of the unlearning fine-tune")
    augment: bool = Field(True, description="the victim's random crop/flip during unlearning")
