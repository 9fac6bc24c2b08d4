"""bf16 mixed-precision training: visrc.models.mixed_precision, VISRC_TRAIN_PRECISION, the amx profile."""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from visrc import numerics
from visrc.models.mixed_precision import (MixedPrecisionHook, autocast_forward, check_bf16_kernels, module_paths,
                                          to_float32)

REPO = Path(__file__).resolve().parents[1]
AMX_FLAGS = "fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 amx_bf16 amx_tile"
HAS_AMX = "amx" in numerics.supported_kernels()


def _cpuinfo(flags=AMX_FLAGS):
    return f"processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Some CPU\nflags\t\t: {flags}\n"


def test_amx_is_opt_in_and_bf16_training_chooses_it():
    info = _cpuinfo()
    assert numerics.supported_kernels(info)[:2] == ["amx", "avx512"]
    assert numerics.kernels({}, info) == "avx512"                           # fp32: never amx by default
    assert numerics.kernels({"VISRC_KERNELS": "amx"}, info) == "amx"
    assert numerics.kernels({"VISRC_TRAIN_PRECISION": "bf16"}, info) == "amx"
    assert numerics.kernel_variables("amx", info)["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE_AMX"
    with pytest.raises(ValueError, match="bf16 runs on the amx kernel profile only, not VISRC_KERNELS='avx512'"):
        numerics.kernels({"VISRC_TRAIN_PRECISION": "bf16", "VISRC_KERNELS": "avx512"}, info)
    no_amx = _cpuinfo(AMX_FLAGS.replace(" amx_tile", ""))                    # the whole flag set is needed
    with pytest.raises(ValueError, match="VISRC_TRAIN_PRECISION=bf16 needs the amx kernel profile, but "
                                         "VISRC_KERNELS='amx': this CPU runs avx512, avx2, compatible"):
        numerics.kernels({"VISRC_TRAIN_PRECISION": "bf16"}, no_amx)
    with pytest.raises(ValueError, match="VISRC_TRAIN_PRECISION='fp16': expected one of fp32, bf16"):
        numerics.train_precision({"VISRC_TRAIN_PRECISION": "fp16"})
    assert numerics.train_precision({}) == "fp32" and numerics.train_precision({"VISRC_TRAIN_PRECISION": "BF16"}) == "bf16"


def test_bf16_keys_runs_apart_and_fp32_keys_are_unchanged():
    fp32 = numerics.cache_key({})
    assert "train_precision" not in fp32                    # the keys fp32 runs had before precisions existed
    assert numerics.cache_key({"VISRC_TRAIN_PRECISION": "bf16"}) == dict(fp32, train_precision="bf16")
    assert "train_precision" not in numerics.describe()     # fp32: metrics files record what they did


def test_to_float32_and_autocast_forward():
    Pair = collections.namedtuple("Pair", "a b")
    out = to_float32({"x": (torch.ones(2, dtype=torch.bfloat16), [Pair(torch.zeros(1, dtype=torch.bfloat16),
                                                                       torch.arange(3))])})
    assert out["x"][0].dtype == torch.float32 and isinstance(out["x"][1][0], Pair)
    assert out["x"][1][0].a.dtype == torch.float32 and out["x"][1][0].b.dtype == torch.int64

    conv = torch.nn.Conv2d(3, 4, 3)
    block = torch.nn.Sequential(conv)
    seen = []
    conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))        # inside the wrapped block
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    ref = block(x)
    assert autocast_forward(block) and not autocast_forward(block)          # once
    y = block(x)
    assert seen == [torch.float32, torch.bfloat16] and y.dtype == torch.float32
    assert conv.weight.dtype == torch.float32                               # master weights stay fp32
    assert 0 < (y - ref).abs().max() < 0.05                                 # bf16 rounding, not another result
    y.sum().backward()
    assert conv.weight.grad.dtype == torch.float32 and x.grad.dtype == torch.float32


