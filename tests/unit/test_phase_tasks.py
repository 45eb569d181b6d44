from lectern.config import Settings
from lectern.phase_tasks import task_groups

VIDEOS = [f"v{i}" for i in range(7)]


def test_cpu_phases_map_one_video_per_task_by_default_and_gpu_phases_group(tmp_path):
    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path)})
    assert task_groups(settings, "keyframes", VIDEOS) == [[v] for v in VIDEOS]
    assert task_groups(settings, "transcribe", VIDEOS) == [VIDEOS[:4], VIDEOS[4:]]


def test_cpu_videos_per_task_groups_every_cpu_phase_and_keeps_every_video_once(tmp_path):
    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path), "LECTERN_CPU_VIDEOS_PER_TASK": "3",
                                  "LECTERN_VIDEOS_PER_TASK": "2"})
    for stage in ("download", "keyframes", "ocr", "assemble"):
        groups = task_groups(settings, stage, VIDEOS)
        assert [len(g) for g in groups] == [3, 3, 1]
        assert [v for g in groups for v in g] == VIDEOS
    assert [len(g) for g in task_groups(settings, "judge", VIDEOS)] == [2, 2, 2, 1]
    assert task_groups(settings, "ocr", []) == []


def test_a_run_chooses_the_clip_segmenter_of_its_keyframes_processes():
    from lectern.phase_tasks import trigger_environment

    assert trigger_environment("keyframes", {"clip_segmenter": "scene", "force": True}) == {
        "LECTERN_CLIP_SEGMENTER": "scene"}
    assert trigger_environment("keyframes", {"clip_segmenter": None}) == {}
    assert trigger_environment("ocr", {"clip_segmenter": "scene"}) == {}  # not a setting of that phase
