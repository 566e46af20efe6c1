"""vocoder: a BigVGAN-style neural vocoder whose Snake activations run on fused Triton kernels."""

__version__ = "0.1.0"
