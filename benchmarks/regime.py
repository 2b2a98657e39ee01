"""What the image benchmarks share in the pretrained-start regime (issue 15): options, budget, fitting, raw results.

* ``add_regime_args``: ``--regime pretrained|scratch`` (default pretrained), ``--quick``, ``--device``,
  ``--workers``, ``--seeds``, ``--max-epochs``, ``--patience``, ``--n-train/--n-val/--n-test``, ``--json``;
* ``PRETRAINED_DATA``: the regime's data: 128x128 images whose digits cover 10-25% of the side (13-32 px),
  so the final feature map of a stride-16 backbone is 8x8;
* ``fit_to_plateau``: train with the project's Trainer until the validation mAP has not improved for
  ``patience`` evaluations (or ``max_epochs``), then restore the best epoch's weights;
* ``write_results``: ``docs/results/<benchmark>.json`` in the raw-results format of
  /work/shared/RESULTS_SCHEMA.md (``--quick`` writes under ``runs/quick/`` instead);
* ``CellStore``: every finished run (one dataset x method x seed) appended to ``<results>.cells.jsonl`` as it
  ends, under a fingerprint of the profile; a rerun of the same command skips the stored runs, so a full
  benchmark can accumulate across sessions (``--time-budget`` slices, ``--no-resume`` starts over); runs in
  progress are claimed, so several processes can share one store.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from labelwise.engine.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
#: When this process started (imports, data generation and loading count against --time-budget).
T_START = time.perf_counter()

#: The regime's data options (both MultiDigits variants): objects small relative to a 128-px image.
PRETRAINED_DATA = {"image_size": 128, "min_scale": 0.1, "max_scale": 0.25}
#: Training to a plateau: at most this many epochs, stop after ``patience`` evaluations without a better val mAP.
MAX_EPOCHS, PATIENCE = 30, 4
#: With a frozen backbone an epoch costs only the head: a longer budget, so the heads reach their plateau.
FROZEN_BUDGET = {"max_epochs": 60, "patience": 6}
SEEDS = [0, 1, 2, 3, 4]
#: The image benchmarks' datasets: their raw results are complete when every run on both is stored.
DATASETS = ("multidigits20", "multidigits80")
QUICK_SEEDS = [0, 1, 2, 3, 4]


#: The options of training to a validation plateau on named datasets, which the continual benchmarks (a
#: scenario or a stream, a fixed schedule) do not take: pass ``not_applicable=NO_PLATEAU_OPTIONS``.
NO_PLATEAU_OPTIONS = ("datasets", "max_epochs", "patience", "n_val")


def _rejected(reason: str) -> Any:
    def convert(value: str) -> Any:
        raise argparse.ArgumentTypeError(f"does not apply: {reason}")

    return convert


def add_regime_args(parser: argparse.ArgumentParser, benchmark: str, *, backbone_mode: bool = False,
                    help_overrides: dict[str, str] | None = None, not_applicable: tuple[str, ...] = (),
                    not_applicable_reason: str = "") -> None:
    """The options every pretrained-regime benchmark takes (defaults shown in --help).

    ``backbone_mode=True`` adds ``--backbone-mode frozen|finetune`` (benchmarks whose methods are heads on a
    CNN feature map: DLFL, two-stage). ``help_overrides`` maps an option's dest to the help text of this
    benchmark (its own defaults). The options named in ``not_applicable`` (dests) are hidden from --help and,
    when given, stop the command at parsing with ``argument --X: does not apply: <not_applicable_reason>``.
    """
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument("--regime", choices=("pretrained", "scratch"), default="pretrained",
                        help="pretrained: from the shipped weights, 128 px, to a validation plateau; scratch: the "
                             "earlier from-scratch profile (random init, 64 px, fixed short schedule)")
    parser.add_argument("--quick", action="store_true",
                        help="same tables at a tiny size (< 1 minute; random weights if none are shipped)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), help="datasets")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help=f"seeds (None: pretrained regime {SEEDS}, --quick [0, 1], scratch [0, 1, 2])")
    parser.add_argument("--max-epochs", dest="max_epochs", type=int, default=None,
                        help=f"pretrained regime: at most this many epochs (None: {MAX_EPOCHS}; --quick 1)")
    parser.add_argument("--patience", type=int, default=None,
                        help=f"pretrained regime: early-stopping patience on val mAP, in epochs (None: {PATIENCE}; "
                             f"--quick 1); the lr drops x0.2 after patience // 2 flat epochs")
    parser.add_argument("--n-train", dest="n_train", type=int, default=None,
                        help="training images (None: pretrained regime 4000 at 128 px, digits 10-25%% of the side; "
                             "--quick 96 at 32 px)")
    parser.add_argument("--n-val", dest="n_val", type=int, default=None, help="validation images (None: 500; --quick 32)")
    parser.add_argument("--n-test", dest="n_test", type=int, default=None, help="test images (None: 2000; --quick 64)")
    if backbone_mode:
        parser.add_argument("--backbone-mode", dest="backbone_mode", choices=("frozen", "finetune"),
                            default="frozen",
                            help="pretrained regime: 'frozen' trains the heads on the shipped backbone's cached "
                                 "feature maps (computed once per dataset, no augmentation; what fits ~45 min on "
                                 f"2 CPU cores; budget {FROZEN_BUDGET} unless given); 'finetune' trains backbone "
                                 "and head end to end, as the papers do (a GPU budget)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--time-budget", dest="time_budget", type=float, default=None,
                        help="seconds from the process start: start no run that would end later (judged by the "
                             "longest run so far); runs go seed by seed, so the raw results then hold fewer seeds, "
                             "each complete (None: no limit)")
    parser.add_argument("--results", default=None,
                        help=f"raw-results JSON (default docs/results/{benchmark}.json; --quick: "
                             f"runs/quick/{benchmark}.json)")
    parser.add_argument("--no-resume", dest="resume", action="store_false",
                        help="ignore the runs stored in <results>.cells.jsonl (by default a rerun with the same "
                             "profile skips them and trains only the missing ones)")
    for action in parser._actions:
        if help_overrides and action.dest in help_overrides:
            action.help = help_overrides[action.dest]
        if action.dest in not_applicable:
            action.help, action.type = argparse.SUPPRESS, _rejected(not_applicable_reason)


def apply_common(p: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Fill the profile with the command-line overrides shared by every benchmark."""
    if args.seeds is not None:
        p["seeds"] = list(args.seeds)
    for key in ("n_train", "n_val", "n_test", "max_epochs", "patience"):
        value = getattr(args, key, None)
        if value is not None:
            p[key] = value
    p["device"], p["workers"] = args.device, args.workers
    mode = getattr(args, "backbone_mode", None)
    if mode is not None and getattr(args, "regime", "pretrained") == "pretrained":
        p["backbone_mode"] = mode
        if mode == "frozen" and not args.quick:
            p.update({k: v for k, v in FROZEN_BUDGET.items() if getattr(args, k, None) is None})
    return p


