"""TrojanNN settings (reference defaults: CATALOG.md and the plugin README's "Reference settings")."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class TrojanNNConfig(MethodConfig):
    """Trigger t: the mask image moved by signed steps so that selected neurons reach a value; x' = (x + t) mod 256."""

    mask_image: str | None = Field(
        None, description="path of a mask image (PNG/JPEG; e.g. the reference's resource/trojannn/apple4.png), "
        "resized to the data like the reference; default: the reference's square mask (a white square on "
        "rows and columns 145-203 of a black 224x224 image: 20-29 of 32 after resizing), built in code")
    apply: Literal["add-wrap", "add-clip", "overwrite"] = Field(
        "add-wrap", description="how the uint8 trigger meets the uint8 image: add-wrap, (x + t) mod 256 (the "
        "reference: sums over 255 wrap around); add-clip, min(x + t, 255); overwrite, t wherever the mask is > 0")
    neurons: int = Field(2, ge=1, description="penultimate neurons to drive: those with the largest sum of absolute "
                         "weights into all logits of the classification head")
    target_value: float = Field(100.0, description="value the selected neurons are driven to")
    iterations: int = Field(1000, ge=1, description="signed-gradient steps of the trigger optimisation")
    step: float = Field(0.1, gt=0, description="size of each signed-gradient step ([0, 1] pixel units)")
    eps: float = Field(0.3, ge=0, description="L-inf bound of the trigger around the mask image ([0, 1] units)")
    tolerance: float = Field(1e-3, ge=0, description="stop early once the squared-error loss is below this")
    surrogate_model: str | None = Field(None, description="surrogate architecture (default: the victim's model)")
    surrogate_epochs: int = Field(100, ge=1, description="surrogate training epochs (default: the reference victim recipe)")
    surrogate_lr: float = Field(0.01, gt=0, description="surrogate peak learning rate (SGD, cosine, wd 5e-4, batch 128)")
    surrogate_seed: int = Field(0, description="seed of the surrogate's init and data order (shared across runs)")
