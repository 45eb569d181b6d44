import pytest

from lectern.config import VARIABLES, Settings, configuration_markdown


def test_defaults_are_the_embedded_mode(tmp_path):
    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path)})
    assert settings.db_url == f"sqlite:///{tmp_path}/state.db"
    assert settings.store_url == f"file://{tmp_path}/store"
    assert settings.execution == "local"
    assert (settings.ssim_threshold, settings.ssim_grid, settings.keyframe_sampling) == (0.95, (8, 12), "auto")
    assert settings.judge_policy == "all" and len(settings.judge_models) == 2
    assert settings.videos_per_task == 4
    assert settings.gpu_tolerations[0]["key"] == "nvidia.com/gpu"


def test_environment_overrides_and_types(tmp_path):
    settings = Settings.from_env({
        "LECTERN_HOME": str(tmp_path), "LECTERN_EXECUTION": "kubernetes", "LECTERN_BATCH_SIZE": "7",
        "LECTERN_ALLOW_FILE_URLS": "False", "LECTERN_ASR_LANGUAGE": "", "LECTERN_GPU_NODE_SELECTOR": '{"gpu": "h200"}',
    })
    assert settings.execution == "kubernetes"
    assert settings.batch_size == 7
    assert settings.allow_file_urls is False  # "False" is false (the paper's type=bool bug)
    assert settings.asr_language is None
    assert settings.gpu_node_selector == {"gpu": "h200"}


@pytest.mark.parametrize("name,value", [("LECTERN_EXECUTION", "slurm"), ("LECTERN_ALLOW_FILE_URLS", "maybe"),
                                        ("LECTERN_BATCH_SIZE", "many"), ("LECTERN_SSIM_GRID", "4by6"),
                                        ("LECTERN_SSIM_GRID", "0x3"), ("LECTERN_KEYFRAME_SAMPLING", "all"),
                                        ("LECTERN_JUDGE_POLICY", "majority"), ("LECTERN_REWRITE_LENGTH_RATIO", "2,3"),
                                        ("LECTERN_BACKLOG_CRON", "every six hours")])
def test_bad_values_are_clear_errors(name, value):
    with pytest.raises(ValueError):
        Settings.from_env({name: value})


def test_docs_configuration_is_current():
    """docs/configuration.md is what `python -m lectern config` writes, and lists every variable."""
    from pathlib import Path

    written = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    generated = configuration_markdown()
    for name in VARIABLES:
        assert f"| `{name}` |" in generated
    assert written == generated, "docs/configuration.md is stale: python -m lectern config > docs/configuration.md"
