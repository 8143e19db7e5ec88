"""BppAttack settings (reference defaults: CATALOG.md)."""

from pydantic import Field

from bdcore import MethodConfig


class BppConfig(MethodConfig):
    """Quantise every channel to squeeze_num levels; negatives carry another image's quantisation residual."""

    squeeze_num: int = Field(8, ge=2, le=256, description="number of levels per channel after squeezing (8 = 3 bits)")
    dithering: bool = Field(False, description="Floyd-Steinberg error diffusion while squeezing (paper option)")
    neg_ratio: float = Field(
        0.1, ge=0, lt=1, description="share of each batch made into negative samples (label kept)"
    )
