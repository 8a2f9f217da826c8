"""The real-text yardstick: loaded, never trained on, scored correctly."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.codebook import load_codebook
from pipeline.coding import knowledge_set, yardstick_items
from pipeline.coding.sources import YARDSTICK, read_realtext
from pipeline.coding.yardstick import _rank_scores
from pipeline.coding.sources import RealItem
from pipeline.errors import AnnotationError


def test_yardstick_is_loaded_and_covers_the_incentives() -> None:
    book = load_codebook()
    items = yardstick_items(book)
    assert len(items) >= 100 and all(item.split == YARDSTICK for item in items)
    assert set(book.incentives) <= {item.code for item in items} | {c for item in items for c in item.also}
    assert len({item.id for item in items}) == len(items)


def test_yardstick_is_never_trained_on() -> None:
    book = load_codebook()
    held_out = {item.text for item in yardstick_items(book)}
    trained = knowledge_set(book, list(book.codable))
    assert not held_out & set(trained.texts)
    # one split per section: no section leaks into both parts
    split_of: dict[str, set[str]] = {}
    for item in read_realtext(book):
        split_of.setdefault(item.section, set()).add(item.split)
    assert all(len(splits) == 1 for splits in split_of.values())


def test_yardstick_scores_are_computed_right() -> None:
    items = [RealItem("a", "x", "analyse", "-", None, "6.1", 1, YARDSTICK),
             RealItem("b", "y", "experimenteren", None, None, "6.1", 2, YARDSTICK, also=("analyse",)),
             RealItem("c", "z", "cultuur", None, None, "6.1", 3, YARDSTICK)]
    scores = np.array([[0.9, 0.1, 0.0], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    result = _rank_scores(scores, items, ["analyse", "experimenteren", "visie_op_leren"])
    assert result["n"] == 2  # the context-code item is not an incentive item
    assert result["top1"] == 0.5 and result["top1_lenient"] == 1.0 and result["top3"] == 1.0



def test_yardstick_a_right_code_with_the_wrong_direction_is_a_wrong_coding() -> None:
    from pipeline.coding.yardstick import _wrong_direction

    item = RealItem("a", "x", "analyse", "-", None, "6.1", 1, YARDSTICK)
    assert _wrong_direction((("analyse", "+", 0.6),), item)
    assert not _wrong_direction((("analyse", "-", 0.6),), item)
    assert not _wrong_direction((("experimenteren", "+", 0.6),), item)  # another code: the code is wrong, not this
    assert not _wrong_direction((("analyse", "+", 0.6),), RealItem("b", "y", "analyse", None, None, "6.1", 2, YARDSTICK))

def test_yardstick_bad_code_names_file_and_line(tmp_path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"id": "r1", "text": "t", "code": "geen_code", "section": "6.1", "line": 3, "split": "train"}\n',
                    encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"items.jsonl, line 1: code 'geen_code'"):
        read_realtext(load_codebook(), path)
