"""The corpus: transcripts and documents read from disk, their utterances, annotation files,
utterance tables and questionnaire responses.

Data: files -> :class:`~pipeline.records.Transcript` -> :class:`~pipeline.records.Utterance`
(stored by :func:`ingest_paths`); annotation files -> :class:`~pipeline.records.Annotation`.
"""

from pipeline.corpus.annotations import (
    annotation_files,
    annotation_record,
    annotation_stats,
    import_annotations,
    read_annotations,
)
from pipeline.corpus.deidentify import (
    RESPONDENT_TAG,
    Deidentified,
    Deidentifier,
    OffsetMap,
    deidentify_rows,
    deidentify_transcript,
    load_deidentifier,
)
from pipeline.corpus.ingest import ingest_file, ingest_paths, metadata_places, store_pseudonymizer
from pipeline.corpus.pseudonyms import (
    KEY_FILE,
    MemoryRegistry,
    Pseudonymizer,
    load_workspace_key,
    name_key,
    workspace_pseudonymizer,
)
from pipeline.corpus.questionnaire import ingest_questionnaire, read_questionnaire
from pipeline.corpus.questionnaire_forms import (
    EVIDENCE_COLUMNS,
    ROLE_ABBREVIATIONS,
    SUMMARY_COUNTS,
    QuestionnaireDefinitions,
    combine_scores,
    load_questionnaires,
)
from pipeline.corpus.segment import Segmenter, load_segmenter, segment_transcript
from pipeline.corpus.tables import read_table, transcripts_from_table, utterance_json
from pipeline.corpus.transcripts import (
    INTERVIEWER_LABELS,
    RESPONDENT_LABELS,
    SourceMetadata,
    decode_bytes,
    find_sources,
    load_transcript,
    metadata_for,
    parse_transcript,
)

__all__ = [
    "KEY_FILE", "RESPONDENT_TAG", "Deidentified", "Deidentifier", "MemoryRegistry", "OffsetMap", "Pseudonymizer",
    "deidentify_rows", "deidentify_transcript", "load_deidentifier", "load_workspace_key", "metadata_places", "name_key",
    "store_pseudonymizer", "workspace_pseudonymizer",
    "EVIDENCE_COLUMNS", "INTERVIEWER_LABELS", "QuestionnaireDefinitions", "RESPONDENT_LABELS",
    "ROLE_ABBREVIATIONS", "SUMMARY_COUNTS", "Segmenter", "SourceMetadata", "annotation_files",
    "annotation_record", "annotation_stats", "combine_scores", "decode_bytes", "find_sources",
    "import_annotations", "ingest_file", "ingest_paths", "ingest_questionnaire", "load_questionnaires",
    "load_segmenter", "load_transcript", "metadata_for", "parse_transcript", "read_annotations",
    "read_questionnaire", "read_table", "segment_transcript", "transcripts_from_table", "utterance_json",
]
