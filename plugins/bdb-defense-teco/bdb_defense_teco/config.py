"""TeCo settings (reference defaults: the paper and the reference benchmark)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig

CorruptionName = Literal["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
                         "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform",
                         "pixelate", "jpeg_compression"]

ALL = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
       "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression"]


class TeCoConfig(MethodConfig):
    """Deviation of the flip severities across image corruptions."""

    corruptions: list[CorruptionName] = Field(default_factory=lambda: list(ALL), min_length=2,
                                              description="the corruptions (reference: the 15 of ImageNet-C / CIFAR-10-C "
                                                          "listed here)")
    max_severity: int = Field(5, ge=1, le=5, description="severities 1..max_severity are tried (reference: 5); a "
                                                         "prediction that never flips counts max_severity + 1")
    frr: float = Field(0.05, gt=0, lt=1, description="false rejection rate on the clean reserve that sets the threshold")
    batch_size: int = Field(256, ge=1, description="inputs corrupted and classified together (memory only)")
