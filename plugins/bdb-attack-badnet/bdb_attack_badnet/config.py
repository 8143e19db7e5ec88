"""BadNets settings (reference defaults: CATALOG.md)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class BadNetConfig(MethodConfig):
    """Patch trigger defined on a 32x32 reference image and resized to the data's resolution."""

    patch_size: int = Field(3, ge=1, le=32, description="side of the square patch on the 32x32 reference image")
    corner: Literal["bottom-right", "bottom-left", "top-right", "top-left"] = Field(
        "bottom-right", description="where the patch sits (flush with the image border)"
    )
    value: int = Field(255, ge=0, le=255, description="pixel value of the patch on every channel")
