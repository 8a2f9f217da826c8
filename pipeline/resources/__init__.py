"""The data codeer ships inside the package, found with :mod:`importlib.resources`.

Everything the pipeline reads at run time without being given a path lives in this folder,
so an installed wheel works from any folder (issue 15):

- ``annotations/codebook/`` the codebook versions (``garvin2008.yaml`` ...) and ``mapping.yaml``;
- ``annotations/rating_rules.yaml`` the rules that turn evidence into verdicts;
- ``annotations/questionnaires.yaml`` the questionnaire definitions;
- ``annotations/seed/`` the hand-coded seed annotations (training), ``annotations/holdout/``
  the held-out transcripts (evaluation); a new annotation set is a sibling folder of these
  two, found through :func:`annotations_dir`;
- ``models/`` the packaged model (``CURRENT`` names it);
- ``privacy/allow_list.txt`` words de-identification never takes for names (issue 19).

The authoring sources of the annotations (``annotations/authoring/`` in the repository) are
not shipped: nothing reads them at run time.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["annotations_dir", "codebook_dir", "holdout_dir", "packaged_models_dir", "privacy_allow_list_file", "questionnaires_file",
           "resources_dir", "rules_file", "seed_dir"]


def resources_dir() -> Path:
    """The folder of the shipped data (inside the installed package)."""
    # A wheel installs unpacked on disk, so the traversable is a real folder; a zipped
    # install would need importlib.resources.as_file() per file.
    return Path(str(files(__name__)))


def annotations_dir() -> Path:
    """The shipped annotation data: codebooks, rules, questionnaires and one folder per annotation set."""
    return resources_dir() / "annotations"


def codebook_dir() -> Path:
    """The shipped codebook versions (``<version>.yaml``) and the QDA ``mapping.yaml``."""
    return annotations_dir() / "codebook"


def rules_file() -> Path:
    """The shipped rating rules (``rating_rules.yaml``)."""
    return annotations_dir() / "rating_rules.yaml"


def questionnaires_file() -> Path:
    """The shipped questionnaire definitions (``questionnaires.yaml``)."""
    return annotations_dir() / "questionnaires.yaml"


def seed_dir() -> Path:
    """The hand-coded seed annotations the default model is trained on."""
    return annotations_dir() / "seed"


def holdout_dir() -> Path:
    """The annotations of the held-out transcripts (``codeer evaluate``, ``codeer review-effect``)."""
    return annotations_dir() / "holdout"


def packaged_models_dir() -> Path:
    """The packaged model folder (``CURRENT`` plus one folder per model)."""
    return resources_dir() / "models"


def privacy_allow_list_file() -> Path:
    """Words de-identification never takes for a person's name (``privacy/allow_list.txt``)."""
    return resources_dir() / "privacy" / "allow_list.txt"
