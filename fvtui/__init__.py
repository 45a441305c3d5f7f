"""fvtui: deep active learning improved with formal verification, in the terminal."""

import os

__version__ = "0.1.0"

# torch picks its CPU kernels by the CPU it finds (AVX-512 where there is one), and they round
# differently: on an AVX-512 machine Fashion-MNIST random-none-s1 ended round 1 one test sample apart
# from the same code on an AVX2 one, and DFAL's selection then drifted. AVX2 kernels everywhere (any
# x86-64 CPU of the last ten years) make a session replay bit for bit on another machine. Read at
# torch's first kernel call, so it holds if fvtui is imported before torch computes anything; a
# setting of one's own wins.
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
