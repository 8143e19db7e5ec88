"""bdb plugin: tools that look at a layer's features and neurons (entry point; light, no torch)."""

from bdcore import AnalysisSpec, hookimpl

_MAP = {"split": "bd-test", "layer": "map"}
_TOOLS = {
    "tsne": ("t-SNE of a layer's features (default: penultimate), coloured by class, poisoned samples marked",
             "TSNE", "TSNEConfig",
             {"split": "mixed", "n": 1000, "layer": "penultimate"}),
    "umap": ("UMAP of a layer's features, coloured by class, poisoned samples marked (extra: bdcore[analysis])",
             "UMAP", "UMAPConfig",
             {"split": "mixed", "n": 3000, "layer": "penultimate"}),
    "neuron-activation": ("a layer's mean per-neuron activation on clean vs triggered images", "NeuronActivation",
                          None, {**_MAP, "n": 500}),
    "tac": ("trigger activation change per neuron: how far the trigger moves each channel's map", "TAC", None, {**_MAP, "n": 300}),
    "top-activated": ("the images of a split that most activate one neuron, poisoned ones framed red",
                      "TopActivated", "TopConfig", {"split": ["mixed", "bd-test"], "n": 2000, "layer": "map"}),
    "activation-distribution": ("for the most trigger-sensitive neurons, the classes of their top-k activating "
                                "images (poisoned counted apart)", "ActivationDistribution", "TopConfig",
                                {"split": ["bd-test", "mixed"], "n": 2000, "layer": "map"}),
    "feature-maps": ("a layer's output maps for one image, clean and with the trigger", "FeatureMaps",
                     "MapsConfig", {**_MAP, "n": 1}),
}


@hookimpl
def bdb_register_analyses() -> list[AnalysisSpec]:
    return [
        AnalysisSpec(name=name, summary=summary, reference=name, factory=f"bdb_analysis_features.tools:{cls}",
                     config=f"bdb_analysis_features.config:{cfg}" if cfg else None, defaults=defaults)
        for name, (summary, cls, cfg, defaults) in _TOOLS.items()
    ]
