"""Leaderboard rows from stored runs (light: reads the index, no torch)."""

from __future__ import annotations

from typing import Any

from bdcore.reporting.results import is_detector
from bdcore.runs.store import RunStore

COLUMNS = ["dataset", "model", "attack", "pratio", "seed", "defense", "cacc", "asr", "ra", "der", "auroc", "psnr", "ssim",
           "run_id"]


def leaderboard(store: RunStore, run_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per run: the attack run as defense 'none', then each defense on it; `victim_broken` marks runs
    whose victim never learned (C-ACC near chance), `detector` defenses that only detect (judge them by
    `auroc`, not `der`).

    run_ids: restrict to these runs (e.g. those of one grid); default: every indexed run.
    """
    rows = store.rows()
    by_id = {r["run_id"]: r for r in rows}
    if run_ids is not None:
        wanted = set(run_ids)
        rows = [r for r in rows if r["run_id"] in wanted]
    out = []
    for r in rows:
        m = r["metrics"] or {}
        parent = by_id.get(r["parent"]) if r["parent"] else None
        attack_cfg = (parent or {}).get("config") or {} if r["kind"] == "defense" else r.get("config") or {}
        broken = m.get("victim_broken")
        if broken is None and parent is not None:
            broken = (parent.get("metrics") or {}).get("victim_broken")
        det = m.get("detection") or m.get("input_detection")
        out.append({
            "dataset": r["dataset"], "model": r["model"], "attack": r["attack"], "pratio": r["pratio"],
            "seed": attack_cfg.get("seed"),
            "defense": r["defense"] or "none", "cacc": m.get("cacc"), "asr": m.get("asr"), "ra": m.get("ra"),
            "der": m.get("der"), "auroc": det.get("auroc") if isinstance(det, dict) else None,
            "psnr": m.get("psnr"), "ssim": m.get("ssim"),
            "run_id": r["run_id"], "parent": r["parent"],
            "detection": m.get("detection"), "input_detection": m.get("input_detection"),
            "victim_broken": bool(broken), "detector": r["kind"] == "defense" and is_detector(m),
        })
    out.sort(key=lambda r: (r["dataset"] or "", r["model"] or "", r["attack"] or "", r["pratio"] or 0,
                            r["seed"] if r["seed"] is not None else -1, r["defense"] != "none", r["defense"]))
    return out
