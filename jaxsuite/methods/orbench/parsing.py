"""Parsing the generation pipeline's model outputs, as the official scripts do (toxic_prompt_generator/,
rewritter/, moderator/): a greedy per-line ``[[...]]`` match, falling back to ``«...»`` and then to numbered
lines; brackets removed and leading numbering stripped."""
from __future__ import annotations

import re

from jaxsuite.methods.orbench.templates import CATEGORIES


def parse_prompt_list(text: str) -> list[str]:
    """Prompts listed in a generator's reply (seed or rewrite), in order, empty ones dropped."""
    found = re.findall(r"\[\[.+\]\]", text)
    if not found:
        found = re.findall(r"«.+»", text)
    if not found:
        found = [x.lstrip('0123456789.- "«').rstrip(' "«') for x in re.findall(r"\d\..+", text)]
    cleaned = [x.replace("[", "").replace("]", "").lstrip("0123456789.- ").strip() for x in found]
    return [x for x in cleaned if x]


def parse_moderation(text: str) -> tuple[bool, str | None]:
    """(is_toxic, category): safe when "none of the above" appears anywhere (the official rule); the category
    from the last ``[[n. label]]`` when it names one."""
    toxic = "none of the above" not in text.lower()
    found = re.findall(r"\[\[(.*?)\]\]", text)
    category = None
    if found:
        label = found[-1].lower()
        category = next((c for c in CATEGORIES if c in label), None)
    return toxic, category
