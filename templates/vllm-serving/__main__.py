"""Serve the model a stack's `vllm-serving:` config describes, and export how to reach it."""

import pulumi

from components import VllmServing, refuse_rename
from components.config import load_config

config = load_config()
# A model.deployName change would duplicate every resource: refused before any is registered.
refuse_rename(config)
serving = VllmServing(config.model.deployName, config)

pulumi.export("endpoint", serving.endpoint)
pulumi.export("openaiBaseUrl", serving.openai_base_url)
pulumi.export("servedModelName", serving.served_model_name)
pulumi.export("verifyCommands", serving.verify_commands)
pulumi.export("externalBaseUrl", serving.external_base_url)
pulumi.export("downloadLogsCommand", serving.download_logs_command)
