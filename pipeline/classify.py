"""The classifier's import path before issue 15 (now :mod:`pipeline.coding.classify`).

Model folders saved before the move name ``pipeline.classify.CodingModel`` in their skops
file; this alias lets them load. New code imports from :mod:`pipeline.coding`.
"""

from pipeline.coding import CodeClassifier, CodingModel

__all__ = ["CodeClassifier", "CodingModel"]