class Budget:
    """A wall-clock budget counted from ``start`` (default: the process start, :data:`T_START`).

    ``exhausted()`` is called before each run; it is True when the next run would not end within ``seconds``:
    the elapsed time plus the longest interval between two earlier calls (one run) exceeds the budget. Never
    True when ``seconds`` is None.
    """

    def __init__(self, seconds: float | None, start: float | None = None) -> None:
        self.seconds, self.skipped = seconds, 0
        self.start = T_START if start is None else start
        self._last: float | None = None
        self.longest_run = 0.0

    def exhausted(self) -> bool:
        now = time.perf_counter()
        if self._last is not None:
            self.longest_run = max(self.longest_run, now - self._last)
        self._last = now
        if self.seconds is not None and now - self.start + self.longest_run > self.seconds:
            self.skipped += 1
            return True
        return False

    def report(self) -> None:
        if self.skipped:
            print(f"time budget of {self.seconds:.0f} s reached: later runs were skipped (the raw results hold "
                  f"the seeds that completed)", flush=True)


def shipped_or_none(name: str) -> str | None:
    """``name`` if those weights are shipped, else None (a quick run then starts from random weights)."""
    from labelwise.models.shipped import list_shipped

    return name if name in list_shipped() else None


def require_shipped(name: str) -> str:
    from labelwise.models.shipped import list_shipped

    if name not in list_shipped():
        raise SystemExit(f"the pretrained regime needs the shipped weights {name!r}: run "
                         f"'labelwise pretrain --config pretrain/<recipe> --ship' (docs/pretrained.md), "
                         f"or use --quick / --regime scratch")
    return name


