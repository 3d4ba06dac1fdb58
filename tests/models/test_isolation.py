"""load_model hands out models that callers cannot corrupt for each other; zoo entries carry their defaults."""

import time

import pytest
import torch

from probe.models import ModelError, load_model
from probe.models.base import GENERIC, ModelDefaults
from probe.models.zoo import ZOO, _with_options


def _ptrs(g):
    return [p.data_ptr() for p in g.module.parameters()]


def test_two_callers_do_not_share_hooks_flags_options_or_device():
    a, b = load_model("tiny-stylegan"), load_model("tiny-stylegan")
    z = a.sample(2, 0)
    ref = b.synthesize(z)
    assert a is not b and a.module is not b.module and _ptrs(a) == _ptrs(b)  # own modules, one copy of the weights
    with a.edit(a.sites[0], lambda x: x * 0):  # a hook on a's site ...
        assert not torch.equal(a.synthesize(z), ref)
        assert torch.equal(b.synthesize(z), ref)  # ... never fires for b
        assert torch.equal(load_model("tiny-stylegan").synthesize(z), ref)  # nor for a later caller
    a.module.requires_grad_(True)
    assert all(p.requires_grad for p in a.module.parameters())
    assert not any(p.requires_grad for p in b.module.parameters())
    assert not any(p.requires_grad for p in load_model("tiny-stylegan").module.parameters())
    a.module.to(torch.float64)  # moving (here: retyping) a's module leaves b's where it was
    assert next(a.module.parameters()).dtype == torch.float64
    assert next(b.module.parameters()).dtype == torch.float32 and torch.equal(b.synthesize(z), ref)
    t = load_model("tiny-stylegan", truncation_psi=0.5)
    assert t.truncation_psi == 0.5 and b.truncation_psi == 1.0 and torch.equal(b.synthesize(z), ref)
    assert _ptrs(t) == _ptrs(b)


def test_loading_stays_cached():
    first = load_model("tiny-stylegan")
    proto = _with_options("tiny-stylegan", 1.0, "const", None, None)
    first.synthesize(first.sample(1, 0))  # the first render checks the output range
    t0 = time.perf_counter()
    g = load_model("tiny-stylegan")
    took = time.perf_counter() - t0
    assert _with_options("tiny-stylegan", 1.0, "const", None, None) is proto  # no second load
    assert _ptrs(g) == _ptrs(proto) and took < 2.0, took
    assert g._checked() and proto._range_checked  # checked once, for every copy


def test_clone_owns_its_weights():
    a = load_model("tiny-stylegan")
    c = a.clone()
    z = a.sample(2, 0)
    ref = a.synthesize(z)
    assert set(_ptrs(c)).isdisjoint(_ptrs(a))
    with torch.no_grad():
        for p in c.module.parameters():
            p.add_(0.5)  # training a clone ...
    assert torch.equal(a.synthesize(z), ref)  # ... leaves the shared weights alone
    assert torch.equal(load_model("tiny-stylegan").synthesize(z), ref)
    assert not torch.equal(c.synthesize(z), ref)


def test_fresh_copies_keep_sites_inside_their_module():
    g = load_model("tiny-dcgan")
    own = {id(m) for m in g.module.modules()}
    assert all(id(m) in own for m in g.site_modules.values())


def test_zoo_entries_carry_their_defaults():
    def tuned(d, method, keys):
        return {k: d.drag_params(method)[k] for k in keys}

    assert tuned(ZOO["faces"].defaults, "draggan", ("site", "r1", "r2")) == {"site": "b2", "r1": 48, "r2": 24}
    assert tuned(ZOO["faces"].defaults, "freedrag", ("site",)) == {"site": "b4"}
    assert ZOO["faces"].defaults.align_faces and ZOO["faces"].defaults.offset_site == "b2"
    assert ZOO["faces"].defaults.drag_eval == "landmarks"
    s = ZOO["sprites"].defaults
    assert (
        tuned(s, "draggan", ("site", "layers"))
        == tuned(s, "freedrag", ("site", "layers"))
        == {"site": "b16", "layers": 3}
    )
    assert s.measures == ("sprites",) and s.drag_eval == "centres" and s.centre == ("sprite_x", "sprite_y")
    assert ZOO["tiny-dcgan"].defaults is GENERIC and load_model("tiny-dcgan").defaults is GENERIC
    assert GENERIC.measures == ("image",) and GENERIC.drag_params("draggan") == {} and not GENERIC.align_faces
    with pytest.raises(TypeError):
        s.drag["draggan"]["site"] = "b4"  # read-only: no caller changes another's defaults


def test_models_from_files_get_generic_defaults(tmp_path):
    f = tmp_path / "net.py"
    f.write_text("from probe.models.zoo import _tiny_dcgan\ndef factory():\n    return _tiny_dcgan()\n")
    assert load_model(f"{f}:factory").defaults is GENERIC


def test_bad_defaults_name_the_field():
    with pytest.raises(
        ModelError, match=r"^drag_eval: protocol 'dots' unknown; use one of \['landmarks', 'centres'\]$"
    ):
        ModelDefaults(drag_eval="dots")


def test_models_pickle_without_their_cache_link():
    import pickle

    g = load_model("tiny-dcgan")
    z = g.sample(2, 0)
    back = pickle.loads(pickle.dumps(g))
    assert back._origin is None and torch.equal(back.synthesize(z), g.synthesize(z))


def test_describe_records_the_default_measures():
    assert "default_measures" not in load_model("tiny-stylegan").describe()  # generic: nothing declared
    from probe.models.zoo import SPRITES_DEFAULTS

    g = load_model("tiny-stylegan")
    g.defaults = SPRITES_DEFAULTS  # an instance's own defaults (a factory may set them) stay its own
    assert g.describe()["default_measures"] == ["sprites"]
    assert "default_measures" not in load_model("tiny-stylegan").describe()  # generic: nothing declared


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_moving_one_callers_model_to_cuda_leaves_the_other_on_the_cpu():
    a, b = load_model("tiny-stylegan"), load_model("tiny-stylegan")
    z = b.sample(2, 0)
    ref = b.synthesize(z)
    g = a.to("cuda")
    assert g.device.type == "cuda" and a.device.type == "cpu" and b.device.type == "cpu"
    assert torch.allclose(g.synthesize(z).cpu(), ref, atol=1e-4) and torch.equal(b.synthesize(z), ref)
    a.module.to("cuda")  # even the module of a fresh copy moves alone
    assert b.device.type == "cpu" and load_model("tiny-stylegan").device.type == "cpu"
