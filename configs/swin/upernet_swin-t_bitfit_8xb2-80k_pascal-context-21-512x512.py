# Swin-T UperNet fine-tuned with BitFit on the 21-class PASCAL-Context split:
# of the pre-trained backbone only the bias terms are trained (Ben Zaken,
# Ravfogel, Goldberg, ACL 2022), a baseline of the paper's table; the
# randomly initialised decode and auxiliary heads are trained in full, as
# parameter-efficient dense-prediction baselines do. Everything else is the
# AdamW baseline's.
#
# The other parameters are frozen (requires_grad=False) when the model is
# built (PartialEncoderDecoder): they get no gradient and no optimizer state,
# and stay frozen whatever the learning rates are (lr_mult=0 would also keep
# them still, at the cost of their backward pass and Adam moments). Freezing
# at build time also keeps multi-GPU (DDP) training working.
#
# Where each hyper-parameter comes from:
#   trained: every backbone parameter whose name ends in ".bias" (linear,
#   convolution and LayerNorm biases), and the heads
#                             BitFit; counting LayerNorm biases and not the
#                             relative position bias tables (learned tables,
#                             not bias terms) is our reading
#   model, data, batch 16, 80k schedule, warm-up + poly
#                             the AdamW baseline (see there)
#   AdamW lr 6e-5, weight decay 0.01 (none on norms), betas, eps
#                             the AdamW baseline, unchanged; our choice. The
#                             BitFit paper searches larger learning rates
#                             (1e-4 to 1e-3) for its few parameters; sweep
#                             with --cfg-options optim_wrapper.optimizer.lr=LR
_base_ = './upernet_swin-t_adamw_8xb2-80k_pascal-context-21-512x512.py'

model = dict(
    type='PartialEncoderDecoder',
    trainable=[
        r'backbone\..*\.bias',
        r'decode_head\..*',
        r'auxiliary_head\..*',
    ])
