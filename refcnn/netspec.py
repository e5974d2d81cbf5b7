"""Network descriptions live in :mod:`cnnbase.netspec`, the ground floor both engines share; this old path
stays so that ``import refcnn.netspec`` keeps working, and it is the very same module."""

import sys

import cnnbase.netspec

sys.modules[__name__] = cnnbase.netspec
