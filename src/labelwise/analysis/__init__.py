"""Analysis: the run report (per-class AP, precision-recall and learning curves as PNGs; the self-contained
page ``report/index.html`` of :mod:`labelwise.analysis.html_report`, built from the predictions stored by
:mod:`labelwise.analysis.predictions`).

Examples
--------
>>> from labelwise.analysis import write_report
>>> callable(write_report)
True
"""

from .report import plot_ap_per_class, plot_learning_curves, plot_pr_curves, read_metrics_csv, write_report

__all__ = ["write_report", "plot_ap_per_class", "plot_pr_curves", "plot_learning_curves", "read_metrics_csv"]
