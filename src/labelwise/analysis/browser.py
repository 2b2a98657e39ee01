"""Open a report page in headless Chromium: check that it loads cleanly, or take a screenshot.

Used by the report page's browser test and by ``benchmarks/report_screenshot.py``; needs a Chromium (or
Chrome) executable (Debian: ``apt-get install chromium``), found on ``PATH`` or through the
``LABELWISE_CHROMIUM`` environment variable.

:func:`check_page` loads a copy of the page with a small script injected at the top of ``<head>`` that
records script errors, failed resource loads and ``console.error`` calls, and, at the ``load`` event,
every ``<img>`` that did not decode (``naturalWidth == 0``); the result is read back from the DOM that
``chromium --dump-dom`` prints. Console messages (Chromium logs them on stderr with ``--enable-logging``,
including Content-Security-Policy violations) are collected too.

Examples
--------
>>> from labelwise.analysis.browser import find_chromium
>>> find_chromium() is None or find_chromium().endswith(("chromium", "chromium-browser", "chrome", "google-chrome"))
True
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["find_chromium", "check_page", "screenshot", "PageCheck"]

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_CHECK_ID = "labelwise-page-check"
_CHECK_SCRIPT = (
    "<script>(function(){var errs=[];"
    "window.addEventListener('error',function(e){var t=e.target;"
    "errs.push(t&&t!==window&&t.tagName?('failed to load <'+t.tagName.toLowerCase()+'> '+String(t.src||t.href||'').slice(0,80))"
    ":String(e.message||'error'));},true);"
    "var ce=console.error;console.error=function(){errs.push('console.error: '+Array.prototype.join.call(arguments,' '));"
    "return ce.apply(console,arguments);};"
    "window.addEventListener('load',function(){var broken=[];"
    "Array.prototype.forEach.call(document.images,function(i){if(!i.complete||i.naturalWidth===0)broken.push(i.alt||String(i.src).slice(0,60));});"
    "var p=document.createElement('pre');p.id='" + _CHECK_ID + "';p.hidden=true;"
    "var secs={};Array.prototype.forEach.call(document.querySelectorAll('h2[id]'),function(h){"
    "secs[h.id]=Math.round(h.getBoundingClientRect().top+window.scrollY);});"
    "p.textContent=JSON.stringify({errors:errs,broken:broken,images:document.images.length,sections:secs,"
    "height:document.documentElement.scrollHeight});"
    "document.body.appendChild(p);});})();</script>"
)
_CONSOLE = re.compile(r":CONSOLE(?:\(\d+\)|:\d+)?\] (.*)$")


@dataclass
class PageCheck:
    """What :func:`check_page` saw: console messages, script/resource errors, images that did not decode,
    the number of images, the page offset (px) of every ``<h2 id=...>`` and the page height (px)."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    images: int = 0
    sections: dict[str, int] = field(default_factory=dict)
    height: int = 0

    @property
    def ok(self) -> bool:
        """No console message, no error and no broken image."""
        return not (self.console or self.errors or self.broken_images)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable (``$LABELWISE_CHROMIUM`` first), or None.

    Examples
    --------
    >>> isinstance(find_chromium(), str | None)
    True
    """
    env = os.environ.get("LABELWISE_CHROMIUM")
    if env:
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else shutil.which(env)
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _browser(chromium: str | None) -> str:
    exe = chromium or find_chromium()
    if exe is None:
        raise FileNotFoundError("no Chromium found: install it (Debian: apt-get install chromium) or set LABELWISE_CHROMIUM")
    return exe


def _run(exe: str, args: list[str], profile: str, timeout: float) -> subprocess.CompletedProcess[str]:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def check_page(page: str | os.PathLike, *, width: int = 1280, chromium: str | None = None, timeout: float = 90.0
               ) -> PageCheck:
    """Load ``page`` in headless Chromium and report console messages, errors and broken images.

    Parameters
    ----------
    page : str or path
        An HTML file (it is not modified: a copy with the check script is loaded).
    width : int
        Window width in pixels (the section offsets depend on it).
    chromium : str, optional
        The browser executable (default: :func:`find_chromium`).
    timeout : float
        Seconds before the browser is stopped.

    Returns
    -------
    PageCheck

    Raises
    ------
    FileNotFoundError
        No page, or no browser.
    RuntimeError
        The browser failed or the check script never reported (the page did not finish loading).

    Examples
    --------
    >>> check_page("runs/qs/report/index.html").ok                       # doctest: +SKIP
    True
    """
    page = Path(page)
    if not page.is_file():
        raise FileNotFoundError(f"page not found: {page}")
    exe = _browser(chromium)
    text = page.read_text(encoding="utf-8")
    m = re.search(r"<head[^>]*>", text, flags=re.IGNORECASE)
    if m is None:
        raise ValueError(f"{page}: no <head> element to inject the check script into")
    with tempfile.TemporaryDirectory(prefix="labelwise-browser-") as tmp:
        copy = Path(tmp) / page.name
        copy.write_text(text[: m.end()] + _CHECK_SCRIPT + text[m.end():], encoding="utf-8")
        proc = _run(exe, ["--enable-logging=stderr", "--v=0", f"--window-size={width},1000", "--dump-dom", copy.as_uri()],
                    str(Path(tmp) / "profile"), timeout)
    found = re.search(rf'<pre id="{_CHECK_ID}"[^>]*>(.*?)</pre>', proc.stdout, flags=re.DOTALL)
    if found is None:
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        raise RuntimeError(f"{exe} did not report the page check of {page} (exit {proc.returncode}): {' | '.join(tail)}")
    result = json.loads(html.unescape(found.group(1)))
    console = [c.group(1) for line in proc.stderr.splitlines() if (c := _CONSOLE.search(line))]
    return PageCheck(console=console, errors=list(result["errors"]), broken_images=list(result["broken"]),
                     images=int(result["images"]), sections=dict(result["sections"]), height=int(result["height"]))


def screenshot(page: str | os.PathLike, png: str | os.PathLike, *, width: int = 1280, height: int = 1800,
               chromium: str | None = None, timeout: float = 90.0) -> Path:
    """Save a ``width`` x ``height`` screenshot of the top of ``page`` (a window that tall).

    Examples
    --------
    >>> screenshot("runs/qs/report/index.html", "report.png")            # doctest: +SKIP
    PosixPath('report.png')
    """
    page, png = Path(page), Path(png)
    if not page.is_file():
        raise FileNotFoundError(f"page not found: {page}")
    exe = _browser(chromium)
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    url = page.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="labelwise-browser-") as tmp:
        proc = _run(exe, [f"--window-size={width},{height}", f"--screenshot={png.resolve()}", url],
                    str(Path(tmp) / "profile"), timeout)
    if not png.is_file():
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        raise RuntimeError(f"{exe} wrote no screenshot of {page} (exit {proc.returncode}): {' | '.join(tail)}")
    return png
