"""SSBA settings (reference defaults: the paper, which takes StegaStamp's encoder and its training)."""

from pydantic import Field

from bdcore import MethodConfig


class SSBAConfig(MethodConfig):
    """x' = clip(x + E(x, code)); E and a decoder D trained so that D(clip(x + E(x, s))) = s for random codes s
    while the residual stays small: loss = w_s BCE(D(x'), s) + w_i(t) ||x' - x||^2."""

    bits: int = Field(100, ge=1, description="length of the hidden code (StegaStamp's 100 bits)")
    code_seed: int = Field(0, description="seed of the fixed code hidden in poisoned images")
    epochs: int = Field(12, ge=1, description="encoder/decoder training epochs over the training set (12 epochs "
                        "of 4 images on CIFAR-10's 50,000 ~ StegaStamp's 140,000 steps)")
    batch_size: int = Field(4, ge=1, description="images per encoder/decoder step (StegaStamp's 4)")
    lr: float = Field(1e-4, gt=0, description="Adam learning rate (StegaStamp's)")
    secret_weight: float = Field(1.5, ge=0, description="weight of the code-recovery loss (StegaStamp's)")
    image_weight: float = Field(2.0, ge=0, description="final weight of the image L2 loss (StegaStamp's)")
    secret_only: float = Field(0.011, ge=0, le=1, description="share of training at the start with the code loss "
                               "alone (StegaStamp trains the code first: 1,500 of 140,000 steps)")
    image_ramp: float = Field(0.107, ge=0, le=1, description="share of training over which the image-loss weight "
                              "then ramps up linearly from 0 (StegaStamp: 15,000 of 140,000 steps)")
    width: int = Field(32, ge=4, description="channels of the encoder's first level (doubled at each of 2 levels)")
    encoder_seed: int = Field(0, description="seed of the encoder/decoder init, codes and data order (shared "
                              "across runs)")
