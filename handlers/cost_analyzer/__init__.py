"""cost_analyzer: cost by service, account and cluster; CUR detail; anomalies; rightsizing."""
