"""`probe train gan|factors|quality`: train the sprites generator and factor CNN, and score a generator."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ProbeError
from . import app

train_app = typer.Typer(no_args_is_help=True, help="Train on the procedural sprites dataset (CPU).")
app.add_typer(train_app, name="train")


@train_app.command("gan")
def gan_cmd(
    arch: str = typer.Option("stylegan", "--arch", help="stylegan (StyleGAN-lite) or dcgan"),
    iters: int = typer.Option(3000, "--iters", help="training iterations (total, counting resumed ones)"),
    batch: int = typer.Option(32, "--batch", help="images per iteration"),
    seed: int = typer.Option(0, "--seed", help="seed of init, data and z (same seed, same weights)"),
    out: Path = typer.Option(Path("runs/sprites"), "--out", "-o", help="run directory"),
    r1_gamma: float = typer.Option(None, "--r1-gamma", help="R1 weight (default 0.05)"),
    lr: float = typer.Option(None, "--lr", help="Adam learning rate (default 0.0025 stylegan, 0.0005 dcgan)"),
    tiny: bool = typer.Option(False, "--tiny", help="test-size networks"),
    resume: bool = typer.Option(True, "--resume/--restart", help="continue from out/checkpoint.pt if present"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads"),
    ckpt_every: int = typer.Option(200, "--ckpt-every", help="checkpoint period (iterations)"),
    sample_every: int = typer.Option(500, "--sample-every", help="sample grid period (0 = only at the end)"),
) -> None:
    """Train a generator on fresh sprites (non-saturating loss + lazy R1, EMA); writes OUT/generator.pt."""
    from ..train.trainer import train_gan

    if arch not in ("stylegan", "dcgan"):
        raise ProbeError(f"--arch {arch!r}: use stylegan or dcgan")
    try:
        path = train_gan(
            arch,
            iters=iters,
            batch=batch,
            seed=seed,
            out=out,
            r1_gamma=r1_gamma,
            lr=lr,
            tiny=tiny,
            resume=resume,
            threads=threads,
            ckpt_every=ckpt_every,
            sample_every=sample_every,
            log=typer.echo,
        )
    except ValueError as e:
        raise ProbeError(str(e)) from None
    typer.echo(f"EMA generator -> {path} (copy to probe/models/weights/sprites.pt to ship it as zoo 'sprites')")


@train_app.command("factors")
def factors_cmd(
    steps: int = typer.Option(2500, "--steps", help="training steps (fresh batch each)"),
    batch: int = typer.Option(64, "--batch"),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(Path("runs/sprite-factors"), "--out", "-o"),
    n_eval: int = typer.Option(2000, "--n-eval", help="held-out sprites for the reported metrics"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads"),
) -> None:
    """Train the sprite factor CNN on exact labels; prints held-out accuracy / R2 per factor."""
    from ..train.factor_cnn import train_factor_cnn

    path, m = train_factor_cnn(
        steps=steps, batch=batch, seed=seed, out=out, n_eval=n_eval, threads=threads, log=typer.echo
    )
    typer.echo(
        f"held-out (n={m['n']}): shape accuracy {m['shape_accuracy']:.3f}; "
        + "; ".join(
            f"{k} R2 {m[k + '_r2']:.3f} MAE {m[k + '_mae']:.3g}" for k in ("scale", "rotation", "x", "y", "hue")
        )
    )
    typer.echo(f"weights -> {path} (copy to probe/measures/weights/sprite_factors.pt to ship them)")


@train_app.command("quality")
def quality_cmd(
    model: str = typer.Option("sprites", "--model", help="generator to score (zoo name, file.py:factory)"),
    n: int = typer.Option(2000, "--n", help="generated and real images each"),
    seed: int = typer.Option(0, "--seed"),
    truncation: float = typer.Option(1.0, "--truncation", help="truncation psi (w models)"),
    out: Path = typer.Option(None, "--out", "-o", help="write the numbers as JSON here"),
) -> None:
    """Factor distributions (generated vs data) and Frechet distance in factor-CNN features."""
    import json

    from ..train.quality import format_quality, quality

    q = quality(model, n=n, seed=seed, truncation_psi=truncation)
    typer.echo(format_quality(q))
    if out:
        Path(out).write_text(json.dumps(q, indent=1))
