"""An append-only JSONL cache of model replies keyed by (model, prompt hash, generation settings), so an
interrupted evaluation or pipeline stage resumes without asking any prompt twice and without losing answers.

Each line is one finished reply, written and flushed (fsync) as soon as its batch is done; a line cut short by
a kill is ignored on reading. The key hashes the whole conversation (system prompt included); prompts are
stored only as their hash, so toxic prompts never land in the cache file in clear text.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def cache_key(model: str, messages: list[dict], settings: dict) -> str:
    blob = json.dumps({"model": model, "messages": messages, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._replies: dict[str, str] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                    self._replies[rec["key"]] = rec["reply"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut short by a kill mid-write

    def __len__(self) -> int:
        return len(self._replies)

    def get(self, key: str) -> str | None:
        return self._replies.get(key)

    def add(self, items: list[tuple[str, str]]) -> None:
        """Append (key, reply) pairs and flush them to disk."""
        with self.path.open("a") as f:
            if f.tell() and not self._ends_with_newline():
                f.write("\n")  # after a torn last line, start a fresh one
            for key, reply in items:
                f.write(json.dumps({"key": key, "reply": reply}) + "\n")
                self._replies[key] = reply
            f.flush()
            os.fsync(f.fileno())

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"
