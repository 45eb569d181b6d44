"""judge: is this video worth a textbook? Embedding relevance first, then the LLM judges, then the rewrite.

1. Relevance: the best cosine similarity between a knowledge point ("subject: point") and either the video's
   title + description or its transcript (sentence embeddings); below LECTERN_JUDGE_MIN_RELEVANCE the video is
   rejected with its score, and no LLM time is spent on it.
2. LLM judges (LECTERN_JUDGE_MODELS, judging.py): relevance, knowledge density and transcription quality,
   0-10 each, combined by LECTERN_JUDGE_POLICY.
3. Rewrite (LECTERN_REWRITE_MODEL, rewrite.py): refined_asr.json, segment by segment, with a drift guard.

judge.json holds every score and raw answer, named as in the published ``video_meta_data``.
"""
