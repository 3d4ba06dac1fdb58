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
    assert list(edits.columns) == EDIT_COLUMNS and len(edits) == 4
    assert (edits["md_before"] > 0).all() and (edits["steps"] <= 4).all() and (edits["seconds"] > 0).all()
    summary = summarize(edits)
    assert summary["method"].tolist() == ["no edit", "draggan", "freedrag"] * 2
    assert summary.loc[summary["method"] == "no edit", "md"].tolist() == \
        edits.groupby("points")["md_before"].first().tolist()
    md = to_markdown(summary)
    assert md.splitlines()[0].startswith("| method | points | pairs | MD (px)") and md.count("\n") == 7


def test_drag_eval_bad_settings(faces):
    with pytest.raises(DragError, match="settings must be 1 and/or 5"):
        drag_eval(faces, n_pairs=1, settings=(3,))
