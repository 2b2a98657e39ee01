"""2-D relative position encoding: hand-computed buckets, the attention formula, zero init, caching."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from labelwise.models.relative_position import (
    ImageRelativePosition,
    RPEMultiheadAttention,
    bucket_ids_2d,
    num_buckets,
    piecewise_index,
    rpe_coefficients,
)


# -- piecewise index --------------------------------------------------------------------------------------
def test_piecewise_ratio1_by_hand():
    # alpha=1, beta=2, gamma=8: |x|<=1 exact; x=2: 1 + ln2/ln8 = 1.33 -> 1; x=3: 1 + ln3/ln8 = 1.53 -> 2; clip 2
    a, b, g = rpe_coefficients(1.0)
    x = torch.arange(-6, 7)
    expected = [-2, -2, -2, -2, -1, -1, 0, 1, 1, 2, 2, 2, 2]
    assert piecewise_index(x, alpha=a, beta=b, gamma=g).tolist() == expected


def test_piecewise_ratio2_log_region_by_hand():
    # alpha=2, beta=4, gamma=16: y(x) = 2 + 2 ln(x/2)/ln 8
    # x=3: 2.39->2, 4: 2.67->3, 5: 2.88->3, 6: 3.06->3, 9: 3.45->3, 10: 3.55->4, 16: 4, 1000: clip 4
    a, b, g = rpe_coefficients(2.0)
    x = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 1000])
    expected = [0, 1, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4]
    assert piecewise_index(x, alpha=a, beta=b, gamma=g).tolist() == expected
    assert piecewise_index(-x, alpha=a, beta=b, gamma=g).tolist() == [-e for e in expected]
    # the boundary of the log region, straight from the formula
    for v in range(3, 40):
        y = min(b, round(a + math.log(v / a) / math.log(g / a) * (b - a)))
        assert int(piecewise_index(torch.tensor([v]), alpha=a, beta=b, gamma=g)) == int(y)


def test_piecewise_non_integer_beta_truncates():
    # ratio 1.9 (DeiT's): beta = 3.8 -> ids in [-3, 3]; x=4: 1.9 + 1.9 ln(4/1.9)/ln 8 = 2.58 -> 3; far -> 3
    a, b, g = rpe_coefficients(1.9)
    x = torch.tensor([0, 1, 2, 3, 4, 100, -100])
    assert piecewise_index(x, alpha=a, beta=b, gamma=g).tolist() == [0, 1, 2, 2, 3, 3, -3]
    assert num_buckets("product", 1.9) == 49 and num_buckets("quant", 1.9) == 7


def test_piecewise_float_input_rounds_inside():
    out = piecewise_index(torch.tensor([0.4, 1.6, -1.6]), alpha=2.0, beta=4.0, gamma=16.0)
    assert out.dtype == torch.int64 and out.tolist() == [0, 2, -2]


# -- bucket ids per method, hand-computed ----------------------------------------------------------------
def _grid(ids: torch.Tensor, query: int, height: int, width: int) -> list[list[int]]:
    """The bucket of every key position, as a height x width grid, for one query token."""
    return ids[query].reshape(height, width).tolist()


def test_product_3x3_ratio1_rows_by_hand():
    ids, n = bucket_ids_2d("product", 3, 3, ratio=1.0)
    assert n == 25 and ids.shape == (9, 9)
    # bucket = (g(dr) + 2) * 5 + g(dc) + 2, g: -2,-1 -> -1; 0 -> 0; 1,2 -> 1; (dr, dc) = query - key
    assert ids[0].tolist() == [12, 11, 11, 7, 6, 6, 7, 6, 6]  # query (0, 0)
    assert ids[4].tolist() == [18, 17, 16, 13, 12, 11, 8, 7, 6]  # query (1, 1)
    assert ids[5].tolist() == [18, 18, 17, 13, 13, 12, 8, 8, 7]  # query (1, 2)
    assert ids[8].tolist() == [18, 18, 17, 18, 18, 17, 13, 13, 12]  # query (2, 2)


def test_product_5x5_ratio2_by_hand():
    ids, n = bucket_ids_2d("product", 5, 5, ratio=2.0)
    assert n == 81
    # g(0..-4) = 0, -1, -2, -2, -3 -> +4 = 4, 3, 2, 2, 1; bucket = row * 9 + col
    assert _grid(ids, 0, 5, 5) == [
        [40, 39, 38, 38, 37],
        [31, 30, 29, 29, 28],
        [22, 21, 20, 20, 19],
        [22, 21, 20, 20, 19],
        [13, 12, 11, 11, 10],
    ]


def test_product_central_symmetry():
    for h, w, ratio in [(5, 5, 2.0), (4, 7, 1.0), (9, 3, 1.9)]:
        ids, n = bucket_ids_2d("product", h, w, ratio=ratio)
        assert torch.equal(ids.T, (n - 1) - ids)  # (dr, dc) -> (-dr, -dc) mirrors the 2-D bucket


def test_euclidean_5x5_ratio1_by_hand():
    ids, n = bucket_ids_2d("euclidean", 5, 5, ratio=1.0)
    assert n == 5
    # distances from (0,0), rounded: row0 0 1 2 3 4 / row1 1 1 2 3 4 / row2 2 2 3 4 4 / row3 3 3 4 4 5 / ...
    # g: 0->0, 1->1, 2->1, >=3 -> 2; offset +2
    assert _grid(ids, 0, 5, 5) == [
        [2, 3, 3, 4, 4],
        [3, 3, 3, 4, 4],
        [3, 3, 4, 4, 4],
        [4, 4, 4, 4, 4],
        [4, 4, 4, 4, 4],
    ]
    # query at the centre: 1 (4-neighbours), 1.41 -> 1 (diagonals), 2 and sqrt(5) = 2.24 -> 2 all map to
    # g = 1 (bucket 3); only the corners, sqrt(8) = 2.83 -> 3, reach g = 2
    assert _grid(ids, 12, 5, 5) == [
        [4, 3, 3, 3, 4],
        [3, 3, 3, 3, 3],
        [3, 3, 2, 3, 3],
        [3, 3, 3, 3, 3],
        [4, 3, 3, 3, 4],
    ]


def test_quant_5x5_ratio1_by_hand():
    ids, n = bucket_ids_2d("quant", 5, 5, ratio=1.0)
    assert n == 5
    # squared distances from (0,0): row0 0 1 4 9 16 / row1 1 2 5 10 17 / row2 4 5 8 ...; g(2)=1, g(>=3)=2
    assert _grid(ids, 0, 5, 5) == [
        [2, 3, 4, 4, 4],
        [3, 3, 4, 4, 4],
        [4, 4, 4, 4, 4],
        [4, 4, 4, 4, 4],
        [4, 4, 4, 4, 4],
    ]


def test_cross_5x5_ratio2_by_hand():
    ids, n = bucket_ids_2d("cross", 5, 5, ratio=2.0)
    assert n == 9 and ids.shape == (2, 25, 25)
    rows, cols = ids
    # query (0, 0): dr = -r -> g = 0, -1, -2, -2, -3 -> +4 = 4, 3, 2, 2, 1
    assert _grid(rows, 0, 5, 5) == [[4] * 5, [3] * 5, [2] * 5, [2] * 5, [1] * 5]
    assert _grid(cols, 0, 5, 5) == [[4, 3, 2, 2, 1]] * 5
    # query (2, 2): dr = 2 - r = 2, 1, 0, -1, -2 -> 6, 5, 4, 3, 2
    assert _grid(rows, 12, 5, 5) == [[6] * 5, [5] * 5, [4] * 5, [3] * 5, [2] * 5]


def test_non_square_and_skip_bucket():
    ids, n = bucket_ids_2d("product", 2, 3, ratio=1.0, skip=1)
    assert n == 26 and ids.shape == (7, 7)
    assert (ids[0] == 25).all() and (ids[:, 0] == 25).all()
    # query (0, 0) of the 2 x 3 grid: keys (0,0) (0,1) (0,2) (1,0) (1,1) (1,2)
    assert ids[1, 1:].tolist() == [12, 11, 11, 7, 6, 6]
    # query (1, 2): dr = 1, 1, 1, 0, 0, 0; dc = 2, 1, 0, 2, 1, 0 -> g = 1, 1, 0 -> rows 3 / 2
    assert ids[6, 1:].tolist() == [18, 18, 17, 13, 13, 12]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "manhattan", "height": 2, "width": 2}, "method"),
        ({"method": "product", "height": 0, "width": 2}, "height"),
        ({"method": "product", "height": 2, "width": 2, "ratio": -1.0}, "ratio"),
        ({"method": "product", "height": 2, "width": 2, "skip": -1}, "skip"),
    ],
)
def test_bucket_ids_bad_input(kwargs, match):
    method, h, w = kwargs.pop("method"), kwargs.pop("height"), kwargs.pop("width")
    with pytest.raises(ValueError, match=match):
        bucket_ids_2d(method, h, w, **kwargs)


# -- the encoding against a direct evaluation of the formulas ---------------------------------------------
def _naive(x, ids, table, target, mode):
    """Loop implementation of one encoding (ids [A, L, L], table [A, h', n(, d)])."""
    b, h, seq = x.shape[0], x.shape[1], x.shape[2]
    d = table.shape[-1] if mode == "contextual" else None
    out = torch.zeros(b, h, seq, d if target == "v" else seq, dtype=torch.float64)
    for a in range(ids.shape[0]):
        for bi in range(b):
            for hi in range(h):
                t = table[a, hi if table.shape[1] > 1 else 0].double()
                for i in range(seq):
                    for j in range(seq):
                        if target == "k":
                            r = t[ids[a, i, j]]
                            out[bi, hi, i, j] += r if mode == "bias" else x[bi, hi, i].double() @ r
                        elif target == "q":  # k_j with the bucket of (j, i)
                            r = t[ids[a, j, i]]
                            out[bi, hi, i, j] += r if mode == "bias" else x[bi, hi, j].double() @ r
                        else:  # v: attention probabilities x[b, h, i, j]
                            out[bi, hi, i] += x[bi, hi, i, j].double() * t[ids[a, i, j]]
    return out


@pytest.mark.parametrize("method", ["euclidean", "quant", "cross", "product"])
@pytest.mark.parametrize(
    "target,mode",
    [("k", "contextual"), ("q", "contextual"), ("v", "contextual"), ("k", "bias"), ("q", "bias")],
)
@pytest.mark.parametrize("shared", [True, False])
def test_encoding_matches_formula(method, target, mode, shared):
    torch.manual_seed(0)
    h, w, heads, d = 2, 3, 2, 4
    rpe = ImageRelativePosition(
        d, heads, target=target, method=method, mode=mode, ratio=1.0, shared_heads=shared
    )
    with torch.no_grad():
        rpe.table.normal_()
    if target == "v":
        x = torch.rand(2, heads, h * w, h * w).softmax(-1)
    else:
        x = torch.randn(2, heads, h * w, d)
    got = rpe(x, height=h, width=w)
    ids, _ = bucket_ids_2d(method, h, w, ratio=1.0)
    ids = ids if method == "cross" else ids[None]
    expected = _naive(x, ids, rpe.table.detach(), target, mode)
    assert torch.allclose(got.double().expand_as(expected), expected, atol=1e-5)


def test_bias_on_values_is_refused():
    with pytest.raises(ValueError, match="contextual"):
        ImageRelativePosition(4, 2, target="v", mode="bias")


def test_sequence_length_mismatch_names_sizes():
    rpe = ImageRelativePosition(4, 1, target="k")
    with pytest.raises(ValueError, match="3 \\* 3"):
        rpe(torch.randn(1, 1, 10, 4), height=3, width=3)


def test_bucket_ids_cached_per_size_and_lazily():
    rpe = ImageRelativePosition(4, 1, target="k")
    assert rpe._ids == {}
    rpe(torch.randn(1, 1, 4, 4), height=2, width=2)
    rpe(torch.randn(1, 1, 15, 4), height=3, width=5)
    first = rpe.bucket_ids(2, 2)
    assert sorted(k[:2] for k in rpe._ids) == [(2, 2), (3, 5)]
    assert rpe.bucket_ids(2, 2) is first  # second lookup is the cached tensor
    # returned ids are copies: mutating them does not corrupt the cache
    ids, _ = bucket_ids_2d("product", 2, 2)
    ids.fill_(0)
    assert bucket_ids_2d("product", 2, 2)[0].max() > 0


# -- attention layer ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("need_weights", [False, True])
def test_plain_attention_matches_torch(need_weights):
    torch.manual_seed(1)
    ours = RPEMultiheadAttention(16, 4).eval()
    ref = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    ref.load_state_dict(ours.state_dict())
    q, kv = torch.randn(3, 5, 16), torch.randn(3, 7, 16)
    out = ours(q, kv, kv, need_weights=need_weights)
    ref_out, ref_w = ref(q, kv, kv, need_weights=True, average_attn_weights=False)
    if need_weights:
        out, weights = out
        assert torch.allclose(weights, ref_w, atol=1e-6)
    assert torch.allclose(out, ref_out, atol=1e-5)


_ZERO_INIT_CASES = [
    (rpe_on, mode)
    for rpe_on in ("k", "q", "v", "qk", "qkv")
    for mode in ("contextual", "bias")
    if not (mode == "bias" and "v" in rpe_on)  # bias mode has no value encoding (refused, tested above)
]


@pytest.mark.parametrize("rpe_on,mode", _ZERO_INIT_CASES)
@pytest.mark.parametrize("method", ["euclidean", "quant", "cross", "product"])
def test_zero_initialised_rpe_equals_plain_attention(rpe_on, method, mode):
    torch.manual_seed(2)
    plain = RPEMultiheadAttention(16, 4).eval()
    rpe = RPEMultiheadAttention(16, 4, rpe_on=rpe_on, method=method, mode=mode, ratio=1.0).eval()
    missing, unexpected = rpe.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and sorted(missing) == sorted(f"rpe_{c}.table" for c in rpe_on)
    x = torch.randn(2, 12, 16)
    assert torch.allclose(rpe(x, height=3, width=4), plain(x), atol=1e-6)
    with torch.no_grad():  # and the encoding does change the output once the tables are non-zero
        for c in rpe_on:
            getattr(rpe, f"rpe_{c}").table.normal_()
    assert not torch.allclose(rpe(x, height=3, width=4), plain(x), atol=1e-3)


def test_rpe_attention_requires_grid_size_and_self_attention():
    attn = RPEMultiheadAttention(8, 2, rpe_on="k")
    with pytest.raises(ValueError, match="height and width"):
        attn(torch.randn(1, 4, 8))
    with pytest.raises(ValueError, match="self-attention"):
        attn(torch.randn(1, 4, 8), torch.randn(1, 6, 8), height=2, width=2)
    with pytest.raises(ValueError, match="rpe_on"):
        RPEMultiheadAttention(8, 2, rpe_on="kx")
