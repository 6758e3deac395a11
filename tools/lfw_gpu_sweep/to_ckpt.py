"""Wrap a G from ``sweep.py`` into a DistortionModule checkpoint like ``distortion fit`` writes
(hyperparameters as LightningCLI stores them), for ``distortion evaluate``:
``python tools/lfw_gpu_sweep/to_ckpt.py <setting>.pt runs/lfw_gpu_sweep/<setting>.ckpt``."""
import sys

import lightning as L
import torch
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters_context

from distortion.backbones import DlibResNet
from distortion.models import UNet
from distortion.modules import DistortionModule

src, dst = sys.argv[1], sys.argv[2]
ck = torch.load(src, weights_only=False)
m = ck["metrics"]
gen = {"in_channels": 3, "out_channels": None, "depth": 4, "width": 16, "norm": False, "residual": True,
       "channels_last": True}
hp = {"_class_path": "distortion.modules.DistortionModule",
      "generator": {"class_path": "distortion.models.UNet", "init_args": gen},
      "embedding_ckpt": None,
      "embedding": {"class_path": "distortion.backbones.DlibResNet",
                    "init_args": {"pretrained": True, "weights_path": None}},
      "image_distance": m["distance"], "alpha": m["alpha"], "beta": 10.0, "tau": 0.04, "alpha_warmup_steps": 300,
      "perceptual_ckpt": None, "gamma": 0.0, "lr": 0.002, "_instantiator": "lightning.pytorch.cli.instantiate_module"}
with _given_hyperparameters_context(hparams=hp, instantiator="lightning.pytorch.cli.instantiate_module"):
    module = DistortionModule(UNet(**gen), embedding=DlibResNet(), image_distance=m["distance"], alpha=m["alpha"],
                              beta=10.0, tau=0.04, alpha_warmup_steps=300, lr=0.002)
module.generator.load_state_dict(ck["G"])
torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": L.__version__, "epoch": 0, "global_step": m["steps"]}, dst)
print(dst, dict(module.hparams)["image_distance"])
