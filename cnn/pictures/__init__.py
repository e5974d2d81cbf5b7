"""Seeing inside a network, as pictures a person looks at: a convolution's learned kernels
(:func:`filter_grid`), the feature maps of one input (:func:`activation_maps`), where the evidence for a class
lies (Grad-CAM, :func:`grad_cam_figure`), and the seeds' Sobel example (:func:`sobel_figure`); ``cnn show``
draws them from the command line.

Two modules: :mod:`cnn.pictures.numbers` computes (kernels, maps, Grad-CAM, Sobel outputs; the tests check these
against independent computations) and :mod:`cnn.pictures.drawing` only lays them out with matplotlib.
"""

from .drawing import (MAX_FILTERS, MAX_INPUTS, MAX_MAPS, activation_maps, filter_grid, grad_cam_figure, save_png,
                      sobel_figure)
from .numbers import (EDGE_IMAGE, SOBEL_HORIZONTAL, SOBEL_VERTICAL, GradCam, LayerChoiceError, conv2d_layers,
                      feature_maps, grad_cam, kernels, map_layers, sobel_example, upsample)

__all__ = ["filter_grid", "activation_maps", "grad_cam_figure", "sobel_figure", "save_png", "MAX_FILTERS",
           "MAX_INPUTS", "MAX_MAPS", "GradCam", "LayerChoiceError", "conv2d_layers", "map_layers", "kernels",
           "feature_maps", "grad_cam", "upsample", "sobel_example", "EDGE_IMAGE", "SOBEL_VERTICAL",
           "SOBEL_HORIZONTAL"]
