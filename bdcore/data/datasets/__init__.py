"""The real datasets: loaders that read the official files under a data root and verify them.

One module per source format (`cifar`, `mnist`, `gtsrb`, `tiny_imagenet`, `imagefolder`), plus
`files` (finding files, one-line errors) and `cache` (the decoded uint8 cache keyed by the source
files' fingerprint). Loaders are registered by `bdcore.builtin.plugin` through the dataset hook;
nothing here downloads anything.
"""
