"""FractionMultiStepLR: the paper's 8/12, 11/12 LR drops at any schedule and epoch length."""
import pytest
import torch

from visrc.models.schedule import FractionMultiStepLR


def _lrs(epochs, epoch_length, fractions=(2 / 3, 11 / 12)):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = FractionMultiStepLR.build_iter_from_epoch(opt, fractions=fractions, gamma=0.1, begin=0, end=epochs,
                                                      by_epoch=True, epoch_length=epoch_length)
    out = []
    for _ in range(epochs * epoch_length):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("epochs,epoch_length,drops", [(3, 180, (360, 495)), (12, 10, (80, 110)),
                                                       (3, 360, (720, 990)), (2, 180, (240, 330))])
def test_drops_at_two_thirds_and_eleven_twelfths(epochs, epoch_length, drops):
    lrs = _lrs(epochs, epoch_length)
    changes = [i for i in range(1, len(lrs)) if lrs[i] != lrs[i - 1]]
    assert changes == list(drops)
    assert lrs[0] == 1.0 and lrs[drops[0]] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.01)


def test_bad_fractions_and_epoch_based_use_are_refused():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="increase strictly"):
        FractionMultiStepLR(opt, fractions=(0.9, 0.5), end=100, by_epoch=False)
    with pytest.raises(ValueError, match="convert_to_iter_based"):
        FractionMultiStepLR(opt, end=3, by_epoch=True)
    with pytest.raises(ValueError, match="finite"):
        FractionMultiStepLR(opt, by_epoch=False)
