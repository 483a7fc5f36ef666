"""The vLLM server: its Deployment, command line, Service and API key Secret."""
