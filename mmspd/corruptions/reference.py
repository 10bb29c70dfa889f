"""imagecorruptions 1.1.2 made to run on the pinned NumPy and scikit-image.

imagecorruptions 1.1.2 predates NumPy 2 and scikit-image 0.19+: its fog uses
``np.float_``, its gaussian_blur and glass_blur pass ``multichannel=True`` to
``skimage.filters.gaussian``, its impulse_noise leaves scikit-image to seed a
fresh generator from OS entropy, and every random corruption draws from
NumPy's global random state. :func:`reference_corruption` runs an
imagecorruptions function with those fixed, under a lock, with the global
random state temporarily set from a given :class:`numpy.random.RandomState`
(and restored afterwards). Nothing in site-packages is edited: the fixes are
applied to the imported module for the duration of the call.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from mmspd.utils import import_imagecorruptions

_LOCK = threading.RLock()


def _corruptions_module():
    import_imagecorruptions()
    from imagecorruptions import corruptions
    return corruptions


def _gaussian_filter(image, sigma=1, multichannel=None, **kwargs):
    """``skimage.filters.gaussian`` accepting the removed ``multichannel``."""
    from skimage.filters import gaussian
    if multichannel:
        kwargs['channel_axis'] = -1
    return gaussian(image, sigma=sigma, **kwargs)


class _SkimageProxy:
    """Stands in for the ``skimage`` module inside imagecorruptions.

    Its ``util.random_noise`` takes the generator from NumPy's global state,
    which :func:`seeded_global_state` has seeded, instead of OS entropy.
    """

    def __init__(self, skimage):
        self._skimage = skimage
        self.util = _SkimageUtilProxy(skimage.util)

    def __getattr__(self, name):
        return getattr(self._skimage, name)


class _SkimageUtilProxy:

    def __init__(self, util):
        self._util = util

    def __getattr__(self, name):
        return getattr(self._util, name)

    def random_noise(self, image, *args, rng=None, **kwargs):
        if rng is None:
            rng = np.random.default_rng(np.random.randint(2**31))
        return self._util.random_noise(image, *args, rng=rng, **kwargs)


@contextlib.contextmanager
def seeded_global_state(rng: np.random.RandomState) -> Iterator[None]:
    """Run a block on NumPy's global random state, taken from ``rng``.

    The global state is restored afterwards and ``rng`` advanced by what the
    block consumed, so a caller sees the draws as if made from ``rng``.
    Holds a process-wide lock: only one block uses the global state at once.

    Args:
        rng (np.random.RandomState): State to run the block with.
    """
    with _LOCK:
        saved = np.random.get_state()
        np.random.set_state(rng.get_state())
        try:
            yield
        finally:
            rng.set_state(np.random.get_state())
            np.random.set_state(saved)


@contextlib.contextmanager
def compatible_imagecorruptions() -> Iterator[object]:
    """Patch imagecorruptions' module globals for NumPy 2 / skimage 0.26.

    Yields:
        module: ``imagecorruptions.corruptions``, usable inside the block.
    """
    module = _corruptions_module()
    with _LOCK:
        saved = {name: module.__dict__[name] for name in ('gaussian', 'sk')}
        added_float = 'float_' not in np.__dict__
        module.gaussian = _gaussian_filter
        module.sk = _SkimageProxy(saved['sk'])
        if added_float:
            # Only plasma_fractal reads it; NumPy 2 removed the alias.
            np.float_ = np.float64
        try:
            yield module
        finally:
            module.__dict__.update(saved)
            if added_float:
                del np.float_


def reference_corruption(name: str) -> Callable:
    """The imagecorruptions function ``name`` as a seeded uint8 function.

    Args:
        name (str): An imagecorruptions corruption name.

    Returns:
        Callable: ``fn(image, severity, rng) -> image`` taking and returning
        ``(H, W, 3)`` uint8 RGB arrays, drawing its randomness from the
        :class:`numpy.random.RandomState` ``rng``.
    """
    module = _corruptions_module()
    if not hasattr(module, name):
        raise ValueError(f'imagecorruptions has no corruption {name!r}')

    def corrupt(image: np.ndarray, severity: int,
                rng: np.random.RandomState) -> np.ndarray:
        with compatible_imagecorruptions() as patched, \
                seeded_global_state(rng):
            out = getattr(patched, name)(Image.fromarray(image), severity)
        # As imagecorruptions.corrupt: float results truncated to uint8.
        return np.uint8(out)

    corrupt.__name__ = name
    corrupt.__doc__ = (f'imagecorruptions 1.1.2 ``{name}`` on uint8 RGB, '
                       'seeded by ``rng``.')
    return corrupt
