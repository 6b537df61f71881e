"""SPAFormer (Xu et al., 3DV 2025): sequence-guided transformer for 3D part assembly. See README.md."""
