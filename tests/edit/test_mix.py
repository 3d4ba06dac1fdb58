"""Style mixing: exact layer swaps, the mixing grid, `probe mix`, and one-line errors."""

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from probe.cli import app
from probe.edit import MixError, grid_png, mixing_grid, style_mix
from probe.edit.mix import parse_layers, seeds_to_ws
from probe.errors import ProbeError

runner = CliRunner()


@pytest.fixture(scope="module")
def ws_ab(tiny_stylegan):
    g = tiny_stylegan
    return (g.to_space(g.sample(3, 0), "z", "ws"), g.to_space(g.sample(3, 1), "z", "ws"))


def test_style_mix_round_trip(tiny_stylegan, ws_ab):
    a, b = ws_ab
    L = tiny_stylegan.num_ws
    assert torch.equal(style_mix(tiny_stylegan, a, b, (0, L)), b)
    assert torch.equal(style_mix(tiny_stylegan, a, b, (0, 0)), a)
    assert torch.equal(style_mix(tiny_stylegan, a, b, (5, 5)), a)
    m = style_mix(tiny_stylegan, a, b, (2, 5))
    assert m.shape == a.shape
    assert torch.equal(m[:, 2:5], b[:, 2:5])
    assert torch.equal(m[:, :2], a[:, :2]) and torch.equal(m[:, 5:], a[:, 5:])
    assert not torch.equal(a[:, 2:5], b[:, 2:5])  # the two samples differ, so the test can fail
    one = style_mix(tiny_stylegan, a, b[:1], (0, 3))  # a batch of one broadcasts
    assert torch.equal(one[:, :3], b[:1, :3].expand(3, -1, -1)) and torch.equal(one[:, 3:], a[:, 3:])
    assert torch.equal(a, ws_ab[0])  # inputs untouched


def test_style_mix_errors(tiny_stylegan, tiny_dcgan, ws_ab):
    a, b = ws_ab
    L = tiny_stylegan.num_ws
    with pytest.raises(MixError, match=rf"^layers: \(0, {L + 1}\) out of range for num_ws={L}; use 0 <= start"):
        style_mix(tiny_stylegan, a, b, (0, L + 1))
    with pytest.raises(MixError, match=r"^layers: \(4, 2\) out of range"):
        style_mix(tiny_stylegan, a, b, (4, 2))
    with pytest.raises(MixError, match=r"^layers: expected \(start, end\)"):
        style_mix(tiny_stylegan, a, b, 3)
    with pytest.raises(MixError, match=r"^ws_b: expected ws \[N, 12, 16\]"):
        style_mix(tiny_stylegan, a, b[:, :4], (0, 2))
    with pytest.raises(MixError, match=r"^ws_b: batch 2 does not match ws_a batch 3"):
        style_mix(tiny_stylegan, a, b[:2], (0, 2))
    with pytest.raises(MixError, match="^ws_a: contains NaN"):
        style_mix(tiny_stylegan, a * float("nan"), b, (0, 2))
    with pytest.raises(
        ProbeError,
        match=r"^model 'tiny-dcgan' has no ws space; style mixing needs a style-based "
        r"model such as 'sprites'$",
    ):
        style_mix(tiny_dcgan, a, b, (0, 2))
    with pytest.raises(MixError, match=r"^--layers: write START-END"):
        parse_layers("0:6")
    assert parse_layers("3-9") == (3, 9)


def test_mixing_grid_layout(tiny_stylegan, tmp_path):
    g = tiny_stylegan
    A, B = [1, 2], [3, 4, 5]
    full = mixing_grid(g, A, B, (0, g.num_ws))  # every layer from B: each cell is its column's B
    none = mixing_grid(g, A, B, (0, 0))  # no layer from B: each cell is its row's A
    assert full.shape == (3, 4, 3, g.resolution, g.resolution)
    assert torch.equal(full[0, 0], torch.ones(3, g.resolution, g.resolution))
    src_b = g.synthesize(seeds_to_ws(g, B), "ws")
    src_a = g.synthesize(seeds_to_ws(g, A), "ws")
    assert torch.allclose(full[0, 1:], src_b, atol=1e-6) and torch.allclose(none[1:, 0], src_a, atol=1e-6)
    for r in range(2):
        for c in range(3):
            assert torch.allclose(full[r + 1, c + 1], src_b[c], atol=1e-5)
            assert torch.allclose(none[r + 1, c + 1], src_a[r], atol=1e-5)
    mid = mixing_grid(g, A, B, (0, 6))
    assert not torch.allclose(mid[1, 1], src_a[0], atol=1e-4) and not torch.allclose(mid[1, 1], src_b[0], atol=1e-4)
    p = grid_png(mid, tmp_path / "g.png", cell=20, pad=2)
    assert Image.open(p).size == (4 * 20 + 3 * 2, 3 * 20 + 2 * 2)


