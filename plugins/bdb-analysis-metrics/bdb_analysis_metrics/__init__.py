"""bdb plugin: the metrics overview and the confusion matrix (entry point; light, no torch)."""

from bdcore import AnalysisSpec, hookimpl


@hookimpl
def bdb_register_analyses() -> list[AnalysisSpec]:
    return [
        AnalysisSpec(
            name="metrics",
            summary="C-ACC, ASR, RA, DER and RIR of the attack run and its defense runs, as a radar chart",
            reference="metrics",
            factory="bdb_analysis_metrics.tools:Metrics",
        ),
        AnalysisSpec(
            name="confusion-matrix",
            summary="confusion matrix (true class x predicted class) of the run's model on a split",
            reference="confusion-matrix",
            factory="bdb_analysis_metrics.tools:ConfusionMatrix",
            defaults={"split": "clean-test", "n": 100_000},
        ),
    ]
