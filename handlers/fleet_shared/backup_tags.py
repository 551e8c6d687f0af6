"""The tags by which backup_scheduler knows what to copy and which copies it made. cleanup_manager
reads them too: it never deletes a volume backup_scheduler copies (its copies would then expire
with nothing left to copy) nor a copy backup_scheduler made (kept until it expires)."""

from __future__ import annotations

from collections.abc import Mapping

BACKUP_TAG = "backup"
"""On a volume or DynamoDB table: `daily` or `weekly`, how often backup_scheduler copies it."""
COPY_TAG = "lambda-fleet:backup"
"""On a copy backup_scheduler made: the frequency it was made at."""
SNAPSHOT_ID_TAG = "lambda-fleet:snapshot-id"
"""On a snapshot backup_scheduler made: its own id, tagged once the snapshot exists. A snapshot
someone copied with its tags (to keep it, or into another region) carries them all, expiry
included, and only this one tells it apart: it names another snapshot."""
STACK_TAG = "lambda-fleet:stack"
"""On a copy backup_scheduler made: the stack whose function made it, tagged at creation. Stacks
sharing a member account (dev and prod) each prune only the copies tagged with their own name;
a copy without the tag (made before it was) only when the stack's own day's record names it."""


def misspelt_backup_key(tags: Mapping[str, str]) -> str | None:
    """The first key of `tags` that is not BACKUP_TAG but reads as it: another case, blanks
    around it, a separator inside, a plural (`Backup`, ` backup`, `back-up`, `Backups`). Such a
    tag meant a copy, and backup_scheduler reads the key `backup` alone: both functions report
    it, and neither treats the resource as untagged (its copies would stop unsaid, and then
    expire, and cleanup_manager could delete the volume)."""
    return next(
        (key for key in tags if key != BACKUP_TAG and _reads_as_backup(key)),
        None,
    )


def _reads_as_backup(key: str) -> bool:
    squeezed = "".join(character for character in key.casefold() if character not in " \t_-.")
    return squeezed in (BACKUP_TAG, f"{BACKUP_TAG}s")


def copied_from(snapshot_id: str, tags: Mapping[str, str]) -> str | None:
    """The snapshot that `snapshot_id`, with `tags`, is a copy of: the one its SNAPSHOT_ID_TAG
    names when that is another; None for a snapshot backup_scheduler made, and for one without
    the tag (made before the tag was, or whose tagging failed), which may be either: pruning
    takes it for one backup_scheduler made only when a day's record of its lists it."""
    named = tags.get(SNAPSHOT_ID_TAG)
    return named if named is not None and named != snapshot_id else None
