"""Stage-2 run for tests/training/test_distributed.py under torchrun: ``ddp_stage2.py STAGE1 DATA OUT STEPS``."""

import sys

import torch

import cosmic.ground.diffusion.noise_predictor as npred
from cosmic.training.stage2 import Stage2Config, train_stage2

torch.set_num_threads(1)
npred.UNET_PRESETS["small"] = {"block_out_channels": [32, 32], "layers_per_block": 1, "cross_attention_dim": 32,
                               "attention_head_dim": 8}
stage1, data, out, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = Stage2Config(stage1=stage1, data=data, out=out, steps=steps, batch_size=4, crop=64, checkpoint_every=steps,
                   gsd=0.3048, log_every=1, device="cpu", stream="stream" in sys.argv[5:])
train_stage2(cfg, progress=False)
