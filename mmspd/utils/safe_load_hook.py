"""A hook that lets the Runner load MMEngine checkpoints on torch >= 2.6.

mmspd's configs name it among their default hooks::

    default_hooks = dict(safe_load=dict(type='SafeLoadHook'))

so ``load_from``, ``--resume`` and ``tools/test.py CONFIG CHECKPOINT`` work
however the runner is built (mmseg's ``tools/train.py`` and
``tools/test.py``, ``Runner.from_cfg``, a registered ``runner_type``).
"""
from __future__ import annotations

import contextlib

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from .compat import mmengine_safe_globals


@HOOKS.register_module()
class SafeLoadHook(Hook):
    """Holds the MMEngine allow-list while the runner loads its checkpoint.

    Torch >= 2.6 unpickles with ``weights_only=True`` unless told otherwise,
    and mmengine 0.10.x does not tell it, so the runner refuses its own
    checkpoints (``load_from``, ``resume``, and the checkpoint of
    ``tools/test.py``). MMEngine loads them in ``Runner.load_or_resume``,
    right after the ``before_run`` hooks; this hook, the last of them
    (priority ``'LOWEST'``), opens :func:`~mmspd.utils.mmengine_safe_globals`
    there and closes it as soon as the checkpoint is loaded
    (``after_load_checkpoint``), or at the start of the loop when there is
    nothing to load. The rest of the run, and the rest of the process, load
    as torch decides.

    If loading the checkpoint raises, no hook runs again and the allow-list
    stays until this hook's runner, or another's, closes it: the types it
    holds are those listed in :func:`~mmspd.utils.mmengine_safe_globals`
    and nothing else.
    """

    priority = 'LOWEST'

    def __init__(self) -> None:
        self._open: contextlib.ExitStack | None = None

    def _start(self) -> None:
        self._stop()
        self._open = contextlib.ExitStack()
        self._open.enter_context(mmengine_safe_globals())

    def _stop(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def before_run(self, runner) -> None:
        self._start()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._stop()

    def before_train(self, runner) -> None:
        self._stop()

    def before_val(self, runner) -> None:
        self._stop()

    def before_test(self, runner) -> None:
        self._stop()

    def after_run(self, runner) -> None:
        self._stop()
