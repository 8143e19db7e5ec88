"""D-BR settings (reference defaults: CATALOG.md and the paper's released settings)."""

from pydantic import Field

from bdcore import MethodConfig


class DBRConfig(MethodConfig):
    """SD module (FCT separation) + BR module (alternating unlearning and relearning)."""

    clean_ratio: float = Field(0.2, gt=0, lt=1, description="share of the training set trusted as clean: the "
                                                            "lowest FCT values (paper: 0.20)")
    poison_ratio: float = Field(0.05, gt=0, lt=1, description="share of the training set suspected as poisoned: the "
                                                              "highest FCT values (paper: 0.05)")
    warm_epochs: int = Field(2, ge=1, description="SD module: epochs of cross-entropy training of the probe model "
                                                  "on the poisoned set, no augmentation (paper: 2)")
    intra_epochs: int = Field(10, ge=0, description="SD module: epochs of fine-tuning the probe with the "
                                                    "class-centre separation loss, no augmentation (paper: 10)")
    sd_lr: float | None = Field(None, gt=0, description="SD module learning rate, constant; None: the victim "
                                                        "recipe's")
    degrees: float = Field(180.0, ge=0, le=180, description="FCT transformation: rotation by up to this angle "
                                                            "(paper: 180)")
    translate: float = Field(0.2, ge=0, lt=1, description="FCT transformation: then a shift by up to this fraction "
                                                          "of the image size (paper: 0.2)")
    epochs: int = Field(20, ge=1, description="BR module: rounds of one unlearning epoch on the suspected poison and "
                                              "one relearning epoch on the trusted clean samples (paper: 20)")
    lr: float = Field(1e-4, gt=0, description="BR module learning rate, constant, SGD with the victim's momentum and "
                                              "weight decay (paper: 1e-4)")
    batch_size: int = Field(128, ge=1, description="BR module mini-batch size (paper: 128)")
    score_batch_size: int = Field(256, ge=1, description="batch size of the FCT forward passes")
