"""Numbers and dates written the Dutch way in every report: a decimal comma, ``12%``, ``4 december 2026``."""

from __future__ import annotations

from datetime import datetime

MONTHS = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
          "november", "december")


def nl_number(value: float | None, digits: int = 2, *, sign: bool = False) -> str:
    """``0,79``; ``+0,25`` with ``sign``; ``–`` for None.

    >>> nl_number(0.7912), nl_number(-0.5, 1, sign=True), nl_number(None)
    ('0,79', '-0,5', '–')
    """
    if value is None:
        return "–"
    text = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    return text.replace(".", ",")


def nl_percent(share: float | None, digits: int = 0) -> str:
    """A share in [0, 1] as a Dutch percentage: ``79%``, ``33,7%`` (no space, as the rationales write
    it); ``–`` for None.

    >>> nl_percent(0.791), nl_percent(0.337, 1)
    ('79%', '33,7%')
    """
    if share is None:
        return "–"
    return f"{share * 100:.{digits}f}".replace(".", ",") + "%"


def nl_date(moment: datetime) -> str:
    """``4 december 2026, 14:27`` (the time as given).

    >>> nl_date(datetime(2026, 12, 4, 14, 27))
    '4 december 2026, 14:27'
    """
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}, {moment:%H:%M}"
