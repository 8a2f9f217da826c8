"""codeer: qualitative coding of Dutch interview transcripts.

The stages are modules of this package: ``transcripts`` (read files), ``segment``
(utterances), ``embed``, ``classify``, ``aggregate`` (ratings), ``review``, ``store``
(database) and ``report``. See the README for the command line.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
