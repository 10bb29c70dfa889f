"""Exit with an error unless an mmcv wheel contains the compiled ops.

``pip`` builds mmcv without ``mmcv._ext`` whenever torch is not importable
in the build environment (build isolation), and says nothing about it;
``tools/setup_env.sh`` runs this check on every wheel it builds or reuses.

Usage: python tools/check_mmcv_wheel.py WHEEL
"""
import sys
import zipfile


def has_compiled_ops(wheel: str) -> bool:
    with zipfile.ZipFile(wheel) as archive:
        return any(name.startswith('mmcv/_ext') for name in archive.namelist())


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    wheel = argv[0]
    try:
        ok = has_compiled_ops(wheel)
    except (OSError, zipfile.BadZipFile) as e:
        print(f'cannot read mmcv wheel {wheel}: {e}', file=sys.stderr)
        return 1
    if not ok:
        print(f'{wheel} is an mmcv without compiled ops (no mmcv._ext '
              'inside); build it with torch installed and '
              '--no-build-isolation', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
