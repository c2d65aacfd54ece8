"""Exact per-segment attribution of a fusion model over its inputs: Shapley values and interactions.

The players are the fusion model's feature groups (its inputs): two audio groups
are two players. :func:`players` can pool the groups of one modality into one
player instead. For a coalition S, v(S) is the model's output with only the
inputs of the players in S: the others are masked out of the attention softmax
(weight 0) exactly as modality dropout leaves an input out in training
(:meth:`GatedAttentionFusion.attention`).

Missing inputs: an input a segment lacks (``present`` false: no video track, so
no landmarks) is masked out of every coalition, so v(S) = v(S ∩ present) and an
absent player is a null player. Its phi is NaN ("no player"): the Shapley values
of the present players are those of the game over the present players alone (a
null player changes no other player's value), efficiency holds over the present
players, and a coalition with no present input is the empty one, v(∅). The model cannot be run with no
modality at all, so v(∅) is defined as the same target computed from the class
prior of the training split: ``p_correct`` of the empty coalition is the share of
the segment's class among the training segments; ``logit`` is its log-odds.

Targets (per segment, with t the segment's true class unless a class is named):
``p_correct`` = p(t); ``logit`` = log p(t) - log(1 - p(t)), the log-odds of t;
``p:CLASS`` and ``logit:CLASS`` use the named class instead of the true one.

With M modalities all 2^M - 1 non-empty coalitions are evaluated in batched passes
(rows chunked so that memory stays bounded). The projections, gates and attention
scores do not depend on the coalition, so they are computed once per segment; the
first classifier layer is linear and the attention weights sum to one, so
``W (sum_m a_m z_m) + b = sum_m a_m (W z_m) + b`` is computed from W z_m once.

Exact Shapley value of modality i (Shapley 1953):
    phi_i = sum_{S ⊆ N \\ {i}} |S|! (M - |S| - 1)! / M! * (v(S ∪ {i}) - v(S))
Shapley interaction index of a pair (Grabisch & Roubens 1999):
    I_ij = sum_{S ⊆ N \\ {i, j}} |S|! (M - |S| - 2)! / (M - 1)! * (v(S ∪ ij) - v(S ∪ i) - v(S ∪ j) + v(S))
Efficiency: sum_i phi_i = v(N) - v(∅). The dominant modality is the one with the
largest |phi|. Exact up to :data:`MAX_EXACT` modalities; above that (or when asked)
phi is estimated from P seeded random orders (the same orders for every segment)
with its standard error sd / sqrt(P), and interactions are not estimated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ambiguity.errors import ConfigError, ModelError

if TYPE_CHECKING:  # torch is imported where a network runs: reading stored attributions needs none of it
    import torch

MAX_EXACT = 10
METHODS = ("auto", "exact", "permutation")
#: Rows (segments x coalitions) evaluated in one pass through the classifier.
PASS_ROWS = 8192


# -- targets ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """What v(S) measures: ``kind`` 'p' or 'logit' of the true class (``cls`` None) or of a named class."""

    kind: str
    cls: str | None = None

    @property
    def name(self) -> str:
        base = "p_correct" if self.kind == "p" else "logit"
        return base if self.cls is None else f"{'p' if self.kind == 'p' else 'logit'}:{self.cls}"


def parse_target(target: str, classes: Sequence[str]) -> Target:
    """``p_correct``, ``logit``, ``p:CLASS`` or ``logit:CLASS``; a class the model lacks is refused."""
    if target in ("p_correct", "p"):
        return Target("p")
    if target == "logit":
        return Target("logit")
    kind, sep, cls = target.partition(":")
    if sep and kind in ("p", "logit"):
        if cls not in classes:
            raise ConfigError(f"target {target!r}: the model has no output for class {cls!r}; its classes are {', '.join(classes)}")
        return Target(kind, cls)
    raise ConfigError(f"unknown target {target!r}: use p_correct, logit, p:CLASS or logit:CLASS")


def empty_value(prior: np.ndarray, target_index: np.ndarray, kind: str) -> np.ndarray:
    """v(∅) per row: the training class prior of the target class (p) or its log-odds (logit)."""
    p = np.asarray(prior, dtype=np.float64)[target_index]
    if kind == "p":
        return p
    if ((p <= 0) | (p >= 1)).any():
        raise ModelError("target logit: a target class has a training prior of 0 or 1, so the log-odds of v(∅) is infinite")
    return np.log(p) - np.log1p(-p)


# -- players --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Player:
    """One player: its name, modality, feature group (None when pooled) and the model inputs it holds."""

    name: str
    modality: str
    group: str | None
    inputs: tuple[int, ...]


def players(groups: Sequence[str], modalities: Sequence[str], *, pool: bool = False) -> list[Player]:
    """The players of a model over ``groups`` (in input order): one per group, or with ``pool`` one per
    modality (named after it, holding every group of that modality, in order of first appearance)."""
    if len(groups) != len(modalities):
        raise ConfigError(f"{len(groups)} groups but {len(modalities)} modalities")
    if not pool:
        return [Player(g, m, g, (i,)) for i, (g, m) in enumerate(zip(groups, modalities, strict=True))]
    order = list(dict.fromkeys(modalities))
    return [Player(m, m, None, tuple(i for i, x in enumerate(modalities) if x == m)) for m in order]


def player_presence(present: np.ndarray, members: Sequence[Sequence[int]]) -> np.ndarray:
    """(n, P) bool: a player is present when any of its inputs is."""
    pr = np.asarray(present, dtype=bool)
    return np.stack([pr[:, list(ix)].any(axis=1) for ix in members], axis=1) if members else np.zeros((len(pr), 0), bool)


def _input_masks(player_masks: np.ndarray, members: Sequence[Sequence[int]], m_inputs: int) -> np.ndarray:
    """(K, M) bool input masks of (K, P) player coalitions."""
    out = np.zeros((player_masks.shape[0], m_inputs), dtype=bool)
    for p, ix in enumerate(members):
        out[:, list(ix)] |= player_masks[:, p : p + 1]
    return out


# -- coalitions ------------------------------------------------------------------------------
def coalition_masks(m: int) -> np.ndarray:
    """(2^M, M) bool: row k holds coalition k, whose bit i says whether modality i is in it."""
    k = np.arange(2**m)[:, None]
    return ((k >> np.arange(m)[None, :]) & 1).astype(bool)


def _weights(m: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Per modality i: coalitions S without i, and the Shapley weight of each."""
    sizes = coalition_masks(m).sum(1)
    without, weights = [], []
    for i in range(m):
        s = np.flatnonzero(((np.arange(2**m) >> i) & 1) == 0)
        without.append(s)
        weights.append(np.array([math.factorial(sizes[k]) * math.factorial(m - sizes[k] - 1) / math.factorial(m) for k in s]))
    return without, weights, sizes


