"""Coding: encoders and their embedding cache, the classifier, training and evaluation, model
folders, and the classify step over a store.

Data: :class:`~pipeline.records.Utterance` -> embedding -> :class:`~pipeline.records.Prediction`
(a coding with its probability), stored beside the human annotations.
"""

from pipeline.coding.classify import CodingModel, TrainingSet, featurize, fit_coding_model, training_set
from pipeline.coding.embed import ConcatEncoder, embed_texts, load_encoder
from pipeline.coding.embedding_cache import EmbeddingCache
from pipeline.coding.evaluation_job import run_evaluation
from pipeline.coding.finetune import FineTuneConfig, fine_tune, fine_tuned_name
from pipeline.coding.jobs import (
    ClassifiedFile,
    check_encoder,
    classify_file,
    classify_file_with,
    classify_pending,
    classify_table,
    n_new_corrections,
    open_encoder,
    predictions_for,
)
from pipeline.coding.models import PROJECT_MODELS, LoadedModel, find_model_folder, list_models, load_model_folder
from pipeline.coding.predict import code_rows, coded_row_json
from pipeline.coding.promotion import (
    HeldOutScores,
    HeldOutSet,
    PromotionDecision,
    decide_promotion,
    heldout_set,
    score_on_heldout,
)
from pipeline.coding.sources import RealItem, knowledge_set, yardstick_items
from pipeline.coding.stack import Features
from pipeline.coding.training import (
    FittedCandidate,
    TrainingConfig,
    annotations_sha256,
    answer_key_round,
    fit_candidate,
    holdout_annotations,
    load_or_train_current,
    review_round_scores,
    review_rounds_of,
    reviewed_annotations,
    model_fitter,
    seed_annotations,
    train_model,
    unlabelled_pool,
)

__all__ = [
    "ClassifiedFile", "CodingModel", "ConcatEncoder", "EmbeddingCache", "Features", "FineTuneConfig", "LoadedModel", "RealItem",
    "fine_tune", "fine_tuned_name",
    "TrainingSet", "knowledge_set", "model_fitter", "yardstick_items",
    "FittedCandidate", "HeldOutScores", "HeldOutSet", "PromotionDecision", "decide_promotion", "fit_candidate",
    "heldout_set", "score_on_heldout",
    "TrainingConfig", "annotations_sha256", "answer_key_round", "check_encoder", "classify_file", "classify_file_with", "classify_pending", "classify_table",
    "code_rows", "coded_row_json", "embed_texts", "featurize", "fit_coding_model", "holdout_annotations",
    "PROJECT_MODELS", "find_model_folder", "list_models", "load_encoder", "load_model_folder", "load_or_train_current", "n_new_corrections", "open_encoder",
    "predictions_for", "review_round_scores", "review_rounds_of", "reviewed_annotations", "run_evaluation",
    "seed_annotations", "train_model", "training_set", "unlabelled_pool",
]
