import numpy as np

from sentiment.classifier.data.batching import batch_dataset, cut_padding, length_batches
from sentiment.classifier.data.splits import Split

LENGTHS = np.random.default_rng(0).integers(1, 300, 1000)


def test_every_review_is_in_exactly_one_batch():
    batches = length_batches(LENGTHS, 32, np.random.default_rng(1), by_length=True)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(LENGTHS)))
    assert all(len(batch) == 32 for batch in batches[:-1]) or len(set(map(len, batches))) <= 2


def test_batches_by_length_hold_similar_lengths_and_need_fewer_steps():
    rng = np.random.default_rng(1)
    bucketed = length_batches(LENGTHS, 32, rng, by_length=True)
    shuffled = length_batches(LENGTHS, 32, np.random.default_rng(1), by_length=False)
    steps = [sum(LENGTHS[rows].max() * len(rows) for rows in b) for b in (bucketed, shuffled)]
    assert steps[0] < 0.7 * steps[1]


def test_same_seed_same_batches_and_another_epoch_other_batches():
    first = length_batches(LENGTHS, 32, np.random.default_rng([5, 0]), by_length=True)
    again = length_batches(LENGTHS, 32, np.random.default_rng([5, 0]), by_length=True)
    next_epoch = length_batches(LENGTHS, 32, np.random.default_rng([5, 1]), by_length=True)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, next_epoch, strict=True))


def test_without_an_rng_the_order_is_kept_or_sorted_by_length():
    assert np.array_equal(
        np.concatenate(length_batches(LENGTHS, 64, None, by_length=False)), np.arange(1000)
    )
    ordered = np.concatenate(length_batches(LENGTHS, 64, None, by_length=True))
    assert (np.diff(LENGTHS[ordered]) >= 0).all()


def test_cut_padding_drops_only_columns_that_are_padding_in_every_review():
    pre = np.array([[0, 0, 0, 4, 5], [0, 0, 3, 4, 5]])
    post = np.array([[4, 5, 0, 0, 0], [3, 4, 5, 0, 0]])
    assert cut_padding(pre).tolist() == [[0, 4, 5], [3, 4, 5]]
    assert cut_padding(post).tolist() == [[4, 5, 0], [3, 4, 5]]
    assert cut_padding(np.zeros((2, 4), dtype=int)).shape == (2, 1)


def test_dataset_reshuffles_each_epoch_and_keeps_labels_with_their_reviews():
    token_ids = np.zeros((100, 20), dtype=np.int32)
    lengths = np.arange(100) % 20 + 1
    for row, length in enumerate(lengths):
        token_ids[row, 20 - length :] = row + 1  # each review's words carry its row number
    split = Split(token_ids=token_ids, labels=(np.arange(100) % 2).astype(np.int8), lengths=lengths)
    dataset = batch_dataset(split, batch_size=16, seed=3, by_length=True)
    epochs = [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(2)]
    for batches in epochs:
        seen = []
        for token_ids_batch, labels in batches:
            rows = token_ids_batch.max(axis=1) - 1
            assert token_ids_batch.shape[1] == lengths[rows].max()
            assert np.array_equal(labels, rows % 2)
            seen += rows.tolist()
        assert sorted(seen) == list(range(100))
    assert [b[1].tolist() for b in epochs[0]] != [b[1].tolist() for b in epochs[1]]
