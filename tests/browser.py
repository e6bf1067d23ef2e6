"""A real browser for the web page's tests (tests/apps/test_trace_html.py), and the README's screenshot.

Headless Chromium from the operating system's packages (Debian: ``apt-get install -y chromium``),
driven by Playwright's Python package (the ``test`` extra) pointed at that browser's executable: no
browser download. ``.ci/run`` installs Chromium and sets ``MINICNN_REQUIRE_BROWSER=1``, so that there a
missing browser fails the tests instead of skipping them.

    python -m tests.browser docs/img/trace_page.png      # the README's screenshot of the page
"""
import contextlib
import os
import shutil
import sys

INSTALL = "apt-get install -y chromium (Debian/Ubuntu), and pip install playwright (the test extra)"


def chromium():
    """The path of a Chromium (or Chrome) executable, or None."""
    for name in (os.environ.get("MINICNN_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        path = name and (shutil.which(name) or (name if os.path.isfile(name) else None))
        if path:
            return path
    return None


def why_not():
    """Why no browser test can run here (None when one can)."""
    import importlib.util

    if importlib.util.find_spec("playwright") is None:
        return f"Playwright is not installed: {INSTALL}"
    if chromium() is None:
        return f"no Chromium on this machine: {INSTALL}"
    return None


@contextlib.contextmanager
def open_page(path, fragment="", width=1280, height=900):
    """The page at ``path`` open in headless Chromium: (page, console errors, requested URLs)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors, requests = [], []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto("file://" + os.path.abspath(path) + fragment)
            page.wait_for_load_state("load")
            yield page, errors, requests
        finally:
            browser.close()


def screenshot(page_path, png_path, fragment="", width=1280, height=900):
    with open_page(page_path, fragment, width, height) as (page, _, _):
        page.screenshot(path=png_path)


def main(argv):
    """Write the trace page of alexnet2012 (batch 2) and a screenshot of it to ``argv[0]``."""
    import io
    import tempfile

    from minicnn.apps.trace import run_trace

    if len(argv) != 1:
        sys.exit("usage: python -m tests.browser SCREENSHOT.png")
    problem = why_not()
    if problem:
        sys.exit(problem)
    with tempfile.TemporaryDirectory() as folder:
        page = os.path.join(folder, "trace.html")
        run_trace("alexnet2012", batch=2, checks=3, html_path=page, out=io.StringIO())
        screenshot(page, argv[0], width=1200, height=1400)
    print(f"wrote {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
