"""The real datasets: tiny files in each official format, loaded through the real loaders."""

import gzip
import os
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from bdcore.data.datasets import cifar, gtsrb, imagefolder, mnist, tiny_imagenet
from bdcore.errors import BdbError
from bdcore.api.resolve import load_dataset


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- CIFAR


def _cifar_file(path, n, label_bytes, rng):
    labels = rng.integers(0, 10 if label_bytes == 1 else 100, size=(n, label_bytes), dtype=np.uint8)
    if label_bytes == 2:
        labels[:, 0] = labels[:, 1] // 5  # coarse label, ignored
    pix = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    path.write_bytes(np.concatenate([labels, pix], 1).tobytes())
    return labels[:, -1].astype(np.int64), pix.reshape(n, 3, 32, 32)


def test_cifar100_reads_fine_labels_and_planes(tmp_path, monkeypatch):
    monkeypatch.setitem(cifar.RECORDS, "train.bin", 6)
    monkeypatch.setitem(cifar.RECORDS, "test.bin", 4)
    d = tmp_path / "cifar-100-binary"
    d.mkdir()
    ytr, xtr = _cifar_file(d / "train.bin", 6, 2, _rng(0))
    yte, xte = _cifar_file(d / "test.bin", 4, 2, _rng(1))
    (d / "fine_label_names.txt").write_text("\n".join(f"c{i}" for i in range(100)) + "\n")
    ds = cifar.load_cifar100(str(tmp_path))  # the parent of the extracted folder works too
    assert ds.x_train.shape == (6, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    assert torch.equal(ds.y_train, torch.from_numpy(ytr)) and torch.equal(ds.y_test, torch.from_numpy(yte))
    assert torch.equal(ds.x_train, torch.from_numpy(xtr)) and ds.classes[7] == "c7" and ds.num_classes == 100

    (d / "test.bin").write_bytes((d / "test.bin").read_bytes()[:-100])
    with pytest.raises(BdbError, match=r"test.bin has 12196 bytes, expected 12296 .*truncated"):
        cifar.load_cifar100(str(d))
    (d / "test.bin").unlink()
    with pytest.raises(BdbError) as exc:
        cifar.load_cifar100(str(d))
    assert "missing" in str(exc.value) and str(d / "test.bin") in str(exc.value) and "\n" not in str(exc.value)


def test_cifar10_binary(tmp_path, monkeypatch):
    for n in list(cifar.RECORDS):
        monkeypatch.setitem(cifar.RECORDS, n, 3)
    labels = []
    for i, n in enumerate([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]):
        labels.append(_cifar_file(tmp_path / n, 3, 1, _rng(i))[0])
    ds = load_dataset("cifar10", str(tmp_path))
    assert ds.x_train.shape == (15, 3, 32, 32) and torch.equal(ds.y_test, torch.from_numpy(labels[-1]))


# ---------------------------------------------------------------- MNIST


def _idx(path, magic, arr):
    head = struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in arr.shape)
    data = head + arr.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def _mnist_files(root, gz=True, n=(12, 5)):
    ext = ".gz" if gz else ""
    out = {}
    for split, k in zip(("train", "t10k"), n):
        x = _rng(k).integers(0, 256, size=(k, 28, 28))
        y = np.arange(k) % 10
        _idx(root / f"{split}-images-idx3-ubyte{ext}", 0x803, x)
        _idx(root / f"{split}-labels-idx1-ubyte{ext}", 0x801, y)
        out[split] = (x, y)
    return out


