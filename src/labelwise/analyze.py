"""``labelwise analyze TOOL``: the command lines of the analysis tools (CLI layer; printing happens here).

==========  ===============================================================================================
tool        what it does
==========  ===============================================================================================
angles      label-feature angles of trained models and the optimal-angle curve (DLFL Fig. 5c / 8):
            :mod:`labelwise.analysis.angles`
groups      co-occurrence label groups for ML-VPT from a dataset's training labels:
            :mod:`labelwise.analysis.grouping`
==========  ===============================================================================================

The tools' computations live in :mod:`labelwise.analysis`, which sits below the engine and the run layer
(docs/architecture.md, "Layers"); loading a trained run (``labelwise.run.load_model``) happens here, above it.

Examples
--------
>>> from labelwise.analyze import ANALYSIS_TOOLS
>>> sorted(ANALYSIS_TOOLS)
['angles', 'groups']
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .analysis.angles import (
    AngleResult,
    angle_statistics,
    compute_angles,
    plot_angle_distributions,
    plot_optimal_angle_curve,
    write_angle_csv,
)
from .analysis.grouping import group_labels, plot_label_groups
from .data import load_dataset
from .engine.run_dir import OutputLayout, claim_output_dir
from .run import build_datasets, load_model

__all__ = ["ANALYSIS_TOOLS", "angles_main", "groups_main"]


#: What :func:`angles_main` writes into ``--output`` (``--overwrite`` replaces these in a previous analysis).
ANGLES_LAYOUT = OutputLayout("angle analysis", files=("optimal_angle_curve.png", "angle_distributions.png",
                                                      "angles_per_class.csv", "angles_summary.csv"))


def _parse_angles_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="labelwise analyze angles",
        description=(
            "Angles between label features and class weights of trained models (DLFL Fig. 8), their CSV "
            "statistics, and the theoretical optimal-angle curve (Fig. 5c). Without --checkpoint only the curve "
            "is drawn."
        ),
    )
    parser.add_argument("--checkpoint", action="append", default=[], metavar="RUN",
                        help="run directory or checkpoint of a trained model (repeat to compare models)")
    parser.add_argument("--label", action="append", default=[],
                        help="display name of each --checkpoint, in order (default: the model name)")
    parser.add_argument("--split", default="test", choices=["test", "val"],
                        help="evaluated split of the run's configuration (default: test)")
    parser.add_argument("--which", default="best", choices=["best", "last"], help="checkpoint picked in a run directory")
    parser.add_argument("--module", default="mean", choices=["mean", "last"],
                        help="SSCA: mean of the modules' cosines (what predicts) or the last module's")
    parser.add_argument("--output", required=True, help="output directory (new or empty, unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="allow a non-empty --output: replace the angle analysis there (or write into another "
                             "directory, keeping its other files)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-classes", type=int, default=40, help="classes shown in the distribution plot")
    parser.add_argument("--markers", default=None,
                        help="curve markers as NAME=M,NAME=M (default: VOC, PA-100K, PETA, RAP, MS-COCO, NUS-WIDE)")
    args = parser.parse_args(argv)
    if args.label and len(args.label) != len(args.checkpoint):
        parser.error(f"{len(args.label)} --label for {len(args.checkpoint)} --checkpoint")
    return args


def _parse_markers(text: str | None) -> dict[str, int] | None:
    if text is None:
        return None
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"--markers item {item!r} is not NAME=M with a positive integer M")
        out[name.strip()] = int(value)
    return out


def angles_main(argv: Sequence[str] | None = None) -> int:
    """``labelwise analyze angles``; returns the exit code. :mod:`labelwise.analysis.angles` lists the files written.

    Examples
    --------
    >>> import tempfile, os
    >>> out = tempfile.mkdtemp()
    >>> angles_main(["--output", out])  # doctest: +ELLIPSIS
    wrote .../optimal_angle_curve.png
    0
    >>> sorted(os.listdir(out))
    ['optimal_angle_curve.png']
    """
    args = _parse_angles_args(argv)
    markers = _parse_markers(args.markers)
    with claim_output_dir(args.output, overwrite=args.overwrite, layout=ANGLES_LAYOUT, log=print) as out:
        return _write_angle_outputs(args, markers, out)


def _write_angle_outputs(args: argparse.Namespace, markers: dict[str, int] | None, out: Path) -> int:
    written = [plot_optimal_angle_curve(out / "optimal_angle_curve.png", markers=markers)]
    if args.checkpoint:
        results: dict[str, AngleResult] = {}
        for i, ckpt in enumerate(args.checkpoint):
            model, cfg, _ = load_model(ckpt, which=args.which, device=args.device)
            data = build_datasets(cfg, splits=(args.split,))
            ds = data.test if args.split == "test" else data.val
            if ds is None:
                raise ValueError(f"{ckpt}: the run configuration has no {args.split} split")
            label = args.label[i] if args.label else cfg.model.name
            if label in results:
                label = f"{label}-{i}"
            results[label] = compute_angles(model, ds, batch_size=args.batch_size, device=args.device,
                                            module=args.module)
        stats = {label: angle_statistics(r.angles, r.targets, r.class_names, known=r.known)
                 for label, r in results.items()}
        written += list(write_angle_csv(stats, out))
        written.append(plot_angle_distributions(results, out / "angle_distributions.png", max_classes=args.max_classes))
        for label, s in stats.items():
            sm = s["summary"]
            print(f"{label}: median positive {sm['median_positive']:.2f}°, median negative "
                  f"{sm['median_negative']:.2f}° (OFML optimum {sm['optimal_angle']:.2f}° for M={sm['M']})")
    for p in written:
        print(f"wrote {p}")
    return 0


def groups_main(argv: Sequence[str] | None = None) -> int:
    """``labelwise analyze groups DATASET --out groups.json [--plot groups.png]``.

    Computes the groups from the training split of a registered dataset (``--option key=value`` are passed
    to ``load_dataset``; values are parsed as JSON when possible).
    """
    parser = argparse.ArgumentParser(prog="labelwise analyze groups", description=groups_main.__doc__)
    parser.add_argument("dataset")
    parser.add_argument("--root", default=None)
    parser.add_argument("--split", default="train")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--n-groups", type=int, default=5)
    parser.add_argument("--tau", type=float, default=1.0)
    parser.add_argument("--normalization", default="conditional", choices=["conditional", "jaccard"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--plot", default=None)
    args = parser.parse_args(argv)
    options: dict[str, Any] = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--option {item!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    ds = load_dataset(args.dataset, root=args.root, split=args.split, **options)
    groups = group_labels(ds.targets, args.n_groups, tau=args.tau, normalization=args.normalization,
                          seed=args.seed, class_names=list(ds.class_names))
    groups.meta.update({"dataset": args.dataset, "split": args.split, "options": options})
    groups.save(args.out)
    print(f"wrote {args.out}: co sizes {groups.co_sizes}, dc sizes {groups.dc_sizes}")
    if args.plot:
        plot_label_groups(groups, ds.targets, args.plot)
        print(f"wrote {args.plot}")
    return 0


#: ``labelwise analyze TOOL`` -> its ``main(argv) -> exit code``.
ANALYSIS_TOOLS: dict[str, Callable[[Sequence[str] | None], int]] = {"angles": angles_main, "groups": groups_main}
