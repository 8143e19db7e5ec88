"""Models and training (layer 2 of 7): architectures, model surgery, the one trainer, the runtime.

The built-in architectures (`models`, `backbones`), layer access and surgery shared by defenses
(`surgery`: taps, channel masks, BN helpers), the shared trainer and `predict` (`trainer`), and the
process runtime (`runtime`: seeds, threads, device choice). May import bdcore.errors,
bdcore.config and bdcore.data.
"""
