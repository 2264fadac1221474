"""Near-duplicates: a difference hash finds candidate pairs fast, a look at the pixels decides.

Candidates (no pairwise comparison): each image's 64-bit difference hash (a 9 x 8 grey thumbnail, one bit
per horizontal neighbour comparison) is split into BANDS bands of 16 bits, and each image is filed under
its band values. A bit whose two neighbours differ by at most WEAK_LEVELS grey levels is *weak*: a JPEG
re-encode or a sub-pixel shift flips it (on scikit-image's lfw_subset 39 % of the bits are weak). So each
image also probes the values its MAX_PROBED weakest bits in a band could take, and a pair is a candidate
when one's probe meets the other's band value and they disagree on at most NEAR_BITS bits that are strong
in both (neighbours more than STRONG_LEVELS apart: a 3 % crop moves a few neighbours by several levels); by
pigeonhole, such a pair shares a band (up to the probing limit). Low-texture images (more than half the
bits weak: their hash is mostly noise) meet through their 2 x 2 block means instead.

Confirmation (what decides): both images as 16 x 16 grey thumbnails, blurred by BLUR_SIGMA pixels; one
of them zoomed into a window of itself (none, or 97 % of each side at 3 anchors: crops of up to about
3 %), its brightness matched within GAIN; the pair's distance is the largest mean absolute difference
over any 4 x 4 window (a quarter of each side), in grey levels, at the best alignment. A pair is a
near-duplicate when that distance is at most MAX_LEVELS, or, for faint images, at most FAINT_SLOPE x
(their contrast + FAINT_FLOOR): two different nearly black crops differ by a few levels only.

The thresholds were chosen on measurement (benchmarks/bench_datacheck.py --curve; README "Evaluation and
dataset health"): scikit-learn's 1,797 digits in three upscalings, lfw_subset and scikit-image's photos,
with planted copies (JPEG quality 70, resized by 5 %, cropped by 3 %, brightness +5 %).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HASH_SIZE = (9, 8)       # the difference hash's thumbnail (width, height): 8 x 8 comparisons
BANDS = 4                # 16-bit bands; pigeonhole: NEAR_BITS + 1 bands
NEAR_BITS = 3            # strong bits two candidates may disagree on
WEAK_LEVELS = 4          # a comparison of two neighbours this close (grey levels) is a weak bit: probed
STRONG_LEVELS = 6        # ... this far apart: a strong bit, counted against a pair (4: crops of 3 % met their
                         # originals 96.5 % / 95.8 % on lfw / nearest digits; 6: 97.6 / 97.1 %, 30 % more pairs)
MAX_PROBED = 3           # weakest bits of a band whose both values are probed (2**3 probes per band)
FAINT_BIN = 8            # grey levels: the bins of a low-texture image's 2 x 2 block means
MAX_WEAK_IN_BAND = 8     # a band with more weak bits says nothing (a blank margin): not filed
MAX_BUCKET = 500         # a band value shared by more images than this is skipped (a flood of blank images)
THUMB = 16               # the confirmation thumbnail's side
BLUR_SIGMA = 0.6         # pixels of the 16 x 16 thumbnail
WINDOW = 4               # the window of the local difference (a quarter of the side)
ZOOM = 0.97              # crops of up to 3 %
ANCHORS = 3              # where the zoomed window sits on each axis: start, middle, end
GAIN = 0.1               # brightness matched within +-10 %
MAX_LEVELS = 12.0        # the confirmation threshold, grey levels (chosen on the curve, see above)
FAINT_SLOPE, FAINT_FLOOR = 0.6, 4.0   # faint images: threshold 0.6 x (contrast + 4) when that is lower


@dataclass
class Looks:
    """What the near-duplicate search keeps of one image (decoded once): 72 + 256 bytes."""
    hash_pixels: bytes     # 9 x 8 grey
    thumbnail: bytes       # 16 x 16 grey


def looks_of(image) -> Looks:
    """The hash thumbnail and the confirmation thumbnail of a decoded PIL image."""
    from PIL import Image

    grey = image.convert("L")
    return Looks(grey.resize(HASH_SIZE).tobytes(),
                 grey.resize((THUMB, THUMB), Image.Resampling.BILINEAR).tobytes())


def _hash_arrays(looks: list[Looks]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hashes uint64, strong-bit masks uint64, |differences| N x 64) of every image; bit 63 is the first
    comparison (the usual dHash order)."""
    px = np.frombuffer(b"".join(lk.hash_pixels for lk in looks), np.uint8).reshape(-1, 8, 9).astype(np.int16)
    diff = (px[:, :, :-1] - px[:, :, 1:]).reshape(-1, 64)
    weights = np.left_shift(np.uint64(1), np.arange(63, -1, -1, dtype=np.uint64))
    hashes = ((diff > 0).astype(np.uint64) * weights).sum(1, dtype=np.uint64)
    strong = ((np.abs(diff) > STRONG_LEVELS).astype(np.uint64) * weights).sum(1, dtype=np.uint64)
    return hashes, strong, np.abs(diff)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)]), vectorised."""
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


def _matches(filed: np.ndarray, filed_images: np.ndarray, probes: np.ndarray, probe_images: np.ndarray
             ) -> np.ndarray:
    """Every (prober, filed image) whose probe key equals a filed key: P x 2 (runs of more than MAX_BUCKET
    filed images left out)."""
    order = np.argsort(filed, kind="stable")
    filed, filed_images = filed[order], filed_images[order]
    lo, hi = np.searchsorted(filed, probes, "left"), np.searchsorted(filed, probes, "right")
    count = np.where(hi - lo <= MAX_BUCKET, hi - lo, 0)
    return np.stack([np.repeat(probe_images, count), filed_images[_ranges(lo, count)]], 1)


def _close(pairs: np.ndarray, hashes: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """The pairs (i != j, as i < j) that disagree on at most NEAR_BITS bits strong in both."""
    pairs = np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)
    both = strong[pairs[:, 0]] & strong[pairs[:, 1]]
    return pairs[np.bitwise_count((hashes[pairs[:, 0]] ^ hashes[pairs[:, 1]]) & both) <= NEAR_BITS]


def _faint_pairs(looks: list[Looks], faint: np.ndarray) -> np.ndarray:
    """Pairs of low-texture images (their hash bits are mostly weak) whose 2 x 2 block means are close: each is
    filed under its four means in bins of FAINT_BIN grey levels and probes the neighbouring bins. Complete for
    pairs within the confirmation's limit (a window's mean difference <= MAX_LEVELS < FAINT_BIN)."""
    means = np.frombuffer(b"".join(looks[i].thumbnail for i in faint), np.uint8).reshape(
        len(faint), 2, THUMB // 2, 2, THUMB // 2).mean((2, 4)).reshape(len(faint), 4)
    bins = (means // FAINT_BIN).astype(np.int64)
    weights = (256 // FAINT_BIN) ** np.arange(4)
    steps = np.array(np.meshgrid(*[(-1, 0, 1)] * 4, indexing="ij")).reshape(4, -1).T      # 81 x 4
    probes = ((bins[:, None, :] + steps[None]) * weights).sum(-1)                        # N x 81
    pairs = _matches((bins * weights).sum(-1), faint, probes.ravel(), np.repeat(faint, len(steps)))
    return np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)


def candidate_pairs(looks: list[Looks]) -> np.ndarray:
    """Pairs of images (indices, i < j) whose difference hashes are close: P x 2, unique, sorted. Each image is
    filed under its band values and probes the values its weakest bits could take (the probes of one image
    meet the filed values of the other, both ways round)."""
    n = len(looks)
    if n < 2:
        return np.empty((0, 2), np.int64)
    hashes, strong, absdiff = _hash_arrays(looks)
    width = 64 // BANDS
    image = np.arange(n, dtype=np.int64)
    found = []
    for band in range(BANDS):
        shift = np.uint64(64 - width * (band + 1))
        value = ((hashes >> shift) & np.uint64((1 << width) - 1)).astype(np.int64)
        cols = slice(width * band, width * (band + 1))           # bit 63 - k is column k
        weak = absdiff[:, cols] <= WEAK_LEVELS
        rank = np.where(weak, absdiff[:, cols], 1 << 14).argsort(1, kind="stable")[:, :MAX_PROBED]
        flips = np.where(np.take_along_axis(weak, rank, 1), 1 << (width - 1 - rank), 0)  # N x MAX_PROBED
        informative = weak.sum(1) <= MAX_WEAK_IN_BAND
        probes, probers = [], []
        for subset in range(1 << MAX_PROBED):
            mask = np.zeros(n, np.int64)
            for k in range(MAX_PROBED):
                if subset >> k & 1:
                    mask |= flips[:, k]
            used = informative & ((subset == 0) | (mask != 0))  # naming a missing weak bit repeats a key
            probes.append((value ^ mask)[used])
            probers.append(image[used])
        found.append(_close(_matches(value[informative], image[informative], np.concatenate(probes),
                                     np.concatenate(probers)), hashes, strong))
    faint = image[(absdiff <= WEAK_LEVELS).sum(1) > 32]
    if len(faint):
        found.append(_faint_pairs(looks, faint))
    pairs = np.concatenate(found)
    codes = np.unique(pairs[:, 0] * n + pairs[:, 1])
    return np.stack([codes // n, codes % n], 1)


def _axis_matrices() -> np.ndarray:
    """THUMB x THUMB matrices that blur by BLUR_SIGMA after sampling one axis at a*k + t (linear interpolation):
    the identity, then ZOOM at ANCHORS positions."""
    size = THUMB
    radius = int(np.ceil(2.5 * BLUR_SIGMA))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / BLUR_SIGMA) ** 2)
    blur = np.zeros((size, size))
    for row in range(size):
        for offset, w in zip(range(-radius, radius + 1), taps / taps.sum()):
            blur[row, min(max(row + offset, 0), size - 1)] += w
    out = []
    for a, t in [(1.0, 0.0)] + [(ZOOM, t) for t in np.linspace(0, (1 - ZOOM) * (size - 1), ANCHORS)]:
        x = np.clip(a * np.arange(size) + t, 0, size - 1)
        lo = np.floor(x).astype(int)
        hi, w = np.minimum(lo + 1, size - 1), x - lo
        sample = np.zeros((size, size))
        np.add.at(sample, (np.arange(size), lo), 1 - w)
        np.add.at(sample, (np.arange(size), hi), w)
        out.append(blur @ sample)
    return np.stack(out).astype(np.float32)


_AXES = _axis_matrices()


_BOX = np.stack([np.r_[np.zeros(i), np.ones(WINDOW), np.zeros(THUMB - WINDOW - i)] / WINDOW
                 for i in range(THUMB - WINDOW + 1)]).astype(np.float32)   # sliding window means, one axis
CHUNK = 2048             # pairs compared at once (about 40 MB of work arrays)


def _thumbnails(looks: list[Looks], which: np.ndarray) -> np.ndarray:
    return np.frombuffer(b"".join(looks[i].thumbnail for i in which), np.uint8).reshape(
        len(which), THUMB, THUMB).astype(np.float32)


def _warped(thumbs: np.ndarray) -> np.ndarray:
    """C x S x S -> C x 16 x S x S: every alignment (row warp x column warp) of each thumbnail, blurred."""
    rows = np.matmul(_AXES[None], thumbs[:, None])                               # C x 4 x S x S
    both = np.matmul(rows[:, :, None], _AXES.transpose(0, 2, 1)[None, None])     # C x 4 x 4 x S x S
    return both.reshape(len(thumbs), -1, THUMB, THUMB)


def _block_map() -> np.ndarray:
    """256 -> 16 x 16: the 4 x 4 block means of every alignment of a flattened thumbnail, as one matrix."""
    pool = np.kron(np.eye(THUMB // WINDOW), np.ones(WINDOW) / WINDOW).astype(np.float32)   # 4 x 16
    sides = pool[None] @ _AXES                                                           # 4 x 4 x 16
    return np.stack([np.kron(r, c) for r in sides for c in sides]).reshape(-1, THUMB * THUMB)


_BLOCK_MAP = _block_map()


def _gain(plain_mean: np.ndarray, warped_mean: np.ndarray) -> np.ndarray:
    return np.clip(plain_mean / np.maximum(warped_mean, 1.0), 1 - GAIN, 1 + GAIN)


def _lower_bound(blocks_a: np.ndarray, blocks_b: np.ndarray) -> np.ndarray:
    """Block means (16 blocks x 16 alignments x C, block-major: numpy reduces long rows fast) of one side and
    of the other: a lower bound of the distance of b to a's best alignment (the 4 x 4 blocks are among the
    sliding windows, and |mean| <= mean |.|)."""
    plain_b = blocks_b[:, :1]                                      # 16 x 1 x C
    gain = _gain(plain_b.mean(0), blocks_a.mean(0))                # 16 alignments x C
    diff = np.abs(blocks_a * gain - plain_b)
    worst = diff[0]
    for block in diff[1:]:
        np.maximum(worst, block, out=worst)
    return worst.min(0)


def _exact(thumbs_a: np.ndarray, thumbs_b: np.ndarray) -> np.ndarray:
    """The distance of b (blurred) to the best of a's 16 alignments, C pairs (C x S x S each)."""
    warped = _warped(thumbs_a)
    plain = _warped(thumbs_b)[:, 0]
    gain = _gain(plain.mean((-1, -2))[:, None], warped.mean((-1, -2)))[..., None, None]
    windows = np.matmul(np.matmul(_BOX, np.abs(warped * gain - plain[:, None])), _BOX.T)   # sliding window means
    return windows.reshape(len(plain), warped.shape[1], -1).max(-1).min(-1)