def trainer_options(p: dict[str, Any]) -> dict[str, Any]:
    """Trainer keys of the pretrained regime (plateau schedule + early stopping, best weights restored)."""
    accel = "cuda" if str(p.get("device", "cpu")).startswith("cuda") else "cpu"
    opts = {
        "accelerator": accel, "max_epochs": p["max_epochs"], "early_stopping_patience": p["patience"],
        "eval_every": 1, "monitor": "mAP", "schedule": "plateau", "plateau_patience": max(1, p["patience"] // 2),
        "plateau_factor": 0.2, "num_workers": int(p.get("workers", 0)), "progress": False, "tensorboard": False,
        "report": False, "save_checkpoints": False,
    }
    if accel == "cuda":
        opts.update(precision="bf16-mixed", pin_memory=True)
    return opts


class _KeepBest(Callback):
    """Trainer callback: a copy (in memory) of the weights of the best validation epoch so far."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.state, self.epoch = model, None, None

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, Any]) -> None:
        if trainer.best_epoch == epoch and self.epoch != epoch:
            self.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.epoch = epoch


def fit_to_plateau(trainer_cfg: Any, model: torch.nn.Module, loss: torch.nn.Module, train: Any, val: Any) -> Any:
    """Fit with the Trainer (early stopping on val mAP), then load the best epoch's weights into ``model``.

    Returns the trainer (``trainer.best_epoch`` / ``trainer.best_metric`` hold the plateau).
    """
    from labelwise.engine import Trainer

    keep = _KeepBest(model)
    trainer = Trainer(trainer_cfg, callbacks=[keep])
    trainer.fit(model, loss, train, val)
    if keep.state is not None:
        model.load_state_dict(keep.state)
    return trainer


class CachedSplits:
    """``train``/``val``/``test`` as the frozen backbone's feature maps (same targets, masks, class names)."""

    def __init__(self, train: Any, val: Any, test: Any, class_names: list[str], seconds: float) -> None:
        self.train, self.val, self.test, self.class_names, self.seconds = train, val, test, class_names, seconds


def cache_splits(backbone: torch.nn.Module, data: Any, device: str = "cpu") -> CachedSplits:
    """``data``'s train / val / test splits as ``backbone``'s feature maps (one map per image).

    The backbone runs once over each split with the evaluation transform (the training split too: a cache holds
    one map per image, so there is no training augmentation).
    """
    from labelwise.models.feature_cache import cache_feature_maps

    t0 = time.perf_counter()
    train = cache_feature_maps(backbone, data.train.view(None, transform=data.test.transform), device=device)
    val = cache_feature_maps(backbone, data.val, device=device)
    test = cache_feature_maps(backbone, data.test, device=device)
    seconds = time.perf_counter() - t0
    print(f"cached feature maps {tuple(train.inputs.shape[1:])} of {len(train)}/{len(val)}/{len(test)} images in "
          f"{seconds:.0f} s", flush=True)
    return CachedSplits(train, val, test, list(data.class_names), seconds)


def frozen_splits(cfg: Any, data: Any, p: dict[str, Any]) -> Any:
    """With ``--backbone-mode frozen``: the splits of ``data`` as cached feature maps of ``cfg``'s backbone.

    Every method of a benchmark shares the cache, since they all start from the same backbone weights
    (:func:`cache_splits`). Returns ``data`` unchanged when fine-tuning.
    """
    if p.get("backbone_mode") != "frozen":
        return data
    from labelwise.models.feature_cache import split_backbone
    from labelwise.run import build_model

    return cache_splits(split_backbone(build_model(cfg, len(data.class_names))), data, p.get("device", "cpu"))


def build_run_model(cfg: Any, num_classes: int, p: dict[str, Any]) -> torch.nn.Module:
    """The model of one run: the whole model, or (``--backbone-mode frozen``) its head on cached maps."""
    from labelwise.run import build_model

    model = build_model(cfg, num_classes)
    if p.get("backbone_mode") == "frozen":
        from labelwise.models.feature_cache import split_backbone

        split_backbone(model)
    return model


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine(device: str) -> str:
    """One line: the device the runs used, the CPU and the library versions."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        dev = f"1 {torch.cuda.get_device_name(0)} GPU"
    else:
        dev = "no GPU (CPU run)"
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, {dev}, {torch.get_num_threads()} torch threads; "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def header(benchmark: str, p: dict[str, Any], args: argparse.Namespace) -> str:
    """The budget line printed first (every default visible)."""
    keys = ", ".join(f"{k}={v}" for k, v in p.items())
    return f"{benchmark} benchmark, regime {args.regime}{' (quick)' if args.quick else ''}: {keys}"


def results_path(benchmark: str, args: argparse.Namespace) -> Path:
    if args.results:
        return Path(args.results)
    if args.quick:
        return ROOT / "runs" / "quick" / f"{benchmark}.json"
    if args.regime != "pretrained":
        return ROOT / "runs" / args.regime / f"{benchmark}.json"
    return ROOT / "docs" / "results" / f"{benchmark}.json"


#: Profile keys that do not change a run's numbers (excluded from the store's fingerprint).
_NOT_IN_FINGERPRINT = ("seeds", "device", "workers", "threads")


def profile_fingerprint(p: dict[str, Any]) -> str:
    """A short hash of the profile's result-shaping keys (everything but seeds, device, workers, threads)."""
    keep = {k: v for k, v in p.items() if k not in _NOT_IN_FINGERPRINT}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


class CellStore:
    """Finished runs of a benchmark, one JSON line each, so that a rerun skips them (resume across sessions).

    A cell is one run, keyed by ``(dataset, setting, seed)``; its value is the list of raw rows the run produced
    (a run can stand for several method names, e.g. the two-stage reference setting). The file is a
    :class:`labelwise.tabular.sweep.ResultStore` (the sweep's JSON-lines store): a line is appended and synced
    as each run ends, so a killed process loses at most the run in progress. Only lines written under
    the same profile fingerprint are reused: a changed budget or data size starts a fresh set of cells in the
    same file (the others stay, ignored). ``resume=False`` ignores every stored line (they are kept).

    Several processes can share a store (e.g. ``--seeds 0 1 2 3 4`` and ``--seeds 4 3 2 1 0`` on two cores):
    a cell not yet known is looked up again when the file has grown, and :meth:`claim` marks a run as running
    (a small file under ``<store>.running/`` naming the process), so another process skips it instead of training
    it a second time; :meth:`put` releases the claim. A claim whose process is gone (killed) is stale and ignored.

    ``plateau_reuse=True`` (the pretrained regime: plateau schedule, validation every epoch, early stopping)
    also takes the runs of a profile that differs only in ``max_epochs`` when they stopped on a plateau below
    both caps: a run whose best epoch ``b`` has ``b + patience <= min(max_epochs, old max_epochs)`` ended by
    early stopping at epoch ``b + patience``, and nothing else in such training depends on ``max_epochs``, so
    the same seed under the other cap trains the same epochs to the same numbers. Raising a cap that stopped
    some runs early therefore reruns only those (the adopted runs keep their command, marked with their cap).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "b.cells.jsonl"
    >>> store = CellStore(path, {"n_train": 10, "seeds": [0]})
    >>> store.put(("md20", "ofml", 0), [{"dataset": "md20", "method": "ofml", "seed": 0, "mAP": 90.0}])
    >>> again = CellStore(path, {"n_train": 10, "seeds": [0, 1]})  # doctest: +ELLIPSIS
    resuming: 1 finished runs in .../b.cells.jsonl (profile ...)
    >>> again.get(("md20", "ofml", 0))[0]["mAP"]
    90.0
    >>> CellStore(path, {"n_train": 20}).get(("md20", "ofml", 0)) is None
    True
    >>> capped = {"max_epochs": 30, "patience": 4}
    >>> old = CellStore(path, capped)
    >>> old.put(("md20", "gvpt", 0), [{"method": "gvpt", "best_epoch": 29}])  # stopped by the cap of 30
    >>> old.put(("md20", "mlvpt", 0), [{"method": "mlvpt", "best_epoch": 16}])  # stopped on a plateau at 20
    >>> longer = CellStore(path, {**capped, "max_epochs": 60}, plateau_reuse=True)  # doctest: +ELLIPSIS
    resuming: 1 finished runs in ... (profile ...; 1 of them from a profile with another max_epochs, ...)
    >>> longer.get(("md20", "mlvpt", 0))[0]["best_epoch"], longer.get(("md20", "gvpt", 0))
    (16, None)
    """

    def __init__(self, path: Path, profile: dict[str, Any], *, resume: bool = True,
                 plateau_reuse: bool = False) -> None:
        from labelwise.tabular.sweep import ResultStore  # the project's append-only JSON-lines store

        self.path = Path(path)
        self._store = ResultStore(self.path)
        self.fingerprint = profile_fingerprint(profile)
        self.resume = bool(resume)
        self._records: dict[str, dict[str, Any]] = {}  # cell key -> its stored record (rows, command)
        self._adopted: dict[str, dict[str, Any]] = {}  # runs of another cap that stopped on a plateau below both
        self._other_caps = _other_caps(profile) if plateau_reuse else {}
        self._size = -1
        self._reload()
        if self._records or self._adopted:
            n = len(self._records.keys() | self._adopted.keys())
            adopted = len(self._adopted.keys() - self._records.keys())
            more = (f"; {adopted} of them from a profile with another max_epochs, stopped on a plateau below both "
                    "caps") if adopted else ""
            print(f"resuming: {n} finished runs in {self.path} (profile {self.fingerprint}{more})", flush=True)

    def _reload(self) -> None:
        """Read the runs of this profile that are in the file now (another process may have added some)."""
        size = self.path.stat().st_size if self.path.is_file() else 0
        if not self.resume or size == self._size:
            return
        self._size = size
        # a line torn by a kill mid-write is logged (file and line) and skipped: that run is redone
        for rec in self._store.records():
            fingerprint = rec.get("fingerprint")
            if fingerprint == self.fingerprint:
                self._records[rec["cell"]] = rec
            elif fingerprint in self._other_caps:
                cap, patience, other = self._other_caps[fingerprint]
                epochs = [r.get("best_epoch") for r in rec.get("rows") or []]
                if epochs and all(isinstance(e, int | float) and e + patience <= min(cap, other) for e in epochs):
                    command = rec.get("command", "(stored before commands were recorded)")
                    self._adopted[rec["cell"]] = {**rec, "command": f"{command} [max_epochs={other}]"}

    @staticmethod
    def _key(cell: tuple[Any, ...]) -> str:
        return "|".join(str(c) for c in cell)

    def get(self, cell: tuple[Any, ...]) -> list[dict[str, Any]] | None:
        """The stored rows of ``cell``, or None if it has not run under this profile.

        A cell not yet known is looked up again in the file when it has grown, so two processes running the same
        command (e.g. with ``--seeds`` in opposite orders) skip what the other has finished.
        """
        key = self._key(cell)
        if key not in self._records and key not in self._adopted:
            self._reload()
        rec = self._records.get(key) or self._adopted.get(key)
        return None if rec is None else rec["rows"]

    def covers(self, cells: Iterable[tuple[Any, ...]]) -> bool:
        """Whether every one of ``cells`` is stored (a benchmark's full default grid: its raw results complete)."""
        return all(self.get(cell) is not None for cell in cells)

    def put(self, cell: tuple[Any, ...], rows: list[dict[str, Any]]) -> None:
        """Store a finished run's rows (one line, appended under a lock and synced at once); releases its claim."""
        rec = {"cell": self._key(cell), "fingerprint": self.fingerprint, "rows": rows,
               "command": command_line(self.path.name.split(".")[0])}
        self._records[rec["cell"]] = rec
        self._store.append(rec)
        self.release(cell)
        self._reload()  # with what other processes appended since, so rows() holds every run stored now

    def _claim_path(self, cell: tuple[Any, ...]) -> Path:
        name = hashlib.sha1(f"{self.fingerprint}|{self._key(cell)}".encode()).hexdigest()[:20]
        return self.path.with_name(self.path.name + ".running") / f"{name}.json"

    def claim(self, cell: tuple[Any, ...]) -> bool:
        """Mark ``cell`` as running in this process; False when it is stored or another live process runs it.

        The claim is a file created exclusively (``O_EXCL``) under ``<store>.running/`` holding the process id,
        host and start time. A claim left by a process that no longer runs (same host, pid gone) or older than
        :data:`CLAIM_STALE_S` is taken over. Without ``resume`` every cell is this process's to run.
        """
        if not self.resume:
            return True
        path = self._claim_path(cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                           "cell": self._key(cell)})
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if _claim_alive(path):
                    return False
                path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(mine)
            self._reload()  # another process may have stored it between our get() and this claim
            if self._key(cell) in self._records:
                self.release(cell)
                return False
            return True
        return False

    def release(self, cell: tuple[Any, ...]) -> None:
        """Remove this process's claim on ``cell`` (if any)."""
        path = self._claim_path(cell)
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                path.unlink(missing_ok=True)
        except (OSError, ValueError):
            pass

    def rows(self) -> list[dict[str, Any]]:
        """The rows of every run stored under this profile (this process's and earlier ones'), in store order.

        A benchmark whose full run is split into several commands (e.g. by scenario) writes these, so the raw
        results hold every finished run of the profile.
        """
        return [row for rec in self._all().values() for row in rec["rows"]]

    def _all(self) -> dict[str, dict[str, Any]]:
        """Every run of this profile: those stored under it, then the adopted ones not rerun since."""
        return {**self._records, **{k: v for k, v in self._adopted.items() if k not in self._records}}

    def commands(self) -> dict[str, int]:
        """The commands that ran the stored runs, with how many runs each (a full run split into several commands)."""
        counts: dict[str, int] = {}
        for rec in self._all().values():
            command = rec.get("command", "(stored before commands were recorded)")
            counts[command] = counts.get(command, 0) + 1
        return counts

    def __len__(self) -> int:
        return len(self._all())


