"""Generator protocol, adapters, the zoo and user-model loading (with their error messages)."""

import os

import pytest
import torch
from torch import nn

from probe.models import Generator, ModelError, StyleGANGenerator, TorchGenerator, list_models, load_model
from probe.models.stylegan_lite import StyleGANLite


# ---- zoo -----------------------------------------------------------------------------------
def test_zoo_lists_the_embedded_models():
    rows = list_models()
    assert [r["name"] for r in rows][:3] == ["faces", "tiny-dcgan", "tiny-stylegan"]
    assert all(r["description"] for r in rows)


def test_unknown_model_names_the_options():
    with pytest.raises(ModelError, match=r"unknown model 'fcaes'.*faces.*file.py:factory"):
        load_model("fcaes")


def test_faces_loads_weights_only(monkeypatch):
    from probe.models import faces as faces_module

    calls = []
    real = torch.load

    def spy(*a, **k):  # the real loader, recording its arguments
        calls.append(k)
        return real(*a, **k)

    monkeypatch.setattr(faces_module.torch, "load", spy)
    g = faces_module.load_faces()
    assert calls and all(k.get("weights_only") is True for k in calls)
    assert g.z_dim == 100 and g.resolution == 64 and g.spaces == ("z",)


def test_faces_shapes_ranges_sites(faces):
    z = faces.sample(3, 0)
    img, feats = faces.forward(z, "z", faces.sites)
    assert img.shape == (3, 3, 64, 64) and img.min() >= -1 and img.max() <= 1 and img.std() > 0.1
    assert faces.sites == ("b1", "b2", "b3", "b4")
    assert [tuple(feats[s].shape[2:]) for s in faces.sites] == [(4, 4), (8, 8), (16, 16), (32, 32)]
    assert all((feats[s] >= 0).all() for s in faces.sites)  # ReLU outputs
    assert faces.channels("b2") == feats["b2"].shape[1]
    assert len(faces.weights_hash) == 16 and faces.describe()["weights_hash"] == faces.weights_hash


def test_sample_is_deterministic(tiny_dcgan):
    a, b, c = tiny_dcgan.sample(5, 7), tiny_dcgan.sample(5, 7), tiny_dcgan.sample(5, 8)
    assert a.shape == (5, 16) and torch.equal(a, b) and not torch.equal(a, c)
    state = torch.random.get_rng_state()
    tiny_dcgan.sample(3, 1)
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is not touched
    with pytest.raises(ModelError, match="n must be >= 0"):
        tiny_dcgan.sample(-1, 0)


def test_loading_the_zoo_does_not_reseed_the_global_rng():
    from probe.models.zoo import ZOO

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ZOO["tiny-dcgan"].load()
    ZOO["tiny-stylegan"].load()
    assert torch.equal(torch.rand(3), expected)


def test_tiny_models_are_deterministic_builds():
    from probe.models.zoo import ZOO

    assert ZOO["tiny-dcgan"].load().weights_hash == ZOO["tiny-dcgan"].load().weights_hash
    assert ZOO["tiny-stylegan"].load().weights_hash == ZOO["tiny-stylegan"].load().weights_hash


def test_synthesize_same_latent_same_image(tiny_dcgan, tiny_stylegan):
    for g in (tiny_dcgan, tiny_stylegan):
        z = g.sample(2, 0)
        assert torch.equal(g.synthesize(z), g.synthesize(z))
        assert torch.allclose(g.synthesize(z[:1]), g.synthesize(z)[:1], atol=1e-5)  # batch-independent


def test_stylegan_spaces(tiny_stylegan):
    g = tiny_stylegan
    assert g.spaces == ("z", "w", "ws") and g.num_ws == 12 and g.w_dim == 16
    z = g.sample(3, 1)
    w = g.to_space(z, "z", "w")
    ws = g.to_space(z, "z", "ws")
    assert w.shape == (3, 16) and ws.shape == (3, 12, 16)
    assert torch.equal(ws, g.to_space(w, "w", "ws")) and torch.equal(ws[:, 5], w)
    img = g.synthesize(z, "z")
    assert img.shape == (3, 3, 32, 32)
    assert torch.allclose(img, g.synthesize(w, "w"), atol=1e-6) and torch.allclose(
        img, g.synthesize(ws, "ws"), atol=1e-6
    )
    assert g.dim("ws") == 192 and g.shape("ws") == (12, 16)
    ws2 = ws.clone()
    ws2[:, 9:] = g.to_space(g.sample(3, 2), "z", "ws")[:, 9:]  # a layer-range edit changes the image
    assert not torch.allclose(g.synthesize(ws2, "ws"), img)
    assert g.sites == ("b4", "b8", "b16", "b32")
    feats = g.features(z, "z", ["b8", "b32"])
    assert feats["b8"].shape == (3, 32, 8, 8) and feats["b32"].shape == (3, 8, 32, 32)
    assert g.w_avg(n=64).shape == (16,)


