import torch

from models.config import QuantizerConfig
from models.quantizer import VectorQuantizer


def quantizer(**changes) -> VectorQuantizer:
    torch.manual_seed(0)
    config = QuantizerConfig(**({"num_codes": 4, "code_dim": 2, "dead_code_patience": 3} | changes))
    return VectorQuantizer(config)


def set_codebook(module: VectorQuantizer, codes: list[list[float]]) -> None:
    with torch.no_grad():
        module.codebook.weight.copy_(torch.tensor(codes))


def test_inputs_snap_to_nearest_code():
    """Each vector becomes its nearest codebook entry, with that entry's index."""
    module = quantizer().eval()
    set_codebook(module, [[0, 0], [1, 0], [0, 1], [5, 5]])
    out = module(torch.tensor([[0.9, 0.2], [0.1, 0.1], [4.0, 6.0]]))
    assert out.codes.tolist() == [1, 0, 3]
    torch.testing.assert_close(out.quantized, torch.tensor([[1.0, 0.0], [0.0, 0.0], [5.0, 5.0]]))


def test_gradient_passes_straight_through():
    """The gradient reaching the input is the gradient at the quantised output (straight-through)."""
    module = quantizer().eval()
    z = torch.randn(6, 2, requires_grad=True)
    weights = torch.randn(6, 2)
    (module(z).quantized * weights).sum().backward()
    torch.testing.assert_close(z.grad, weights)


def test_loss_is_codebook_plus_weighted_commitment():
    """The loss is ||sg(z) - e||^2 + beta ||z - sg(e)||^2, both mean squared errors."""
    module = quantizer(commitment_weight=0.25).eval()
    set_codebook(module, [[0, 0], [1, 0], [0, 1], [5, 5]])
    out = module(torch.tensor([[0.4, 0.0]]))  # nearest code 0: squared error 0.16 over 2 dims
    torch.testing.assert_close(out.loss, torch.tensor(0.08 * 1.25))


def test_perplexity_counts_codes_in_use():
    """Perplexity is the number of equally used codes: 1 for one code, 4 for four."""
    module = quantizer().eval()
    set_codebook(module, [[0, 0], [1, 0], [0, 1], [5, 5]])
    one = module(torch.zeros(8, 2)).metrics["codebook_perplexity"]
    four = module(torch.tensor([[0, 0], [1, 0], [0, 1], [5, 5]], dtype=torch.float).repeat(2, 1))
    torch.testing.assert_close(one, torch.tensor(1.0))
    torch.testing.assert_close(four.metrics["codebook_perplexity"], torch.tensor(4.0))
    assert four.metrics["codes_used"].item() == 4


def test_unused_code_is_moved_onto_an_input_after_patience():
    """A code unused for dead_code_patience training steps is reset onto one of the inputs."""
    module = quantizer(dead_code_patience=3).train()
    set_codebook(module, [[0, 0], [1, 0], [0, 1], [50, 50]])
    module.steps_unused.zero_()
    inputs = torch.tensor([[0.1, 0.0], [0.9, 0.1], [0.0, 1.1]])
    for _ in range(2):
        module(inputs)
    assert module.codebook.weight[3].tolist() == [50, 50]
    out = module(inputs)
    assert out.metrics["dead_codes"].item() == 1
    assert any(torch.equal(module.codebook.weight[3], row) for row in inputs)


def test_eval_mode_leaves_codebook_alone():
    """Outside training no code is moved and no usage is counted."""
    module = quantizer(dead_code_patience=1).eval()
    before = module.codebook.weight.clone()
    module(torch.randn(16, 2))
    torch.testing.assert_close(module.codebook.weight, before)


def test_l2_normalized_lookup_is_by_direction_and_keeps_unit_codes():
    """With l2_normalize, inputs snap to the code of nearest direction, and outputs are unit vectors."""
    module = quantizer(l2_normalize=True).eval()
    set_codebook(module, [[1, 0], [0, 1], [-1, 0], [3, 3]])
    out = module(torch.tensor([[10.0, 0.5], [0.1, 0.9], [2.0, 2.2]]))
    assert out.codes.tolist() == [0, 1, 3]
    torch.testing.assert_close(out.quantized.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(module.lookup(torch.tensor([3])), torch.tensor([[0.5 ** 0.5, 0.5 ** 0.5]]))


def test_l2_normalized_training_step_survives_dead_code_reset():
    """A training forward that resets dead codes still backpropagates into the codebook."""
    module = quantizer(l2_normalize=True, dead_code_patience=1).train()
    z = torch.randn(8, 2, requires_grad=True)
    module(z).loss.backward()
    assert module.codebook.weight.grad is not None and z.grad is not None


def test_error_draw_resets_onto_poorly_fitted_inputs():
    """With reset_draw = "error", a dead code lands only on inputs its codebook fits badly."""
    module = quantizer(dead_code_patience=1, reset_draw="error").train()
    set_codebook(module, [[0, 0], [1, 0], [0, 1], [50, 50]])
    inputs = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [9.0, 9.0]])  # only the last is far from its code
    for _ in range(5):
        module(inputs)
        dead_rows = [row.tolist() for row in module.codebook.weight if row.tolist() not in ([0, 0], [1, 0], [0, 1])]
        assert dead_rows in ([[9.0, 9.0]], [[50.0, 50.0]])


