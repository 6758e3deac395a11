"""The LFW loss-weight sweep on a lent GPU machine (README: "The loss-weight sweep").

Not part of the package: the machine has no jsonargparse, kornia comes as a wheel, and data travels
packed by ``pack.py``. Same G, F and loss as ``configs/lfw_generator.yaml``, in a plain loop at batch
64 for a fixed time per setting; scores the DevTest pairs and returns G's weights, metrics and 400
distorted DevTest chips per setting (``to_ckpt.py`` turns the weights into a ``distortion fit``
checkpoint for ``distortion evaluate``). Usage there: ``python3 tools/lfw_gpu_sweep/sweep.py 95``
(seconds per setting); ``SMOKE=1`` runs the first setting only, for a check on a CPU.
"""

import io
import json
import math
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.getcwd())  # run from the repository root
from callbacks.distortion_metrics import IMAGE_METRICS  # noqa: E402
from distortion.backbones import DlibResNet  # noqa: E402
from distortion.losses import get_image_distance  # noqa: E402
from distortion.models import UNet  # noqa: E402
from distortion.modules.distortion import distortion_loss_terms  # noqa: E402
from distortion.verification import pair_scores, verification_metrics  # noqa: E402

OUT = os.environ.get("OUT", "/tmp/out")
dev = "cuda" if torch.cuda.is_available() else "cpu"
SMOKE = "SMOKE" in os.environ
torch.backends.cudnn.benchmark = True
t_start = time.time()
d = np.load(".gpu/data.npz")


def decode(buf, off):
    images = [Image.open(io.BytesIO(buf[off[i] : off[i + 1]].tobytes())).convert("RGB") for i in range(len(off) - 1)]
    return np.stack([np.asarray(image) for image in images])


train = torch.from_numpy(decode(d["train"], d["train_off"])).permute(0, 3, 1, 2).contiguous().to(dev)
val = torch.from_numpy(decode(d["val"], d["val_off"])).permute(0, 3, 1, 2).contiguous().to(dev)
pairs = torch.from_numpy(d["pairs"]).to(dev)
F = DlibResNet(pretrained=False)
F.load_state_dict({k: v.float() for k, v in torch.load(".gpu/dlib_resnet_fp16.pt").items()})
F = F.to(dev).eval().requires_grad_(False).to(memory_format=torch.channels_last)
print("setup", time.time() - t_start, train.shape, val.shape, dev, flush=True)


def evaluate(G):
    G.eval()
    embs_x, embs_g, sums, gs = [], [], {k: 0.0 for k in IMAGE_METRICS}, []
    with torch.no_grad():
        for s in range(0, len(val), 128):
            x = val[s:s + 128].float() / 255
            g = G(x).float().clamp(0, 1)
            embs_x.append(F(x).float())
            embs_g.append(F(g).float())
            gs.append(g)
            for k, fn in IMAGE_METRICS.items():
                sums[k] += float(fn(x, g).sum())
    ex, eg, g = torch.cat(embs_x), torch.cat(embs_g), torch.cat(gs)
    out = {k: v / len(val) for k, v in sums.items()}
    a, b, same = pairs[:, 0], pairs[:, 1], pairs[:, 2]
    for name, (ea, eb) in {"orig": (ex, ex), "deploy": (eg, ex), "distorted": (eg, eg)}.items():
        m = verification_metrics().to(dev)
        m.update(pair_scores(ea[a], eb[b]), same)
        out |= {f"{name}/{k}": float(v) for k, v in m.compute().items()}
    out["shift_mean"] = float((ex - eg).norm(dim=1).mean())
    return out, g


def run(name, alpha, spec, seconds, batch=64, lr=2e-3, beta=10.0, tau=0.04, warmup=300):
    torch.manual_seed(0)
    G = UNet(3, depth=4, width=16, residual=True, channels_last=True).to(dev)
    dist = get_image_distance(spec)
    opt = torch.optim.Adam(G.parameters(), lr=lr)
    step, t0, log = 0, time.time(), []
    while (elapsed := time.time() - t0) < seconds:
        frac = elapsed / seconds
        for group in opt.param_groups:
            group["lr"] = lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))
        idx = torch.randint(len(train), (batch,), device=dev)
        x = train[idx].float() / 255
        x = torch.where((torch.rand(batch, device=dev) < 0.5).view(-1, 1, 1, 1), x.flip(-1), x)
        with torch.autocast(dev, dtype=torch.bfloat16):
            terms = distortion_loss_terms(G, F, dist, x, alpha * min(1.0, step / warmup), beta, tau)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        step += 1
        if step % 500 == 0:
            log.append(tuple(float(terms[k].detach()) for k in ("loss", "d_img", "threshold")))
            print(name, log[-1], f"{step * batch / (time.time() - t0):.0f} img/s", flush=True)
    metrics, g = evaluate(G)
    metrics |= {"steps": step, "images": step * batch, "seconds": time.time() - t0, "alpha": alpha,
                "distance": spec}
    print(name, json.dumps(metrics), flush=True)
    samples = []
    for im in g[:400].mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy():
        buffer = io.BytesIO()
        Image.fromarray(im).save(buffer, format="JPEG", quality=95)
        samples.append(buffer.getvalue())
    torch.save({"G": {k: v.cpu() for k, v in G.state_dict().items()}, "metrics": metrics, "log": log,
                "samples": samples}, f"{OUT}/{name}.pt")
    return metrics


seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 100
both = {"coarse_decorrelation": 1.0, "local_decorrelation": 1.0}
results = {}
for name, alpha, spec in [("a4_both", 4.0, both), ("a16_both", 16.0, both), ("a1_both", 1.0, both),
                          ("a8_coarse", 8.0, "coarse_decorrelation")]:
    results[name] = run(name, alpha, spec, seconds)
    if SMOKE:
        break
    json.dump(results, open(f"{OUT}/summary.json", "w"), indent=1)
print("total", time.time() - t_start)
