"""The library logs; the command line shows the ``labelwise`` loggers on stderr (``-q`` hides INFO)."""

from __future__ import annotations

import logging

import numpy as np

from labelwise.analysis.predictions import predictions_path, save_predictions
from labelwise.cli import main


def _run_dir(tmp_path):
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    s = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.6], [0.1, 0.3]])
    save_predictions(predictions_path(tmp_path, "val"), s, y, np.arange(4), ["a", "b"], split="val")
    return tmp_path


def test_library_info_messages_are_shown_on_stderr_and_hidden_by_quiet(tmp_path, capsys):
    run = _run_dir(tmp_path)
    handlers = list(logging.getLogger("labelwise").handlers)
    assert main(["report", str(run)]) == 0
    captured = capsys.readouterr()
    assert "[labelwise] run report page written to" in captured.err
    assert "report written to" in captured.out  # the command's own result stays on stdout
    assert main(["-q", "report", str(run)]) == 0
    assert "[labelwise]" not in capsys.readouterr().err
    assert logging.getLogger("labelwise").handlers == handlers  # main() leaves logging as it found it


def test_library_code_logs_instead_of_printing(tmp_path, capsys, caplog):
    from labelwise.tabular.estimator import MultiLabelClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    Y = (rng.random((40, 3)) > 0.5).astype(int)
    with caplog.at_level(logging.INFO, logger="labelwise.tabular.estimator"):
        MultiLabelClassifier(model="mlp", epochs=2, batch_size=16, verbose=1).fit(X, Y)
    assert capsys.readouterr().out == ""
    assert len([r for r in caplog.records if r.name == "labelwise.tabular.estimator"]) >= 2
