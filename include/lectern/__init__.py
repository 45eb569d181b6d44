"""Lectern: instructional videos in, a multimodal textbook (keyframes + ASR + OCR) out."""

__version__ = "0.1.0"
