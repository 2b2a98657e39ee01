"""The report page in a real headless browser (Chromium): it loads with no console message, no script or
resource error and no broken image. Skipped where no Chromium is installed (.ci/run installs it)."""

from __future__ import annotations

import pytest

from labelwise.analysis.browser import check_page, find_chromium, screenshot

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="no Chromium installed (Debian: apt-get install chromium, or set LABELWISE_CHROMIUM): "
           "the report page's headless-browser check cannot run",
)

SECTIONS = ("metrics", "classes", "pr", "curves", "cooccurrence", "gallery")


def test_report_page_of_a_real_run_loads_cleanly(tiny_run):
    check = check_page(tiny_run / "report" / "index.html")
    assert check.console == [] and check.errors == [] and check.broken_images == [], check
    assert check.ok
    assert check.images >= 4  # three figures and at least one gallery thumbnail
    assert list(check.sections) == list(SECTIONS)
    offsets = [check.sections[s] for s in SECTIONS]
    assert offsets == sorted(offsets) and check.height > offsets[-1]


def test_the_check_sees_broken_images_console_errors_and_blocked_requests(tmp_path):
    """The browser check can fail: a broken image, a script error and a request the page's CSP blocks."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:; script-src 'unsafe-inline'\"></head><body>"
        '<img alt="broken" src="data:image/png;base64,AAAA"><img alt="remote" src="https://example.invalid/x.png">'
        "<script>console.error('boom'); missingFunction();</script></body></html>"
    )
    check = check_page(page)
    assert not check.ok
    assert set(check.broken_images) == {"broken", "remote"}
    assert "console.error: boom" in check.errors
    assert any("missingFunction" in e for e in check.errors)
    assert any("Content Security Policy" in c for c in check.console)


def test_screenshot_writes_a_png(tiny_run, tmp_path):
    from PIL import Image

    png = screenshot(tiny_run / "report" / "index.html", tmp_path / "shot.png", width=900, height=700)
    with Image.open(png) as img:
        assert img.size == (900, 700)
        colours = img.convert("RGB").resize((60, 60)).getcolors(60 * 60)
    assert colours is not None and len(colours) > 20  # a rendered page, not a blank window
