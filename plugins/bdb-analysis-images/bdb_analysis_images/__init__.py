"""bdb plugin: tools in image space: quality, Grad-CAM, SHAP, frequency saliency, feature visualisation
(entry point; light, no torch)."""

from bdcore import AnalysisSpec, hookimpl


@hookimpl
def bdb_register_analyses() -> list[AnalysisSpec]:
    cfg = "bdb_analysis_images.config:"
    return [
        AnalysisSpec(name="quality", reference="quality", factory="bdb_analysis_images.quality:Quality",
                     config=cfg + "QualityConfig", defaults={"split": ["bd-train", "bd-test"], "n": 512},
                     summary="PSNR and SSIM of poisoned vs clean images (training poison and test trigger); "
                             "FID with a local Inception-v3 state dict (fid_weights), else skipped"),
        AnalysisSpec(name="gradcam", reference="gradcam", factory="bdb_analysis_images.saliency:GradCAM",
                     config=cfg + "GradCAMConfig", defaults={"split": "bd-test", "n": 200, "layer": "map"},
                     summary="Grad-CAM maps at a layer for clean and triggered images, and how much falls on the trigger"),
        AnalysisSpec(name="shap", reference="shap", factory="bdb_analysis_images.shapley:Shap",
                     config=cfg + "ShapConfig", defaults={"split": ["bd-test", "clean-train"], "n": 32},
                     summary="SHAP (expected gradients) maps of the predicted and the target class, clean vs "
                             "triggered, and the attribution share on the trigger (extra: bdcore[analysis])"),
        AnalysisSpec(name="frequency-saliency", reference="frequency-saliency",
                     factory="bdb_analysis_images.saliency:FrequencySaliency", defaults={"split": "bd-test", "n": 256},
                     summary="which DCT frequencies of the input drive the prediction, clean vs triggered"),
        AnalysisSpec(name="feature-visualization", reference="feature-visualization",
                     factory="bdb_analysis_images.saliency:FeatureVisualization", config=cfg + "VisConfig",
                     defaults={"split": "bd-test", "n": 200, "layer": "map"},
                     summary="synthetic inputs maximising the most trigger-sensitive neurons (gradient ascent)"),
    ]
