"""The paper's LR schedule *shape* at any length: step drops at fixed fractions of training.

The paper trains 12 epochs with the LR divided by 10 after epochs 8 and 11 (mmdet's 1x schedule),
i.e. at 2/3 and 11/12 of training. :class:`FractionMultiStepLR` keeps that shape for a schedule of
any length (the toy video models train 3 epochs: drops after 2 and 2.75 epochs), and for any epoch
length (Multi-Source Data epochs are longer than video-only ones), because its milestones are
computed in iterations from the scheduler's ``[begin, end)`` span once mmengine has converted it::

    dict(type='FractionMultiStepLR', fractions=(2 / 3, 11 / 12), gamma=0.1, begin=0, end=max_epochs,
         by_epoch=True, convert_to_iter_based=True)

``visrc train --max-epochs N`` moves ``end`` to ``N`` (:func:`visrc.models.train_cli.set_max_epochs`),
so a shorter or longer run keeps the shape.
"""
from __future__ import annotations

from mmengine.optim.scheduler import MultiStepLR
from mmengine.registry import PARAM_SCHEDULERS

INF = int(1e9)


@PARAM_SCHEDULERS.register_module()
class FractionMultiStepLR(MultiStepLR):
    """:class:`mmengine.optim.MultiStepLR` with ``milestones`` at ``fractions`` of ``[begin, end)``
    (each rounded to the nearest step; fractions strictly increasing in (0, 1)). Epoch-based use needs
    ``convert_to_iter_based=True``, or a drop inside an epoch (11/12 of 3 epochs) would fall on an
    epoch boundary."""

    def __init__(self, optimizer, fractions=(2 / 3, 11 / 12), begin: int = 0, end: int = INF,
                 by_epoch: bool = True, gamma: float = 0.1, **kwargs) -> None:
        fractions = [float(f) for f in fractions]
        if not fractions or any(not 0 < f < 1 for f in fractions) or fractions != sorted(set(fractions)):
            raise ValueError(f"FractionMultiStepLR: fractions must increase strictly within (0, 1), got {fractions}")
        if end >= INF:
            raise ValueError("FractionMultiStepLR: needs a finite `end` (the schedule's length)")
        if by_epoch:
            raise ValueError("FractionMultiStepLR: set convert_to_iter_based=True (drops fall inside epochs)")
        self.fractions = fractions
        milestones = [begin + int(round(f * (end - begin))) for f in fractions]
        super().__init__(optimizer, milestones=milestones, gamma=gamma, begin=begin, end=end,
                         by_epoch=by_epoch, **kwargs)

    @classmethod
    def build_iter_from_epoch(cls, *args, begin: int = 0, end: int = INF, by_epoch: bool = True,
                              epoch_length: int | None = None, **kwargs):
        """Convert ``begin`` / ``end`` from epochs to iterations; the milestones follow from them."""
        if not by_epoch:
            raise ValueError("FractionMultiStepLR: convert_to_iter_based needs by_epoch=True")
        if not epoch_length or epoch_length <= 0:
            raise ValueError(f"FractionMultiStepLR: epoch_length must be positive, got {epoch_length}")
        end = end * epoch_length if end < INF else INF
        return cls(*args, begin=begin * epoch_length, end=end, by_epoch=False, **kwargs)
