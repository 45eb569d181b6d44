"""keyframes: ASR segments -> clips; SSIM keyframes (decoding.py, selection.py: the paper's Algorithm 1, fast path)
-> JPEGs + clips.json; then the optional clip-level visual-text filter (lectern.clip_filter).

Frames are sampled from the stream's I-frames where they are dense enough (else by scanning: the I-frames, and
every frame of the GOPs in which something changes), compared denoised in grayscale at LECTERN_SSIM_WIDTH with grid
SSIM, leaving out what moves all the time (a webcam inset, a playing video); the reference carries across clip
boundaries, so a slide that stays on screen through several clips yields one image (in the clip where it
appeared), and a slide shown again later yields none. Kept frames are stored at full resolution as
``{vid}@{start}_{end}#{n}.jpg`` as they are found: memory does not grow with their number.
"""
