"""Paired t-intervals and verdicts against scipy.stats, and the results-tables generator."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from labelwise.analysis.claims import Claim, Interval, evaluate_claim, paired_interval, verdict

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "results_tables.py"
_spec = importlib.util.spec_from_file_location("results_tables", _PATH)
tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tables)


@pytest.mark.parametrize("seed, n, shift", [(0, 5, 0.0), (1, 5, 1.5), (2, 8, -0.7), (3, 2, 0.3), (4, 20, 0.1)])
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_interval_matches_scipy_ttest_rel(seed, n, shift, confidence):
    rng = np.random.default_rng(seed)
    b = rng.normal(80, 2, n)
    a = b + shift + rng.normal(0, 1, n)
    iv = paired_interval(list(a), list(b), confidence=confidence)
    ci = stats.ttest_rel(a, b).confidence_interval(confidence_level=confidence)
    assert iv.n == n
    assert iv.mean == pytest.approx(float(np.mean(a - b)), abs=1e-12)
    assert iv.low == pytest.approx(float(ci.low), abs=1e-10)
    assert iv.high == pytest.approx(float(ci.high), abs=1e-10)
    # the verdict agrees with the two-sided paired t-test at the same level
    p = stats.ttest_rel(a, b).pvalue
    expected = "unresolved" if p >= 1 - confidence else ("confirmed" if iv.mean > 0 else "refuted")
    assert verdict(iv) == expected


def test_verdict_directions_and_degenerate_cases():
    assert verdict(Interval(1.0, 0.2, 1.8, 5)) == "confirmed"
    assert verdict(Interval(-1.0, -1.8, -0.2, 5)) == "refuted"
    assert verdict(Interval(-1.0, -1.8, -0.2, 5), higher_is_better=False) == "confirmed"
    assert verdict(Interval(0.1, -0.5, 0.7, 5)) == "unresolved"
    assert verdict(paired_interval([1.0], [0.0])) == "unresolved"  # one pair: no interval
    iv = paired_interval([1.0, float("nan"), 3.0], [0.0, 0.0, 1.0])
    assert iv.n == 2
    with pytest.raises(ValueError, match="equal lengths"):
        paired_interval([1.0], [1.0, 2.0])


def test_evaluate_claim_pairs_by_seed_and_dataset():
    rows = [{"dataset": "d", "method": "a", "seed": s, "mAP": 80 + s} for s in (0, 1, 2, 3)]
    rows += [{"dataset": "d", "method": "b", "seed": s, "mAP": 79 + s + 0.1 * (s % 2)} for s in (3, 2, 1)]
    rows += [{"dataset": "other", "method": "b", "seed": 0, "mAP": 0.0}]
    out = evaluate_claim(rows, Claim("a", "b", "mAP", "a > b"), "d")
    assert out["seeds"] == [1, 2, 3] and out["n"] == 3
    assert out["diff"] == pytest.approx(1.0 - 0.2 / 3)
    assert out["verdict"] == "confirmed"


def test_results_tables_generate_and_splice(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for s in range(5):
        base = 80 + rng.normal()
        rows += [{"dataset": "multidigits20", "method": "ofml", "seed": s, "mAP": base, "CF1": 70.0, "OF1": 75.0},
                 {"dataset": "multidigits20", "method": "ssca_s1", "seed": s, "mAP": base + 2 + 0.1 * rng.normal(),
                  "CF1": 70.0 - s, "OF1": 75.0}]
    (tmp_path / "dlfl.json").write_text(json.dumps({"benchmark": "dlfl", "command": "python benchmarks/dlfl.py",
                                                    "commit": "abc", "regime": "pretrained", "rows": rows}))
    block = tables.generate(tmp_path)
    assert "| SSCA S=1 > OFML (mAP) | multidigits20 | 5 |" in block and "**confirmed**" in block
    assert "**refuted**" in block  # CF1 falls with the seed: 70 - s vs 70
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\nkept\n")
    once = tables.splice(doc.read_text(), block)
    assert once.startswith("# Results\n\nkept\n") and tables.BEGIN in once
    assert tables.splice(once, block) == once  # idempotent: the marked block is replaced
    assert tables.main(["--results-dir", str(tmp_path), "--doc", str(doc)]) == 0
    assert tables.main(["--results-dir", str(tmp_path), "--doc", str(doc), "--check"]) == 0
    assert not math.isnan(evaluate_claim(rows, tables.CLAIMS["dlfl"][0], "multidigits20")["width"])


def test_incomplete_results_are_flagged(tmp_path):
    rows = [{"dataset": "multidigits20", "method": m, "seed": 0, "mAP": v} for m, v in (("ofml", 80.0),
                                                                                       ("ssca_s1", 81.0))]
    doc = {"benchmark": "dlfl", "command": "python benchmarks/dlfl.py", "commit": "abc", "regime": "pretrained",
           "rows": rows}
    assert "Incomplete" not in tables.benchmark_section(doc)
    section = tables.benchmark_section({**doc, "complete": False})
    assert "**Incomplete**" in section and "seeds so far [0], 2 rows" in section
    assert "**unresolved**" in section  # one seed: no interval


def test_runs_stopped_by_the_epoch_cap_are_shown_and_mark_their_claims():
    """best epoch > max_epochs - patience: training hit the cap before early stopping saw a plateau."""
    rows = []
    for s in range(3):
        rows += [{"dataset": "multidigits20", "method": "ofml", "seed": s, "mAP": 80.0 + s, "best_epoch": 10 + s},
                 {"dataset": "multidigits20", "method": "ssca_s1", "seed": s, "mAP": 79.0 + s,
                  "best_epoch": (27, 26, 30)[s]}]
    doc = {"benchmark": "dlfl", "command": "python benchmarks/dlfl.py", "commit": "abc", "regime": "pretrained",
           "profile": {"max_epochs": 30, "patience": 4}, "rows": rows}
    section = tables.benchmark_section(doc)
    assert "| ofml | 3 | 81.00 ± 1.00 | 11 (10-12) | 0/3 |" in section
    assert "| ssca_s1 | 3 | 80.00 ± 1.00 | 27 (26-30) | 2/3 |" in section  # 27 and 30 > 30 - 4; 26 is not
    assert "**refuted** (cap: ssca_s1) |" in section and "(cap: m)" in section
    no_profile = tables.benchmark_section({k: v for k, v in doc.items() if k != "profile"})
    assert "stopped by the cap" not in no_profile and "(cap:" not in no_profile
