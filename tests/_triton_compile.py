"""Compile the Triton kernels for an sm_90 GPU without one (``triton.compile`` to cubin), to catch
what the interpreter lets pass: typing, layouts, unsupported ops. Run in a subprocess without
``TRITON_INTERPRET``: ``python -m tests._triton_compile cross_scan|dwconv``.
"""

from __future__ import annotations

import sys


def _compile(fn, pointers: dict[str, str], constexprs: dict[str, object]) -> None:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    signature = {
        name: "constexpr" if name in constexprs else ("*" + pointers[name])
        if name in pointers else "i32"
        for name in fn.arg_names
    }  # fmt: skip
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
    triton.compile(source, target=GPUTarget("cuda", 90, 32))


def cross_scan() -> None:
    from contrast_sr.ops import cross_scan_triton as k

    for dtype in ("fp32", "bf16", "fp16"):
        io = {"x_ptr": dtype, "y_ptr": dtype}
        _compile(k._cross_scan_kernel, io, {"BLOCK_S": 16, "BLOCK_C": 128})
        upcast = dtype != "fp32"
        _compile(k._cross_merge_kernel, io, {"BLOCK_S": 256, "BLOCK_C": 8, "UPCAST": upcast})


def dwconv() -> None:
    from contrast_sr.ops import dwconv_triton as k

    for dtype in ("fp32", "bf16"):
        for reflect in (False, True):
            blocks = {"REFLECT": reflect, "BLOCK_P": 16, "BLOCK_C": 64}
            io = {"x_ptr": dtype, "w_ptr": "fp32", "b_ptr": "fp32", "y_ptr": dtype}
            _compile(k._dwconv_gelu_fwd_kernel, io, {"HAS_BIAS": True, **blocks})
            io = {"x_ptr": dtype, "w_ptr": "fp32", "b_ptr": "fp32", "gy_ptr": dtype,
                  "gz_ptr": "fp32", "part_ptr": "fp32"}  # fmt: skip
            _compile(
                k._dwconv_gelu_bwd_gz_kernel, io,
                {"HAS_BIAS": False, "TILES": 4, **blocks, "BLOCK_P": 128, "BLOCK_C": 8},
            )  # fmt: skip
            io = {"gz_ptr": "fp32", "w_ptr": "fp32", "gx_ptr": dtype}
            _compile(k._dwconv_bwd_input_kernel, io, blocks)


if __name__ == "__main__":
    {"cross_scan": cross_scan, "dwconv": dwconv}[sys.argv[1]]()
    print("compiled")
