"""visrc.numerics: the pinned numeric environment, and trainings through the run cache that give
bitwise-identical weights whatever the caller's thread settings and ``VISRC_TRAIN_SLOTS``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from visrc import numerics

REPO = Path(__file__).resolve().parents[1]


def test_pinned_env_overrides_the_base_and_keeps_the_rest():
    base = {"PATH": "/usr/bin", "OMP_NUM_THREADS": "8", "ATEN_CPU_CAPABILITY": "avx512", "VISRC_NUMERICS": "native"}
    env = numerics.pinned_env(base)
    assert env["PATH"] == "/usr/bin" and env["VISRC_NUMERICS"] == "pinned"
    assert {k: env[k] for k in numerics.PINNED} == numerics.PINNED
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == str(numerics.THREADS) == "1"
    assert env["ATEN_CPU_CAPABILITY"] == numerics.kernel_variables(numerics.KERNELS)["ATEN_CPU_CAPABILITY"]
    assert env["PYTHONHASHSEED"] == "0"
    assert base["OMP_NUM_THREADS"] == "8"                          # the base is not modified
    assert numerics.started_pinned(env) == []
    assert numerics.started_pinned(base) == [f"{k}={base.get(k, '<unset>')}" for k in numerics.PINNED
                                             if base.get(k) != numerics.PINNED[k]]


def test_mode_switch():
    assert numerics.mode({}) == "pinned" and numerics.mode({"VISRC_NUMERICS": ""}) == "pinned"
    assert numerics.mode({"VISRC_NUMERICS": "Native"}) == "native"
    with pytest.raises(ValueError, match="pinned, native"):
        numerics.mode({"VISRC_NUMERICS": "fast"})
    native = numerics.subprocess_env(3, {"VISRC_NUMERICS": "native", "PATH": "/bin"})
    assert native == {"VISRC_NUMERICS": "native", "PATH": "/bin", "OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}
    assert numerics.subprocess_env(3, {"PATH": "/bin"}) == numerics.pinned_env({"PATH": "/bin"})
    assert numerics.cache_key({})["mode"] == "pinned" and numerics.cache_key({}) != numerics.cache_key(
        {"VISRC_NUMERICS": "native"})


def test_describe_a_pinned_process_and_an_unpinned_one():
    probe = "import json, visrc.numerics as n; print(json.dumps(n.apply_in_process())); print(n.summary())"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k in numerics.PINNED:
        env.pop(k, None)
    env.pop("VISRC_NUMERICS", None)
    pinned = subprocess.run([sys.executable, "-c", probe], env=numerics.pinned_env(env), capture_output=True,
                            text=True, check=True).stdout.splitlines()
    info = json.loads(pinned[0])
    assert set(info) == {"mode", "variables", "missing", "torch", "torch_threads", "cpu_capability", "cpu"}
    assert info["mode"] == "pinned" and info["missing"] == [] and info["variables"] == numerics.PINNED
    assert info["torch_threads"] == 1 and info["torch"] == torch.__version__ and info["cpu"]
    if "avx2" in numerics.supported_kernels():         # without AVX2, ATen runs its default kernels
        assert info["cpu_capability"] == numerics.PINNED["ATEN_CPU_CAPABILITY"].upper()
    assert f"repeatable on this CPU model (VISRC_KERNELS={numerics.KERNELS})" in pinned[1]

    loose = subprocess.run([sys.executable, "-c", probe], env=dict(env, OMP_NUM_THREADS="2"), capture_output=True,
                           text=True, check=True).stdout.splitlines()
    info = json.loads(loose[0])
    assert info["torch_threads"] == 1                  # threads can still be set in process ...
    assert "OMP_NUM_THREADS=2" in info["missing"] and "ATEN_CPU_CAPABILITY=<unset>" in info["missing"]
    assert "NOT pinned" in loose[1]                    # ... the instruction set cannot

    native = subprocess.run([sys.executable, "-c", probe], env=dict(env, VISRC_NUMERICS="native", OMP_NUM_THREADS="2"),
                            capture_output=True, text=True, check=True).stdout.splitlines()
    info = json.loads(native[0])
    assert info["mode"] == "native" and info["missing"] == [] and info["torch_threads"] == 2
    assert "depend on the machine" in native[1]


AVX2_FLAGS = "fpu sse2 avx avx2 fma"
AVX512_FLAGS = AVX2_FLAGS + " avx512f avx512dq avx512cd avx512bw avx512vl"


def _cpuinfo(vendor="GenuineIntel", flags=AVX512_FLAGS):
    return f"processor\t: 0\nvendor_id\t: {vendor}\nmodel name\t: Some CPU\nflags\t\t: {flags}\n"


def test_kernel_profile_is_the_widest_the_cpu_runs_and_mkl_compatible_off_intel():
    assert numerics.supported_kernels(_cpuinfo()) == ["avx512", "avx2", "compatible"]
    assert numerics.supported_kernels(_cpuinfo(flags=AVX2_FLAGS)) == ["avx2", "compatible"]
    assert numerics.supported_kernels(_cpuinfo(flags="fpu sse2 avx")) == ["compatible"]
    assert numerics.supported_kernels(_cpuinfo(flags=AVX2_FLAGS + " avx512f")) == ["avx2", "compatible"]  # whole set
    assert numerics.supported_kernels("") == ["compatible"]
    two = _cpuinfo() + "\nprocessor\t: 1\nflags\t\t: fpu\n"                   # the first block decides
    assert numerics.kernels({}, two) == "avx512"
    assert numerics.kernels({"VISRC_KERNELS": "AVX2"}, _cpuinfo()) == "avx2"
    assert numerics.kernels({"VISRC_KERNELS": "compatible"}, _cpuinfo(flags="")) == "compatible"
    with pytest.raises(ValueError, match="VISRC_KERNELS='avx512': this CPU runs avx2, compatible"):
        numerics.kernels({"VISRC_KERNELS": "avx512"}, _cpuinfo(flags=AVX2_FLAGS))
    with pytest.raises(ValueError, match="profiles: avx512, avx2, compatible"):
        numerics.kernels({"VISRC_KERNELS": "fast"}, _cpuinfo())
    intel = numerics.kernel_variables("avx512", _cpuinfo())
    assert intel == {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_CBWR": "AVX512"}
    amd = numerics.kernel_variables("avx512", _cpuinfo("AuthenticAMD"))
    assert amd == dict(intel, MKL_CBWR="COMPATIBLE")     # MKL's other branches are Intel's only
    assert numerics.kernel_variables("avx2", _cpuinfo("AuthenticAMD")) == numerics.kernel_variables(
        "compatible", _cpuinfo("AuthenticAMD"))          # so off Intel, avx2 and compatible are one profile
    assert numerics.kernel_variables("compatible", _cpuinfo()) == {
        "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "COMPATIBLE"}
    assert {k: numerics.PINNED[k] for k in intel} == numerics.kernel_variables(numerics.KERNELS)
    assert numerics.reference_slug() == f"{numerics.cpu_slug()}-{numerics.KERNELS}"


def test_a_child_started_with_visrc_kernels_pins_that_profile_and_keys_its_runs_apart():
    probe = "import json, visrc.numerics as n; print(json.dumps([n.KERNELS, n.PINNED, n.cache_key(), n.started_pinned()]))"
    base = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    base.pop("VISRC_KERNELS", None)
    env = numerics.pinned_env(base, profile="compatible")
    assert env["VISRC_KERNELS"] == "compatible" and env["MKL_CBWR"] == "COMPATIBLE"
    with pytest.raises(ValueError, match="VISRC_KERNELS='fast'"):
        numerics.pinned_env(base, profile="fast")
    profile, pinned, key, missing = json.loads(subprocess.run([sys.executable, "-c", probe], env=env,
                                                              capture_output=True, text=True, check=True).stdout)
    assert profile == "compatible" and missing == []
    assert {k: pinned[k] for k in numerics.KERNEL_PROFILES["compatible"]} == numerics.kernel_variables("compatible")
    # runs are keyed by the variables: off Intel, compatible pins what avx2 pins (MKL has one branch there)
    same_variables = numerics.kernel_variables("compatible") == numerics.kernel_variables(numerics.KERNELS)
    assert (key == numerics.cache_key()) == same_variables


def test_a_pinned_process_matrix_product_takes_the_pinned_mkl_branch():
    # MKL_VERBOSE prints the branch MKL actually took (CNR:...); on a CPU where MKL cannot take it, it says so.
    probe = "import torch; a = torch.ones(64, 64); print(float((a @ a).sum()))"
    env = dict(numerics.pinned_env(), MKL_VERBOSE="1")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    branches = {word for word in (out.stdout + out.stderr).split() if word.startswith("CNR:")}
    assert branches == {"CNR:" + numerics.PINNED["MKL_CBWR"]}


def test_shell_exports():
    out = subprocess.run([sys.executable, "-m", "visrc.numerics"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert out.splitlines() == [f"export {k}={v}" for k, v in numerics.PINNED.items()]


# Short trainings: one epoch of the small toy preset (9 iterations) on small frames.
SHORT = {"train_dataloader.dataset.pipeline.1.transforms.2.scale": (96, 64), "default_hooks.logger.interval": 1}


def test_trainings_through_the_run_cache_are_bitwise_identical(toy_small, tmp_path, monkeypatch):
    """The caller's OMP_NUM_THREADS and VISRC_TRAIN_SLOTS (which set native trainings' threads) do
    not reach a pinned training: two runs give the same weights, bit for bit."""
    from visrc.experiments import runs
    from visrc.fileio import read_json
    from visrc.models.checkpoint import load_checkpoint_file

    monkeypatch.delenv("VISRC_NUMERICS", raising=False)
    checkpoints = []
    for i, (slots, omp) in enumerate([("1", "2"), ("2", "1")]):
        monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / f"runs{i}"))
        monkeypatch.setenv("VISRC_TRAIN_SLOTS", slots)
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
        monkeypatch.setenv("MKL_NUM_THREADS", omp)
        ckpt = runs.train_cached("toy_baseline", toy_small, seed=0, max_epochs=1, cfg_options=SHORT)
        done = read_json(ckpt.parent / "final_checkpoint.json")
        assert done["threads"] == 1
        reported = done["numerics"]
        assert reported["mode"] == "pinned" and reported["missing"] == [] and reported["torch_threads"] == 1
        assert "visrc train: numerics pinned" in (ckpt.parent / "train.log").read_text()
        checkpoints.append(ckpt)
    a, b = checkpoints
    assert a.parent.name == b.parent.name                 # same run key: threads and slots are not in it
    sa, sb = (load_checkpoint_file(c)["state_dict"] for c in checkpoints)
    assert load_checkpoint_file(a)["meta"]["iter"] > 0
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, f"weights differ: {different[:5]}"


def test_pinned_training_refuses_a_thread_count_and_native_runs_live_apart(tmp_path, monkeypatch):
    from visrc.experiments import runs

    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("VISRC_NUMERICS", raising=False)
    with pytest.raises(ValueError, match="VISRC_NUMERICS=native"):
        runs.train_cached("toy_baseline", tmp_path, threads=2)
    pinned = runs.run_dir("toy_baseline", tmp_path)
    monkeypatch.setenv("VISRC_NUMERICS", "native")
    assert runs.run_dir("toy_baseline", tmp_path) != pinned


def test_a_bad_visrc_kernels_is_one_error_line_naming_the_variable():
    env = dict(os.environ, VISRC_KERNELS="fast")
    out = subprocess.run([sys.executable, "-m", "visrc", "reproduce", "--only", "01_overlap_histogram", "--quick"],
                         cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"visrc reproduce: error: VISRC_KERNELS='fast': this CPU runs {', '.join(numerics.supported_kernels())} "
        f"(profiles: {', '.join(numerics.KERNEL_PROFILES)})"]
