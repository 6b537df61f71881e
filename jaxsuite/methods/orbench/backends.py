"""Where replies come from: the JAX model in this process or any OpenAI-compatible HTTP endpoint, both behind
one call, ``ask(backend, conversations, settings, cache)``, that answers only what the cache lacks and stores
each batch as soon as it is done."""
from __future__ import annotations

import functools
import json
import math

import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.llm.engine import ChatEngine, GenerationSettings
from jaxsuite.methods.orbench.response_cache import ResponseCache, cache_key


class JaxBackend:
    def __init__(self, engine: ChatEngine):
        self.engine, self.name = engine, engine.name
        self.chunk = engine.batch_size  # one compiled batch per cached chunk

    def chat(self, conversations, settings: GenerationSettings, progress=None) -> list[str]:
        return self.engine.chat(conversations, settings, progress)


class HttpBackend:
    served = True  # an OpenAI-compatible endpoint: its model family's keyword rule applies (refusal.family_for)

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
        chunk: int = 64, progress=None, draws: list[int] | None = None) -> list[str]:
    """Replies to ``conversations``: cached ones read back, the rest generated in even chunks of at most
    ``chunk``, each cached as soon as it is done. ``draws`` numbers repeated samples of the same conversation
    (temperature > 0), which are otherwise one cache entry."""
    keys = [cache_key(backend.name, c, settings.key() if draws is None else {**settings.key(), "draw": d})
            for c, d in zip(conversations, draws or [None] * len(conversations))]  # draws: samples of one prompt
    todo = [i for i, k in enumerate(keys) if cache.get(k) is None]
    if progress is not None and len(todo) < len(keys):
        progress(len(keys) - len(todo))
    if todo:
        chunk = getattr(backend, "chunk", chunk)
        chunk = math.ceil(len(todo) / math.ceil(len(todo) / chunk))
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


def ask_choice(backend, conversations: list[list[dict]], choices: list[str], cache: ResponseCache,
               progress=None) -> np.ndarray:
    """``[N, C]`` log-likelihoods of ``choices`` as the start of each reply (multiple-choice scoring; JAX
    backends only: an OpenAI-compatible chat API cannot score given continuations). Cached like replies."""
    if not hasattr(backend, "engine"):
        raise ConfigError("judge.mode 'choice' scores continuations and needs a jax backend; use 'generate' "
                          "for an http judge")
    settings = {"mode": "choice", "choices": list(choices)}
    keys = [cache_key(backend.name, c, settings) for c in conversations]
    todo = [i for i, k in enumerate(keys) if cache.get(k) is None]
    for start in range(0, len(todo), backend.chunk):
        idx = todo[start:start + backend.chunk]
        scores = backend.engine.score_choices([conversations[i] for i in idx], list(choices))
        cache.add([(keys[i], json.dumps(row.tolist())) for i, row in zip(idx, scores)])
    if progress is not None:
        progress(len(keys))
    return np.asarray([json.loads(cache.get(k)) for k in keys]).reshape(len(keys), len(choices))


def choose(backend, conversations: list[list[dict]], labels: list[str], content_free: list[list[dict]],
           cache: ResponseCache, progress=None) -> np.ndarray:
    """Index of the likeliest of ``labels`` as each reply's start, with contextual calibration (Zhao et al.,
    "Calibrate Before Use", ICML 2021): the label log-probabilities minus their mean over ``content_free``
    conversations (the same template around "N/A", "" and "[MASK]"), which removes the model's prior for a
    label."""
    scores = _log_normalise(ask_choice(backend, conversations, labels, cache, progress))
    prior = _log_normalise(ask_choice(backend, content_free, labels, cache)).mean(axis=0)
    return np.argmax(scores - prior, axis=1)


def _log_normalise(scores: np.ndarray) -> np.ndarray:
    """Log-probabilities over the choices (each row's log-sum-exp subtracted)."""
    top = scores.max(axis=1, keepdims=True)
    return scores - top - np.log(np.exp(scores - top).sum(axis=1, keepdims=True))
