"""Helpers shared by test modules (importable as tests.helpers; pytest's pythonpath holds the repo root)."""

from __future__ import annotations

import sys


def cli(args: list, capsys) -> tuple[int, str, str]:
    """Run the real `probe` entry point (probe.cli.main) in-process -> (exit code, stdout, stderr)."""
    from probe.cli import main

    old = sys.argv
    sys.argv = ["probe", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


# A model file whose import writes MARKER beside it: what a hostile `file.py:factory` would do when opened.
HOSTILE_FACTORY = """
from pathlib import Path

import torch
from torch import nn

Path(__file__).with_name("MARKER").write_text("imported")


class G(nn.Module):
    def __init__(self):
        super().__init__()
        self.z_dim = 4
        self.fc = nn.Linear(4, 3 * 16 * 16)

    def forward(self, z):
        return torch.tanh(self.fc(z)).view(-1, 3, 16, 16)


def factory():
    torch.manual_seed(0)
    return G()
"""


def nvlabs_reference(stem: str) -> tuple[dict, dict, dict]:
    """A stored NVlabs reference network of tests/data/nvlabs -> (info, state_dict tensors, reference tensors)."""
    import json
    from pathlib import Path

    import numpy as np
    import torch

    data = Path(__file__).resolve().parent / "data" / "nvlabs"
    info = json.loads((data / f"{stem}_info.json").read_text())
    tensors = []
    for part in ("state", "ref"):
        with np.load(data / f"{stem}_{part}.npz", allow_pickle=False) as z:
            tensors.append({k: torch.from_numpy(z[k]) for k in z.files})
    return info, *tensors
