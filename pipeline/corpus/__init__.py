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
from pipeline.corpus.migration import (
    CodebookMigration,
    code_translation,
    migrate_annotation_files,
    migrate_annotations,
    write_annotation_file,
)
from pipeline.corpus.pdf import LabelledLine, SourceKindDecision, decide_source_kind, read_pdf
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
from pipeline.corpus.tables import read_table, table_roles, transcripts_from_table, utterance_json
from pipeline.corpus.folders import find_skipped, find_sources, metadata_for
from pipeline.corpus.transcripts import (
    INTERVIEWER_LABELS,
    RESPONDENT_LABELS,
    SourceMetadata,
    decode_bytes,
    load_transcript,
    parse_transcript,
)

__all__ = [
    "CodebookMigration", "EVIDENCE_COLUMNS", "INTERVIEWER_LABELS", "KEY_FILE", "LabelledLine",
    "QuestionnaireDefinitions", "RESPONDENT_LABELS", "RESPONDENT_TAG", "ROLE_ABBREVIATIONS", "SUMMARY_COUNTS",
    "Deidentified", "Deidentifier", "MemoryRegistry", "OffsetMap", "Pseudonymizer", "Segmenter",
    "SourceKindDecision", "SourceMetadata", "annotation_files", "annotation_record", "annotation_stats",
    "code_translation", "combine_scores", "decide_source_kind", "decode_bytes", "deidentify_rows",
    "deidentify_transcript", "find_skipped", "find_sources", "load_deidentifier", "load_workspace_key",
    "metadata_places", "name_key", "store_pseudonymizer", "workspace_pseudonymizer",
    "import_annotations", "ingest_file", "ingest_paths", "ingest_questionnaire", "load_questionnaires",
    "load_segmenter", "load_transcript", "metadata_for", "migrate_annotation_files", "migrate_annotations",
    "parse_transcript", "read_annotations", "read_pdf", "read_questionnaire", "read_table", "segment_transcript", "table_roles",
    "transcripts_from_table", "utterance_json", "write_annotation_file",
]
