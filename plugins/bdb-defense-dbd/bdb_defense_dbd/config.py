"""DBD settings (reference defaults: CATALOG.md and the paper's released CIFAR-10 settings)."""

from pydantic import Field

from bdcore import MethodConfig


class DBDConfig(MethodConfig):
    """SimCLR backbone, SCE warm-up of the linear head, MixMatch fine-tuning on the low-loss (labelled) half."""

    simclr_epochs: int = Field(100, ge=1, description="stage 1: SimCLR epochs on the images without labels "
                                                      "(paper: the epoch-100 checkpoint)")
    simclr_lr: float = Field(0.4, gt=0, description="stage 1 learning rate, SGD momentum 0.9, constant (paper: 0.4, "
                                                    "cosine over 1,000 epochs, so nearly constant at epoch 100)")
    simclr_batch_size: int = Field(512, ge=2, description="stage 1 mini-batch size (paper: 512)")
    simclr_weight_decay: float = Field(1e-4, ge=0, description="stage 1 weight decay (paper: 1e-4)")
    temperature: float = Field(0.5, gt=0, description="SimCLR temperature (paper: 0.5)")
    projection_dim: int = Field(128, ge=1, description="output size of the projection head (SimCLR's 128)")
    warmup_epochs: int = Field(10, ge=1, description="stage 2: epochs of the linear head on the frozen backbone "
                                                     "with symmetric cross-entropy (paper: 10)")
    sce_alpha: float = Field(0.1, ge=0, description="SCE weight of cross-entropy (paper: 0.1)")
    sce_beta: float = Field(1.0, ge=0, description="SCE weight of reverse cross-entropy (paper: 1)")
    warmup_batch_size: int = Field(128, ge=1, description="stage 2 mini-batch size (paper: 128)")
    warmup_lr: float = Field(0.002, gt=0, description="stage 2 Adam learning rate, constant (paper: 0.002, the "
                                                      "same as stage 3, over 10 epochs of 391 steps)")
    lr: float = Field(0.002, gt=0, description="stage 3 Adam learning rate, constant (paper: 0.002)")
    epsilon: float = Field(0.5, gt=0, lt=1, description="share of the training set kept labelled: the lowest SCE "
                                                        "losses, re-selected every epoch (paper: 0.5)")
    per_class: bool = Field(False, description="keep the epsilon share with the lowest loss within each (given) "
                                               "label instead of over the whole set, so that no class loses all "
                                               "its labelled samples (paper: over the whole set)")
    recalibrate_bn: bool = Field(False, description="re-estimate the BatchNorm statistics on the unaugmented training "
                                                    "images before each selection of the labelled share (after the "
                                                    "warm-up and after every MixMatch epoch, so the final model "
                                                    "too; paper: no, the statistics come from mixed-up images)")
    semi_epochs: int = Field(190, ge=1, description="stage 3: MixMatch epochs (paper: 190 of 1,024 iterations)")
    semi_batch_size: int = Field(128, ge=2, description="stage 3 mini-batch, labelled and unlabelled samples together "
                                                        "(paper: 64 labelled + 64 unlabelled)")
    lambda_u: float = Field(15.0, ge=0, description="MixMatch weight of the unlabelled loss (paper: 15)")
    rampup_epochs: int = Field(190, ge=0, description="lambda_u ramps up linearly over this many epochs (paper: 190)")
    sharpen_temperature: float = Field(0.5, gt=0, description="MixMatch sharpening temperature T (paper: 0.5)")
    mixup_alpha: float = Field(0.75, gt=0, description="MixMatch Beta(alpha, alpha) of MixUp (paper: 0.75)")
    augmentations: int = Field(2, ge=1, description="MixMatch K: augmentations of each unlabelled sample (paper: 2)")
    score_batch_size: int = Field(256, ge=1, description="batch size of the per-sample loss passes")
