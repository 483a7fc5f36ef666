"""Optional features, each a component that exists only when set: exposure, autoscaling,
monitoring, the PodDisruptionBudget and the NetworkPolicy."""
