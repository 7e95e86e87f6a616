"""Sliding-window inference and the EMA teacher."""

import pytest
import torch
from torch import nn

from dycon.engine.ema import ema_update
from dycon.engine.inference import sliding_window_predict, window_starts
from dycon.models import SegOutput, UNet3D


@pytest.mark.parametrize(
    ("size", "patch", "stride", "expected"),
    [
        (10, 4, 3, [0, 3, 6]),
        (10, 4, 4, [0, 4, 6]),
        (4, 4, 2, [0]),
        (3, 4, 2, [0]),
        (112, 96, 16, [0, 16]),
        (5, 2, 1, [0, 1, 2, 3]),
    ],
)
def test_window_starts(size, patch, stride, expected):
    assert window_starts(size, patch, stride) == expected


class Pointwise(nn.Module):
    """A 1x1x1 model: any tiling must give the whole-volume answer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(2, 3, 1)

    def forward(self, x):
        return SegOutput(logits=self.conv(x), embedding=x)


@pytest.mark.parametrize("gaussian", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("size", [(20, 18, 10), (6, 7, 3)])  # larger and smaller than the patch
def test_sliding_window_equals_whole_volume_for_a_pointwise_model(gaussian, batch_size, size):
    model = Pointwise().eval()
    image = torch.randn(2, *size)
    whole = torch.softmax(model.conv(image[None]), dim=1)[0]
    probs = sliding_window_predict(
        model, image, patch=(8, 8, 4), stride=(3, 5, 2), batch_size=batch_size, gaussian=gaussian
    )
    assert probs.shape == (3, *size)
    torch.testing.assert_close(probs, whole, rtol=1e-5, atol=1e-6)


def test_sliding_window_single_window_equals_forward():
    torch.manual_seed(0)
    model = UNet3D(widths=(4, 8, 8, 16, 16), embedding_dim=8).eval()
    image = torch.randn(1, 32, 32, 32)
    with torch.no_grad():
        direct = torch.softmax(model(image[None]).logits, dim=1)[0]
    probs = sliding_window_predict(model, image.numpy(), patch=(32, 32, 32), stride=(16, 16, 4))
    torch.testing.assert_close(probs, direct)


def test_sliding_window_bad_input():
    with pytest.raises(ValueError, match="image must be"):
        sliding_window_predict(Pointwise(), torch.zeros(8, 8, 8), patch=(4, 4, 4), stride=(2, 2, 2))
    with pytest.raises(ValueError, match="stride"):
        window_starts(10, 4, 0)


def test_ema_update():
    torch.manual_seed(0)
    student, teacher = nn.Linear(3, 2), nn.Linear(3, 2)
    assert ema_update(teacher, student, step=0) == 0.0  # warm-up: copy
    torch.testing.assert_close(teacher.weight, student.weight)
    before = teacher.weight.detach().clone()
    with torch.no_grad():
        student.weight.add_(1.0)
    alpha = ema_update(teacher, student, step=1000, decay=0.99)
    assert alpha == 0.99
    torch.testing.assert_close(teacher.weight, 0.99 * before + 0.01 * student.weight)
    bn_s, bn_t = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    bn_s.running_mean.fill_(3.0)
    ema_update(bn_t, bn_s, step=5)
    assert bn_t.running_mean.abs().sum() == 0  # buffers not averaged by default
    ema_update(bn_t, bn_s, step=5, buffers=True)
    assert torch.equal(bn_t.running_mean, bn_s.running_mean)
    with pytest.raises(ValueError, match="same architecture"):
        ema_update(nn.Linear(3, 2), nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)), step=1)
