"""Adversarial Weight Masking settings (reference defaults: the paper and its released code; CATALOG.md)."""

from pydantic import Field

from bdcore import MethodConfig


class AWMConfig(MethodConfig):
    """Min-max soft weight masking against a recovered universal trigger."""

    outer_epochs: int = Field(20, ge=1, description="outer rounds: recover a trigger, then one epoch of mask learning over the data")
    inner_epochs: int = Field(5, ge=1, description="epochs over the data of the inner trigger maximisation per round")
    batch_size: int = Field(128, ge=1, description="mini-batch size of both steps")
    lr: float = Field(1e-2, gt=0, description="Adam learning rate of the weight mask (cosine annealed)")
    alpha: float = Field(0.9, ge=0, le=1, description="weight of the clean loss; the triggered loss gets 1 - alpha")
    gamma: float = Field(1e-8, ge=0, description="weight of the L1 norm of the weight mask (sparsity)")
    trigger_norm: float = Field(0.33, gt=0, le=1, description="L1 bound of the trigger mask as a share of the image's pixels")
    trigger_lr: float = Field(0.1, gt=0, description="Adam learning rate of the inner trigger maximisation")
    mask_linear: bool = Field(False, description="also mask the weights of Linear layers (the paper masks conv weights)")
    augment: bool = Field(False, description="random crop/flip of the batches of both steps (always on in the one-shot setting)")
    oneshot: bool = Field(False, description="one-shot setting: use one clean reserve image per class only")
    oneshot_copies: int = Field(10, ge=1, description="one-shot: each image is repeated this many times, augmented differently")
