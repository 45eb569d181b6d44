import pytest

from lectern.config import Settings
from lectern.discovery import TaxonomyError, load_taxonomy, search_point
from lectern.demo.corpus import subject_yaml


def write(tmp_path, text):
    path = tmp_path / "subject.yaml"
    path.write_text(text)
    return path


def test_taxonomy_four_levels(tmp_path):
    subject, points = load_taxonomy(write(tmp_path, """
subject: Biology
courses:
  - name: Cell Biology
    subcourses:
      - name: Energy
        points: [Photosynthesis, {name: Respiration, query: cellular respiration explained}]
    points: [Mitosis]
"""))
    assert subject == "Biology"
    by_path = {p.path: p for p in points}
    assert set(by_path) == {"Cell Biology / Mitosis", "Cell Biology / Energy / Photosynthesis",
                            "Cell Biology / Energy / Respiration"}
    assert by_path["Cell Biology / Energy / Photosynthesis"].query == "Photosynthesis Cell Biology lecture"
    assert by_path["Cell Biology / Energy / Respiration"].query == "cellular respiration explained"


@pytest.mark.parametrize("text,message", [
    ("courses: []", "subject"),
    ("subject: Biology", "courses"),
    ("subject: B\ncourses: [{points: [a]}]", "name"),
    ("subject: B\ncourses: [{name: C, points: [{query: q}]}]", "point"),
    ("subject: B\ncourses: [{name: C, points: [a, a]}]", "duplicate"),
    ("subject: B\ncourses: [{name: C, points: [{name: a, urls: 5}]}]", "urls"),
    ("subject: [unclosed", "YAML"),
])
def test_bad_taxonomies_are_clear_errors(tmp_path, text, message):
    with pytest.raises(TaxonomyError, match=message):
        load_taxonomy(write(tmp_path, text))


def test_missing_subject_file(tmp_path):
    with pytest.raises(TaxonomyError, match="no such subject file"):
        load_taxonomy(tmp_path / "nope.yaml")


def test_search_explicit_urls_over_loopback(corpus_server, tmp_path):
    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path)})
    found = search_point("ignored", [f"{corpus_server.base_url}/photosynthesis.mp4",
                                     f"{corpus_server.base_url}/photosynthesis.mp4",
                                     f"{corpus_server.base_url}/cell_division.mp4"], settings)
    assert [v.id for v in found] == ["photosynthesis", "cell_division"]  # deduplicated by id
    assert found[0].url.endswith("/photosynthesis.mp4") and found[0].title == "photosynthesis"


def test_demo_taxonomy_is_valid(tmp_path):
    subject, points = load_taxonomy(write(tmp_path, subject_yaml("http://127.0.0.1:1")))
    assert subject == "Biology" and len(points) == 3 and all(p.urls for p in points)
