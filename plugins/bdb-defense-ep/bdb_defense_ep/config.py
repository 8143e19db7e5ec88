"""EP settings (reference defaults: CATALOG.md and the paper)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class EPConfig(MethodConfig):
    """Differential entropy of each BN neuron's pre-activation, estimated with a histogram."""

    u: float = Field(3.0, ge=0, description="prune neurons whose entropy is below mean - u * std of their layer")
    bin_width: float = Field(0.01, gt=0, description="histogram bin width on the standardised pre-activations")
    data: Literal["train", "reserve"] = Field(
        "train", description="images whose pre-activations are measured: 'train' = the training set the model was "
                             "trained on, labels unused (the paper's setting: poisoned samples must be among them); "
                             "'reserve' = the clean reserve only (shows the method's dependence on poisoned data)")
    layers: Literal["all", "last"] = Field(
        "all", description="BN layers inspected: 'all' (paper) or only the 'last' (deepest) BN layer, a miniature "
                           "variant for small networks whose early layers hold few, oddly distributed neurons")
    batch_size: int = Field(256, ge=1, description="batch size for the forward passes")