#: A claim older than this is taken over even when its process cannot be checked (another host).
CLAIM_STALE_S = 24 * 3600


def _claim_alive(path: Path) -> bool:
    """Whether the process that wrote the claim ``path`` still runs (unreadable or torn claims are stale)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        pid, host, started = int(info["pid"]), str(info["host"]), float(info["started"])
    except (OSError, ValueError, KeyError, TypeError):
        try:  # a claim being written this instant is empty for a moment
            return time.time() - path.stat().st_mtime < 10
        except OSError:
            return False
    if time.time() - started > CLAIM_STALE_S:
        return False
    if host != socket.gethostname():
        return True  # cannot be checked from here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _other_caps(profile: dict[str, Any], search: int = 1000) -> dict[str, tuple[int, int, int]]:
    """Fingerprints of ``profile`` with another ``max_epochs`` (1..search) -> (this cap, patience, that cap)."""
    cap, patience = profile.get("max_epochs"), profile.get("patience")
    if not isinstance(cap, int) or not isinstance(patience, int):
        return {}
    return {profile_fingerprint({**profile, "max_epochs": other}): (cap, patience, other)
            for other in range(1, search + 1) if other != cap}


def cell_store(benchmark: str, args: argparse.Namespace, p: dict[str, Any]) -> CellStore:
    """The benchmark's store, beside its raw-results file (``docs/results/<benchmark>.cells.jsonl``)."""
    results = results_path(benchmark, args)
    # the pretrained regime trains to a plateau (plateau schedule, early stopping): a run that stopped below
    # another cap is the same run under this one
    return CellStore(results.with_name(results.stem + ".cells.jsonl"), p, resume=getattr(args, "resume", True),
                     plateau_reuse=getattr(args, "regime", "pretrained") == "pretrained")


