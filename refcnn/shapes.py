"""The shape module lives in :mod:`cnnbase.shapes`, the ground floor both engines share; this old path stays
so that ``import refcnn.shapes`` keeps working, and it is the very same module."""

import sys

import cnnbase.shapes

sys.modules[__name__] = cnnbase.shapes
