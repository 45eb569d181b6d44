"""Every stage's spec against everything that follows from it: the recipes, the artifacts stages read and record,
the settings, each phase DAG's per-video task (pool, retries, trigger form), the pods, the pools and the docs."""

from dataclasses import fields

import pytest

from lectern.config import Settings
from lectern.phase_tasks import pool_definitions
from lectern.pipeline import GPU_STAGES, SPECS, pool_for, run_variables
from lectern.pods import needs_gpu
from lectern.recipes import RECIPES, STAGES
from tests.conftest import ROOT

SETTING_FIELDS = {f.name for f in fields(Settings)}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_stage_is_in_a_recipe_and_reads_what_earlier_stages_record():
    assert set(STAGES) == {stage for recipe in RECIPES.values() for stage in recipe.stages}
    for name, spec in SPECS.items():
        assert spec.name == name and spec.produces, name
        for stage, artifact in spec.needs:
            assert artifact in SPECS[stage].produces, f"{name} needs {stage}/{artifact}, which {stage} never records"
            for recipe in RECIPES.values():
                if name in recipe.stages and stage in recipe.stages:
                    assert recipe.stages.index(stage) < recipe.stages.index(name), f"{name} runs before {stage}"
        assert set(spec.settings) <= SETTING_FIELDS, name
        for run in spec.run_settings:
            assert run.setting in spec.settings, f"{name}: a run may choose {run.setting}, which its version ignores"


@pytest.mark.parametrize("stage", STAGES)
def test_the_phase_dag_runs_the_stage_as_its_spec_says(dagbag, stage):
    spec = SPECS[stage]
    dag = dagbag.dags[f"lectern_{stage}"]
    task = dag.get_task("run_stage")
    assert (task.pool, task.retries) == (pool_for(stage), spec.retries)
    assert pool_for(stage) == (spec.pool or ("lectern_gpu" if spec.gpu else "default_pool"))
    for run, variable in zip(spec.run_settings, run_variables(stage).values()):
        param = dag.params.get_param(run.param)  # the trigger form offers it, its default the configured value
        assert param.value == getattr(Settings.from_env({}), run.setting) and variable.startswith("LECTERN_")
    assert needs_gpu(stage, Settings.from_env({})) == spec.gpu == (stage in GPU_STAGES)


def test_every_pool_a_stage_takes_exists():
    pools = set(pool_definitions(Settings.from_env({}))) | {"default_pool"}
    assert {pool_for(stage) for stage in STAGES} <= pools


def test_the_docs_name_every_stage():
    readme = (ROOT / "README.md").read_text()
    for stage in STAGES:
        assert (ROOT / "dags" / f"lectern_{stage}.py").is_file()
        assert stage in readme, f"the README's phases do not show {stage}"


def test_every_artifact_has_a_file_of_its_own():
    """One key rule for every stage's artifacts (StageSpec.key): the file its spec names, in the video's folder.
    No two artifacts share a file, and a stage asked for an artifact it does not record says which it records."""
    files = [file for spec in SPECS.values() for file in spec.produces.values()]
    assert len(files) == len(set(files))
    assert SPECS["transcribe"].key("v1", "asr") == "videos/v1/asr.json"
    assert SPECS["download"].key("v1", "cover", extension="png") == "videos/v1/cover.png"
    with pytest.raises(ValueError, match="records no artifact 'captions'; it records asr"):
        SPECS["transcribe"].key("v1", "captions")
