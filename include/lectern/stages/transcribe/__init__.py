"""transcribe: WhisperX (VAD + batched faster-whisper) and wav2vec2 word alignment -> asr.json, then the ASR
quality gates (asr_quality.py): too short, too little speech, loops, impossible speaking rates, filler.

Where alignment fails for a segment (numbers, symbols, a language without an alignment model) the segment
keeps its own times; the share of segments that could not be aligned is a metric.
"""
