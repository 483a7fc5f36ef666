"""Command-line tools around the vllm-serving Pulumi program (render, ...)."""
