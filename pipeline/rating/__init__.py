"""Rating: from codings to verdicts. Evidence (validated fragments and questionnaire answers),
the rating rules, incentive and context verdicts, differences between municipalities, the
ratings files and the calibration of the prediction weight.

Data: codings table -> :class:`CodedFragments` (evidence) -> :class:`Rating` /
:class:`ContextRating` (verdicts) -> ``ratings.json``.
"""

from pipeline.rating.calibration import calibrate_on_seed, calibrate_prediction_weight, out_of_fold_codings
from pipeline.rating.context import ContextRating, rate_context
from pipeline.rating.differences import Differences, IncentiveSpread, LearningPair, compare_municipalities
from pipeline.rating.evidence import (
    CODING_COLUMNS,
    CONTEXT_VERDICTS,
    RATINGS,
    CodedFragments,
    coded_fragments,
    codings_from_annotations,
    read_regions,
)
from pipeline.rating.history import previous_ratings, rating_changes
from pipeline.rating.output import agreement_with_answer_key, context_frame, ratings_frame, write_ratings
from pipeline.rating.questionnaire_evidence import (
    questionnaire_evidence,
    questionnaire_evidence_of,
    stored_questionnaire_evidence,
    summarise,
)
from pipeline.rating.rules import RatingRules, load_rating_rules, parse_rating_rules
from pipeline.rating.sensitivity import correction_effects, store_correction_effects
from pipeline.rating.thesis_check import ThesisCheck, check_against_thesis, thesis_codings, threshold_sensitivity
from pipeline.rating.verdicts import Rating, rate_incentives

__all__ = [
    "CODING_COLUMNS", "CONTEXT_VERDICTS", "CodedFragments", "ContextRating", "Differences", "IncentiveSpread",
    "LearningPair", "RATINGS", "Rating", "RatingRules", "agreement_with_answer_key",
    "calibrate_on_seed", "calibrate_prediction_weight", "coded_fragments", "correction_effects",
    "store_correction_effects", "codings_from_annotations", "compare_municipalities",
    "context_frame", "load_rating_rules", "out_of_fold_codings", "parse_rating_rules", "previous_ratings",
    "questionnaire_evidence", "questionnaire_evidence_of", "rate_context", "rate_incentives", "read_regions",
    "ThesisCheck", "check_against_thesis", "thesis_codings", "threshold_sensitivity",
    "rating_changes", "ratings_frame", "stored_questionnaire_evidence", "summarise", "write_ratings",
]
