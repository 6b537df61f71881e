"""UniVL quick preset: moving_shapes (1200 pre-training videos of 3 clips with noisy transcripts; 400 captioned
fine-tuning clips; 200 validation and 200 test clips, disjoint, each with a held-out colour-shape pair), frozen
random-CNN frame features; a d-64 model (text 2, video 2, cross 1, decoder 1 layers); every variant x 3 seeds on
2 CPU cores in about 15 minutes. The MIL-NCE settings (joint_temperature, mil_anchors) were chosen on validation
R@1, as were pretrain.lr and finetune.lr (the README's "Choices made on validation")."""
from ml_collections import ConfigDict

VARIANTS = ("univl_full", "no_pretrain", "stage1_only", "no_enhanced_v", "no_cmlm", "no_cmfm", "no_align",
            "no_decoder")


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.data = ConfigDict({
        "name": "moving_shapes", "root": "", "seed": 0,
        "pretrain_videos": 1200, "clips_per_video": 3, "train_clips": 400, "test_clips": 200,
        "val_clips": 200,  # more clips of the test stream (held-out pairs), disjoint from test
        "val_fraction": 0.1,  # paper scale: the training split's videos held out for validation
        "frames_per_event": 4, "max_frames": 12, "feature_dim": 256, "misalign": 0.2,
        "max_words": 24, "vocab_size": 160, "vocab_file": "",
        # paper scale (data.name youcookii / msrvtt): the official HowTo100M files
        "howto_csv": "", "howto_captions": "", "howto_features": "",
    })
    c.model = ConfigDict({"dim": 64, "heads": 4, "ffn": 128, "text_layers": 2, "video_layers": 2,
                          "cross_layers": 1, "decoder_layers": 1, "dropout": 0.0})
    c.pretrain = ConfigDict({
        "enabled": True, "staged": True, "second_stage": "all", "stage1_steps": 300, "stage2_steps": 160, "batch_videos": 8,
        "weights": ConfigDict({"joint": 1.0, "cmlm": 1.0, "cmfm": 1.0, "align": 1.0, "decoder": 1.0}),
        "enhance_v": 0.15, "align_all_clips": False, "joint_temperature": 0.1,
        "mil_anchors": "all",
        "lr": 1e-3, "warmup": 0.1, "weight_decay": 0.01, "grad_clip": 1.0, "text_lr_mult": 1.0,
    })
    c.finetune = ConfigDict({
        "retrieval_steps": 130, "align_steps": 0, "caption_steps": 130, "batch_size": 32, "margin": 0.1,
        "lr": 1e-3, "warmup": 0.1, "weight_decay": 0.01, "grad_clip": 1.0,  # chosen on validation R@1
    })
    c.eval = ConfigDict({"beam": 3, "max_len": 20, "batch_size": 200})
    c.checkpoint_every = 500
    c.keep_checkpoints = 2
    c.log_every = 50
    c.variant = "univl_full"
    c.variants = VARIANTS
    c.seeds = (0, 1, 2)
    return c
