"""Recurrent layers: cells (one step), sequence layers (the loop, directions, stacking), 2D
recurrences and the PixelRNN layers. Every public layer is importable from here; the functions
they run (step functions, kernels and their references) are in :mod:`rnnvision.ops`."""

from rnnvision.layers.cells import GRUCell, LSTMCell, RNNCell
from rnnvision.layers.cross_scan import CrossScan2d
from rnnvision.layers.indrnn import IndRNN
from rnnvision.layers.lru import LRU
from rnnvision.layers.mdlstm import MDLSTM2d
from rnnvision.layers.minrnn import MinGRU, MinLSTM, MinRNNBlock, MinRNNStack
from rnnvision.layers.pixelrnn import DiagonalBiLSTM, MaskedConv2d, MaskedResidualBlock, RowLSTM
from rnnvision.layers.recurrent import GRU, LSTM, RNN, make_recurrent
from rnnvision.layers.renet import ReNetLayer, renet_reference

__all__ = [
    "CrossScan2d",
    "DiagonalBiLSTM",
    "GRU",
    "GRUCell",
    "IndRNN",
    "LRU",
    "LSTM",
    "LSTMCell",
    "MDLSTM2d",
    "MaskedConv2d",
    "MaskedResidualBlock",
    "MinGRU",
    "MinLSTM",
    "MinRNNBlock",
    "MinRNNStack",
    "RNN",
    "RNNCell",
    "ReNetLayer",
    "RowLSTM",
    "make_recurrent",
    "renet_reference",
]
