"""The self-contained run report page (report/index.html) and `labelwise report RUN`."""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest

from labelwise.analysis.html_report import error_gallery, write_html_report
from labelwise.analysis.predictions import load_predictions, predictions_path, save_predictions
from labelwise.cli import main
from labelwise.data import ArrayDataset

NAMES = ["cat", "dog", "car", "tree", "sky"]
SECTIONS = ("metrics", "classes", "pr", "curves", "cooccurrence", "gallery")


def _problem(n=80, c=5, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.3).astype(np.uint8)
    y[:, -1] = 0  # a class without positives
    s = np.clip(0.45 * y + 0.6 * rng.random((n, c)), 0, 1).astype(np.float32)
    return s, y


def _run_dir(tmp_path, split="test", n=80, thresholds=(0.5, 0.4, 0.6, 0.5, 0.5)):
    s, y = _problem(n)
    save_predictions(predictions_path(tmp_path, split), s, y, np.arange(n), NAMES, split=split, thresholds=thresholds)
    (tmp_path / "metrics.csv").write_text("epoch,train_loss,mAP,lr\n0,0.7,0.5,0.001\n1,0.5,0.6,0.0005\n")
    return tmp_path, s, y


def _external_refs(page: str) -> list[str]:
    """Every src/href that is not a data: URI or an in-page anchor."""
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page)
    return [r for r in refs if not (r.startswith("data:") or r.startswith("#"))]


def test_error_gallery_matches_a_brute_force_ranking():
    s, y = _problem(n=60)
    th = np.array([0.5, 0.4, 0.6, 0.5, 0.5])
    got = error_gallery(s, y, th, max_items=10)
    pred = s >= th
    fp = sorted(((-s[r, c], r, c) for r, c in zip(*np.nonzero(pred & (y == 0)))))
    fn = sorted(((s[r, c], r, c) for r, c in zip(*np.nonzero(~pred & (y == 1)))))

    def first_per_row(items, k):
        seen, out = set(), []
        for _, r, c in items:
            if r not in seen:
                seen.add(r)
                out.append((int(r), int(c)))
        return out[:k]

    all_fp, all_fn = first_per_row(fp, 60), first_per_row(fn, 60)
    n_fn = min(len(all_fn), 5)  # half the places each, a short list leaves its places to the other
    n_fp = min(len(all_fp), 10 - n_fn)
    assert n_fp + n_fn == 10
    assert [(e["row"], e["cls"]) for e in got if e["kind"] == "fp"] == all_fp[:n_fp]
    assert [(e["row"], e["cls"]) for e in got if e["kind"] == "fn"] == all_fn[:n_fn]
    fp_scores = [e["score"] for e in got if e["kind"] == "fp"]
    assert fp_scores == sorted(fp_scores, reverse=True)
    assert all(e["score"] >= th[e["cls"]] for e in got if e["kind"] == "fp")
    assert all(e["score"] < th[e["cls"]] for e in got if e["kind"] == "fn")


def test_error_gallery_gives_unused_places_to_the_other_kind():
    s = np.array([[0.9, 0.8], [0.7, 0.2], [0.6, 0.1]])
    y = np.array([[0, 1], [0, 1], [0, 1]])  # three false positives (class 0), two false negatives (class 1)
    got = error_gallery(s, y, np.array([0.5, 0.5]), max_items=4)
    assert [e["kind"] for e in got] == ["fp", "fp", "fn", "fn"]
    got = error_gallery(s[:, :1], y[:, :1], np.array([0.5]), max_items=4)
    assert [e["kind"] for e in got] == ["fp", "fp", "fp"]  # no false negative: all places to false positives
    assert error_gallery(s, y, np.array([0.5, 0.5]), max_items=0) == []


