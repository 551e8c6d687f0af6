"""backup_scheduler: snapshots and DynamoDB backups of resources tagged for backup, with expiry."""
