"""The page in a real headless Chromium (Debian's), driven by Playwright: draw, upload, read the answers.

The server runs in this process on 127.0.0.1 and a free port, with the tiny models of conftest.
Screenshots of each step go to the test's temporary folder (``RNNVISION_SCREENSHOTS`` keeps them).
A missing browser or Playwright fails with the command to run: never a silent skip.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - make test installs it
    pytest.fail("the browser tests need playwright: pip install -e '.[test,serve]'", pytrace=False)

from rnnvision.serve import load_served  # noqa: E402
from rnnvision.serve.inference import decode_picture, decode_upload, encode_picture, predict  # noqa: E402
from tests.serve.browser import SEVEN, launch, running_server, stroke  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(checkpoints):
    return [load_served(str(checkpoints[name]), name=name) for name in ("digits", "strings", "pixels")]


@pytest.fixture(scope="module")
def browser(served):
    with running_server(served) as url, sync_playwright() as pw:
        chromium = launch(pw)
        yield chromium, url
        chromium.close()


@pytest.fixture(autouse=True)
def patient(monkeypatch):
    """Waits of up to 2 minutes: a busy shared CPU can hold a prediction for tens of seconds."""
    from playwright.sync_api import Page

    original = Page.goto

    def goto(self, *args, **kwargs):
        self.set_default_timeout(120_000)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Page, "goto", goto)


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("RNNVISION_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _canvas_image(page, selector: str) -> Image.Image:
    url = page.evaluate(f"document.querySelector('{selector}').toDataURL('image/png')")
    return decode_upload(base64.b64decode(url.split(",")[1]), max_pixels=10**6)


def test_drawing_a_digit_shows_its_class_gates_and_rows(browser, served, shots):
    chromium, url = browser
    page = chromium.new_page(viewport={"width": 1280, "height": 860})
    page.goto(f"{url}/#classify")
    page.wait_for_selector("body[data-ready]")
    with page.expect_response(lambda r: "/predict/digits" in r.url):
        stroke(page, "#classify-canvas", SEVEN)
    page.wait_for_function("document.getElementById('classify-label').textContent !== '–'")
    page.wait_for_load_state("networkidle")
    shown = page.text_content("#classify-label")
    drawn = predict(served[0], _canvas_image(page, "#classify-canvas"), prepare="digit")
    # the page shows the model's answer for what was drawn (the 6-epoch test model reads this 7 as a 9)
    assert shown == drawn["label"] and page.text_content("#classify-prob") == f"{100 * drawn['probability']:.1f} %"
    assert page.locator("#classify-bars .lbl").count() == 10
    assert page.locator("#classify-gates canvas").count() == 4
    assert page.get_attribute("#classify-row", "max") == "7"  # 8 rows to step through
    sizes = page.evaluate("[...document.querySelectorAll('#classify-gates canvas')].map((c) => [c.width, c.height])")
    assert sizes == [[32, 8]] * 4  # each gate picture decoded to (8 rows, 32 units)
    page.locator("#classify-row").fill("3")
    assert page.text_content("#classify-row-out") == "4 / 8"
    assert "after row 4 of 8" in page.text_content("#classify-bars-caption")
    page.screenshot(path=str(shots / "classify.png"))
    page.click("#classify-clear")
    assert page.text_content("#classify-label") == "–"
    page.close()


def test_uploading_a_digit_line_shows_its_text_and_boxes(browser, served, samples, shots):
    chromium, url = browser
    page = chromium.new_page(viewport={"width": 1280, "height": 860})
    page.goto(f"{url}/#recognize")
    page.wait_for_selector("body[data-ready]")
    with page.expect_response(lambda r: "/predict/strings" in r.url):
        page.set_input_files("#recognize-file", str(samples["line"]))
    expected = predict(served[1], decode_upload(samples["line"].read_bytes(), max_pixels=10**6))
    page.wait_for_function("document.getElementById('recognize-text').textContent !== '–'")
    assert page.text_content("#recognize-text") == (expected["text"] or "(nothing)")
    assert page.locator("#recognize-chars tr").count() == len(expected["text"])
    page.screenshot(path=str(shots / "recognize.png"), full_page=True)
    page.close()


def test_the_page_decodes_pictures_as_the_api_encodes_them(browser):
    chromium, url = browser
    page = chromium.new_page()
    page.goto(f"{url}/")
    page.wait_for_selector("body[data-ready]")
    values = torch.linspace(-1, 1, 12).reshape(3, 4)
    picture = encode_picture(values, low=-1.0)
    np.testing.assert_allclose(page.evaluate("(p) => decodePicture(p)", picture), decode_picture(picture), atol=1e-12)
    page.close()


def test_completing_drawn_rows_shows_the_samples(browser, shots):
    chromium, url = browser
    page = chromium.new_page(viewport={"width": 1280, "height": 860})
    page.goto(f"{url}/#generate")
    page.wait_for_selector("body[data-ready]")
    stroke(page, "#generate-canvas", [(0.2, 0.2), (0.8, 0.2), (0.5, 0.45)])
    page.select_option("#generate-samples", "2")
    with page.expect_response(lambda r: "/complete/pixels" in r.url) as response:
        page.click("#generate-go")
    assert response.value.status == 200
    page.wait_for_function("document.querySelectorAll('#generate-out canvas').length === 2")
    page.wait_for_timeout(500)  # the fill-in animation
    sizes = page.evaluate("[...document.querySelectorAll('#generate-out canvas')].map((c) => [c.width, c.height])")
    assert sizes == [[8, 8], [8, 8]]
    assert "Rows 1–4 are yours" in page.text_content("#generate-caption")
    page.screenshot(path=str(shots / "generate.png"), full_page=True)
    page.close()


def test_the_page_fits_a_phone_and_works_from_the_keyboard(browser, shots):
    chromium, url = browser
    page = chromium.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(f"{url}/")
    page.wait_for_selector("body[data-ready]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
    assert page.locator("#classify-canvas").bounding_box()["width"] > 300
    page.focus("#tab-classify")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-recognize"
    assert page.is_visible("#panel-recognize") and not page.is_visible("#panel-classify")
    page.keyboard.press("Tab")  # on to the panel's first control
    assert page.evaluate("document.activeElement.tagName") in ("SELECT", "BUTTON", "INPUT")
    page.screenshot(path=str(shots / "phone.png"), full_page=True)
    page.close()
