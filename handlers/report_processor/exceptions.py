"""Errors of report_processor."""

from __future__ import annotations


class RejectedDocumentError(Exception):
    """The raw document cannot be processed; the message is the reason recorded with it."""
