#!/usr/bin/env python3
"""Writes the seed corpora Fuzz/corpus/TARGET/seed-* (run from the repository root; needs numpy, scipy,
Pillow and ../shared/data/mnist_m/mnist_m.tar.gz; the trainer seeds copy the header of a small-network
trainer.safetensors found under /tmp or ../results, and are skipped without one).

Seeds are small genuine files or cut from genuine ones: the first samples of data/mnist, two images of
data/svhn-sample, the headers of data/pretrained/*/model.safetensors, two MNIST-M PNGs and label lines.
Crash inputs are added by hand as crash-* files, coverage inputs as cov-* by FUZZ_MERGE=1 scripts/fuzz.sh;
this script never removes files.
"""
import gzip
import io
import json
import os
import struct
import sys
import tarfile

import numpy as np
import scipy.io
from PIL import Image

ROOT = os.getcwd()
CORPUS = os.path.join(ROOT, "Fuzz", "corpus")
MNIST_M = os.path.join(ROOT, "..", "shared", "data", "mnist_m", "mnist_m.tar.gz")


def put(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


# ---- idx: the first samples of the official t10k files, header count rewritten ----
def idx():
    labels = gzip.open("data/mnist/t10k-labels-idx1-ubyte.gz").read()
    images = gzip.open("data/mnist/t10k-images-idx3-ubyte.gz").read()
    l8 = labels[:4] + struct.pack(">I", 8) + labels[8:16]
    i2 = images[:4] + struct.pack(">I", 2) + images[8:16] + images[16:16 + 2 * 784]
    put("idx", "labels-8.idx", l8)
    put("idx", "labels-8.idx.gz", gz(l8))
    put("idx", "images-2.idx", i2)
    put("idx", "images-2.idx.gz", gz(i2))
    put("idx", "labels-t10k-head.idx", labels[:64])  # header promises 10000 labels: refused


# ---- mat: two SVHN images, plain and compressed, the sample's first 4 KiB, and other classes ----
def mat():
    sample = "data/svhn-sample/train_32x32.mat"
    m = scipy.io.loadmat(sample)
    x = np.ascontiguousarray(m["X"][:, :, :, :2])
    y = m["y"][:2].astype(np.float64)
    for compressed in (False, True):
        buf = io.BytesIO()
        scipy.io.savemat(buf, {"X": x, "y": y}, do_compression=compressed)
        put("mat", "svhn-2-%s.mat" % ("zlib" if compressed else "plain"), buf.getvalue())
    put("mat", "svhn-sample-head.mat", open(sample, "rb").read()[:4096])
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"a": np.arange(6, dtype=np.int16).reshape(2, 3), "b": np.float32([[1.5]]),
                           "s": "text", "c": np.array([[1, 2]], dtype=np.uint64)}, do_compression=False)
    put("mat", "types.mat", buf.getvalue())


# ---- tar and image: two MNIST-M training PNGs and three label lines ----
def mnistm_members():
    wanted = {"mnist_m/mnist_m_train/00000000.png", "mnist_m/mnist_m_train/00000001.png",
              "mnist_m/mnist_m_train_labels.txt"}
    found = {}
    if not os.path.exists(MNIST_M):
        sys.exit("needs %s" % MNIST_M)
    with tarfile.open(MNIST_M, "r|gz") as archive:
        for member in archive:
            if member.name in wanted:
                data = archive.extractfile(member).read()
                found[member.name] = data[:45] if member.name.endswith(".txt") else data
                if len(found) == len(wanted):
                    break
    return found


def tar(members):
    def archive(fmt, names=None):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
            for d in ("mnist_m/", "mnist_m/mnist_m_train/"):
                info = tarfile.TarInfo(d.rstrip("/"))
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            for name, data in sorted(members.items()):
                info = tarfile.TarInfo((names or {}).get(name, name))
                info.size = len(data)
                info.mtime = 1420070400
                t.addfile(info, io.BytesIO(data))
        return buf.getvalue()
    plain = archive(tarfile.GNU_FORMAT)
    put("tar", "mnistm-2.tar", plain)
    put("tar", "mnistm-2.tar.gz", gz(plain))
    deep = "mnist_m/" + "d" * 120 + "/mnist_m_train/00000000.png"
    put("tar", "longname.tar", archive(tarfile.GNU_FORMAT, {"mnist_m/mnist_m_train/00000000.png": deep}))
    put("tar", "ustar-prefix.tar", archive(tarfile.USTAR_FORMAT, {"mnist_m/mnist_m_train/00000000.png": deep}))


