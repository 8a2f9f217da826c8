"""codeer: qualitative coding of Dutch interview transcripts.

The stages are packages: ``corpus`` (transcripts, documents, utterances, annotation files,
questionnaires), ``coding`` (embed, classify, train, evaluate, model folders), ``review``
(the review queue and the ways to work it), ``rating`` (evidence, rules, verdicts),
``report`` and ``qda`` (REFI-QDA exchange); ``store`` holds the database. Each package's
``__init__`` names its public functions. See docs/architecture.md and the README.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
