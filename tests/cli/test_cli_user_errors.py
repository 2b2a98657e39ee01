"""Every bad input a user can give ends in one clear line, and nothing of the user's is lost or overwritten.

One test per case of the table in docs/reliability.md (the cases of the run-directory lock, seeding, disk-full
checkpoints, umask, ... are tested with that code). Each test writes a small fixture in the real on-disk
format, runs the command line (``labelwise.cli.main``) or the API, and asserts the exact message, the exit
status and that every file that was there before is still there, unchanged.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import pathlib
import pickle
import re
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from labelwise.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore:`torch.jit:FutureWarning")

COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
TRAINER = ("trainer: {max_epochs: 1, batch_size: 8, lr: 0.003, accelerator: cpu, progress: false, tensorboard: false,"
           " report: false}\n")


# -- helpers -----------------------------------------------------------------------------------------------
def snapshot(root):
    """``{relative path: sha256}`` of every file under ``root``."""
    root = pathlib.Path(root)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def assert_kept(before, root):
    """Every file of ``before`` is still under ``root`` with the same content."""
    after = snapshot(root)
    lost = sorted(set(before) - set(after))
    changed = sorted(k for k in before if k in after and after[k] != before[k])
    assert not lost and not changed, (lost, changed)


def run(argv, capsys):
    """Exit status and the stderr lines of ``labelwise ARGV``."""
    status = main([str(a) for a in argv])
    return status, capsys.readouterr().err.strip().splitlines()


def one_error(argv, capsys, status=2):
    """Run a command that must end in one line ``labelwise: error: ...``; return the message.

    Lines before it may only be the run's progress messages (``[labelwise] ...``): no traceback, no second error.
    """
    code, err = run(argv, capsys)
    assert code == status, err
    assert err and err[-1].startswith("labelwise: error: "), err
    assert all(ln.startswith("[labelwise] ") for ln in err[:-1]), err
    return err[-1][len("labelwise: error: "):]


def _image(rng, labels, size=16):
    img = np.full((size, size, 3), 128, dtype=np.uint8) + rng.integers(0, 20, (size, size, 3), dtype=np.uint8)
    for i, name in enumerate(["red", "green", "blue"]):
        if name in labels:
            img[(i * 5) % 12:(i * 5) % 12 + 4, :] = COLORS[name]
    return Image.fromarray(img)


def write_tags(root, *, separator=";", header=("image", "labels"), sizes=(("train", 16), ("val", 8), ("test", 8))):
    """``root/{train,val,test}.csv`` (an ``image`` path column, labels joined by ``separator``) and PNGs."""
    root = pathlib.Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in sizes:
        rows = []
        for i in range(n):
            labels = [c for c in ("red", "green", "blue") if rng.random() < 0.5] or ["red"]
            if i == 0:
                labels = ["red", "green"]  # every split has a multi-label row
            rel = f"images/{split}_{i:02d}.png"
            _image(rng, labels).save(root / rel)
            rows.append((rel, separator.join(labels)))
        with open(root / f"{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
    return root


def write_config(path, data_root, *, options="", model="{name: ofml, backbone: test_resnet}", extra=""):
    path = pathlib.Path(path)
    opts = f", options: {{{options}}}" if options else ""
    path.write_text(f"data: {{name: csv, root: '{data_root}', image_size: 32{opts}}}\nmodel: {model}\n{TRAINER}{extra}")
    return path


@pytest.fixture(scope="module")
def tags(tmp_path_factory):
    """A CSV image list with ';'-separated labels and an ``image`` column (no path_column needed)."""
    return write_tags(tmp_path_factory.mktemp("tags"))


@pytest.fixture(scope="module")
def tag_run(tmp_path_factory, tags):
    """A one-epoch run on ``tags`` (separator ';')."""
    tmp = tmp_path_factory.mktemp("tag_run")
    cfg = write_config(tmp / "tags.yaml", tags, options="separator: ';'")
    out = tmp / "run"
    assert main(["train", "--config", str(cfg), "--output", str(out), "--no-test"]) == 0
    return out


@pytest.fixture()
def cfg_file(tmp_path, tags):
    return write_config(tmp_path / "c.yaml", tags, options="separator: ';'")


# -- configuration files and overrides -----------------------------------------------------------------------
def test_missing_config_file(tmp_path, capsys):
    before = snapshot(tmp_path)
    assert one_error(["train", "--config", tmp_path / "nope.yaml"], capsys) == (
        f"config file not found: {tmp_path / 'nope.yaml'}; not a shipped config name either "
        "('labelwise configs list' lists them)")
    assert snapshot(tmp_path) == before


def test_invalid_yaml_names_line_and_column(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {name: csv\nmodel: {name: ofml}\n")
    before = snapshot(tmp_path)
    msg = one_error(["train", "-c", cfg], capsys)
    assert msg.startswith(f"{cfg}: invalid YAML, line 2, column 6: "), msg
    assert snapshot(tmp_path) == before


def test_config_top_level_not_a_mapping(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("- data\n- model\n")
    assert one_error(["train", "-c", cfg], capsys) == f"{cfg}: the top level must be a mapping of sections, got list"


def test_duplicate_top_level_key_names_both_lines(tmp_path, capsys, tags):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{name: csv, root: '{tags}', image_size: 32}}\nmodel: {{name: ofml}}\n"
                   "model: {name: mlp}\n")
    before = snapshot(tmp_path)
    assert one_error(["train", "-c", cfg], capsys) == f"{cfg}: model: duplicate key on lines 2 and 3 (keep one)"
    assert snapshot(tmp_path) == before


def test_duplicate_nested_key_names_dotted_key(tmp_path, capsys, tags):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{name: csv, root: '{tags}', image_size: 32}}\nmodel: {{name: ofml}}\n"
                   "trainer:\n  lr: 0.1\n  max_epochs: 2\n  lr: 0.01\n")
    assert one_error(["train", "-c", cfg], capsys) == f"{cfg}: trainer.lr: duplicate key on lines 4 and 6 (keep one)"


def test_unknown_key_suggests_the_valid_one(cfg_file, capsys):
    msg = one_error(["train", "-c", cfg_file, "trainer.max_epoch=3"], capsys)
    assert msg.startswith(f"{cfg_file}: trainer.max_epoch: unknown key (did you mean 'max_epochs'?); valid keys: "), msg


def test_override_without_equals_sign(cfg_file, capsys):
    assert one_error(["train", "-c", cfg_file, "trainer.lr"], capsys) == (
        f"{cfg_file}: override 'trainer.lr' is not of the form dotted.key=value")


def test_out_of_range_value(cfg_file, capsys):
    assert one_error(["train", "-c", cfg_file, "trainer.lr=0"], capsys) == (
        f"{cfg_file}: trainer.lr: Input should be greater than 0")


def test_infinite_learning_rate_rejected(cfg_file, capsys):
    before = snapshot(cfg_file.parent)
    assert one_error(["train", "-c", cfg_file, "trainer.lr=.inf"], capsys) == (
        f"{cfg_file}: trainer.lr: must be a finite number, got inf")
    assert one_error(["train", "-c", cfg_file, "trainer.lr=inf"], capsys) == (
        f"{cfg_file}: trainer.lr: must be a finite number, got inf")
    assert snapshot(cfg_file.parent) == before


def test_nan_in_a_model_option_rejected(tmp_path, tags, capsys):
    cfg = write_config(tmp_path / "c.yaml", tags, model="{name: ofml, backbone: test_resnet, scale: .nan}")
    assert one_error(["train", "-c", cfg], capsys) == f"{cfg}: model.scale: must be a finite number, got nan"


def test_huge_learning_rate_passes_validation(cfg_file):
    from labelwise.config import load_config

    assert load_config(cfg_file, ["trainer.lr=1e6"]).trainer.lr == 1e6  # divergence is caught while training


def test_monitor_not_a_metric_of_the_evaluator(cfg_file, capsys):
    assert one_error(["train", "-c", cfg_file, "trainer.evaluator=mulan"], capsys) == (
        f"{cfg_file}: trainer.monitor: 'mAP' is not a metric of trainer.evaluator 'mulan'; choose one of coverage, "
        "hamming_loss, macro_auc, macro_f1, micro_f1, one_error, ranking_loss, subset_accuracy")


def test_monitor_typo_suggests_the_metric(cfg_file, capsys):
    msg = one_error(["train", "-c", cfg_file, "trainer.monitor=map"], capsys)
    assert msg.startswith(f"{cfg_file}: trainer.monitor: 'map' is not a metric of trainer.evaluator 'multilabel' "
                          "(did you mean 'mAP'?); choose one of CF1, CP, CR, FPR, OF1, OP, OR, mAP, macro_f1"), msg


def test_unknown_model_name(cfg_file, capsys):
    msg = one_error(["train", "-c", cfg_file, "model.name=ofmll"], capsys)
    assert msg.startswith(f"{cfg_file}: model.name: unknown model 'ofmll'"), msg


def test_unknown_loss_name(cfg_file, capsys):
    msg = one_error(["train", "-c", cfg_file, "loss.name=focall"], capsys)
    assert msg.startswith(f"{cfg_file}: loss.name: unknown loss 'focall'"), msg


def test_unknown_dataset_name(cfg_file, capsys):
    msg = one_error(["train", "-c", cfg_file, "data.name=cvs"], capsys)
    assert msg.startswith(f"{cfg_file}: data.name: unknown dataset 'cvs'"), msg


def test_unknown_model_option_suggests(cfg_file, capsys):
    msg = one_error(["train", "-c", cfg_file, "model.poolin=max"], capsys)
    assert msg.startswith(f"{cfg_file}: model.poolin: unknown option of model 'ofml' (did you mean 'pooling'?)"), msg


def test_reinit_head_without_weights(cfg_file, capsys):
    assert one_error(["train", "-c", cfg_file, "model.reinit_head=true"], capsys) == (
        f"{cfg_file}: model: reinit_head applies to the model loaded from model.weights; set model.weights too")


# -- data ----------------------------------------------------------------------------------------------------
def test_wrong_separator_is_an_error_naming_the_option(tmp_path, tags, capsys):
    cfg = write_config(tmp_path / "c.yaml", tags)  # labels are 'red;green', read with the default ' '
    before = {**snapshot(tags), **{f"cfg/{k}": v for k, v in snapshot(tmp_path).items()}}
    assert one_error(["train", "-c", cfg, "--output", tmp_path / "run"], capsys) == (
        f"{tags / 'train.csv'}, line 2: label 'red;green' contains ';', a likely label separator, but "
        "data.options.separator is a space; set data.options.separator: ';' (or list the class in "
        "data.options.class_names)")
    assert_kept({k: v for k, v in before.items() if not k.startswith("cfg/")}, tags)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_space_separated_labels_read_with_another_separator(tmp_path, capsys):
    data = write_tags(tmp_path / "d", separator=" ")
    cfg = write_config(tmp_path / "c.yaml", data, options="separator: '|'")
    assert one_error(["train", "-c", cfg, "--output", tmp_path / "run"], capsys) == (
        f"{data / 'train.csv'}, line 2: label 'red green' contains a space, a likely label separator, but "
        "data.options.separator is '|'; set data.options.separator: ' ' (or list the class in "
        "data.options.class_names)")


def test_class_names_with_spaces_are_not_separators(tmp_path):
    from labelwise.data import load_dataset

    f = tmp_path / "t.csv"
    f.write_text("path,labels\na.png,traffic light|car\nb.png,car\n")
    ds = load_dataset("csv", root=str(f), separator="|")
    assert ds.class_names == ["car", "traffic light"] and ds.targets.tolist() == [[1, 1], [1, 0]]


def test_path_column_is_detected_by_the_loader(tmp_path):
    from labelwise.data import load_dataset

    f = tmp_path / "t.csv"
    f.write_text("Image,labels\na.png,cat\nb.png,dog\n")
    ds = load_dataset("csv", root=str(f))
    assert [os.path.basename(p) for p in ds.paths] == ["a.png", "b.png"]


def test_no_path_column(tmp_path, capsys):
    f = tmp_path / "t.csv"
    f.write_text("name,labels\na.png,cat\n")
    assert one_error(["datasets", "stats", "csv", "--root", f], capsys) == (
        f"{f}, line 1: no image path column; name it one of path, image, filename, file, filepath, image_path or "
        "set data.options.path_column (columns: name, labels)")


def test_label_not_in_the_class_list(tmp_path, capsys):
    f = tmp_path / "t.csv"
    f.write_text("path,labels\na.png,cat\nb.png,cat zebra\n")
    assert one_error(["datasets", "stats", "csv", "--root", f, "--option", "class_names=[cat, dog]"], capsys) == (
        f"{f}, line 3: label 'zebra' is not in the class list (2 classes: cat, dog)")


def test_csv_row_with_too_many_fields(tmp_path, capsys):
    f = tmp_path / "t.csv"
    f.write_text("path,labels\na.png,cat\nb.png,cat,dog\n")
    assert one_error(["datasets", "stats", "csv", "--root", f], capsys) == (
        f"{f}, line 3: 3 fields but the header has 2")


def test_class_column_not_zero_or_one(tmp_path, capsys):
    f = tmp_path / "t.csv"
    f.write_text("path,sky,tree\na.png,1,0\nb.png,yes,0\n")
    assert one_error(["datasets", "stats", "csv", "--root", f], capsys) == (
        f"{f}, line 3: column 'sky' is 'yes'; class columns must hold 0 or 1")


def test_missing_split_file(tmp_path, capsys):
    (tmp_path / "train.csv").write_text("path,labels\na.png,x\n")
    assert one_error(["datasets", "stats", "csv", "--root", tmp_path, "--split", "val"], capsys) == (
        f"{tmp_path / 'val.csv'} not found (found train.csv)")


def test_missing_image_file(tmp_path, tags, capsys):
    data = tmp_path / "d"
    shutil.copytree(tags, data)
    (data / "images" / "train_03.png").unlink()
    cfg = write_config(tmp_path / "c.yaml", data, options="separator: ';'")
    before = snapshot(data)
    assert one_error(["train", "-c", cfg, "--output", tmp_path / "run"], capsys) == (
        f"cannot read image {data / 'images' / 'train_03.png'}: No such file or directory")
    assert snapshot(data) == before


def test_missing_image_file_skipped_with_on_error_skip(tmp_path, tags, capsys):
    data = tmp_path / "d"
    shutil.copytree(tags, data)
    (data / "images" / "train_03.png").unlink()
    cfg = write_config(tmp_path / "c.yaml", data, options="separator: ';'")
    before = snapshot(data)
    code, err = run(["train", "-c", cfg, "--output", tmp_path / "run", "--no-test", "trainer.on_error=skip"], capsys)
    assert code == 0, err
    with open(tmp_path / "run" / "metrics.csv", newline="") as fh:
        assert [r["skipped"] for r in csv.DictReader(fh)] == ["1"]  # dropped and counted
    assert snapshot(data) == before


def test_images_without_image_size(tmp_path, tags, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{name: csv, root: '{tags}', options: {{separator: ';'}}}}\nmodel: {{name: ofml, "
                   f"backbone: test_resnet}}\n{TRAINER}")
    assert one_error(["train", "-c", cfg, "--output", tmp_path / "run"], capsys) == (
        "data.image_size: dataset 'csv' holds images: set data.image_size")


def test_arff_parser_error_names_file_and_line(tmp_path, capsys):
    f = tmp_path / "toy.arff"
    f.write_text("@relation 'toy: -C 2'\n@attribute a {0,1}\n@attribute b {0,1}\n@attribute x numeric\n@data\n"
                 "1,0,0.5\n0,1\n")
    assert one_error(["datasets", "stats", "mulan", "--root", f], capsys) == (
        f"{f}, line 7: 2 values but 3 attributes are declared")


def test_unsafe_par_pickle_is_refused_without_running_it(tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    (tmp_path / "dataset.pkl").write_bytes(pickle.dumps({"image_name": ["a.png"], "evil": Payload()}))
    before = snapshot(tmp_path)
    assert one_error(["datasets", "stats", "par_pickle", "--root", tmp_path], capsys) == (
        f"{tmp_path / 'dataset.pkl'}: refused to unpickle posix.mkdir: a pedestrian-attribute dataset pickle may only "
        "hold dicts, lists, strings, numbers, numpy arrays and easydict.EasyDict")
    assert not marker.exists() and snapshot(tmp_path) == before


def test_unknown_dataset_option(tmp_path, capsys):
    f = tmp_path / "t.csv"
    f.write_text("path,labels\na.png,cat\n")
    assert one_error(["datasets", "stats", "csv", "--root", f, "--option", "novalue"], capsys) == (
        "--option 'novalue' is not of the form key=value")


# -- checkpoints and weights -----------------------------------------------------------------------------------
def test_pickle_checkpoint_refused(tmp_path, capsys):
    bad = tmp_path / "model.pth"
    bad.write_bytes(b"\x80\x04not really")
    before = snapshot(tmp_path)
    assert one_error(["evaluate", "--checkpoint", bad], capsys) == (
        f"{bad}: .pth files are pickles; labelwise only loads safetensors + JSON checkpoints")
    assert snapshot(tmp_path) == before


def test_checkpoint_checksum_mismatch(tmp_path, tag_run, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(tag_run, run_dir)
    weights = run_dir / "checkpoints" / "best.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    before = snapshot(run_dir)
    msg = one_error(["evaluate", "--checkpoint", run_dir], capsys)
    assert re.fullmatch(re.escape(f"{weights}: sha256 ") + r"[0-9a-f]{12}\.\.\. differs from the one recorded in "
                        r"best\.json \([0-9a-f]{12}\.\.\.\): the file is corrupt or was replaced", msg), msg
    assert snapshot(run_dir) == before


def test_missing_checkpoint(tmp_path, capsys):
    msg = one_error(["evaluate", "--checkpoint", tmp_path / "nothing"], capsys)
    assert str(tmp_path / "nothing") in msg, msg


def test_unsafe_weights_file_is_refused(tmp_path, tags, capsys):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": Payload()}, evil)
    cfg = write_config(tmp_path / "c.yaml", tags, options="separator: ';'",
                       model=f"{{name: ofml, backbone: test_resnet, weights: '{evil}'}}")
    msg = one_error(["train", "-c", cfg, "--output", tmp_path / "run"], capsys)
    assert msg.startswith(f"model: refusing to load {evil}: it contains pickled objects other than tensors"), msg
    assert not marker.exists() and not (tmp_path / "run" / "checkpoints").exists()


def test_weights_with_another_class_count(tmp_path, tags, tag_run, capsys):
    best = tag_run / "checkpoints" / "best.safetensors"
    cfg = write_config(tmp_path / "c.yaml", tags, options="separator: ';', class_names: [blue, green, red, violet]",
                       model=f"{{name: ofml, backbone: test_resnet, weights: '{best}'}}")
    before = snapshot(tag_run)
    msg = one_error(["train", "-c", cfg, "--output", tmp_path / "run"], capsys)
    assert msg == (f"model.weights: {best}: 2 tensor(s) of the model have other shapes than in the file: "
                   "head.fc.weight: file (3, 96) vs model (4, 96), head.fc.bias: file (3,) vs model (4,) (a checkpoint "
                   "with another class count?); set model.reinit_head: true to train a new head"), msg
    assert snapshot(tag_run) == before and not (tmp_path / "run" / "checkpoints").exists()


def test_weights_reinit_head_reports_what_was_loaded(tmp_path, tags, tag_run, capsys):
    best = tag_run / "checkpoints" / "best.safetensors"
    cfg = write_config(tmp_path / "c.yaml", tags, options="separator: ';', class_names: [blue, green, red, violet]",
                       model=f"{{name: ofml, backbone: test_resnet, weights: '{best}', reinit_head: true}}")
    code, err = run(["train", "-c", cfg, "--output", tmp_path / "run", "--no-test"], capsys)
    assert code == 0, err
    line = next(ln for ln in err if "model.weights" in ln)
    assert line.startswith(f"[labelwise] model.weights {best}: 90 tensor(s) matched, 0 missing, 2 re-initialised "
                           "(head.fc.weight, head.fc.bias), 0 ignored"), line


def test_weights_of_the_same_model_load_the_head_too(tmp_path, tag_run):
    from labelwise.models import create_model
    from labelwise.models.initial_weights import load_initial_weights
    from labelwise.run import load_model

    best = tag_run / "checkpoints" / "best.safetensors"
    trained, _, _ = load_model(tag_run)
    model = create_model("ofml", num_classes=3, backbone="test_resnet", weights=str(best))
    report = load_initial_weights(model, best)
    assert len(report.matched) == 92 and not report.missing and not report.reinitialised
    assert torch.equal(model.head.fc.weight, trained.head.fc.weight)


def test_pretrained_without_internet(tmp_path, tags, capsys, monkeypatch):
    import timm

    real = timm.create_model

    def offline(name, pretrained=False, **kw):
        if pretrained:
            raise OSError("We couldn't connect to 'https://huggingface.co' to load this file")
        return real(name, pretrained=False, **kw)

    monkeypatch.setattr(timm, "create_model", offline)
    cfg = write_config(tmp_path / "c.yaml", tags, options="separator: ';'",
                       model="{name: ofml, backbone: test_resnet, pretrained: true}")
    assert one_error(["train", "-c", cfg, "--output", tmp_path / "run"], capsys) == (
        "could not download pretrained weights for 'test_resnet' through timm's hub (OSError: We couldn't connect "
        "to 'https://huggingface.co' to load this file). Without internet access, download the weights elsewhere "
        "and pass weights=PATH (a .safetensors or .pth state dict) with pretrained=False.")


# -- export ----------------------------------------------------------------------------------------------------
def test_export_input_shape_with_wrong_channels(tmp_path, tag_run, capsys):
    out = tmp_path / "m.onnx"
    msg = one_error(["export", "--checkpoint", tag_run, "--format", "torchscript", "-o", out,
                     "--input-shape", "1,32,32"], capsys)
    assert msg.startswith("input_shape 1,32,32 does not fit the model: ") and "channels" in msg, msg
    assert not out.exists()


def test_export_input_shape_not_numbers(tmp_path, tag_run, capsys):
    assert one_error(["export", "--checkpoint", tag_run, "--format", "onnx", "-o", tmp_path / "m.onnx",
                      "--input-shape", "3xx32"], capsys) == "--input-shape '3xx32': give comma-separated sizes, e.g. 3,224,224"


def test_export_check_failure_exits_1(tmp_path, tag_run, capsys):
    code, err = run(["export", "--checkpoint", tag_run, "--format", "torchscript", "-o", tmp_path / "m.pt",
                     "--atol", "0"], capsys)
    assert code == 1 and len(err) == 1 and err[0].startswith("labelwise: export check failed: "), err


# -- predict ---------------------------------------------------------------------------------------------------
def test_predict_joins_labels_with_the_data_separator(tmp_path, tags, tag_run, capsys):
    listing = tmp_path / "list.csv"
    listing.write_text("Image\n" + "".join(f"{tags / 'images' / f'test_{i:02d}.png'}\n" for i in range(4)))
    out = tmp_path / "preds.csv"
    code, err = run(["predict", "--checkpoint", tag_run, listing, "-o", out, "--threshold", "0.01"], capsys)
    assert code == 0, err
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert all(r["labels"].split(";") == ["blue", "green", "red"] for r in rows), rows


def test_predict_csv_without_path_column(tmp_path, tag_run, capsys):
    listing = tmp_path / "list.csv"
    listing.write_text("name\na.png\n")
    assert one_error(["predict", "--checkpoint", tag_run, listing, "-o", tmp_path / "p.csv"], capsys) == (
        f"{listing}, line 1: no image path column; name it one of path, image, filename, file, filepath, image_path "
        "or set --path-column (columns: name)")


def test_predict_output_suffix(tmp_path, tag_run, tags, capsys):
    assert one_error(["predict", "--checkpoint", tag_run, tags / "images", "-o", tmp_path / "p.txt"], capsys) == (
        f"--output {tmp_path / 'p.txt'}: use a .csv or .json file name")


def test_predict_unreadable_image(tmp_path, tag_run, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    previous = tmp_path / "p.csv"
    previous.write_text("keep me\n")
    msg = one_error(["predict", "--checkpoint", tag_run, bad, "-o", previous], capsys)
    assert str(bad) in msg, msg
    assert previous.read_text() == "keep me\n"


def test_predict_skip_unreadable_counts_and_continues(tmp_path, tags, tag_run, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    good = tags / "images" / "test_00.png"
    out = tmp_path / "p.csv"
    status = main([str(a) for a in ["predict", "--checkpoint", tag_run, good, bad, "-o", out, "--skip-unreadable"]])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "1 image(s) predicted with threshold 0.5, 1 unreadable skipped" in captured.out
    with open(out, newline="") as fh:
        assert [os.path.basename(r["path"]) for r in csv.DictReader(fh)] == ["test_00.png"]
    assert bad.read_bytes() == b"not a png"


def test_predict_missing_input(tmp_path, tag_run, capsys):
    assert one_error(["predict", "--checkpoint", tag_run, tmp_path / "nope"], capsys) == (
        f"input not found: {tmp_path / 'nope'}")


# -- the environment: files that cannot be written ---------------------------------------------------------
def test_disk_full_while_writing_is_one_line(tmp_path, tag_run, capsys, monkeypatch):
    target = tmp_path / "metrics.json"

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    assert one_error(["evaluate", "--checkpoint", tag_run, "--split", "val", "--no-progress", "--json", target],
                     capsys) == f"{target}: {os.strerror(errno.ENOSPC)}"


def test_output_under_a_file(tmp_path, tag_run, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("mine\n")
    msg = one_error(["evaluate", "--checkpoint", tag_run, "--split", "val", "--json", blocker / "m.json"], capsys)
    assert msg.startswith(f"{blocker}"), msg
    assert blocker.read_text() == "mine\n"


# -- how errors are shown ------------------------------------------------------------------------------------
def test_debug_flag_shows_the_traceback(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "nope.yaml"
    code, err = run(["train", "--config", missing, "--debug"], capsys)
    assert code == 2 and err[0] == "Traceback (most recent call last):"
    assert err[-1] == (f"labelwise: error: config file not found: {missing}; not a shipped config name either "
                       "('labelwise configs list' lists them)")
    code, err = run(["--debug", "train", "--config", missing], capsys)
    assert code == 2 and err[0] == "Traceback (most recent call last):"
    monkeypatch.setenv("LABELWISE_DEBUG", "1")
    code, err = run(["train", "--config", missing], capsys)
    assert code == 2 and err[0] == "Traceback (most recent call last):"


@pytest.mark.parametrize(("argv", "line"), [
    (["train"], "train: the following arguments are required: --config/-c (see 'labelwise train --help')"),
    (["evaluate", "--checkpoint", "x", "--which", "first"],
     "evaluate: argument --which: invalid choice: 'first' (choose from 'best', 'last') (see 'labelwise evaluate --help')"),
    (["trian"], "argument command: invalid choice: 'trian' (choose from {commands}) (see 'labelwise --help')"),
])
def test_command_line_usage_error_is_one_line(argv, line, capsys):
    from labelwise.cli import build_parser

    commands = next(a for a in build_parser()._subparsers._group_actions if a.dest == "command").choices
    line = line.format(commands=", ".join(repr(c) for c in commands))
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"labelwise: error: {line}"]


def test_internal_error_shows_traceback_and_says_bug(capsys, monkeypatch):
    import labelwise.models

    def broken():
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(labelwise.models, "list_models", broken)
    code, err = run(["models", "list"], capsys)
    assert code == 1 and err[0] == "Traceback (most recent call last):"
    assert err[-1] == ("labelwise: internal error: ZeroDivisionError: division by zero (this is a bug; please report "
                       "it with the traceback above)")


def test_user_error_types_are_listed_in_one_place():
    from labelwise.config import ConfigError
    from labelwise.data import ImageLoadError
    from labelwise.data.formats.pedestrian import UnsafePickleError
    from labelwise.engine.checkpoint import CheckpointError
    from labelwise.errors import classify
    from labelwise.export import ExportCheckError
    from labelwise.models import UnsafeWeightsError
    from labelwise.models.backbone import PretrainedUnavailableError

    user = [ConfigError("x"), CheckpointError("x"), ImageLoadError("x"), UnsafePickleError("x"), UnsafeWeightsError("x"),
            PretrainedUnavailableError("x"), OSError(errno.ENOSPC, "full"), FileNotFoundError("x"), KeyError("x"),
            FloatingPointError("loss is nan"), yaml.YAMLError("x")]
    assert [classify(e) for e in user] == ["user"] * len(user)
    assert classify(ExportCheckError("x")) == "check"
    assert classify(AttributeError("x")) == classify(TypeError("x")) == "internal"


def test_json_sidecar_not_json(tmp_path, capsys):
    side = tmp_path / "best.json"
    side.write_text("{not json")
    msg = one_error(["evaluate", "--checkpoint", side], capsys)
    assert msg.startswith(f"{side}: not a valid JSON checkpoint sidecar ("), msg
    assert side.read_text() == "{not json"


def test_duplicate_key_in_a_continual_config(tmp_path, capsys):
    src = pathlib.Path(__file__).parents[2] / "src" / "labelwise" / "configs" / "continual" / "multidigits20_b4c2.yaml"
    cfg = tmp_path / "c.yaml"
    text = src.read_text()
    cfg.write_text(text + "name: again\n")
    first = 1 + text.splitlines().index("name: multidigits20_b4c2")
    last = len(text.splitlines()) + 1
    assert one_error(["continual", "-c", cfg, "--strategy", "finetune"], capsys) == (
        f"{cfg}: name: duplicate key on lines {first} and {last} (keep one)")


def test_duplicate_key_in_an_online_config(tmp_path, capsys):
    cfg = tmp_path / "o.yaml"
    cfg.write_text("sequence: {name: multidigits20}\nmethods: [er]\nsequence: {name: cocoseq}\n")
    assert one_error(["online", "-c", cfg], capsys) == f"{cfg}: sequence: duplicate key on lines 1 and 3 (keep one)"
