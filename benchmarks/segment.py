"""Benchmark: rcsa segmentation time per level slice vs a 3-D whole-body peer's compute.

Run from the repository root (after training, with nothing else running)::

    .venv/bin/python benchmarks/segment.py             # 2 threads, 3 repetitions
    .venv/bin/python benchmarks/segment.py --threads 1 --repeat 5

Rows:

1. **rcsa** ``rcsa.segment.segment`` with the shipped model on the abdomen-pelvis sample at
   its five reference levels (L3 k72, L4 k62, L5 k50, sij_lower k31, femoral_head_top k19),
   without and with left-right flip TTA (no confidence passes), and with the confidence
   passes that ``segment`` runs by default (original, mirrored and zoomed input in one batch):
   median seconds per level slice (model loading and checksum excluded, reported separately).
2. **peer** the same scan through a 3-D SegResNet configured as MONAI's
   ``wholeBody_ct_segmentation`` bundle (``configs/inference.json``: SegResNet
   spatial_dims 3, init_filters 32, blocks_down [1, 2, 2, 4], blocks_up [1, 1, 1], 105
   outputs, 3.0 mm low-resolution setting, SlidingWindowInferer roi 96^3, sw_batch_size 1,
   overlap 0.25, gaussian, replicate padding) with **random weights**: only its compute cost
   is measured, which is what a whole-body 3-D model pays before a single level can be read.
   The scan is already at 3.0 mm, so no resampling time is added to the peer.

The ratio peer / rcsa (all five levels, no TTA) is printed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CT = REPO / "sample_data" / "ct_abdomen_pelvis" / "ct.nii.gz"
LEVELS = {"L3": 72, "L4": 62, "L5": 50, "sij_lower": 31, "femoral_head_top": 19}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-peer", action="store_true")
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    from rcsa.io import load
    from rcsa.segment import load_model, segment

    ct = load(CT)
    t = time.perf_counter()
    model = load_model()
    t_load = time.perf_counter() - t
    rows = []
    for tta, conf, label in ((False, False, ""), (True, False, " + flip TTA"),
                             (False, True, " + confidence passes (default)")):
        segment(ct, {"L3": 72}, model=model, tta=tta, confidence=conf)  # warm-up
        times = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            segment(ct, LEVELS, model=model, tta=tta, confidence=conf)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        rows.append((f"rcsa 2.5-D BasicUNet{label}", med, med / len(LEVELS)))

    peer = None
    if not a.skip_peer:
        from monai.inferers.inferer import SlidingWindowInferer
        from monai.networks.nets.segresnet import SegResNet

        net = SegResNet(spatial_dims=3, in_channels=1, out_channels=105, init_filters=32,
                        blocks_down=(1, 2, 2, 4), blocks_up=(1, 1, 1), dropout_prob=0.2).eval()
        inferer = SlidingWindowInferer(roi_size=(96, 96, 96), sw_batch_size=1, overlap=0.25,
                                       padding_mode="replicate", mode="gaussian")
        x = torch.as_tensor(ct.hu())[None, None]
        x = (x - x.mean()) / x.std()
        with torch.no_grad():
            t = time.perf_counter()
            out = inferer(x, net)
            assert isinstance(out, torch.Tensor)
            out.argmax(1)
            peer = time.perf_counter() - t
        rows.append(("peer 3-D SegResNet (wholeBody bundle config, 3 mm)", peer, float("nan")))

    print(f"CPU: {platform.processor() or platform.machine()}, torch threads {a.threads}, "
          f"scan {ct.size_voxels} at {ct.spacing_mm.tolist()} mm; model load + sha256 "
          f"{t_load:.2f} s")
    print(f"{'method':55s} {'s (5 levels)':>12s} {'s / level':>10s}")
    for name, total, per in rows:
        print(f"{name:55s} {total:12.3f} {per:10.3f}")
    if peer is not None:
        print(f"ratio peer / rcsa (5 levels, no TTA): {peer / rows[0][1]:.1f}x")


if __name__ == "__main__":
    main()
