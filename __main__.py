"""vllm-serving: read the stack's config, build the served model, export how to reach it."""

import pulumi

from components import VllmServing, load_config, refuse_rename

config = load_config()
refuse_rename(config)
serving = VllmServing(config.model.deployName, config)

pulumi.export("endpoint", serving.endpoint)
pulumi.export("openaiBaseUrl", serving.openai_base_url)
pulumi.export("servedModelName", serving.served_model_name)
pulumi.export("verifyCommands", serving.verify_commands)
pulumi.export("externalBaseUrl", serving.external_base_url)
pulumi.export("downloadLogsCommand", serving.download_logs_command)