def test_to_space_and_latent_errors(tiny_dcgan, tiny_stylegan):
    with pytest.raises(ModelError, match=r"space 'w' is not available for model 'tiny-dcgan'; use one of \['z'\]"):
        tiny_dcgan.to_space(tiny_dcgan.sample(1, 0), "z", "w")
    with pytest.raises(ModelError, match="cannot map from 'w' back to 'z'"):
        tiny_stylegan.to_space(torch.zeros(1, 16), "w", "z")
    with pytest.raises(ModelError, match=r"must have shape \[N, 16\], got \[2, 15\]"):
        tiny_dcgan.synthesize(torch.zeros(2, 15))
    with pytest.raises(ModelError, match=r"\[N, 12, 16\]"):
        tiny_stylegan.synthesize(torch.zeros(2, 16), "ws")
    with pytest.raises(ModelError, match="NaN"):
        tiny_dcgan.synthesize(torch.full((1, 16), float("nan")))
    with pytest.raises(ModelError, match="space 'q'"):
        tiny_stylegan.dim("q")
    assert tiny_dcgan.synthesize(torch.zeros(16)).shape == (1, 3, 32, 32)  # a single latent is a batch of one


def test_forward_lets_gradients_flow(tiny_stylegan):
    ws = tiny_stylegan.to_space(tiny_stylegan.sample(2, 0), "z", "ws").requires_grad_(True)
    img, feats = tiny_stylegan.forward(ws, "ws", ["b16"])
    (img.square().mean() + feats["b16"].mean()).backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in tiny_stylegan.module.parameters())  # weights stay frozen


# ---- scoped hooks --------------------------------------------------------------------------
def _no_hooks(g: Generator) -> bool:
    return all(not m._forward_hooks for m in g.module.modules())


@pytest.mark.parametrize("name", ["tiny_dcgan", "tiny_stylegan"])
def test_capture_and_edit_remove_hooks_even_on_error(name, request):
    g = request.getfixturevalue(name)
    z = g.sample(2, 0)
    site = g.sites[1]
    with g.capture([site]) as feats:
        g.synthesize(z)
        assert not _no_hooks(g)
    assert site in feats and _no_hooks(g)
    with pytest.raises(RuntimeError, match="boom"):
        with g.capture(list(g.sites)):
            raise RuntimeError("boom")
    assert _no_hooks(g)
    with pytest.raises(RuntimeError, match="boom"):
        with g.edit(site, lambda x: x * 0):
            raise RuntimeError("boom")
    assert _no_hooks(g)
    with pytest.raises(ModelError, match="site 'nope' does not exist"):
        with g.capture([site, "nope"]):
            pass
    assert _no_hooks(g)  # the hook registered before the bad site is removed too


@pytest.mark.parametrize("name", ["tiny_dcgan", "tiny_stylegan"])
def test_edit_changes_the_site_and_only_inside_the_block(name, request):
    g = request.getfixturevalue(name)
    z = g.sample(2, 0)
    site = g.sites[1]
    base = g.synthesize(z)
    with g.edit(site, lambda x: x):
        assert torch.equal(g.synthesize(z), base)
    with g.edit(site, lambda x: x * 0), g.capture([site]):
        edited = g.synthesize(z)
    assert not torch.allclose(edited, base)
    assert torch.equal(g.synthesize(z), base)
    ch = torch.zeros(g.channels(site), dtype=torch.bool)
    ch[0] = True
    with g.edit(site, lambda x: x.masked_fill(ch[None, :, None, None], 5.0)), g.capture([site]) as seen:
        g.synthesize(z)
    assert seen  # edit hook runs before the capture hook registered after it
    assert (seen[site][:, 0] == 5.0).all()


# ---- user models ---------------------------------------------------------------------------
USER = """
import os
import torch
from torch import nn

class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.z_dim = 8
        self.fc = nn.Linear(8, 3 * 16 * 16)
    def forward(self, z):
        return torch.tanh(self.fc(z)).view(-1, 3, 16, 16)

def plain():
    torch.manual_seed(0)
    return Plain()

def nvlabs():
    from probe.models.stylegan_lite import StyleGANLite
    torch.manual_seed(0)
    return StyleGANLite(z_dim=8, w_dim=8, resolution=16, channels={4: 8, 8: 8, 16: 4}, mapping_layers=1)

def no_zdim():
    return nn.Linear(4, 4)

def broken():
    raise RuntimeError("weights missing")

def not_a_module():
    return "hello"
"""


