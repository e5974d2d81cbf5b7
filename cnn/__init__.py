"""cnn: models, data and training over either engine (fastcnn by default, refcnn for checking).

The public names are gathered here once the modules below exist; see README.md.
"""

__all__: list[str] = []
