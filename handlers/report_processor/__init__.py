"""report_processor: the availability matrix, statistics, quality checks and changes."""