@pytest.fixture
def user_file(tmp_path):
    p = tmp_path / "user_gan.py"
    p.write_text(USER)
    return p


def test_user_plain_module(user_file):
    g = load_model(f"{user_file}:plain")
    assert isinstance(g, TorchGenerator) and g.z_dim == 8 and g.resolution == 16 and not g.conv_input
    assert g.synthesize(g.sample(2, 0)).shape == (2, 3, 16, 16)
    assert g.sites == ()  # no activation modules: no sites, stated explicitly


def test_user_nvlabs_module(user_file):
    g = load_model(f"{user_file}:nvlabs")
    assert isinstance(g, StyleGANGenerator) and g.num_ws == 9 and g.spaces == ("z", "w", "ws")
    assert g.synthesize(g.sample(2, 0), "z").shape == (2, 3, 16, 16)
    assert g.sites == ("b4", "b8", "b16")


def test_stylegan_adapter_duck_typing():
    class Half(nn.Module):
        mapping = nn.Identity()
        z_dim = 4

    with pytest.raises(ModelError, match=r"lacks \['synthesis', 'w_dim', 'num_ws'\]"):
        StyleGANGenerator(Half())
    torch.manual_seed(0)
    g = StyleGANGenerator(StyleGANLite(z_dim=4, w_dim=4, resolution=8, channels={4: 4, 8: 4}, mapping_layers=1))
    assert g.resolution == 8


@pytest.mark.parametrize(
    "factory, fragment",
    [
        ("missing", "has no callable 'missing'"),
        ("no_zdim", "must have an int attribute `z_dim`"),
        ("broken", "raised RuntimeError: weights missing"),
        ("not_a_module", "expected a torch.nn.Module"),
    ],
)
def test_user_model_errors(user_file, factory, fragment):
    with pytest.raises(ModelError, match=fragment.replace("(", r"\(").replace("`", "`")) as e:
        load_model(f"{user_file}:{factory}")
    assert "\n" not in str(e.value)


def test_user_file_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist; name it as path/to/file.py:factory"):
        load_model(f"{tmp_path / 'nope.py'}:make")
    bad = tmp_path / "bad.py"
    bad.write_text("import not_a_real_module_xyz\n")
    with pytest.raises(ModelError, match="failed to import: ModuleNotFoundError"):
        load_model(f"{bad}:make")


def test_state_dict_checkpoint_asks_for_a_factory(tmp_path):
    p = tmp_path / "weights.pt"
    torch.save(nn.Linear(3, 3).state_dict(), p)
    with pytest.raises(ModelError, match="holds only weights .*path/to/file.py:factory"):
        load_model(str(p))
    with pytest.raises(ModelError, match="does not exist"):
        load_model(str(tmp_path / "other.pt"))


def test_pickle_files_are_refused(tmp_path):
    p = tmp_path / "network-snapshot.pkl"
    p.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(
        ModelError,
        match=r"network-snapshot.pkl: not an NVlabs network pickle \(the top level is of "
        r"type int",
    ):
        load_model(str(p))
    t = tmp_path / "junk.pt"
    t.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a torch checkpoint archive"):
        load_model(str(t))


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_malicious_checkpoint_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "model.pt"
    torch.save({"net": _Evil(str(marker))}, p)
    with pytest.raises(ModelError, match="refused or unreadable checkpoint"):
        load_model(str(p))
    assert not marker.exists()


def test_torchscript_archive_loads(tmp_path, user_file):
    import importlib.util

    spec = importlib.util.spec_from_file_location("user_gan_ts", user_file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.plain()
    p = tmp_path / "plain.pt"
    torch.jit.script(net).save(str(p))
    g = load_model(str(p))
    z = g.sample(2, 0)
    assert g.z_dim == 8 and torch.allclose(g.synthesize(z), net(z).clamp(-1, 1), atol=1e-6)
    assert g.sites == ()  # forward hooks do not run inside TorchScript: no sites are offered
    traced = tmp_path / "traced.pt"
    torch.jit.trace(net, torch.zeros(1, 8)).save(str(traced))
    with pytest.raises(ModelError, match="torch.jit.script"):
        load_model(str(traced))
