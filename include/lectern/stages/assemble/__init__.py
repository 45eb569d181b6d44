"""assemble: interleave each clip's keyframes, OCR and ASR into samples in the published corpus format.

Within a clip, in time order: its keyframes (image positions), then one text position holding the ASR
(``texts``; an empty string where the clip has OCR but nothing was said) and OCR + ASR (``text_ocr_list``).
Clips are concatenated into samples up to LECTERN_SAMPLE_TOKEN_BUDGET tokens (each image counts
LECTERN_IMAGE_TOKENS, text counts real tokenizer tokens): ``image_num`` images, ``text_num`` ASR tokens,
``token_num`` = text_num + image tokens, as published. A sample needs an image (the paper's loader asserts one),
so a run of clips without keyframes that would close alone is counted and left out.

Packing and token counting live in lectern.packing, which releases use too. Also writes the clip-level file
(each clip in the published ``multimodal_textbook_meta_data`` shape, closing with its ``End of a Video`` record)
and ``video_meta_data.json``. A release packs the clip-level records of all its videos again
(LECTERN_SAMPLE_PACKING=release: a sample may continue into the next video, as published); the samples written
here are this video's own (LECTERN_SAMPLE_PACKING=video).
"""
