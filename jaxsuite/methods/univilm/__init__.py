"""UniVL (Luo et al. 2020): unified video-language pre-training for retrieval and captioning."""