def test_mnist_idx_gz_is_cached_and_reused(tmp_path, monkeypatch):
    ref = _mnist_files(tmp_path)
    ds = mnist.load_mnist(str(tmp_path))
    assert ds.x_train.shape == (12, 1, 28, 28) and ds.x_test.shape == (5, 1, 28, 28) and not ds.hflip
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(ref["train"][0].astype(np.uint8)))
    assert torch.equal(ds.y_test, torch.arange(5))
    assert ds.info["cache"] and os.path.isfile(ds.info["cache"])

    def boom(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(mnist, "_split", boom)
    again = mnist.load_mnist(str(tmp_path))
    assert torch.equal(again.x_train, ds.x_train) and torch.equal(again.y_train, ds.y_train)
    # a changed source file changes the fingerprint: decoded again
    f = tmp_path / "t10k-labels-idx1-ubyte.gz"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        mnist.load_mnist(str(tmp_path))


@pytest.mark.parametrize("damage", ["truncated", "byte-flipped", "garbage", "empty"])
def test_a_damaged_cache_file_is_decoded_again_and_rewritten(damage, tmp_path, monkeypatch):
    ref = _mnist_files(tmp_path)
    first = mnist.load_mnist(str(tmp_path))
    cache = first.info["cache"]
    good = open(cache, "rb").read()
    bad = {"truncated": good[: len(good) // 2], "empty": b"", "garbage": bytes(len(good)),
           # one pixel of the last test image: the header still parses and every shape matches
           "byte-flipped": good[:-3] + bytes([good[-3] ^ 0xFF]) + good[-2:]}[damage]
    with open(cache, "wb") as fh:
        fh.write(bad)
    decodes = []
    real = mnist._split
    monkeypatch.setattr(mnist, "_split", lambda *a: decodes.append(a) or real(*a))
    again = mnist.load_mnist(str(tmp_path))
    assert len(decodes) == 2, "the damaged cache file was trusted"
    for k in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(again, k), getattr(first, k)), k
    assert torch.equal(again.x_test[:, 0], torch.from_numpy(ref["t10k"][0].astype(np.uint8)))
    assert again.info["cache"] == cache and open(cache, "rb").read() == good  # rewritten whole
    decodes.clear()
    mnist.load_mnist(str(tmp_path))
    assert not decodes  # and read from the cache again


def test_an_unwritable_cache_folder_warns_and_still_loads(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    ref = _mnist_files(tmp_path / "data")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go: unwritable even for root")
    monkeypatch.setenv("BDB_DATA_CACHE", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="could not write the decoded cache"):
        ds = mnist.load_mnist(str(tmp_path / "data"))
    assert ds.info["cache"] is None
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(ref["train"][0].astype(np.uint8)))
    assert torch.equal(ds.y_test, torch.arange(5))
    assert not (tmp_path / "data" / ".bdb-cache").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "not-a-folder"]  # no stray temporary file


def test_mnist_errors(tmp_path):
    _mnist_files(tmp_path, gz=False)
    assert mnist.load_mnist(str(tmp_path)).x_train.shape == (12, 1, 28, 28)
    labels = tmp_path / "train-labels-idx1-ubyte"
    raw = labels.read_bytes()
    labels.write_bytes(struct.pack(">I", 0x803) + raw[4:])
    with pytest.raises(BdbError, match="magic number 0x00000803, expected 0x00000801"):
        mnist.load_mnist(str(tmp_path))
    labels.write_bytes(raw[:-3])
    with pytest.raises(BdbError, match="header says .*truncated"):
        mnist.load_mnist(str(tmp_path))
    labels.write_bytes(raw[:5])
    with pytest.raises(BdbError, match="shorter than its header"):
        mnist.load_mnist(str(tmp_path))
    labels.unlink()
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(BdbError, match="corrupt or truncated"):
        mnist.load_mnist(str(tmp_path))
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(BdbError, match=r"missing .*train-labels-idx1-ubyte\(\.gz\); download"):
        mnist.load_mnist(str(tmp_path))


# ---------------------------------------------------------------- GTSRB


def _ppm(path, w, h, seed):
    arr = _rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format="PPM")
    return arr


HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"


