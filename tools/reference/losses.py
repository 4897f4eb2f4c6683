"""Independent PyTorch reference implementation of the spreadtrain losses.

Written from /work/shared/METHOD.md ("Canonical losses" and "The reference code's
variant").  Everything here is plain, dtype-agnostic PyTorch (use float64 for
fixtures).  Nothing is clever on purpose: the Go/libtorch implementation is
checked against these numbers.

Conventions
-----------
* z has shape [N, V, D]: N samples, V views, D dims, RAW (unnormalised).  The
  losses L2-normalise internally: z_hat = x / max(||x||, 1e-12).
* An anchor a = (i, v) is flattened to row index i*V + v.
* s(a, b) = <z_hat_a, z_hat_b> / tau.
* Anchor-subset ("ga" = gathered) versions: the candidates are z_all[Nc, V, D]
  (e.g. the batches of every data-parallel rank gathered); the anchors are
  rows anchor_offset .. anchor_offset+Na-1 of the candidates (the local rank's
  samples).  z_anchor must be the same numbers as that slice of z_all; pass
  the slice of the same tensor so that gradients flow through both uses.
  The mean is over the LOCAL anchors.  The plain versions are the special
  case anchors == candidates, offset 0.

Canonical losses (METHOD.md):
  SupCon   P(a) = {b != a : y_b = y_a}
           'all':       L_a = -1/|P(a)| sum_{p in P(a)} [ s(a,p) - LSE_{b != a} s(a,b) ]
           'negatives': L_a = -1/|P(a)| sum_{p in P(a)} [ s(a,p) - LSE_{b in {p} u N(a)} s(a,b) ]
                        N(a) = {b : y_b != y_a}
           Loss = mean over anchors with |P(a)| > 0; 0 if there is none.
  cNCE     Q(a) = other views of the same sample, C(a) = {b != a : y_b = y_a}
           L_a = -1/|Q(a)| sum_{q in Q(a)} [ s(a,q) - LSE_{b in C(a)} s(a,b) ]
           Loss = mean over anchors with |Q(a)| > 0 (all anchors when V >= 2).
  Spread   alpha * SupCon + (1 - alpha) * cNCE
  SimCLR   SupCon with every sample its own class, 'all' denominator.

Compatibility mode (HazyResearch/thanos-code "ContrastiveLoss"), see
compat_losses() below for the exact formulas that reproduce METHOD.md's
golden values.
"""

import math

import torch

NORM_EPS = 1e-12


def l2_normalize(x):
    """x / max(||x||_2, 1e-12) along the last dimension (same as F.normalize)."""
    norm = torch.sqrt((x * x).sum(dim=-1, keepdim=True))
    return x / torch.clamp(norm, min=NORM_EPS)


def masked_logsumexp(s, mask):
    """Row-wise log(sum_{j: mask[i,j]} exp(s[i,j])) with max subtraction.

    Rows with an empty mask give -inf and never produce NaN gradients.  The max
    is detached: the result does not depend on it, so neither does the gradient.
    """
    neg_inf = torch.tensor(float("-inf"), dtype=s.dtype, device=s.device)
    row_max = torch.where(mask, s, neg_inf).max(dim=1).values
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max)).detach()
    sum_exp = torch.where(mask, torch.exp(s - row_max[:, None]), torch.zeros_like(s)).sum(dim=1)
    nonempty = sum_exp > 0
    safe = torch.where(nonempty, sum_exp, torch.ones_like(sum_exp))
    return torch.where(nonempty, row_max + torch.log(safe), neg_inf.expand_as(row_max))


def _flatten(z_anchor, y_anchor, z_all, y_all, anchor_offset, tau):
    """Similarity matrix and index bookkeeping shared by all canonical losses.

    Returns
      s          [A, C]  s(a, b) = <z_a, z_b> / tau   (A = Na*V, C = Nc*V)
      same_class [A, C]  bool, y_b == y_a
      same_item  [A, C]  bool, b is a view of the same sample as a (incl. a itself)
      is_self    [A, C]  bool, b == a
    """
    na, v, d = z_anchor.shape
    nc = z_all.shape[0]
    assert z_all.shape[1] == v and z_all.shape[2] == d
    assert 0 <= anchor_offset and anchor_offset + na <= nc
    za = l2_normalize(z_anchor).reshape(na * v, d)
    zc = l2_normalize(z_all).reshape(nc * v, d)
    s = za @ zc.t() / tau

    dev = z_all.device
    a_sample = (torch.arange(na, device=dev) + anchor_offset).repeat_interleave(v)
    a_view = torch.arange(v, device=dev).repeat(na)
    c_sample = torch.arange(nc, device=dev).repeat_interleave(v)
    c_view = torch.arange(v, device=dev).repeat(nc)
    a_label = y_anchor.to(dev).repeat_interleave(v)
    c_label = y_all.to(dev).repeat_interleave(v)

    same_class = a_label[:, None] == c_label[None, :]
    same_item = a_sample[:, None] == c_sample[None, :]
    is_self = same_item & (a_view[:, None] == c_view[None, :])
    return s, same_class, same_item, is_self


