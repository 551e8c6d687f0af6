"""The tags by which backup_scheduler knows what to copy and which copies it made. cleanup_manager
reads them too: it never deletes a volume backup_scheduler copies (its copies would then expire
with nothing left to copy) nor a copy backup_scheduler made (kept until it expires)."""

from __future__ import annotations

BACKUP_TAG = "backup"
"""On a volume or DynamoDB table: `daily` or `weekly`, how often backup_scheduler copies it."""
COPY_TAG = "lambda-fleet:backup"
"""On a copy backup_scheduler made: the frequency it was made at."""
