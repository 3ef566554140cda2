"""Tests of student_template/q3_simsiam.py and resnet_cifar.py on the reference solutions, on CPU."""
from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn


def tiny_cfg(ref, **changes):
    """A network small enough for a CPU test: the code paths of the real one, a fraction of the cost."""
    base = dict(epochs=2, batch_size=8, dim=32, pred_dim=8, width=4, max_steps_per_epoch=1)
    base.update(changes)
    return ref.q3_simsiam.SimSiamConfig(**base)


# --------------------------------------------------------------------------- ResNet-18


def test_resnet18_is_the_cifar_variant(ref):
    model = ref.resnet_cifar.resnet18(num_classes=10)
    assert isinstance(model.fc, nn.Linear) and model.fc.in_features == 512 and model.fc.out_features == 10
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert sum(isinstance(m, ref.resnet_cifar.BasicBlock) for m in model.modules()) == 8
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert 11_000_000 < sum(p.numel() for p in model.parameters()) < 11_300_000


@pytest.mark.parametrize("zero_init", [True, False])
def test_zero_init_residual_zeroes_the_last_bn_of_each_block(ref, zero_init):
    model = ref.resnet_cifar.resnet18(num_classes=10, zero_init_residual=zero_init, width=4)
    for block in (m for m in model.modules() if isinstance(m, ref.resnet_cifar.BasicBlock)):
        assert bool((block.bn2.weight == 0).all()) == zero_init
        assert bool((block.bn1.weight == 1).all())


def test_simsiam_builds_around_resnet18(ref):
    model = ref.q3_solution.SimSiam(ref.resnet_cifar.resnet18, dim=64, pred_dim=16)
    assert model.encoder.fc[6].in_features == 512 and model.encoder.fc[6].out_features == 64
    p1, p2, z1, z2 = model(torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32))
    assert p1.shape == p2.shape == z1.shape == z2.shape == (4, 64)
    assert model.loss(p1, p2, z1, z2).numel() == 1


# --------------------------------------------------------------------------- data


