"""Fine-Pruning settings (reference defaults: CATALOG.md)."""

from pydantic import Field

from bdcore import MethodConfig


class FPConfig(MethodConfig):
    """Prune dormant last-layer channels until validation accuracy would drop too far, then fine-tune."""

    step_ratio: float = Field(0.01, gt=0, le=1, description="share of the layer's channels pruned per step (at least one)")
    acc_drop: float = Field(0.1, gt=0, lt=1, description="stop before validation accuracy falls below (1 - acc_drop) x its unpruned value")
    max_ratio: float = Field(1.0, gt=0, le=1, description="never prune more than this share of the channels (one always stays)")
    epochs: int = Field(100, ge=0, description="fine-tuning epochs over the clean reserve (reference 100; preset quick: 20) after pruning (0: prune only)")
    lr: float = Field(0.01, gt=0, description="fine-tuning peak learning rate (cosine annealed)")
    batch_size: int = Field(256, ge=1, description="fine-tuning mini-batch size")
    weight_decay: float = Field(5e-4, ge=0, description="fine-tuning weight decay")
    augment: bool = Field(True, description="random crop/flip during fine-tuning, as in victim training")
