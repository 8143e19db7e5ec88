"""Method building blocks (layer 5 of 7): pieces several attack or defense plugins share.

Trigger reverse engineering and robust statistics (`reverse`), frequency transforms, contrastive
and semi-supervised training, transformation sensitivity, loss-guided isolation, sharpness-aware
and adversarial training, surrogate models for attacks, stealth metrics (PSNR, SSIM). A block
exists here only once two plugins use it. May import every layer below (errors, config, data, nn,
api, runs); nothing about running a benchmark.
"""