def _mean_over_valid(per_anchor, valid, like):
    """Mean of per_anchor over valid rows; 0 (with a zero gradient) if none is valid."""
    count = int(valid.sum().item())
    if count == 0:
        return like.sum() * 0.0
    zeros = torch.zeros_like(per_anchor)
    return torch.where(valid, per_anchor, zeros).sum() / count


def _positive_average(s_minus_den, pos_mask):
    """-1/|P(a)| * sum_{p in P(a)} s_minus_den[a, p], 0 for rows with no positive."""
    n_pos = pos_mask.sum(dim=1)
    total = torch.where(pos_mask, s_minus_den, torch.zeros_like(s_minus_den)).sum(dim=1)
    return -total / torch.clamp(n_pos, min=1).to(s_minus_den.dtype), n_pos > 0


def supcon_ga(z_anchor, y_anchor, z_all, y_all, anchor_offset, tau, denominator="all"):
    s, same_class, same_item, is_self = _flatten(z_anchor, y_anchor, z_all, y_all, anchor_offset, tau)
    pos = same_class & ~is_self
    if denominator == "all":
        lse = masked_logsumexp(s, ~is_self)              # [A]
        terms = s - lse[:, None]                           # s(a,p) - LSE_{b != a}
    elif denominator == "negatives":
        neg = ~same_class                                  # other-class items
        # log( exp(s_ap) + sum_{n in N(a)} exp(s_an) ), per (a, p), with max subtraction.
        neg_inf = torch.tensor(float("-inf"), dtype=s.dtype, device=s.device)
        m_neg = torch.where(neg, s, neg_inf).max(dim=1).values        # -inf if no negative
        has_neg = torch.isfinite(m_neg)
        m_neg_safe = torch.where(has_neg, m_neg, torch.zeros_like(m_neg)).detach()
        sum_neg = torch.where(neg, torch.exp(s - m_neg_safe[:, None]), torch.zeros_like(s)).sum(dim=1)
        m_pair = torch.where(has_neg[:, None], torch.maximum(s, m_neg_safe[:, None]), s).detach()
        den = m_pair + torch.log(torch.exp(s - m_pair)
                                 + sum_neg[:, None] * torch.exp(m_neg_safe[:, None] - m_pair))
        terms = s - den
    else:
        raise ValueError("denominator must be 'all' or 'negatives'")
    per_anchor, valid = _positive_average(terms, pos)
    return _mean_over_valid(per_anchor, valid, z_all)


def cnce_ga(z_anchor, y_anchor, z_all, y_all, anchor_offset, tau):
    s, same_class, same_item, is_self = _flatten(z_anchor, y_anchor, z_all, y_all, anchor_offset, tau)
    pos = same_item & ~is_self                 # other views of the same sample
    den_mask = same_class & ~is_self           # same-class items only (contains pos)
    lse = masked_logsumexp(s, den_mask)
    # rows without a positive have an empty-or-not den_mask; keep them finite
    lse = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
    per_anchor, valid = _positive_average(s - lse[:, None], pos)
    return _mean_over_valid(per_anchor, valid, z_all)


def spread_ga(z_anchor, y_anchor, z_all, y_all, anchor_offset, tau, alpha, denominator="all"):
    return (alpha * supcon_ga(z_anchor, y_anchor, z_all, y_all, anchor_offset, tau, denominator)
            + (1.0 - alpha) * cnce_ga(z_anchor, y_anchor, z_all, y_all, anchor_offset, tau))


def simclr_ga(z_anchor, z_all, anchor_offset, tau):
    """SupCon with every sample its own class: P(a) = Q(a), denominator all b != a."""
    na, nc = z_anchor.shape[0], z_all.shape[0]
    dev = z_all.device
    y_all = torch.arange(nc, device=dev)
    y_anchor = y_all[anchor_offset:anchor_offset + na]
    return supcon_ga(z_anchor, y_anchor, z_all, y_all, anchor_offset, tau, "all")


# Plain versions: anchors == candidates.
def supcon(z, labels, tau, denominator="all"):
    return supcon_ga(z, labels, z, labels, 0, tau, denominator)


