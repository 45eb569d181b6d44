"""The release viewer in a real headless Chromium (Debian's, driven by Playwright): it renders, its keyframes
load, its texts show in order, and a screenshot is saved under test-artifacts/."""

import io
import shutil

import pytest
from PIL import Image

from lectern.store import Keys, LocalStore
from lectern.viewer import render_samples
from lectern_dev.synthetic import Scene, render
from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def release_dir(tmp_path):
    store = LocalStore(tmp_path / "store")
    keys = []
    for n, title in enumerate(["Photosynthesis", "Calvin Cycle"]):
        buffer = io.BytesIO()
        Image.fromarray(render(Scene(title, (f"Slide {n + 1} of the lecture",)))).save(buffer, format="JPEG")
        keys.append(store.put_bytes(Keys.keyframe("v1", n * 10.0, n * 10.0 + 10, 1), buffer.getvalue()))
    sample = {
        "images": [keys[0], None, keys[1], None],
        "texts": [None, "Plants turn light into energy.", None, "Carbon dioxide is fixed into sugar."],
        "text_ocr_list": [None, "Photosynthesis\nPlants turn light into energy.", None,
                          "Calvin Cycle\nCarbon dioxide is fixed into sugar."],
        "metadata": [{"vid": "v1", "time": 0.0}, {"vid": "v1", "start": 0, "end": 10},
                     {"vid": "v1", "time": 10.0}, {"vid": "v1", "start": 10, "end": 20}],
        "image_num": 2, "text_num": 2, "token_num": 1170,
    }
    store.put_bytes(Keys.release("r1", "viewer.html"), render_samples("r1", [sample]).encode())
    return tmp_path / "store" / "releases" / "r1"


def test_viewer_renders_images_and_text_in_chromium(release_dir):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Debian's chromium is not installed: make system-packages installs it"
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 1400})
        page.goto((release_dir / "viewer.html").as_uri())
        page.wait_for_load_state("load")
        assert page.title() == "Lectern release r1"
        for image in page.locator("figure img").all():  # lazy images load once scrolled to
            image.scroll_into_view_if_needed()
        page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=10_000)
        widths = page.eval_on_selector_all("figure img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        assert widths == [1280, 1280]  # both keyframes loaded from the store, at full size
        texts = page.locator("p.text").all_inner_texts()
        assert texts == ["Plants turn light into energy.", "Carbon dioxide is fixed into sugar."]
        order = page.eval_on_selector_all("section.sample > figure, section.sample > p.text",
                                          "els => els.map(e => e.tagName)")
        assert order == ["FIGURE", "P", "FIGURE", "P"]  # interleaved as in the sample
        assert page.locator("details summary", has_text="OCR").count() == 2
        page.screenshot(path=str(artifacts / "viewer.png"), full_page=True)
        browser.close()
    assert (artifacts / "viewer.png").stat().st_size > 10_000
