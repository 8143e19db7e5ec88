"""MCR settings (reference defaults: CATALOG.md)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class MCRConfig(MethodConfig):
    """Fine-tune an endpoint, train the curve's bend, take a point t on the curve."""

    ft_epochs: int = Field(100, ge=1, description="fine-tuning epochs of the second endpoint on the clean reserve")
    ft_lr: float = Field(0.01, gt=0, description="peak learning rate of the endpoint fine-tuning (SGD, cosine)")
    curve_epochs: int = Field(100, ge=1, description="training epochs of the curve's bend")
    curve_lr: float = Field(0.01, gt=0, description="peak learning rate of the bend (SGD, cosine)")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum of both trainings")
    weight_decay: float = Field(5e-4, ge=0, description="weight decay of both trainings")
    batch_size: int = Field(128, ge=1, description="mini-batch size")
    augment: bool = Field(True, description="random crop/flip of the reserve batches")
    t: float = Field(0.1, ge=0, le=1, description="point on the curve: 0 = the backdoored model, 1 = the fine-tuned one")
    selection: Literal["fixed", "val"] = Field(
        "fixed", description="'fixed' = take `t`; 'val' = the largest of `val_ts` whose validation accuracy stays within "
                             "`max_val_drop` of the better endpoint's (the curve is then trained without the validation split)")
    val_ts: list[float] = Field([0.1, 0.2, 0.3, 0.4, 0.5], description="candidate points for selection='val'")
    max_val_drop: float = Field(0.02, ge=0, le=1, description="tolerated validation-accuracy drop for selection='val'")
