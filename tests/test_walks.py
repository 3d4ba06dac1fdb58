"""probe.walks: every walk kind moves latents as documented (pure, no model)."""

import numpy as np
import pytest
import torch

from probe.density import GaussianDensity, logp_normal
from probe.directions.base import DirectionSet
from probe.walks import Target, WalkError, apply, apply_rows, channel, channel_fn, direction, parse_name, variable


def _unit(d, seed=0):
    v = np.random.default_rng(seed).standard_normal(d).astype(np.float32)
    return v / np.linalg.norm(v)


def test_linear_shape_order_and_values():
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    d = _unit(8)
    t = Target("direction", "m/a", "linear", vector=d, scale=0.5)
    out = apply(z, "z", t, [-1.0, 0.0, 2.0])
    assert out.shape == (9, 8)
    # sample-major: row n * A + a
    torch.testing.assert_close(out[1], z[0])
    torch.testing.assert_close(out[5], z[1] + 2.0 * 0.5 * torch.from_numpy(d))
    # distance moved grows linearly with |alpha|
    moved = (out.reshape(3, 3, 8) - z[:, None]).norm(dim=2)
    torch.testing.assert_close(moved[:, 2], 2 * moved[:, 0])


def test_isodensity_z_keeps_norm_and_logp():
    z = torch.randn(16, 32, generator=torch.Generator().manual_seed(1))
    t = Target("direction", "m/a", "isodensity", vector=_unit(32))
    alphas = [-3.0, -1.0, 0.0, 1.0, 3.0]
    out = apply(z, "z", t, alphas)
    base = z.repeat_interleave(5, 0)
    torch.testing.assert_close(out.norm(dim=1), base.norm(dim=1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logp_normal(out), logp_normal(base), rtol=1e-6, atol=1e-4)
    # it still moves along the direction: projection on d grows with alpha
    proj = (out @ torch.from_numpy(t.vector)).reshape(16, 5)
    assert (proj.diff(dim=1) > 0).all()
    # a linear walk changes the norm
    lin = apply(z, "z", Target("direction", "m/a", "linear", vector=t.vector), alphas)
    assert (lin.norm(dim=1) - base.norm(dim=1)).abs().max() > 0.1


def test_isodensity_w_keeps_mahalanobis():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(500, 6, generator=g) @ torch.randn(6, 6, generator=g) + 3
    dens = GaussianDensity().fit(w)
    t = Target("direction", "m/a", "isodensity", vector=_unit(6))
    out = apply(w[:10], "w", t, [-2.0, 2.0], density=dens)
    base = w[:10].repeat_interleave(2, 0)
    torch.testing.assert_close(dens.logp(out), dens.logp(base), rtol=1e-5, atol=1e-3)
    # ws: per layer
    ws = w[:4, None].repeat(1, 3, 1)
    out = apply(ws, "ws", t, [1.5], density=dens)
    assert out.shape == (4, 3, 6)
    torch.testing.assert_close(dens.logp(out), dens.logp(ws), rtol=1e-5, atol=1e-3)
    with pytest.raises(WalkError, match="needs the study's fitted GaussianDensity"):
        apply(w[:2], "w", t, [1.0])


def test_layers_only_touch_range():
    ws = torch.zeros(2, 6, 4)
    t = Target("direction", "sefa/0", "layers", vector=np.ones(4), layers=(2, 4))
    out = apply(ws, "ws", t, [1.0]).reshape(2, 6, 4)
    assert (out[:, 2:4] == 1).all() and (out[:, :2] == 0).all() and (out[:, 4:] == 0).all()
    with pytest.raises(WalkError, match="out of range for num_ws=6"):
        apply(ws, "ws", Target("direction", "a/b", "layers", vector=np.ones(4), layers=(4, 9)), [1.0])
    with pytest.raises(WalkError, match="needs space 'ws'"):
        apply(torch.zeros(1, 4), "w", t, [1.0])


def test_linear_w_direction_broadcasts_over_ws_layers():
    ws = torch.zeros(1, 3, 4)
    out = apply(ws, "ws", Target("direction", "a/b", "linear", vector=np.arange(4.0)), [2.0])
    torch.testing.assert_close(out[0], 2 * torch.arange(4.0).expand(3, 4))
    with pytest.raises(WalkError, match="dimension 5, but the latent has shape \\[3, 4\\]"):
        apply(ws, "ws", Target("direction", "a/b", "linear", vector=np.ones(5)), [1.0])


def test_variable_shift_and_set():
    z = torch.arange(8.0).reshape(2, 4)
    out = apply(z, "z", variable(1, scale=2.0), [-1.0, 3.0])
    assert out[:, 1].tolist() == [1 - 2.0, 1 + 6.0, 5 - 2.0, 5 + 6.0]
    assert (out[:, [0, 2, 3]] == z.repeat_interleave(2, 0)[:, [0, 2, 3]]).all()
    out = apply(z, "z", variable(3, mode="set"), [-1.0, 3.0])
    assert out[:, 3].tolist() == [-1.0, 3.0, -1.0, 3.0]
    with pytest.raises(WalkError, match="index 4 out of range; use 0..3"):
        apply(z, "z", variable(4), [1.0])


def test_channel_fn_scale_and_shift():
    x = torch.ones(2, 4, 2, 2)
    t = channel("b2", [1, 3])
    assert t.name == "b2:c1+c3" and channel("b2", 41).name == "b2:c41"
    y = channel_fn(t, torch.tensor([0.0, 1.0]))(x)
    assert (y[0] == 1).all()  # alpha 0: unchanged
    assert (y[1, [1, 3]] == 2).all() and (y[1, [0, 2]] == 1).all()
    y = channel_fn(channel("b2", [0], mode="shift", scale=0.5), torch.tensor([2.0, -2.0]))(x)
    assert y[0, 0].unique().item() == 2.0 and y[1, 0].unique().item() == 0.0 and (y[:, 1:] == 1).all()
    assert (x == 1).all()  # input untouched
    with pytest.raises(WalkError, match="channel 7 out of range for site 'b2' with 4 channels"):
        channel_fn(channel("b2", [7]), torch.zeros(2))(x)
    # latent walks leave the latent alone for channel targets
    z = torch.randn(2, 4)
    torch.testing.assert_close(apply(z, "z", t, [1.0, 2.0]), z.repeat_interleave(2, 0))


def test_direction_target_from_set_and_roundtrip():
    ds = DirectionSet(["a", "b"], np.eye(2, 4), "ws", "sefa", layers=[(0, 2), None], scales=[2.0, 1.0])
    t = direction(ds, 0)
    assert (t.name, t.walk, t.layers, t.scale, t.method, t.kind) == (
        "sefa/a",
        "layers",
        (0, 2),
        2.0,
        "sefa",
        "direction",
    )
    assert direction(ds, 1).walk == "linear"
    back = Target.from_dict(t.to_dict(), t.vector)
    assert back == t and back != direction(ds, 1) and back != Target.from_dict(t.to_dict(), None)


def test_parse_name_and_bad_targets():
    assert parse_name("z[17]") == {"kind": "variable", "space": "z", "index": 17}
    assert parse_name("b2:c4+c9") == {"kind": "channel", "site": "b2", "channels": [4, 9]}
    assert parse_name("interfacegan/gender") == {"kind": "direction", "method": "interfacegan", "name": "gender"}
    with pytest.raises(WalkError, match="not a table target string"):
        parse_name("gender")
    with pytest.raises(WalkError, match="walk 'zigzag' unknown"):
        Target("direction", "a/b", "zigzag")
    with pytest.raises(WalkError, match="needs a direction vector"):
        apply(torch.zeros(1, 3), "z", Target("direction", "a/b", "linear"), [1.0])
    with pytest.raises(WalkError, match="2 latent rows but 3 alphas"):
        apply_rows(torch.zeros(2, 3), "z", variable(0), torch.zeros(3))


def test_direction_names_come_from_the_set_file_stem():
    ds = DirectionSet(["sefa0", "sefa1"], np.eye(2, 8, dtype=np.float32), "z", "sefa")
    assert direction(ds, 1).name == "sefa/sefa1" and direction(ds, 1).source == "sefa"
    t = direction(ds, 0, source="sefa_late")
    assert (t.name, t.method, t.source) == ("sefa_late/sefa0", "sefa", "sefa_late")
    assert parse_name(t.name) == {"kind": "direction", "method": "sefa_late", "name": "sefa0"}


def test_two_sets_of_one_method_walk_in_one_study(tmp_path):
    from probe.directions.sefa import SeFa
    from probe.models import load_model
    from probe.study import parse_spec, run_study

    g = load_model("tiny-stylegan")
    official = SeFa(2).fit(g).directions_
    every = SeFa(2, affines="all-affines").fit(g).directions_
    official.save(tmp_path / "sefa.npz")
    every.save(tmp_path / "sefa_all.npz")
    spec = parse_spec(
        {
            "name": "two",
            "model": "tiny-stylegan",
            "measures": ["image"],
            "n_samples": 3,
            "seed": 0,
            "space": "w",
            "alphas": [-1.0, 1.0],
            "targets": [{"kind": "directions", "file": "sefa.npz"}, {"kind": "directions", "file": "sefa_all.npz"}],
        },
        base=tmp_path,
    )
    st = run_study(spec, tmp_path / "study", progress=False)
    assert st.target_names == ["sefa/sefa0", "sefa/sefa1", "sefa_all/sefa0", "sefa_all/sefa1"]
    iv = st.table("interventions")
    assert set(iv["method"]) == {"sefa"} and len(iv) == 3 * 4 * 2
    from probe.restudy import study_target

    assert np.array_equal(study_target(st, "sefa_all/sefa1").vector, every.vectors[1])
    assert np.array_equal(study_target(st, "sefa/sefa1").vector, official.vectors[1])
    assert sorted(st.directions()) == ["sefa", "sefa_all"]


# ---- distance: InterFaceGAN's absolute placement from the hyperplane n.x + offset = 0 ----------------------
def test_distance_places_each_latent_at_signed_distance_alpha():
    from probe.walks import signed_distance

    z = 3 * torch.randn(5, 16, generator=torch.Generator().manual_seed(2))
    v = 2.5 * _unit(16, 3)  # not unit: the walk uses the unit normal
    n = torch.from_numpy(v / np.linalg.norm(v)).double()
    alphas = [-3.0, -0.5, 0.0, 2.0]
    for offset, scale in ((0.0, 1.0), (0.7, 1.0), (-1.3, 2.0)):
        t = Target("direction", "interfacegan/a", "distance", vector=v, offset=offset, scale=scale)
        out = apply(z, "z", t, alphas)
        got = signed_distance(out, t).reshape(5, 4)
        want = torch.tensor(alphas, dtype=torch.float64)[None].expand(5, 4) * scale
        assert torch.allclose(got, want, atol=1e-6, rtol=0)
        assert torch.allclose(out.double() @ n + offset, want.reshape(-1), atol=1e-6, rtol=0)
        # only the component along n changes: the projection onto the hyperplane is the sample's own
        base = z.double().repeat_interleave(4, 0)
        perp = lambda x: x - (x @ n)[:, None] * n  # noqa: E731
        assert torch.allclose(perp(out.double()), perp(base), atol=1e-5, rtol=0)
    assert not t.identity_at_zero and Target("direction", "a/b", "linear", vector=v).identity_at_zero
    # alpha = 0 puts the latent ON the hyperplane (unlike every other direction walk)
    zero = apply(z, "z", Target("direction", "m/a", "distance", vector=v, offset=0.4), [0.0])
    assert torch.allclose(zero.double() @ n + 0.4, torch.zeros(5, dtype=torch.float64), atol=1e-6, rtol=0)
    assert not torch.allclose(zero, z)


def test_distance_in_ws_places_every_layer_of_the_range():
    from probe.walks import signed_distance

    ws = torch.randn(4, 6, 8, generator=torch.Generator().manual_seed(4))
    v = _unit(8, 5)
    t = Target("direction", "interfacegan/a@2", "distance", vector=v, layers=(2, 4), offset=0.25)
    out = apply_rows(ws, "ws", t, torch.tensor([1.0, -2.0, 0.0, 3.0]))
    d = signed_distance(out, t)  # [4, 2]: layers 2 and 3
    assert d.shape == (4, 2)
    assert torch.allclose(
        d, torch.tensor([1.0, -2.0, 0.0, 3.0], dtype=torch.float64)[:, None].expand(4, 2), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(out[:, [0, 1, 4, 5]], ws[:, [0, 1, 4, 5]])  # layers outside the range untouched
    every = Target("direction", "interfacegan/a", "distance", vector=v)
    assert signed_distance(apply_rows(ws, "ws", every, torch.full((4,), 1.5)), every).sub(1.5).abs().max() < 1e-6
    flat = Target("direction", "interfacegan/f", "distance", vector=_unit(48, 6), offset=-0.5)  # [num_ws * w_dim]
    got = signed_distance(apply_rows(ws, "ws", flat, torch.tensor([0.5, 1.0, -1.0, 2.0])), flat)
    assert torch.allclose(got, torch.tensor([0.5, 1.0, -1.0, 2.0], dtype=torch.float64), atol=1e-6, rtol=0)


def test_distance_target_offset_from_the_set_and_round_trip():
    ds = DirectionSet(
        ["g", "g|a"], np.stack([_unit(4, 1), _unit(4, 2)]), "z", "interfacegan", info=[{"offset": 0.3}, {}]
    )
    t = direction(ds, 0, "distance")
    assert (t.walk, t.offset) == ("distance", pytest.approx(0.3)) and direction(ds, 1, "distance").offset == 0.0
    assert direction(ds, 0).offset == 0.0 and "offset" not in direction(ds, 0).to_dict()  # linear: no offset
    rec = t.to_dict()
    assert rec["offset"] == pytest.approx(0.3)
    back = Target.from_dict(rec, t.vector)
    assert back == t and back.offset == t.offset
    assert back != Target.from_dict(dict(rec, offset=0.0), t.vector)
    with pytest.raises(WalkError, match="walk 'distance' for 'z\\[1\\]' needs a direction target"):
        Target("variable", "z[1]", "distance", index=1)
    with pytest.raises(WalkError, match="has zero length"):
        apply(torch.zeros(1, 4), "z", Target("direction", "a/b", "distance", vector=np.zeros(4)), [1.0])
    with pytest.raises(WalkError, match="has dimension 4, but the latent has shape \\[6\\]"):
        apply(torch.zeros(1, 6), "z", t, [1.0])


def test_distance_walk_in_a_spec_runs_and_round_trips(tmp_path):
    """A spec walks one InterFaceGAN set both ways (two file stems): the distance rows sit at alpha from the
    boundary, alpha = 0 is rendered (not the base), and the stored targets rebuild the same walk."""
    from probe.directions import InterFaceGAN
    from probe.models import load_model
    from probe.restudy import study_target
    from probe.study import parse_spec, run_study
    from probe.walks import signed_distance

    g = load_model("tiny-dcgan")
    est = InterFaceGAN("brightness", ratio=0.25, n_samples=120, seed=0).fit(g)
    est.directions_.save(tmp_path / "interfacegan.npz")
    est.directions_.save(tmp_path / "interfacegan_distance.npz")
    data = {
        "name": "dist",
        "model": "tiny-dcgan",
        "measures": ["brightness"],
        "n_samples": 3,
        "seed": 0,
        "space": "z",
        "alphas": [-1.0, 0.0, 1.0],
        "targets": [
            {"kind": "directions", "file": "interfacegan.npz"},
            {"kind": "directions", "file": "interfacegan_distance.npz", "walk": "distance"},
        ],
    }
    spec = parse_spec(data, base=tmp_path)
    assert parse_spec(spec.dump(), base=tmp_path).dump() == spec.dump()
    assert spec.dump()["targets"][1]["walk"] == "distance"
    st = run_study(spec, tmp_path / "study", progress=False)
    iv = st.table("interventions")
    walks = iv.groupby("target")["walk"].first().to_dict()
    assert walks == {"interfacegan/brightness": "linear", "interfacegan_distance/brightness": "distance"}
    t = study_target(st, "interfacegan_distance/brightness")
    assert t.walk == "distance" and t.offset == pytest.approx(est.directions_.info[0]["offset"])
    z = torch.as_tensor(st.latents())
    placed = apply(z, "z", t, [-1.0, 0.0, 1.0])
    assert torch.allclose(
        signed_distance(placed, t).reshape(3, 3),
        torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64).expand(3, 3),
        atol=1e-6,
        rtol=0,
    )
    at0 = iv[(iv["alpha"] == 0) & (iv["target"] == "interfacegan_distance/brightness")]
    lin0 = iv[(iv["alpha"] == 0) & (iv["target"] == "interfacegan/brightness")]
    assert (lin0["d_brightness"] == 0).all() and (at0["d_brightness"] != 0).any()  # rendered on the boundary
