"""A small analytic generator for drag tests: z [N, 2] places a bright blob; its site is a fixed conv of the blob."""

import pytest
import torch
from torch import nn

from probe.models.dcgan import TorchGenerator


class BlobNet(nn.Module):
    """z [N, 2] -> img [N, 3, 32, 32]: a Gaussian blob centred at 16 + 4 z (x, y); site `feat` = conv features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.feat = nn.Conv2d(1, 8, 5, padding=2)
        self.rgb = nn.Conv2d(8, 3, 1)
        yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        self.register_buffer("xx", xx)
        self.register_buffer("yy", yy)

    def forward(self, z):
        cx, cy = 16 + 4 * z[:, 0, None, None], 16 + 4 * z[:, 1, None, None]
        blob = torch.exp(-((self.xx - cx) ** 2 + (self.yy - cy) ** 2) / (2 * 3.0**2))[:, None]
        return torch.tanh(self.rgb(torch.relu(self.feat(blob))))


@pytest.fixture(scope="session")
def blob():
    return TorchGenerator(BlobNet(), 2, name="blob", sites={"feat": "feat"}, conv_input=False)
