"""Devices: one resolver, CPU twins of the CUDA paths (this machine has no GPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from probe.devices import DeviceError, device_name, onnx_providers, resolve_device
from probe.errors import ProbeError

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="CPU twins: this test expects no CUDA")

NO_CUDA = (
    "--device cuda: CUDA is not available on this machine (torch.cuda.is_available() is False); "
    "use --device cpu or auto"
)


def test_resolve_device_on_a_cpu_machine():
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert device_name(resolve_device("auto")) == "cpu"


def test_resolve_device_errors_are_one_line():
    with pytest.raises(DeviceError) as e:
        resolve_device("cuda")
    assert str(e.value) == NO_CUDA
    with pytest.raises(DeviceError) as e:
        resolve_device("cuda:1")
    assert str(e.value) == (
        "--device cuda:1: CUDA is not available on this machine (torch.cuda.is_available() "
        "is False); use --device cpu or auto"
    )
    for bad in ("gpu", "cuda:x", "cuda:-1", "mps:0", ""):
        with pytest.raises(DeviceError) as e:
            resolve_device(bad)
        assert str(e.value) == f"--device {bad}: unknown device; use auto, cpu, cuda or cuda:N"
    with pytest.raises(DeviceError) as e:
        resolve_device("cuda", field="device")
    assert str(e.value).startswith("device cuda: CUDA is not available") and str(e.value).endswith(
        "use device cpu or auto"
    )
    assert issubclass(DeviceError, ProbeError)


def test_onnx_provider_choice():
    cuda_ort = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers(torch.device("cuda", 1), cuda_ort) == [
        ("CUDAExecutionProvider", {"device_id": 1}),
        "CPUExecutionProvider",
    ]
    assert onnx_providers(torch.device("cuda"), cuda_ort) == [
        ("CUDAExecutionProvider", {"device_id": 0}),
        "CPUExecutionProvider",
    ]
    assert onnx_providers(torch.device("cpu"), cuda_ort) == ["CPUExecutionProvider"]
    assert onnx_providers(torch.device("cuda", 0), ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    import onnxruntime as ort

    assert onnx_providers(resolve_device("auto")) == ["CPUExecutionProvider"]
    assert "CPUExecutionProvider" in ort.get_available_providers()


@pytest.fixture(scope="module")
def tiny():
    from probe.models import load_model

    return load_model("tiny-dcgan")


def test_generator_to_device(tiny):
    g = tiny.to("cpu")
    assert g is tiny and g.device == torch.device("cpu")
    assert tiny.to("auto") is tiny
    z = g.sample(3, 7)
    assert z.device == torch.device("cpu")
    assert torch.equal(z, torch.randn(3, g.z_dim, generator=torch.Generator().manual_seed(7)))
    with pytest.raises(DeviceError) as e:
        tiny.to("cuda")
    assert str(e.value) == NO_CUDA


def test_generator_copy_for_another_device(tiny):
    # the copy a CUDA move makes (Generator._moved), done to the CPU: own module, sites inside it, same images
    g = tiny._moved(torch.device("cpu"))
    assert g is not tiny and type(g) is type(tiny) and g.device == torch.device("cpu")
    assert g.module is not tiny.module
    own = {id(m) for m in g.module.modules()}
    assert all(id(m) in own for m in g.site_modules.values()) and g.sites == tiny.sites
    lat = tiny.sample(2, 0)
    ref = tiny.synthesize(lat)
    assert torch.equal(g.synthesize(lat), ref)
    with g.edit(g.sites[0], lambda x: x * 0):
        assert not torch.equal(g.synthesize(lat), ref)
        assert torch.equal(tiny.synthesize(lat), ref)  # the original's module has no hook
    assert g.weights_hash == tiny.weights_hash


def test_spec_device_field_and_study_id(tmp_path):
    from probe.study import SpecError, parse_spec, run_study

    base = {
        "name": "dev",
        "model": "tiny-dcgan",
        "measures": ["image"],
        "n_samples": 4,
        "alphas": [-1, 0, 1],
        "targets": [{"kind": "variables", "indices": [0, 1]}],
        "batch_size": 3,
        "part_rows": 5,
    }
    a = parse_spec(base)
    b = parse_spec({**base, "device": "cpu"})
    assert a.device == "auto" and b.device == "cpu"
    assert a.dump() == b.dump() and "device" not in a.dump()
    with pytest.raises(SpecError) as e:
        parse_spec({**base, "device": "gpu"})
    assert str(e.value) == 'device: device \'gpu\' is unknown; use "auto", "cpu", "cuda" or "cuda:N"'
    with pytest.raises(SpecError) as e:
        run_study(parse_spec({**base, "device": "cuda"}), tmp_path / "c", progress=False)
    assert str(e.value) == (
        "device cuda: CUDA is not available on this machine (torch.cuda.is_available() is "
        "False); use device cpu or auto"
    )
    assert not (tmp_path / "c").exists()
    with pytest.raises(SpecError) as e:
        run_study(a, tmp_path / "c", progress=False, device="cuda:0")
    assert str(e.value) == (
        "--device cuda:0: CUDA is not available on this machine (torch.cuda.is_available() "
        "is False); use --device cpu or auto"
    )
    sa = run_study(a, tmp_path / "auto", progress=False)
    sc = run_study(b, tmp_path / "cpu", progress=False, device="cpu")
    ma = json.loads((tmp_path / "auto" / "manifest.json").read_text())
    mc = json.loads((tmp_path / "cpu" / "manifest.json").read_text())
    assert ma["device"] == mc["device"] == "cpu"
    assert ma["study_id"] == mc["study_id"]
    for t in ("samples", "interventions"):
        assert sa.table(t).equals(sc.table(t))
    # resuming under another device option is allowed: tables say nothing device-specific
    run_study(parse_spec({**base, "device": "auto"}), tmp_path / "cpu", resume=True, progress=False)


def test_cli_device_option(tmp_path, capsys, tiny_study):
    import sys

    from probe.cli import main

    dirs = sorted(p.name for p in (tiny_study.path / "directions").iterdir())
    spec = tmp_path / "s.toml"
    spec.write_text(
        'name = "s"\nmodel = "tiny-dcgan"\nmeasures = ["image"]\nn_samples = 2\nalphas = [0, 1]\n'
        '[[targets]]\nkind = "variables"\nindices = [0]\n'
    )
    for argv in (
        ["probe", "run", str(spec), "--out", str(tmp_path / "o"), "--device", "cuda", "--no-progress"],
        ["probe", "mix", "--model", "sprites", "--device", "cuda", "--out", str(tmp_path / "m.png")],
        ["probe", "drag", "--model", "tiny-dcgan", "--point", "1,1->2,2", "--device", "cuda:3"],
        ["probe", "invert", str(tmp_path / "x.png"), "--model", "tiny-dcgan", "--device", "cuda"],
        ["probe", "discover", str(tiny_study.path), "--method", "random", "--device", "cuda"],
        ["probe", "report", str(tiny_study.path), "--device", "cuda:0"],
        ["probe", "dash", str(tiny_study.path), "--device", "cuda"],
        ["probe", "demo", "--out", str(tmp_path / "d"), "--device", "cuda", "--no-dash"],
        ["probe", "gt-score", "--out", str(tmp_path / "g"), "--device", "cuda"],
    ):
        old = sys.argv
        sys.argv = argv
        try:
            with pytest.raises(SystemExit) as e:
                main()
        finally:
            sys.argv = old
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        dev = argv[argv.index("--device") + 1]
        assert err == [
            f"error: --device {dev}: CUDA is not available on this machine "
            f"(torch.cuda.is_available() is False); use --device cpu or auto"
        ]
    assert not (tmp_path / "o").exists() and not (tmp_path / "d").exists() and not (tmp_path / "g").exists()
    assert sorted(p.name for p in (tiny_study.path / "directions").iterdir()) == dirs


def test_image_measures_keep_the_device_and_return_cpu_numpy():
    from probe.measures import ImageStats, MeasureSet

    img = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ms = MeasureSet(["image"])
    assert ImageStats.device == "any" and ms.device == "any"
    assert MeasureSet(["image", "sprites"]).device == "cpu"
    out = ms(img)
    ref = ImageStats()(img)
    assert all(isinstance(v, np.ndarray) and np.array_equal(v, ref[k]) for k, v in out.items())


def test_bench_gpu_skips_cleanly_without_cuda(capsys):
    from benchmarks.bench_gpu import main

    assert main([]) == []
    assert capsys.readouterr().out == (
        "bench_gpu: skipped (torch.cuda.is_available() is False: no CUDA on this machine)\n"
    )


def test_face_measures_onnx_providers_here():
    from probe.measures.faces import FaceMeasures

    m = FaceMeasures()
    assert m.providers == ["CPUExecutionProvider"] and m.device == "cpu"
    assert m._sessions["gender"].get_providers() == ["CPUExecutionProvider"]
    assert FaceMeasures(exact=True, ort_device="cuda").providers == ["CPUExecutionProvider"]  # exact: always CPU
    with pytest.raises(DeviceError) as e:
        FaceMeasures(ort_device="cuda")
    assert str(e.value) == NO_CUDA