def image(members):
    put("image", "mnistm-00000000.png", members["mnist_m/mnist_m_train/00000000.png"])
    rgb = Image.open(io.BytesIO(members["mnist_m/mnist_m_train/00000001.png"])).convert("RGB")
    small = rgb.resize((8, 8))

    def save(img, fmt, **kw):
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        return buf.getvalue()
    put("image", "gray-8x8.png", save(small.convert("L"), "PNG"))
    put("image", "palette-8x8.png", save(small.convert("P"), "PNG"))
    put("image", "rgba-8x8.png", save(small.convert("RGBA"), "PNG"))
    arr = (np.asarray(small.convert("L"), dtype=np.uint16) * 257)
    put("image", "gray16-8x8.png", save(Image.fromarray(arr), "PNG"))
    put("image", "rgb-32x32.jpg", save(rgb, "JPEG", quality=80))
    put("image", "progressive-8x8.jpg", save(small, "JPEG", progressive=True))
    put("image", "gray-8x8.jpg", save(small.convert("L"), "JPEG"))
    put("image", "cmyk-8x8.jpg", save(small.convert("CMYK"), "JPEG"))


# ---- safetensors: small files written as the project writes them (sorted metadata, packed header) ----
def safetensors_bytes(tensors, metadata):
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = dict(sorted(metadata.items()))
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors)


def safetensors():
    f32 = np.float32([0.5, -1.0, 2.0, 0.0, 1e-3, 3.0]).tobytes()
    put("safetensors", "three.safetensors", safetensors_bytes(
        [("w", "F32", [2, 3], f32), ("n", "I64", [], struct.pack("<q", 7)), ("u", "U8", [2], b"\x01\x02")],
        {"format": "pt", "note": "fuzz seed"}))
    put("safetensors", "empty.safetensors", safetensors_bytes([], {}))
    model = open("data/pretrained/small-mnist-mnist_m/model.safetensors", "rb").read()
    put("safetensors", "small-model-head.safetensors", model[:4096])  # truncated genuine file


# ---- checkpoint: genuine headers (+ NUL + fill pattern), data synthesized by the target ----
def header_of(path):
    data = open(path, "rb").read(1 << 20)
    n = struct.unpack("<Q", data[:8])[0]
    return data[8:8 + n]


def find_trainer():
    for base in ("/tmp", os.path.join(ROOT, "..", "results")):
        for dirpath, _, files in os.walk(base):
            if "trainer.safetensors" in files:
                path = os.path.join(dirpath, "trainer.safetensors")
                header = json.loads(header_of(path))
                if json.loads(header["__metadata__"]["config"])["arch"] == "small":
                    return path
    return None


def checkpoint():
    small = header_of("data/pretrained/small-mnist-mnist_m/model.safetensors")
    put("checkpoint", "small-model.json", small)
    put("checkpoint", "small-model-halves.json", small.rstrip() + b"\0" + struct.pack("<f", 0.5))
    put("checkpoint", "small-bn-model.json", header_of("data/pretrained/small-bn-mnist-mnist_m/model.safetensors"))
    trainer = find_trainer()
    if trainer is None:
        print("no small trainer.safetensors found: trainer seeds skipped")
        return
    sgd = header_of(trainer)
    put("checkpoint", "trainer-sgd.json", sgd)
    # The same state as Adam keeps it: exp_avg and exp_avg_sq per parameter, config optimizer adam.
    h = json.loads(sgd)
    meta = h.pop("__metadata__")
    config = json.loads(meta["config"])
    config["optimizer"] = "adam"
    meta["config"] = json.dumps(config, indent=2, sort_keys=True)
    out, offset = {"__metadata__": meta}, 0
    entries = sorted(h.items(), key=lambda kv: kv[1]["data_offsets"][0])
    for prefix in ("exp_avg", "exp_avg_sq"):
        for name, e in entries:
            if name.startswith("momentum."):
                size = e["data_offsets"][1] - e["data_offsets"][0]
                out[prefix + name[len("momentum"):]] = dict(e, data_offsets=[offset, offset + size])
                offset += size
    for name, e in entries:
        if not name.startswith("momentum."):
            size = e["data_offsets"][1] - e["data_offsets"][0]
            out[name] = dict(e, data_offsets=[offset, offset + size])
            offset += size
    put("checkpoint", "trainer-adam.json", json.dumps(out, separators=(",", ":")).encode())
    put("config", "trainer-config.json", json.loads(sgd)["__metadata__"]["config"].encode())


def config():
    put("config", "empty.json", b"{}")
    put("config", "adam.json", b'{"optimizer":"adam","lr":0.001,"clipGradNorm":5,"steps":100,"limitSource":64}')


def mnistm():
    lines = b"00000000.png 5\n00000001.png 0\n00000002.png 4\n"
    put("mnistm", "labels.txt", lines)
    put("mnistm", "labels-crlf.txt", lines.replace(b"\n", b"\r\n"))


if __name__ == "__main__":
    members = mnistm_members()
    idx()
    mat()
    tar(members)
    image(members)
    safetensors()
    checkpoint()
    config()
    mnistm()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(CORPUS) for f in fs)
    print("corpus: %d bytes" % total)
