"""The report scripts import and start from a fresh template, before any solution is written."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = ("q1_vae", "q2_wgan", "q3_simsiam", "resnet_cifar")


def test_scripts_import_with_the_unsolved_template(template):
    modules = {name: template.load(name) for name in SCRIPTS}
    for name, module in modules.items():
        assert Path(module.__file__).resolve().parent == template.path, name
    q1_solution = template.load("q1_solution")
    assert Path(q1_solution.__file__).resolve().parent == template.path
    with pytest.raises(NotImplementedError):
        q1_solution.log_likelihood_bernoulli(torch.full((1, 2), 0.5), torch.ones(1, 2))


def test_unsolved_functions_surface_as_not_implemented(template):
    q1_vae, q2_wgan, q3_simsiam = (template.load(n) for n in ("q1_vae", "q2_wgan", "q3_simsiam"))
    with pytest.raises(NotImplementedError):
        q1_vae.negative_elbo(q1_vae.VAE(), torch.zeros(2, 784))
    cfg = q2_wgan.WGANConfig(width=8)
    generator, critic = q2_wgan.Generator(cfg.z_dim, cfg.width), q2_wgan.Critic(cfg.width)
    optimizer = torch.optim.Adam(critic.parameters())
    with pytest.raises(NotImplementedError):
        q2_wgan.critic_step(torch.zeros(2, 3, 32, 32), generator, critic, optimizer, cfg)
    # SimSiam's constructor is provided code: building works, the forward pass is the student's.
    model = q3_simsiam.build_model(q3_simsiam.SimSiamConfig(dim=32, pred_dim=8, width=4))
    with pytest.raises(NotImplementedError):
        model(torch.zeros(2, 3, 32, 32), torch.zeros(2, 3, 32, 32))


@pytest.mark.parametrize("script", ["q1_vae.py", "q2_wgan.py", "q3_simsiam.py"])
def test_scripts_run_as_programs_from_the_template_folder(script, template):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep __pycache__ out of the template kit
    result = subprocess.run([sys.executable, script, "--help"], cwd=template.path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--smoke" in result.stdout