def test_mix_cli(tmp_path):
    out = tmp_path / "mix.png"
    r = runner.invoke(
        app,
        [
            "mix",
            "--model",
            "tiny-stylegan",
            "--a",
            "1,2",
            "--b",
            "3",
            "--layers",
            "0-6",
            "--cell",
            "16",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (2 * 16 + 4, 3 * 16 + 2 * 4)
    assert "mixed ws layers 0..5 of 12" in r.output
    r = runner.invoke(app, ["mix", "--model", "tiny-dcgan", "--out", str(tmp_path / "x.png")])
    assert isinstance(r.exception, ProbeError) and "has no ws space" in str(r.exception)
    r = runner.invoke(app, ["mix", "--model", "tiny-stylegan", "--a", "1,x", "--out", str(tmp_path / "x.png")])
    assert isinstance(r.exception, ProbeError) and str(r.exception).startswith("--a: write comma-separated")
    r = runner.invoke(app, ["mix", "--model", "tiny-stylegan", "--layers", "0-13", "--out", str(tmp_path / "x.png")])
    assert isinstance(r.exception, ProbeError) and "out of range for num_ws=12" in str(r.exception)
    assert not (tmp_path / "x.png").exists()


def test_mix_transfer_counts_what_each_range_carries(tiny_stylegan, tmp_path):
    from probe.edit.mix import default_ranges, mix_transfer, transfer_markdown

    g = tiny_stylegan
    assert default_ranges(12) == [(0, 3), (3, 6), (6, 9), (9, 12)] and default_ranges(7, 3)[-1] == (6, 7)
    df = mix_transfer(g, ["brightness", "centroid_x"], ranges=[(0, 0), (0, g.num_ws)], n=16)
    t = df.set_index(["layers", "measure"])["transfer"]
    assert t[("0-0", "brightness")] == pytest.approx(0.0) and t[("0-12", "brightness")] == pytest.approx(1.0)
    assert (df["pairs"] > 0).all()
    md = transfer_markdown(df)
    assert md.splitlines()[0] == "| ws layers from B | brightness | centroid_x |" and len(md.splitlines()) == 4
    with pytest.raises(MixError, match="^layers: "):
        mix_transfer(g, ["brightness"], ranges=[(0, 99)], n=4)
    r = runner.invoke(
        app,
        [
            "mix",
            "--model",
            "tiny-stylegan",
            "--transfer",
            "--measures",
            "brightness",
            "--n",
            "8",
            "--out",
            str(tmp_path / "m.png"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "m_transfer.md").read_text().startswith("| ws layers from B | brightness |")


def test_mix_on_sprites():
    """The shipped sprites model (skipped until its weights exist): num_ws rows, late layers keep the layout."""
    from probe.models import load_model

    try:
        g = load_model("sprites")
    except ProbeError as e:
        pytest.skip(f"zoo model 'sprites' not available: {e}")
    grid = mixing_grid(g, [1], [2], (0, g.num_ws))
    assert grid.shape == (2, 2, 3, 64, 64)
    assert torch.allclose(grid[1, 1], grid[0, 1], atol=1e-5)


def _sg2():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
    from test_adapter import sg2_net

    from probe.models import StyleGANGenerator

    return StyleGANGenerator(sg2_net(), name="sg2")


def test_transfer_ranges_and_measures_come_from_the_model(tiny_stylegan):
    from probe.edit.mix import block_ranges, mix_transfer

    sg2 = _sg2()
    assert block_ranges(tiny_stylegan) == [(0, 3), (3, 6), (6, 9), (9, 12)]
    assert block_ranges(sg2) == [(0, 1), (1, 3), (3, 5), (5, 8)]  # 2 ws rows per NVlabs block, last block 3
    image = ["brightness", "contrast", "saturation", "hue", "centroid_x", "centroid_y"]
    for g, layers in ((tiny_stylegan, ["0-3", "3-6", "6-9", "9-12"]), (sg2, ["0-1", "1-3", "3-5", "5-8"])):
        df = mix_transfer(g, n=8)
        assert list(dict.fromkeys(df["layers"])) == layers and list(dict.fromkeys(df["measure"])) == image
        assert len(df) == len(layers) * len(image)
    df = mix_transfer(sg2, ["brightness"], ranges=[(0, 0), (0, sg2.num_ws)], n=8)
    assert df["transfer"].tolist() == pytest.approx([0.0, 1.0])


def test_mix_cli_transfer_defaults_to_the_model_measures(tmp_path):
    out = tmp_path / "m.png"
    r = runner.invoke(
        app, ["mix", "--model", "tiny-stylegan", "--transfer", "--n", "4", "--a", "1", "--b", "2", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    md = (tmp_path / "m_transfer.md").read_text().splitlines()
    assert md[0] == "| ws layers from B | brightness | contrast | saturation | hue | centroid_x | centroid_y |"
    assert [ln.split(" |")[0] for ln in md[2:]] == ["| 0-3", "| 3-6", "| 6-9", "| 9-12"]
    r = runner.invoke(app, ["mix", "--model", "tiny-stylegan", "--class", "2", "--out", str(tmp_path / "x.png")])
    assert isinstance(r.exception, ProbeError)
    assert str(r.exception) == "model 'tiny-stylegan' is not conditional (c_dim=0); remove class_idx / --class"
