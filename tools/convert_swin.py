"""Convert an official Swin Transformer ImageNet checkpoint to mmseg's keys.

The official checkpoints (``swin_tiny_patch4_window7_224.pth`` and friends)
name their modules ``layers.N.blocks.M.attn.qkv`` etc.; mmseg's
``SwinTransformer`` names them ``stages.N.blocks.M.attn.w_msa.qkv``. Patch
merging also concatenates the four 2x2 neighbours in a different order
(official: top-left, bottom-left, top-right, bottom-right, each a block of
channels; mmseg's ``nn.Unfold``: channel-major, then top-left, top-right,
bottom-left, bottom-right), so its linear and norm weights are permuted.

The classifier (``head``) and the final ``norm`` have no counterpart in the
segmentation backbone and are dropped. The output is loaded by the configs
through ``model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...)``.

Example::

    python tools/convert_swin.py swin_tiny_patch4_window7_224.pth \\
        pretrain/swin_tiny_patch4_window7_224_mmseg.pth
"""
import argparse
import os
import os.path as osp
import re
import sys
from collections import OrderedDict

import torch

# (pattern on an official key, replacement giving mmseg's key)
_RENAMES = (
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^layers\.(\d+)\.', r'stages.\1.'),
    ((r'\.attn\.(qkv|proj|relative_position_bias_table|'
      r'relative_position_index)'), r'.attn.w_msa.\1'),
    (r'\.mlp\.fc1\.', '.ffn.layers.0.0.'),
    (r'\.mlp\.fc2\.', '.ffn.layers.1.'),
)
_DROPPED = re.compile(r'^(head\.|norm\.)|attn_mask$')
# Where each of mmseg's four unfold positions sits in the official order.
_UNFOLD_ORDER = [0, 2, 1, 3]


def _merge_reduction(weight: torch.Tensor) -> torch.Tensor:
    out_channels, in_channels = weight.shape
    blocks = weight.reshape(out_channels, 4, in_channels // 4)
    return blocks[:, _UNFOLD_ORDER].transpose(1, 2).reshape(
        out_channels, in_channels)


def _merge_norm(param: torch.Tensor) -> torch.Tensor:
    blocks = param.reshape(4, param.numel() // 4)
    return blocks[_UNFOLD_ORDER].transpose(0, 1).reshape(-1)


def convert_swin(state_dict: dict) -> OrderedDict:
    """Return ``state_dict`` of an official Swin model with mmseg's keys."""
    converted = OrderedDict()
    for key, value in state_dict.items():
        if _DROPPED.search(key):
            continue
        new_key = key
        for pattern, replacement in _RENAMES:
            new_key = re.sub(pattern, replacement, new_key)
        if '.downsample.reduction.' in new_key:
            value = _merge_reduction(value)
        elif '.downsample.norm.' in new_key:
            value = _merge_norm(value)
        converted[new_key] = value
    return converted


def load_official(path: str) -> dict:
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    # Official releases store plain tensors (and the classifier config);
    # weights_only keeps the load safe.
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    for key in ('model', 'state_dict'):
        if isinstance(checkpoint, dict) and key in checkpoint:
            checkpoint = checkpoint[key]
    keys = list(checkpoint) if isinstance(checkpoint, dict) else []
    if not any(str(k).startswith('layers.') for k in keys):
        raise ValueError(
            f'{path} does not look like an official Swin checkpoint: '
            'expected a dict of tensors with "layers.*" keys (possibly under '
            f'"model" or "state_dict"), got a {type(checkpoint).__name__} '
            f'with first keys {keys[:5]}')
    return checkpoint


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description='Convert an official Swin checkpoint to mmseg keys.')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='where to write the converted weights')
    args = parser.parse_args(argv)
    try:
        state_dict = convert_swin(load_official(args.src))
    except (FileNotFoundError, ValueError) as e:
        sys.exit(str(e))
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save({'state_dict': state_dict}, args.dst)
    print(f'wrote {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