def write_cifar(folder, n: int = 3):
    """The six pickled batches of CIFAR-10's python version, with ``n`` images each."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": name.encode(), b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n).tolist(), b"filenames": [b"x.png"] * n}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        batches[name] = batch
    return batches


@pytest.mark.parametrize("nested", [True, False])
def test_load_cifar10_reads_the_python_batches(ref, tmp_path, nested):
    folder = tmp_path / "cifar-10-batches-py" if nested else tmp_path / "flat"
    batches = write_cifar(folder)
    data = ref.q3_samplers.load_cifar10(tmp_path if nested else folder)
    (train_x, train_y), (test_x, test_y) = data["train"], data["test"]
    assert train_x.shape == (15, 3, 32, 32) and train_x.dtype == torch.uint8
    assert test_x.shape == (3, 3, 32, 32) and train_y.shape == (15,) and train_y.dtype == torch.int64
    raw = batches["data_batch_1"][b"data"]
    assert int(train_x[0, 0, 0, 1]) == raw[0, 1]  # red plane first, row-major
    assert int(train_x[0, 1, 0, 0]) == raw[0, 1024]  # then green
    assert int(train_x[1, 2, 31, 31]) == raw[1, 3071]
    assert train_y[:3].tolist() == batches["data_batch_1"][b"labels"]
    assert test_y.tolist() == batches["test_batch"][b"labels"]


def test_load_cifar10_missing_files_say_where_to_get_them(ref, tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        ref.q3_samplers.load_cifar10(tmp_path)


# --------------------------------------------------------------------------- augmentation


def test_two_views_are_different_normalised_images(ref):
    torch.manual_seed(0)
    x = torch.rand(6, 3, 32, 32)
    v1, v2 = ref.q3_simsiam.two_views(x)
    assert v1.shape == v2.shape == x.shape
    assert bool(torch.isfinite(v1).all()) and not torch.allclose(v1, v2)


def test_augmentation_components(ref):
    q3 = ref.q3_simsiam
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32)
    same = q3.random_resized_crop_flip(x, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    flipped = q3.random_resized_crop_flip(x, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=1.0)
    torch.testing.assert_close(flipped, x.flip(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(q3.color_jitter(x, p=0.0), x, atol=1e-5, rtol=0)
    jittered = q3.color_jitter(x, p=1.0)
    assert not torch.allclose(jittered, x) and float(jittered.min()) >= 0 and float(jittered.max()) <= 1
    gray = q3.random_grayscale(x, p=1.0)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    torch.testing.assert_close(q3.hsv_to_rgb(q3.rgb_to_hsv(x)), x, atol=1e-5, rtol=0)
    crops = q3.random_resized_crop_flip(x)
    assert crops.shape == x.shape and not torch.allclose(crops, x)


# --------------------------------------------------------------------------- kNN monitor


def test_knn_predict_votes_by_similarity(ref):
    bank = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]), dim=1)
    labels = torch.tensor([0, 0, 1, 1])
    queries = torch.nn.functional.normalize(torch.tensor([[1.0, 0.05], [0.05, 1.0]]), dim=1)
    pred = ref.q3_simsiam.knn_predict(queries, bank, labels, num_classes=2, k=200, t=0.1)  # k > bank: clamped
    assert pred.tolist() == [0, 1]


def test_knn_accuracy_on_backbone_features(ref):
    q3 = ref.q3_simsiam
    torch.manual_seed(0)
    model = q3.build_model(tiny_cfg(ref))
    train, test = q3.synthetic_cifar(16, 1), q3.synthetic_cifar(4, 2)
    feats = q3.extract_features(model, train[0], torch.device("cpu"))
    assert feats.shape == (16, 32)  # 8 * width, before the projector
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(16))
    acc = q3.knn_accuracy(model, train, test, torch.device("cpu"), k=200, t=0.1)
    assert acc in {0.0, 25.0, 50.0, 75.0, 100.0}


# --------------------------------------------------------------------------- training


def test_optimizer_and_cosine_schedule(ref):
    q3 = ref.q3_simsiam
    cfg = tiny_cfg(ref, batch_size=512, epochs=10, fix_pred_lr=True)
    assert math.isclose(cfg.init_lr, 0.05 * 512 / 256)
    optimizer = q3.make_optimizer(q3.build_model(cfg), cfg)
    assert isinstance(optimizer, torch.optim.SGD)
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 1e-4 for g in optimizer.param_groups)
    assert math.isclose(q3.adjust_learning_rate(optimizer, cfg, 0), cfg.init_lr)
    assert math.isclose(q3.adjust_learning_rate(optimizer, cfg, 5), cfg.init_lr / 2)
    assert [g["lr"] for g in optimizer.param_groups] == [cfg.init_lr / 2, cfg.init_lr]  # predictor fixed


@pytest.mark.parametrize("stop_gradient,mlp_mode", [
    (True, None), (False, None), (True, "no_pred_mlp"), (True, "fixed_random_init")])
def test_training_step_for_each_ablation(ref, stop_gradient, mlp_mode):
    q3 = ref.q3_simsiam
    cfg = tiny_cfg(ref, stop_gradient=stop_gradient, mlp_mode=mlp_mode)
    torch.manual_seed(0)
    model = q3.build_model(cfg)
    assert model.stop_gradient is stop_gradient and model.MLP_mode == mlp_mode
    encoder_before = [p.detach().clone() for p in model.encoder.parameters()]
    predictor_before = [p.detach().clone() for p in model.predictor.parameters()]
    optimizer = q3.make_optimizer(model, cfg)
    loss, std = q3.train_epoch(model, q3.synthetic_cifar(16)[0], optimizer, cfg, torch.device("cpu"),
                               torch.Generator().manual_seed(0))
    assert -1.0 <= loss <= 1.0 and 0.0 < std < 1.0
    assert any(not torch.equal(b, p) for b, p in zip(encoder_before, model.encoder.parameters()))
    predictor_changed = any(not torch.equal(b, p) for b, p in zip(predictor_before, model.predictor.parameters()))
    assert predictor_changed == (mlp_mode is None)


def test_train_loop_reports_loss_and_knn_each_epoch(ref):
    q3 = ref.q3_simsiam
    cfg = tiny_cfg(ref)
    torch.manual_seed(0)
    logs = []
    history = q3.train(q3.build_model(cfg), {"train": q3.synthetic_cifar(16, 1), "test": q3.synthetic_cifar(4, 2)},
                       cfg, torch.device("cpu"), log=logs.append)
    assert [h["epoch"] for h in history] == [1, 2] and len(logs) == 2
    assert all(h["knn_acc"] is not None and math.isfinite(h["loss"]) for h in history)


def test_cli_smoke_run_writes_history_curves_and_comparison(ref, tmp_path, assert_png, capsys):
    out = tmp_path / "simsiam"
    paths = ref.q3_simsiam.main(["--smoke", "--out", str(out), "--no-stop-gradient", "--mlp-mode", "no_pred_mlp"])
    assert [p.name for p in paths] == ["smoke_sg_off-mlp_no_pred_mlp_history.json", "smoke_sg_off-mlp_no_pred_mlp.pt",
                                       "smoke_sg_off-mlp_no_pred_mlp_curves.png"]
    history = json.loads(paths[0].read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert_png(paths[2])
    assert "kNN acc" in capsys.readouterr().out
    comparison = ref.q3_simsiam.main(["--plot-runs", str(paths[0]), str(paths[0]), "--out", str(out)])
    assert comparison[0].name == "smoke_comparison.png"  # smoke histories make a marked comparison
    assert_png(comparison[0])
