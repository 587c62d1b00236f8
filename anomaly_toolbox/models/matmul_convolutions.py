"""4x4 stride-2 'same' convolutions at 1-2 pixel sides, computed as one matrix product.

At such sides a convolution is a small dense layer, yet on the CPU both of TensorFlow's
convolution paths run it far below their usual rate: on a 2-core AVX2 AMD EPYC (batch 64,
forward and backward) the U-Net's 2x2 -> 1x1 convolution took 300-640 ms with oneDNN and 2.6 s
with Eigen, its 1x1 -> 2x2 transposed convolution 300-590 ms and 2.4 s, where the same
products as matrix products take about 50 ms (``benchmarks/RESULTS.md``, "Skip-GANomaly's
U-Net"). Most of the work the convolution kernels do there multiplies zero padding.

These layers are :class:`keras.layers.Conv2D` and :class:`keras.layers.Conv2DTranspose` with the
same variables, initialisers and results (to float rounding). Where the lower-resolution side
(a convolution's output, a transposed convolution's input) is at most 2 and the configuration
is a 4x4 kernel, stride 2, 'same' padding, no dilation, channels last, they gather the kernel
taps that touch the image (the middle 2x2 at side 1, all 16 at side 2) into one matrix product;
otherwise they run the parent's convolution.

With padding 1 before, output pixel o of the convolution reads input pixel 2o + k - 1 through
kernel tap k; the transposed convolution adds input pixel i through tap k into output pixel
2i + k - 1.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

#: The lower-resolution side at or below which the matrix product is used.
MATMUL_MAX_SIDE = 2


def _taps(low_side: int) -> range:
    """The kernel taps (per axis) that touch the image: at side 1 the middle two, else all."""
    return range(1, 3) if low_side == 1 else range(4)


def _matmul_applies(layer: layers.Layer, low_sides: tuple[int | None, ...]) -> bool:
    return (tuple(layer.kernel_size) == (4, 4) and tuple(layer.strides) == (2, 2)
            and layer.padding == "same" and tuple(layer.dilation_rate) == (1, 1)
            and layer.data_format == "channels_last"
            and all(side is not None and side <= MATMUL_MAX_SIDE for side in low_sides))


def conv_as_matmul(images: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """4x4 stride-2 'same' convolution of ``images [B, 2h, 2w, C]`` (h, w <= 2) with ``kernel
    [4, 4, C, O]`` -> ``[B, h, w, O]``: the taps' strided slices side by side, times the
    kernel's taps as a ``[taps * C, O]`` matrix."""
    _, height, width, channels = images.shape
    out_height, out_width = height // 2, width // 2
    rows, cols = _taps(out_height), _taps(out_width)
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    patches = tf.concat([padded[:, row:row + 2 * out_height:2, col:col + 2 * out_width:2, :]
                         for row in rows for col in cols], axis=-1)
    taps = kernel[rows.start:rows.stop, cols.start:cols.stop]
    flat = tf.reshape(patches, [-1, len(rows) * len(cols) * channels])
    product = flat @ tf.reshape(taps, [len(rows) * len(cols) * channels, kernel.shape[-1]])
    return tf.reshape(product, [-1, out_height, out_width, kernel.shape[-1]])


def _shift(contribution: tf.Tensor, offset: int, axis: int) -> tf.Tensor:
    """``contribution`` moved by ``offset`` in {-1, 0, 1} pixels along ``axis``, zero-filled."""
    if offset == 0:
        return contribution
    size = contribution.shape[axis]
    begin = [0] * 4
    begin[axis] = max(0, -offset)
    length = [-1] * 4
    length[axis] = size - 1
    moved = tf.slice(contribution, begin, length)
    padding = [[0, 0]] * 4
    padding[axis] = [max(0, offset), max(0, -offset)]
    return tf.pad(moved, padding)


def conv_transpose_as_matmul(images: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """4x4 stride-2 'same' transposed convolution of ``images [B, h, w, C]`` (h, w <= 2) with
    ``kernel [4, 4, O, C]`` -> ``[B, 2h, 2w, O]``: each pixel times the kernel's taps (one
    matrix product), then each tap's contribution added at its place. Tap k lands on output
    2i + k - 1 = 2(i + a) + p with phase p = (k - 1) mod 2 and shift a = (k - 1) // 2; the four
    phase images interleave with ``depth_to_space``."""
    _, height, width, channels = images.shape
    outputs = kernel.shape[2]
    rows, cols = _taps(height), _taps(width)
    taps = tf.transpose(kernel[rows.start:rows.stop, cols.start:cols.stop], [3, 0, 1, 2])
    product = tf.reshape(images, [-1, channels]) @ tf.reshape(
        taps, [channels, len(rows) * len(cols) * outputs])
    contributions = tf.reshape(product, [-1, height, width, len(rows) * len(cols) * outputs])
    phases = {}
    for tap, (row, col) in enumerate((row, col) for row in rows for col in cols):
        phase = ((row - 1) % 2, (col - 1) % 2)
        placed = _shift(_shift(contributions[..., tap * outputs:(tap + 1) * outputs],
                               (row - 1) // 2, 1), (col - 1) // 2, 2)
        phases[phase] = phases[phase] + placed if phase in phases else placed
    interleaved = tf.concat([phases[(p, q)] for p in range(2) for q in range(2)], axis=-1)
    return tf.nn.depth_to_space(interleaved, 2)


@keras.saving.register_keras_serializable(package="anomaly_toolbox")
class MatmulConv2D(layers.Conv2D):
    """:class:`keras.layers.Conv2D`, as :func:`conv_as_matmul` where its output side is <= 2."""

    def convolution_op(self, inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        out_sides = tuple(None if side is None else side // 2 for side in inputs.shape[1:3])
        if _matmul_applies(self, out_sides) and all(side % 2 == 0 for side in inputs.shape[1:3]):
            return conv_as_matmul(inputs, kernel)
        return super().convolution_op(inputs, kernel)


@keras.saving.register_keras_serializable(package="anomaly_toolbox")
class MatmulConv2DTranspose(layers.Conv2DTranspose):
    """:class:`keras.layers.Conv2DTranspose`, as :func:`conv_transpose_as_matmul` where its input
    side is <= 2."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        if self.output_padding is not None or not _matmul_applies(self, tuple(inputs.shape[1:3])):
            return super().call(inputs)
        outputs = conv_transpose_as_matmul(inputs, self.kernel)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs
