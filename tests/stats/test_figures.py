"""probe.figures: traces, axis titles and data values of every builder, image helpers round-trip."""

import base64
import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from probe import figures as F
from probe.errors import ProbeError

ALPHAS = [-2.0, -1.0, 0.0, 1.0, 2.0]


@pytest.fixture(scope="module")
def walks():
    rng = np.random.default_rng(0)
    rows = [
        dict(
            sample_id=s,
            method="variable",
            target=f"z[{t}]",
            alpha=a,
            d_gender=t * a + rng.normal(0, 0.1),
            d_age=-a,
            dlogp=-a * a / 2,
        )
        for t in range(3)
        for s in range(6)
        for a in ALPHAS
    ]
    return pd.DataFrame(rows)


def test_img_helpers_round_trip():
    img = torch.linspace(-1, 1, 3 * 4 * 5).reshape(3, 4, 5)
    png = F.img_to_png_bytes(img)
    a = np.asarray(Image.open(io.BytesIO(png)))
    assert a.shape == (4, 5, 3) and a.dtype == np.uint8
    assert a[0, 0, 0] == 0 and a[-1, -1, 2] == 255
    u8 = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(F.img_to_png_bytes(u8)))), u8)
    uri = F.img_to_data_uri(u8, size=16)
    assert uri.startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size == (16, 16)
    with pytest.raises(ProbeError, match=r"\[N, 3, H, W\]"):
        F.img_to_png_bytes(np.zeros((2, 2), np.float32))


def test_sample_grid_cells_and_ids():
    imgs = torch.rand(10, 3, 16, 16) * 2 - 1
    fig = F.sample_grid(imgs, labels=[f"s{i}" for i in range(10)], sample_ids=range(100, 110), cols=4)
    assert fig.data[0].type == "image" and fig.data[0].source.startswith("data:image/png")
    cells = fig.data[1]
    assert list(cells.customdata) == list(range(100, 110)) and list(cells.text)[3] == "s3"
    assert fig.layout.meta["cols"] == 4 and fig.layout.meta["sample_ids"][0] == 100
    # cell centres: 4 per row, 3 rows
    assert len(set(np.round(cells.x, 3))) == 4 and len(set(np.round(cells.y, 3))) == 3
    with pytest.raises(ProbeError, match="labels"):
        F.sample_grid(imgs, labels=["a"])


def test_image_strip_rows_by_alpha():
    imgs = torch.rand(2, 5, 3, 8, 8) * 2 - 1
    fig = F.image_strip(imgs, ALPHAS, sample_ids=[7, 9])
    assert list(fig.data[1].customdata) == [7] * 5 + [9] * 5
    texts = [a.text for a in fig.layout.annotations]
    assert "alpha=-2" in texts and "alpha=2" in texts and "7" in texts
    with pytest.raises(ProbeError, match="one alpha per column"):
        F.image_strip(imgs, [0.0, 1.0])


def test_correlation_heatmap_greys_non_significant():
    df = pd.DataFrame(
        {
            "variable": ["z[10]", "z[2]", "z[10]", "z[2]"],
            "measure": ["gender", "gender", "age", "age"],
            "r": [0.5, -0.2, 0.1, 0.9],
            "p": [1e-4, 0.3, 0.5, 1e-9],
            "q": [1e-3, 0.4, 0.5, 1e-8],
        }
    )
    fig = F.correlation_heatmap(df, q_max=0.05)
    grey, sig = fig.data
    assert list(sig.y) == ["z[2]", "z[10]"] and list(sig.x) == ["gender", "age"]  # natural order of variables
    z = np.array(sig.z, dtype=float)
    assert z[1, 0] == 0.5 and z[0, 1] == 0.9 and np.isnan(z[0, 0]) and np.isnan(z[1, 1])
    g = np.array(grey.z, dtype=float)
    assert g[0, 0] == 0 and np.isnan(g[1, 0])
    assert np.array(sig.customdata)[1, 0].tolist() == [0.5, 1e-4, 1e-3]  # r, p, q in hover
    assert "q=" in sig.hovertemplate and fig.layout.xaxis.title.text == "measure"
    eff = df.rename(columns={"variable": "target", "r": "slope"})
    assert F.correlation_heatmap(eff, value="slope").layout.yaxis.title.text == "target"


def test_effects_forest_ci_and_significance():
    eff = pd.DataFrame(
        {
            "method": "variable",
            "target": ["z[0]", "z[1]", "z[2]"],
            "measure": "gender",
            "slope": [0.1, 1.0, -0.5],
            "slope_lo": [-0.1, 0.8, -0.7],
            "slope_hi": [0.3, 1.2, -0.3],
            "r2": 0.5,
            "p": [0.4, 1e-5, 1e-3],
            "q": [0.4, 3e-5, 1.5e-3],
            "n": 30,
        }
    )
    fig = F.effects_forest(eff, "gender")
    tr = fig.data[0]
    assert list(tr.y) == ["z[2]", "z[0]", "z[1]"] and list(tr.x) == [-0.5, 0.1, 1.0]
    assert np.allclose(tr.error_x.array, [0.2, 0.2, 0.2]) and np.allclose(tr.error_x.arrayminus, [0.2, 0.2, 0.2])
    assert list(tr.marker.symbol) == ["circle", "circle-open", "circle"]
    assert "slope" in fig.layout.xaxis.title.text
    assert list(F.effects_forest(eff, "gender", top=2).data[0].y) == ["z[2]", "z[1]"]
    with pytest.raises(ProbeError, match="use one of"):
        F.effects_forest(eff, "age")


