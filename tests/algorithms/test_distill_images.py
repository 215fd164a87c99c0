"""Supervised image distillation: IDX reader, the batched classifier against torch.nn, a tiny distillation run on
synthetic separable data written as IDX files, the saved file and its errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from torch_distill.algorithms.distill_images import (
    DEFAULT_DATA_DIRS,
    ConvNet,
    DistillImagesConfig,
    DistillImagesProblem,
    IDXFileError,
    ImageFileError,
    class_means,
    load_distilled_images,
    load_idx_dataset,
    load_image_data,
    read_idx,
    run_distill_images,
    save_distilled_images,
)

FASHION = Path(DEFAULT_DATA_DIRS["fashion-mnist"])


def _idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return header + arr.tobytes()


def _write_split(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        data = _idx_bytes(arr)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)


def _separable(n: int, size: int, seed: int, signal: int = 150, noise: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Ten classes, each a brighter square at its own place on a noisy background."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, noise, size=(n, size, size)).astype(np.int64)
    cell = size // 4
    for i, c in enumerate(labels):
        y, x = divmod(int(c), 4)
        images[i, y * cell:(y + 1) * cell, x * cell:(x + 1) * cell] += signal
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def _write_dataset(folder: Path, size: int = 8) -> Path:
    """A small, noisy (not trivially separable) data set: gzipped train split, plain test split."""
    _write_split(folder, "train", *_separable(400, size, 0, signal=40, noise=120), gz=True)
    _write_split(folder, "t10k", *_separable(200, size, 1, signal=40, noise=120), gz=False)
    return folder


# ------------------------------------------------------------------------------------------------------ IDX reader
@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader_round_trip(tmp_path, gz):
    images, labels = _separable(30, 12, 3)
    _write_split(tmp_path, "train", images, labels, gz)
    x, y = load_idx_dataset(tmp_path, "train")
    assert x.dtype == torch.uint8 and tuple(x.shape) == (30, 12, 12)
    assert y.dtype == torch.int64 and tuple(y.shape) == (30,)
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels)


def test_idx_reader_errors(tmp_path):
    images, labels = _separable(20, 8, 0)
    good = _idx_bytes(images)
    bad_magic = tmp_path / "bad-magic"
    bad_magic.write_bytes(b"\x00\x00\x0d\x03" + good[4:])
    with pytest.raises(IDXFileError, match="bad-magic.*magic number 00000d03"):
        read_idx(bad_magic)
    trunc = tmp_path / "trunc"
    trunc.write_bytes(good[:-7])
    with pytest.raises(IDXFileError, match="trunc: truncated"):
        read_idx(trunc)
    short_header = tmp_path / "short"
    short_header.write_bytes(good[:9])
    with pytest.raises(IDXFileError, match="truncated header"):
        read_idx(short_header)
    trailing = tmp_path / "trailing"
    trailing.write_bytes(good + b"\x00")
    with pytest.raises(IDXFileError, match="trailing bytes"):
        read_idx(trailing)
    bad_gz = tmp_path / "bad.gz"
    bad_gz.write_bytes(gzip.compress(good)[:-20])
    with pytest.raises(IDXFileError, match="gzip"):
        read_idx(bad_gz)


def test_idx_dataset_errors(tmp_path):
    images, labels = _separable(20, 8, 0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_idx_dataset(tmp_path / "nowhere", "train")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(images))
    with pytest.raises(FileNotFoundError, match=r"missing train-labels-idx1-ubyte\(\.gz\)"):
        load_idx_dataset(tmp_path, "train")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(labels[:-1]))
    with pytest.raises(IDXFileError, match="20 images but .* 19 labels"):
        load_idx_dataset(tmp_path, "train")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.full(20, 12)))
    with pytest.raises(IDXFileError, match="label 12 outside 0..9"):
        load_idx_dataset(tmp_path, "train")
    with pytest.raises(ValueError, match="split='val'"):
        load_idx_dataset(tmp_path, "val")


@pytest.mark.skipif(not FASHION.is_dir(), reason="FashionMNIST (Debian dataset-fashion-mnist) is not installed")
def test_fashion_mnist_test_split():
    x, y = load_idx_dataset(FASHION, "test")
    assert tuple(x.shape) == (10000, 28, 28) and tuple(y.shape) == (10000,)
    assert torch.bincount(y).tolist() == [1000] * 10


# ------------------------------------------------------------------------------------------------------ classifier
def test_init_follows_the_reference_defaults():
    net = ConvNet()
    a = net.init(3, torch.Generator().manual_seed(0))
    b = net.init(3, torch.Generator().manual_seed(0))
    assert a.shape == (3, net.num_params) and net.num_params == 144 + 16 + 12544 * 128 + 128 + 1280 + 10
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    p = net.split(a)
    assert ((p["conv_b"] >= 0) & (p["conv_b"] < 0.05)).all() and ((p["dense1_b"] >= 0) & (p["dense1_b"] < 0.05)).all()
    assert (p["dense2_b"] == 0).all()
    w = p["dense1_w"]
    assert abs(float(w.std()) * (12544**0.5) - 1.0) < 0.02  # lecun normal: variance 1 / fan_in
    assert float(w.abs().max()) <= 2 * (1 / 12544) ** 0.5 / 0.87962566103423978 + 1e-6


@pytest.mark.parametrize("shape", [(1, 28, 28), (2, 9, 7)])
def test_forward_equals_torch_nn(shape):
    c, h, w = shape
    net = ConvNet(channels=c, height=h, width=w)
    gen = torch.Generator().manual_seed(1)
    params = net.init(3, gen) + 0.05 * torch.randn(3, net.num_params, generator=gen)
    imgs = torch.randn(3, 4, c, h, w, generator=gen)
    out = net.logits(params, imgs)
    shared = net.logits(params, imgs[0])
    for i in range(3):
        ref = net.reference_module(params[i])
        torch.testing.assert_close(out[i], ref(imgs[i]), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(shared[i], ref(imgs[0]), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(net.flat_from_module(ref), params[i])


def test_training_equals_torch_nn_sgd():
    """The hand-written backward + SGD equals autograd + torch.optim.SGD on the torch.nn module, member by member
    (the reference loss: cross-entropy / 10)."""
    net = ConvNet(height=10, width=10)
    gen = torch.Generator().manual_seed(2)
    params0 = net.init(2, gen)
    imgs = torch.randn(2, 10, 1, 10, 10, generator=gen)
    labels = torch.arange(10)
    steps, lr = 6, 0.5
    trained = net.train(params0, imgs, labels, steps, lr)
    for i in range(2):
        ref = net.reference_module(params0[i])
        opt = torch.optim.SGD(ref.parameters(), lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            (F.cross_entropy(ref(imgs[i]), labels) / 10).backward()
            opt.step()
        torch.testing.assert_close(trained[i], net.flat_from_module(ref), rtol=1e-4, atol=1e-5)
    # the loss went down
    before, _ = net.loss_and_accuracy(params0[:1], imgs[0], labels)
    after, _ = net.loss_and_accuracy(trained[:1], imgs[0], labels)
    assert float(after) < float(before)


def test_population_together_equals_each_alone():
    net = ConvNet(height=12, width=12)
    gen = torch.Generator().manual_seed(3)
    params0 = net.init(4, gen)
    imgs = torch.randn(4, 10, 1, 12, 12, generator=gen)
    labels = torch.arange(10)
    together = net.train(params0, imgs, labels, 5, 0.3)
    alone = torch.cat([net.train(params0[i:i + 1], imgs[i:i + 1], labels, 5, 0.3) for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)
    x, y = torch.randn(37, 1, 12, 12, generator=gen), torch.randint(10, (37,), generator=gen)
    loss, acc = net.loss_and_accuracy(together, x, y, chunk_elems=5 * 4 * 144 * 16)  # several image chunks
    for i in range(4):
        logits = net.reference_module(together[i])(x)
        torch.testing.assert_close(loss[i], F.cross_entropy(logits, y) / 10, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(acc[i], (logits.argmax(-1) == y).float().mean())


def test_class_means():
    x = torch.arange(12.0).view(6, 1, 1, 2)
    y = torch.tensor([0, 1, 0, 1, 2, 2])
    m = class_means(x, y, classes=3)
    torch.testing.assert_close(m[0, 0, 0], (x[0, 0, 0] + x[2, 0, 0]) / 2)
    assert m.shape == (3, 1, 1, 2)


# ---------------------------------------------------------------------------------------------------- config, run
def test_config_presets_and_validation():
    cpu = DistillImagesConfig()
    assert (cpu.popsize, cpu.inits, cpu.sgd_steps, cpu.fitness_subset) == (32, 1, 50, 1000)
    ref = DistillImagesConfig(preset="reference")
    assert (ref.popsize, ref.generations, ref.inits, ref.sgd_steps, ref.sgd_lr, ref.fitness_subset) == (
        512, 1000, 2, 1000, 0.1, 0)
    kw = ref.strategy_kwargs()
    assert kw["maximize"] is False and kw["sigma_init"] == 0.02 and kw["lr"] == 0.01 and kw["beta1"] == 0.99
    assert (kw["sigma_decay"], kw["sigma_limit"], kw["lr_decay"], kw["lr_limit"]) == (0.999, 0.001, 0.999, 0.001)
    assert DistillImagesConfig(popsize=64).popsize == 64
    with pytest.raises(ValueError, match="popsize=33"):
        DistillImagesConfig(popsize=33).validate()
    with pytest.raises(ValueError, match="sgd_steps=0"):
        DistillImagesConfig(sgd_steps=0).validate()
    with pytest.raises(ValueError, match="fitness_subset=-1"):
        DistillImagesConfig(fitness_subset=-1).validate()
    with pytest.raises(ValueError, match="data='mnist'.*--data-dir"):
        DistillImagesConfig(data="mnist").validate()


def test_tiny_distillation_run_improves_fitness_and_saves(tmp_path):
    data = _write_dataset(tmp_path / "data")
    cfg = DistillImagesConfig(data="mnist", data_dir=str(data), popsize=64, generations=8, sigma=0.05, es_lr=0.02,
                              inits=2, sgd_steps=8, sgd_lr=0.5, fitness_subset=300, eval_subset=100, eval_every=4,
                              final_seeds=2, final_steps=8, final_lr=0.5, out=str(tmp_path / "runs"), name="tiny")
    summary = run_distill_images(cfg)
    run = tmp_path / "runs" / "tiny"
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == list(range(1, 9))
    images, labels, meta = load_distilled_images(run / "images.safetensors")
    assert images.shape == (10, 1, 8, 8) and images.dtype == torch.float32
    assert labels.tolist() == list(range(10))
    assert set(meta["normalization"]) >= {"mean", "std"} and meta["preset"] == "cpu" and meta["data"] == "mnist"
    assert (run / "images.png").stat().st_size > 1000
    ev = summary["test_eval"]["8 SGD steps lr 0.5"]
    assert set(ev) == {"distilled", "class means", "random real image per class"}
    # the train loss went down: the distilled images vs generation 0's mean (the class means), paired on the same
    # fresh classifier inits and training subsets
    problem = DistillImagesProblem(cfg, load_image_data("mnist", str(data)))
    pair = torch.stack([problem.initial_mean(), images.reshape(-1)])
    loss = torch.stack([problem.fitness(pair, 10**6 + i)[0] for i in range(4)]).mean(0)
    assert float(loss[1]) < float(loss[0]) - 5e-4, loss
    # resume extends the run
    more = DistillImagesConfig(generations=9)
    assert run_distill_images(more, resume=str(run), resume_overrides=["generations"])["generations"] == 9


def test_image_file_errors(tmp_path):
    with pytest.raises(ValueError, match="normalization"):
        save_distilled_images(tmp_path / "a.safetensors", torch.zeros(10, 1, 4, 4), torch.arange(10), {})
    path = tmp_path / "ok.safetensors"
    save_distilled_images(path, torch.zeros(10, 1, 4, 4), torch.arange(10), {"normalization": {"mean": 0, "std": 1}})
    images, labels, meta = load_distilled_images(path)
    assert meta["format"] == "torch_distill.image_dataset" and images.shape == (10, 1, 4, 4)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ImageFileError, match="bad.safetensors: not a safetensors file"):
        load_distilled_images(bad)
    with pytest.raises(FileNotFoundError):
        load_distilled_images(tmp_path / "missing.safetensors")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_cli_distill_images_bad_input(tmp_path, capsys):
    from torch_distill.cli import main

    assert main(["distill-images", "--data", "mnist", "--out", str(tmp_path)]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert main(["distill-images", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
