"""tools/convert_swin.py maps official Swin weights onto mmseg's backbone."""
import importlib.util
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.models.utils.embed import PatchMerging
from mmseg.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
spec = importlib.util.spec_from_file_location(
    'convert_swin', osp.join(REPO, 'tools', 'convert_swin.py'))
convert_swin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(convert_swin)

EMBED, DEPTHS, HEADS, WINDOW = 8, (2, 2), (1, 2), 2


def _official_state_dict() -> dict:
    """Keys and shapes of an official Swin checkpoint for a tiny model."""
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    sd = {
        'patch_embed.proj.weight': rand(EMBED, 3, 4, 4),
        'patch_embed.proj.bias': rand(EMBED),
        'patch_embed.norm.weight': rand(EMBED),
        'patch_embed.norm.bias': rand(EMBED),
    }
    dims = EMBED
    for i, (depth, heads) in enumerate(zip(DEPTHS, HEADS)):
        for j in range(depth):
            p = f'layers.{i}.blocks.{j}.'
            sd.update({
                p + 'norm1.weight': rand(dims),
                p + 'norm1.bias': rand(dims),
                p + 'attn.relative_position_bias_table': rand(
                    (2 * WINDOW - 1)**2, heads),
                p + 'attn.relative_position_index': torch.randint(
                    0, (2 * WINDOW - 1)**2, (WINDOW**2, WINDOW**2),
                    generator=gen),
                p + 'attn.qkv.weight': rand(3 * dims, dims),
                p + 'attn.qkv.bias': rand(3 * dims),
                p + 'attn.proj.weight': rand(dims, dims),
                p + 'attn.proj.bias': rand(dims),
                p + 'norm2.weight': rand(dims),
                p + 'norm2.bias': rand(dims),
                p + 'mlp.fc1.weight': rand(4 * dims, dims),
                p + 'mlp.fc1.bias': rand(4 * dims),
                p + 'mlp.fc2.weight': rand(dims, 4 * dims),
                p + 'mlp.fc2.bias': rand(dims),
            })
            if j % 2:
                sd[p + 'attn_mask'] = rand(4, WINDOW**2, WINDOW**2)
        if i < len(DEPTHS) - 1:
            p = f'layers.{i}.downsample.'
            sd.update({
                p + 'reduction.weight': rand(2 * dims, 4 * dims),
                p + 'norm.weight': rand(4 * dims),
                p + 'norm.bias': rand(4 * dims),
            })
            dims *= 2
    sd.update({'norm.weight': rand(dims), 'norm.bias': rand(dims),
               'head.weight': rand(10, dims), 'head.bias': rand(10)})
    return sd


def test_all_backbone_weights_are_mapped():
    init_default_scope('mmseg')
    backbone = MODELS.build(
        dict(type='SwinTransformer', embed_dims=EMBED, depths=DEPTHS,
             num_heads=HEADS, window_size=WINDOW, strides=(4, 2),
             out_indices=(0, 1), pretrain_img_size=16))
    official = _official_state_dict()
    converted = convert_swin.convert_swin(official)
    result = backbone.load_state_dict(converted, strict=False)
    assert result.unexpected_keys == []
    # Only the per-output norms are new in the segmentation backbone.
    assert all(k.startswith('norm') for k in result.missing_keys), \
        result.missing_keys
    torch.testing.assert_close(
        backbone.stages[0].blocks[1].attn.w_msa.qkv.weight,
        official['layers.0.blocks.1.attn.qkv.weight'])
    torch.testing.assert_close(
        backbone.stages[1].blocks[0].ffn.layers[1].weight,
        official['layers.1.blocks.0.mlp.fc2.weight'])


def _official_patch_merging(x, hw, weight, norm_weight, norm_bias):
    """Patch merging as the official Swin code defines it."""
    b, _, c = x.shape
    x = x.view(b, *hw, c)
    x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2],
                   x[:, 1::2, 1::2]], -1).view(b, -1, 4 * c)
    x = F.layer_norm(x, (4 * c, ), norm_weight, norm_bias)
    return F.linear(x, weight)


def test_patch_merging_matches_official():
    c, hw = 6, (4, 6)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, hw[0] * hw[1], c, generator=gen)
    weight = torch.randn(2 * c, 4 * c, generator=gen)
    norm_w = torch.randn(4 * c, generator=gen)
    norm_b = torch.randn(4 * c, generator=gen)
    expected = _official_patch_merging(x, hw, weight, norm_w, norm_b)

    merging = PatchMerging(c, 2 * c)
    converted = convert_swin.convert_swin({
        'layers.0.downsample.reduction.weight': weight,
        'layers.0.downsample.norm.weight': norm_w,
        'layers.0.downsample.norm.bias': norm_b,
    })
    merging.load_state_dict({
        k.replace('stages.0.downsample.', ''): v
        for k, v in converted.items()
    })
    out, out_hw = merging(x, hw)
    assert out_hw == (2, 3)
    torch.testing.assert_close(out, expected)


def test_rejects_non_swin_checkpoint(tmp_path):
    path = tmp_path / 'resnet.pth'
    torch.save({'conv1.weight': torch.zeros(1)}, path)
    with pytest.raises(ValueError, match='official Swin checkpoint'):
        convert_swin.load_official(str(path))
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match='got a list'):
        convert_swin.load_official(str(path))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        convert_swin.load_official(str(tmp_path / 'missing.pth'))