def shapley_from_values(values: np.ndarray) -> np.ndarray:
    """Exact Shapley values (n, M) from v of every coalition (n, 2^M), columns in :func:`coalition_masks` order."""
    v = np.asarray(values, dtype=np.float64)
    m = int(round(math.log2(v.shape[1])))
    if 2**m != v.shape[1]:
        raise ConfigError(f"values need 2^M columns, got {v.shape[1]}")
    without, weights, _ = _weights(m)
    return np.stack([(v[:, s | (1 << i)] - v[:, s]) @ w for i, (s, w) in enumerate(zip(without, weights, strict=True))], axis=1)


def interactions_from_values(values: np.ndarray) -> np.ndarray:
    """Shapley interaction indices (n, M, M), symmetric, NaN on the diagonal."""
    v = np.asarray(values, dtype=np.float64)
    m = int(round(math.log2(v.shape[1])))
    out = np.full((v.shape[0], m, m), np.nan)
    idx = np.arange(2**m)
    sizes = coalition_masks(m).sum(1)
    for i in range(m):
        for j in range(i + 1, m):
            s = idx[(((idx >> i) & 1) == 0) & (((idx >> j) & 1) == 0)]
            w = np.array([math.factorial(sizes[k]) * math.factorial(m - sizes[k] - 2) / math.factorial(m - 1) for k in s])
            bi, bj = 1 << i, 1 << j
            out[:, i, j] = out[:, j, i] = (v[:, s | bi | bj] - v[:, s | bi] - v[:, s | bj] + v[:, s]) @ w
    return out


