"""The face filter: keyframes that mostly show a person (a talking head) are not textbook images.

scikit-image's bundled LBP frontal-face cascade runs on the 320-px grayscale frame the SSIM step already made;
the share of the frame covered by faces is compared with LECTERN_FACE_MAX_AREA (the published corpus used 0.04).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _detector():
    from skimage import data
    from skimage.feature import Cascade

    return Cascade(data.lbp_frontal_face_cascade_filename())


def face_area_ratio(gray: np.ndarray) -> float:
    """Share of the frame inside detected frontal faces (boxes may overlap: capped at 1)."""
    height, width = gray.shape
    side = min(height, width)
    faces = _detector().detect_multi_scale(img=gray, scale_factor=1.2, step_ratio=1, min_size=(20, 20),
                                           max_size=(side, side))
    return min(1.0, sum(face["width"] * face["height"] for face in faces) / float(height * width))
