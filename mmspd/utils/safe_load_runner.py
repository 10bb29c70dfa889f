"""A Runner whose checkpoint loads read MMEngine checkpoints on torch >= 2.6.

``runner_type = 'SafeLoadRunner'`` in a config makes mmseg's own
``tools/train.py`` and ``tools/test.py`` build it (they build
``RUNNERS.build(cfg)`` when the config names a ``runner_type``). It is
MMEngine's :class:`~mmengine.runner.Runner` in every other respect.
"""
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .compat import mmengine_safe_globals


@RUNNERS.register_module()
class SafeLoadRunner(Runner):
    """MMEngine's Runner, loading checkpoints under the MMEngine allow-list.

    Torch >= 2.6 unpickles checkpoints with ``weights_only=True`` unless
    told otherwise, and mmengine 0.10.x does not tell it, so ``load_from``,
    ``resume`` (which loads through :meth:`load_checkpoint`) and
    ``tools/test.py CONFIG CHECKPOINT`` refuse MMEngine's own checkpoints.
    Here those loads run inside :func:`~mmspd.utils.mmengine_safe_globals`:
    the types MMEngine checkpoints hold are accepted during the load and
    only then; the unpickler refuses every other global. The process's
    other ``torch.load`` calls are left as they are.
    """

    def load_checkpoint(self, filename: str, *args, **kwargs) -> dict:
        """Load a checkpoint as :meth:`Runner.load_checkpoint` does.

        Args:
            filename (str): Local path or URL, as MMEngine accepts.
            *args: Passed on to :meth:`Runner.load_checkpoint`.
            **kwargs: Passed on to :meth:`Runner.load_checkpoint`.

        Returns:
            dict: The loaded checkpoint.
        """
        with mmengine_safe_globals():
            return super().load_checkpoint(filename, *args, **kwargs)