def test_ema_codebook_moves_codes_to_the_mean_of_their_inputs():
    """With ema_decay, a code becomes the running mean of the inputs it is chosen for, without gradients."""
    module = quantizer(ema_decay=0.5, dead_code_patience=100).train()
    set_codebook(module, [[0, 0], [1, 0], [0, 1], [5, 5]])
    module.ema_sum.copy_(module.codebook.weight)
    module.steps_unused.zero_()
    inputs = torch.tensor([[3.0, 4.0], [5.0, 4.0]])  # both nearest to code 3, mean (4, 4)
    module(inputs)
    torch.testing.assert_close(module.codebook.weight[3], torch.tensor([(0.5 * 5 + 0.5 * 8) / 1.5, (0.5 * 5 + 0.5 * 8) / 1.5]))
    for _ in range(30):
        out = module(inputs)
    torch.testing.assert_close(module.codebook.weight[3], torch.tensor([4.0, 4.0]))
    torch.testing.assert_close(module.codebook.weight[:3], torch.tensor([[0.0, 0], [1, 0], [0, 1]]))
    assert not module.codebook.weight.requires_grad
    torch.testing.assert_close(out.loss, 0.25 * torch.tensor(1.0 / 2))  # commitment only: ((1 + 1) / 2) / 2 dims


def test_bypass_steps_pass_inputs_through_then_quantise():
    """During the first bypass_steps training steps the output is the input, with zero loss;
    after them the quantiser snaps as usual."""
    module = quantizer(bypass_steps=2, reset_dead_codes=False).train()
    set_codebook(module, [[0, 0], [1, 0], [0, 1], [5, 5]])
    inputs = torch.tensor([[0.9, 0.2], [4.0, 6.0]])
    for _ in range(2):
        out = module(inputs)
        torch.testing.assert_close(out.quantized, inputs)
        assert out.loss.item() == 0.0
    torch.testing.assert_close(module(inputs).quantized, torch.tensor([[1.0, 0.0], [5.0, 5.0]]))
    torch.testing.assert_close(module.eval()(inputs).quantized, torch.tensor([[1.0, 0.0], [5.0, 5.0]]))


def test_kmeans_init_fits_the_codebook_to_the_first_quantised_batch():
    """With kmeans_init_iters, the first quantised step moves the codes onto the batch's
    clusters (after the bypass steps; the EMA averages restart there too, or the step's
    update would pull the codes back towards their random start)."""
    module = quantizer(bypass_steps=1, kmeans_init_iters=5, ema_decay=0.99).train()
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    inputs = (centres[:, None] + 0.1 * torch.randn(4, 25, 2)).reshape(-1, 2)
    before = module.codebook.weight.clone()
    module(inputs)
    torch.testing.assert_close(module.codebook.weight, before)
    out = module(inputs)
    found = sorted(module.codebook.weight.round().tolist())
    assert found == sorted(centres.tolist())
    assert out.metrics["codes_used"].item() == 4
    assert out.metrics["commitment"].item() < 0.05


def _ema_rank(rank: int, init_file: str, batches: torch.Tensor, results) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    module = quantizer(ema_decay=0.5, ema_all_ranks=True, reset_dead_codes=False).train()
    set_codebook(module, [[0, 0], [10, 0], [0, 10], [10, 10]])
    module(batches[rank])
    results[rank] = module.codebook.weight.clone()
    torch.distributed.destroy_process_group()


def test_ema_all_ranks_averages_every_replicas_batch(tmp_path):
    """With ema_all_ranks, each replica's EMA step uses both replicas' inputs: the codebook equals
    one process's after the two batches together."""
    batches = torch.tensor([[[1.0, 0.0], [9.0, 1.0]], [[11.0, 0.0], [0.0, 9.0]]])  # rank 0's, rank 1's
    results = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(_ema_rank, args=(str(tmp_path / "init"), batches, results), nprocs=2)
    alone = quantizer(ema_decay=0.5, reset_dead_codes=False).train()
    set_codebook(alone, [[0, 0], [10, 0], [0, 10], [10, 10]])
    alone(batches.reshape(-1, 2))
    for rank in range(2):
        torch.testing.assert_close(results[rank], alone.codebook.weight)
