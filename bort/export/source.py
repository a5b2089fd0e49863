"""The Bort side of an export, now opened through `bort.checkpoint` (kept so that older imports work)."""
from ..checkpoint import CLASSIFIER, ENCODER, MLM, ModelSource, classifier_head_names, open_source

BortSource = ModelSource

__all__ = ["CLASSIFIER", "ENCODER", "MLM", "BortSource", "ModelSource", "classifier_head_names", "open_source"]
