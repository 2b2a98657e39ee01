"""Tabular multi-label learning: the MULAN cross-validation pipeline of batch selection, a lean in-memory
training loop, fold-wise preprocessing, a scikit-learn-style estimator and the convergence / loss-density
plots.

Examples
--------
>>> from labelwise.tabular import MultiLabelClassifier, MulanProtocol
>>> MultiLabelClassifier(sampler="adaptive").get_params()["sampler"]
'adaptive'
"""

from .estimator import MultiLabelClassifier
from .pipeline import run_benchmark
from .preprocessing import FeatureScaler, document_frequency_selection, drop_rare_labels
from .protocol import (
    PAPER_FEATURE_SELECTION,
    TABLE1_DATASETS,
    BenchmarkData,
    MulanProtocol,
    load_benchmark_data,
    make_splits,
    run_fold,
)
from .results import BenchmarkResult, format_summary_markdown, format_wilcoxon_markdown, save_results
from .statistics import HIGHER_IS_BETTER, METRICS, summary_table, wilcoxon_table
from .training import FitResult, fit_tabular, per_sample_bce, predict_scores

__all__ = [
    "MultiLabelClassifier",
    "MulanProtocol",
    "BenchmarkData",
    "BenchmarkResult",
    "METRICS",
    "HIGHER_IS_BETTER",
    "TABLE1_DATASETS",
    "PAPER_FEATURE_SELECTION",
    "load_benchmark_data",
    "make_splits",
    "run_fold",
    "run_benchmark",
    "summary_table",
    "wilcoxon_table",
    "format_summary_markdown",
    "format_wilcoxon_markdown",
    "save_results",
    "FeatureScaler",
    "document_frequency_selection",
    "drop_rare_labels",
    "FitResult",
    "fit_tabular",
    "predict_scores",
    "per_sample_bce",
]
