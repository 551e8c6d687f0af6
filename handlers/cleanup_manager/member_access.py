"""The cleanup manager's member access episodes (fleet_shared.access_episodes): one alert when a
member account starts denying the cleanup role, one resolution when it stops."""

from __future__ import annotations

from fleet_shared.access_episodes import AccessEpisodes

CLEANUP_ACCESS = AccessEpisodes(
    source="cleanup_manager",
    role="cleanup role",
    consequence="the account's stale snapshots, volumes and Lambda versions are not marked, "
    "announced or deleted, and marks are not lifted from what is in use again, until the "
    "member role is granted again. One alert per episode; a resolution follows when the "
    "account is cleaned without a denial.",
    recovered="Cleaned again without a denial: the member role is granted.",
    served="cleaned",
)
"""Under `cleanup_manager/member-access/<account>`, indexed in
`cleanup_manager/member-access-open`."""
