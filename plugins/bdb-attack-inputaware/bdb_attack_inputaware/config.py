"""Input-Aware Dynamic Backdoor settings (reference defaults: CATALOG.md, the authors' CIFAR-10 setting)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class InputAwareConfig(MethodConfig):
    """Pattern generator G and mask network M, mask pre-training, then joint training with the victim."""

    lr_generator: float = Field(0.01, gt=0, description="Adam learning rate of the pattern generator G (joint stage)")
    lr_mask: float = Field(0.01, gt=0, description="Adam learning rate of the mask network M (mask pre-training)")
    mask_epochs: int = Field(25, ge=0, description="epochs of mask pre-training (norm + diversity loss) before the joint stage")
    mask_batch_size: int = Field(128, ge=2, description="mini-batch size of mask pre-training")
    lambda_norm: float = Field(100.0, ge=0, description="weight of the mask norm loss mean(relu(m - mask_density))")
    lambda_div: float = Field(1.0, ge=0, description="weight of the diversity loss ||x1 - x2|| / ||g(x1) - g(x2)||")
    mask_density: float = Field(0.032, ge=0, le=1, description="mask values above this density are penalised")
    cross_ratio: float = Field(
        1.0, ge=0, description="cross-trigger samples (another image's pattern and mask, label kept) per backdoor sample"
    )
    poison_order: Literal["random", "file"] = Field(
        "random", description="order of the pass that picks the materialised poisoned training set: a seeded random "
        "order (bdb) or file order (the reference; a class-sorted dataset then gets its poison from its first classes)"
    )
    channels: int | None = Field(
        None, ge=1, description="channels of the first block of G and M; default: 16 up to 28x28 images (MNIST), else 32"
    )
    steps: int | None = Field(
        None, ge=1, le=5, description="down/up-sampling steps of G and M; default: 2 up to 28x28 images, else 3 "
        "(lowered while the image side is not divisible by 2**steps)"
    )
