"""A client for OpenAI-compatible chat-completion servers (vLLM, llama.cpp server, hosted APIs, ``jaxsuite
serve-llm``): concurrent requests, retries with exponential backoff and jitter, timeouts.

The API key is read from the environment variable the caller names (``api_key_env``), never from a config value
or argument, and is never logged or put in an error message.
"""
from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from jaxsuite.core.errors import UserError

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class ChatClientError(UserError):
    """A request failed for good (a 4xx other than the retried ones, or retries exhausted)."""


class OpenAIChatClient:
    def __init__(self, base_url: str, model: str, *, api_key_env: str | None = None, timeout: float = 120.0,
                 max_retries: int = 5, backoff: float = 1.0, max_backoff: float = 30.0, concurrency: int = 8):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = model
        headers = {"Content-Type": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise UserError(f"environment variable {api_key_env} (the API key for {self.base_url}) is not set")
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(headers=headers, timeout=timeout)
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.concurrency = concurrency

    def close(self):
        self._client.close()

    def complete(self, messages: list[dict], *, max_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
                 seed: int | None = None) -> str:
        """The assistant reply to one conversation."""
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature,
                "top_p": top_p}
        if seed is not None:
            body["seed"] = seed
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.max_retries + 1):
            try:
                resp = self._client.post(url, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as err:
                problem = f"{type(err).__name__}"
            else:
                if resp.status_code == 200:
                    try:
                        return resp.json()["choices"][0]["message"]["content"] or ""
                    except (ValueError, KeyError, IndexError, TypeError):
                        raise ChatClientError(
                            f"{url}: the reply is not a chat completion: {resp.text[:200]!r}") from None
                if resp.status_code not in RETRY_STATUS:
                    raise ChatClientError(f"{url}: HTTP {resp.status_code}: {resp.text[:200]!r}")
                problem = f"HTTP {resp.status_code}"
                retry_after = resp.headers.get("retry-after")
                if retry_after and retry_after.replace(".", "", 1).isdigit() and attempt < self.max_retries:
                    time.sleep(min(float(retry_after), self.max_backoff))
                    continue
            if attempt < self.max_retries:
                delay = min(self.max_backoff, self.backoff * 2 ** attempt)
                time.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311 -- jitter, not security
        raise ChatClientError(f"{url}: gave up after {self.max_retries + 1} attempts (last: {problem})")

    def chat(self, conversations: list[list[dict]], *, max_tokens: int, temperature: float = 0.0,
             top_p: float = 1.0, seed: int | None = None, progress=None) -> list[str]:
        """Replies to many conversations, ``concurrency`` requests in flight, in input order."""
        def one(conv):
            out = self.complete(conv, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
            if progress is not None:
                progress(1)
            return out

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, conversations))
