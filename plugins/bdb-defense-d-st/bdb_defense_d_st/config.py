"""D-ST settings (reference defaults: CATALOG.md and the paper's released settings)."""

from pydantic import Field

from bdcore import MethodConfig


class DSTConfig(MethodConfig):
    """SD module (FCT separation) + ST module (semi-supervised contrastive extractor, then a linear classifier)."""

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
    extractor_epochs: int = Field(200, ge=1, description="ST stage 1: epochs of semi-supervised contrastive "
                                                         "learning of the feature extractor (paper: 200)")
    extractor_lr: float = Field(0.5, gt=0, description="ST stage 1 learning rate, SGD, cosine (paper: 0.5)")
    extractor_batch_size: int = Field(512, ge=2, description="ST stage 1 mini-batch size (paper: 512)")
    extractor_weight_decay: float = Field(1e-4, ge=0, description="ST stage 1 weight decay (paper: 1e-4)")
    temperature: float = Field(0.1, gt=0, description="contrastive temperature (paper: 0.1)")
    base_temperature: float = Field(0.07, gt=0, description="the loss is scaled by temperature / base_temperature "
                                                            "(SupCon's 0.07)")
    projection_dim: int = Field(128, ge=1, description="output size of the projection head (SupCon's 128)")
    classifier_epochs: int = Field(10, ge=1, description="ST stage 2: epochs of the linear classifier on the frozen "
                                                         "extractor (paper: 10)")
    classifier_lr: float = Field(5.0, gt=0, description="ST stage 2 learning rate, SGD, constant (paper: 5)")
    classifier_batch_size: int = Field(512, ge=1, description="ST stage 2 mini-batch size (paper: 512)")
    classifier_augment: bool = Field(True, description="ST stage 2 trains the classifier on one SimCLR view of every "
                                                       "image (paper: yes); False: on the plain images")
    standardize_features: bool = Field(False, description="ST stage 2 trains the classifier on features standardised "
                                                          "by their mean and spread over the stage-2 samples' plain "
                                                          "images, folded into the model's last layer afterwards "
                                                          "(paper: no, raw features)")
    unlearn_weight: float = Field(0.001, ge=0, description="ST stage 2 mixed cross-entropy: CE on the trusted clean "
                                                           "samples minus this weight times CE on the suspected "
                                                           "poison (paper: 0.001)")
    score_batch_size: int = Field(256, ge=1, description="batch size of the FCT forward passes")
