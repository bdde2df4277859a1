"""Compile the project's Triton kernels for CUDA targets on a machine without a GPU (source ->
PTX -> cubin with the ptxas bundled in triton's wheel) and print each kernel's register / spill
use. It catches what the interpreter cannot: type errors in loop-carried values, unsupported
constructs, register spills.

Run as a script, without ``TRITON_INTERPRET`` (the interpreter replaces the kernels):
``python tests/triton_compile_check.py KIND [ARCH ...]`` with KIND one of ``scan``,
``cross_scan``, ``dwconv``, ``ssd`` (default arch 90). Every compiled kernel prints one line
ending in its resource use (``REG:.. STACK:.. SHARED:.. LOCAL:..``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile


def compile_for_cuda(fn, constexprs: dict, pointers: dict, arch: int, num_warps: int = 4) -> str:
    """Compile the @triton.jit ``fn`` for sm_``arch``; arguments ending in ``_ptr`` are pointers
    (type from ``pointers``, default ``*fp32``), other non-constexpr ones int32. Returns
    cuobjdump's resource line."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    own = {name: value for name, value in constexprs.items() if name in fn.arg_names}
    signature = {
        name: "constexpr"
        if name in own
        else (pointers.get(name, "*fp32") if name.endswith("_ptr") else "i32")
        for name in fn.arg_names
    }
    source = ASTSource(fn, signature, constexprs=own)
    kernel = triton.compile(
        source, target=GPUTarget("cuda", arch, 32), options={"num_warps": num_warps}
    )
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(kernel.asm["cubin"])
        f.flush()
        out = subprocess.run(
            [tool, "--dump-resource-usage", f.name], capture_output=True, text=True
        )
    return next((line.strip() for line in out.stdout.splitlines() if "REG:" in line), "?")


def _report(arch: int, label: str, fn, usage: str) -> None:
    print(f"sm_{arch} {label} {fn.__name__}: {usage}")


def check_scan_kernels(arch: int) -> None:
    """The selective-scan kernels at the launch shapes of N = 1, 4, 16, bf16 and fp32 inputs."""
    from contrast_sr.ops.scan import triton_kernels as k

    for io, (block_d, block_n), softplus in (
        ("fp32", (64, 1), True),
        ("bf16", (64, 4), False),
        ("bf16", (32, 16), True),
    ):
        names = ("u", "delta", "B", "C", "y", "gy", "gu", "gdelta")
        pointers = {f"{n}_ptr": f"*{io}" for n in names}
        num_warps = max(1, min(4, block_d * block_n // 128))
        for fn, extra in (
            (k.fwd_segment_kernel, {}),
            (k.fwd_kernel, {"SAVE": True}),
            (k.bwd_segment_kernel, {}),
            (k.bwd_kernel, {}),
        ):
            consts = {"SOFTPLUS": softplus, "BLOCK_D": block_d, "BLOCK_N": block_n, **extra}
            usage = compile_for_cuda(fn, consts, pointers, arch, num_warps)
            _report(arch, f"{io} BLOCK_D={block_d} BLOCK_N={block_n}", fn, usage)


def check_cross_scan_kernels(arch: int) -> None:
    """The fused cross-scan / cross-merge kernels for fp32, bf16 and fp16."""
    from contrast_sr.ops import cross_scan_triton as k

    for dtype in ("fp32", "bf16", "fp16"):
        io = {"x_ptr": f"*{dtype}", "y_ptr": f"*{dtype}"}
        usage = compile_for_cuda(k._cross_scan_kernel, {"BLOCK_S": 16, "BLOCK_C": 128}, io, arch)
        _report(arch, dtype, k._cross_scan_kernel, usage)
        consts = {"BLOCK_S": 256, "BLOCK_C": 8, "UPCAST": dtype != "fp32"}
        usage = compile_for_cuda(k._cross_merge_kernel, consts, io, arch)
        _report(arch, dtype, k._cross_merge_kernel, usage)


def check_dwconv_kernels(arch: int) -> None:
    """The depthwise 3x3 + GELU kernels, zeros and reflect padding, fp32 and bf16 inputs."""
    from contrast_sr.ops import dwconv_triton as k

    for dtype in ("fp32", "bf16"):
        for reflect in (False, True):
            blocks = {"REFLECT": reflect, "BLOCK_P": 16, "BLOCK_C": 64}
            io = {"x_ptr": f"*{dtype}", "y_ptr": f"*{dtype}", "gy_ptr": f"*{dtype}"}
            io["gx_ptr"] = f"*{dtype}"
            for fn, consts in (
                (k._dwconv_gelu_fwd_kernel, {"HAS_BIAS": True, **blocks}),
                (
                    k._dwconv_gelu_bwd_gz_kernel,
                    {"HAS_BIAS": False, "TILES": 4, **blocks, "BLOCK_P": 128, "BLOCK_C": 8},
                ),
                (k._dwconv_bwd_input_kernel, blocks),
            ):
                usage = compile_for_cuda(fn, consts, io, arch)
                _report(arch, f"{dtype} reflect={reflect}", fn, usage)


def check_ssd_kernels(arch: int) -> None:
    """The six Mamba-2 SSD chunk kernels with bf16 activations."""
    from contrast_sr.ops import ssd_triton_kernels as k

    consts = {"BT": 16, "BP": 16, "BN": 16, "BS": 256, "HAS_D": True}
    low = {name: "*bf16" for name in ("x_ptr", "B_ptr", "C_ptr", "dy_ptr", "y_ptr")}
    for fn in (
        k.ssd_chunk_state_fwd,
        k.ssd_state_passing_fwd,
        k.ssd_chunk_scan_fwd,
        k.ssd_chunk_dstate_bwd,
        k.ssd_state_passing_bwd,
        k.ssd_chunk_scan_bwd,
    ):
        _report(arch, "bf16", fn, compile_for_cuda(fn, consts, low, arch))


CHECKS = {
    "scan": check_scan_kernels,
    "cross_scan": check_cross_scan_kernels,
    "dwconv": check_dwconv_kernels,
    "ssd": check_ssd_kernels,
}


def run_in_subprocess(kind: str, arch: int = 90, timeout: int = 600) -> str:
    """Run this script for ``kind`` in a fresh process without the interpreter (for tests);
    returns its stdout, raises AssertionError with its stderr on failure."""
    from tests.conftest import cli_env

    env = {k: v for k, v in cli_env().items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    cmd = [sys.executable, __file__, kind, str(arch)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


if __name__ == "__main__":
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        sys.exit("unset TRITON_INTERPRET: the interpreter replaces the kernels")
    if len(sys.argv) < 2 or sys.argv[1] not in CHECKS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(CHECKS)}}} [ARCH ...]")
    for arch in [int(a) for a in sys.argv[2:]] or [90]:
        CHECKS[sys.argv[1]](arch)
