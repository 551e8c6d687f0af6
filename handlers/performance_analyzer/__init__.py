"""performance_analyzer: per-cluster utilisation, bottlenecks and week-over-week trends."""
