"""``minicnn trace --html``: one self-contained page, checked as a file and in a real browser
(tests/browser.py: headless Chromium driven by Playwright)."""
import html
import io
import json
import os
import re

import numpy as np
import pytest

from minicnn.apps.trace import run_trace
from minicnn.apps.trace_html import png
from tests import browser

needs_browser = pytest.mark.skipif(
    browser.why_not() is not None and not os.environ.get("MINICNN_REQUIRE_BROWSER"),
    reason=f"no browser test here: {browser.why_not()}")


@pytest.fixture(scope="module")
def alexnet_page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("page")
    page, record_path = folder / "trace.html", folder / "trace.json"
    record = run_trace("alexnet2012", batch=2, checks=2, html_path=str(page), json_path=str(record_path),
                       out=io.StringIO())
    return page, json.loads(record_path.read_text()), record


def test_the_page_is_one_self_contained_file(alexnet_page):
    page, record, returned = alexnet_page
    text = page.read_text(encoding="utf-8")
    assert returned["html"]["bytes"] == len(text.encode()) < 5_000_000  # alexnet2012 at batch 2: at most ~5 MB
    sources = re.findall(r'(?:src|href)="([^"#][^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)  # nothing fetched
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    assert len(re.findall(r"<img [^>]*alt=\"[^\"]+\"", text)) == text.count("<img ")  # alt text on every picture
    assert text.count('class="step"') == 2 * 23 + 1  # forward, the loss, backward
    for entry in record["forward"]:  # every layer's worked example, as --json has it
        if entry.get("worked_example"):
            assert html.escape(entry["worked_example"][0], quote=True) in text


@pytest.mark.parametrize("model", ["alexnet_small", "alexnet_bn", "alexnet2012_caffe"])
def test_every_model_gets_a_page(tmp_path, model):
    page = tmp_path / "trace.html"
    record = run_trace(model, batch=2, checks=0, html_path=str(page), out=io.StringIO(), training=False)
    assert page.stat().st_size == record["html"]["bytes"] > 0
    assert page.read_text().count('class="step"') == 2 * len(record["forward"]) + 1


def test_png_is_a_valid_image():
    import struct
    import zlib

    data = png(np.arange(12, dtype=np.uint8).reshape(3, 4))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (4, 3)
    idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
    rows = zlib.decompress(idat)
    assert rows == b"".join(b"\x00" + bytes(range(4 * r, 4 * r + 4)) for r in range(3))


@needs_browser
def test_the_page_in_a_real_browser(alexnet_page, tmp_path):
    page_path, record, _ = alexnet_page
    with browser.open_page(page_path) as (page, errors, requests):
        forward_rows = page.locator("h2:has-text('Forward') + table tbody tr")
        assert forward_rows.count() == 23  # one row per layer of alexnet2012
        assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert page.evaluate("document.images.length") >= 23
        first = page.locator("section.step:not([hidden])")
        assert first.get_attribute("id") == "fwd-conv1"
        page.keyboard.press("ArrowRight")
        shown = page.locator("section.step:not([hidden])")
        assert shown.get_attribute("id") == "fwd-relu1" and page.url.endswith("#fwd-relu1")
        for _ in range(3):  # relu1 -> lrn1 -> pool1 -> conv2
            page.keyboard.press("ArrowRight")
        shown = page.locator("section.step:not([hidden])")
        assert shown.get_attribute("id") == "fwd-conv2"
        conv2 = next(e for e in record["forward"] if e["layer"] == "conv2")
        assert shown.locator("pre.worked").inner_text().strip() == "\n".join(conv2["worked_example"]).strip()
        page.keyboard.press("ArrowLeft")
        assert page.locator("section.step:not([hidden])").get_attribute("id") == "fwd-pool1"
        page.screenshot(path=str(tmp_path / "shot.png"))
        assert errors == []
        assert all(url.startswith("file://") for url in requests)  # no request to any network
    from PIL import Image

    shot = np.asarray(Image.open(tmp_path / "shot.png").convert("L"), dtype=np.float64)
    assert shot.std() > 10  # not blank
    # a link to a step opens the page at that step
    with browser.open_page(page_path, "#bwd-fc7") as (page, errors, _):
        shown = page.locator("section.step:not([hidden])")
        fc7 = next(b for b in record["backward"] if b["layer"] == "fc7")
        assert shown.get_attribute("id") == "bwd-fc7"
        assert shown.locator("pre.worked").inner_text().strip() == "\n".join(fc7["worked_example"]).strip()
        assert errors == []
    with browser.open_page(page_path) as (page, errors, _):  # the keyboard alone: Tab to "next", Enter
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "next"
        page.keyboard.press("Enter")
        assert page.locator("section.step:not([hidden])").get_attribute("id") == "fwd-relu1"
        assert errors == []

