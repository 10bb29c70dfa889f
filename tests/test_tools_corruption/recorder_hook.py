"""A test-only hook that records, and can interrupt, robustness runs."""
from __future__ import annotations

import json
import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def current_condition(runner) -> str:
    """``'clean'`` or ``'<corruption>-<severity>'`` of the test data."""
    for transform in runner.test_dataloader.dataset.pipeline.transforms:
        if type(transform).__name__ == 'ImageCorruption':
            return f'{transform.corruption}-{transform.severity}'
    return 'clean'


@HOOKS.register_module(force=True)
class ConditionRecorderHook(Hook):
    """Appends each evaluated condition to ``record`` (JSON lines).

    Args:
        record (str): File to append to.
        interrupt_at (int): Raise KeyboardInterrupt when the test epoch with
            this 1-based index starts, as Ctrl-C would. Defaults to 0
            (never).
        pause (float): Seconds to sleep before each test epoch, so that a
            test can start a second run meanwhile. Defaults to 0.
    """

    def __init__(self, record: str, interrupt_at: int = 0,
                 pause: float = 0.) -> None:
        self.record = record
        self.interrupt_at = interrupt_at
        self.pause = pause
        self.count = 0

    def before_test_epoch(self, runner) -> None:
        self.count += 1
        if self.count == self.interrupt_at:
            raise KeyboardInterrupt
        with open(self.record, 'a') as f:
            f.write(json.dumps(current_condition(runner)) + '\n')
        time.sleep(self.pause)