def _gtsrb(root):
    first = None
    for c in range(43):
        d = root / "GTSRB" / "Final_Training" / "Images" / f"{c:05d}"
        d.mkdir(parents=True)
        rows = []
        for i in range(2):
            w, h = 30 + i, 33 + c % 3
            arr = _ppm(d / f"00000_{i:05d}.ppm", w, h, c * 10 + i)
            first = first if first is not None else arr
            rows.append(f"00000_{i:05d}.ppm;{w};{h};5;5;{w - 5};{h - 5};{c}\n")
        (d / f"GT-{c:05d}.csv").write_text(HEADER + "".join(rows))
    t = root / "GTSRB" / "Final_Test" / "Images"
    t.mkdir(parents=True)
    rows = []
    for i in range(5):
        _ppm(t / f"{i:05d}.ppm", 40, 45, 1000 + i)
        rows.append(f"{i:05d}.ppm;40;45;5;5;35;40;{(i * 7) % 43}\n")
    (t / "GT-final_test.csv").write_text(HEADER + "".join(rows))
    return first


def test_gtsrb_official_layout_resized_and_cached(tmp_path, monkeypatch):
    first = _gtsrb(tmp_path)
    ds = gtsrb.load_gtsrb(str(tmp_path))
    assert ds.x_train.shape == (86, 3, 32, 32) and ds.x_test.shape == (5, 3, 32, 32) and ds.num_classes == 43
    assert ds.y_train.tolist()[:4] == [0, 0, 1, 1] and ds.y_test.tolist() == [0, 7, 14, 21, 28]
    want = np.asarray(Image.fromarray(first).resize((32, 32), Image.BILINEAR)).transpose(2, 0, 1)
    assert torch.equal(ds.x_train[0], torch.from_numpy(want.copy()))
    monkeypatch.setattr(gtsrb, "decode_images", lambda *a, **k: pytest.fail("decoded again"))
    assert torch.equal(gtsrb.load_gtsrb(str(tmp_path)).x_train, ds.x_train)


def test_gtsrb_errors(tmp_path):
    _gtsrb(tmp_path)
    base = tmp_path / "GTSRB"
    img = base / "Final_Test" / "Images" / "00003.ppm"
    img.write_bytes(img.read_bytes()[:200])
    with pytest.raises(BdbError, match=r"00003.ppm is not a readable image or is truncated"):
        gtsrb.load_gtsrb(str(tmp_path))
    _ppm(img, 41, 45, 0)
    with pytest.raises(BdbError, match=r"00003.ppm is 41x45, its annotation says 40x45"):
        gtsrb.load_gtsrb(str(tmp_path))
    (base / "Final_Test" / "Images" / "GT-final_test.csv").rename(base / "Final_Test" / "Images" / "GT-final_test.test.csv")
    with pytest.raises(BdbError) as exc:
        gtsrb.load_gtsrb(str(tmp_path))
    msg = str(exc.value)
    assert "GT-final_test.csv" in msg and "GTSRB_Final_Test_GT.zip" in msg and str(base / "Final_Test" / "Images") in msg
    (base / "Final_Training" / "Images" / "00042" / "GT-00042.csv").unlink()
    with pytest.raises(BdbError, match=r"missing .*GT-00042.csv; extract GTSRB_Final_Training_Images.zip"):
        gtsrb.load_gtsrb(str(tmp_path))


# ---------------------------------------------------------------- Tiny-ImageNet


def _jpeg(path, seed, mode="RGB"):
    arr = _rng(seed).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    im = Image.fromarray(arr).convert(mode)
    im.save(path, format="JPEG", quality=95)
    return np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1).copy()


