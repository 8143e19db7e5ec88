"""Value-by-value check of bdb's triggers against the reference benchmark's uint8 image semantics.

Recomputes each trigger the way the reference prepares poisoned images (uint8 arrays, numpy
float64 arithmetic, truncating astype(uint8), OpenCV for FTrojan's colour space, Pillow for
resizing) and prints the largest difference in grey levels from bdb's own implementation.

Needs OpenCV, which bdb does not depend on:
    pip install --target /tmp/cv2lib opencv-python-headless
    python benchmarks/check_reference_semantics.py /tmp/cv2lib
"""
import sys

if len(sys.argv) > 1:
    sys.path.append(sys.argv[1])
import cv2
import numpy as np
import torch

from bdcore.lib.frequency import rgb_to_ycrcb_u8, spectral_trigger, ycrcb_to_rgb_u8
from bdcore.data.images import quantize
rng = np.random.default_rng(0)
img = rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
ref = np.stack([cv2.cvtColor(a, cv2.COLOR_RGB2YCrCb) for a in img])
ours = rgb_to_ycrcb_u8(torch.from_numpy(img).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
print("RGB->YCrCb max diff", np.abs(ref.astype(int) - ours).max(), "mismatch share", (ref != ours).mean())
back_ref = np.stack([cv2.cvtColor(a, cv2.COLOR_YCrCb2RGB) for a in img])
back = ycrcb_to_rgb_u8(torch.from_numpy(img).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
print("YCrCb->RGB max diff", np.abs(back_ref.astype(int) - back).max(), "mismatch share", (back_ref != back).mean())
# the reference FTrojan pipeline, step by step, with OpenCV: RGB->YCrCb (uint8), float DCT per 32x32 block of
# channels 1, 2, +30 at (15,15),(31,31), inverse DCT, astype(uint8) (clipped here: the wrap-around is the
# reference's documented bug), YCrCb->RGB
def reference(a):
    y = cv2.cvtColor(a, cv2.COLOR_RGB2YCrCb).astype(np.float64)
    for ch in (1, 2):
        d = cv2.dct(y[:, :, ch])
        d[15, 15] += 30; d[31, 31] += 30
        y[:, :, ch] = cv2.idct(d)
    y = np.clip(y, 0, 255).astype(np.uint8)
    return cv2.cvtColor(y, cv2.COLOR_YCrCb2RGB)
exp = np.stack([reference(a) for a in img]).astype(int)
x = torch.from_numpy(img).permute(0, 3, 1, 2).float() / 255
got = (spectral_trigger(x, 30, ((15, 15), (31, 31)), 32, (1, 2), "ycrcb") * 255).round().permute(0, 2, 3, 1).numpy().astype(int)
diff = np.abs(exp - got)
print("FTrojan ycrcb vs OpenCV pipeline: max", diff.max(), "share > 0", (diff > 0).mean(), "share > 1", (diff > 1).mean())
old = (torch.clamp(spectral_trigger(x, 30, ((15, 15), (31, 31)), 32, (1, 2), "yuv"), 0, 1) * 255).floor().permute(0, 2, 3, 1).numpy().astype(int)
d2 = np.abs(exp - old)
print("previous float-YUV path vs OpenCV pipeline: max", d2.max(), "share > 1", (d2 > 1).mean())

# Blended: (1 - a) * img + a * trigger in float64 on uint8 values, astype(uint8)
trig = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
exp = ((1 - 0.2) * img.astype(np.float64) + 0.2 * trig.astype(np.float64)).astype(np.uint8).astype(int)
t = torch.from_numpy(trig).permute(2, 0, 1).float() / 255
got = (quantize((1 - 0.2) * x + 0.2 * t) * 255).round().permute(0, 2, 3, 1).numpy().astype(int)
print("Blended alpha 0.2 vs reference: max", np.abs(exp - got).max(), "share > 0", (exp != got).mean())
# SIG: a float32 pattern added to the uint8 image in float64, clipped, astype(uint8)
j = np.arange(32)
pattern = (40 * np.sin(2 * np.pi * j * 6 / 32)).astype(np.float32)
exp = np.clip(img.astype(np.float64) + pattern[None, None, :, None], 0, 255).astype(np.uint8).astype(int)
from bdb_attack_sig.attack import sig_trigger  # noqa: E402

got = (quantize(sig_trigger(x, 40 / 255, 6)) * 255).round().permute(0, 2, 3, 1).numpy().astype(int)
print("SIG delta 40 f 6 vs reference: max", np.abs(exp - got).max(), "share > 0", (exp != got).mean())
