"""Training and evaluation jobs: gather annotations, embed, fit, evaluate, save, promote."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import closing, nullcontext
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any


from pipeline.codebook import Codebook, load_codebook
from pipeline.coding import evaluate as ev
from pipeline.coding import yardstick as ys
from pipeline.coding.classify import CodingModel, TrainingSet, code_prototypes, featurize, fit_coding_model, training_set
from pipeline.coding.sources import SOURCES_CODEBOOK, knowledge_set, yardstick_items
from pipeline.coding.stack import Features
from pipeline.coding.embed import encoder_space, load_encoder
from pipeline.coding.finetune import FineTuneConfig, adopt_encoder, fine_tuning
from pipeline.coding.models import (
    PROJECT_MODELS,
    LoadedModel,
    library_versions,
    load_model_folder,
    make_current,
    new_model_id,
    resolve_model,
    save_model,
)
from pipeline.coding.promotion import (
    PromotionDecision,
    Scorer,
    challenge_champion,
    find_champion,
    heldout_scorer,
    heldout_set,
    without_heldout,
)
from pipeline.corpus import annotation_files, read_annotations
from pipeline.errors import ModelNotFoundError
from pipeline.progress import stage
from pipeline.records import Annotation
from pipeline.resources import holdout_dir, seed_dir

if TYPE_CHECKING:
    from pipeline.coding.embed import EmbeddingCacheLike, Encoder
    from pipeline.store import Store

logger = logging.getLogger(__name__)

SEED_DIR = seed_dir()
HOLDOUT_DIR = holdout_dir()


@dataclass(frozen=True)
class TrainingConfig:
    """How a model is trained. Defaults were chosen by grouped CV (reports/evaluation.md)."""

    encoder: str = "default"
    knowledge: bool = True  # train on the codebook, real-text train and register sentences too
    semi_supervised: bool = False
    C: float = 1.0
    n_splits: int = 5
    min_examples: int = 8
    random_state: int = 0
    fine_tune: FineTuneConfig | None = None  # fine-tune e5 on the training codes first (finetune.py); off: no gain measured


def reviewed_annotations(store: Store, codebook: Codebook) -> list[Annotation]:
    """Annotators' decisions from the review queue (explicit "no code" included), for training."""
    from pipeline.review import review_annotations

    decisions = review_annotations(store)
    kept = [a for a in decisions if a.codebook_version == codebook.version]
    if len(kept) < len(decisions):
        other = sorted({a.codebook_version for a in decisions} - {codebook.version})
        # not silently: corrections are the annotators' work
        logger.warning("%d review decision(s) of codebook version(s) %s left out of training for %s (they stay in "
                       "the store)", len(decisions) - len(kept), ", ".join(other), codebook.version)
    return kept


def annotations_sha256(annotations: Sequence[Annotation]) -> str:
    """A hash of the training annotations (order-independent)."""
    digest = hashlib.sha256()
    for line in sorted(f"{a.utterance_id}|{a.origin}|{a.text}|" + ",".join(f"{c.code}{c.direction}{c.facet}" for c in a.codings)
                       for a in annotations):
        digest.update(line.encode("utf-8"))
    return digest.hexdigest()


def drop_rare_codes(data: TrainingSet, min_examples: int) -> tuple[TrainingSet, list[str]]:
    """Leave out codes with fewer than ``min_examples`` positive examples; report them."""
    counts = data.Y.sum(axis=0)
    keep = [j for j in range(len(data.codes)) if counts[j] >= min_examples]
    skipped = [data.codes[j] for j in range(len(data.codes)) if counts[j] < min_examples]
    new_index = {old: new for new, old in enumerate(keep)}
    return TrainingSet(
        texts=data.texts, questions=data.questions, groups=data.groups, codes=[data.codes[j] for j in keep],
        Y=data.Y[:, keep], coding_rows=[(s, new_index[j], d, f) for s, j, d, f in data.coding_rows if j in new_index],
        weights=data.weights,
    ), skipped


Fitter = Callable[[Features, TrainingSet], CodingModel]


