"""Tests for the DyCON backbones: exact sizes, output contract, gradients, autocast, errors."""

import re

import pytest
import torch
from torch import nn

from dycon.models import ProjectionHead, SegOutput, UNet3D, VNet

MODELS = [UNet3D, VNet]


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def check_output(out: SegOutput, model: nn.Module, shape: tuple[int, ...]) -> None:
    b, _, d, h, w = shape
    assert isinstance(out, SegOutput)
    assert out.logits.shape == (b, model.num_classes, d, h, w)
    assert out.embedding.shape == (b, 256, d // 8, h // 8, w // 8)
    assert torch.isfinite(out.logits.float()).all() and torch.isfinite(out.embedding.float()).all()
    if isinstance(model, UNet3D):
        sdf = out.aux["sdf"]
        assert sdf.shape == out.logits.shape
        assert sdf.min() >= -1 and sdf.max() <= 1
    else:
        assert out.aux is None


# --- sizes -------------------------------------------------------------------------------------


def test_unet3d_parameter_count():
    model = UNet3D()
    # Segmentation network: encoder 3,533,456 (double convs 7,376 + 41,536 + 166,016 + 663,808
    # + 2,654,720) + decoder 2,350,560 (1,769,728 + 442,496 + 110,656 + 27,680) + two 1x1x1
    # heads 2 * 34; InstanceNorm(affine=False) adds nothing.
    # Projection head: conv 131,584 + BN 1,024 + conv 131,328 + BN 512.
    assert n_params(model.projection) == 264_448
    assert n_params(model) - n_params(model.projection) == 5_884_084
    assert n_params(model) == 6_148_532


def test_vnet_parameter_count():
    model = VNet()
    # Segmentation network 9,448,866 = conv/deconv weights and biases 9,443,266 (encoder
    # 7,373,088 + decoder 2,070,144 + out_conv 34) + BatchNorm affine 5,600 (2 x 2,800 channels).
    # Projection head 263,936 = conv 131,584 + BN 1,024 + conv 131,328 (no ReLU, no final BN).
    norm_params = sum(
        n_params(m) for m in model.modules() if isinstance(m, nn.BatchNorm3d)
    ) - n_params(model.projection.mlp[1])
    assert n_params(model.projection) == 263_936
    assert norm_params == 5_600
    assert n_params(model) - n_params(model.projection) == 9_448_866
    assert n_params(model) == 9_712_802
    # The official "9.707 M" (thop) is this network without the backbone's BatchNorm parameters.
    assert n_params(VNet(normalization="instancenorm")) == 9_707_202
    assert n_params(VNet(normalization="none")) == 9_707_202


def test_vnet_state_dict_keys_follow_ua_mt():
    keys = VNet().state_dict().keys()
    for key in ("block_one.conv.0.weight", "block_five.conv.7.running_mean", "out_conv.bias"):
        assert key in keys
    # 29 conv + BatchNorm pairs x 7 tensors (weight, bias; weight, bias, running stats, count)
    # + out_conv weight and bias, exactly the UA-MT VNet state dict.
    assert sum(not k.startswith("projection.") for k in keys) == 29 * 7 + 2


def test_seg_output_contract():
    assert SegOutput._fields == ("logits", "embedding", "aux")
    out = SegOutput(torch.zeros(1), torch.zeros(1))
    assert out.aux is None


# --- forward -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_unet3d_forward_96_cubed():
    torch.manual_seed(0)
    model = UNet3D().eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 96, 96, 96))
    check_output(out, model, (1, 1, 96, 96, 96))
    assert out.embedding.flatten(2).shape[-1] == 1728  # tokens seen by the contrastive loss


@pytest.mark.slow
@pytest.mark.parametrize("model_cls", MODELS)
def test_forward_112x112x80(model_cls):
    torch.manual_seed(0)
    model = model_cls().eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 112, 112, 80))
    check_output(out, model, (1, 1, 112, 112, 80))


@pytest.mark.parametrize("model_cls", MODELS)
def test_train_forward_backward_finite_grads(model_cls):
    torch.manual_seed(0)
    model = model_cls(in_channels=2, num_classes=3).train()
    out = model(torch.randn(2, 2, 32, 32, 32))
    check_output(out, model, (2, 2, 32, 32, 32))
    # The losses L2-normalise; the model must hand over the raw projection.
    assert not torch.allclose(out.embedding.norm(dim=1), torch.ones(()))
    loss = out.logits.square().mean() + out.embedding.square().mean()
    if out.aux is not None:
        loss = loss + out.aux["sdf"].square().mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


