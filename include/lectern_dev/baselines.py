"""The naive exact keyframe method the benchmarks (bench/keyframes.py) and the frame tests compare Lectern's fast
paths with: decord decodes every frame, scikit-image computes SSIM at full size. A development tool: decord is a
test requirement, not the product's (lectern.stages.keyframes.decoding decodes with PyAV)."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from lectern.stages.keyframes.ssim import cell_means


def naive_keyframes(path: str, threshold: float,
                    grid: tuple[int, int] = (1, 1)) -> Iterator[tuple[float, float | None]]:
    """The exact method, naively: decord decodes every frame at full resolution, scikit-image's SSIM on full-size
    grayscale, the same grid. Yields (time, ssim) of each keyframe. For benchmarks and tests; it runs under
    realtime on 2 cores."""
    import decord
    from skimage.metrics import structural_similarity

    def score(a: np.ndarray, b: np.ndarray) -> float:
        value, full = structural_similarity(a, b, data_range=255, full=True)
        return float(value) if grid == (1, 1) else float(cell_means(full, grid).min())

    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    fps = reader.get_avg_fps() or 25.0
    reference = None
    for index in range(len(reader)):
        frame = reader[index].asnumpy()
        gray = (frame @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
        if reference is None:
            reference = gray
            yield 0.0, None
            continue
        value = score(reference, gray)
        if value < threshold:
            reference = gray
            yield round(index / fps, 3), round(value, 4)