# -- the model side ------------------------------------------------------------------------------
def check_maskable(net: torch.nn.Module, name: str = "the model") -> None:
    if not (hasattr(net, "encode") and hasattr(net, "attention") and hasattr(net, "classifier")):
        raise ModelError(
            f"{name} is a {type(net).__name__}: it concatenates its inputs and cannot leave a modality out, "
            "so modality attributions are undefined; attribute a fusion model (arch fusion)"
        )


class CoalitionModel:
    """v(S) of a chunk of segments for many coalitions S at once."""

    def __init__(self, net: torch.nn.Module, kind: str):
        import torch  # optional: ambiguity[models]

        check_maskable(net)
        # duck-typed (check_maskable): encode, attention, classifier of a fusion model
        self.net: Any = cast(Any, net.eval())
        self.kind = kind
        first = self.net.classifier[0]
        self.linear_first = isinstance(first, torch.nn.Linear)

    def prepare(self, xs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch  # optional: ambiguity[models]

        with torch.inference_mode():
            return self._prepare(xs)

    def _prepare(self, xs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        z, scores, _ = self.net.encode(xs)
        if self.linear_first:  # W z_m once per modality (see the module docstring)
            z = z @ self.net.classifier[0].weight.T
        return z, scores

    def values(self, z: torch.Tensor, scores: torch.Tensor, masks: torch.Tensor, target: torch.Tensor,
               present: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        import torch  # optional: ambiguity[models]

        with torch.inference_mode():
            return self._values(z, scores, masks, target, present)

    def _values(self, z: torch.Tensor, scores: torch.Tensor, masks: torch.Tensor, target: torch.Tensor,
                present: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K) target values of B segments for K input masks ``masks`` (K, M), each intersected with the
        segment's ``present`` inputs (B, M); and (B, K) bool, true where that left no input (the caller's v(∅))."""
        import torch  # optional: ambiguity[models]

        b, k = scores.shape[0], masks.shape[0]
        # contiguous: masked_fill on a stride-0 (expanded) tensor writes overlapping memory
        keep = masks.unsqueeze(1).expand(k, b, -1).contiguous()
        if present is not None:
            keep &= present.unsqueeze(0)
        empty = ~keep.any(dim=2)  # (K, B)
        keep[empty] = True  # any finite value; replaced by v(∅) by the caller
        alpha = self.net.attention(scores.unsqueeze(0).expand(k, -1, -1).contiguous(), keep)  # (K, B, M)
        fused = torch.einsum("kbm,bmh->kbh", alpha, z).reshape(k * b, -1)
        if self.linear_first:
            bias = self.net.classifier[0].bias
            logits = self.net.classifier[1:](fused + bias if bias is not None else fused)
        else:
            logits = self.net.classifier(fused)
        logp = torch.log_softmax(logits.double(), dim=1).reshape(k, b, -1)
        t = target.view(1, b, 1).expand(k, b, 1)
        lt = logp.gather(2, t).squeeze(2)
        if self.kind == "p":
            out = lt.exp()
        else:  # log-odds: log p_t - log(sum of the other classes' p)
            others = logp.scatter(2, t, float("-inf")).logsumexp(2)
            out = lt - others
        return out.T, empty.T  # (B, K)


# -- results ---------------------------------------------------------------------------------
@dataclass
class ShapleyResult:
    """Per segment and player: phi (n, P; NaN for an absent player); se (n, P, NaN when exact);
    interactions (n, P, P, None when sampled; NaN on the diagonal and for absent players);
    v_all and v_empty (n,); present (n, P) bool; the method and the number of orders sampled (0 when exact)."""

    phi: np.ndarray
    se: np.ndarray
    interactions: np.ndarray | None
    v_all: np.ndarray
    v_empty: np.ndarray
    method: str
    n_permutations: int = 0
    extra: dict = field(default_factory=dict)
    present: np.ndarray | None = None

    def __post_init__(self):
        if self.present is None:
            self.present = np.ones(self.phi.shape, dtype=bool)

    @property
    def dominant(self) -> np.ndarray:
        """Index of the present player with the largest |phi| per segment."""
        return np.where(np.asarray(self.present), np.abs(np.nan_to_num(self.phi, nan=0.0)), -1.0).argmax(axis=1)

    def efficiency_error(self) -> np.ndarray:
        """|sum of phi over present players - (v_all - v_empty)| per segment (0 up to rounding)."""
        return np.abs(np.nansum(self.phi, axis=1) - (self.v_all - self.v_empty))


def resolve_method(method: str, m: int, n_permutations: int | None) -> str:
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}: use {', '.join(METHODS)}")
    if method == "auto":
        method = "exact" if m <= MAX_EXACT else "permutation"
    if method == "exact" and m > MAX_EXACT:
        raise ConfigError(
            f"{m} modalities is above the exact limit of {MAX_EXACT} (2^{m} coalitions per segment); "
            "estimate by permutation sampling instead (method='permutation', n_permutations=P)"
        )
    if method == "permutation" and (n_permutations is None or n_permutations < 2):
        raise ConfigError(
            f"permutation sampling needs n_permutations >= 2 (for a standard error); got {n_permutations}"
            + (f" -- {m} modalities is above the exact limit of {MAX_EXACT}" if m > MAX_EXACT else "")
        )
    return method


def _members(net: torch.nn.Module, members: Sequence[Sequence[int]] | None) -> list[tuple[int, ...]]:
    """The inputs of each player (default: one player per input), checked to cover every input once."""
    m_in = len(cast("Sequence[int]", net.input_dims))
    if members is None:
        return [(i,) for i in range(m_in)]
    out = [tuple(int(i) for i in ix) for ix in members]
    flat = sorted(i for ix in out for i in ix)
    if flat != list(range(m_in)) or any(not ix for ix in out):
        raise ConfigError(f"players must hold each of the model's {m_in} inputs exactly once; got {out}")
    return out


def iter_shapley(
    net: torch.nn.Module,
    chunks: Iterable[tuple],
    prior: np.ndarray,
    *,
    kind: str = "p",
    method: str = "auto",
    n_permutations: int | None = None,
    seed: int = 0,
    interactions: bool = True,
    members: Sequence[Sequence[int]] | None = None,
) -> Iterator[ShapleyResult]:
    """Shapley values chunk by chunk; each chunk is (inputs per model input, target class index per row) or
    (inputs, target index, present) with ``present`` (n, M) bool saying which inputs each row has.

    ``members``: the model inputs of each player (default one player per input; see :func:`players`).
    Memory is bounded by the chunk size and :data:`PASS_ROWS`, whatever the number of chunks.
    """
    import torch  # optional: ambiguity[models]

    mem = _members(net, members)
    m_in = len(cast("Sequence[int]", net.input_dims))
    m = len(mem)
    method = resolve_method(method, m, n_permutations)
    cm = CoalitionModel(net, kind)
    n_perm = n_permutations or 0  # resolve_method: an int >= 2 wherever permutation sampling reads it
    if method == "exact":
        masks = torch.from_numpy(_input_masks(coalition_masks(m)[1:], mem, m_in))
    else:
        rng = np.random.default_rng(seed)
        orders = np.stack([rng.permutation(m) for _ in range(n_perm)])  # (P, M)
        prefix = np.zeros((n_perm, m, m), bool)  # prefix[p, j]: the first j + 1 modalities of order p
        for j in range(m):
            prefix[np.arange(n_perm)[:, None], j:, orders[:, j : j + 1]] = True
        masks = torch.from_numpy(_input_masks(prefix.reshape(-1, m), mem, m_in))
    per_pass = max(1, PASS_ROWS // masks.shape[0])
    dtype = next(net.parameters()).dtype
    for chunk in chunks:
        xs, tidx = chunk[0], np.asarray(chunk[1], dtype=np.int64)
        pin = np.ones((len(tidx), m_in), bool) if len(chunk) < 3 or chunk[2] is None else np.asarray(chunk[2], bool)
        if pin.shape != (len(tidx), m_in):
            raise ConfigError(f"present must be ({len(tidx)}, {m_in}); got {pin.shape}")
        if len(tidx) and not pin.any(axis=1).all():
            raise ModelError("a segment has none of the model's inputs: it has no prediction to attribute")
        pres = player_presence(pin, mem)
        pt = torch.from_numpy(pin)
        # an absent input's placeholder never counts (weight 0), but NaN * 0 is NaN: zero it
        ts = [torch.as_tensor(x).to(dtype).masked_fill(~pt[:, j : j + 1], 0.0) for j, x in enumerate(xs)]
        v_empty = empty_value(prior, tidx, kind)
        parts = []
        for s in range(0, len(tidx), per_pass):
            sl = slice(s, s + per_pass)
            z, scores = cm.prepare([x[sl] for x in ts])
            vt, et = cm.values(z, scores, masks, torch.from_numpy(tidx[sl]), pt[sl])
            parts.append(np.where(et.numpy(), v_empty[sl, None], vt.numpy()))
        vals = np.concatenate(parts) if parts else np.zeros((0, masks.shape[0]))
        if method == "exact":
            full = np.concatenate([v_empty[:, None], vals], axis=1)
            phi = np.where(pres, shapley_from_values(full), np.nan)
            inter: np.ndarray | None = interactions_from_values(full) if interactions and m > 1 else None
            if inter is not None:
                inter = np.where(pres[:, :, None] & pres[:, None, :], inter, np.nan)
            yield ShapleyResult(phi, np.full((len(tidx), m), np.nan), inter, full[:, -1], v_empty, "exact", present=pres)
        else:
            n = len(tidx)
            v = vals.reshape(n, n_perm, m)
            prev = np.concatenate([np.broadcast_to(v_empty[:, None, None], (n, n_perm, 1)), v[:, :, :-1]], axis=2)
            marg = np.zeros((n, n_perm, m))
            np.put_along_axis(marg, np.broadcast_to(orders[None], (n, n_perm, m)), v - prev, axis=2)
            phi = np.where(pres, marg.mean(1), np.nan)
            se = np.where(pres, marg.std(1, ddof=1) / math.sqrt(n_perm), np.nan)
            yield ShapleyResult(phi, se, None, v[:, 0, -1], v_empty, "permutation", n_perm, present=pres)


def concat(results: Sequence[ShapleyResult], m: int) -> ShapleyResult:
    if not results:
        return ShapleyResult(np.zeros((0, m)), np.zeros((0, m)), None, np.zeros(0), np.zeros(0), "exact")
    inter = None if results[0].interactions is None else np.concatenate([r.interactions for r in results])
    return ShapleyResult(
        np.concatenate([r.phi for r in results]), np.concatenate([r.se for r in results]), inter,
        np.concatenate([r.v_all for r in results]), np.concatenate([r.v_empty for r in results]),
        results[0].method, results[0].n_permutations,
        present=np.concatenate([np.asarray(r.present) for r in results]),
    )


def shapley_values(
    net: torch.nn.Module,
    inputs: Sequence[np.ndarray | torch.Tensor],
    target_index: np.ndarray,
    prior: np.ndarray,
    *,
    kind: str = "p",
    method: str = "auto",
    n_permutations: int | None = None,
    seed: int = 0,
    chunk: int = 8192,
    interactions: bool = True,
    present: np.ndarray | None = None,
    members: Sequence[Sequence[int]] | None = None,
) -> ShapleyResult:
    """Shapley values of every row of ``inputs`` (one (n, d_m) array per model input, standardised).

    ``target_index`` is the class whose p (``kind='p'``) or log-odds (``'logit'``) is explained;
    ``prior`` the training class prior that defines v(∅). ``present`` (n, M) bool: the inputs each row has
    (default all; an absent input's values are ignored); ``members``: the inputs of each player
    (default one player per input, see :func:`players`).
    """
    if chunk < 1:
        raise ConfigError(f"chunk={chunk}: use a positive number of segments")
    n = len(target_index)
    pr = None if present is None else np.asarray(present, dtype=bool)
    chunks = (([x[s : s + chunk] for x in inputs], target_index[s : s + chunk], None if pr is None else pr[s : s + chunk])
              for s in range(0, n, chunk))
    res = list(iter_shapley(net, chunks, prior, kind=kind, method=method, n_permutations=n_permutations,
                            seed=seed, interactions=interactions, members=members))
    return concat(res, len(_members(net, members)))
