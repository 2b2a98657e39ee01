"""The online protocol end to end on a tiny MultiDigits sequence, EWC, evaluation, tables, CLI and configs."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch

from labelwise.continual.online import (
    OnlineConfig,
    OnlineEWC,
    evaluate_groups,
    format_table,
    multidigits_sequence,
    run_online,
    summarize,
)
from labelwise.continual.online.cli import add_parser, load_online_config, parse_method, run_from_config
from labelwise.shipped_configs import config_dir

CONFIGS = config_dir() / "online"


@pytest.fixture(scope="module")
def seq():
    return multidigits_sequence(n_train=240, n_test=400, image_size=24, test_per_class=5, cache=False)


def tiny(**kw) -> OnlineConfig:
    base = {
        "memory_size": 16,
        "backbone": "test_resnet",
        "backbone_kwargs": {"output_stride": 8},
        "embed_dim": 16,
        "threads": 1,
    }
    return OnlineConfig(**{**base, **kw})


@pytest.mark.parametrize(
    "method,head", [("prs", "ssca"), ("crs", "baseline"), ("ewc", "baseline"), ("multitask", "baseline")]
)
def test_run_online_methods(seq, method, head):
    lines = []
    r = run_online(seq, method, head=head, config=tiny(), seed=0, log=lines.append)
    stream_steps = sum(math.ceil(len(t) / 10) for t in seq.train_tasks)
    if method == "multitask":
        assert r.steps == math.ceil(seq.num_train / 20) and len(r.tasks) == 1
    else:
        assert r.steps == stream_steps and len(r.tasks) == seq.num_tasks and len(lines) == seq.num_tasks
        # evaluated on the test images of the seen tasks: the class count grows
        assert [row["num_classes"] for row in r.tasks] == sorted(row["num_classes"] for row in r.tasks)
    assert set(r.final) == {"overall", "majority", "moderate", "minority"}
    assert 0.0 <= r.final["overall"]["mAP"] <= 1.0
    if method in ("prs", "crs"):
        assert r.memory_counts is not None and sum(r.memory_counts) >= 16  # memory full (multi-label items)
    else:
        assert r.memory_counts is None


def test_run_is_seeded(seq):
    a = run_online(seq, "prs", config=tiny(), seed=3, eval_each_task=False)
    b = run_online(seq, "prs", config=tiny(), seed=3, eval_each_task=False)
    assert a.final["overall"] == b.final["overall"] and a.memory_counts == b.memory_counts
    with pytest.raises(ValueError, match="unknown online method"):
        run_online(seq, "mir", config=tiny())


def test_online_ewc_anchors_and_penalises():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    ewc = OnlineEWC(net, lambda_ewc=2.0)
    for _ in range(3):
        net.zero_grad()
        net(torch.randn(5, 4)).pow(2).sum().backward()
        ewc.accumulate(net)
    ewc.end_task(net)
    assert float(ewc.penalty(net).detach()) == 0.0 and all((f >= 0).all() for f in ewc.fisher.values())
    with torch.no_grad():
        net.bias.add_(1.0)
    expected = 0.5 * 2.0 * float(ewc.fisher["bias"].sum())
    assert float(ewc.penalty(net).detach()) == pytest.approx(expected, rel=1e-5)


def test_evaluate_groups_restricts_to_present_classes():
    s = np.array([[0.9, 0.1, 0.8, 0.3], [0.2, 0.7, 0.1, 0.6]])
    t = np.array([[1, 0, 1, 0], [0, 1, 0, 0]])  # class 3 has no positive: not evaluated
    r = evaluate_groups(s, t, {"majority": [0, 3], "moderate": [1], "minority": []})
    assert r["overall"]["num_classes"] == 3 and r["majority"]["num_classes"] == 1
    assert math.isnan(r["minority"]["mAP"]) and r["overall"]["CF1"] == 1.0


def test_summary_table(seq):
    rs = [run_online(seq, "finetune", config=tiny(), seed=s, eval_each_task=False) for s in (0, 1)]
    summ = summarize(rs)
    mean, std = summ["Finetune"]["overall"]["mAP"]
    vals = [r.final["overall"]["mAP"] for r in rs]
    assert mean == pytest.approx(np.mean(vals)) and std == pytest.approx(np.std(vals, ddof=1))
    table = format_table(summ)
    assert table.splitlines()[0].count("|") == 14 and "±" in table


def test_cli_parser_and_config(tmp_path, seq):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    add_parser(sub)
    args = p.parse_args(["online", "-c", str(CONFIGS / "multidigits.yaml"), "--seeds", "0"])
    assert args.func.__name__ == "main"
    for name in ("multidigits", "cocoseq", "nuswideseq"):
        cfg = load_online_config(CONFIGS / f"{name}.yaml")
        assert cfg.sequence.name in (name, "multidigits")
    cfg = load_online_config(
        CONFIGS / "multidigits.yaml",
        [
            "sequence.options.n_train=240",
            "sequence.options.n_test=400",
            "sequence.options.image_size=24",
            "sequence.options.test_per_class=5",
            "sequence.options.cache=false",
            "online.backbone=test_resnet",
            "online.memory_size=8",
            "online.backbone_kwargs={output_stride: 8}",
            "online.embed_dim=8",
            "methods=[prs+ssca]",
            "seeds=[0]",
        ],
    )
    out = run_from_config(cfg, output_dir=tmp_path, log=None)
    assert "PRS + SSCA" in out["table"] and (tmp_path / "results.json").is_file()
    with pytest.raises(ValueError, match=r"multidigits\.yaml: online\.memory: unknown key \(did you mean 'memory_size'\?\)"):
        load_online_config(CONFIGS / "multidigits.yaml", ["online.memory=3"])
    with pytest.raises(ValueError, match="unknown online method"):
        parse_method("mir")


@pytest.mark.parametrize(
    "method,options",
    [
        ("gss", {}),
        ("gss", {"gss_params": "head"}),
        ("exstream", {}),
        ("ocdm", {}),
        ("prs", {"prs_eviction": "reference"}),
    ],
)
def test_run_online_new_memories(seq, method, options):
    r = run_online(seq, method, config=tiny(**options), seed=0)
    assert r.steps == sum(math.ceil(len(t) / 10) for t in seq.train_tasks)
    assert 0.0 <= r.final["overall"]["mAP"] <= 1.0
    assert r.memory_counts is not None and sum(r.memory_counts) >= 1
    if options.get("gss_params") == "head":  # the gradient probe leaves the run seeded
        assert run_online(seq, method, config=tiny(**options), seed=0).memory_counts == r.memory_counts


def test_online_config_rejects_bad_new_options():
    with pytest.raises(ValueError, match="prs_eviction"):
        tiny(prs_eviction="first")
    with pytest.raises(ValueError, match="gss_params"):
        tiny(gss_params="some")


def test_gss_gradient_probe_vmap_matches_loop(seq):
    from labelwise.continual.online.runner import (
        _Fetcher,
        _per_item_gradients_loop,
        _per_item_gradients_vmap,
        build_model,
    )

    torch.manual_seed(0)
    model = build_model(seq.num_classes, "baseline", tiny()).eval()
    x, y, _ = _Fetcher(seq.train, torch.device("cpu"))(np.arange(4))
    params = [p for p in model.parameters() if p.requires_grad]
    loop = _per_item_gradients_loop(model, x, y, params)
    torch.testing.assert_close(_per_item_gradients_vmap(model, x, y, params), loop, atol=1e-6, rtol=1e-4)
    assert loop.shape == (4, sum(p.numel() for p in params))
    # per item, not the batch mean: rows differ
    assert not torch.allclose(loop[0], loop[1])


def test_fetcher_reads_cached_feature_maps_directly():
    """Cached feature maps (float, no transform) are indexed as they are, not collated item by item."""
    from labelwise.continual.online.runner import _Fetcher
    from labelwise.data import ArrayDataset

    maps = torch.rand(5, 4, 2, 2)
    y = np.eye(5, 3, dtype=np.uint8)
    fetch = _Fetcher(ArrayDataset(maps, y, list("abc"), is_image=False), torch.device("cpu"))
    assert fetch.fast is None and fetch.features is not None
    x, t, kept = fetch(np.array([3, 1]))
    assert torch.equal(x, maps[[3, 1]]) and t.tolist() == y[[3, 1]].tolist() and kept.tolist() == [3, 1]
