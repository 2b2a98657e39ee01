"""all_gather_rows: the one all-gather of uneven row counts (Evaluator, trainer predictions, samplers)."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from labelwise.metrics.distributed import all_gather_rows, exchange_device, world_size


def test_single_process_returns_the_tensor_itself():
    t = torch.arange(12, dtype=torch.float64).reshape(4, 3)
    assert all_gather_rows(t) is t
    empty = torch.zeros((0, 3))
    assert all_gather_rows(empty) is empty
    assert world_size() == 1 and exchange_device() == torch.device("cpu")


def test_a_one_process_group_is_a_single_process(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        t = torch.ones(2, 5, dtype=torch.uint8)
        assert world_size() == 1
        assert all_gather_rows(t) is t
    finally:
        dist.destroy_process_group()


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        rows = [3, 0, 5][rank]  # uneven, and one rank without rows
        x = torch.arange(rows * 2, dtype=torch.float64).reshape(rows, 2) + 100 * rank
        i = torch.arange(rows, dtype=torch.int64) + 10 * rank
        torch.save({"x": all_gather_rows(x), "i": all_gather_rows(i)}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_three_processes_concatenate_uneven_rows_in_rank_order():
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(3, os.path.join(tmp, "init"), tmp), nprocs=3, join=True)
        expected_x = torch.cat([torch.arange(r * 2, dtype=torch.float64).reshape(r, 2) + 100 * k
                                for k, r in enumerate([3, 0, 5])])
        expected_i = torch.cat([torch.arange(r) + 10 * k for k, r in enumerate([3, 0, 5])])
        for rank in range(3):
            got = torch.load(os.path.join(tmp, f"rank{rank}.pt"))
            assert got["x"].dtype == torch.float64 and torch.equal(got["x"], expected_x)
            assert torch.equal(got["i"], expected_i)