def cnce(z, labels, tau):
    return cnce_ga(z, labels, z, labels, 0, tau)


def spread(z, labels, tau, alpha, denominator="all"):
    return spread_ga(z, labels, z, labels, 0, tau, alpha, denominator)


def simclr(z, tau):
    return simclr_ga(z, z, 0, tau)


# ---------------------------------------------------------------------------
# Slow per-anchor loop formulation (as typical research code writes it).
# Used as an independent cross-check of the vectorised versions and for
# benchmarking.  Same semantics, incl. anchor subsets.
# ---------------------------------------------------------------------------

def supcon_loop(z, labels, tau, denominator="all", anchor_offset=0, num_anchors=None):
    n, v, d = z.shape
    if num_anchors is None:
        num_anchors = n - anchor_offset
    zn = l2_normalize(z)
    flat = zn.reshape(n * v, d)
    lab = [int(t) for t in labels.tolist()]
    losses = []
    for i in range(anchor_offset, anchor_offset + num_anchors):
        for vi in range(v):
            a = i * v + vi
            sims = flat @ flat[a] / tau                      # [N*V]
            others = [b for b in range(n * v) if b != a]
            positives = [b for b in others if lab[b // v] == lab[i]]
            negatives = [b for b in range(n * v) if lab[b // v] != lab[i]]
            if not positives:
                continue
            acc = 0.0
            for p in positives:
                if denominator == "all":
                    den = torch.logsumexp(sims[others], dim=0)
                else:
                    den = torch.logsumexp(sims[[p] + negatives], dim=0)
                acc = acc + (sims[p] - den)
            losses.append(-acc / len(positives))
    if not losses:
        return z.sum() * 0.0
    return torch.stack(losses).mean()


def cnce_loop(z, labels, tau, anchor_offset=0, num_anchors=None):
    n, v, d = z.shape
    if num_anchors is None:
        num_anchors = n - anchor_offset
    zn = l2_normalize(z)
    flat = zn.reshape(n * v, d)
    lab = [int(t) for t in labels.tolist()]
    losses = []
    for i in range(anchor_offset, anchor_offset + num_anchors):
        for vi in range(v):
            a = i * v + vi
            sims = flat @ flat[a] / tau
            positives = [i * v + w for w in range(v) if w != vi]
            same_class = [b for b in range(n * v) if b != a and lab[b // v] == lab[i]]
            if not positives:
                continue
            den = torch.logsumexp(sims[same_class], dim=0)
            acc = 0.0
            for q in positives:
                acc = acc + (sims[q] - den)
            losses.append(-acc / len(positives))
    if not losses:
        return z.sum() * 0.0
    return torch.stack(losses).mean()


def simclr_loop(z, tau, anchor_offset=0, num_anchors=None):
    return supcon_loop(z, torch.arange(z.shape[0]), tau, "all", anchor_offset, num_anchors)


# ---------------------------------------------------------------------------
# Compatibility mode: the reference code's (HazyResearch/thanos-code) variant.
#
# Inputs: the encoder outputs of each view, h_0 .. h_{V-1}, each [B, D], not
# normalised; labels y [B] (the same for every view).  For every ordered view
# pair (u, w) with u > w (V=2: only u=1, w=0), anchors are the rows of view u and
# candidates the rows of view w; same-view pairs are never compared:
#
#   m[i, j] = <h_u[i], h_w[j]> / tau                                 (lc_norm off)
#   m[i, j] = <h_u[i], h_w[j]> / (tau * |h_u[j]| * |h_w[j]|)         (lc_norm on)
#             -- both norms are those of the COLUMN j (the quirk); this equals the
#                cosine/tau only when the inputs are already normalised.
#
#   P_i = { j : y_j == y_i }  (includes j = i, the other view of sample i)
#   N_i = { j : y_j != y_i }
#
#   SupCon_i = 1/|P_i| * sum_{p in P_i} [ -min(m[i,p], 1.0)
#                                         + LSE_{k in {p} u N_i} m[i,k] ]
#       * the clamp acts on the logit AFTER the division by tau, on the
#         numerator only: the p term inside the LSE is the UNclamped m[i,p];
#       * "without the clamp": replace min(m[i,p], 1.0) by m[i,p].
#   cNCE_i   = -m[i,i] + LSE_{j in P_i} m[i,j]      (never clamped)
#   SimCLR_i = -min(m[i,i], 1.0) + LSE_{all j} m[i,j]   (the clamp applies here too)
#
#   pair loss = mean_i [ alpha * SupCon_i + (1 - alpha) * cNCE_i ]
#   (alpha = a_lc / (a_lc + a_spread); every anchor has a positive, itself)
#   loss = average of the pair losses over the V(V-1)/2 pairs.
#
# The mean is over anchors i (B terms), each anchor's SupCon term being an
# average over its positives.
# ---------------------------------------------------------------------------

CLAMP_MAX = 1.0


def compat_logits(h_anchor, h_cand, tau, lc_norm=True):
    m = h_anchor @ h_cand.t() / tau
    if lc_norm:
        col_scale = torch.sqrt((h_anchor * h_anchor).sum(dim=1)) * torch.sqrt((h_cand * h_cand).sum(dim=1))
        m = m / col_scale[None, :]   # divides column j by |h_anchor[j]| * |h_cand[j]|
    return m


def compat_pair_terms(h_anchor, h_cand, labels, tau, lc_norm=True, clamp=True, use_labels=True):
    """Per-anchor SupCon and cNCE terms for one (anchor view, candidate view) pair."""
    b = h_anchor.shape[0]
    m = compat_logits(h_anchor, h_cand, tau, lc_norm)
    eye = torch.eye(b, dtype=torch.bool, device=m.device)
    if use_labels:
        pos = labels[:, None] == labels[None, :]
    else:
        pos = eye
    neg = ~pos
    num = torch.clamp(m, max=CLAMP_MAX) if clamp else m

    # supcon: per (i, p): -num[i,p] + LSE({m[i,p]} u {m[i,k] : k in N_i})
    lse_neg = masked_logsumexp(m, neg)                       # -inf if no negative
    has_neg = torch.isfinite(lse_neg)
    safe_lse = torch.where(has_neg, lse_neg, torch.zeros_like(lse_neg))
    # rows with no negative: LSE({m[i,p]}) == m[i,p], written explicitly (finite grads)
    den = torch.where(has_neg[:, None], torch.logaddexp(m, safe_lse[:, None].expand_as(m)), m)
    sc_pair = torch.where(pos, -num + den, torch.zeros_like(m))
    supcon_i = sc_pair.sum(dim=1) / pos.sum(dim=1).to(m.dtype)

    # cnce: -m[i,i] + LSE_{j in P_i} m[i,j]
    cnce_i = -torch.diagonal(m) + masked_logsumexp(m, pos)
    return supcon_i, cnce_i


def compat_losses(views, labels, tau=0.5, alpha=0.5, lc_norm=True, clamp=True):
    """Reference-code variant.  views: list of [B, D] tensors (h_0, h_1, ...).

    Returns a dict with 'supcon', 'cnce', 'spread' (at alpha) and 'simclr'.
    """
    nv = len(views)
    sc_total, cn_total, sp_total, sim_total = 0.0, 0.0, 0.0, 0.0
    pairs = 0
    for u in range(nv):
        for w in range(u):
            sc_i, cn_i = compat_pair_terms(views[u], views[w], labels, tau, lc_norm, clamp)
            sim_i, _ = compat_pair_terms(views[u], views[w], labels, tau, lc_norm, clamp, use_labels=False)
            sc_total = sc_total + sc_i.mean()
            cn_total = cn_total + cn_i.mean()
            sp_total = sp_total + (alpha * sc_i + (1.0 - alpha) * cn_i).mean()
            sim_total = sim_total + sim_i.mean()
            pairs += 1
    return {"supcon": sc_total / pairs, "cnce": cn_total / pairs,
            "spread": sp_total / pairs, "simclr": sim_total / pairs}


# The fixture from METHOD.md and its golden values (reference code, lc_norm on).
GOLDEN_VIEW0 = [[1.0, 0.2, -0.3], [0.8, -0.1, 0.5], [0.3, 0.9, 0.1],
                [-0.7, 0.4, 0.6], [-0.2, -0.8, 0.9], [0.5, 0.5, -1.2]]
GOLDEN_VIEW1 = [[0.9, 0.3, -0.1], [1.1, 0.0, 0.4], [0.2, 1.0, 0.3],
                [-0.6, 0.2, 0.8], [-0.4, -0.9, 0.7], [0.6, 0.3, -1.0]]
GOLDEN_LABELS = [0, 0, 0, 1, 1, 2]
GOLDEN_TAU = 0.5
GOLDEN = {
    "supcon": 1.1872997920,
    "supcon_noclamp": 0.6505682049,
    "spread_alpha_0.5": 0.7927659909,
    "spread_alpha_0.25": 0.5954990904,
    "simclr": 1.6762165165,
}
