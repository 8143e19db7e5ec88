"""Fine-tuning settings (reference defaults: CATALOG.md)."""

from pydantic import Field

from bdcore import MethodConfig


class FTConfig(MethodConfig):
    """SGD fine-tuning on the clean reserve."""

    epochs: int = Field(100, ge=1, description="fine-tuning epochs over the clean reserve (reference 100; preset quick: 20)")
    lr: float = Field(0.01, gt=0, description="peak learning rate (cosine annealed)")
    batch_size: int = Field(256, ge=1, description="mini-batch size")
    weight_decay: float = Field(5e-4, ge=0, description="weight decay")
    augment: bool = Field(True, description="random crop/flip as in victim training")
