"""Pulumi components that serve a model with vLLM on Kubernetes."""
