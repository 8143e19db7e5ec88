"""RNP settings (reference defaults: the paper's CIFAR-10 setting, CATALOG.md)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class RNPConfig(MethodConfig):
    """Unlearn (filter level), recover (neuron masks), prune by threshold."""

    data_fraction: float = Field(0.2, gt=0, le=1, description="share of the 5% clean reserve used (paper: 1% of the "
                                                              "training set = 0.2 of the reserve), stratified by class")
    batch_size: int = Field(256, ge=1, description="mini-batch size of both stages (the reference's 256)")
    unlearn_lr: float = Field(0.01, gt=0, description="SGD learning rate of the gradient-ascent unlearning")
    unlearn_momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum of the unlearning")
    unlearn_weight_decay: float = Field(5e-4, ge=0, description="weight decay of the unlearning")
    clean_threshold: float = Field(0.2, ge=0, le=1, description="stop unlearning once the accuracy on the unlearning "
                                                                "batches of an epoch falls to this value")
    max_unlearn_epochs: int = Field(20, ge=1, description="at most this many unlearning epochs")
    alpha: float = Field(0.2, gt=0, description="weight of the clean cross-entropy in the mask-recovery loss "
                                                "(reference `--alpha 0.2`)")
    mask_lr: float = Field(0.2, gt=0, description="SGD learning rate of the neuron masks")
    mask_momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum of the neuron masks")
    mask_epochs: int = Field(20, ge=1, description="mask recovery epochs")
    pruning_by: Literal["threshold", "number"] = Field(
        "threshold", description="'threshold' = prune every neuron whose mask is below `threshold`; 'number' = prune "
                                 "the `pruning_number` neurons with the smallest masks (the reference's two modes)")
    threshold: float = Field(0.7, ge=0, le=1, description="prune the neurons whose recovered mask is below this value")
    pruning_number: int = Field(10, ge=0, description="neurons pruned when pruning_by='number' (smallest masks first)")
    augment: bool = Field(True, description="random crop/flip of the clean batches, as in victim training")
