"""RunConfig loading: YAML, dotted overrides, validation errors naming the key."""

from __future__ import annotations

import pytest

from labelwise.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    load_config,
    parse_overrides,
    save_config,
    yaml_load,
)

BASE = {"data": {"name": "csv", "root": "x.csv", "image_size": 32}, "model": {"name": "ofml", "backbone": "test_resnet"}}


def _write(tmp_path, text, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_yaml_file_roundtrip_and_defaults(tmp_path):
    p = _write(tmp_path, """
data:
  name: csv
  root: list.csv
  image_size: [48, 64]
model:
  name: ofml
  backbone: test_resnet
  pooling: max
trainer:
  lr: 3e-4
  betas: [0.8, 0.9]
""")
    cfg = load_config(p)
    assert cfg.trainer.lr == pytest.approx(3e-4)  # YAML 1.1 would read "3e-4" as a string
    assert cfg.trainer.betas == (0.8, 0.9)
    assert cfg.data.image_size == (48, 64)
    assert cfg.model.kwargs == {"backbone": "test_resnet", "pooling": "max"}
    assert cfg.loss.name == "bce" and cfg.data.val_split == "val" and cfg.data.test_split == "test"
    again = load_config(save_config(cfg, tmp_path / "resolved.yaml"))
    assert again == cfg


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        (["trainer.max_epochs=3"], lambda c: c.trainer.max_epochs == 3),
        (["trainer.betas=[0.5, 0.6]"], lambda c: c.trainer.betas == (0.5, 0.6)),
        (["trainer.devices=[0, 1]"], lambda c: c.trainer.devices == [0, 1]),
        (["data.options.n_train=64", "data.options.nested.deep=true"],
         lambda c: c.data.options == {"n_train": 64, "nested": {"deep": True}}),
        (["data.val_split=null"], lambda c: c.data.val_split is None),
        (["model.pooling=avgmax", "model.backbone_kwargs.drop_path_rate=0.1"],
         lambda c: c.model.kwargs["pooling"] == "avgmax" and c.model.kwargs["backbone_kwargs"] == {"drop_path_rate": 0.1}),
        (["loss.name=asl", "loss.gamma_neg=4"], lambda c: c.loss.name == "asl" and c.loss.kwargs == {"gamma_neg": 4}),
        (["name=exp1", "output_dir=runs/x"], lambda c: c.name == "exp1" and c.output_dir == "runs/x"),
    ],
)
def test_dotted_overrides(overrides, check):
    assert check(load_config(BASE, overrides))


def test_overrides_do_not_mutate_source():
    src = {"data": dict(BASE["data"]), "model": dict(BASE["model"])}
    load_config(src, ["data.image_size=16", "data.options.a=1"])
    assert src["data"]["image_size"] == 32 and "options" not in src["data"]


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        (["trainer.lr=-1"], "trainer.lr", "greater than 0"),
        (["trainer.max_epochs=0"], "trainer.max_epochs", "greater than or equal to 1"),
        (["trainer.optimizer=adagrad"], "trainer.optimizer", "'adam'"),
        (["trainer.optimiser=adam"], "trainer.optimiser", "did you mean 'optimizer'"),
        (["trainer.betas=[0.9, 1.5]"], "trainer.betas", "betas[1]"),
        (["datta.name=x"], "datta", "did you mean 'data'"),
        (["data.imagesize=3"], "data.imagesize", "did you mean 'image_size'"),
        (["data.val_fraction=1.5"], "data.val_fraction", "less than 1"),
        (["trainer.lr.x=1"], "trainer.lr", "not a section"),
        (["model.name=resnett"], "model.name", "unknown model"),
        (["model.scael=3"], "model.scael", "unknown option of model 'ofml'"),
        (["loss.name=focal", "loss.gama=2"], "loss.gama", "did you mean 'gamma'"),
        (["loss.name=nope"], "loss.name", "unknown loss"),
        (["data.name=nodataset"], "data.name", "unknown dataset"),
    ],
)
def test_errors_name_the_key(overrides, key, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(BASE, overrides)
    msg = str(info.value)
    assert msg.startswith(f"{key}:") or f"; {key}:" in msg, msg
    assert fragment in msg, msg
    assert key in [k for k, _ in info.value.errors]


def test_unknown_key_in_file_names_file_and_nested_key(tmp_path):
    p = _write(tmp_path, "data: {name: csv, image_size: 8}\nmodel: {name: ofml}\ntrainer: {max_epoch: 2}\n")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(info.value).startswith(f"{p}: trainer.max_epoch: unknown key (did you mean 'max_epochs'?)")
    top = _write(tmp_path, "data: {name: csv}\nmodel: {name: ofml}\nepochs: 3\n", "top.yaml")
    with pytest.raises(ConfigError, match=r"epochs: unknown key; valid keys: callbacks, data, loss, model, name, output_dir, sampler, trainer"):
        load_config(top)


def test_missing_section_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="model: required key is missing"):
        load_config({"data": {"name": "csv"}})
    bad = _write(tmp_path, "data:\n  name: csv\n  image_size: [1, 2\n")
    with pytest.raises(ConfigError, match=r"invalid YAML, line \d+, column \d+"):
        load_config(bad)
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(_write(tmp_path, "- a\n- b\n", "list.yaml"))
    with pytest.raises(FileNotFoundError, match="config file not found: .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_bad_value_type_and_union_messages():
    with pytest.raises(ConfigError) as info:
        load_config(BASE, ["data.image_size=abc"])
    assert info.value.errors[0][0] == "data.image_size"  # the union member tags are not part of the key
    with pytest.raises(ConfigError) as info:
        load_config(BASE, ["trainer.devices=x"])
    assert info.value.errors[0][0] == "trainer.devices"


def test_loss_values_are_checked_by_construction():
    with pytest.raises(ConfigError, match="loss: .*gamma_neg"):
        load_config(BASE, ["loss.name=asl", "loss.gamma_neg=-1"])


def test_parse_overrides_forms():
    assert parse_overrides(["a.b=1e-3", "c=", "d=[1, x]", "e=on"]) == [
        ("a.b", 1e-3), ("c", None), ("d", [1, "x"]), ("e", True)]
    for bad in ["novalue", "=3", "a..b=1"]:
        with pytest.raises(ConfigError):
            parse_overrides([bad])


def test_apply_overrides_on_value_replaced_by_mapping():
    with pytest.raises(ConfigError, match="data.options: is 3, not a mapping"):
        apply_overrides({"data": {"options": 3}}, ["data.options.x=1"])


def test_yaml_load_is_safe():
    import yaml

    with pytest.raises(yaml.YAMLError):
        yaml_load("!!python/object/apply:os.system ['echo hi']")


def test_resolve_output_dir(tmp_path):
    cfg = RunConfig.model_validate({**BASE, "name": "quick"})
    assert cfg.resolve_output_dir(tmp_path).name.startswith("quick-")
    assert RunConfig.model_validate({**BASE, "output_dir": "runs/a"}).resolve_output_dir().as_posix() == "runs/a"
