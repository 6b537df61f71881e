"""Whistle quick preset: synth_lang10 (8 seen languages, unseen pl), a tiny Conformer, every variant x 3 seeds
in under 25 minutes on 2 CPU cores (synthesis included on the first run, cached after).

Few-shot fine-tuning: 120 Polish utterances (114 after the CTC-length filter, 74 s of speech), the same steps and
lr for every variant.
"""
from ml_collections import ConfigDict

VARIANTS = ("phoneme_pretrain", "subword_pretrain", "ssl_pretrain", "monolingual")


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.dataset = "synth_lang10"
    c.seen_languages = ("en", "es", "fr", "it", "nl", "ru", "sv", "tr")
    c.unseen_languages = ("pl",)
    c.data = ConfigDict({
        "root": "", "seed": 0, "seen_train": 250, "seen_test": 30, "unseen_train": 120, "unseen_test": 60,
        "max_frames": 128, "max_label_len": 48, "bpe_vocab": 400, "lm_sentences": 2000,
        "synth": ConfigDict({"vocab_size": 1000, "min_words": 1, "max_words": 3, "rate_range": (140, 220),
                             "pitch_range": (30, 70), "snr_db_range": (10.0, 30.0)}),
    })
    c.model = ConfigDict({"in_dim": 80, "dim": 96, "num_blocks": 2, "heads": 4, "kernel": 15, "ff_mult": 4,
                          "dropout": 0.1, "input_dropout": 0.1, "vgg_channels": (8, 16),
                          "compute_dtype": "float32"})  # bfloat16: mixed precision (accelerators)
    # SpecAugment as CAT's config has it (2 x 35 % frequency masks) but 2 time masks: utterances here are
    # about a second long, not CV's 5 s.
    c.spec_augment = ConfigDict({"freq_masks": 2, "freq_width": 0.35, "time_masks": 2, "time_width": 0.05})
    c.ssl = ConfigDict({"groups": 2, "entries": 64, "code_dim": 64, "final_dim": 64, "mask_prob": 0.065,
                        "mask_span": 5, "negatives": 20, "temperature": 0.1, "diversity_weight": 0.1,
                        "feature_penalty": 10.0, "tau_start": 2.0, "tau_end": 0.5, "tau_decay": 0.995})
    c.pretrain = ConfigDict({"kind": "phoneme", "steps": 300, "batch_size": 16,
                             "optim": ConfigDict({"schedule": "noam", "lr": 2e-3, "warmup": 100, "clip_norm": 5.0,
                                                  "weight_decay": 1e-6, "b1": 0.9, "b2": 0.98})})
    c.finetune = ConfigDict({"steps": 120, "batch_size": 16,
                             "optim": ConfigDict({"schedule": "constant", "lr": 1e-3, "warmup": 15,
                                                  "clip_norm": 5.0, "weight_decay": 1e-6, "b1": 0.9, "b2": 0.98})})
    c.decode = ConfigDict({"beam": 8, "lm_weight": 1.0, "word_bonus": 0.0})
    c.eval_fleurs = True
    c.eval_batch_size = 64
    c.checkpoint_every = 200
    c.keep_checkpoints = 2
    c.log_every = 50
    c.variant = "phoneme_pretrain"
    c.variants = VARIANTS
    c.seeds = (0, 1, 2)
    return c
