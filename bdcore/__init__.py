"""bdcore: the core of the bdb backdoor-learning benchmark, and the one public plugin API.

Everything a plugin may use is importable from here (``from bdcore import Attack, hookimpl``),
the way pytest plugins use ``pytest.*``; the submodules are internal and may change. The
conformance kit is the second public module, ``bdcore.testing``.

Importing bdcore stays light: the names that need torch are loaded on first use, so a plugin's
entry-point module can import ``hookimpl``, the specs and ``MethodConfig`` without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the internal module that defines it
_PUBLIC: dict[str, str] = {
    # registration (light)
    "hookimpl": "bdcore.hookspecs",
    "AttackSpec": "bdcore.spec",
    "DefenseSpec": "bdcore.spec",
    "DatasetSpec": "bdcore.spec",
    "ModelSpec": "bdcore.spec",
    "AnalysisSpec": "bdcore.spec",
    # settings and errors (light)
    "MethodConfig": "bdcore.config",
    "LGASettings": "bdcore.config",
    "TrainRecipe": "bdcore.config",
    "BdbError": "bdcore.errors",
    # attacks
    "Attack": "bdcore.attack",
    "AttackContext": "bdcore.attack",
    "CoverSampleAttack": "bdcore.attack",
    # defenses
    "Defense": "bdcore.defense",
    "DefenseContext": "bdcore.defense",
    "DefenseInputs": "bdcore.defense",
    "DefenseOutput": "bdcore.defense",
    "fine_tune": "bdcore.defense",
    "accuracy_on": "bdcore.defense",
    # analysis tools (the harness side: they may see the truth)
    "Analysis": "bdcore.analysis",
    "AnalysisContext": "bdcore.analysis",
    "AnalysisResult": "bdcore.analysis",
    "Sample": "bdcore.analysis",
    "as_picture": "bdcore.analysis",
    "sample_losses": "bdcore.defense",
    "LGA": "bdcore.isolation",
    "lga_loss": "bdcore.isolation",
    "lga_isolate": "bdcore.isolation",
    "lowest_share": "bdcore.isolation",
    "threshold_at_frr": "bdcore.defense",
    # data
    "ImageDataset": "bdcore.data",
    "stratified_split": "bdcore.data",
    "TrainSet": "bdcore.poison",
    # training
    "train": "bdcore.trainer",
    "predict": "bdcore.trainer",
    "lr_at": "bdcore.trainer",
    "TrainHook": "bdcore.trainer",
    "SAM": "bdcore.sharpness",
    "pgd_linf": "bdcore.adversarial",
    "AdversarialTraining": "bdcore.adversarial",
    "sam_perturbation": "bdcore.sharpness",
    "StepInfo": "bdcore.trainer",
    "augment": "bdcore.augmentation",
    "random_resized_crop": "bdcore.augmentation",
    "color_jitter": "bdcore.augmentation",
    "random_grayscale": "bdcore.augmentation",
    "simclr_augment": "bdcore.augmentation",
    "rotate_translate": "bdcore.augmentation",
    "affine_warp": "bdcore.augmentation",
    # contrastive and semi-supervised training (DBD, D-ST)
    "contrastive_loss": "bdcore.contrastive",
    "ContrastiveHook": "bdcore.contrastive",
    "Projected": "bdcore.contrastive",
    "LinearProbe": "bdcore.contrastive",
    "mark_untrusted": "bdcore.contrastive",
    "read_trust": "bdcore.contrastive",
    # sample distinguishment by sensitivity to transformations (D-BR, D-ST)
    "fct": "bdcore.sensitivity",
    "fct_scores": "bdcore.sensitivity",
    "sensitivity_split": "bdcore.sensitivity",
    "center_similarity": "bdcore.sensitivity",
    "CenterSeparation": "bdcore.sensitivity",
    "Separation": "bdcore.sensitivity",
    "distinguish": "bdcore.sensitivity",
    # models and module taps (backbone-agnostic)
    "build_model": "bdcore.harness",
    "new_model": "bdcore.harness",
    "load_dataset": "bdcore.harness",
    "train_surrogate": "bdcore.surrogate",
    "data_fingerprint": "bdcore.surrogate",
    "SmallCNN": "bdcore.models",
    "named_layers": "bdcore.modules",
    "batchnorms": "bdcore.modules",
    "convs": "bdcore.modules",
    "last_conv": "bdcore.modules",
    "classifier": "bdcore.modules",
    "conv_bn_pairs": "bdcore.modules",
    "FeatureTap": "bdcore.modules",
    "collect_features": "bdcore.modules",
    "penultimate": "bdcore.modules",
    "class_features": "bdcore.modules",
    "last_feature_map": "bdcore.modules",
    "forward_trace": "bdcore.modules",
    "ChannelMask": "bdcore.modules",
    "zero_channels": "bdcore.modules",
    "get_module": "bdcore.modules",
    "bn_inputs": "bdcore.modules",
    "zero_bn_scale": "bdcore.modules",
    "recalibrate_bn": "bdcore.modules",
    "prune_bn_below": "bdcore.modules",
    "CONV_TYPES": "bdcore.modules",
    "BN_TYPES": "bdcore.modules",
    # trigger reverse engineering and robust statistics
    "stamp": "bdcore.reverse",
    "frozen": "bdcore.reverse",
    "reverse_engineer": "bdcore.reverse",
    "worst_case_trigger": "bdcore.reverse",
    "median": "bdcore.reverse",
    "anomaly_index": "bdcore.reverse",
    "flag_outliers": "bdcore.reverse",
    # frequency transforms
    "dct2": "bdcore.frequency",
    "idct2": "bdcore.frequency",
    "block_dct2": "bdcore.frequency",
    "block_idct2": "bdcore.frequency",
    "rgb_to_yuv": "bdcore.frequency",
    "yuv_to_rgb": "bdcore.frequency",
    "spectral_trigger": "bdcore.frequency",
    # image helpers
    "load_image": "bdcore.images",
    "load_image_dir": "bdcore.images",
    "random_pattern": "bdcore.images",
    "resize_uint8": "bdcore.images",
    "quantize": "bdcore.images",
    "mix_int": "bdcore.sampling",
    "sample_uniforms": "bdcore.sampling",
    "psnr": "bdcore.stealth",
    "ssim": "bdcore.stealth",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'bdcore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from bdcore.analysis import Analysis, AnalysisContext, AnalysisResult, Sample, as_picture
    from bdcore.attack import Attack, AttackContext, CoverSampleAttack
    from bdcore.augmentation import (affine_warp, augment, color_jitter, random_grayscale, random_resized_crop,
                                     rotate_translate, simclr_augment)
    from bdcore.config import LGASettings, MethodConfig, TrainRecipe
    from bdcore.contrastive import ContrastiveHook, LinearProbe, Projected, contrastive_loss, mark_untrusted, read_trust
    from bdcore.data import ImageDataset, stratified_split
    from bdcore.defense import (Defense, DefenseContext, DefenseInputs, DefenseOutput, accuracy_on, fine_tune,
                                sample_losses, threshold_at_frr)
    from bdcore.errors import BdbError
    from bdcore.frequency import block_dct2, block_idct2, dct2, idct2, rgb_to_yuv, spectral_trigger, yuv_to_rgb
    from bdcore.harness import build_model, load_dataset, new_model
    from bdcore.hookspecs import hookimpl
    from bdcore.images import load_image, load_image_dir, quantize, random_pattern, resize_uint8
    from bdcore.models import SmallCNN
    from bdcore.modules import (BN_TYPES, CONV_TYPES, ChannelMask, FeatureTap, batchnorms, bn_inputs, class_features,
                                classifier, collect_features, conv_bn_pairs, convs, forward_trace, get_module, last_conv,
                                last_feature_map, named_layers, penultimate, prune_bn_below, recalibrate_bn,
                                zero_bn_scale, zero_channels)
    from bdcore.adversarial import AdversarialTraining, pgd_linf
    from bdcore.isolation import LGA, lga_isolate, lga_loss, lowest_share
    from bdcore.poison import TrainSet
    from bdcore.reverse import anomaly_index, flag_outliers, frozen, median, reverse_engineer, stamp, worst_case_trigger
    from bdcore.sampling import mix_int, sample_uniforms
    from bdcore.sensitivity import (CenterSeparation, Separation, center_similarity, distinguish, fct, fct_scores,
                                    sensitivity_split)
    from bdcore.sharpness import SAM, sam_perturbation
    from bdcore.spec import AnalysisSpec, AttackSpec, DatasetSpec, DefenseSpec, ModelSpec
    from bdcore.stealth import psnr, ssim
    from bdcore.surrogate import data_fingerprint, train_surrogate
    from bdcore.trainer import StepInfo, TrainHook, lr_at, predict, train