def model_fitter(codebook: Codebook, codes: Sequence[str], encoder: Encoder, config: TrainingConfig, *,
                 cache: EmbeddingCacheLike | None = None, unlabelled: Features | None = None) -> tuple[Fitter, str]:
    """A function that fits a model on a part of the annotations, with the codebook's
    prototypes and (``config.knowledge``) the other training sentences added to every part;
    and a hash of those other sentences for the model card."""
    prototypes = code_prototypes(codebook, codes, encoder, cache=cache)
    knowledge = None
    digest = hashlib.sha256(json.dumps(prototypes.texts).encode("utf-8"))
    if config.knowledge:
        extra = knowledge_set(codebook, codes)
        F_extra, _, _ = featurize(extra.texts, encoder, cache=cache)
        knowledge = (F_extra, extra)
        digest.update(json.dumps([extra.texts, extra.Y.tolist(), extra.coding_rows]).encode("utf-8"))

    def fit(F_part: Features, part: TrainingSet) -> CodingModel:
        return fit_coding_model(F_part, part, codebook_version=codebook.version, encoder_id=encoder.encoder_id,
                                prototypes=prototypes, knowledge=knowledge, unlabelled=unlabelled, C=config.C)
    return fit, digest.hexdigest()


def yardstick_report(model: CodingModel, codebook: Codebook, encoder: Encoder, *, cache: EmbeddingCacheLike | None = None,
                     baselines: bool = True) -> dict[str, Any] | None:
    """``model`` (and the zero-shot baselines) on the real-text yardstick; None for a codebook
    version the yardstick was not labelled with."""
    if codebook.version != SOURCES_CODEBOOK:
        return None
    items = yardstick_items(codebook)
    F, _, _ = featurize([item.text for item in items], encoder, cache=cache)
    report: dict[str, Any] = {"n_items": len(items), "model": ys.model_scores(model, F, items, codebook)}
    if baselines:
        report["baselines"] = ys.zero_shot_scores(items, codebook, encoder, cache=cache)
    return report


@dataclass(frozen=True)
class TrainResult:
    """What ``codeer train`` reports."""

    model_id: str
    path: Path
    metrics: dict[str, Any]
    skipped_codes: list[str]
    promoted: bool
    reason: str
    n_utterances: int
    seconds: float
    decision: PromotionDecision | None = None


@dataclass(frozen=True)
class FittedCandidate:
    """A model fitted on all annotations, with its grouped-CV metrics: a challenger."""

    model: CodingModel
    metrics: dict[str, Any]
    codes: list[str]
    n_per_code: dict[str, int]
    n_utterances: int
    skipped_codes: list[str]
    sources_sha256: str
    encoder_name: str
    encoder: Any
    encoder_folder: Path | None = None  # a fine-tuned encoder's staged folder, for the model's folder
    fine_tune: dict[str, Any] | None = None  # the card's ``fine_tune`` entry


def fit_candidate(
    annotations: Sequence[Annotation],
    codebook: Codebook,
    *,
    config: TrainingConfig = TrainingConfig(),
    cache: EmbeddingCacheLike | None = None,
    unlabelled: Sequence[tuple[str, str]] = (),
    encoder: Encoder | None = None,
    show_progress: bool = False,
) -> FittedCandidate:
    """Embed ``annotations``, measure grouped-CV scores and fit the model on all of them."""
    from pipeline.coding.embed import DEFAULT_ENCODER

    encoder_name = DEFAULT_ENCODER if config.encoder == "default" else config.encoder
    encoder = encoder or load_encoder(encoder_name)
    data, skipped = drop_rare_codes(training_set(annotations, codebook), config.min_examples)
    if skipped:
        logger.warning("codes left out (fewer than %d examples): %s", config.min_examples, ", ".join(skipped))
    X, _, _ = featurize(data.texts, encoder, questions=data.questions, cache=cache, show_progress=show_progress)
    X_unlabelled = None
    if config.semi_supervised and unlabelled:
        X_unlabelled, _, _ = featurize([t for t, _ in unlabelled], encoder, questions=[q for _, q in unlabelled],
                                       cache=cache)
    fit, sources_sha = model_fitter(codebook, data.codes, encoder, config, cache=cache, unlabelled=X_unlabelled)

    folds = ev.grouped_cross_validation(X, data, fit, n_splits=config.n_splits, show_progress=show_progress)
    metrics = ev.code_scores(data.Y, folds.predicted, data.codes)
    metrics["direction_accuracy"] = ev.direction_accuracy(folds)
    with stage("train: the final model on all annotations", enabled=show_progress):
        model = fit(X, data)
    with stage("train: the real-text yardstick", enabled=show_progress):
        real = yardstick_report(model, codebook, encoder, cache=cache, baselines=False)
    if real is not None:
        metrics["yardstick"] = real["model"]
    return FittedCandidate(model, metrics, list(data.codes),
                           {c: int(n) for c, n in zip(data.codes, data.Y.sum(axis=0), strict=True)}, len(data.texts),
                           skipped, sources_sha, encoder_name, encoder)


