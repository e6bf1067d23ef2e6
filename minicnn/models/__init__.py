"""AlexNet and its variants, assembled layer by layer from ``minicnn.nn``."""
from .alexnet import ABLATIONS, ACTIVATIONS, MIN_INPUT_SIZE, MODELS, Network, alexnet2012, alexnet2012_caffe, alexnet_bn, alexnet_small, conv_out, get

__all__ = ["ABLATIONS", "ACTIVATIONS", "MIN_INPUT_SIZE", "MODELS", "Network", "alexnet2012", "alexnet2012_caffe", "alexnet_bn", "alexnet_small", "conv_out", "get"]
