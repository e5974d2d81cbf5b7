"""Interchange: models and weights to and from other formats and frameworks (issue 15).

    onnx_export.py   a model to ONNX (opset stated in the module), checked with onnx.checker
    onnx_import.py   an ONNX file back to a model: ours from its description, any other through onnx_graph.py
    onnx_read.py     the file's protobuf, initializers and constants, within the limits; constant folding
    onnx_graph.py    another tool's graph, node by node, onto our layers (Residual/Concat where paths join)
    safetensors.py   the safetensors format, read and written here (the network description in its metadata)
    torch_state.py   a PyTorch state_dict (safetensors, or ``.pt`` through ``torch.load(weights_only=True)``)
                     mapped onto a network given by its description
    keras_file.py    a Keras 3 ``.keras`` file (config plus ``model.weights.h5``), layouts converted

Every reader treats its file as untrusted: nothing is unpickled, and sizes are checked against
``CNN_MAX_ARRAY_BYTES`` before anything is allocated. onnx, torch and h5py are optional extras, imported
only by the function that needs them.
"""

from .keras_file import load_keras
from .onnx_export import OPSET, export_onnx
from .onnx_import import import_onnx
from .safetensors import read_safetensors, write_safetensors
from .safetensors import load_model as load_safetensors
from .safetensors import save_model as save_safetensors
from .torch_state import load_state_dict

__all__ = ["OPSET", "export_onnx", "import_onnx", "save_safetensors", "load_safetensors", "read_safetensors",
           "write_safetensors", "load_state_dict", "load_keras"]
