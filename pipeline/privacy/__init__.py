"""Privacy (issue 19): erasure on request. De-identification and respondent codes belong to
the corpus (:mod:`pipeline.corpus.deidentify`, :mod:`pipeline.corpus.pseudonyms`); erasure sits
on top because it reaches every layer: the database, the embedding cache and the reports.
"""

from pipeline.privacy.forget import REMOVED, ForgetReport, forget, forget_embeddings, remaining_mentions, scrub_reports

__all__ = ["REMOVED", "ForgetReport", "forget", "forget_embeddings", "remaining_mentions", "scrub_reports"]
