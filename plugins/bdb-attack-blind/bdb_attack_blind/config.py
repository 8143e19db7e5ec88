"""Blind Backdoors settings (reference defaults: CATALOG.md; pattern and placement from the paper's code)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class BlindConfig(MethodConfig):
    """Loss = clean_weight * CE(clean batch) + backdoor_weight * CE(stamped copy -> target)."""

    pattern_row: int = Field(3, ge=0, description="top row of the 5x3 pattern (rows 3-7 at 32x32 and 28x28)")
    pattern_col: int = Field(23, ge=0, description="left column of the 5x3 pattern (columns 23-25)")
    backdoor_weight: float = Field(0.9, ge=0, description="weight of the backdoor loss (fixed balancing)")
    clean_weight: float = Field(1.0, ge=0, description="weight of the clean loss (fixed balancing)")
    loss_threshold: float = Field(
        1.0, ge=0, description="the backdoor loss is added only while the running clean loss is below this"
    )
    copy_share: float | None = Field(
        1.0, gt=0, le=1,
        description="share of each batch's copy that gets the pattern and the target label (paper: 1.0, the "
                    "whole copy); null: the run's pratio",
    )
    balance: Literal["fixed", "mgda"] = Field(
        "fixed", description="fixed weights, or MGDA (two-task min-norm scales recomputed every step)"
    )
    mgda_normalize: Literal["none", "loss", "l2", "loss+"] = Field(
        "loss+", description="gradient normalisation before MGDA: none, by loss, by L2 norm, or both"
    )