def pixel_distances(looks: list[Looks], pairs: np.ndarray, limits: np.ndarray, cancelled=lambda: False
                    ) -> np.ndarray:
    """For each pair: the largest 4 x 4-window mean absolute difference (grey levels) between one image and the
    best alignment of the other (either way round), brightness matched within GAIN. Distances above the
    pair's limit may be lower bounds (enough to decide): the 4 x 4 block means of every alignment, one
    matrix product per image, rule most pairs out; only the rest are compared pixel by pixel."""
    out = np.full(len(pairs), np.inf, np.float32)
    if not len(pairs):
        return out
    used = np.unique(pairs)
    where = np.full(len(looks), -1, np.int64)
    where[used] = np.arange(len(used))
    blocks = np.concatenate([_thumbnails(looks, used[s:s + CHUNK]).reshape(-1, THUMB * THUMB) @ _BLOCK_MAP.T
                             for s in range(0, len(used), CHUNK)])
    blocks = np.ascontiguousarray(blocks.reshape(len(used), -1, (THUMB // WINDOW) ** 2).transpose(2, 1, 0))
    for start in range(0, len(pairs), CHUNK):
        if cancelled():
            break
        chunk, limit = pairs[start:start + CHUNK], limits[start:start + CHUNK]
        a, b = blocks[:, :, where[chunk[:, 0]]], blocks[:, :, where[chunk[:, 1]]]
        bound = np.minimum(_lower_bound(a, b), _lower_bound(b, a))
        close = np.flatnonzero(bound <= limit)
        if len(close):
            first, second = _thumbnails(looks, chunk[close, 0]), _thumbnails(looks, chunk[close, 1])
            bound[close] = np.minimum(_exact(first, second), _exact(second, first))
        out[start:start + len(chunk)] = bound
    return out


def thresholds(looks: list[Looks], pairs: np.ndarray, max_levels: float = MAX_LEVELS) -> np.ndarray:
    """The distance each pair may have to count as a near-duplicate: max_levels, lower for faint images."""
    used = np.unique(pairs)
    contrast = np.zeros(len(looks), np.float32)
    for start in range(0, len(used), CHUNK):
        which = used[start:start + CHUNK]
        contrast[which] = _warped(_thumbnails(looks, which))[:, 0].reshape(len(which), -1).std(1)
    pair_contrast = (contrast[pairs[:, 0]] + contrast[pairs[:, 1]]) / 2
    return np.minimum(max_levels, FAINT_SLOPE * (pair_contrast + FAINT_FLOOR))


def near_pairs(looks: list[Looks], cancelled=lambda: False) -> tuple[np.ndarray, np.ndarray]:
    """(near-duplicate pairs P x 2, their pixel distances): hash candidates confirmed by the pixels."""
    pairs = candidate_pairs(looks)
    limits = thresholds(looks, pairs)
    dist = pixel_distances(looks, pairs, limits, cancelled)
    keep = dist <= limits
    return pairs[keep], dist[keep]


def star_groups(n: int, pairs: np.ndarray, order: list[int]) -> list[list[int]]:
    """Groups of each image (in `order`) with its near-duplicates not yet taken: star-shaped, not transitive,
    so a chain of slightly different images (a slow pan, a series of scans) never becomes one huge group."""
    partners: list[list[int]] = [[] for _ in range(n)]
    for i, j in pairs.tolist():
        partners[i].append(j)
        partners[j].append(i)
    rank = {i: r for r, i in enumerate(order)}
    taken: set[int] = set()
    groups = []
    for i in order:
        if i in taken:
            continue
        close = sorted((j for j in partners[i] if j not in taken), key=rank.__getitem__)
        if close:
            group = [i, *close]
            taken.update(group)
            groups.append(group)
    return groups
