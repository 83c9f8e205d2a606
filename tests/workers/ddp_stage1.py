"""Stage-1 run for tests/training/test_distributed.py, started by torchrun (several processes) or by plain
python (one process): ``ddp_stage1.py DATA OUT STEPS [stream]``.

The forward pass's noise (uniform quantisation noise, the reparameterised z0 sample) is switched
off here, so that the only difference between a one-process and a two-process run is what DDP
changes: sharding the batch and averaging the gradients."""

import sys

import compressai.entropy_models as em
import torch

import cosmic.models.registry as reg
from cosmic.training.stage1 import Stage1Config, train_stage1

_quantize = em.EntropyModel.quantize


def _no_noise(self, inputs, mode, means=None):
    return inputs if mode == "noise" else _quantize(self, inputs, mode, means)


em.EntropyModel.quantize = _no_noise
torch.randn_like = torch.zeros_like  # z0 = its mean
torch.set_num_threads(1)
reg.PRESETS["small"] = {"N": 16, "M": 16, "ground_channels": 8, "latent_channels": 4}
data, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = Stage1Config(data=data, out=out, steps=steps, batch_size=4, crop=64, lr=1e-3, lmbda=0.01,
                   val_every=10**6, checkpoint_every=steps, channels_last=False, log_every=1,
                   device="cpu", stream="stream" in sys.argv[4:])
train_stage1(cfg, progress=False)