def train_model(
    annotations: Sequence[Annotation],
    codebook: Codebook,
    *,
    models_dir: Path,
    cache: EmbeddingCacheLike | None = None,
    config: TrainingConfig = TrainingConfig(),
    unlabelled: Sequence[tuple[str, str]] = (),
    encoder: Encoder | None = None,
    force: bool = False,
    show_progress: bool = False,
    search_dirs: Sequence[Path] = (PROJECT_MODELS,),
    fit: Callable[..., FittedCandidate] | None = None,
    scorer: Scorer | None = None,
    device: str = "cpu",
) -> TrainResult:
    """Train a challenger on ``annotations``, save its folder with its card, and make it the
    current model only when it beats the champion on the frozen held-out set
    (:mod:`pipeline.coding.promotion`), or with ``force``.

    Parameters
    ----------
    annotations : sequence of Annotation
        Training annotations; any whose text is in the held-out set is left out.
    codebook : Codebook
    models_dir : Path
        The workspace's models folder: the challenger is saved here, ``CURRENT`` names the winner.
    cache : EmbeddingCache, optional
    config : TrainingConfig
    unlabelled : sequence of (text, question)
        For semi-supervised training.
    encoder : Encoder, optional
        The loaded encoder of ``config.encoder`` (loaded here when not given).
    force : bool
        Promote even when the champion wins (the card says so).
    show_progress : bool
    search_dirs : sequence of Path
        Where the champion is looked for after ``models_dir`` (default the packaged model), as
        :func:`~pipeline.coding.models.resolve_model` looks for ``current``.
    fit : callable, optional
        ``fit(annotations, codebook, config=, cache=, unlabelled=, encoder=, show_progress=)``
        returning a :class:`FittedCandidate` (default :func:`fit_candidate`).
    scorer : callable, optional
        ``scorer(model, card)`` returning its :class:`~pipeline.coding.promotion.HeldOutScores`
        (default: scored with the card's encoder on :func:`~pipeline.coding.promotion.heldout_set`).
    device : str
        Where e5 is fine-tuned with ``config.fine_tune`` (:mod:`pipeline.coding.finetune`; the
        model's folder then holds the tuned encoder in ``encoder/``).

    Returns
    -------
    TrainResult
        With the :class:`~pipeline.coding.promotion.PromotionDecision` (both scores, the reason).
    """
    started = time.perf_counter()
    heldout = heldout_set(codebook, holdout_annotations(codebook))
    kept = without_heldout(annotations, heldout)
    if len(kept) < len(annotations):
        logger.warning("%d annotation(s) of held-out texts left out of training", len(annotations) - len(kept))
    # with config.fine_tune, fit fine-tunes e5 first, in a staging folder the model's folder takes over
    with (fine_tuning(models_dir, device=device, fit=fit) if config.fine_tune is not None else nullcontext(fit)) as fit:
        fitted = (fit or fit_candidate)(kept, codebook, config=config, cache=cache, unlabelled=unlabelled, encoder=encoder,
                                        show_progress=show_progress)
        model = fitted.model
        sha = annotations_sha256(kept)
        model_id = new_model_id(codebook.version, sha)
        card = {
            "model_id": model_id, "codebook_version": codebook.version, "encoder": fitted.encoder_name,
            "encoder_id": model.encoder_id, "encoder_space": encoder_space(fitted.encoder) if fitted.encoder is not None else model.encoder_id,
            "encoder_dim": getattr(fitted.encoder, "dim", None), "semi_supervised": config.semi_supervised,
            "model_format": model.model_format,
            "config": asdict(config), "annotations_sha256": sha, "sources_sha256": fitted.sources_sha256, "evaluation_key": sha,
            "n_utterances": fitted.n_utterances, "n_per_code": fitted.n_per_code,
            "skipped_codes": fitted.skipped_codes,
            "thresholds": {c: round(float(t), 3) for c, t in zip(fitted.codes, model.thresholds, strict=True)},
            "metrics": fitted.metrics, "libraries": library_versions(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "data": "fictional demo corpus (annotations/seed)" if all(a.origin == "seed" for a in kept) else "seed + reviewed",
            **({"fine_tune": fitted.fine_tune} if fitted.fine_tune is not None else {}),
        }
        champion = find_champion(models_dir, search_dirs, codebook.version)
        # the challenger's encoder is the one it was fitted with; a fine-tuned champion's is in its folder
        score = scorer or heldout_scorer(heldout, cache=cache, encoders={model.encoder_id: fitted.encoder},
                                         folders={champion.model_id: champion.path} if champion else None)
        challenger = score(model, card)
        card["heldout"] = challenger.to_json()
        decision = challenge_champion(model_id, challenger, champion, score)
        if force and not decision.promote:
            decision = replace(decision, promote=True, reason=f"promoted by --force although {decision.reason}")
        card["promotion"] = decision.to_json()
        if fitted.encoder_folder is not None:  # before the card: a model folder with a card is complete
            adopt_encoder(fitted.encoder_folder, models_dir / model_id)
        path = save_model(model, models_dir / model_id, card)
        if decision.promote:
            make_current(models_dir, model_id)
    logger.info("model %s: %s", model_id, decision.reason)
    return TrainResult(model_id, path, fitted.metrics, fitted.skipped_codes, decision.promote, decision.reason,
                       fitted.n_utterances, time.perf_counter() - started, decision)


def seed_annotations(codebook: Codebook, paths: Sequence[Path] | None = None) -> list[Annotation]:
    """The seed annotations shipped with the project (or those under ``paths``)."""
    return read_annotations(list(paths or [SEED_DIR]), codebook)


def holdout_scores(model: CodingModel, data: TrainingSet, X_test: Features, test: TrainingSet) -> dict[str, Any]:
    """Per-code scores of ``model`` (trained on ``data``) on held-out rows, codes in ``data``'s order."""
    index = [test.codes.index(code) for code in data.codes]
    predicted = model.decide(X_test)[1].astype(int)
    return ev.code_scores(test.Y[:, index], predicted, data.codes, min_support=3)


def holdout_annotations(codebook: Codebook) -> list[Annotation]:
    """The held-out annotations shipped with the demo corpus (empty when absent)."""
    return read_annotations([HOLDOUT_DIR], codebook) if annotation_files([HOLDOUT_DIR]) else []


def unlabelled_pool(store: Store) -> list[tuple[str, str]]:
    """``(text, question)`` of stored utterances that carry no annotation."""
    annotated = {u.utterance_id for u, _, _, _ in store.iter_annotated()}
    return [(u.text, u.question) for u in store.iter_utterances() if u.utterance_id not in annotated]


def report_json(result: TrainResult) -> str:
    """A short JSON summary of a training run."""
    summary: dict[str, Any] = {"model_id": result.model_id, "macro_f1": result.metrics["macro_f1"],
                               "promoted": result.promoted, "reason": result.reason}
    if result.decision is not None:
        summary["promotion"] = result.decision.to_json()
    return json.dumps(summary, indent=1)


def review_round_scores(seed: Sequence[Annotation], rounds: Sequence[Sequence[Annotation]],
                        test: Sequence[Annotation], codebook: Codebook, *,
                        cache: EmbeddingCacheLike | None = None,
                        config: TrainingConfig = TrainingConfig()) -> list[dict[str, Any]]:
    """Scores of the model before and after each review round, on the same test transcripts.

    Round 0 trains on ``seed`` alone; round ``k`` adds the review annotations of rounds 1..k
    (a review decision overrides the seed coding of its utterance). Each round reports the
    grouped-CV macro-F1 of its own training set and the macro-F1 on ``test``. Test utterances
    reviewed in any round are left out of the test set in every round, so all rounds are
    scored on the same utterances and none is scored on what it was trained on.

    Parameters
    ----------
    seed : sequence of Annotation
    rounds : sequence of sequences of Annotation
        Review annotations (origin ``review``), one sequence per round, oldest first.
    test : sequence of Annotation
        Annotated held-out transcripts (e.g. :func:`holdout_annotations`).
    codebook : Codebook
    cache : EmbeddingCache, optional
    config : TrainingConfig

    Returns
    -------
    list of dict
        Per round: ``round``, ``n_reviewed`` (cumulative), ``n_train``, ``cv_macro_f1``,
        ``holdout_macro_f1``, ``n_test``.
    """
    reviewed = {a.utterance_id for group in rounds for a in group}
    test_set, _ = drop_rare_codes(training_set([a for a in test if a.utterance_id not in reviewed], codebook), 0)
    encoder = load_encoder(config.encoder)
    X_test, _, _ = featurize(test_set.texts, encoder, questions=test_set.questions, cache=cache)
    results = []
    for k in range(len(rounds) + 1):
        annotations = [*seed, *(a for group in rounds[:k] for a in group)]
        data, _ = drop_rare_codes(training_set(annotations, codebook), config.min_examples)
        X, _, _ = featurize(data.texts, encoder, questions=data.questions, cache=cache)
        fit, _ = model_fitter(codebook, data.codes, encoder, config, cache=cache)
        folds = ev.grouped_cross_validation(X, data, fit, n_splits=config.n_splits)
        results.append({
            "round": k, "n_reviewed": sum(len(group) for group in rounds[:k]), "n_train": len(data.texts),
            "cv_macro_f1": ev.code_scores(data.Y, folds.predicted, data.codes)["macro_f1"],
            "holdout_macro_f1": holdout_scores(fit(X, data), data, X_test, test_set)["macro_f1"],
            "n_test": len(test_set.texts)})
        logger.info("review round %d: %d reviewed, grouped-CV macro-F1 %.3f, held-out %.3f", k,
                    results[-1]["n_reviewed"], results[-1]["cv_macro_f1"], results[-1]["holdout_macro_f1"])
    return results


def review_rounds_of(store: Store) -> list[list[Annotation]]:
    """The standing review decisions, one round per calendar day (UTC) of the decision."""
    from pipeline.review import review_annotations

    by_day: dict[str, list[Annotation]] = {}
    for annotation in sorted(review_annotations(store), key=lambda a: a.created_at):
        by_day.setdefault(annotation.created_at[:10], []).append(annotation)
    return [by_day[day] for day in sorted(by_day)]


def answer_key_round(store: Store, oracle: Sequence[Annotation], n: int) -> tuple[list[Annotation], int]:
    """A simulated review round: the top ``n`` pending queue items answered with known
    annotations (e.g. seed + held-out), as an annotator who agrees with them would.

    Nothing is written to the store. Returns the review annotations and how many of the top
    ``n`` items had no known answer (they are left out).
    """
    known = {a.utterance_id: a for a in oracle}
    items = store.list_review_items(["pending"], limit=n)
    answered = [replace(known[item.utterance_id], origin="review", annotator="answer-key")
                for item in items if item.utterance_id in known]
    return answered, len(items) - len(answered)


def load_or_train_current(
    model_ref: str,
    models_dir: Path,
    *,
    codebook_version: str,
    config: TrainingConfig = TrainingConfig(),
    training_annotations: Callable[[Codebook], Sequence[Annotation]] = seed_annotations,
    open_cache: Callable[[], Any] | None = None,
    search_dirs: Sequence[Path] = (PROJECT_MODELS,),
    show_progress: bool = False,
    before_training: Callable[[], None] | None = None,
) -> tuple[LoadedModel, TrainResult | None]:
    """The model ``model_ref`` names; when it is ``"current"`` and no model is current yet,
    train the seed model first, so that a fresh workspace works without ``codeer train``.

    Parameters
    ----------
    model_ref : str
        ``"current"``, a model id or a model folder.
    models_dir : Path
        The workspace's models folder: searched first, and where a trained model is saved.
    codebook_version : str
        The active codebook version; the model's card must match it.
    config : TrainingConfig
        How to train the seed model.
    training_annotations : callable
        Gives the annotations to train on for a codebook (default: the seed annotations);
        called only when a model is trained.
    open_cache : callable, optional
        Opens the embedding cache; called, and the cache closed, only when a model is trained.
    search_dirs : sequence of Path
        Further models folders to look in after ``models_dir`` (default: the project's).
    show_progress : bool
        Report progress while embedding, cross-validating and training (:mod:`pipeline.progress`).
    before_training : callable, optional
        Called just before training starts, to tell the user it will take a while.

    Returns
    -------
    (LoadedModel, TrainResult or None)
        The model, and the training result when one was trained here.

    Raises
    ------
    ModelNotFoundError
        No such model, and ``model_ref`` is not ``"current"`` or there are no seed annotations.
    ModelCardMismatchError
        The model was trained on another codebook version.
    """
    dirs = [models_dir, *search_dirs]
    try:
        return resolve_model(model_ref, dirs, codebook_version=codebook_version), None
    except ModelNotFoundError:
        if model_ref != "current" or not SEED_DIR.is_dir():
            raise
    if before_training is not None:
        before_training()
    book = load_codebook(codebook_version)
    records = training_annotations(book)
    with closing(open_cache()) if open_cache is not None else nullcontext() as cache:
        result = train_model(records, book, models_dir=models_dir, cache=cache, config=config,
                             show_progress=show_progress, search_dirs=search_dirs)
    return load_model_folder(result.path, codebook_version=codebook_version), result
