"""One loader for every configuration kind: every shipped config loads through it; overrides and errors per kind."""

from __future__ import annotations

import pytest

from labelwise.cli import main
from labelwise.config import (
    CONFIG_KINDS,
    ConfigError,
    RunConfig,
    apply_overrides,
    infer_kind,
    load_config,
    read_config,
)
from labelwise.continual.config import ContinualConfig
from labelwise.continual.online.config import OnlineRunConfig
from labelwise.pretrain import PretrainRecipe
from labelwise.shipped_configs import config_dir, config_names
from labelwise.tabular.config import SelectConfig

#: The folder of a shipped config -> its kind (configs at the top level and in other folders are runs).
FOLDER_KIND = {"continual": "continual", "online": "online", "pretrain": "pretrain", "select": "select"}
SCHEMAS = {"run": "RunConfig", "continual": "ContinualConfig", "online": "OnlineRunConfig",
           "select": "SelectConfig", "pretrain": "PretrainRecipe"}


@pytest.mark.parametrize("name", config_names())
def test_every_shipped_config_loads_through_the_one_loader(name):
    expected = FOLDER_KIND.get(name.split("/")[0], "run") if "/" in name else "run"
    try:
        cfg = load_config(name)  # the kind is inferred, and every name and option is checked
    except Exception as exc:  # noqa: BLE001 - fail naming the file
        pytest.fail(f"{config_dir() / name}.yaml does not load: {exc}")
    assert type(cfg).__name__ == SCHEMAS[expected], name
    assert type(load_config(name, kind=expected, check=False)) is type(cfg)


def test_the_walk_covers_every_kind_and_file():
    names = config_names()
    assert len(names) == len(list(config_dir().rglob("*.yaml")))
    kinds = {infer_kind(read_config(n)[0]) for n in names}
    assert kinds == set(CONFIG_KINDS) == set(SCHEMAS)


# a small valid file of every kind, an override that changes it and one key the kind does not have
KIND_CASES = {
    "run": ("data: {name: multidigits20, image_size: 32}\nmodel: {name: ofml}\n",
            ("trainer.max_epochs=2", lambda c: c.trainer.max_epochs == 2), "trainer.max_epoch", "max_epochs"),
    "continual": ("data: {name: multidigits20, image_size: 32}\nmodel: {name: ofml}\ncontinual: {scenario: B4-C2}\n",
                  ("continual.scenario=b5-c3", lambda c: c.continual.scenario == "B5-C3"),
                  "continual.treshold", "threshold"),
    "online": ("sequence: {name: multidigits}\nmethods: [prs]\n",
               ("online.memory_size=7", lambda c: c.online.memory_size == 7), "online.memory", "memory_size"),
    "select": ("kind: select\ndatasets: [scene]\n",
               ("protocol.epochs=3", lambda c: c.protocol_for("run").epochs == 3), "protocol.epoch", "epochs"),
    "pretrain": ("name: x\narchitecture: {backbone: test_resnet}\n"
                 "run: {data: {name: multidigits20, image_size: 32}, model: {name: ofml}}\n"
                 "probe: {data: {name: multidigits20, image_size: 32}}\n",
                 ("run.trainer.max_epochs=1", lambda c: c.run.trainer.max_epochs == 1),
                 "run.trainer.max_epoch", "max_epochs"),
}


