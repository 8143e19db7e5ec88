"""NAD settings (reference defaults: CATALOG.md)."""

from pydantic import Field

from bdcore import MethodConfig


class NADConfig(MethodConfig):
    """Teacher = backdoored model fine-tuned on the reserve; student trained with CE + sum_i beta_i * AT loss."""

    teacher_epochs: int = Field(10, ge=1, description="epochs of fine-tuning that make the teacher")
    epochs: int = Field(10, ge=1, description="epochs of attention distillation into the student")
    betas: list[float] = Field([500.0, 1000.0, 1000.0], min_length=1,
                               description="attention-loss weights of the tapped stages, shallow to deep (the deepest ones are used if fewer stages exist)")
    p: float = Field(2.0, gt=0, description="power of the attention map: mean over channels of |F|^p")
    distance: str = Field("mse", pattern="^(mse|l2)$",
                          description="attention distance: 'mse' = mean over batch and map positions of the squared difference (the scale the reference betas were set for); 'l2' = batch mean of ||A_s - A_t||_2 (the paper's printed equation)")
    lr: float = Field(0.1, gt=0, description="initial learning rate of teacher and student training (cosine annealed)")
    batch_size: int = Field(64, ge=1, description="mini-batch size")
    weight_decay: float = Field(5e-4, ge=0, description="weight decay")
    augment: bool = Field(True, description="random crop/flip as in victim training")
