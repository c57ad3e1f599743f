"""Model Hub: an open market for AI models, paid per call.

The SDK (`modelhub.hub`), command line, relayer daemon, model store and ONNX runtime wrapper.
"""

__version__ = "0.1.0"
