import pytest

from lectern.config import Settings
from lectern.discovery import TaxonomyError, load_subject, load_taxonomy, search_point
from lectern_dev.corpus import subject_yaml
from tests.unit.stages.test_download_guard import redirect_to_corpus  # noqa: F401 - a fixture


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
    assert load_subject(tmp_path / "subject.yaml").prefilter is None  # the default: only search results are judged
    write(tmp_path, "subject: B\nprefilter: true\ncourses: [{name: C, points: [a]}]")
    assert load_subject(tmp_path / "subject.yaml").prefilter is True


@pytest.mark.parametrize("text,message", [
    ("courses: []", "subject"),
    ("subject: Biology", "courses"),
    ("subject: B\ncourses: [{points: [a]}]", "name"),
    ("subject: B\ncourses: [{name: C, points: [{query: q}]}]", "point"),
    ("subject: B\ncourses: [{name: C, points: [a, a]}]", "duplicate"),
    ("subject: B\ncourses: [{name: C, points: [{name: a, urls: 5}]}]", "urls"),
    ("subject: [unclosed", "YAML"),
    ("subject: B\nrecipe: movies\ncourses: [{name: C, points: [a]}]", "recipe 'movies' is not one of textbook, pairs"),
    ("subject: B\nquery_template: '{point} {level}'\ncourses: [{name: C, points: [a]}]", "query_template"),
    ("subject: B\nquery_template: '{0}'\ncourses: [{name: C, points: [a]}]", "query_template"),
    ("subject: B\ncourses: [{name: C, points: [{name: a, query: 42}]}]", "'query' must be text"),
    ("subject: B\nprefilter: yes please\ncourses: [{name: C, points: [a]}]", "'prefilter' must be true or false"),
])
def test_bad_taxonomies_are_clear_errors(tmp_path, text, message):
    with pytest.raises(TaxonomyError, match=message):
        load_taxonomy(write(tmp_path, text))


def test_missing_subject_file(tmp_path):
    with pytest.raises(TaxonomyError, match="no such subject file"):
        load_taxonomy(tmp_path / "nope.yaml")


LOOPBACK = {"LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8"}  # the test servers' network, refused by default


def test_search_explicit_urls_over_loopback(corpus_server, tmp_path):
    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path), **LOOPBACK})
    found = search_point("ignored", [f"{corpus_server.base_url}/photosynthesis.mp4",
                                     f"{corpus_server.base_url}/photosynthesis.mp4",
                                     f"{corpus_server.base_url}/cell_division.mp4"], settings)
    assert [v.id for v in found] == ["photosynthesis", "cell_division"]  # deduplicated by id
    assert found[0].url.endswith("/photosynthesis.mp4") and found[0].title == "photosynthesis"


def test_demo_taxonomy_is_valid(tmp_path):
    subject, points = load_taxonomy(write(tmp_path, subject_yaml("http://127.0.0.1:1")))
    assert subject == "Biology" and len(points) == 3 and all(p.urls for p in points)


@pytest.fixture
def catalog(tmp_path, corpus_server, demo_corpus):
    """A JSON catalog of the demo videos (titles and descriptions from their slides), served on loopback."""
    import json

    from lectern_dev.server import CorpusServer

    entries = [{"id": video_id, "url": f"{corpus_server.base_url}/{video_id}.mp4",
                "title": info["slides"][0]["title"], "description": " ".join(s["body"] for s in info["slides"]),
                "duration": 8.0 * len(info["slides"])}
               for video_id, info in demo_corpus[1]["videos"].items()]
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "catalog.json").write_text(json.dumps(entries))
    with CorpusServer(tmp_path / "catalog") as server:
        yield f"{server.base_url}/catalog.json"


def test_catalog_search_ranks_by_matching_words(catalog, tmp_path):
    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path), "LECTERN_SEARCH_BACKEND": "catalog",
                                  "LECTERN_SEARCH_CATALOG_URL": catalog, "LECTERN_SEARCH_RESULTS": "2", **LOOPBACK})
    found = search_point("Light Reactions Energy lecture", [], settings)
    assert [v.id for v in found] == ["photosynthesis"]  # "light", "reactions", "energy" are all in it
    assert found[0].duration_s == 24.0 and found[0].url.endswith("/photosynthesis.mp4")
    assert [v.id for v in search_point("pasta sauce", [], settings)] == ["pasta_recipe"]
    assert search_point("quantum chromodynamics", [], settings) == []
    assert len(search_point("cells and strands", [], settings)) <= 2  # LECTERN_SEARCH_RESULTS caps it


