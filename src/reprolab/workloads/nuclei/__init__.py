"""Nuclei segmentation (BBBC038) with a U-Net."""
