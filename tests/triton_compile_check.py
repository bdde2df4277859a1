"""Compile Triton kernels for CUDA targets on a machine without a GPU (source -> PTX -> cubin
with the ptxas bundled in triton's wheel) and print each kernel's register / spill use.

Run as a script, without ``TRITON_INTERPRET`` (the interpreter replaces the kernels):
``python tests/triton_compile_check.py [ARCH ...]`` (default 80 90). It catches what the
interpreter cannot: type errors in loop-carried values, unsupported constructs, register spills.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile


def compile_for_cuda(fn, constexprs: dict, pointers: dict, arch: int, num_warps: int) -> str:
    """Compile the @triton.jit ``fn`` for sm_``arch``; arguments ending in ``_ptr`` are pointers
    (type from ``pointers``, default float32), other non-constexpr ones int32. Returns
    cuobjdump's resource line (``REG:.. STACK:.. SHARED:.. LOCAL:..``)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    signature = {
        name: "constexpr"
        if name in constexprs
        else (pointers.get(name, "*fp32") if name.endswith("_ptr") else "i32")
        for name in fn.arg_names
    }
    source = ASTSource(fn, signature, constexprs=constexprs)
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
            print(f"sm_{arch} {io} BLOCK_D={block_d} BLOCK_N={block_n} {fn.__name__}: {usage}")


if __name__ == "__main__":
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        sys.exit("unset TRITON_INTERPRET: the interpreter replaces the kernels")
    for arch in [int(a) for a in sys.argv[1:]] or [80, 90]:
        check_scan_kernels(arch)
