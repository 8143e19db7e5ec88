"""bdb plugin: tools in image space: quality, Grad-CAM, frequency saliency, feature visualisation
(entry point; light, no torch)."""

from bdcore import AnalysisSpec, hookimpl


@hookimpl
def bdb_register_analyses() -> list[AnalysisSpec]:
    cfg = "bdb_analysis_images.config:"
    return [
        AnalysisSpec(name="quality", reference="quality", factory="bdb_analysis_images.quality:Quality",
                     summary="PSNR and SSIM of poisoned vs clean images (training poison and test trigger); "
                             "FID skipped (no local feature network)"),
        AnalysisSpec(name="gradcam", reference="gradcam", factory="bdb_analysis_images.saliency:GradCAM",
                     config=cfg + "GradCAMConfig",
                     summary="Grad-CAM maps at a layer for clean and triggered images, and how much falls on the trigger"),
        AnalysisSpec(name="frequency-saliency", reference="frequency-saliency",
                     factory="bdb_analysis_images.saliency:FrequencySaliency",
                     summary="which DCT frequencies of the input drive the prediction, clean vs triggered"),
        AnalysisSpec(name="feature-visualization", reference="feature-visualization",
                     factory="bdb_analysis_images.saliency:FeatureVisualization", config=cfg + "VisConfig",
                     summary="synthetic inputs maximising the most trigger-sensitive neurons (gradient ascent)"),
    ]
