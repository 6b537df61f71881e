"""NDDR-CNN (Gao et al., CVPR 2019): layerwise multi-task feature fusion by neural discriminative
dimensionality reduction. See README.md in this folder for the equation -> function map."""
