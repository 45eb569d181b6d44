"""SSIM as scikit-image computes it by default, fast: a frame's local statistics computed once (Gray), a whole-frame
or per-cell score, and the box filter it needs without scipy."""

from __future__ import annotations

import numpy as np


class Gray:
    """A grayscale frame with the local statistics SSIM needs of it, computed once however often it is compared."""

    __slots__ = ("pixels", "values", "mean", "mean_square", "variance")

    def __init__(self, pixels: np.ndarray):
        self.pixels = pixels
        self.values = pixels.astype(np.float32)
        self.mean = box_mean(self.values, SSIM_WINDOW)
        self.mean_square = self.mean * self.mean
        self.variance = _NORM * (box_mean(self.values * self.values, SSIM_WINDOW) - self.mean_square)


SSIM_WINDOW = 7  # scikit-image's default
_NORM = np.float32(SSIM_WINDOW * SSIM_WINDOW / (SSIM_WINDOW * SSIM_WINDOW - 1))  # sample covariance
_C1, _C2 = np.float32((0.01 * 255) ** 2), np.float32((0.03 * 255) ** 2)


def ssim_map(a: np.ndarray | Gray, b: np.ndarray | Gray) -> np.ndarray:
    """The SSIM map exactly as scikit-image computes it by default (7x7 uniform window, sample covariance,
    K1 0.01, K2 0.03, data range 255), in float32: equal to it within 1e-3."""
    a, b = (x if isinstance(x, Gray) else Gray(x) for x in (a, b))
    both = a.mean * b.mean
    covariance = _NORM * (box_mean(a.values * b.values, SSIM_WINDOW) - both)
    return ((2 * both + _C1) * (2 * covariance + _C2)) / (
        (a.mean_square + b.mean_square + _C1) * (a.variance + b.variance + _C2))


def cell_similarity(a: np.ndarray | Gray, b: np.ndarray | Gray, grid: tuple[int, int] = (1, 1)) -> np.ndarray:
    """SSIM per cell of a rows x columns grid: the mean of the SSIM map over each cell (1x1: over the whole frame
    less the filter's border, as scikit-image's structural_similarity)."""
    full = ssim_map(a, b)
    if grid == (1, 1):
        pad = (SSIM_WINDOW - 1) // 2
        return np.array([[full[pad:-pad, pad:-pad].mean()]])
    return cell_means(full, grid)


def similarity(a: np.ndarray | Gray, b: np.ndarray | Gray, grid: tuple[int, int] = (1, 1)) -> float:
    """SSIM of two grayscale frames: the mean of the SSIM map over the whole frame (grid 1x1, the paper's), or its
    lowest mean over the cells of a rows x columns grid. The grid makes a local change count (a bullet point
    revealed on an otherwise unchanged slide: global 0.96, lowest of 8x12 cells 0.42 at 320 px; one digit changed
    in a title: 0.96 and 0.85) while sensor noise, spread evenly, still scores high everywhere (0.99 global, 0.98
    lowest cell)."""
    return float(cell_similarity(a, b, grid).min())


def cell_edges(length: int, parts: int) -> np.ndarray:
    return np.arange(parts) * length // parts


def cell_means(full: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The mean of an SSIM map over each cell of a rows x columns grid."""
    rows, cols = grid
    height, width = full.shape
    row_edges, col_edges = cell_edges(height, rows), cell_edges(width, cols)
    sums = np.add.reduceat(np.add.reduceat(full, row_edges, axis=0), col_edges, axis=1)
    counts = np.outer(np.diff(np.append(row_edges, height)), np.diff(np.append(col_edges, width)))
    return sums / counts


def box_mean(image: np.ndarray, window: int) -> np.ndarray:
    """The mean over a window x window box around each pixel, edges mirrored: scipy.ndimage.uniform_filter's
    default ('reflect') without importing scipy.ndimage (0.4 s of every keyframes process on this machine). Sums
    of window shifted slices, in place: exact in float32 for the integer frames, and their squares and products,
    SSIM filters."""
    before, after = window // 2, window - 1 - window // 2
    height, width = image.shape
    # np.pad(image, ..., mode="symmetric"), written out: np.pad's own bookkeeping was 40% of the filter's time.
    padded = np.empty((height + window - 1, width + window - 1), image.dtype)
    padded[before:before + height, before:before + width] = image
    padded[:before, before:before + width] = image[before - 1::-1]
    padded[before + height:, before:before + width] = image[height - 1:height - 1 - after:-1]
    padded[:, :before] = padded[:, 2 * before - 1:before - 1:-1]
    padded[:, before + width:] = padded[:, before + width - 1:before + width - 1 - after:-1]
    rows = padded[:height].copy()
    for i in range(1, window):
        rows += padded[i:i + height]
    total = rows[:, :width].copy()
    for j in range(1, window):
        total += rows[:, j:j + width]
    total *= np.float32(1 / (window * window))
    return total
