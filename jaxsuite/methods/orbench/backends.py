"""Where replies come from: the JAX model in this process or any OpenAI-compatible HTTP endpoint, both behind
one call, ``ask(backend, conversations, settings, cache)``, that answers only what the cache lacks and stores
each batch as soon as it is done."""
from __future__ import annotations

import functools

from jaxsuite.core.errors import ConfigError
from jaxsuite.llm.engine import ChatEngine, GenerationSettings
from jaxsuite.methods.orbench.response_cache import ResponseCache, cache_key


class JaxBackend:
    def __init__(self, engine: ChatEngine):
        self.engine, self.name = engine, engine.name

    def chat(self, conversations, settings: GenerationSettings, progress=None) -> list[str]:
        return self.engine.chat(conversations, settings, progress)


class HttpBackend:
    def __init__(self, client):
        self.client, self.name = client, client.name

    def chat(self, conversations, settings: GenerationSettings, progress=None) -> list[str]:
        return self.client.chat(conversations, max_tokens=settings.max_new_tokens, temperature=settings.temperature,
                                top_p=settings.top_p, seed=settings.seed, progress=progress)


@functools.lru_cache(maxsize=2)
def _jax_engine(model_path: str | None, batch_size: int) -> ChatEngine:
    """One loaded model per process and path (loading a GGUF takes seconds; every variant shares it)."""
    from jaxsuite.nn.llama_checkpoint import load

    return ChatEngine(load(model_path or None), batch_size=batch_size)


def make_backend(cfg):
    """A backend from a config block: ``kind`` "jax" (``model_path``: "" for SmolLM2-135M, a .gguf file or a
    HuggingFace folder; ``batch_size``) or "http" (``base_url``, ``model``, ``api_key_env``, ``concurrency``,
    ``timeout``)."""
    if cfg.kind == "jax":
        return JaxBackend(_jax_engine(cfg.model_path, int(cfg.batch_size)))
    if cfg.kind == "http":
        from jaxsuite.llm.openai_client import OpenAIChatClient

        if not cfg.base_url or not cfg.model:
            raise ConfigError("an http backend needs base_url and model")
        return HttpBackend(OpenAIChatClient(cfg.base_url, cfg.model, api_key_env=cfg.api_key_env or None,
                                            concurrency=int(cfg.concurrency), timeout=float(cfg.timeout)))
    raise ConfigError(f"backend kind {cfg.kind!r}: expected 'jax' or 'http'")


def ask(backend, conversations: list[list[dict]], settings: GenerationSettings, cache: ResponseCache,
        chunk: int = 64, progress=None) -> list[str]:
    """Replies to ``conversations``: cached ones read back, the rest generated ``chunk`` at a time and cached."""
    keys = [cache_key(backend.name, c, settings.key()) for c in conversations]
    todo = [i for i, k in enumerate(keys) if cache.get(k) is None]
    if progress is not None and len(todo) < len(keys):
        progress(len(keys) - len(todo))
    for start in range(0, len(todo), chunk):
        idx = todo[start:start + chunk]
        replies = backend.chat([conversations[i] for i in idx], settings, progress)
        cache.add([(keys[i], r) for i, r in zip(idx, replies)])
    return [cache.get(k) for k in keys]


def backend_from_spec(spec: str, default_cfg):
    """A backend named by a short spec: ``same`` (the config's ``backend``), ``jax`` / ``jax:PATH`` (a GGUF file or
    HuggingFace folder) or ``http:BASE_URL#MODEL[#API_KEY_ENV]`` (any OpenAI-compatible endpoint)."""
    import ml_collections

    if spec == "same":
        return make_backend(default_cfg)
    cfg = ml_collections.ConfigDict(default_cfg.to_dict())
    if spec == "jax" or spec.startswith("jax:"):
        cfg.kind, cfg.model_path = "jax", spec[4:]
        return make_backend(cfg)
    if spec.startswith("http:"):
        parts = spec[5:].split("#")
        if len(parts) not in (2, 3):
            raise ConfigError(f"backend spec {spec!r}: expected http:BASE_URL#MODEL[#API_KEY_ENV]")
        cfg.kind, cfg.base_url, cfg.model = "http", parts[0], parts[1]
        cfg.api_key_env = parts[2] if len(parts) == 3 else ""
        return make_backend(cfg)
    raise ConfigError(f"backend spec {spec!r}: expected same, jax[:PATH] or http:BASE_URL#MODEL[#API_KEY_ENV]")