def test_discovery_over_a_catalog_links_duplicates_across_points(catalog, tmp_path):
    from lectern.discovery import discover_point
    from lectern.state.catalog import PointSpec, sync_subject
    from lectern.state.db import migrate, session_scope
    from lectern.state.reports import stage_rows, video_record

    env = {"LECTERN_HOME": str(tmp_path), "LECTERN_SEARCH_BACKEND": "catalog", "LECTERN_SEARCH_CATALOG_URL": catalog,
           **LOOPBACK}
    settings = Settings.from_env(env)
    migrate(settings.db_url)
    with session_scope(settings.db_url) as session:
        points = [PointSpec("Energy / Photosynthesis", "Photosynthesis", "photosynthesis"),
                  PointSpec("Energy / Light", "Light reactions", "light reactions")]
        ids = sync_subject(session, "Biology", points)
    assert discover_point(ids[0], settings) == {"found": 1, "new_videos": 1, "new_links": 1}
    assert discover_point(ids[1], settings) == {"found": 1, "new_videos": 0, "new_links": 1}  # linked, not duplicated
    with session_scope(settings.db_url) as session:
        assert [r.video_id for r in stage_rows(session)] == ["photosynthesis"]
        assert set(video_record(session, "photosynthesis").points) == {"Photosynthesis", "Light reactions"}


def test_discovery_connects_only_where_downloads_may(catalog, corpus_server, redirect_to_corpus, tmp_path):  # noqa: F811
    """The SSRF guard covers discovery too: an explicit URL and the catalog on a refused address, and a redirect
    to one while yt-dlp reads a page, fail for good as blocked instead of being fetched."""
    from lectern.errors import BlockedURL

    refused = Settings.from_env({"LECTERN_HOME": str(tmp_path), "LECTERN_SEARCH_BACKEND": "catalog",
                                 "LECTERN_SEARCH_CATALOG_URL": catalog})
    with pytest.raises(BlockedURL, match="loopback"):
        search_point("photosynthesis", [], refused)
    with pytest.raises(BlockedURL, match="loopback"):
        search_point("q", [f"{corpus_server.base_url}/photosynthesis.mp4"], refused)
    redirector_only = Settings.from_env({"LECTERN_HOME": str(tmp_path),
                                         "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.2/32"})
    with pytest.raises(BlockedURL, match="blocked a connection to 127.0.0.1"):
        search_point("q", [redirect_to_corpus], redirector_only)


def test_catalog_entries_that_are_not_videos_with_http_urls_are_left_out(tmp_path, caplog):
    import json

    from lectern_dev.server import CorpusServer

    entries = [{"id": "xss", "url": "javascript:alert(document.cookie)", "title": "photosynthesis"},
               {"id": "data", "url": "data:text/html,<script>alert(1)</script>", "title": "photosynthesis"},
               "photosynthesis", {"url": "https://cdn.example.org/a.mp4", "title": "photosynthesis"},
               {"id": "good", "url": "https://cdn.example.org/good.mp4", "title": "photosynthesis"}]
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "catalog.json").write_text(json.dumps(entries))
    with CorpusServer(tmp_path / "catalog") as server:
        settings = Settings.from_env({"LECTERN_HOME": str(tmp_path), "LECTERN_SEARCH_BACKEND": "catalog",
                                      "LECTERN_SEARCH_CATALOG_URL": f"{server.base_url}/catalog.json", **LOOPBACK})
        caplog.set_level("WARNING", logger="lectern")
        assert [v.id for v in search_point("photosynthesis", [], settings)] == ["good"]
    left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(left_out) == 4 and "'javascript:alert(document.cookie)' is not http(s)" in left_out[0]
    assert left_out[2].endswith("not an object") and left_out[3].endswith("no id")


