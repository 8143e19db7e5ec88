"""The reference benchmark's backbones: build at every dataset shape, train step, taps, local weights."""

import pytest
import torch
from torch import nn

from bdcore.nn.backbones import ResizeInput
from bdcore.errors import BdbError
from bdcore.api.resolve import new_model
from bdcore.nn.surgery import FeatureTap, batchnorms, classifier, convs

SHAPES = [(3, 32, 32), (1, 28, 28)]
LIGHT = ["resnet18", "resnet34", "resnet50", "vgg19-bn", "efficientnet-b3", "mobilenet-v3-large", "convnext-tiny"]
# heavy ones: one shape each (ViT-B/16 forward only: its backward at 224x224 takes ~8 s on one thread)
CASES = [(m, s, True) for m in LIGHT for s in SHAPES] + [("densenet161", (3, 32, 32), True), ("vit-b-16", (1, 28, 28), False)]
FEATURES = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "vgg19-bn": 4096, "efficientnet-b3": 1536,
            "mobilenet-v3-large": 1280, "convnext-tiny": 768, "densenet161": 2208, "vit-b-16": 768}


@pytest.mark.parametrize("name,shape,backward", CASES, ids=[f"{m}-{s[0]}x{s[1]}" for m, s, _ in CASES])
def test_reference_model_builds_trains_and_taps(name, shape, backward):
    torch.manual_seed(0)
    model = new_model(name, 7, shape, (0.5,) * shape[0], (0.25,) * shape[0])
    x = torch.rand(2, *shape)
    model.train()
    if backward:
        out = model(x)
        out.logsumexp(1).sum().backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad(), FeatureTap(classifier(model)[1], use_input=True) as tap:  # the penultimate tap
        assert model(x).shape == (2, 7)
    assert tap.value.shape == (2, FEATURES[name])
    first = convs(model)[0][1]
    assert first.in_channels == shape[0]
    if name not in ("convnext-tiny", "vit-b-16"):  # LayerNorm models have no BatchNorm2d
        assert batchnorms(model)


def test_small_inputs_are_resized_where_the_backbone_needs_it():
    assert isinstance(new_model("convnext-tiny", 3, (1, 28, 28), (0.5,), (0.5,)).net.resize, ResizeInput)
    assert not any(isinstance(m, ResizeInput) for m in new_model("resnet18", 3, (3, 32, 32), (0.5,) * 3, (0.5,) * 3).modules())
    vit = new_model("vit-b-16", 3, (3, 64, 64), (0.5,) * 3, (0.5,) * 3)
    assert vit.net.resize.size == 224 and vit.net.body.image_size == 224


def test_local_weights_load_by_name_and_shape(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import resnet18

    torch.manual_seed(1)
    src = resnet18(num_classes=1000)  # a torchvision checkpoint: ImageNet head, 3-channel stem
    save_file(src.state_dict(), str(tmp_path / "r18.safetensors"))
    torch.save(src.state_dict(), tmp_path / "r18.pth")
    for f in ("r18.safetensors", "r18.pth"):
        m = new_model(f"resnet18@{tmp_path / f}", 5, (1, 28, 28), (0.5,), (0.5,))
        body = m.net.body  # 28x28 inputs are resized to 32 in front of the torchvision ResNet
        assert torch.equal(body.layer3[0].conv1.weight, src.layer3[0].conv1.weight)
        assert torch.allclose(body.conv1.weight, src.conv1.weight.sum(1, keepdim=True))  # colours summed for grey
        assert body.fc.weight.shape == (5, 512) and not torch.equal(body.fc.weight, src.fc.weight[:5])
    with pytest.raises(BdbError, match="not found; put the pretrained weights there"):
        new_model(f"resnet18@{tmp_path / 'absent.pth'}", 5, (3, 32, 32), (0.5,) * 3, (0.5,) * 3)
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(BdbError, match="not a readable state dict"):
        new_model(f"resnet18@{tmp_path / 'bad.pth'}", 5, (3, 32, 32), (0.5,) * 3, (0.5,) * 3)
    save_file({"x": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(BdbError, match="no tensor matches"):
        new_model(f"small-cnn@{tmp_path / 'other.safetensors'}", 5, (1, 28, 28), (0.5,), (0.5,))


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"model": nn.Linear(2, 2)}, tmp_path / "module.pth")  # a whole module, not a state dict
    with pytest.raises(BdbError, match="not a readable state dict"):
        new_model(f"resnet18@{tmp_path / 'module.pth'}", 5, (3, 32, 32), (0.5,) * 3, (0.5,) * 3)


def test_class_features_group_penultimate_activations_by_label():
    from bdcore import SmallCNN, TrainSet, class_features, penultimate

    torch.manual_seed(0)
    model = SmallCNN().eval()
    data = TrainSet(torch.randint(0, 256, (9, 1, 28, 28), dtype=torch.uint8), torch.tensor([2, 0, 2, 5, 0, 2, 5, 5, 2]))
    groups = class_features(model, data, batch_size=4)
    assert [k for k, _, _ in groups] == [0, 2, 5]  # only the classes present, in order
    all_feats = penultimate(model, data.iter_batches(9)).double()
    for k, idx, feats in groups:
        assert idx.tolist() == torch.nonzero(data.y == k).flatten().tolist()
        assert feats.dtype == torch.float64 and torch.allclose(feats, all_feats[idx], atol=1e-6)


def test_threshold_at_frr_rejects_the_share_asked_for():
    from bdcore import threshold_at_frr

    s = torch.arange(1, 201).float()
    for frr in (0.01, 0.05, 0.2):
        assert int((s > threshold_at_frr(s, frr)).sum()) == int(frr * 200)
    assert threshold_at_frr(torch.empty(0), 0.05) == float("inf")
