"""cleanup_manager: stale snapshots, unattached volumes and old Lambda versions, with notice."""
