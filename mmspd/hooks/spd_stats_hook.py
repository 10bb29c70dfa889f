"""Logging of Selective Projection Decay statistics."""
from __future__ import annotations

from typing import Optional, Sequence, Union

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mmspd.optim import spd_statistics

DATA_BATCH = Optional[Union[dict, tuple, list]]


@HOOKS.register_module()
class SPDStatsHook(Hook):
    """Log SPD statistics of the last optimizer step every N iterations.

    Works with :class:`~mmspd.optim.AdamSPD` (in any optimizer wrapper) and
    with every optimizer SPD is attached to (``SPDHook``,
    ``SPDOptimWrapperConstructor``,
    :class:`~mmspd.optim.SPDOptimWrapper`,
    :class:`~mmspd.optim.AmpSPDOptimWrapper`). The values go to the message
    hub as ``train/spd_selected`` (fraction of tensors whose gradient and
    progress disagree, i.e. that SPD decays), ``train/spd_ratio`` (mean
    ratio ``r`` over those tensors), ``train/spd_deviation``
    (``|theta - a|`` over all processed tensors) and
    ``train/spd_rel_deviation`` (the same divided by ``|a|``), so the
    ``LoggerHook`` prints them and writes them to every visualizer backend
    (TensorBoard, ...). With an ``OptimWrapperDict`` the optimizer's name is
    added: ``train/{name}.spd_selected``.

    Reading the statistics synchronises with the device, which is why it
    happens only every ``interval`` iterations.

    Args:
        interval (int): Log every ``interval`` training iterations.
            Defaults to 10.

    Example:
        >>> custom_hooks = [dict(type='SPDStatsHook', interval=10)]
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 10) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'Invalid interval: {interval!r} (expected an '
                             'int >= 1)')
        self.interval = interval

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: dict | None = None) -> None:
        """Push the statistics to the message hub every ``interval`` iters."""
        if not self.every_n_train_iters(runner, self.interval):
            return
        optim_wrapper = runner.optim_wrapper
        named: Sequence = [('', optim_wrapper)]
        if hasattr(optim_wrapper, 'optim_wrappers'):  # OptimWrapperDict
            named = [(f'{name}.', wrapper) for name, wrapper in
                     optim_wrapper.optim_wrappers.items()]
        for prefix, wrapper in named:
            for key, value in spd_statistics(wrapper).items():
                runner.message_hub.update_scalar(
                    f'train/{prefix}spd_{key}', float(value))
