#!/usr/bin/env bash
# Create (or update) the mmspd environment: an isolated virtual environment
# with torch, mmcv 2.1.0 with compiled ops, mmsegmentation 1.2.2 and mmspd
# in editable mode, then check that the stack imports.
#
# mmcv 2.1.0 has no wheel on PyPI for current torch releases, so it is built
# from source once (15-20 minutes on 2 cores) into a wheel cache keyed by the
# torch build it was compiled against; every later setup installs that wheel.
#
# Environment variables:
#   MMSPD_VENV          where the environment lives (default: .venv)
#   MMSPD_PYTHON        interpreter that creates it (default: python3)
#   MMSPD_WHEEL_CACHE   the mmcv wheel cache (default: ~/.cache/mmspd/wheels)
#   MMSPD_TORCH         torch requirement installed when the environment has
#                       no torch yet (default: torch==2.13.0)
#   MMSPD_SYSTEM_SITE_PACKAGES=1  create the environment with access to the
#                       system site-packages, so a system (e.g. CUDA) torch is
#                       used instead of installing one
#   MAX_JOBS            parallel compile jobs for the mmcv build
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${MMSPD_VENV:-$repo/.venv}
python=${MMSPD_PYTHON:-python3}
cache=${MMSPD_WHEEL_CACHE:-$HOME/.cache/mmspd/wheels}
torch_req=${MMSPD_TORCH:-torch==2.13.0}
mmcv_version=2.1.0

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

if [ ! -x "$venv/bin/python" ]; then
    log "creating virtual environment $venv"
    venv_args=()
    [ "${MMSPD_SYSTEM_SITE_PACKAGES:-0}" = 1 ] && \
        venv_args+=(--system-site-packages)
    "$python" -m venv "${venv_args[@]}" "$venv"
fi
py="$venv/bin/python"
pip() { "$py" -m pip --disable-pip-version-check "$@"; }

if "$py" -c 'import torch' 2>/dev/null; then
    log "keeping installed torch $("$py" -c 'import torch; print(torch.__version__)')"
else
    log "installing $torch_req"
    pip install -q "$torch_req" numpy
fi
torch_tag=$("$py" -c 'import torch; print(torch.__version__)')

mmcv_ok() {
    "$py" - "$mmcv_version" <<'EOF' 2>/dev/null
import sys
import mmcv
import mmcv._ext  # noqa: F401  the compiled ops
assert mmcv.__version__ == sys.argv[1], mmcv.__version__
EOF
}

wheel_has_ops() { "$py" "$repo/tools/check_mmcv_wheel.py" "$1"; }

if mmcv_ok; then
    log "keeping installed mmcv $mmcv_version with compiled ops"
else
    # A wheel only works with the torch build it was compiled against.
    wheel_dir="$cache/torch-$torch_tag"
    mkdir -p "$wheel_dir"
    wheel=$(ls "$wheel_dir"/mmcv-"$mmcv_version"-*.whl 2>/dev/null | head -n 1 || true)
    if [ -n "$wheel" ]; then
        log "reusing cached mmcv wheel $wheel"
    else
        log "building mmcv $mmcv_version with ops against torch $torch_tag" \
            "(about 15-20 minutes on 2 cores; done once, then cached)"
        build_dir=$(mktemp -d)
        # mmcv's setup.py imports pkg_resources (setuptools < 70) and must
        # see torch, hence no build isolation. torch itself asks for a newer
        # setuptools, which is put back right after the build. pip's own
        # cache is bypassed: it may hold an mmcv built without ops.
        pip install -q 'setuptools<70' wheel ninja
        if ! MMCV_WITH_OPS=1 pip wheel --no-deps --no-build-isolation \
                --no-cache-dir --no-binary mmcv "mmcv==$mmcv_version" \
                -w "$build_dir" \
                > "$build_dir/build.log" 2>&1; then
            tail -n 40 "$build_dir/build.log" >&2
            die "mmcv $mmcv_version build failed; full log: $build_dir/build.log"
        fi
        built=$(ls "$build_dir"/mmcv-*.whl)
        wheel_has_ops "$built" || die "the mmcv build produced a wheel" \
            "without compiled ops (mmcv._ext); check that torch imports" \
            "in $venv and see $build_dir/build.log"
        # Move into place only when complete, so an interrupted build never
        # leaves a wheel that later setups would trust.
        mv "$built" "$wheel_dir/"
        wheel="$wheel_dir/$(basename "$built")"
        rm -rf "$build_dir"
        log "cached $wheel"
    fi
    wheel_has_ops "$wheel" || die "cached wheel $wheel has no compiled" \
        "ops (mmcv._ext); delete it and run the setup again"
    pip install -q --force-reinstall --no-deps "$wheel"
fi

log "installing mmspd (editable) and its dependencies"
# The mmcv wheel was installed without its dependencies; list them here.
# setuptools: torch 2.13 asks for >= 77.0.3; MMEngine needs pkg_resources to
# resolve the configs' `mmseg::` bases, and setuptools 82 removed it.
pip install -q 'setuptools>=77,<82' addict packaging Pillow pyyaml yapf \
    -e "$repo[tests]"

log "checking the stack"
"$py" - <<'EOF' || die "the installed stack does not import (see above)"
import mmcv
import mmcv.ops  # noqa: F401
import mmcv._ext  # noqa: F401
import mmengine
import mmseg
import torch

import mmspd
from mmspd.utils import check_pkg_resources
check_pkg_resources()  # the configs' `mmseg::` bases resolve
print(f'[setup] ok: torch {torch.__version__}, mmcv {mmcv.__version__} '
      f'(ops), mmengine {mmengine.__version__}, mmseg {mmseg.__version__}, '
      f'mmspd {mmspd.__version__}')
EOF