def test_the_hook_covers_the_detector_parts_and_leaves_the_rest(monkeypatch):
    from visrc.models.config import build_model, load_config

    model = build_model(load_config("toy_tcis_multitask_msd"))
    paths = module_paths(model)
    assert list(paths) == ["backbone", "neck", "rpn_head", "roi_head.bbox_head", "roi_head.mask_head",
                           "roi_head.mask_iou_head", "track_head.embed_head"]

    class Runner:                                            # what before_train reads
        def __init__(self, m):
            self.model, self.logger = m, type("L", (), {"info": lambda self, msg: logged.append(msg)})()
    logged = []
    MixedPrecisionHook(check_kernels=False).before_train(Runner(model))
    assert logged == ["MixedPrecisionHook: bf16 autocast in " + ", ".join(paths)]
    assert all(hasattr(m.forward, "_visrc_autocast") for m in paths.values())
    from visrc.models.tcis import TCISModule
    tcis = [m for m in model.modules() if isinstance(m, TCISModule)]
    assert len(tcis) == 1 and not hasattr(tcis[0].forward, "_visrc_autocast")   # deformable warp: fp32
    with pytest.raises(ValueError, match="only 'bfloat16'"):
        MixedPrecisionHook(dtype="float16")


def test_bf16_training_refuses_a_process_without_amx_kernels():
    with pytest.raises(RuntimeError, match="ONEDNN_MAX_CPU_ISA=AVX512_CORE: oneDNN would emulate bf16.*VISRC_KERNELS=amx"):
        check_bf16_kernels({"VISRC_NUMERICS": "pinned", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"})
    check_bf16_kernels({"VISRC_NUMERICS": "pinned", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"})
    check_bf16_kernels({"VISRC_NUMERICS": "native"})        # native: the machine's own kernels


def test_visrc_train_adds_the_hook_for_bf16(monkeypatch):
    from visrc.models.train_cli import prepare_config

    monkeypatch.setenv("VISRC_TRAIN_PRECISION", "bf16")
    cfg = prepare_config("toy_baseline")
    assert [h["type"] for h in cfg.custom_hooks].count("MixedPrecisionHook") == 1
    assert "visrc.models.mixed_precision" in cfg.custom_imports["imports"]
    monkeypatch.setenv("VISRC_TRAIN_PRECISION", "fp32")
    assert "MixedPrecisionHook" not in [h["type"] for h in prepare_config("toy_baseline").get("custom_hooks", [])]


_PROBE = """
import json, sys
sys.path.insert(0, {bench!r})
from bench_train_profile import record_losses
print(json.dumps([d["loss"] for d in record_losses({config!r}, 3, {lever!r}, {root!r})["losses"]]))
"""


def _first_losses(root, config: str, lever: str, profile: str) -> list[float]:
    """The first 3 losses of ``config``'s training on ``root`` with the bench lever ``lever``, in a
    process pinned to ``profile``."""
    env = numerics.pinned_env(dict(os.environ, VISRC_TRAIN_PRECISION="fp32"), profile=profile)
    code = _PROBE.format(bench=str(REPO / "benchmarks"), config=config, lever=lever, root=str(root))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not HAS_AMX, reason="this CPU has no AMX (the amx kernel profile)")
def test_amx_profile_fp32_equals_avx512_and_bf16_repeats(toy_small):
    fp32_avx512 = _first_losses(toy_small, "toy_tcis", "fast", "avx512")
    assert _first_losses(toy_small, "toy_tcis", "fast", "amx") == fp32_avx512     # fp32 kernels are avx512's
    bf16 = _first_losses(toy_small, "toy_tcis", "bf16", "amx")
    assert bf16 == _first_losses(toy_small, "toy_tcis", "bf16", "amx")            # bf16 on AMX repeats bit for bit
    assert bf16 != fp32_avx512 and max(abs(a - b) / b for a, b in zip(bf16, fp32_avx512)) < 0.05
