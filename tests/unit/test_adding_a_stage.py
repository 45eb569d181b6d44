"""README's "Adding a stage" is true: in a copy of the tree, a new stage added by its steps alone (its folder, its
line in a test-only recipe, its DAG file) runs from the CLI after a real download, records its artifact where its
spec says, ends in a recorded state, and its DAG parses beside the others. Nothing else is touched."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

STAGE_DOC = '"""echo: reads the probe download recorded and records its duration (a stage for the README\'s test)."""\n'
STAGE_SPEC = '''
from lectern.stage_types import StageSpec

SPEC = StageSpec(
    name="echo",
    version="1",
    settings=("min_duration_s",),
    needs=(("download", "probe"),),
    produces={"echo": "echo.json"},
)
'''
STAGE_RUN = '''
from lectern.config import Settings
from lectern.stage_types import StageResult, VideoRecord
from lectern.stages.echo.spec import SPEC
from lectern.store import Store


def run(video: VideoRecord, store: Store, settings: Settings) -> StageResult:
    duration = store.get_json(video.artifact("download", "probe"))["duration_s"]
    if duration < settings.min_duration_s:
        return StageResult.rejected("too short to echo", {"duration_s": duration})
    key = store.put_json(SPEC.key(video.id, "echo"), {"video_id": video.id, "duration_s": duration})
    return StageResult.succeeded({"echo": key}, {"duration_s": duration})
'''
STAGE_DAG = '''"""
### Lectern: echo

The probe's duration -> `videos/{id}/echo.json`.
"""

from airflow.sdk import dag

from lectern_airflow import claim_batch, dag_args, phase_params, phase_schedule, publish, run_videos


@dag(schedule=phase_schedule("echo"), params=phase_params(), doc_md=__doc__, **dag_args("echo"))
def lectern_echo():
    claimed = claim_batch("echo")
    publish("echo", claimed, run_videos("echo", claimed))


lectern_echo()
'''


def follow_the_readme(tree):
    """The README's steps, and only those, in a copy of include/ and dags/."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "include", tree / "include", ignore=ignore)
    shutil.copytree(ROOT / "dags", tree / "dags", ignore=ignore)
    folder = tree / "include/lectern/stages/echo"  # 1. the stage's folder
    folder.mkdir()
    (folder / "__init__.py").write_text(STAGE_DOC)
    (folder / "spec.py").write_text(STAGE_DOC + STAGE_SPEC)
    (folder / "run.py").write_text(STAGE_DOC + STAGE_RUN)
    recipes = tree / "include/lectern/recipes.py"  # 2. the stage in a (test-only) recipe
    text = recipes.read_text()
    line = '    "echo": Recipe(("download", "echo"), release=None),\n'
    recipes.write_text(re.sub(r"(RECIPES: dict\[str, Recipe\] = \{\n(?:    .*\n)*?)(\})", lambda m: m[1] + line + m[2],
                              text, count=1))
    assert line in recipes.read_text()
    (tree / "dags/lectern_echo.py").write_text(STAGE_DAG)  # 3. its DAG file


def lectern(tree, env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lectern", *args], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=300)


def test_a_stage_added_by_the_readme_runs_and_its_dag_parses(tmp_path, demo_corpus):
    tree = tmp_path / "tree"
    follow_the_readme(tree)
    videos = tmp_path / "lectures"
    videos.mkdir()
    shutil.copy(demo_corpus[0] / "photosynthesis.mp4", videos / "photosynthesis.mp4")
    home = tmp_path / "home"
    (home / "subjects").mkdir(parents=True)
    (home / "subjects/echo.yaml").write_text(
        f"subject: Echo\nrecipe: echo\ncourses:\n  - name: Biology\n    points:\n"
        f"      - name: Cells\n        videos_dir: {videos}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LECTERN_", "AIRFLOW_"))}
    env.update(PYTHONPATH=f"{tree / 'include'}{os.pathsep}{tree}", LECTERN_HOME=str(home),
               LECTERN_STORE_URL=f"file://{home / 'store'}")
    where = subprocess.run([sys.executable, "-c", "import lectern.recipes as r; print(r.__file__, r.STAGES)"],
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(tree)) and "'echo'" in where  # the copy runs, with the new stage

    for args in (("db", "upgrade"), ("store", "init"), ("discover", "--subject", "Echo"),
                 ("stage", "download", "--video-id", "photosynthesis"),
                 ("stage", "echo", "--video-id", "photosynthesis")):
        done = lectern(tree, env, *args)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    status = json.loads(lectern(tree, env, "status", "--json", "photosynthesis").stdout)
    stages = {row["stage"]: row for row in status}
    assert set(stages) == {"download", "echo"}  # the recipe's stages, and no textbook stage
    assert stages["echo"]["status"] == "succeeded"
    assert stages["echo"]["artifacts"] == {"echo": "videos/photosynthesis/echo.json"}  # where its spec says
    echoed = json.loads((home / "store/videos/photosynthesis/echo.json").read_text())
    assert echoed["duration_s"] > 20

    parse = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(tree / 'dags')!r})
        print(json.dumps({{"errors": bag.import_errors, "dags": sorted(bag.dag_ids),
                           "tasks": [t.task_id for t in bag.dags["lectern_echo"].tasks]}}))
    """)], env=env, capture_output=True, text=True, timeout=300)
    assert parse.returncode == 0, parse.stderr[-3000:]
    parsed = json.loads(parse.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {} and "lectern_echo" in parsed["dags"]
    assert "run_stage" in parsed["tasks"]
