"""Language-model serving around :mod:`jaxsuite.nn.llama`: batched chat generation (engine), an OpenAI-compatible
HTTP client (any served model) and server (``jaxsuite serve-llm``)."""
