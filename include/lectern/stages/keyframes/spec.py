"""The keyframes stage's facts: what the rest of Lectern knows about it (lectern.pipeline reads them)."""

from lectern.stage_types import RunSetting, StageSpec

SPEC = StageSpec(
    name="keyframes",
    # 2: face keyframes kept and marked; the frames compared per clip recorded; 3: motion-masked, denoised;
    # 4: filmed videos registered, a webcam moving over the slide no longer a change
    version="4",
    settings=("clip_min_s", "clip_max_s", "clip_segmenter", "scene_method", "scene_threshold", "scene_min_s",
              "scene_fps",
              "keyframe_sampling", "keyframe_max_gop_s", "keyframe_interval_s",
              "ssim_threshold", "ssim_width", "ssim_grid", "keyframe_dedup", "face_max_area", "clip_filter_model",
              "clip_filter_min_similarity"),
    needs=(("download", "source"), ("download", "probe"), ("transcribe", "asr"), ("judge", "refined_asr")),
    produces={"clips": "clips.json"},
    run_settings=(RunSetting("clip_segmenter", "clip_segmenter", "Clip segmenter",
                              "asr: clips close at sentence ends (the paper); scene: clips cut at scene changes "
                              "(LECTERN_SCENE_* settings).", ("asr", "scene")),),
)