def test_page_is_self_contained_with_every_section(tmp_path):
    run, s, y = _run_dir(tmp_path)
    images = np.random.default_rng(1).integers(0, 255, size=(80, 3, 40, 40), dtype=np.uint8)
    page_path = write_html_report(run, dataset=ArrayDataset(images, y, NAMES))
    assert page_path == run / "report" / "index.html"
    page = page_path.read_text()
    for anchor in SECTIONS:
        assert f'<h2 id="{anchor}">' in page
    assert _external_refs(page) == []
    assert "<link" not in page and not re.search(r"<script[^>]+src", page)
    assert "Content-Security-Policy" in page
    # figures + at most 24 thumbnails, all data: URIs, page size bounded
    assert page.count('<div class="card">') == 24
    assert len(re.findall(r'<img [^>]*src="data:image/(?:png|jpeg);base64,', page)) == page.count("<img ")
    assert page.count("<img ") == 3 + 24
    assert len(page) < 2_000_000
    # the per-class table: sorted by AP, positives counted, the class without positives last
    rows = re.findall(r'<tr data-name="([^"]+)"><td>\d+</td><td class="l">[^<]+</td><td>(\d+)</td>', page)
    assert [r[0] for r in rows][-1] == "sky"
    assert {name: int(pos) for name, pos in rows} == dict(zip(NAMES, y.sum(axis=0).tolist()))
    from sklearn.metrics import average_precision_score

    ap = [average_precision_score(y[:, j], s[:, j]) for j in range(4)]
    assert [r[0] for r in rows][:4] == [NAMES[j] for j in np.argsort(ap)[::-1]]
    assert "per-class thresholds tuned" in page
    # figures were drawn into report/ when missing
    assert {p.name for p in (run / "report").glob("*.png")} == {"pr_curves_test.png", "learning_curves.png",
                                                                 "cooccurrence_test.png"}


def test_gallery_cards_name_true_and_predicted_labels(tmp_path):
    s = np.array([[0.95, 0.1], [0.2, 0.05], [0.8, 0.9]], dtype=np.float32)
    y = np.array([[0, 0], [1, 1], [1, 1]], dtype=np.uint8)
    save_predictions(predictions_path(tmp_path, "val"), s, y, np.array([2, 0, 1]), ["a", "b"], split="val",
                     thresholds=0.5)
    images = np.zeros((3, 3, 8, 8), dtype=np.uint8)
    page = write_html_report(tmp_path, dataset=ArrayDataset(images, y[[1, 2, 0]], ["a", "b"])).read_text()
    cards = re.findall(r'<div class="card">(.*?)</div></div>', page, flags=re.DOTALL) or page.split('<div class="card">')[1:]
    assert len(cards) == 2
    assert "false positive: a (0.950)" in cards[0] and "val #2" in cards[0]
    assert 'predicted: <span class="fp">a</span>' in cards[0] and 'true: <span class="na">none</span>' in cards[0]
    assert "false negative: b (0.050)" in cards[1] and "val #0" in cards[1]
    assert 'true: <span class="fn">a</span>, <span class="fn">b</span>' in cards[1]
    assert "the global threshold 0.5" in page


def test_tabular_dataset_gallery_does_not_apply(tmp_path):
    run, s, y = _run_dir(tmp_path, split="val")
    page = write_html_report(run, dataset=ArrayDataset(np.zeros((80, 6), np.float32), y, NAMES)).read_text()
    assert "Does not apply: this dataset holds feature vectors" in page
    assert '<div class="card">' not in page


def test_a_dataset_that_does_not_match_gives_no_thumbnails(tmp_path):
    run, s, y = _run_dir(tmp_path)
    other = ArrayDataset(np.zeros((80, 3, 8, 8), np.uint8), 1 - y, NAMES)
    page = write_html_report(run, dataset=other).read_text()
    assert "does not match the stored predictions" in page and '<div class="card">' not in page


def test_without_config_the_gallery_says_why_and_metrics_are_recomputed(tmp_path):
    run, s, y = _run_dir(tmp_path)
    page = write_html_report(run).read_text()
    assert "No thumbnails:" in page and "config.yaml is missing" in page
    assert "recomputed from the stored predictions" in page


