"""The vllm-serving policy pack (see __main__.py); a package so that tests can import policy.rules."""
