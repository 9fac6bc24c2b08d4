"""FastDeformConv2d gives mmcv's DeformConv2d numbers bit for bit: output and the gradients of
input, offset and weight, over the settings TCIS and the paper configs use and a few others."""
import copy

import pytest
import torch
from mmcv.ops import DeformConv2d

from visrc.models.fast_deform_conv import FastDeformConv2d, use_fast_deform_conv
from visrc.models.tcis import TCISModule


def _run(layer, x, offset, grad):
    """Output and gradients (input, offset, weight) of one forward/backward."""
    x = x.clone().requires_grad_()
    offset = offset.clone().requires_grad_()
    layer.weight.grad = None
    out = layer(x, offset)
    out.backward(grad)
    return out.detach(), x.grad, offset.grad, layer.weight.grad


# (n, c_in, c_out, h, w, kernel, padding, stride, dilation, groups, deform_groups, im2col_step, offset scale)
CASES = [
    (4, 16, 16, 14, 14, 3, 1, 1, 1, 1, 1, 32, 2.0),      # TCIS: 14 x 14 mask RoI features, one block
    (6, 8, 8, 14, 14, 3, 1, 1, 1, 1, 1, 2, 6.0),         # three im2col blocks, offsets far outside
    (3, 8, 12, 9, 11, 3, 0, 2, 2, 2, 2, 1, 3.0),         # groups, deformable groups, stride, dilation
    (2, 6, 4, 7, 7, 1, 0, 1, 1, 1, 3, 2, 0.7),           # 1 x 1 kernel
]


@pytest.mark.parametrize("case", CASES)
def test_fast_deform_conv_equals_mmcv(case):
    n, c_in, c_out, h, w, k, pad, stride, dil, groups, dgroups, step, scale = case
    torch.manual_seed(sum(case[:6]))
    plain = DeformConv2d(c_in, c_out, k, stride=stride, padding=pad, dilation=dil, groups=groups,
                         deform_groups=dgroups, im2col_step=step)
    fast = copy.deepcopy(plain)
    assert use_fast_deform_conv(fast) == 1 and type(fast) is FastDeformConv2d
    ho = (h + 2 * pad - (dil * (k - 1) + 1)) // stride + 1
    wo = (w + 2 * pad - (dil * (k - 1) + 1)) // stride + 1
    x = torch.randn(n, c_in, h, w)
    offset = torch.randn(n, dgroups * 2 * k * k, ho, wo) * scale
    offset[0, :, 0, 0] = 1.0                                 # whole-pixel offsets: corner weights of 0
    offset[-1, :, -1, -1] = -1.0                             # a sample exactly on the border
    grad = torch.randn(n, c_out, ho, wo)
    for a, b in zip(_run(plain, x, offset, grad), _run(fast, x, offset, grad)):
        assert torch.equal(a, b)


def test_fast_deform_conv_falls_back_to_mmcv():
    torch.manual_seed(0)
    plain = DeformConv2d(4, 4, 3, padding=1)
    fast = copy.deepcopy(plain)
    use_fast_deform_conv(fast)
    x, offset = torch.randn(2, 4, 2, 2), torch.randn(2, 18, 2, 2)   # smaller than the kernel: mmcv pads
    assert torch.equal(fast(x, offset), plain(x, offset))
    x64, off64 = torch.randn(2, 4, 5, 5, dtype=torch.float64), torch.randn(2, 18, 5, 5, dtype=torch.float64)
    assert torch.equal(fast.double()(x64, off64), plain.double()(x64, off64))


def test_use_fast_deform_conv_keeps_the_module_and_its_weights():
    tcis = TCISModule(in_channels=8)
    keys = {k: v.clone() for k, v in tcis.state_dict().items()}
    weight = tcis.dcn.weight
    assert use_fast_deform_conv(tcis) == 1
    assert type(tcis.dcn) is FastDeformConv2d and tcis.dcn.weight is weight
    assert tcis.state_dict().keys() == keys.keys()
    assert all(torch.equal(v, keys[k]) for k, v in tcis.state_dict().items())
    assert use_fast_deform_conv(tcis) == 0                   # already fast: nothing left to replace
