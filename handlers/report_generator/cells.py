"""What a spreadsheet cell holds: the one rule by which the workbook and the CSV files cut a text
too long for a cell, and the count of the texts so cut, which the workbook's Summary states."""

from __future__ import annotations

CELL_LIMIT = 32_767
"""The most characters an Excel cell holds, counted as Excel counts them, in UTF-16 code units (a
character beyond U+FFFF, an emoji, is two): openpyxl writes a longer text without complaint, and
Excel then reports the workbook as damaged; opening a CSV file, it cuts a longer field or carries
its rest into the next cells, without a word."""


class CutTexts:
    """The texts of one report cut to fit a cell, each counted once however many cells (of the
    workbook and the CSV files) show it."""

    def __init__(self) -> None:
        self._texts: set[str] = set()

    def __len__(self) -> int:
        return len(self._texts)

    def fitted(self, text: str, *, before: str = "") -> str:
        """`text` whole when a cell holds it behind `before` (the CSV files' apostrophe), else
        its start followed by `... (<n> characters)` (n its whole length), together with
        `before` CELL_LIMIT code units at most. `text` holds no lone surrogate (the workbook
        replaced them; JSON cannot carry one into the processed document)."""
        # A character is at most two code units: a text this short fits without counting them.
        if len(before) + len(text) <= CELL_LIMIT // 2:
            return text
        units = len(before.encode("utf-16-le")) // 2
        encoded = text.encode("utf-16-le")
        if units + len(encoded) // 2 <= CELL_LIMIT:
            return text
        self._texts.add(text)
        marker = f"... ({len(text)} characters)"
        # A cut between the two halves of a pair leaves a half, which the decoding drops.
        kept = encoded[: 2 * (CELL_LIMIT - units - len(marker))].decode(
            "utf-16-le", errors="ignore"
        )
        return f"{kept}{marker}"
