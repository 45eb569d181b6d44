"""The published corpus's record shapes, from the dataset card's examples (DAMO-NLP-SG/multimodal_textbook), to
compare Lectern's key sets and meanings with."""

from __future__ import annotations

# A sample of multimodal_textbook.json.
SAMPLE_KEYS = {"images", "texts", "text_ocr_list", "metadata", "image_num", "text_num", "token_num"}
# A video of video_meta_data/video_meta_data1.json (spellings as published; `<judge>_score` keys vary by judge).
VIDEO_META_KEYS = {"file_path", "file_size (MB)", "file_name", "video_duration", "unique", "asr_path", "asr_len",
                   "caption_path", "caption_len", "search_keyword", "title", "desc", "llm_response", "language",
                   "asr is repetive"}
# A clip of multimodal_textbook_meta_data.json (the OCR keys name their engine: ocr_<engine>, ..._deduplicates).
CLIP_KEYS = {"vid", "clip_path", "asr", "extracted_frames", "image_tokens", "token_num", "refined_asr", "ocr_image",
             "keyframe_ssim", "asr_token_num"}
END_OF_VIDEO_KEYS = {"vid", "clip_path", "image_tokens", "token_num"}


def assert_published_clip(clip: dict, engine: str = "tesseract") -> None:
    if clip["vid"] == "End of a Video":
        assert END_OF_VIDEO_KEYS <= set(clip) and clip["image_tokens"] == clip["token_num"] == 0
        return
    assert CLIP_KEYS | {f"ocr_{engine}", f"ocr_{engine}_deduplicates"} <= set(clip)
    assert all(isinstance(path, str) and path.endswith(".jpg") for path in clip["keyframe_ssim"])  # images
    assert all(isinstance(t, (int, float)) for t in clip["extracted_frames"])  # the frames compared, by time
    assert clip["token_num"] == clip["asr_token_num"] + clip["image_tokens"]


def assert_clip_level_file(records: list[dict], samples: list[dict], engine: str = "tesseract") -> None:
    """The clip-level records, one per sample: the same images in the same order, the same tokens, and an End of a
    Video record after each video's last clip (where a sample continues into the next video, between them)."""
    assert len(records) == len(samples)
    for record, sample in zip(records, samples):
        assert set(record) == {"token_num", "conversations"} and record["token_num"] == sample["token_num"]
        for clip in record["conversations"]:
            assert_published_clip(clip, engine)
        clips = record["conversations"]
        images = [path for clip in clips for path in clip.get("keyframe_ssim", [])]
        assert images == [image for image in sample["images"] if image is not None]
        for before, after in zip(clips, clips[1:]):
            if before["vid"] != "End of a Video" and after["vid"] != "End of a Video":
                assert before["vid"] == after["vid"]  # a new video only after the last one's end
