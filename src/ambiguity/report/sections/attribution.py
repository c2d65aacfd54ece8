"""Modality attribution: exact Shapley values of the fusion model's p(correct) per quadrant
(stored ones, else computed now)."""

from __future__ import annotations

import polars as pl

from ambiguity import tables as T
from ambiguity.constants import CORRECTION_NAMES
from ambiguity.errors import MissingGroupError
from ambiguity.models.attributions import WIDE_COLUMNS, attribute, caption, check_same_scheme, read_attributions, wide
from ambiguity.report.context import Report, SectionSpec
from ambiguity.report.fig_attribution import write_attribution_figures
from ambiguity.report.html import Section
from ambiguity.stats.attribution_by_quadrant import SHARE_NOTE, auc_lower, quadrant_frame, summarise


def _unimodal_first(dfs: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(dfs).select(["unimodal", *[c for c in dfs[0].columns if c != "unimodal"]])


def build(rep: Report, sec: Section) -> None:
    s = rep.s
    scheme = rep.scheme().name  # the quadrants' scheme: attributions of another scheme are never mixed in
    try:
        long = read_attributions(rep.store, s.fusion, "p_correct", s.splits, scheme=scheme, columns=WIDE_COLUMNS)
        how = "stored by `ambiguity attribute`"
    except MissingGroupError:
        long = attribute(rep.store, s.fusion, scheme=scheme, splits=s.splits, write=False).frame
        how = "computed for this report"
    w = wide(long)
    mods = [c.removeprefix("phi_") for c in w.columns if c.startswith("phi_")]  # wide() names the players
    for m in rep.models():
        check_same_scheme(long, rep.quadrants(m))
    means, tests, doms, frames = [], [], [], {}
    for m in rep.models():
        frame = quadrant_frame(w, rep.quadrants(m))
        frames[m] = frame
        me, te, do = summarise(frame, mods, test=s.test, correction=s.correction, alpha=s.alpha)
        means.append(me.with_columns(pl.lit(m).alias("unimodal")))
        tests.append(te.with_columns(pl.lit(m).alias("unimodal")))
        doms.append(do.with_columns(pl.lit(m).alias("unimodal")))
    head = (f"Exact Shapley values of {s.fusion}'s p(correct label) per modality ({how}; {caption(long, s.fusion)}); "
            "v(∅) is the class prior of the segments that model was fitted on.")
    sec.files += write_attribution_figures({m: d.drop("unimodal") for m, d in zip(frames, means, strict=True)},
                                           next(iter(frames.values())), mods, rep.out / "figures", fusion=s.fusion)
    sec.files += rep.table("attribution_dominant", _unimodal_first(doms),
                           f"Which modality dominated fusion (largest |phi|), per quadrant. {head}")
    sec.files += rep.table("attribution_means", _unimodal_first(means), f"Mean phi and mean share (phi / sum |phi|) per quadrant with 95% t intervals. {SHARE_NOTE} {head}")
    n_tests = sum(int(t["p"].is_not_nan().sum()) for t in tests)
    sec.files += rep.table("attribution_tests", _unimodal_first(tests),
                           f"Red vs blue and green vs blue per modality ({s.test} t-test); per unimodal model one "
                           f"correction family of its 2 x {len(mods)} tests ({CORRECTION_NAMES[s.correction]}; "
                           f"{n_tests} tests in all); the share_* columns test the share, its own family. {SHARE_NOTE} {head}")
    md = [T.to_markdown(_unimodal_first(doms), caption="Dominant modality per quadrant.", digits=3)]
    if s.flag:
        flags = rep.flags()
        wf = w.with_columns(pl.col("segment_id").replace_strict(flags, default="").alias("flag"))
        rows = []
        for v in sorted(set(wf["flag"].to_list()) & set(mods)):
            res = auc_lower(wf.filter(pl.col("flag") == v)[f"phi_{v}"].to_numpy(),
                            wf.filter(pl.col("flag") == "")[f"phi_{v}"].to_numpy())
            rows.append({s.flag: v, "phi_of": v, **res})
        if rows:
            df = pl.DataFrame(rows)
            cap = (f"phi of the flagged modality for segments flagged by {s.flag!r} vs unflagged ones: AUC = "
                   "P(flagged phi < unflagged phi), rank-biserial = 2 AUC - 1 (95% percentile bootstrap, 2000 resamples), "
                   "one-sided Mann-Whitney p.")
            sec.files += rep.table("attribution_flagged", df, cap)
            md.append(T.to_markdown(df, caption=cap, digits=3))
            rep.cache["attribution_flagged"] = df
    sec.markdown = "\n".join(md)


SECTION = SectionSpec("attribution", "Modality attribution: which modality moved the fusion model", build,
                      "train a fusion model with `ambiguity train` (its weights are saved), then `ambiguity attribute`")
