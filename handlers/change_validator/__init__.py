"""change_validator: validates every EKS change against the health the cluster had before it."""
