"""Super-Fine-Tuning settings (reference defaults: CATALOG.md; see README for their source)."""

from pydantic import Field

from bdcore import MethodConfig


class SFTConfig(MethodConfig):
    """Two phases of triangular cyclic learning rates on the clean reserve: forget, then recover."""

    lr_base: float = Field(3e-4, gt=0, description="base (lowest) learning rate of every cycle")
    lr_max1: float = Field(0.1, gt=0, description="peak learning rate in the first (forgetting) phase")
    lr_max2: float = Field(1e-3, gt=0, description="peak learning rate in the second (recovering) phase")
    forget_epochs: int = Field(3, ge=1, description="epochs of the first phase")
    recover_epochs: int = Field(3, ge=0, description="epochs of the second phase (0: skip it)")
    forget_cycles: int = Field(1, ge=1, description="triangular lr cycles in the first phase")
    recover_cycles: int = Field(1, ge=1, description="triangular lr cycles in the second phase")
    batch_size: int = Field(256, ge=1, description="mini-batch size")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(5e-4, ge=0, description="weight decay")
    augment: bool = Field(True, description="random crop/flip as in victim training")
