"""health_monitor: cluster, node group, capacity, alarm and endpoint health of the fleet."""
