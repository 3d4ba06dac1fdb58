import numpy as np
import pytest
import torch

from probe.edit.drag import DragError
from probe.edit.evaluate import EDIT_COLUMNS, drag_eval, outside_change, summarize, to_markdown


def test_outside_change_ignores_the_discs():
    before = torch.zeros(3, 32, 32)
    after = before.clone()
    after[:, 8:12, 8:12] = 1.0  # inside the disc around (10, 10)
    assert outside_change(before, after, np.array([[10.0, 10.0]]), 4) == 0.0
    after[:, 30:, 30:] = 0.5  # 4 pixels far away
    yy, xx = np.mgrid[0:32, 0:32]
    n_far = int(((xx - 10) ** 2 + (yy - 10) ** 2 > 16).sum())
    assert outside_change(before, after, np.array([[10.0, 10.0]]), 4) == pytest.approx(4 * 0.5 * 127.5 / n_far)


def test_drag_eval_on_faces(faces):
    kw = {"draggan": {"max_steps": 4}, "freedrag": {"max_steps": 4}}
    edits = drag_eval(faces, n_pairs=1, settings=(1, 5), drag_kwargs=kw)
    assert list(edits.columns) == EDIT_COLUMNS and len(edits) == 8  # 2 drags + 2 oracles, 2 settings
    drags = edits[edits["method"].isin(["draggan", "freedrag"])]
    assert (edits["md_before"] > 0).all() and (drags["steps"] <= 4).all() and (drags["seconds"] > 0).all()
    summary = summarize(edits)
    assert summary["method"].tolist() == ["no edit", "draggan", "freedrag", "oracle-local", "oracle-shift"] * 2
    assert (
        summary.loc[summary["method"] == "no edit", "md"].tolist()
        == edits.groupby("points")["md_before"].first().tolist()
    )
    md = to_markdown(summary)
    assert md.splitlines()[0].startswith("| method | points | pairs | MD (px)") and md.count("\n") == 11
    assert md.splitlines()[0].endswith("| status ok | flagged degraded | max drift | ok but degraded |")
    assert (
        set(drags["status"]) <= {"ok", "degraded", "stopped"}
        and (edits.loc[~edits.index.isin(drags.index), "status"] == "warp").all()
    )
    assert (drags["handle_px"] >= 0).all() and drags["degraded"].isin([True, False]).all()
    assert (drags["max_drift"] >= 0).all()  # the face model's measures were scored on every edit
    # a run reported "ok" is never over a quality threshold (the guard turns it into "degraded")
    assert (summary.loc[summary["method"].isin(["draggan", "freedrag"]), "false_ok"] == 0).all()


def test_drag_eval_bad_settings(faces):
    with pytest.raises(DragError, match="settings must be 1 and/or 5"):
        drag_eval(faces, n_pairs=1, settings=(3,))


def test_oracle_warp_moves_content_onto_the_target():
    from probe.edit.evaluate import oracle_warp

    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    img = torch.exp(-((xx - 16) ** 2 + (yy - 16) ** 2) / 8)[None].repeat(3, 1, 1) * 2 - 1  # peak at (16, 16)

    def peak(x):
        lum = x.mean(0)
        i = int(lum.argmax())
        return i % 32, i // 32

    assert peak(img) == (16, 16)
    h, t = np.array([[16.0, 16.0]]), np.array([[20.0, 13.0]])
    assert peak(oracle_warp(img, h, t, None)) == (20, 13)
    local = oracle_warp(img, h, t, 3.0)
    assert peak(local) == (20, 13)
    assert torch.allclose(local[:, :, :4], img[:, :, :4], atol=1e-3)  # far pixels stay put
    assert torch.equal(oracle_warp(img, h, h, 3.0), img)  # no displacement, no change


def test_drag_eval_oracle_rows(faces):
    edits = drag_eval(faces, n_pairs=2, settings=(1,), methods=("draggan",), drag_kwargs={"draggan": {"max_steps": 1}})
    assert edits["method"].tolist() == ["draggan", "oracle-local", "oracle-shift"] * 2
    shift = edits[edits["method"] == "oracle-shift"]
    assert (shift["steps"] == 0).all() and shift["converged"].isna().all()
    assert (shift["md_after"] < shift["md_before"]).all()  # a whole-image move is seen by re-detection
    none = drag_eval(faces, n_pairs=1, settings=(1,), methods=(), oracles=False)
    assert none.empty