def test_tiny_imagenet_layout(tmp_path, monkeypatch):
    base = tmp_path / "tiny-imagenet-200"
    wnids = ["n02", "n01", "n03"]  # wnids.txt order is the label order, not sorted
    (base / "val" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    decoded = {}
    for k, w in enumerate(wnids):
        d = base / "train" / w / "images"
        d.mkdir(parents=True)
        for i in (0, 1, 10, 2):
            decoded[(w, i)] = _jpeg(d / f"{w}_{i}.JPEG", 10 * k + i, mode="L" if i == 1 else "RGB")
    lines = []
    for i in range(4):
        _jpeg(base / "val" / "images" / f"val_{i}.JPEG", 100 + i)
        lines.append(f"val_{i}.JPEG\t{wnids[i % 3]}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    ds = tiny_imagenet.load_tiny_imagenet(str(tmp_path))
    assert ds.x_train.shape == (12, 3, 64, 64) and ds.x_test.shape == (4, 3, 64, 64) and ds.classes == wnids
    assert ds.y_train.tolist() == [0] * 4 + [1] * 4 + [2] * 4 and ds.y_test.tolist() == [0, 1, 2, 0]
    assert torch.equal(ds.x_train[3], torch.from_numpy(decoded[("n02", 10)]))  # natural order: 0, 1, 2, 10
    assert torch.equal(ds.x_train[1], torch.from_numpy(decoded[("n02", 1)]))  # grey JPEG as RGB
    monkeypatch.setattr(tiny_imagenet, "decode_images", lambda *a, **k: pytest.fail("decoded again"))
    assert torch.equal(tiny_imagenet.load_tiny_imagenet(str(base)).x_test, ds.x_test)

    (base / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\t0\t0\t1\t1\n")
    with pytest.raises(BdbError, match="line 1 is not"):
        tiny_imagenet.load_tiny_imagenet(str(base))
    (base / "val" / "val_annotations.txt").unlink()
    with pytest.raises(BdbError, match=r"missing .*val_annotations.txt; extract tiny-imagenet-200.zip"):
        tiny_imagenet.load_tiny_imagenet(str(base))


# ---------------------------------------------------------------- image folders


def _png(path, seed, size=(20, 24)):
    Image.fromarray(_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(path)


def test_imagefolder_given_split_and_family_name(tmp_path, monkeypatch):
    for split, n in (("train", 3), ("test", 2)):
        for c in ("cat", "dog"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(n):
                _png(tmp_path / split / c / f"{i}.png", hash((split, c, i)) % 1000)
    ds = load_dataset("imagefolder:16", str(tmp_path))
    assert ds.name == "imagefolder:16" and ds.classes == ["cat", "dog"] and ds.hflip
    assert ds.x_train.shape == (6, 3, 16, 16) and ds.x_test.shape == (4, 3, 16, 16)
    assert ds.y_train.tolist() == [0, 0, 0, 1, 1, 1] and ds.info["split"] == "given"
    want = ds.x_train.double().div(255).mean((0, 2, 3))
    assert np.allclose(ds.mean, want.numpy())
    grey = load_dataset("imagefolder:8:gray", str(tmp_path))
    assert grey.x_train.shape == (6, 1, 8, 8) and len(grey.mean) == 1
    monkeypatch.setattr(imagefolder, "decode_images", lambda *a, **k: pytest.fail("decoded again"))
    assert torch.equal(imagefolder.load_imagefolder("16", str(tmp_path)).x_train, ds.x_train)
    assert imagefolder.load_imagefolder("8:gray", str(tmp_path)).x_train.shape == (6, 1, 8, 8)
    for bad in ("", "x", "16:cmyk", "2"):
        with pytest.raises(BdbError, match="name the image size"):
            imagefolder.load_imagefolder(bad, str(tmp_path))


def test_imagefolder_single_folder_split_by_seed(tmp_path):
    for c in ("a", "b", "c"):
        (tmp_path / c).mkdir()
        for i in range(10):
            _png(tmp_path / c / f"{i}.jpg", i)
    (tmp_path / "c" / "notes.txt").write_text("not an image")
    ds = imagefolder.load_imagefolder("12", str(tmp_path))
    assert ds.x_train.shape == (24, 3, 12, 12) and ds.x_test.shape == (6, 3, 12, 12)
    assert torch.equal(torch.bincount(ds.y_test), torch.tensor([2, 2, 2]))
    again = imagefolder.load_imagefolder("12", str(tmp_path))  # from the cache; .bdb-cache is not a class
    assert again.classes == ["a", "b", "c"] and torch.equal(again.y_test, ds.y_test)
    (tmp_path / "b" / "3.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(BdbError, match=r"3.jpg is not a readable image or is truncated"):
        imagefolder.load_imagefolder("12", str(tmp_path))


def test_missing_root_says_what_to_put_where(tmp_path):
    for name, needle in (("cifar100", "train.bin; extract cifar-100-binary.tar.gz"),
                         ("gtsrb", "Final_Training/Images; extract GTSRB_Final_Training_Images.zip"),
                         ("tiny-imagenet", "wnids.txt; extract tiny-imagenet-200.zip"),
                         ("mnist", "train-images-idx3-ubyte(.gz); download")):
        with pytest.raises(BdbError) as exc:
            load_dataset(name, str(tmp_path / "empty"))
        assert needle in str(exc.value) and "\n" not in str(exc.value), (name, str(exc.value))


# ---------------------------------------------------------------- bdb download


def _tar_of(folder, archive):
    import tarfile

    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname=folder.name)


def test_download_checks_md5_unpacks_and_loads(tmp_path, monkeypatch):
    import hashlib
    import shutil
    import urllib.error

    from bdcore.data.datasets import download as dl

    for n in list(cifar.RECORDS):
        monkeypatch.setitem(cifar.RECORDS, n, 3)
    src = tmp_path / "src" / "cifar-10-batches-bin"
    src.mkdir(parents=True)
    for i, n in enumerate([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]):
        _cifar_file(src / n, 3, 1, _rng(i))
    archive = tmp_path / "src" / "cifar-10-binary.tar.gz"
    _tar_of(src, archive)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    url = "https://example.invalid/cifar-10-binary.tar.gz"
    monkeypatch.setitem(dl.SOURCES, "cifar10", [dl.Source(url, md5, "cifar-10-batches-bin/test_batch.bin")])
    root = tmp_path / "data"

    def offline(u, dest, progress, timeout):
        raise urllib.error.URLError("no network")

    with pytest.raises(BdbError) as exc:  # offline: one line naming the file, where to put it, and its md5
        dl.download("cifar10", root, fetch=offline)
    msg = str(exc.value)
    assert "\n" not in msg and "cifar-10-binary.tar.gz" in msg and str(root) in msg and md5 in msg
    assert not any(root.iterdir())  # nothing half-written

    calls = []

    def fetch(u, dest, progress, timeout):  # the network, served from a local copy
        calls.append(u)
        shutil.copy(archive, dest)

    assert dl.download("cifar10", root, fetch=fetch) == ["cifar-10-binary.tar.gz: downloaded, md5 ok, unpacked"]
    ds = cifar.load_cifar10(str(root))
    assert ds.x_train.shape == (15, 3, 32, 32)
    assert dl.download("cifar10", root, fetch=fetch) == ["cifar-10-binary.tar.gz: in place"] and len(calls) == 1
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []  # no temporary folder left

    # a corrupt archive put by hand: refused and moved aside, never unpacked
    root2 = tmp_path / "data2"
    root2.mkdir()
    (root2 / "cifar-10-binary.tar.gz").write_bytes(archive.read_bytes()[:-10])
    with pytest.raises(BdbError, match=r"has md5 [0-9a-f]{32}, expected " + md5):
        dl.download("cifar10", root2, fetch=offline)
    assert (root2 / "cifar-10-binary.tar.gz.bad").is_file() and not (root2 / "cifar-10-batches-bin").exists()

    with pytest.raises(BdbError, match="no download for dataset 'mnist5k'"):
        dl.download("mnist5k", root)


def test_download_refuses_an_archive_escaping_the_root(tmp_path):
    import io
    import tarfile

    from bdcore.data.datasets import download as dl

    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(BdbError, match="outside"):
        dl.unpack(archive, root)
    assert not (tmp_path / "outside.txt").exists() and list(root.iterdir()) == []