@pytest.mark.parametrize("normalization", ["batchnorm", "instancenorm", "groupnorm", "none"])
def test_vnet_normalizations(normalization):
    model = VNet(normalization=normalization).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 16, 16, 32))
    check_output(out, model, (1, 1, 16, 16, 32))


@pytest.mark.parametrize("model_cls", MODELS)
def test_embedding_scale_one_keeps_bottleneck_resolution(model_cls):
    model = model_cls(embedding_scale=1, embedding_dim=64).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 32, 32, 64))
    assert out.embedding.shape == (1, 64, 2, 2, 4)


def test_projection_head_variants():
    unet_head = ProjectionHead(relu=True, final_norm=True)
    vnet_head = ProjectionHead(relu=False, final_norm=False)
    assert [type(m) for m in unet_head.mlp] == [
        nn.Conv3d,
        nn.BatchNorm3d,
        nn.ReLU,
        nn.Conv3d,
        nn.BatchNorm3d,
    ]
    assert [type(m) for m in vnet_head.mlp] == [nn.Conv3d, nn.BatchNorm3d, nn.Conv3d]
    assert vnet_head.eval()(torch.randn(1, 256, 2, 2, 2)).shape == (1, 256, 4, 4, 4)


@pytest.mark.slow
@pytest.mark.parametrize("model_cls", MODELS)
def test_bf16_autocast_cpu(model_cls):
    torch.manual_seed(0)
    model = model_cls().eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(1, 1, 16, 16, 32))
    check_output(out, model, (1, 1, 16, 16, 32))
    assert out.logits.dtype == torch.bfloat16


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("model_cls", MODELS)
def test_cuda_forward(model_cls):
    torch.manual_seed(0)
    model = model_cls().cuda().train()
    x = torch.randn(2, 1, 64, 64, 48, device="cuda")
    out = model(x)
    check_output(out, model, tuple(x.shape))
    out.logits.mean().backward()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        out = model.eval()(x)
    check_output(out, model, tuple(x.shape))
    assert out.logits.device.type == "cuda" and out.logits.dtype == torch.bfloat16


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_cls", MODELS)
@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.zeros(1, 32, 32, 32), "(1, 32, 32, 32)"),  # 4-D: batch or channel dim missing
        (torch.zeros(1, 3, 32, 32, 32), "(1, 3, 32, 32, 32)"),  # wrong channel count
        (torch.zeros(1, 1, 32, 32, 40), "(32, 32, 40)"),  # 40 is not a multiple of 16
        (torch.zeros(1, 1, 32, 32, 32, dtype=torch.long), "torch.int64"),
        (torch.zeros(32, 32, 32).numpy(), "ndarray"),
    ],
)
def test_bad_input_raises(model_cls, x, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        model_cls()(x)


@pytest.mark.parametrize("build", [UNet3D, lambda: VNet(normalization="instancenorm")])
def test_instance_norm_rejects_single_voxel_bottleneck(build):
    with pytest.raises(ValueError, match=re.escape("(1, 1, 16, 16, 16)")):
        build()(torch.zeros(1, 1, 16, 16, 16))


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: UNet3D(in_channels=0), "in_channels must be a positive int, got 0"),
        (lambda: UNet3D(num_classes=2.0), "num_classes must be a positive int, got 2.0"),
        (lambda: UNet3D(widths=(16, 32, 64, 128)), "got (16, 32, 64, 128)"),
        (lambda: UNet3D(dropout=1.0), "dropout must be a float in [0, 1), got 1.0"),
        (lambda: UNet3D(embedding_scale=0), "embedding_scale must be a positive int, got 0"),
        (lambda: VNet(normalization="layernorm"), "got 'layernorm'"),
        (lambda: VNet(normalization="groupnorm", base_filters=8), "got 8"),
        (lambda: VNet(dropout=-0.1), "got -0.1"),
        (lambda: VNet(embedding_dim=True), "embedding_dim must be a positive int, got True"),
    ],
)
def test_bad_constructor_args_raise(build, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        build()


@pytest.mark.parametrize("model_cls", MODELS)
def test_constructor_is_keyword_only(model_cls):
    with pytest.raises(TypeError):
        model_cls(1, 2)
