"""scaling_optimizer: node group sizes, scaler settings and Lambda memory from measured history."""
