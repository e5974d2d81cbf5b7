"""cnnbase: the ground floor under both engines.

Pure Python over integers and shapes; nothing here loops over an array. Both engines, the conformance kit and
the ``cnn`` library stand on it:

* :mod:`cnnbase.checks`: the one error message template and the argument checks every public function uses;
* :mod:`cnnbase.shapes`: output sizes, padding amounts, receptive fields and costs, integers in and out;
* :mod:`cnnbase.padding`: the padding fill, as the input index a padded coordinate reads;
* :mod:`cnnbase.netspec`: the network-description language (layer records, summaries, JSON, the text grammar).
"""

from .padding import PADDING_MODES
from .shapes import ShapeError

__all__ = ["PADDING_MODES", "ShapeError"]