def test_the_dataset_loader_is_injected_not_imported(tmp_path):
    run, s, y = _run_dir(tmp_path)
    (run / "config.yaml").write_text("name: x\n")
    page = write_html_report(run).read_text()
    assert "No thumbnails: no dataset given: pass dataset= or dataset_loader=" in page
    calls = []

    def loader(run_dir, split):
        calls.append((run_dir, split))
        return ArrayDataset(np.zeros((80, 3, 8, 8), np.uint8), y, NAMES), ""

    page = write_html_report(run, dataset_loader=loader).read_text()
    assert calls == [(run, "test")] and '<div class="card">' in page


def test_missing_predictions_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="predictions_test.npz or predictions_val.npz"):
        write_html_report(tmp_path)
    with pytest.raises(FileNotFoundError, match="run directory not found"):
        write_html_report(tmp_path / "nope")
    run, _, _ = _run_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no val predictions"):
        write_html_report(run, split="val")
    with pytest.raises(ValueError, match="'val' or 'test'"):
        write_html_report(run, split="train")


# -- a real run ------------------------------------------------------------------------------------------
def test_training_writes_the_page_and_both_predictions(tiny_run):
    report = tiny_run / "report"
    assert (report / "index.html").is_file()
    val, test = load_predictions(report / "predictions_val.npz"), load_predictions(report / "predictions_test.npz")
    assert (len(val), len(test)) == (48, 64) and val.tuned and test.tuned
    np.testing.assert_array_equal(val.thresholds, test.thresholds)  # tuned on validation, applied to test
    page = (report / "index.html").read_text()
    assert "evaluated split: test (64 samples, 20 classes)" in page
    assert "validation (best checkpoint, epoch 1)" in page and "test (best checkpoint)" in page
    assert 0 < page.count('<div class="card">') <= 24


def test_cli_report_rebuilds_the_page_from_the_run_directory(tiny_run, tmp_path):
    out = tmp_path / "page.html"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["report", str(tiny_run), "--output", str(out), "--split", "val"]) == 0
    assert f"report written to {out}" in buf.getvalue()
    page = out.read_text()
    assert "evaluated split: val (48 samples" in page
    # thumbnails re-loaded from config.yaml (the carved-out or generated val split), checked against the targets
    assert 0 < page.count('<div class="card">') <= 24 and "No thumbnails" not in page
    assert _external_refs(page) == []


def test_cli_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no predictions_test.npz" in capsys.readouterr().err


def test_jpeg_files_become_small_thumbnails_named_by_file(tmp_path):
    from PIL import Image

    from labelwise.data import ImageListDataset

    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        p = tmp_path / "images" / f"photo_{i}.jpg"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(p, quality=90)
        paths.append(p)
    (tmp_path / "images" / "photo_5.jpg").write_bytes(b"not a jpeg")  # unreadable: shown as such, not broken
    y = np.array([[1, 0], [0, 1], [1, 1], [1, 0], [0, 1], [1, 0]], dtype=np.uint8)
    s = np.array([[0.2, 0.9], [0.9, 0.1], [0.3, 0.2], [0.4, 0.95], [0.85, 0.3], [0.1, 0.99]], dtype=np.float32)
    run = tmp_path / "run"
    save_predictions(predictions_path(run, "test"), s, y, np.arange(6), ["a", "b"], split="test", thresholds=0.5)
    ds = ImageListDataset(paths, y, ["a", "b"])
    page = write_html_report(run, dataset=ds, thumb_size=96).read_text()
    thumbs = re.findall(r'<img class="thumb" alt="[^"]*" src="data:image/jpeg;base64,([^"]+)"', page)
    # every image at most once per kind of error: 5 false-positive and 6 false-negative cards, photo_5 in both
    assert page.count('<div class="card">') == 11 and page.count("unreadable: ImageLoadError") == 2
    assert len(thumbs) == 9
    import base64

    with Image.open(io.BytesIO(base64.b64decode(thumbs[0]))) as im:
        assert max(im.size) == 96 and im.size == (96, 72)
    assert "photo_0.jpg" in page
    assert all(len(t) < 20_000 for t in thumbs)
