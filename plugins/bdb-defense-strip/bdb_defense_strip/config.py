"""STRIP settings (reference defaults: CATALOG.md and the paper)."""

from typing import Literal

from pydantic import Field

from bdcore import MethodConfig


class STRIPConfig(MethodConfig):
    """Entropy of predictions on superimposed inputs."""

    n: int = Field(64, ge=1, description="superimpositions per input, each with a random clean reserve image "
                                         "(reference: 64)")
    alpha: float = Field(0.5, gt=0, lt=1, description="blend weight of the input: alpha * x + (1 - alpha) * clean "
                                                      "(reference: 0.5)")
    superimpose: Literal["blend", "add"] = Field(
        "blend", description="'blend': alpha * x + (1 - alpha) * clean (the catalog's reference); 'add': x + clean "
                             "clipped to [0, 1], the pixel-sum superimposition of the paper's code (alpha unused)")
    frr: float = Field(0.05, gt=0, lt=1, description="false rejection rate on the clean reserve that sets the "
                                                     "threshold (reference: 0.05)")
    mode: Literal["input", "data"] = Field(
        "input", description="'input': a detector of test-time inputs (the paper's use); 'data': score and flag "
                             "every training sample the same way, at the same reserve threshold (a training-data "
                             "detector, as in the reference's data-mode use)")
    chunk: int = Field(4096, ge=1, description="superimposed images per forward pass (memory only)")
