"""Optional features, each a component that exists only when set: exposure, autoscaling,
monitoring, and what may disrupt the server (PodDisruptionBudget, NetworkPolicy)."""
