"""caption (recipe pairs): InternVid-style video-text pairs from a video's clips (the keyframes stage's clips.json,
cut at scene changes) -> captions.json.

For each clip, as InternVid built its 234M clip captions: a coarse caption of its middle frame and fine captions of
LECTERN_CAPTION_FRAMES frames spread over it (LECTERN_CAPTION_MODEL, any image-to-text model through transformers),
summarised into one clip caption by a language model (LECTERN_CAPTION_SUMMARY_MODEL). Then the clip is scored:
its caption against its frames in a CLIP-style joint embedding (LECTERN_CAPTION_SCORE_MODEL; the mean cosine over
the frames), and, with LECTERN_AESTHETIC_HEAD, an aesthetic score of its frames (a LAION-style predictor over the
same image embeddings). Clips below LECTERN_CAPTION_MIN_SIMILARITY or LECTERN_CAPTION_MIN_AESTHETIC stay in
captions.json with why, marked not kept; a video none of whose clips is kept is rejected. Models load once per
process, so a task of several videos (LECTERN_VIDEOS_PER_TASK: a GPU phase) loads them once.
"""
