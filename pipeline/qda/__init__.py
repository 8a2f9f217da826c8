"""REFI-QDA exchange with NVivo, ATLAS.ti, MAXQDA and QualCoder (issue 9).

Projects travel as ``.qdpx`` (a ZIP with one ``project.qde`` in namespace
``urn:QDA-XML:project:1.0`` and a flat ``sources/`` folder), codebooks as ``.qdc``
(namespace ``urn:QDA-XML:codebook:1.0``). Offsets are Unicode code points from 0, end
exclusive, over the plain text in the archive. Modules: ``archive`` (records, reading),
``mapping`` (QDA codes to codebook ids), ``directions`` (direction codes such as ``Positief``),
``importer``, ``export`` and ``codebooks`` (.qdc).
"""

from pipeline.qda.archive import QdaCode, QdaProject, QdaSelection, QdaSource, qda_guid
from pipeline.qda.codebooks import codebook_from_qda, codebook_yaml, export_qdc
from pipeline.qda.directions import DirectionChoice, DirectionMark, choose_direction, direction_of_name
from pipeline.qda.export import INCLUDE_CHOICES, QdaExportReport, export_qdpx
from pipeline.qda.importer import QdaImportReport, import_qdpx, place_selection, transcript_from_source
from pipeline.qda.mapping import (
    MappedCode,
    MappingSuggestion,
    QdaMapping,
    load_qda_mapping,
    mapping_yaml,
    propose_mapping,
    resolve_codes,
    suggest_mapping,
)
from pipeline.qda.reader import read_qdc, read_qdpx

__all__ = [
    "INCLUDE_CHOICES", "DirectionChoice", "DirectionMark", "MappedCode", "MappingSuggestion", "QdaCode",
    "QdaExportReport", "QdaImportReport", "QdaMapping", "QdaProject", "QdaSelection", "QdaSource",
    "choose_direction", "codebook_from_qda", "codebook_yaml", "direction_of_name", "export_qdc", "export_qdpx",
    "import_qdpx", "load_qda_mapping", "mapping_yaml", "place_selection", "propose_mapping", "qda_guid",
    "read_qdc", "read_qdpx", "resolve_codes", "suggest_mapping", "transcript_from_source",
]
