"""Neural Cleanse settings (reference defaults: the paper and its released code; CATALOG.md)."""

from pydantic import Field

from bdcore import ReverseSettings


class NCConfig(ReverseSettings):
    """Per-class trigger reverse engineering (the settings of bdcore.ReverseSettings: epochs ... early_stop_threshold),
    MAD outlier test on the mask norms, unlearning."""

    anomaly_threshold: float = Field(2.0, gt=0, description="flag classes whose norm is below the median with anomaly index above this")
    unlearn_share: float = Field(0.2, gt=0, lt=1, description="share of every unlearning batch stamped with a flagged reversed trigger (labels kept)")
    unlearn_epochs: int = Field(20, ge=1, description="unlearning (fine-tuning) epochs over the reserve")
    unlearn_lr: float = Field(0.01, gt=0, description="peak learning rate of the unlearning fine-tune (SGD, cosine)")
    unlearn_batch_size: int = Field(256, ge=1, description="mini-batch size of the unlearning fine-tune")
    augment: bool = Field(True, description="the victim's random crop/flip during unlearning")
