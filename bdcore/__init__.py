"""bdcore: the core of the bdb backdoor-learning benchmark, and the one public plugin API.

Everything a plugin may use is importable from here (``from bdcore import Attack, hookimpl``),
the way pytest plugins use ``pytest.*``, and so is what a library user runs (``run_attack``,
``run_defense``, ``run_analysis``, ``RunStore``); the submodules are internal and may change.
They are layered (bdcore.data, .nn, .api, .runs, .lib, .bench, .reporting: each subpackage's
docstring says what it holds and what it may import; tests/test_layers.py checks it). The
conformance kit is the second public module, ``bdcore.testing``.

Importing bdcore stays light: the names that need torch are loaded on first use, so a plugin's
entry-point module can import ``hookimpl``, the specs and ``MethodConfig`` without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from bdcore import _moved

_moved.install()  # the old flat module paths (bdcore.harness, ...) keep working for one release

# public name -> the internal module that defines it
_PUBLIC: dict[str, str] = {
    # registration (light)
    "hookimpl": "bdcore.api.hookspecs",
    "AttackSpec": "bdcore.api.spec",
    "DefenseSpec": "bdcore.api.spec",
    "DatasetSpec": "bdcore.api.spec",
    "ModelSpec": "bdcore.api.spec",
    "AnalysisSpec": "bdcore.api.spec",
    # settings and errors (light)
    "MethodConfig": "bdcore.config",
    "LGASettings": "bdcore.config",
    "ReverseSettings": "bdcore.config",
    "TrainRecipe": "bdcore.config",
    "BdbError": "bdcore.errors",
    # attacks
    "Attack": "bdcore.api.attack",
    "AttackContext": "bdcore.api.attack",
    "CoverSampleAttack": "bdcore.api.attack",
    # defenses
    "Defense": "bdcore.api.defense",
    "DefenseContext": "bdcore.api.defense",
    "DefenseInputs": "bdcore.api.defense",
    "DefenseOutput": "bdcore.api.defense",
    "fine_tune": "bdcore.api.defense",
    "accuracy_on": "bdcore.api.defense",
    # analysis tools (the harness side: they may see the truth)
    "Analysis": "bdcore.api.analysis",
    "AnalysisContext": "bdcore.api.analysis",
    "AnalysisResult": "bdcore.api.analysis",
    "Sample": "bdcore.api.analysis",
    "as_picture": "bdcore.api.analysis",
    "sample_losses": "bdcore.api.defense",
    "LGA": "bdcore.lib.isolation",
    "lga_loss": "bdcore.lib.isolation",
    "lga_isolate": "bdcore.lib.isolation",
    "lowest_share": "bdcore.lib.isolation",
    "threshold_at_frr": "bdcore.api.defense",
    # data
    "ImageDataset": "bdcore.data",
    "stratified_split": "bdcore.data",
    "TrainSet": "bdcore.data.trainset",
    # training
    "train": "bdcore.nn.trainer",
    "predict": "bdcore.nn.trainer",
    "lr_at": "bdcore.nn.trainer",
    "TrainHook": "bdcore.nn.trainer",
    "SAM": "bdcore.lib.sharpness",
    "pgd_linf": "bdcore.lib.adversarial",
    "AdversarialTraining": "bdcore.lib.adversarial",
    "sam_perturbation": "bdcore.lib.sharpness",
    "StepInfo": "bdcore.nn.trainer",
    "augment": "bdcore.data.augmentation",
    "random_resized_crop": "bdcore.data.augmentation",
    "color_jitter": "bdcore.data.augmentation",
    "random_grayscale": "bdcore.data.augmentation",
    "simclr_augment": "bdcore.data.augmentation",
    "rotate_translate": "bdcore.data.augmentation",
    "affine_warp": "bdcore.data.augmentation",
    # contrastive and semi-supervised training (DBD, D-ST)
    "contrastive_loss": "bdcore.lib.contrastive",
    "ContrastiveHook": "bdcore.lib.contrastive",
    "Projected": "bdcore.lib.contrastive",
    "LinearProbe": "bdcore.lib.contrastive",
    "mark_untrusted": "bdcore.lib.contrastive",
    "read_trust": "bdcore.lib.contrastive",
    # sample distinguishment by sensitivity to transformations (D-BR, D-ST)
    "fct": "bdcore.lib.sensitivity",
    "fct_scores": "bdcore.lib.sensitivity",
    "sensitivity_split": "bdcore.lib.sensitivity",
    "center_similarity": "bdcore.lib.sensitivity",
    "CenterSeparation": "bdcore.lib.sensitivity",
    "Separation": "bdcore.lib.sensitivity",
    "distinguish": "bdcore.lib.sensitivity",
    # models and module taps (backbone-agnostic)
    "build_model": "bdcore.api.resolve",
    "new_model": "bdcore.api.resolve",
    "load_dataset": "bdcore.api.resolve",
    "train_surrogate": "bdcore.lib.surrogate",
    "data_fingerprint": "bdcore.lib.surrogate",
    "SmallCNN": "bdcore.nn.models",
    "named_layers": "bdcore.nn.surgery",
    "batchnorms": "bdcore.nn.surgery",
    "convs": "bdcore.nn.surgery",
    "last_conv": "bdcore.nn.surgery",
    "classifier": "bdcore.nn.surgery",
    "conv_bn_pairs": "bdcore.nn.surgery",
    "FeatureTap": "bdcore.nn.surgery",
    "collect_features": "bdcore.nn.surgery",
    "penultimate": "bdcore.nn.surgery",
    "class_features": "bdcore.nn.surgery",
    "last_feature_map": "bdcore.nn.surgery",
    "forward_trace": "bdcore.nn.surgery",
    "ChannelMask": "bdcore.nn.surgery",
    "zero_channels": "bdcore.nn.surgery",
    "get_module": "bdcore.nn.surgery",
    "bn_inputs": "bdcore.nn.surgery",
    "zero_bn_scale": "bdcore.nn.surgery",
    "recalibrate_bn": "bdcore.nn.surgery",
    "prune_bn_below": "bdcore.nn.surgery",
    "CONV_TYPES": "bdcore.nn.surgery",
    "BN_TYPES": "bdcore.nn.surgery",
    # trigger reverse engineering and robust statistics
    "stamp": "bdcore.lib.reverse",
    "frozen": "bdcore.lib.reverse",
    "reverse_engineer": "bdcore.lib.reverse",
    "worst_case_trigger": "bdcore.lib.reverse",
    "median": "bdcore.lib.reverse",
    "anomaly_index": "bdcore.lib.reverse",
    "flag_outliers": "bdcore.lib.reverse",
    # frequency transforms
    "dct2": "bdcore.lib.frequency",
    "idct2": "bdcore.lib.frequency",
    "block_dct2": "bdcore.lib.frequency",
    "block_idct2": "bdcore.lib.frequency",
    "rgb_to_yuv": "bdcore.lib.frequency",
    "yuv_to_rgb": "bdcore.lib.frequency",
    "spectral_trigger": "bdcore.lib.frequency",
    # image helpers
    "load_image": "bdcore.data.images",
    "load_image_dir": "bdcore.data.images",
    "random_pattern": "bdcore.data.images",
    "resize_uint8": "bdcore.data.images",
    "quantize": "bdcore.data.images",
    "gaussian_blur": "bdcore.data.images",
    "mix_int": "bdcore.data.sampling",
    "sample_uniforms": "bdcore.data.sampling",
    "psnr": "bdcore.lib.stealth",
    "ssim": "bdcore.lib.stealth",
    # running the benchmark from Python (what the CLI calls)
    "AttackRunConfig": "bdcore.config",
    "DefenseRunConfig": "bdcore.config",
    "run_attack": "bdcore.bench.harness",
    "run_defense": "bdcore.bench.harness",
    "run_analysis": "bdcore.reporting.analysis",
    "RunStore": "bdcore.runs.store",
    "load_registry": "bdcore.api.registry",
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
    from bdcore.api.analysis import Analysis, AnalysisContext, AnalysisResult, Sample, as_picture
    from bdcore.api.attack import Attack, AttackContext, CoverSampleAttack
    from bdcore.data.augmentation import (affine_warp, augment, color_jitter, random_grayscale, random_resized_crop,
                                     rotate_translate, simclr_augment)
    from bdcore.api.registry import load_registry
    from bdcore.bench.harness import run_attack, run_defense
    from bdcore.config import AttackRunConfig, DefenseRunConfig, LGASettings, MethodConfig, ReverseSettings, TrainRecipe
    from bdcore.lib.contrastive import ContrastiveHook, LinearProbe, Projected, contrastive_loss, mark_untrusted, read_trust
    from bdcore.data import ImageDataset, stratified_split
    from bdcore.api.defense import (Defense, DefenseContext, DefenseInputs, DefenseOutput, accuracy_on, fine_tune,
                                sample_losses, threshold_at_frr)
    from bdcore.errors import BdbError
    from bdcore.lib.frequency import block_dct2, block_idct2, dct2, idct2, rgb_to_yuv, spectral_trigger, yuv_to_rgb
    from bdcore.api.resolve import build_model, load_dataset, new_model
    from bdcore.api.hookspecs import hookimpl
    from bdcore.data.images import gaussian_blur, load_image, load_image_dir, quantize, random_pattern, resize_uint8
    from bdcore.nn.models import SmallCNN
    from bdcore.nn.surgery import (BN_TYPES, CONV_TYPES, ChannelMask, FeatureTap, batchnorms, bn_inputs, class_features,
                                classifier, collect_features, conv_bn_pairs, convs, forward_trace, get_module, last_conv,
                                last_feature_map, named_layers, penultimate, prune_bn_below, recalibrate_bn,
                                zero_bn_scale, zero_channels)
    from bdcore.lib.adversarial import AdversarialTraining, pgd_linf
    from bdcore.lib.isolation import LGA, lga_isolate, lga_loss, lowest_share
    from bdcore.data.trainset import TrainSet
    from bdcore.lib.reverse import anomaly_index, flag_outliers, frozen, median, reverse_engineer, stamp, worst_case_trigger
    from bdcore.data.sampling import mix_int, sample_uniforms
    from bdcore.lib.sensitivity import (CenterSeparation, Separation, center_similarity, distinguish, fct, fct_scores,
                                    sensitivity_split)
    from bdcore.lib.sharpness import SAM, sam_perturbation
    from bdcore.reporting.analysis import run_analysis
    from bdcore.runs.store import RunStore
    from bdcore.api.spec import AnalysisSpec, AttackSpec, DatasetSpec, DefenseSpec, ModelSpec
    from bdcore.lib.stealth import psnr, ssim
    from bdcore.lib.surrogate import data_fingerprint, train_surrogate
    from bdcore.nn.trainer import StepInfo, TrainHook, lr_at, predict, train
