import keras
import numpy as np
import pytest
import tensorflow as tf

from anomaly_toolbox.models.matmul_convolutions import MatmulConv2D, MatmulConv2DTranspose
from anomaly_toolbox.models.skipganomaly import build_unet

CONVOLUTION_OPS = {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "_FusedConv2D"}

PAIRS = [(MatmulConv2D, keras.layers.Conv2D, lambda side: (3, 2 * side, 2 * side, 5)),
         (MatmulConv2DTranspose, keras.layers.Conv2DTranspose, lambda side: (3, side, side, 5))]


def _pair(ours, keras_class, shape):
    """Our layer and Keras's with the same weights (a random bias, so that it counts)."""
    layer = ours(7, 4, strides=2, padding="same", bias_initializer="random_normal")
    layer.build(shape)
    reference = keras_class(7, 4, strides=2, padding="same")
    reference.build(shape)
    reference.set_weights(layer.get_weights())
    return layer, reference


def _values_and_gradients(layer, images):
    with tf.GradientTape() as tape:
        tape.watch(images)
        outputs = layer(images)
        loss = tf.reduce_sum(tf.square(outputs))
    return [outputs, *tape.gradient(loss, [images, *layer.trainable_variables])]


def _ops_of_a_training_step(layer, shape):
    @tf.function
    def step(images):
        return _values_and_gradients(layer, images)
    return {op.type for op in step.get_concrete_function(
        tf.TensorSpec(shape, tf.float32)).graph.get_operations()}


@pytest.mark.parametrize("ours,keras_class,shape_at", PAIRS)
@pytest.mark.parametrize("side", [1, 2, 4])
def test_values_and_gradients_are_keras_layers(ours, keras_class, shape_at, side):
    shape = shape_at(side)
    layer, reference = _pair(ours, keras_class, shape)
    images = tf.random.stateless_normal(shape, seed=[side, 0])
    for got, expected in zip(_values_and_gradients(layer, images),
                             _values_and_gradients(reference, images)):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("ours,keras_class,shape_at", PAIRS)
def test_sides_up_to_two_run_as_matrix_products_and_larger_ones_as_convolutions(
        ours, keras_class, shape_at):
    for side, convolves in ((1, False), (2, False), (4, True)):
        layer, _ = _pair(ours, keras_class, shape_at(side))
        ops = _ops_of_a_training_step(layer, shape_at(side))
        assert bool(ops & CONVOLUTION_OPS) == convolves, (side, sorted(ops))
        assert ("MatMul" in ops or "BatchMatMulV2" in ops) != convolves


def test_other_configurations_keep_the_keras_convolution():
    layer = MatmulConv2D(4, 3, strides=2, padding="same")
    layer.build((2, 2, 2, 3))
    assert _ops_of_a_training_step(layer, (2, 2, 2, 3)) & CONVOLUTION_OPS


def test_the_unet_with_them_saves_and_loads_in_safe_mode(tmp_path):
    unet = build_unet((32, 32, 1), 4)
    assert {type(layer) for layer in unet.layers} >= {MatmulConv2D, MatmulConv2DTranspose}
    images = tf.random.stateless_uniform((2, 32, 32, 1), seed=[1, 2], minval=-1.0)
    unet.save(tmp_path / "unet.keras")
    loaded = keras.saving.load_model(tmp_path / "unet.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(images, training=False).numpy(),
                               unet(images, training=False).numpy(), atol=1e-6)