def full_datasets(args: argparse.Namespace) -> list[str]:
    """The datasets a benchmark's raw results need to be complete: both (``DATASETS``); ``--quick``: those it ran."""
    return list(args.datasets) if args.quick else list(DATASETS)


def command_line(benchmark: str) -> str:
    """This process's command, as a user would type it: ``python benchmarks/<benchmark>.py <arguments>``."""
    return " ".join(["python", f"benchmarks/{benchmark}.py", *sys.argv[1:]])


def write_results(benchmark: str, rows: list[dict[str, Any]], args: argparse.Namespace, p: dict[str, Any],
                  seconds: float, extra: dict[str, Any] | None = None, complete: bool = True,
                  store: CellStore | None = None) -> Path:
    """Write the raw per-seed rows in the RESULTS_SCHEMA format; returns the path.

    Benchmarks call it after every run with ``complete=False`` (a killed run leaves what it measured) and once
    at the end. With ``store``, the file also lists ``commands``: each command that ran stored runs of this
    profile, with how many (``command`` is the one that wrote the file).
    """
    path = results_path(benchmark, args)
    path.parent.mkdir(parents=True, exist_ok=True)
    if rows:
        rows = sorted(rows, key=lambda r: (str(r.get("dataset")), int(r.get("seed", 0))))  # resumed runs interleave
    doc = {
        "benchmark": benchmark,
        "command": command_line(benchmark),
        "commit": git_commit(),
        "regime": args.regime,
        "quick": bool(args.quick),
        "complete": bool(complete),
        "machine": machine(p.get("device", "cpu")),
        "profile": p,
        "seconds": round(seconds, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **({"commands": store.commands()} if store is not None else {}),
        "rows": rows,
        **(extra or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: a kill mid-write leaves the previous file
    return path
