import numpy as np
import pandas as pd
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
    assert md.splitlines()[0].endswith(
        "| handle left (px) | change outside (0-255) | status ok | flagged degraded | max drift | ok but degraded |"
    )
    for (m, k), g in drags.groupby(["method", "points"]):
        got = summary.loc[(summary["method"] == m) & (summary["points"] == k), "handle_px"].item()
        assert got == pytest.approx(g["handle_px"].mean())
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


def test_summary_counts_ok_but_degraded_per_setting():
    rows = [  # method, points, pair, md_before, md_after, seconds, steps, converged, outside, status, handle, drift, bad
        ("draggan", 5, 0, 3.0, 2.0, 1.0, 10, True, 2.0, "ok", 0.5, 0.1, False),
        ("draggan", 5, 1, 4.0, 5.0, 3.0, 30, False, 25.0, "ok", 2.5, 0.1, True),  # ok on a blob: counted
        ("draggan", 5, 2, 5.0, 4.0, 2.0, 20, False, 3.0, "ok", 1.0, 0.7, True),  # ok, a face measure drifted
        ("draggan", 5, 3, 2.0, 2.0, 2.0, 20, False, 30.0, "degraded", 4.0, 0.3, True),  # flagged, not ok
        ("oracle-local", 5, 0, 3.0, 1.0, 0.0, 0, np.nan, 0.5, "warp", 0.0, np.nan, np.nan),
    ]
    summary = summarize(pd.DataFrame(rows, columns=EDIT_COLUMNS))
    none, drag, warp = (summary.iloc[i].to_dict() for i in range(3))
    assert summary["method"].tolist() == ["no edit", "draggan", "oracle-local"]
    assert (none["pairs"], none["md"], none["md_median"], none["handle_px"]) == (4, 3.5, 3.5, 3.5)
    assert (drag["pairs"], drag["md"], drag["handle_px"], drag["outside_change"]) == (4, 3.25, 2.0, 15.0)
    assert (drag["ok"], drag["flagged"], drag["false_ok"]) == (0.75, 0.75, 2)
    assert drag["drift"] == pytest.approx(0.3)
    assert np.isnan(warp["ok"]) and np.isnan(warp["false_ok"]) and warp["handle_px"] == 0.0
    lines = to_markdown(summary).splitlines()
    assert lines[3] == "| draggan | 5 | 4 | 3.25 | 3.00 | 2.00 | 20.0 | 0.25 | 2.00 | 15.00 | 0.75 | 0.75 | 0.30 | 2 |"
    assert lines[4] == "| oracle-local | 5 | 1 | 1.00 | 1.00 | 0.00 | 0.0 | – | 0.00 | 0.50 | – | – | – | – |"


def test_cli_writes_rows_as_they_come_and_tabulates_a_csv(tmp_path):
    from typer.testing import CliRunner

    from probe.cli import app

    out = tmp_path / "run"
    args = ["drag-eval", "--model", "faces", "--pairs", "2", "--seed", "1", "--points", "5", "--steps", "1"]
    r = CliRunner().invoke(app, [*args, "--no-oracles", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["drag_eval.csv", "drag_eval.md"]  # the part file is gone
    table = (out / "drag_eval.md").read_text()
    r = CliRunner().invoke(app, ["drag-eval", "--summarize", str(out / "drag_eval.csv")])
    assert r.exit_code == 0 and r.output == table
    rows = (out / "drag_eval.csv").read_text().splitlines()
    part = tmp_path / "drag_eval.part.csv"  # a run stopped after pair 0: its rows as written so far
    part.write_text("\n".join(rows[:3]) + "\n")
    r = CliRunner().invoke(app, ["drag-eval", "--summarize", str(part)])
    assert r.exit_code == 0 and r.output == to_markdown(summarize(pd.read_csv(out / "drag_eval.csv").iloc[:2])) + "\n"
    assert r.output.splitlines()[2].startswith("| no edit | 5 | 1 | ")
    r = CliRunner().invoke(app, ["drag-eval", "--summarize", str(tmp_path / "none.csv")])
    assert r.exit_code == 1 and str(r.exception) == f"--summarize: no file {tmp_path / 'none.csv'}"
    part.write_text(rows[0] + "\n")
    r = CliRunner().invoke(app, ["drag-eval", "--summarize", str(part)])
    assert str(r.exception) == f"--summarize: {part} holds no edit rows yet; wait for the run's first pair"
    (tmp_path / "other.csv").write_text("method,points\ndraggan,5\n")
    r = CliRunner().invoke(app, ["drag-eval", "--summarize", str(tmp_path / "other.csv")])
    assert r.exit_code == 1 and str(r.exception) == (
        f"--summarize: {tmp_path / 'other.csv'} lacks columns pair, md_before, md_after, seconds, steps, converged, "
        "outside_change, status, handle_px, max_drift, degraded; give a drag_eval.csv written by probe drag-eval"
    )
