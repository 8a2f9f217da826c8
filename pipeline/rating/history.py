"""The ratings of the previous run, and which ratings moved since."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.rating.verdicts import Rating

logger = logging.getLogger(__name__)


def rating_changes(before: list[dict[str, object]], after: Sequence[Rating]) -> list[dict[str, object]]:
    """Which municipality/incentive ratings moved, from what to what."""
    old = {(row["municipality"], row["code"]): row["rating"] for row in before}
    changes = []
    for rating in after:
        key = (rating.municipality, rating.code)
        if old.get(key) != rating.rating:
            changes.append({"municipality": rating.municipality, "code": rating.code, "from": old.get(key),
                            "to": rating.rating})
    return changes


def previous_ratings(out_dir: Path) -> list[dict[str, object]]:
    """The ratings of the previous run (empty when there are none)."""
    path = out_dir / "ratings.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
