"""fleet_shared.numeric: statistics shared by the functions that run with the pandas layer.

The modules here import numpy and pandas at module level, which only the functions deployed with
the AWS SDK for pandas managed layer have. They live in this subpackage, and importing it loads
none of them, so the rest of `fleet_shared` stays cheap for every other function:

- `robust_anomalies`: seasonal residuals, median/MAD z-scores and level shifts (used by the
  anomaly detector and the cost analyzer).
"""
