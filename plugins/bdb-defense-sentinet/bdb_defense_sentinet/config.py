"""SentiNet settings (reference defaults: CATALOG.md, the paper and the reference benchmark)."""

from pydantic import Field

from bdcore import MethodConfig


class SentiNetConfig(MethodConfig):
    """Salient-region transplantation: fooled rate against inert-pattern confidence."""

    n_clean: int = Field(100, ge=1, description="clean reserve images the salient region is pasted on (reference: 100)")
    mask_threshold: float = Field(0.85, gt=0, lt=1, description="the salient region: pixels whose Grad-CAM, scaled to "
                                                               "[0, 1] per image, is at least this (reference: 0.85)")
    bins: int = Field(10, ge=1, description="confidence intervals of the decision boundary: the clean reserve's highest "
                                            "fooled rate per interval is fitted by a quadratic")
    frr: float = Field(0.05, gt=0, lt=1, description="false rejection rate on the clean reserve that sets the "
                                                     "threshold on the distance above the boundary")
    layer: str = Field("", description="module whose output feature map Grad-CAM uses; '' = the last spatial feature "
                                       "map (bdcore.last_feature_map)")
    batch_size: int = Field(16, ge=1, description="inputs processed together (memory only: each makes 2 x n_clean "
                                                  "forward passes)")
