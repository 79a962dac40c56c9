"""Using trained models outside training: embedding crops, ONNX export, galleries and search.

- :mod:`.embedder`: :class:`Embedder`, descriptors for crops from a checkpoint or an ONNX file;
- :mod:`.export`: ``mbf export``, the ONNX graph with its model card, checked by onnxruntime;
- :mod:`.extraction`: ``mbf extract``, sharded, resumable, multi-process;
- :mod:`.gallery`: the extracted galleries and exact (brute-force) search in them;
- :mod:`.faiss_index`: ``mbf index``, exact and compressed approximate FAISS indexes.
"""
from .embedder import Embedder
from .gallery import Gallery
from .images import camera_of, list_images
from .metadata import ModelCard, Preprocessing

__all__ = ["Embedder", "Gallery", "ModelCard", "Preprocessing", "camera_of", "list_images"]
