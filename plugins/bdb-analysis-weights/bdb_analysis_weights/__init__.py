"""bdb plugin: tools that look at the weights and the loss surface (entry point; light, no torch)."""

from bdcore import AnalysisSpec, hookimpl


@hookimpl
def bdb_register_analyses() -> list[AnalysisSpec]:
    cfg = "bdb_analysis_weights.config:"
    return [
        AnalysisSpec(name="lipschitz", reference="lipschitz", factory="bdb_analysis_weights.lipschitz:Lipschitz",
                     config=cfg + "LipschitzConfig",
                     summary="per-channel Lipschitz upper bound (UCLC, as in CLP) of every conv layer, outliers marked"),
        AnalysisSpec(name="loss-landscape", reference="loss-landscape",
                     factory="bdb_analysis_weights.landscape:LossLandscape", config=cfg + "LandscapeConfig",
                     defaults={"split": ["clean-test", "bd-test"], "n": 256},
                     summary="clean and backdoor loss along two filter-normalised random directions"),
        AnalysisSpec(name="hessian", reference="hessian", factory="bdb_analysis_weights.hessian:Hessian",
                     config=cfg + "HessianConfig", defaults={"split": "clean-test", "n": 128},
                     summary="Hessian eigenvalue density of the loss on a batch (Lanczos on Hessian-vector products)"),
        AnalysisSpec(name="network", reference="network", factory="bdb_analysis_weights.network:Network",
                     summary="the architecture as executed: layers in order with output shapes and parameters"),
    ]
