"""Chain blocks of the two-layer gradient (models.two_layer): bitwise the numbers of one
batched call wherever the automatic rule uses them, and the rule itself."""
import pytest
import torch

from langevin.activations import get_activation
from langevin.models.two_layer import (
    CHAIN_BLOCK_BYTES, automatic_chain_block, blocks_are_bitwise, two_layer_loss_and_gradient)

CPU = torch.device("cpu")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_blocked_gradient_is_bitwise_the_batched_one(dtype, bias, threads):
    chains, d, width, n = 8, 5, 32, 48  # n, N multiples of 16: blocks_are_bitwise
    assert blocks_are_bitwise(n, width, torch.finfo(dtype).bits // 8)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    y = torch.randn(n, generator=g, dtype=dtype)
    w = torch.randn(chains, width, d, generator=g, dtype=dtype) / d**0.5
    a = torch.randn(chains, width, generator=g, dtype=dtype) / width**0.5
    b = torch.randn(chains, width, generator=g, dtype=dtype) if bias else None
    phi = get_activation("erf")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        loss, grads = two_layer_loss_and_gradient(phi, w, a, x, y, b, "b1", {}, chains)
        for block in (2, 3, 5):  # [2,2,2,2], [3,3,2], [5,3]
            if chains % block == 1:
                continue
            blocked_loss, blocked = two_layer_loss_and_gradient(phi, w, a, x, y, b, "b1", {},
                                                                block)
            assert torch.equal(blocked_loss, loss), block
            for layer, value in grads.items():
                assert torch.equal(blocked[layer], value), (block, layer)
    finally:
        torch.set_num_threads(previous)


def test_automatic_block_size():
    per_chain = 2 * 3008 * 704 * 4  # the paper's size rounded to aligned n, N (float32)
    assert automatic_chain_block(64, 128, 64, 4, CPU) == 64  # small: one block
    block = automatic_chain_block(512, 3008, 704, 4, CPU)
    assert block * per_chain <= CHAIN_BLOCK_BYTES < (block + 1) * per_chain
    assert 512 % block != 1
    assert automatic_chain_block(512, 3000, 700, 4, CPU) == 512  # rows not aligned: no blocks
    assert automatic_chain_block(512, 3008, 704, 4, torch.device("cuda")) == 512
    # 9 chains of 268 MB: 4 fit the budget, 9 % 4 = 1, so blocks of 5: [5, 4]
    assert automatic_chain_block(9, 4096, 8192, 4, CPU) == 5
