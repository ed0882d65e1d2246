"""hoopray: basketball player identification in broadcast video at archive scale.

Importing the package loads no heavy library (torch, ray, transformers); those load
inside the model adapters and the pipeline only.
"""

__version__ = "0.1.0"