def test_catalog_backend_needs_its_url(tmp_path):
    from lectern.errors import PermanentError

    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path), "LECTERN_SEARCH_BACKEND": "catalog"})
    with pytest.raises(PermanentError, match="LECTERN_SEARCH_CATALOG_URL"):
        search_point("q", [], settings)


def test_metadata_scored_once_per_search_result(catalog, tmp_path, tiny_models):
    """Relevance of title + description to each point that found a video (real embeddings) and the tiny
    scripted LLM as metadata judge; scored once, kept per link, the best link decides."""
    from lectern.discovery import discover_point, score_metadata
    from lectern.stages.download.prefilter import metadata_rejection
    from lectern.state.catalog import PointSpec, sync_subject
    from lectern.state.db import migrate, session_scope
    from lectern.state.models import VideoSource
    from lectern.state.reports import video_record

    env = {"LECTERN_HOME": str(tmp_path), "LECTERN_SEARCH_BACKEND": "catalog", "LECTERN_SEARCH_CATALOG_URL": catalog,
           "LECTERN_METADATA_JUDGE_MODEL": tiny_models["llm_scripted"], "LECTERN_LLM_MAX_NEW_TOKENS": "24", **LOOPBACK}
    settings = Settings.from_env(env)
    migrate(settings.db_url)
    with session_scope(settings.db_url) as session:
        ids = sync_subject(session, "Biology", [PointSpec("Photosynthesis", "Photosynthesis", "energy cell"),
                                                PointSpec("Mitosis", "Mitosis", "pasta cell")])
    for point_id in ids:
        discover_point(point_id, settings)
    assert score_metadata(settings, "Biology") == {"scored": 4, "below_relevance": 1, "llm_unparseable": 0}
    assert score_metadata(settings, "Biology") == {"scored": 0}  # nothing new: no model time
    with session_scope(settings.db_url) as session:
        links = {(r.video_id, r.point.name): r for r in session.query(VideoSource)}
        assert set(links) == {("photosynthesis", "Photosynthesis"), ("cell_division", "Photosynthesis"),
                              ("pasta_recipe", "Mitosis"), ("cell_division", "Mitosis")}
        assert links[("photosynthesis", "Photosynthesis")].relevance > 0.5
        assert links[("pasta_recipe", "Mitosis")].relevance < 0.15
        # cell_division was found by a point it barely teaches (Photosynthesis) and by the right one (Mitosis)...
        assert links[("cell_division", "Photosynthesis")].relevance < links[("cell_division", "Mitosis")].relevance
        assert all(r.llm_score == 7.0 and "###Score: 7###" in r.llm_response for r in links.values())
        division, pasta = video_record(session, "cell_division"), video_record(session, "pasta_recipe")
    assert division.metadata_relevance == links[("cell_division", "Mitosis")].relevance  # ...the right one counts
    assert metadata_rejection(division, settings) is None
    assert metadata_rejection(pasta, settings).startswith("title/description relevance 0.")
    assert division.metadata_llm_score == 7.0


def test_queries_instead_of_courses_are_one_point_each(tmp_path):
    from lectern.discovery import TaxonomyError, load_subject

    (tmp_path / "actions.txt").write_text("# InternVid-style action phrases\nriding a bike\n\nfolding paper\n"
                                          "riding  a bike\n")
    listed = tmp_path / "listed.yaml"
    listed.write_text("subject: Actions\nrecipe: pairs\nqueries: [juggling balls, cutting an onion]\n")
    from_file = tmp_path / "from_file.yaml"
    from_file.write_text("subject: Actions\nrecipe: pairs\nqueries: actions.txt\n")
    assert [(p.name, p.query) for p in load_subject(listed).points] == [
        ("juggling balls", "juggling balls"), ("cutting an onion", "cutting an onion")]
    assert [p.query for p in load_subject(from_file).points] == ["riding a bike", "folding paper"]
    for text, message in [("queries: []", "non-empty list"), ("queries: missing.txt", "no such file"),
                          ("queries: [a]\ncourses: [{name: C, points: [P]}]", "either 'courses' or 'queries'")]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(f"subject: Actions\n{text}\n")
        with pytest.raises(TaxonomyError, match=message):
            load_subject(bad)
