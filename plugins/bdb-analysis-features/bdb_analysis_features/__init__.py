"""bdb plugin: tools that look at a layer's features and neurons (entry point; light, no torch)."""

from bdcore import AnalysisSpec, hookimpl

_TOOLS = {
    "tsne": ("t-SNE of a layer's features (default: penultimate), coloured by class, poisoned samples marked",
             "TSNE", "TSNEConfig"),
    "umap": ("UMAP of a layer's features, coloured by class, poisoned samples marked (extra: bdcore[analysis])",
             "UMAP", "UMAPConfig"),
    "neuron-activation": ("a layer's mean per-neuron activation on clean vs triggered images", "NeuronActivation",
                          None),
    "tac": ("trigger activation change per neuron: how far the trigger moves each channel's map", "TAC", None),
    "top-activated": ("the images of a split that most activate one neuron, poisoned ones framed red",
                      "TopActivated", "TopConfig"),
    "activation-distribution": ("for the most trigger-sensitive neurons, the classes of their top-k activating "
                                "images (poisoned counted apart)", "ActivationDistribution", "TopConfig"),
    "feature-maps": ("a layer's output maps for one image, clean and with the trigger", "FeatureMaps",
                     "MapsConfig"),
}


@hookimpl
def bdb_register_analyses() -> list[AnalysisSpec]:
    return [
        AnalysisSpec(name=name, summary=summary, reference=name, factory=f"bdb_analysis_features.tools:{cls}",
                     config=f"bdb_analysis_features.config:{cfg}" if cfg else None)
        for name, (summary, cls, cfg) in _TOOLS.items()
    ]
