"""Leaderboard rows from stored runs (light: reads the index, no torch)."""

from __future__ import annotations

from typing import Any

from bdcore.store import RunStore

COLUMNS = ["dataset", "model", "attack", "pratio", "defense", "cacc", "asr", "ra", "der", "psnr", "ssim", "run_id"]


def leaderboard(store: RunStore, run_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per run: the attack run as defense 'none', then each defense on it.

    run_ids: restrict to these runs (e.g. those of one grid); default: every indexed run.
    """
    rows = store.rows()
    if run_ids is not None:
        wanted = set(run_ids)
        rows = [r for r in rows if r["run_id"] in wanted]
    out = []
    for r in rows:
        m = r["metrics"]
        out.append({
            "dataset": r["dataset"], "model": r["model"], "attack": r["attack"], "pratio": r["pratio"],
            "defense": r["defense"] or "none", "cacc": m.get("cacc"), "asr": m.get("asr"), "ra": m.get("ra"),
            "der": m.get("der"), "psnr": m.get("psnr"), "ssim": m.get("ssim"),
            "run_id": r["run_id"], "parent": r["parent"],
            "detection": m.get("detection"),
        })
    out.sort(key=lambda r: (r["dataset"] or "", r["model"] or "", r["attack"] or "", r["pratio"] or 0,
                            r["defense"] != "none", r["defense"]))
    return out
