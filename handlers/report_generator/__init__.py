"""report_generator: the availability report as Excel, JSON and CSV."""