@pytest.mark.parametrize("kind", sorted(KIND_CASES))
def test_overrides_and_errors_are_the_same_for_every_kind(kind, tmp_path):
    text, (override, holds), bad_key, close = KIND_CASES[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    cfg = load_config(path, [override], check=False)
    assert type(cfg).__name__ == SCHEMAS[kind] and cfg.KIND == kind and holds(cfg)
    assert type(load_config(path, kind=kind, check=False)) is type(cfg)
    # an unknown key: the file, the dotted key and the close match, from an override and from the file
    with pytest.raises(ConfigError, match=rf"{kind}\.yaml: {bad_key}: unknown key \(did you mean '{close}'\?\)"):
        load_config(path, [f"{bad_key}=1"], check=False)
    extra = tmp_path / f"{kind}_extra.yaml"
    extra.write_text(text + "zzz: 1\n")
    with pytest.raises(ConfigError, match=rf"{kind}_extra\.yaml: zzz: unknown key; valid keys: "):
        load_config(extra, check=False)
    # a duplicate key names both lines; a non-finite number is refused
    dup = tmp_path / f"{kind}_dup.yaml"
    dup.write_text(text + "zz: 1\nzz: 2\n")
    with pytest.raises(ConfigError, match=rf"{kind}_dup\.yaml: zz: duplicate key on lines \d+ and \d+"):
        load_config(dup, check=False)
    finite_key = {"run": "trainer.lr", "continual": "trainer.lr", "online": "online.lr", "select": "protocol.lr",
                  "pretrain": "run.trainer.lr"}[kind]
    with pytest.raises(ConfigError, match=rf"{kind}\.yaml: {finite_key}: must be a finite number"):
        load_config(path, [f"{finite_key}=.inf"], check=False)


def test_a_file_of_another_kind_is_refused_naming_both(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"kind: this is a online configuration .*'sequence'.*labelwise train reads "
                                          r"run configurations \(run it with labelwise online\)"):
        load_config("online/multidigits", kind="run")
    assert main(["train", "--config", "continual/multidigits20_b4c2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labelwise: error: ") and "multidigits20_b4c2.yaml: kind: this is a continual" in err
    both = tmp_path / "both.yaml"
    both.write_text("sequence: {name: multidigits}\ncontinual: {scenario: B4-C2}\n")
    with pytest.raises(ConfigError, match=r"both\.yaml: kind: the file has sections of several kinds"):
        load_config(both)
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("kind: contiual\n")
    with pytest.raises(ConfigError, match=r"kind: unknown configuration kind 'contiual' \(did you mean 'continual'"):
        load_config(explicit)


def test_schemas_are_the_kinds_of_the_table():
    assert {k: CONFIG_KINDS[k].load_schema() for k in CONFIG_KINDS} == {
        "run": RunConfig, "continual": ContinualConfig, "online": OnlineRunConfig,
        "select": SelectConfig, "pretrain": PretrainRecipe}


def test_continual_strategy_flag_is_a_shorthand_for_strategy_name():
    from labelwise.continual.config import load_continual_config

    by_flag = load_continual_config("continual/multidigits20_b4c2", strategy="er", check=False)
    by_key = load_config("continual/multidigits20_b4c2", ["strategy.name=er"], check=False)
    assert by_flag == by_key and by_flag.strategy.name == "er"


def test_online_flags_are_shorthands(tmp_path):
    import argparse

    from labelwise.continual.online.cli import add_parser, load_online_config, shorthand_overrides

    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["online", "-c", "online/multidigits", "--methods", "prs,crs+ssca", "--seeds", "3",
                         "-o", str(tmp_path)])
    by_flag = load_online_config(args.config, shorthand_overrides(args))
    by_key = load_online_config("online/multidigits", ["methods=[prs, crs+ssca]", "seeds=[3]",
                                                       f"output_dir={tmp_path}"])
    assert by_flag == by_key and by_flag.seeds == [3]
    with pytest.raises(ConfigError, match=r"methods\.1: unknown online method 'mir'"):
        load_online_config("online/multidigits", ["methods=[prs, mir]"])


def test_select_flags_are_shorthands_for_config_keys(tmp_path):
    import argparse

    from labelwise.tabular.cli import SHORTHANDS, add_parser, load_select_config

    p = argparse.ArgumentParser(prog="labelwise")
    add_parser(p.add_subparsers(dest="command"))
    flags = p.parse_args(["select", "run", "--datasets", "scene,yeast", "--epochs", "3", "--pressures", "2,16",
                          "--folds", "3", "--full-features", "--model-params", '{"mlp": {"hidden": [8]}}', "--jobs", "2"])
    cfg_file = tmp_path / "sel.yaml"
    cfg_file.write_text("kind: select\ndatasets: [scene, yeast]\nprotocol: {epochs: 3, n_folds: 3}\n")
    keys = p.parse_args(["select", "run", "--config", str(cfg_file), "protocol.selection_pressures=[2, 16]",
                         "protocol.feature_selection={}", "protocol.model_params={mlp: {hidden: [8]}}", "jobs=2"])
    a, b = load_select_config(flags), load_select_config(keys)
    assert a == b and a.dataset_names() == ["scene", "yeast"] and a.jobs == 2
    assert a.protocol_for("run") == b.protocol_for("run")
    assert a.protocol_for("run").model_params == {"mlp": {"hidden": (8,)}}
    # a flag wins over the config and its overrides
    both = p.parse_args(["select", "run", "--config", str(cfg_file), "protocol.epochs=9", "--epochs", "4"])
    assert load_select_config(both).protocol.epochs == 4
    # every protocol flag names its key in --help, and the key exists in the schema
    helps = {a.dest: a.help for a in p._subparsers._group_actions[0].choices["select"]._subparsers
             ._group_actions[0].choices["run"]._actions}
    for _, dest, key, _, _ in SHORTHANDS:
        assert helps[dest].startswith(f"shorthand for {key}"), dest
        apply_overrides({}, [(key, None)], schema=SelectConfig)  # the key exists in the schema
    with pytest.raises(ConfigError, match=r"sel\.yaml: protocol\.n_folds: n_folds must be >= 2"):
        load_select_config(p.parse_args(["select", "run", "-c", str(cfg_file), "protocol.n_folds=1"]))
    with pytest.raises(ConfigError, match=r"protocol\.strategies: .*nope"):
        load_select_config(p.parse_args(["select", "run", "--datasets", "scene", "--strategies", "random,nope"]))


def test_select_without_datasets_and_plot_without_dataset_are_errors(capsys):
    assert main(["select", "run", "--epochs", "2"]) == 2
    assert "labelwise: error: datasets: give datasets: [a, b]" in capsys.readouterr().err
    assert main(["select", "plot", "--epochs", "2"]) == 2
    assert "labelwise: error: plot.dataset: select plot needs a dataset" in capsys.readouterr().err


def test_pretrain_quick_then_overrides(tmp_path):
    from labelwise.pretrain import load_recipe

    recipe = load_recipe("pretrain/md_resnet10t", ["run.trainer.batch_size=8"], quick=True)
    assert recipe["run"]["trainer"]["max_epochs"] == 1 and recipe["run"]["trainer"]["batch_size"] == 8
    assert recipe["_source"].endswith("md_resnet10t.yaml")
    full = load_recipe("pretrain/md_resnet10t")
    assert full["run"]["trainer"]["max_epochs"] == 8 and "seed" not in full["run"]["trainer"]  # only what is set
    with pytest.raises(ConfigError, match=r"md_resnet10t\.yaml: export\.dtype: Input should be 'float16'"):
        load_recipe("pretrain/md_resnet10t", ["export.dtype=int8"])


@pytest.mark.parametrize("module", ["labelwise.continual.config", "labelwise.continual.online.config",
                                    "labelwise.continual.online.cli", "labelwise.tabular.config",
                                    "labelwise.tabular.cli"])
def test_doctests_of_the_kinds(module, tmp_path, monkeypatch):
    import doctest
    import importlib

    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_select_plot_strategies_flag_is_plot_strategies():
    import argparse

    from labelwise.tabular.cli import add_parser, load_select_config

    p = argparse.ArgumentParser(prog="labelwise")
    add_parser(p.add_subparsers(dest="command"))
    plot = p._subparsers._group_actions[0].choices["select"]._subparsers._group_actions[0].choices["plot"]
    assert {a.dest: a.help for a in plot._actions}["strategies"].startswith(
        "shorthand for plot.strategies (default random,hard,adaptive)")
    cfg = load_select_config(p.parse_args(["select", "plot", "--dataset", "scene", "--strategies", "random,chain"]))
    assert cfg.plot.strategies == ["random", "chain"] and cfg.protocol.strategies == ("random", "hard", "adaptive", "chain")
    assert cfg.protocol_for("plot").strategies == ("random", "chain")
    assert load_select_config(p.parse_args(["select", "plot", "--dataset", "scene"])).protocol_for("plot").strategies == (
        "random", "hard", "adaptive")


@pytest.mark.parametrize("argv, key", [
    (["train", "--config", "quickstart"], "trainer.max_epoch"),
    (["continual", "--config", "continual/multidigits20_b4c2"], "trainer.max_epoch"),
    (["online", "--config", "online/multidigits"], "online.memory"),
    (["select", "run", "--config", "select/table1"], "protocol.epoch"),
    (["select", "plot", "--config", "select/table1"], "protocol.epoch"),
    (["pretrain", "--config", "pretrain/md_resnet10t"], "run.trainer.max_epoch"),
])
def test_every_command_reports_config_errors_the_same_way(argv, key, capsys):
    assert main([*argv, f"{key}=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    name = argv[argv.index("--config") + 1]
    assert len(err) == 1 and err[0].startswith(f"labelwise: error: {config_dir() / name}.yaml: {key}: unknown key (did you mean")
