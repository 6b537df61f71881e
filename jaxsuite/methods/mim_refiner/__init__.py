"""MIM-Refiner (Alkin et al., arXiv 2402.10093): nearest-neighbour contrastive heads on intermediate blocks
of a masked-image-model ViT refine its representation. See README.md in this folder."""
