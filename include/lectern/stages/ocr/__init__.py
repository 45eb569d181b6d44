"""ocr: tesseract on every keyframe, in parallel -> ocr.json (keyframe key -> kept text, and why text was dropped).

Keyframes are read by one tesseract process per core, each over its share of them (their grey copies) from a list
file (the model loads once per process, not once per keyframe), with one thread each (OMP_THREAD_LIMIT=1: faster on
small machines than tesseract's own threads). Words below LECTERN_OCR_MIN_CONFIDENCE are dropped (a bullet glyph
read as "e" at 45, say), as are lone glyphs; then, in time order, a keyframe's text is dropped when it is
meaningless (fewer than LECTERN_OCR_MIN_CHARS letters or digits, or mostly symbols) or repeats the previous kept
text (LECTERN_OCR_REPEAT_SIMILARITY, word-level): a revealed bullet adds its line, not the whole slide again.
With LECTERN_OCR_ENGINE=rapidocr, RapidOCR's PP-OCRv4 models (ONNX, shipped in its wheel) read them instead, and
with LECTERN_OCR_ENGINE=vlm a vision-language model (batched), each with the same filters.
"""
