"""The backup scheduler's member access episodes (fleet_shared.access_episodes): one alert when a
member account starts denying the backup role, one resolution when it stops."""

from __future__ import annotations

from fleet_shared.access_episodes import AccessEpisodes

BACKUP_ACCESS = AccessEpisodes(
    source="backup_scheduler",
    role="backup role",
    consequence="the account's resources tagged for backup get no new copies and its expired "
    "copies are not pruned until the member role is granted again. One alert per episode; a "
    "resolution follows when the account is backed up without a denial.",
    recovered="Backed up again without a denial: the member role is granted.",
    served="backed up",
    saved_before_index=True,
)
"""Under `backup_scheduler/member-access/<account>`, indexed in
`backup_scheduler/member-access-open`; the versions before that index saved episodes without
it."""