def test_measure_curves_mean_and_band(walks):
    fig = F.measure_curves(walks, "gender")
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["z[0]", "z[1]", "z[2]"]
    z2 = lines[2]
    assert list(z2.x) == ALPHAS
    assert np.allclose(z2.y, [2 * a for a in ALPHAS], atol=0.15)  # slope 2 planted for z[2]
    band = [t for t in fig.data if t.fill == "toself"][2]
    lo_hi = np.array(band.y)
    assert (lo_hi[:5] >= np.array(z2.y)).all() and (lo_hi[5:][::-1] <= np.array(z2.y)).all()
    assert fig.layout.xaxis.title.text == "alpha" and fig.layout.yaxis.title.text == "d_gender"
    by_m = F.measure_curves(walks[walks.target == "z[1]"], ["gender", "age"], by="measure")
    assert [t.name for t in by_m.data if t.mode == "lines+markers"] == ["d_gender", "d_age"]
    with pytest.raises(ProbeError, match="lacks column"):
        F.measure_curves(walks, "smile")


def test_density_curve(walks):
    fig = F.density_curve(walks, "dlogp")
    line = [t for t in fig.data if t.mode == "lines+markers"][0]
    assert np.allclose(line.y, [-a * a / 2 for a in ALPHAS])
    assert fig.layout.yaxis.title.text == "dlogp"


def test_embedding_scatter_walks_and_colour():
    emb = pd.DataFrame(
        {
            "point_id": range(7),
            "kind": ["sample"] * 3 + ["walk"] * 4,
            "sample_id": [0, 1, 2, 0, 0, 1, 1],
            "target": ["", "", "", "z[0]", "z[0]", "z[0]", "z[0]"],
            "alpha": [0, 0, 0, 1, -1, -1, 1.0],
            "x": np.arange(7.0),
            "y": np.arange(7.0) * 2,
        }
    )
    samples = pd.DataFrame({"sample_id": [0, 1, 2], "gender": [0.1, 0.5, 0.9]})
    fig = F.embedding_scatter(emb, color="gender", samples=samples)
    walk, pts = fig.data
    assert list(pts.marker.color) == [0.1, 0.5, 0.9]
    assert np.array(pts.customdata)[:, 0].tolist() == [0, 1, 2]
    assert list(walk.x) == [4.0, 3.0, None, 5.0, 6.0, None]  # each sample's walk sorted by alpha
    assert fig.layout.xaxis.title.text == "UMAP x"
    assert len(F.embedding_scatter(emb, walks=False).data) == 1
    with pytest.raises(ProbeError, match="colour column"):
        F.embedding_scatter(emb, color="age", samples=samples)


def test_method_comparison():
    ev = pd.DataFrame(
        {
            "method": ["interfacegan", "interfacegan", "ganspace"],
            "target": ["a", "b", "c"],
            "measure": "gender",
            "slope": [1.0, 0.5, 0.2],
            "specificity": [0.9, 0.7, 0.3],
            "dlogp_abs_mean": [0.1, 0.2, 3.0],
            "dlogp_abs_max": [0.5, 0.4, 6.0],
        }
    )
    fig = F.method_comparison(ev)
    assert [t.name for t in fig.data] == ["InterFaceGAN", "GANSpace"]  # the direction registry's order and labels
    assert list(fig.data[0].x) == [0.9, 0.7] and np.allclose(fig.data[1].error_y.array, [3.0])
    assert fig.layout.xaxis.title.text == "specificity" and "dlogp" in fig.layout.yaxis.title.text
    with pytest.raises(ProbeError, match="lacks column"):
        F.method_comparison(ev.drop(columns="specificity"))


def test_groundtruth_heatmap_rows_in_method_order_and_top_starred():
    from probe.directions import GroundTruthScore

    rows = []
    for m, t, eff in [
        ("random", "random/r0", {"x": 0.1, "hue": 0.3}),
        ("interfacegan", "interfacegan/x", {"x": 0.9, "hue": 0.1}),
    ]:
        for f, v in eff.items():
            rows.append(
                {"method": m, "target": t, "measure": f, "kind": "slope", "effect": v, "spread": 1.0, "importance": v}
            )
    gt = GroundTruthScore.from_table(pd.DataFrame(rows)).importance_
    fig = F.groundtruth_heatmap(gt)
    h = fig.data[0]
    assert list(h.y) == ["interfacegan/x", "random/r0"] and list(h.x) == ["x", "hue"]  # InterFaceGAN first
    assert np.allclose(np.asarray(h.z, float), [[0.9, 0.1], [0.25, 0.75]])
    assert h.text[0][0] == "0.90*" and h.text[0][1] == "0.10" and h.text[1][1] == "0.75*"
    assert np.allclose(
        np.asarray(h.customdata, float)[0, 0], [0.9, 0.9, 1.0]
    )  # importance, purity, col share (per method)
    with pytest.raises(ProbeError, match=r"groundtruth_heatmap: table lacks column\(s\) \['row_share'"):
        F.groundtruth_heatmap(gt.drop(columns="row_share"))
