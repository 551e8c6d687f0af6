"""report_fetcher: region and service availability from the SSM public parameters."""
