"""Screenshots of a run report page (``report/index.html``) for the documentation, from a real tiny run.

Trains the quickstart configuration (OFML, ResNet-10t, MultiDigits-20) at a small size, checks the page in
headless Chromium (no console message, no broken image: :func:`labelwise.analysis.browser.check_page`),
then takes a full-page screenshot and saves two crops of it: the top of the page (header, metrics,
per-class table) and the error gallery.

Usage::

    python benchmarks/report_screenshot.py                      # -> docs/img/report.png, docs/img/report_gallery.png
    python benchmarks/report_screenshot.py --run runs/qs        # rebuild an existing run's page, screenshots

Needs Chromium (Debian: ``apt-get install chromium``). About 2 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WIDTH = 1200


def _train(run_dir: Path, epochs: int) -> None:
    from labelwise.config import load_config
    from labelwise.run import train_from_config

    cfg = load_config(REPO / "configs" / "quickstart.yaml", [
        f"trainer.max_epochs={epochs}", "trainer.progress=false", "trainer.tensorboard=false",
        "data.options.n_train=1500", "data.options.n_val=300", "data.options.n_test=400",
    ])
    summary = train_from_config(cfg, output_dir=run_dir, log=lambda m: print(f"[train] {m}", flush=True))
    print(f"test mAP {summary['test_metrics']['mAP']:.4f} after {epochs} epochs ({summary['seconds']:.0f} s)")


def _save(img, path: Path) -> None:
    # 256-colour palette: a third of the size of the RGB PNG, no visible loss on a web page
    img.convert("RGB").quantize(colors=256, method=2).save(path, optimize=True)
    print(f"wrote {path} ({img.width}x{img.height}, {path.stat().st_size / 1024:.0f} KiB)")


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    from labelwise.analysis.browser import check_page, find_chromium, screenshot

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, default=None,
                   help="run directory: an existing run's page is rebuilt (labelwise report); a new directory "
                        "gets the tiny run (default: a temporary directory)")
    p.add_argument("--epochs", type=int, default=4, help="epochs of the tiny run (default: 4)")
    p.add_argument("--output-dir", type=Path, default=REPO / "docs" / "img", help="where the PNGs go")
    args = p.parse_args(argv)
    if find_chromium() is None:
        print("no Chromium found: apt-get install chromium (or set LABELWISE_CHROMIUM)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="labelwise-report-") as tmp:
        run = args.run if args.run is not None else Path(tmp) / "quickstart-tiny"
        if (run / "report" / "index.html").is_file():
            from labelwise.analysis.html_report import write_html_report

            write_html_report(run)  # the page of the current code, rebuilt from the run directory
        else:
            _train(run, args.epochs)
        page = run / "report" / "index.html"
        check = check_page(page, width=WIDTH)
        print(f"page {page}: {page.stat().st_size / 1024:.0f} KiB, {check.images} images, "
              f"{len(check.console)} console messages, {len(check.errors)} errors, {len(check.broken_images)} broken images")
        if not check.ok:
            print(f"the page does not load cleanly: {check}", file=sys.stderr)
            return 1
        full = screenshot(page, Path(tmp) / "full.png", width=WIDTH, height=check.height)
        img = Image.open(full)
        args.output_dir.mkdir(parents=True, exist_ok=True)
        s = check.sections
        _save(img.crop((0, 0, WIDTH, min(s["pr"] + 560, img.height))), args.output_dir / "report.png")
        top = max(s["gallery"] - 20, 0)
        bottom = min(top + 1500, img.height - 20)  # the whole gallery: false positives and false negatives
        _save(img.crop((0, top, WIDTH, bottom)), args.output_dir / "report_gallery.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
