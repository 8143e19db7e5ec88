"""FTrojan settings (reference defaults: CATALOG.md)."""

from typing import Literal

from pydantic import Field, model_validator

from bdcore import MethodConfig


class FTrojanConfig(MethodConfig):
    """Add `magnitude` to DCT coefficients at `positions` of every `window` block of the chosen YUV channels."""

    magnitude: float = Field(
        30.0, gt=0, description="value added to each chosen DCT coefficient (orthonormal DCT of 0-255 pixels)"
    )
    window: int = Field(32, ge=1, description="side of the square DCT blocks (images smaller than it use their own side)")
    positions: tuple[tuple[int, int], ...] = Field(
        ((15, 15), (31, 31)), min_length=1,
        description="(row, column) frequency indices in a window x window DCT: mid (15,15) and high (31,31) frequency",
    )
    channels: tuple[int, ...] = Field(
        (1, 2), min_length=1,
        description="YUV channels carrying the trigger on RGB data (0 Y, 1 U, 2 V); one-channel data uses its only channel",
    )

    color_space: Literal["ycrcb", "yuv"] = Field(
        "ycrcb", description="colour space of the trigger channels: ycrcb = OpenCV's uint8 YCrCb as in the reference (channels 1, 2 = Cr, Cb), yuv = float BT.601 YUV"
    )

    @model_validator(mode="after")
    def _check(self) -> "FTrojanConfig":
        for pos in self.positions:
            if not all(0 <= p < self.window for p in pos):
                raise ValueError(f"position {pos} is outside a {self.window}x{self.window} window")
        if not all(0 <= c <= 2 for c in self.channels) or len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channels must be distinct YUV indices 0..2, got {self.channels}")
        return self
