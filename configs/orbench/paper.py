"""OR-Bench paper preset: the paper's evaluation settings (§4.1, App. S) on the whole of Hard-1K (1,319 prompts)
and Toxic (655): temperature 0, up to 1000 new tokens, refusal by the LLM judge's official prompt in its
official (generate) mode on every reply, keywords beside it; and the pipeline at the paper's scale for one
category (100 calls of 20 seeds = 2000, 5 rewrites each, temperature 1.0 / 0.7, full nucleus).

The paper's judge and moderators are GPT-4-turbo, Llama-3-70b and Gemini-1.5-pro; point them at served models:
  --set judge.backend=http:https://api.openai.com/v1#gpt-4-turbo-2024-04-09#OPENAI_API_KEY
  --set 'pipeline.ensemble=("http:URL1#MODEL1#KEY1","http:URL2#MODEL2#KEY2","http:URL3#MODEL3#KEY3")'
and evaluate any served model with --set backend.kind=http --set backend.base_url=... --set backend.model=...
Sized for a GPU or a served model: with SmolLM2-135M in JAX on 2 CPU cores it takes hours.
"""
from jaxsuite.core.config import load_config


def get_config():
    c = load_config("orbench", "quick")
    c.unlock()
    c.eval.update({"hard_prompts": 0, "toxic_prompts": 0, "max_new_tokens": 1000, "detector": "judge",
                   "val_hard_prompts": 0, "val_toxic_prompts": 0, "report_validation": False})
    c.judge.update({"mode": "generate", "sample": 0, "max_new_tokens": 1000})
    c.pipeline.update({"seed_calls": 100, "seeds": 0, "top_p": 1.0, "seed_max_tokens": 1000,
                       "rewrite_max_tokens": 1000, "moderation_max_tokens": 1000, "moderation_mode": "generate",
                       "answer_max_tokens": 1000, "min_rejections": 3})
    c.backend.batch_size = 32
    c.lock()
    return c
