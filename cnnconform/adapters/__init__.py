"""Adapters: modules that present another library under the spec's function names (``specs/adapter.md``).

``torch_adapter`` maps ``torch.nn.functional``, ``torch.optim`` and autograd to the spec; ``cnn conform torch``
loads it. It is imported only on demand, so nothing else needs PyTorch. (Named ``torch_adapter``, not
``torch``, and imported absolutely, so that no module of this package can shadow PyTorch itself.)
"""
